"""Where a compiled plan's arguments and results sit among the plan's slots: what goes into
the compiled function (feeds, Variables: donated or kept), what comes out (the fetched
values it computes, the updated Variables' new values) and what the run hands out itself
(fetched placeholders and Variables, which are no computation).

>>> import xpnn as xn
>>> from xpnn.devices.jax.layout import Layout
>>> with xn.Graph().as_default():
...     w = xn.Variable([1.0], name="w")
...     step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(w * w))
...     sess = xn.Session(backend="jax", passes=False)
...     _ = sess.run([step, w])
>>> layout = Layout(next(iter(sess._plans.values())))
>>> layout.donated, [v.label for v in layout.targets]  # w is fetched: its buffer is kept
((), ['w'])
"""

from __future__ import annotations

import operator


class Layout:
    """Slots of one plan, sorted by how the compiled function treats them."""

    def __init__(self, plan, donate=True):
        fetched = {s for s in plan.fetch_slots if s is not None}
        self.targets = [v for update in plan.updates for v in update.op.targets]
        written = set(self.targets)
        self.feeds = tuple(feed.slot for feed in plan.feeds)
        # A Variable the run updates gives its buffer to its new value, unless the run also
        # hands the old value out (fetched). In the order of the new values: jax.jit gives
        # each result the first donated buffer of its shape and dtype, so a weight and its
        # optimizer slot, out of order, would swap buffers, and XLA copy both every step.
        slot_of = {v: s for s, v in plan.variables.items()}
        self.donated = tuple(slot_of[v] for v in dict.fromkeys(self.targets)
                             if donate and v in slot_of and slot_of[v] not in fetched)
        self.kept = tuple(s for s in plan.variables if s not in self.donated)
        leaves = set(plan.variables) | set(plan.constants) | set(self.feeds)
        self.computed = tuple(s for s in dict.fromkeys(plan.fetch_slots)
                              if s is not None and s not in leaves)
        self.fetched_feeds = tuple(s for s in self.feeds if s in fetched)
        # Fetched Variables that keep their value after the run: handed out as copies, as
        # a later run may donate the stored buffer.
        self.fetched_variables = tuple(s for s, v in plan.variables.items()
                                       if s in fetched and v not in written)
        self.hands_out = bool(self.fetched_feeds or self.fetched_variables)
        self.take_feeds, self.take_variables = _taker(self.feeds), _taker(self.donated + self.kept)


def _taker(slots):
    """values -> the tuple of values[s] for s in ``slots`` (what a run does for each group
    of arguments: itemgetter is the fastest way)."""
    if not slots:
        return lambda values: ()
    if len(slots) == 1:
        (s,) = slots
        return lambda values: (values[s],)
    return operator.itemgetter(*slots)
