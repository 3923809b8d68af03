"""Work a forward kernel hands to its gradient's kernel: a Conv2D's patch matrix, which its
filter gradient would otherwise gather again from the same input, and a MaxPool's maxima,
which its gradient would otherwise find again. Paired only within one
plan, where the forward step runs first in every run, and only for the very input array the
patches came from (``conv.Handoff``), so nothing outlives the run that made it.

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(shape=(2, 5, 5, 1))
...     w = xn.Variable(np.ones((3, 3, 1, 2), np.float32))
...     loss = xn.reduce_sum(xn.conv2d(x, w, padding="VALID"))
...     sess = xn.Session(device="cpu")
...     g = sess.run(xn.gradients(loss, [w])[0], {x: np.ones((2, 5, 5, 1), np.float32)})
>>> g[0, 0, 0].tolist()
[18.0, 18.0]
"""

from __future__ import annotations

from ...ops import conv
from . import conv as conv_kernels  # noqa: F401  (registers the kernels taking a handoff)
from .kernels import FORWARD

GRADIENTS = {conv.Conv2DBackpropFilter: conv.Conv2D, conv.MaxPoolGrad: conv.MaxPool}


def pair(plan, skip=(), options=None) -> set:
    """Give each forward step whose gradient (``GRADIENTS``) runs later in ``plan`` kernels
    that share their work (steps whose slot is in ``skip`` keep theirs; ``options``: more
    keyword arguments of a slot's kernel maker); the slots of the steps given kernels here."""
    options = options or {}
    forwards, paired = {}, set()
    for step in plan.steps:
        if step.kind != "value" or step.out in skip:
            continue
        op = step.op
        if type(op) in GRADIENTS.values():
            forwards[_key(op)] = step
        elif type(op) in GRADIENTS:
            forward = forwards.pop(_key(op, GRADIENTS[type(op)]), None)
            if forward is None:
                continue
            handoff = conv_kernels.Handoff()
            forward.fn = FORWARD[type(forward.op)](forward.op, forward.fn, handoff=handoff,
                                                   **options.get(forward.out, {}))
            step.fn = FORWARD[type(op)](op, step.fn, handoff=handoff,
                                        **options.get(step.out, {}))
            paired |= {forward.out, step.out}
    return paired


def _key(op, forward_class=None):
    """What makes a gradient the one of a forward op: the forward's class, the same input
    nodes the gradient reads (a conv's filters, a pool's input), window and layout."""
    forward_class = forward_class or type(op)
    n = 2 if forward_class is conv.Conv2D else 1
    return (forward_class, *map(id, op.inputs[:n]), id(op.window),
            getattr(op, "ksize", None), op.data_format)
