"""What every device's plan passes share (``numpy_fast``, ``torch_fast``, ``cupy_fast``):
which optimizer updates may be applied in place.

>>> import xpnn as xn
>>> from xpnn import passes
>>> with xn.Graph().as_default():
...     w = xn.Variable([1.0, 2.0])
...     step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
...     sess = xn.Session(device="cpu")
...     sess.run(step)
...     plan = next(iter(sess._plans.values()))
>>> [update.in_place for update in plan.updates], len(passes.live_slots(plan))
([True], 1)
"""

from __future__ import annotations


def live_slots(plan) -> set:
    """The plan's Variable slots and the values of ops that may return (a view of) one of
    them: what an in-place update could change under a later reader."""
    return plan.with_views(plan.variables)


def in_place(plan, has_fast_update, live, session) -> list:
    """The updates that may write the Variables' arrays in place: optimizer steps with a
    kernel of the device (``has_fast_update``) whose gradients are no (view of a) Variable
    (``live``), which an update applied before could change. None when new values must be
    checked before they are written (``Session(check_numerics=True)``)."""
    if session.check_numerics:
        return []
    return [update for update in plan.updates if has_fast_update(update.op)
            and not any(group.gradient in live for group in update.groups())]
