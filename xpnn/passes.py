"""What every device's plan passes share (``devices.numpy``, ``devices.torch``, ``devices.cupy``,
``devices.jax``): the table of kernels by op class (``KernelTable``), and the table of
in-place optimizer updates by optimizer class (``UpdateTable``), which chooses the updates
that may go in place and makes the commit that applies them. Each device folder supplies
only its kernels and its update formulas.

>>> import xpnn as xn
>>> from xpnn import passes
>>> g = xn.Graph()
>>> with g.as_default():
...     w = xn.Variable([3.0])
...     sess = xn.Session(device="cpu", graph=g)
...     sess.run(xn.train.AdamOptimizer().minimize(xn.square(w)))
>>> plan, = sess._plans.values()
>>> table = passes.UpdateTable({xn.train.AdamOptimizer: None})
>>> live = passes.live_slots(plan)
>>> live == set(plan.variables), len(table.choose(plan, live, sess))
(True, 1)
"""

from __future__ import annotations

from .optimizers import ApplyGradients


class KernelTable(dict):
    """op class -> ``make(op, portable, *context)``, which returns the ``fn(*values)`` a
    plan runs instead of the op's ``portable`` forward (the fallback for inputs outside
    the kernel's case, so errors stay the op's own); ``context``: what else a device's
    makers take (its Device, a fuser). Every device's kernels are tables of this kind (the
    NumPy device keeps two: kernels, and kernels that may write into their first input).

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

    def kernel(self, op, portable, *context, **options):
        """The callable a plan runs for ``op``: its kernel, else ``portable``; ``options``:
        keyword arguments of this one kernel (a NumPy pass's handoff)."""
        make = self.get(type(op))
        return portable if make is None else make(op, portable, *context, **options)


def live_slots(plan) -> set:
    """The plan's Variable slots and the values of ops that may return (a view of) one of
    them: what an in-place update could change under a later reader."""
    return plan.with_views(plan.variables)


class UpdateTable(dict):
    """optimizer class -> a device's update formula: what writes one optimizer step's new
    values into the Variables' (and slots') own arrays, in that device's terms (the
    signature is the device's: its ``apply`` calls it). The table says which updates may
    go in place (``choose``) and makes the commit that applies them (``commit``)."""

    def has_fast_update(self, step) -> bool:
        """Whether ``step`` is an optimizer's update with a formula here (a learning rate
        that is a graph node takes the portable update, and so do a sparse one and one that
        accumulates (``ApplyGradients.portable_only``) and one that reads another update's
        new values in place of its Variables')."""
        return (isinstance(step, ApplyGradients) and type(step.optimizer) in self
                and step.rate is None and not step.portable_only and step.reads_targets)

    def choose(self, plan, live, session) -> list:
        """The updates that may write the Variables' arrays in place: optimizer steps with a
        formula here whose gradients are no (view of a) Variable (``live``), which an update
        applied before could change, and which update no float16 Variable (computed in
        float32: ``ApplyGradients.widened``). None when new values must be checked before
        they are written (``Session(check_numerics=True)``)."""
        if session.check_numerics:
            return []
        return [update for update in plan.updates if self.has_fast_update(update.op)
                and not update.op.widened(session.dtype)
                and not any(pair.gradient in live for pair in update.groups())]

    def commit(self, chosen, apply, arguments=None, around=None):
        """``commit(values)`` applying the ``chosen`` updates in place, in order (an
        executor's ``update_in_place``): ``apply(optimizer, values, *arguments(update))``
        for each, ``arguments`` by default the update's ``Pair`` of slots for each Variable
        (``UpdateStep.groups``); all of them within ``around()`` where given."""
        calls = [(update.op.optimizer,
                  arguments(update) if arguments is not None else (update.groups(),))
                 for update in chosen]

        def commit(values):
            for optimizer, args in calls:
                apply(optimizer, values, *args)

        if around is None:
            return commit

        def commit_around(values):
            with around():
                commit(values)

        return commit_around
