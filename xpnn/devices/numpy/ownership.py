"""Which buffers a NumPy plan may overwrite, and which fetched values must be copies.

A buffer may be overwritten only if a step made it fresh and nothing else can see it: not
fetched, not kept between runs, not passed on by an op that may return (a view of) its
input, and dead after the step that writes into it. Variables are updated in place, so a
fetch that is (or may view) one is copied out; so is a fetch of a constant or a kept value,
which every run shares.

>>> import numpy as np
>>> from xpnn.devices.numpy import ownership
>>> kept = np.ones(2); kept.flags.writeable = False
>>> ownership.own(kept, []) is kept
False
"""

from __future__ import annotations

import numpy as np

from ... import plan as plans
from . import kernels


class Facts:
    """What the passes prove about one plan's slots."""

    def __init__(self, plan):
        self.plan, self.n = plan, len(plan.steps)
        values = [step for step in plan.steps if step.kind == "value"]
        self.producer = {step.out: step.op for step in values}
        self.inputs_of = {step.out: step.inputs for step in values}
        self.keep = {s for s in plan.fetch_slots if s is not None}
        self.last_use = plans.last_uses(plan)
        self.update_reads = [s for update in plan.updates for s in update.inputs]
        self.aliased = {s for step in values if not plans.fresh(step.op, kernels.FRESH)
                        for k, s in enumerate(step.inputs) if k not in step.op.shape_only}
        self.described = {s.out for s in plan.steps if s.kind != "value"} | set(plan.static)
        self.constants = set(plan.constants)
        self.kept = {}  # slot -> its shape-only input positions (shape_folding)
        self.pending_operands = set()  # read by a deferred weight gradient (deferred)
        self.live = self.with_views(set(plan.variables))

    def with_views(self, slots) -> set:
        """``slots`` plus every value a step that may return (a view of) one of them makes
        from them (``Plan.with_views``, this package's kernels counted)."""
        return self.plan.with_views(slots, kernels.FRESH)

    def owned(self, s, index) -> bool:
        """Whether step ``index`` (``n``: the commit) may overwrite slot ``s``: made by a
        kernel of this package that makes a new array (a portable result may be a NumPy
        scalar, which cannot be written), seen by nothing else, dead after that step."""
        return (s in self.producer and type(self.producer[s]) in kernels.FRESH
                and s not in self.aliased and s not in self.keep and s not in self.kept
                and self.last_use.get(s) == index)

    def sole_owner(self, s) -> bool:
        """Whether the update that reads gradient ``s`` may overwrite it."""
        return self.owned(s, self.n) and self.update_reads.count(s) == 1

    def copies(self) -> frozenset:
        shared = self.with_views(self.constants | set(self.kept))
        return frozenset(s for s in self.keep if s in self.live or s in shared)


def own(value, inputs):
    """A new Variable value the Session may write in place: a copy when it is read-only (a
    value kept between runs), a view, or one of the update's inputs (a fed array, a
    constant, another Variable). Fresh results of arithmetic pass as they are, except 0-d
    ones, which NumPy gives as scalars: they become 0-d arrays, which can be written."""
    if isinstance(value, np.generic):
        return np.array(value)
    if isinstance(value, np.ndarray) and (
            not value.flags.writeable or value.base is not None
            or any(value is a for a in inputs)):
        return value.copy()
    return value
