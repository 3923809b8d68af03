"""``check_numerics`` ops in a compiled plan. The portable op reads its value on the host and
raises on NaN or infinity, which a traced function cannot do. Here the compiled function
counts the NaNs and infinities of each checked value instead (one small output), and the run
reads the counts after the call: a check that found any fails the run with the portable
path's error (the op, its message, the counts, its input's shape and dtype). The run's new
Variable values are dropped, and a plan with checks donates no buffer, so every Variable
keeps its value. (By then the Session's generator has made all the run's random draws, not
only those before the failing op, as the portable path would have.)

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(name="x")
...     sess = xn.Session(backend="jax")
...     try:
...         sess.run(xn.check_numerics(xn.log(x), "log of x"), {x: [1.0, -1.0]})
...     except xn.NumericsError as error:
...         print(str(error).splitlines()[0].split(" failed: ")[1])
log of x: 1 NaN and 0 inf in float32 shape (2,)
"""

from __future__ import annotations

import contextlib

import numpy as np

from ... import ops
from ...plan import Description, StepFailed


class Checks:
    """The plan's CheckNumerics steps, given functions that count while tracing."""

    def __init__(self, plan, xp):
        self.xp = xp
        self.steps = [step for step in plan.steps
                      if type(step.op) is ops.CheckNumerics and step.kind == "value"]
        self._found = None  # while tracing: [(what, counts)]
        self.recorded = []  # what the last trace checked: (step, shape, dtype) each
        for step in self.steps:
            step.fn = self._counting(step, step.fn)

    def _counting(self, step, portable):
        xp = self.xp

        def check(x):
            if self._found is None:  # an eager run (a plan that fell back)
                return portable(x)
            if xp.isdtype(x.dtype, "real floating"):
                counts = xp.stack([xp.sum(xp.isnan(x)), xp.sum(xp.isinf(x))])
                self._found.append(((step, tuple(x.shape), x.dtype), counts))
            return x

        return check

    @contextlib.contextmanager
    def tracing(self):
        self._found = []
        try:
            yield
        finally:
            self.recorded, self._found = [what for what, _ in self._found], None

    def counts(self):
        """Within the trace, after the program: the counts, one output (None: no check)."""
        return self.xp.stack([c for _, c in self._found]) if self._found else None

    @staticmethod
    def raise_found(recorded, counts, values) -> None:
        """Raise StepFailed for the first check (in the plan's order) whose value held a NaN
        or an infinity; its input's description goes into ``values`` for the message."""
        for (step, shape, dtype), (nans, infs) in zip(recorded, np.asarray(counts)):
            if nans or infs:
                problem = f"{int(nans)} NaN and {int(infs)} inf in {np.dtype(dtype)} shape {shape}"
                values[step.inputs[0]] = Description(shape, dtype)
                raise StepFailed(step, FloatingPointError(f"{step.op.message}: {problem}"))
