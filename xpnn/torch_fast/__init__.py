"""The PyTorch device's passes over a compiled plan (``Device.rewrite``), one a file. Each
keeps the portable plan's results, tested against it (``tests/test_torch_pass.py``, and
``tests/test_fastpath_random.py`` on random graph programs against array-api-strict):

- ``addmm``: a matrix product plus a bias as one ``torch.addmm``;
- ``deferred``: weight gradients left to the SGD or momentum update (one ``addmm_``);
- ``updates``: optimizer updates written into the Session's own tensors, under
  ``torch.no_grad()``, with ``torch._foreach_*`` over all Variables of a step;
- ``kernels``: torch kernels for ops, called without array-api-compat's wrappers, their
  constants made once per plan on its device, masks kept boolean, label checks only where
  the labels are on the host;
- ``conv``: ATen's convolution, its backward and pooling for ``xpnn.conv``'s ops;
- ``ownership``: new Variable values that would share memory with something else are
  copied, so that writing them in place changes nothing else.

No pass reads a device value on the host: on CUDA a training step makes no host
synchronisation. ``Session(passes=False)`` (or ``$XPNN_PASSES=0``) leaves the portable
plan as it is, for debugging and as the reference.

torch is imported here only when a torch plan is compiled: importing xpnn stays cheap.

>>> import xpnn as xn
>>> xn.Session(backend="torch", passes=False).passes  # the portable plan
False
"""

from __future__ import annotations

from .. import passes
from ..backend import TorchDevice


def rewrite(plan, session) -> None:
    """Run the passes on ``plan`` (compiled for ``session``), in order."""
    from . import addmm, deferred, kernels, updates
    from . import conv as _conv  # noqa: F401  (registers the conv kernels)

    live = passes.live_slots(plan)
    pending = set()
    chosen = passes.in_place(plan, updates.has_fast_update, live, session)
    if chosen:
        pending = deferred.defer(plan, live, chosen, session.device)
        updates.commit_in_place(plan, chosen, session.device)
    fused = addmm.fuse(plan, session) if not session.check_numerics else set()
    kernels.swap_in(plan, session.device, skip=pending | fused)


def own(value, inputs):
    """``ownership.own``: a new Variable value the Session may write in place."""
    from . import ownership

    return ownership.own(value, inputs)


TorchDevice.register(rewrite, own)
