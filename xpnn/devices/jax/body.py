"""The function ``jax.jit`` compiles for a plan: the plan's own straight-line program (the
portable step functions, traced with JAX tracers in place of arrays), then every update's
portable rule. Fed values and Variable values in; the fetched values it computes and the
Variables' new values out.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(name="x")
...     w = xn.Variable([2.0], name="w")
...     sess = xn.Session(backend="jax")
...     sess.run(x * w, {x: [3.0]}).tolist()
[6.0]
"""

from __future__ import annotations

import copy

from ...ops import run_context


def make_body(plan, layout, program, parts, xp, check_shapes, counter):
    """``body(feeds, donated, kept, hyper values, draws, hyper key)`` -> (the computed
    fetches, the new Variable values, the check_numerics counts). ``parts``: the runner's
    draws, hyper-parameters and checks. ``check_shapes[i]``: whether update i's gradients'
    shapes must be checked (the plan's own flag). The constants in ``plan.template`` are
    read while tracing (the Session sets them after compiling the plan)."""
    updates = plan.updates

    def body(feeds, donated, kept, traced_hyper, traced_draws, static_hyper):
        counter[0] += 1  # a trace (tests count them)
        values = list(plan.template)
        for slots, group in ((layout.feeds, feeds), (layout.donated, donated),
                             (layout.kept, kept)):
            for s, value in zip(slots, group):
                values[s] = value
        bound = parts.hyper.bound(traced_hyper)
        # Traced, no op reads a value on the host (a tracer has none): label and rate checks
        # mark bad entries NaN, and fed labels and rates are checked before the call (fed.py).
        with parts.draws.tracing(traced_draws), parts.checks.tracing(), \
                run_context.reading(False):
            program(values)
            new = _new_values(updates, check_shapes, values, xp, bound)
            counts = parts.checks.counts()
        return tuple(values[s] for s in layout.computed), new, counts

    return body


class UpdateShapeError(Exception):
    """An update's gradient does not fit its Variable (found while tracing): the run fails
    as the Session's commit would fail it, and the plan stays compiled."""

    def __init__(self, update, problem):
        super().__init__(problem)
        self.update, self.problem = update, problem


def _new_values(updates, checks, values, xp, bound) -> tuple:
    """Every update's new values, in order; all shapes checked before the first update, as
    the Session's commit does. An optimizer's update is traced with its copy in ``bound``
    (its hyper-parameters as tracers)."""
    args = [update.gather(values) for update in updates]
    for update, check, a in zip(updates, checks, args):
        shape_problem = getattr(update.op, "shape_problem", None) if check else None
        problem = shape_problem(a) if shape_problem is not None else None
        if problem:
            raise UpdateShapeError(update, problem)
    new = []
    for update, a in zip(updates, args):
        op, twin = update.op, bound.get(id(getattr(update.op, "optimizer", None)))
        if twin is not None:  # a copy of the op, not the graph's, reads the tracers
            op = copy.copy(op)
            op.optimizer = twin
        new.extend(op.forward(xp, *a))
    return tuple(new)
