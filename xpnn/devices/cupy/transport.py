"""How CuPy gradients travel in an Allreduce (``xpnn.distributed.transport`` asks this
module): packed into a device buffer and summed by NCCL (``cupy.cuda.nccl``) where CuPy has
it, else by MPI on the device pointer where the MPI is CUDA-aware
(``MPIX_Query_cuda_support``), else staged through the host. ``XPNN_ALLREDUCE=nccl``,
``mpi`` or ``host`` picks one.

>>> from xpnn.devices.cupy import transport
>>> sorted(transport.TRANSPORTS)
['mpi', 'nccl']
"""

from __future__ import annotations

import ctypes
import os

from ...distributed.comm import mpi
from ...distributed.transport import Transport, what


def kind_of(array) -> str:
    """The route CuPy gradients like ``array`` take: "nccl", "mpi" or "host"."""
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
        self.comm.allreduce(mpi().IN_PLACE, buffer, what(self.comm))


TRANSPORTS = {"nccl": NcclTransport, "mpi": CudaMpiTransport}
