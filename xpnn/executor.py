"""Executors: what a Session runs for a compiled plan. ``Device.compile(plan, session)``
returns one: ``run(values)`` runs every step on one run's values, ``commit(values)`` writes
the run's Variable updates once the Session has checked them (nothing is written before
every check has passed: a failed step changes no Variable).

``Executor`` here is the portable one: the plan's steps as one straight-line function, and
each update's portable rule. It is what ``Session(passes=False)`` runs on every device, and
the reference every device's executor is tested against. A device's executor subclasses
it and keeps its own state (a compiled call, the updates it writes in place); the Plan
stays what the portable compiler made, its steps' functions aside, which a device's passes
may swap for kernels.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     w = xn.Variable([1.0, 2.0])
...     step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
...     sess = xn.Session(passes=False)
...     sess.run(step)
>>> [type(e).__name__ for e in sess._executors.values()], sess.run(w).tolist()
(['Executor'], [0.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Callable

from . import ops
from .plan import StepFailed, last_uses, shared_fetches


class Executor:
    """Runs ``plan`` for ``session``: its straight-line program, then the portable commit.
    A device's executor overrides ``passes`` (run before the program is made) and says what
    differs in its attributes."""

    host_feeds = False  # host NumPy feeds of the placeholder's dtype are passed as they are
    # fn(feed_dict) -> the fetched values, or None: the Session's repeated run (the last
    # run's fetches and fed placeholders) served without the Session's own look at it,
    # where the executor can tell that every check would pass unseen (JAX's runner).
    repeat = None
    checks_shapes = True  # the Session checks the updates' gradient shapes before commit

    def __init__(self, plan, session):
        self.plan, self.device = plan, session.device
        self.state = session._values  # Variable -> value: what a commit writes
        self.check_numerics = session.check_numerics
        # Fetched slots handed out as copies (kept between runs, or updated in place).
        self.copies = shared_fetches(plan) if self.device.mutable else frozenset()
        self.portable = tuple(plan.updates)  # updates computed by their portable rule
        # (update, its op's shape_problem): the gradients' shapes the Session checks before
        # the commit, where static shapes do not prove them (``checks_shapes``).
        self.shape_checks = tuple(
            (update, update.op.shape_problem) for update in plan.updates
            if update.check_shapes and getattr(update.op, "shape_problem", None) is not None)
        self.in_place = ()  # updates written into the Variables' arrays by ``write``
        self.write = None
        self.passes(plan, session)
        if self.check_numerics:
            for step in plan.steps:
                if step.kind == "value":
                    step.fn = _checked(step.fn, session.xp)
        self.program = straight_line(plan.steps, _frees(plan))
        self.call = self.program  # what ``run`` calls: a device may call more around it

    def passes(self, plan, session) -> None:
        """The device's passes over ``plan``, before its program is made: none here."""

    def update_in_place(self, chosen, write: Callable) -> None:
        """Let ``write(values)`` apply the ``chosen`` updates, in place, at each commit,
        after the other updates' new values are computed and before they are written."""
        self.in_place = tuple(chosen)
        self.portable = tuple(u for u in self.plan.updates if u not in self.in_place)
        self.write = write
        if not self.portable:  # the whole commit: no call around it
            self.commit = write

    def run(self, values) -> None:
        """Run every step on ``values``; a failure raises StepFailed naming its step."""
        try:
            self.call(values)
        except Exception as exc:
            failure = self.failure(exc)
            if failure is None:
                raise
            raise failure from exc

    def failure(self, exc):
        """A StepFailed naming the step of the program that raised ``exc``, or None where
        no step did (the Session calls ``call`` itself: a frame less per run)."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != _PROGRAM:
            tb = tb.tb_next
        return None if tb is None else StepFailed(self.plan.steps[tb.tb_lineno - 2], exc)

    def commit(self, values) -> None:
        """Write the run's updates: the portable ones' new values, all computed (and checked,
        under ``check_numerics``) before the first is written; a failure raises StepFailed
        naming the update."""
        new = self.new_values(values, self.portable) if self.portable else ()
        if self.write is not None:
            self.write(values)
        state = self.state
        for variable, value in new:
            state[variable] = value

    def new_values(self, values, updates) -> list:
        """(Variable, new value) for each of ``updates``, by its portable rule."""
        device, new = self.device, []
        for update in updates:
            args = update.gather(values)
            try:
                result = update.op.forward(device.xp, *args)
            except Exception as exc:
                raise StepFailed(update, exc) from exc
            result = [device.keep(value, args) for value in result]
            if self.check_numerics:
                for variable, value in zip(update.op.targets, result):
                    problem = ops.nonfinite(device.xp, value)
                    if problem is not None:
                        raise StepFailed(update, FloatingPointError(
                            f"the new value of Variable {variable.label} has {problem}"))
            new.extend(zip(update.op.targets, result))
        return new


def _checked(fn, xp):
    """fn, failing on a result that holds NaN or infinity (``Session(check_numerics=True)``);
    the Session names the op and its inputs."""

    def checked(*inputs):
        value = fn(*inputs)
        if isinstance(value, tuple):  # a control-flow op's outputs: each is checked inside
            return value
        problem = ops.nonfinite(xp, value)
        if problem is not None:
            raise FloatingPointError(f"its result has {problem} (check_numerics is on)")
        return value

    return checked


def _frees(plan) -> dict:
    """step index -> the slots freed after it: each intermediate after its last reader."""
    keep = {s for s in plan.fetch_slots if s is not None}
    loaded = (set(plan.variables) | set(plan.constants)
              | {f.slot for f in plan.feeds} | set(plan.static))
    frees = {}
    for s, index in last_uses(plan).items():
        if s not in keep and s not in loaded and index < len(plan.steps):
            frees.setdefault(index, []).append(s)
    return frees


_PROGRAM = "<xpnn plan>"


def straight_line(steps, frees) -> Callable:
    """The steps as one Python function, a line per step, ``v[out] = f3(v[1], v[4])``, then
    the frees: no loop, no gather call and no tuple to unpack per step, which is a visible
    share of a small training step (benchmarks/README.md). ``Executor.run`` tells a failed
    step by its line."""
    names = {f"f{index}": step.fn for index, step in enumerate(steps)}
    lines = ["def program(v):"]
    for index, step in enumerate(steps):
        args = ", ".join(f"v[{s}]" for s in step.inputs)
        lines.append(f"    v[{step.out}] = f{index}({args})"
                     + "".join(f"; v[{s}] = None" for s in frees.get(index, ())))
    lines.append("    return None")
    exec(compile("\n".join(lines), _PROGRAM, "exec"), names)
    return names["program"]


class Program(Executor):
    """A plan's straight-line program alone (no passes, no checks, no updates): what a
    device runs for a cond branch or loop body that it traces into its compiled call."""

    def __init__(self, plan):
        self.plan, self.copies = plan, frozenset()
        self.call = self.program = straight_line(plan.steps, _frees(plan))
