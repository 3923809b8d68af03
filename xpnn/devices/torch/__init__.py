"""PyTorch on the CPU or a CUDA GPU: its Device, its executor (``TorchExecutor``, what
``compile`` returns) and the passes that make it, one a file. Each keeps the portable plan's
results, tested against it (``tests/devices/torch/test_torch_pass.py``, and
``tests/devices/test_fastpath_random.py`` on random graph programs against
array-api-strict):

- ``addmm``: a matrix product plus a bias as one ``torch.addmm``;
- ``deferred``: weight gradients left to the SGD or momentum update (one ``addmm_``);
- ``updates``: optimizer updates written into the Session's own tensors, under
  ``torch.no_grad()``, with ``torch._foreach_*`` over all Variables of a step;
- ``kernels``: torch kernels for ops, called without array-api-compat's wrappers, their
  constants made once per plan on its device, masks kept boolean, label checks only where
  the labels are on the host;
- ``conv``: ATen's convolution, its backward and pooling for ``xpnn.ops.conv``'s ops;
- ``recurrent``: the LSTM cell and its gradient, each written into a few tensors;
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

import array_api_compat
import numpy as np

from ... import passes
from ...executor import Executor
from .. import Device, host_array, library


class TorchExecutor(Executor):
    """A torch plan after this package's passes: torch kernels in its program, optimizer
    updates written into the Session's own tensors at commit."""

    def passes(self, plan, session) -> None:
        """Run the passes on ``plan`` (compiled for ``session``), in order."""
        from . import addmm, deferred, kernels, updates
        from . import conv as _conv  # noqa: F401  (registers the conv kernels)
        from . import indexing as _indexing  # noqa: F401  (registers the scatter-add kernel)
        from . import recurrent as _recurrent  # noqa: F401  (registers the LSTM cell's kernels)

        live = passes.live_slots(plan)
        pending = set()
        chosen = updates.UPDATES.choose(plan, live, session)
        if chosen:
            pending = deferred.defer(plan, live, chosen, session.device)
            self.update_in_place(chosen, updates.commit_in_place(chosen, session.device))
        fused = addmm.fuse(plan, session) if not session.check_numerics else set()
        kernels.swap_in(plan, session.device, skip=pending | fused)


def own(value, inputs):
    """``ownership.own``: a new Variable value the Session may write in place."""
    from . import ownership

    return ownership.own(value, inputs)


class TorchDevice(Device):
    """PyTorch on the CPU or a CUDA GPU. Its Sessions run this package's passes (which
    import torch only when a torch plan is compiled); ``Session(passes=False)`` runs the
    portable plan instead."""

    backend = "torch"
    mutable = True
    old_switch = "XPNN_TORCH_PASSES"

    @property
    def reads_without_sync(self) -> bool:
        return self.device.type == "cpu"

    def from_host(self, value, dtype=None, copy=False):
        """On the CPU the tensor shares the host array's memory (``torch.from_numpy``, as
        NumPy Sessions use fed arrays as they are; no op writes into its inputs) unless
        ``copy`` is asked for or the array is read-only or not C-ordered."""
        host = host_array(value, dtype)
        if self.device.type == "cpu":
            if copy or not (host.flags.writeable and host.flags.c_contiguous
                            and host.dtype.isnative and min(host.strides, default=0) >= 0):
                host = np.array(host, order="C", copy=True)
            try:
                return self.xp.from_numpy(host)
            except TypeError:  # a dtype torch has no tensors of: let asarray say so
                pass
        host = np.asarray(host, order="C")
        return self.xp.asarray(host, device=self.device, copy=True)

    def adopt(self, array):
        # Detached from autograd: Variables never carry gradient history from run to run.
        return array.detach() if array.requires_grad else array

    def keep(self, value, inputs):
        return own(value, inputs)

    def compile(self, plan, session) -> TorchExecutor:
        return TorchExecutor(plan, session)


def open_device(device, kind, index) -> TorchDevice:
    """The torch device for ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``devices.resolve``)."""
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"backend 'torch' takes device 'cpu' or 'cuda[:N]', not {device!r}")
    torch = library("torch", device, "PyTorch",
                    "pip install torch==2.13.0 (the CPU build; for a GPU see pytorch.org)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but torch sees no CUDA device")
    xp = array_api_compat.array_namespace(torch.empty(0))
    return TorchDevice(device, xp, torch.device(device))


def to_numpy(array) -> np.ndarray:
    """A tensor on the host, sharing no memory with it (``xpnn.to_numpy``)."""
    host = array.detach().cpu()
    if str(host.dtype) == "torch.bfloat16":  # NumPy has none; float32 holds it exactly
        return host.float().numpy()
    # On the CPU .numpy() shares the tensor's memory: copy, as for every other backend.
    return host.numpy().copy() if host.data_ptr() == array.data_ptr() else host.numpy()
