"""Random draws in a compiled plan. A random op (dropout, ``xn.random_normal``...) calls
``draw(op, shape, dtype)``, which on the portable path draws on the host from the Session's
generator or the op's own stream (``Session.draw``). A compiled function cannot draw at run
time, and a draw made while tracing would be baked into it as a constant, so the plan's
first trace records the draws it asks for, and each run makes exactly those, in the same
order, from the same generators, and passes them in: the values are the portable path's,
bit for bit, and new at every run.

>>> from xpnn.devices.jax.draws import Draws
>>> draws = Draws(lambda op, shape, dtype, on_host=False: ("drawn", shape))
>>> draws.draw(None, (2,), "float32")  # outside a trace: the Session's own draw
('drawn', (2,))
"""

from __future__ import annotations

import contextlib


class Draws:
    """The ``draw`` that a compiled plan's random steps are bound to."""

    def __init__(self, session_draw):
        self._session_draw = session_draw
        self._replay = None  # an iterator over the traced draws passed in
        self._record = None  # a list of (op, shape, dtype) being recorded
        self.recorded = []  # what the last trace recorded

    def draw(self, op, shape, dtype):
        if self._replay is not None:
            return next(self._replay)
        if self._record is None:  # an eager run (a plan that fell back): draw as always
            return self._session_draw(op, shape, dtype)
        import jax.numpy as jnp

        self._record.append((op, tuple(shape), dtype))
        return jnp.zeros(tuple(shape), dtype=dtype)  # a stand-in while recording

    @contextlib.contextmanager
    def tracing(self, passed):
        """Within a trace: replay ``passed`` (the draws made for this run), or record what
        is asked for into ``recorded`` when nothing was passed (a plan's first trace)."""
        self.recorded = []
        if passed:
            self._replay = iter(passed)
        else:
            self._record = self.recorded
        try:
            yield
        finally:
            self._replay = self._record = None

    def make(self, specs) -> tuple:
        """This run's draws for ``specs`` (recorded by ``tracing``), on the host."""
        return tuple(self._session_draw(op, shape, dtype, on_host=True)
                     for op, shape, dtype in specs)
