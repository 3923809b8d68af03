"""What every device's plan passes share (``devices.numpy``, ``devices.torch``, ``devices.cupy``,
``devices.jax``): which optimizer updates may be applied in place, and a table of kernels by
op class (``KernelTable``).

>>> import xpnn as xn
>>> from xpnn import passes
>>> g = xn.Graph()
>>> with g.as_default():
...     w = xn.Variable([3.0])
...     sess = xn.Session(device="cpu", graph=g)
...     sess.run(xn.train.AdamOptimizer().minimize(xn.square(w)))
>>> plan, = sess._plans.values()
>>> live = passes.live_slots(plan)
>>> live == set(plan.variables), len(passes.in_place(plan, lambda op: True, live, sess))
(True, 1)
"""

from __future__ import annotations


class KernelTable(dict):
    """op class -> ``make(op, portable, *context)``, which returns the ``fn(*values)`` a
    plan runs instead of the op's ``portable`` forward (the fallback for inputs outside
    the kernel's case, so errors stay the op's own); ``context``: what else a device's
    makers take (its Device, a fuser).

    >>> import xpnn as xn
    >>> table = KernelTable()
    >>> @table.fast(xn.ops.Relu)
    ... def _relu(op, portable):
    ...     return lambda x: max(x, 0.0)
    >>> with xn.Graph().as_default():
    ...     x = xn.placeholder()
    ...     relu, negative = xn.relu(x), xn.negative(x)
    >>> table.kernel(relu, abs)(-2.0), table.kernel(negative, abs)(-2.0)
    (0.0, 2.0)
    """

    def fast(self, *classes):
        """A decorator entering its kernel maker for each of ``classes``."""

        def register(make):
            for cls in classes:
                self[cls] = make
            return make

        return register

    def kernel(self, op, portable, *context):
        """The callable a plan runs for ``op``: its kernel, else ``portable``."""
        make = self.get(type(op))
        return portable if make is None else make(op, portable, *context)


def live_slots(plan) -> set:
    """The plan's Variable slots and the values of ops that may return (a view of) one of
    them: what an in-place update could change under a later reader."""
    return plan.with_views(plan.variables)


def in_place(plan, has_fast_update, live, session) -> list:
    """The updates that may write the Variables' arrays in place: optimizer steps with a
    kernel of the device (``has_fast_update``) whose gradients are no (view of a) Variable
    (``live``), which an update applied before could change, and which update no float16
    Variable (computed in float32: ``ApplyGradients.widened``). None when new values must be
    checked before they are written (``Session(check_numerics=True)``)."""
    if session.check_numerics:
        return []
    return [update for update in plan.updates if has_fast_update(update.op)
            and not update.op.widened(session.dtype)
            and not any(group.gradient in live for group in update.groups())]
