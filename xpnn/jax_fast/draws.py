"""Random draws in a compiled plan. A random op (dropout) calls ``uniform(shape, dtype)``,
which on the portable path draws on the host from the Session's generator. A compiled
function cannot draw at run time, so the plan's first trace records the draws it asks for,
and each run makes exactly those, in the same order, from the same generator, and passes
them in: the masks are the portable path's, bit for bit.

>>> from xpnn.jax_fast.draws import Draws
>>> draws = Draws(lambda shape, dtype, on_host=False: ("drawn", shape))
>>> draws.uniform((2,), "float32")  # outside a trace: the Session's own draw
('drawn', (2,))
"""

from __future__ import annotations

import contextlib


class Draws:
    """The ``uniform`` that a compiled plan's random steps are bound to."""

    def __init__(self, session_uniform):
        self._session_uniform = session_uniform
        self._replay = None  # an iterator over the traced draws passed in
        self._record = None  # a list of (shape, dtype) being recorded
        self.recorded = []  # what the last trace recorded

    def uniform(self, shape, dtype):
        if self._replay is not None:
            return next(self._replay)
        if self._record is None:  # an eager run (a plan that fell back): draw as always
            return self._session_uniform(shape, dtype)
        import jax.numpy as jnp

        self._record.append((tuple(shape), dtype))
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
        return tuple(self._session_uniform(shape, dtype, on_host=True) for shape, dtype in specs)
