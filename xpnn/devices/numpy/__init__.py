"""The CPU with NumPy: its Device, its executor (``NumpyExecutor``, what ``compile``
returns) and the passes that make it, one a file. Each keeps the portable plan's results,
tested against it (``tests/devices/numpy/test_fastpath*.py``, and
``tests/devices/test_fastpath_random.py`` on random graph programs against array-api-strict):

- ``ownership``: which buffers a step may overwrite, which fetches must be copies;
- ``shape_folding``: values that depend on shapes alone, kept between runs;
- ``deferred``: weight gradients left to the SGD or momentum update (one BLAS GEMM);
- ``updates``: optimizer updates written into the Variables' own buffers;
- ``kernels``: NumPy kernels for ops, writing into a dead input where allowed;
- ``pairs``: a forward kernel's work handed to its gradient's kernel (conv patches);
- ``fusion``: a ReLU's gradient folded into the max-pool gradient after it, a sigmoid's
  into the binary cross-entropy's gradient before it, a ReLU into the bias add before it;
- ``recurrent``: the LSTM cell and its gradient, each written into a few buffers;
- ``allocator``: the C heap kept for large temporaries (glibc), set at the first plan.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     w = xn.Variable([1.0, 2.0])
...     step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
...     sess = xn.Session(device="cpu")
...     sess.run(step)
...     executor = next(iter(sess._executors.values()))
>>> type(executor).__name__, len(executor.in_place), sess.run(w).tolist()
('NumpyExecutor', 1, [0.0, 0.0])
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from ...executor import Executor
from .. import Device, host_array
from . import allocator, deferred, fusion, kernels, ownership, pairs, shape_folding, updates
from . import conv as _conv  # noqa: F401  (registers the conv kernels)
from . import indexing as _indexing  # noqa: F401  (registers the scatter-add kernel)
from . import recurrent as _recurrent  # noqa: F401  (registers the LSTM cell's kernels)
from . import stacking as _stacking  # noqa: F401  (registers the stack and unstack kernels)


class NumpyExecutor(Executor):
    """A NumPy plan after this package's passes: kernels in its program, optimizer updates
    written into the Variables' own buffers at commit, fewer fetches copied."""

    def passes(self, plan, session) -> None:
        """Run the passes on ``plan`` (compiled for ``session``), in order."""
        allocator.tune()
        facts = ownership.Facts(plan)
        shape_folding.find(plan, facts)
        self.copies = facts.copies()
        pending = set()
        chosen = updates.UPDATES.choose(plan, facts.live, session)
        if chosen:
            pending = deferred.defer(plan, facts, chosen, session.xp)
            self.update_in_place(chosen, updates.commit_in_place(facts, chosen, pending))
        options, fused = fusion.fold_all(plan, facts, skip=pending)
        paired = pairs.pair(plan, skip=pending, options=options)
        kernels.swap_in(plan, facts, skip=pending | paired | fused, options=options)
        shape_folding.wrap(plan, facts)


class NumpyDevice(Device):
    """The CPU with NumPy. Its Sessions update Variables in place and run this package's
    passes."""

    backend = "numpy"
    host_native = True
    reads_without_sync = True
    mutable = True

    def from_host(self, value, dtype=None, copy=False):
        host = host_array(value, dtype)
        return np.array(host, copy=True) if copy else host

    def copy(self, array):
        return array.copy()

    def keep(self, value, inputs):
        return ownership.own(value, inputs)

    def compile(self, plan, session) -> NumpyExecutor:
        return NumpyExecutor(plan, session)


def open_device(device, kind, index) -> NumpyDevice:
    """The NumPy device for ``"cpu"`` (``devices.resolve``)."""
    if kind != "cpu":
        raise ValueError(f"backend 'numpy' runs on device 'cpu' only, not {device!r}")
    return NumpyDevice("cpu", array_api_compat.array_namespace(np.empty(0)), "cpu")
