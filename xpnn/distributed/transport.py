"""How an Allreduce's gradients travel: packed into one flat buffer per dtype, which is
reused from step to step, and summed over the ranks in one message.

- NumPy: packed into a host buffer that mpi4py hands to MPI through the buffer interface
  and summed in place: no copy besides the packing.
- A backend whose folder has a ``transport`` module of its own (CuPy: summed on the GPU by
  NCCL or a CUDA-aware MPI, ``devices/cupy/transport.py``) takes its routes.
- Any other namespace (PyTorch, JAX, array-api-strict): packed on its device, viewed on the
  host through DLPack where its memory is host memory (else copied there), summed into a
  reused host buffer, and moved back.

Every rank must take the same route: the Allreduce compares them (``agreement``) before the
first message.

>>> import numpy as np
>>> from xpnn.distributed.transport import host_view
>>> host_view(np.arange(3.0)).tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from ..devices import context_of
from ..host import backend_folder, optional_module, to_numpy
from .comm import mpi


def transport_for(comm, array):
    """The Transport for gradients like ``array`` over ``comm``, made once per kind and
    device (NCCL's communicator is made on first use: a collective call)."""
    kind = kind_of(array)
    key = (kind, str(array_api_compat.device(array)))
    transport = comm.transports.get(key)
    if transport is None:
        kinds = {"numpy": NumpyTransport, "host": HostTransport}
        make = kinds.get(kind) or routes_of(array).TRANSPORTS[kind]
        transport = comm.transports[key] = make(comm, array)
    return transport


def kind_of(array) -> str:
    """The route gradients like ``array`` take: "numpy", "host", or one of the array's
    backend folder's own (``devices/<library>/transport.py``: CuPy's "nccl", "mpi")."""
    if isinstance(array, (np.ndarray, np.generic)):
        return "numpy"
    routes = routes_of(array)
    return "host" if routes is None else routes.kind_of(array)


def routes_of(array):
    """The ``transport`` module of ``array``'s backend folder, or None where it has none."""
    folder = backend_folder(array)
    return None if folder is None else optional_module(folder.__name__ + ".transport")


def host_view(array) -> np.ndarray:
    """``array`` as a contiguous NumPy array: a DLPack view where its memory is host memory
    (PyTorch and JAX on the CPU), else a copy."""
    if isinstance(array, np.ndarray):
        return np.ascontiguousarray(array)
    try:
        host = np.from_dlpack(array)
    except (BufferError, TypeError, ValueError, RuntimeError, AttributeError):
        host = to_numpy(array)
    return np.ascontiguousarray(host)


class Transport:
    """Sums flat buffers over the ranks; ``kind`` names the route (compared across ranks)."""

    kind = ""

    def __init__(self, comm, array):
        self.comm, self._buffers = comm, {}

    def buffer(self, dtype, n, make, tag=None):
        """The reused buffer for ``n`` entries of ``dtype`` (``make(n, dtype)`` makes it);
        ``tag`` tells apart buffers in flight at once (an overlapped allreduce's buckets)."""
        key = (str(dtype), n, tag)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = make(n, dtype)
        return buffer

    def allreduce_sum(self, xp, arrays, scale):
        """The sum over the ranks of ``scale`` times ``arrays`` (one dtype) packed flat, in
        one message: an array of ``xp`` that may be a reused buffer (read it before the next
        call)."""
        raise NotImplementedError

    def start(self, xp, arrays, scale, tag):
        """Start :meth:`allreduce_sum` of ``arrays``, nonblocking where the route can:
        ``(request, result)``, ``result()`` the sum once ``comm.wait(request)`` returned
        (``request`` None: done already). Here: the blocking sum."""
        total = self.allreduce_sum(xp, arrays, scale)
        return None, lambda: total


class NumpyTransport(Transport):
    kind = "numpy"

    def allreduce_sum(self, xp, arrays, scale):
        buffer = self.pack(arrays, scale)
        self.comm.allreduce(mpi().IN_PLACE, buffer, what(self.comm))
        return buffer

    def start(self, xp, arrays, scale, tag):
        buffer = self.pack(arrays, scale, tag)
        return self.comm.start(mpi().IN_PLACE, buffer), lambda: buffer

    def pack(self, arrays, scale, tag=None):
        n = sum(a.size for a in arrays)
        buffer = self.buffer(arrays[0].dtype, n, np.empty, tag)
        np.concatenate([np.reshape(a, -1) for a in arrays], out=buffer)
        if scale != 1.0:
            np.multiply(buffer, scale, out=buffer)
        return buffer


class HostTransport(Transport):
    kind = "host"

    def allreduce_sum(self, xp, arrays, scale):
        send, received = self.pack(xp, arrays, scale)
        self.comm.allreduce(send, received, what(self.comm))
        return self.back(xp, arrays[0], received)

    def start(self, xp, arrays, scale, tag):
        send, received = self.pack(xp, arrays, scale, tag)

        def result(_send=send):  # holds the host copy MPI reads until the message is done
            return self.back(xp, arrays[0], received)

        return self.comm.start(send, received), result

    def pack(self, xp, arrays, scale, tag=None):
        packed = xp.concat([xp.reshape(a, (-1,)) for a in arrays])
        if scale != 1.0:
            packed = packed * scale
        send = host_view(packed)
        return send, self.buffer(send.dtype, send.size, np.empty, tag)

    @staticmethod
    def back(xp, like, received):
        with context_of(like):  # a copy: JAX may alias host memory, and runs later
            return xp.asarray(received, device=array_api_compat.device(like), copy=True)


def what(comm) -> str:
    """The allreduce a timeout message names."""
    return f"the gradients' allreduce of step {comm.steps}"
