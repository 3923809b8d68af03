"""CuPy on a CUDA GPU: its Device, its executor (``CupyExecutor``, what ``compile`` returns,
the stand-in's too) and the passes that make it, one concept a file:

- ``formulas``: every kernel's arithmetic, written once as a plain elementwise function;
- ``source``: a formula traced on symbols and printed as CUDA C (with a NumPy model of it);
- ``cuda``: the CUDA fuser, ``cupy.ElementwiseKernel`` / ``ReductionKernel`` from the source;
- ``reference``: its stand-in, running the same traced statements on NumPy;
- ``chains``: elementwise steps composed into one kernel (bias add + ReLU, the ReLU, sigmoid
  and tanh gradients, softmax into the dense cross-entropy's gradient);
- ``softmax``: softmax rows and the dense and sparse cross-entropies, forward and backward;
- ``recurrent``: the LSTM cell and its gradient, one kernel each;
- ``updates``: SGD, momentum (Nesterov too) and Adam, one kernel per Variable, in place;
- ``ownership``: which arrays may be written in place; ``kernels``: the single-op table;
- ``devices/cupy_standin``: a device that runs this pass with NumPy, where no GPU is.

No kernel reads a device value on the host: a training step makes no host synchronisation.
``Session(passes=False)`` (or ``$XPNN_PASSES=0``) leaves the portable plan as it is, the
reference the pass is tested against (``tests/devices/cupy/test_cupy_pass.py``;
``tests/devices/test_fastpath_random.py`` on random programs). No CUDA graphs are captured.
cupy is imported at the first kernel compiled, not with xpnn. Written without a GPU: the
stand-in runs every test here; the CUDA kernels themselves have not run yet
(``benchmarks/gpu_check.sh`` runs the tests on one).

>>> import xpnn as xn
>>> from xpnn.devices.cupy_standin import stand_in
>>> xn.Session(device=stand_in(), passes=False).passes  # the portable plan
False
"""

from __future__ import annotations

import os

import array_api_compat
import numpy as np

from ... import passes
from ...executor import Executor
from .. import Device, host_array, library
from . import chains, cuda, kernels, ownership, updates
from . import recurrent as _recurrent  # noqa: F401  (registers the LSTM cell's kernels)
from . import softmax as _softmax  # noqa: F401  (registers the cross-entropy kernels)


class CupyExecutor(Executor):
    """A CuPy plan after this package's passes, with ``fuser`` (by default the CUDA one):
    fused kernels in its program, optimizer updates written in place at commit."""

    def __init__(self, plan, session, fuser=None):
        self.fuser = fuser if fuser is not None else cuda.fuser()
        super().__init__(plan, session)

    def passes(self, plan, session) -> None:
        """Run the passes on ``plan`` (compiled for ``session``), in order."""
        fuser = self.fuser
        chosen = updates.UPDATES.choose(plan, passes.live_slots(plan), session)
        if chosen:
            self.update_in_place(chosen, updates.commit_in_place(chosen, session.xp, fuser))
        fused = chains.fuse(plan, session.device, fuser, defer=not session.check_numerics)
        kernels.swap_in(plan, session.device, fuser, skip=fused)


class CupyDevice(Device):
    """CuPy on a CUDA GPU. Its Sessions run this package's passes (which import cupy only
    at their first kernel); ``Session(passes=False)`` runs the portable plan instead."""

    backend = "cupy"
    mutable = True
    old_switch = "XPNN_CUPY_PASSES"

    @property
    def context(self):  # new CuPy arrays go to the current GPU
        return self.device

    def from_host(self, value, dtype=None, copy=False):
        """With unified memory (``CUPY_ENABLE_UMP=1``) CuPy may map the host array itself:
        then the array is always copied first, or kernels still queued when ``run`` returns
        would read the user's later writes to a fed array."""
        host = host_array(value, dtype)
        if copy or _unified_memory():
            host = np.array(host, copy=True)
        with self.device:  # CuPy ignores device= outside asarray; this covers both
            return self.xp.asarray(host)

    def copy(self, array):
        with self.device:  # ndarray.copy() allocates on the current GPU
            return array.copy()

    def keep(self, value, inputs):
        return ownership.own(value, inputs)

    def compile(self, plan, session) -> CupyExecutor:
        return CupyExecutor(plan, session)


def _unified_memory() -> bool:
    """Whether CuPy maps host memory (``CUPY_ENABLE_UMP``, read as CuPy reads it)."""
    try:
        return int(os.environ.get("CUPY_ENABLE_UMP", "0")) != 0
    except ValueError:
        return False


def open_device(device, kind, index) -> CupyDevice:
    """The CuPy device for ``"cuda"`` or ``"cuda:N"`` (``devices.resolve``)."""
    if kind not in ("cuda", "gpu"):
        raise ValueError(f"backend 'cupy' runs on 'cuda' or 'cuda:N', not {device!r}")
    cupy = library("cupy", device, "CuPy", "pip install 'xpnn[cuda]' (cupy-cuda12x[ctk])")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when no driver is present
        raise RuntimeError(f"device {device!r}: no CUDA device is available ({exc})") from exc
    idx = int(index or 0)
    if idx >= count:
        raise ValueError(f"device {device!r}: only {count} CUDA device(s) present")
    xp = array_api_compat.array_namespace(cupy.empty(0))
    return CupyDevice(f"cuda:{idx}", xp, cupy.cuda.Device(idx))


def to_numpy(array) -> np.ndarray:
    """A CuPy array on the host (``xpnn.to_numpy``)."""
    return array.get()
