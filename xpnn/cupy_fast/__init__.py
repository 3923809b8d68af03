"""The CuPy device's passes over a compiled plan (``Device.rewrite``), one concept a file:

- ``formulas``: every kernel's arithmetic, written once as a plain elementwise function;
- ``source``: a formula traced on symbols and printed as CUDA C (with a NumPy model of it);
- ``cuda``: the CUDA fuser, ``cupy.ElementwiseKernel`` / ``ReductionKernel`` from the source;
- ``reference``: its stand-in, running the same traced statements on NumPy;
- ``chains``: elementwise steps composed into one kernel (bias add + ReLU, the ReLU, sigmoid
  and tanh gradients, softmax into the dense cross-entropy's gradient);
- ``softmax``: softmax rows and the dense and sparse cross-entropies, forward and backward;
- ``updates``: SGD, momentum (Nesterov too) and Adam, one kernel per Variable, in place;
- ``ownership``: which arrays may be written in place; ``kernels``: the single-op table;
- ``standin``: a device that runs this pass with NumPy, where no GPU is.

No kernel reads a device value on the host: a training step makes no host
synchronisation. ``Session(passes=False)`` (or ``$XPNN_PASSES=0``) leaves the portable
plan as it is, the reference the pass is tested against
(``tests/test_cupy_pass.py``; ``tests/test_fastpath_random.py`` on random programs). No
CUDA graphs are captured. cupy is imported at the first kernel compiled, not with xpnn.
Written without a GPU: the stand-in runs every test here; the CUDA kernels themselves have
not run yet (``benchmarks/gpu_check.sh`` runs the tests on one).

>>> import xpnn as xn
>>> from xpnn.cupy_fast.standin import stand_in
>>> xn.Session(device=stand_in(), passes=False).passes  # the portable plan
False
"""

from __future__ import annotations

from .. import passes
from ..backend import CupyDevice
from . import chains, cuda, kernels, ownership, updates
from . import softmax as _softmax  # noqa: F401  (registers the cross-entropy kernels)


def rewrite(plan, session, fuser=None) -> None:
    """Run the passes on ``plan`` (compiled for ``session``), with ``fuser`` (by default
    the CUDA one)."""
    fuser = fuser if fuser is not None else cuda.fuser()
    chosen = passes.in_place(plan, updates.has_fast_update, passes.live_slots(plan), session)
    if chosen:
        updates.commit_in_place(plan, chosen, session.xp, fuser)
    fused = chains.fuse(plan, session.device, fuser, defer=not session.check_numerics)
    kernels.swap_in(plan, session.device, fuser, skip=fused)


CupyDevice.register(rewrite, ownership.own)
