"""Values that depend on shapes alone: a step of one of xpnn's ops (all pure, all with a
NumPy kernel) whose inputs are constants or shape descriptions gives the same value for the
same shapes, so it is computed once per shape and kept, read-only (the gradient of a mean,
1 / batch size, in every training step). A fetch of it is copied (``ownership``).

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(name="x")
...     g = xn.gradients(xn.reduce_mean(x), [x])[0]
...     xn.Session().run(g, {x: [1.0, 2.0, 3.0, 4.0]}).tolist()
[0.25, 0.25, 0.25, 0.25]
"""

from __future__ import annotations

import numpy as np

from . import kernels

_KEEP = 2  # results kept per step (a last, smaller batch is a second shape)


def find(plan, facts) -> None:
    """Mark the steps whose value depends on shapes alone (``facts.kept``)."""
    for step in plan.steps:
        ins = step.inputs
        if (step.kind == "value" and ins and not step.op.random
                and kernels.has_fast_forward(type(step.op))
                and all(s in facts.constants or s in facts.described for s in ins)):
            facts.kept[step.out] = tuple(k for k, s in enumerate(ins) if s in facts.described)


def wrap(plan, facts) -> None:
    """Make each marked step compute once per shape; a small array read by such steps alone
    is passed as its own description (``_own_description``)."""
    readers = {}
    for step in plan.steps:
        for s in step.inputs:
            readers.setdefault(s, []).append(step.out)
        if step.out in facts.kept:
            step.fn = _memoized_by_shape(step.fn, facts.kept[step.out])
    for step in plan.steps:
        if (step.kind == "describe" and step.out in readers
                and all(r in facts.kept for r in readers[step.out])):
            step.fn = _own_description


_OWN_DESCRIPTION = 1 << 12  # entries: an array kept this long alive costs nothing


def _own_description(array):
    """The array itself where it is small: it has the shape, ndim and dtype a description
    has, and the memoized steps that read it key on those alone. A training step's loss is
    the usual one, described for its gradient's shape at every run."""
    return array if array.size <= _OWN_DESCRIPTION else kernels.described(array)


def _memoized_by_shape(fn, described):
    """fn(*inputs), computed once per shapes and dtypes at positions ``described``."""
    kept = {}
    if len(described) == 1:  # the usual case, keyed without building tuples
        (k,) = described

        def key_of(inputs):
            return inputs[k].shape, inputs[k].dtype
    else:
        def key_of(inputs):
            return tuple((tuple(inputs[k].shape), inputs[k].dtype) for k in described)

    def memoized(*inputs):
        key = key_of(inputs)
        value = kept.get(key)
        if value is None:
            if len(kept) >= _KEEP:
                kept.clear()
            value = kept[key] = fn(*inputs)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        return value

    return memoized
