"""How an Allreduce's gradients travel: packed into one flat buffer per dtype, which is
reused from step to step, and summed over the ranks in one message.

- NumPy: packed into a host buffer that mpi4py hands to MPI through the buffer interface
  and summed in place: no copy besides the packing.
- CuPy: packed into a device buffer and summed by NCCL (``cupy.cuda.nccl``) where CuPy has
  it, else by MPI on the device pointer where the MPI is CUDA-aware
  (``MPIX_Query_cuda_support``), else staged through the host. ``XPNN_ALLREDUCE=nccl``,
  ``mpi`` or ``host`` picks one.
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

import ctypes
import os

import array_api_compat
import numpy as np

from ..backend import context_of, to_numpy
from .comm import mpi


def transport_for(comm, array):
    """The Transport for gradients like ``array`` over ``comm``, made once per kind and
    device (NCCL's communicator is made on first use: a collective call)."""
    kind = kind_of(array)
    key = (kind, str(array_api_compat.device(array)))
    transport = comm.transports.get(key)
    if transport is None:
        transport = comm.transports[key] = _KINDS[kind](comm, array)
    return transport


def kind_of(array) -> str:
    """The route gradients like ``array`` take: "numpy", "nccl", "mpi" or "host"."""
    if array_api_compat.is_numpy_array(array):
        return "numpy"
    if not array_api_compat.is_cupy_array(array):
        return "host"
    wanted = os.environ.get("XPNN_ALLREDUCE", "")
    if wanted not in ("", "nccl", "mpi", "host"):
        raise ValueError(f"XPNN_ALLREDUCE={wanted!r}: choose nccl, mpi or host (or unset it)")
    if wanted in ("", "nccl") and nccl_available():
        return "nccl"
    if wanted in ("", "mpi") and cuda_aware_mpi():
        return "mpi"
    if wanted and wanted != "host":
        raise RuntimeError(f"XPNN_ALLREDUCE={wanted}: not available here (nccl: CuPy without "
                           "NCCL; mpi: this MPI is not CUDA-aware); unset it for the host route")
    return "host"


def nccl_available() -> bool:
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", True))


def cuda_aware_mpi() -> bool:
    """Whether the loaded MPI takes CUDA device buffers (Open MPI's and MPICH's
    ``MPIX_Query_cuda_support``; False where the MPI has no such call)."""
    try:
        query = ctypes.CDLL(mpi().__file__).MPIX_Query_cuda_support
    except (OSError, AttributeError):
        return False
    query.restype, query.argtypes = ctypes.c_int, []
    return bool(query())


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

    def buffer(self, dtype, n, make):
        """The reused buffer for ``n`` entries of ``dtype`` (``make(n, dtype)`` makes it)."""
        key = (str(dtype), n)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = make(n, dtype)
        return buffer

    def allreduce_sum(self, xp, arrays, scale):
        """The sum over the ranks of ``scale`` times ``arrays`` (one dtype) packed flat, in
        one message: an array of ``xp`` that may be a reused buffer (read it before the next
        call)."""
        raise NotImplementedError


class NumpyTransport(Transport):
    kind = "numpy"

    def allreduce_sum(self, xp, arrays, scale):
        n = sum(a.size for a in arrays)
        buffer = self.buffer(arrays[0].dtype, n, np.empty)
        np.concatenate([np.reshape(a, -1) for a in arrays], out=buffer)
        if scale != 1.0:
            np.multiply(buffer, scale, out=buffer)
        self.comm.allreduce(mpi().IN_PLACE, buffer, _what(self.comm))
        return buffer


class HostTransport(Transport):
    kind = "host"

    def allreduce_sum(self, xp, arrays, scale):
        packed = xp.concat([xp.reshape(a, (-1,)) for a in arrays])
        if scale != 1.0:
            packed = packed * scale
        send = host_view(packed)
        received = self.buffer(send.dtype, send.size, np.empty)
        self.comm.allreduce(send, received, _what(self.comm))
        with context_of(arrays[0]):  # a copy: JAX may alias host memory, and runs later
            return xp.asarray(received, device=array_api_compat.device(arrays[0]), copy=True)


class _DeviceTransport(Transport):
    """CuPy: packed into a reused buffer on the gradients' GPU, summed there in place."""

    def allreduce_sum(self, xp, arrays, scale):
        import cupy

        n = sum(a.size for a in arrays)
        with arrays[0].device:
            buffer = self.buffer(arrays[0].dtype, n, cupy.empty)
            cupy.concatenate([a.reshape(-1) for a in arrays], out=buffer)
            if scale != 1.0:
                buffer *= scale
            self.sum_in_place(buffer)
        return buffer


class NcclTransport(_DeviceTransport):
    kind = "nccl"

    def __init__(self, comm, array):
        super().__init__(comm, array)
        from cupy.cuda import nccl

        self.nccl = nccl
        uid = comm.mpi.bcast(nccl.get_unique_id() if comm.rank == 0 else None, root=0)
        with array.device:
            self.communicator = nccl.NcclCommunicator(comm.size, uid, comm.rank)
        self.types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                      "float64": nccl.NCCL_FLOAT64}

    def sum_in_place(self, buffer):
        import cupy

        if buffer.dtype.name not in self.types:
            raise TypeError(f"NCCL allreduce: no NCCL type for {buffer.dtype.name} gradients")
        self.communicator.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size,
                                    self.types[buffer.dtype.name], self.nccl.NCCL_SUM,
                                    cupy.cuda.get_current_stream().ptr)


class CudaMpiTransport(_DeviceTransport):
    kind = "mpi"

    def sum_in_place(self, buffer):
        import cupy

        cupy.cuda.get_current_stream().synchronize()  # MPI reads the memory outside CUDA's order
        self.comm.allreduce(mpi().IN_PLACE, buffer, _what(self.comm))


def _what(comm) -> str:
    """The allreduce a timeout message names."""
    return f"the gradients' allreduce of step {comm.steps}"


_KINDS = {"numpy": NumpyTransport, "host": HostTransport, "nccl": NcclTransport,
          "mpi": CudaMpiTransport}
