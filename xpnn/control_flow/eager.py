"""How control-flow ops run their bodies where a device has no compiled form of its own
(``Device.control_flow`` None: NumPy, array-api-strict, PyTorch, CuPy): in Python, each
body a compiled plan of the Session (``Body.function``), a branch taken or an iteration a
call. A loop's condition is read on the host each iteration (on a GPU, the one
synchronisation a data-dependent loop needs). The JAX device's ``control_flow`` gives the
same functions with ``lax.cond``, ``lax.while_loop`` and ``lax.scan``
(``xpnn/devices/jax/control_flow.py``). Values are tuples of arrays; a body is a function
of tuples.

>>> import numpy as np
>>> EAGER.while_loop(lambda s: s[0] < 3, lambda s: ((s[0] + 1,), ()), (np.asarray(0),),
...                  None, False, lambda s: None)[0][0].item()
3
"""

from __future__ import annotations


class EagerControlFlow:
    """Control flow as Python ``if`` and ``for``."""

    def cond(self, pred, true_fn, false_fn) -> tuple:
        """``true_fn()`` if ``pred`` else ``false_fn()``."""
        return true_fn() if bool(pred) else false_fn()

    def while_loop(self, cond_fn, body_fn, state, limit, keep, check):
        """``state, saved = body_fn(state)`` while ``cond_fn(state)`` holds and fewer than
        ``limit`` (None: no limit) iterations ran; ``check(state)`` refuses a result that
        breaks the loop's shape invariants. Returns (state, history): where ``keep``,
        (the state each iteration started from, its saved values) per iteration."""
        history = [] if keep else None
        count = 0
        while (limit is None or count < limit) and bool(cond_fn(state)):
            new, saved = body_fn(state)
            if keep:
                history.append((state, saved))
            state = new
            check(state)
            count += 1
        return state, history

    def while_gradient(self, vjp_fn, history, grads, capture_grads):
        """``grads, this = vjp_fn(kept, grads)`` over ``history`` in reverse, the
        captures' gradients summed from ``capture_grads`` (zeros). Returns both."""
        for kept in reversed(history):
            grads, this = vjp_fn(kept, grads)
            capture_grads = tuple(a + b for a, b in zip(capture_grads, this))
        return grads, capture_grads

    def scan(self, step_fn, carry, elems, length, reverse, keep, xp):
        """``carry, ys_t, saved = step_fn(carry, xs_t)`` for t along the elems' first axis
        (last to first where ``reverse``). Returns (carry, each y stacked on a new first
        axis in time order, history: where ``keep``, (the carry each step started from,
        its saved values) per step)."""
        ys, history = [None] * length, [] if keep else None
        for t in _steps(length, reverse):
            new, ys[t], saved = step_fn(carry, tuple(e[t, ...] for e in elems))
            if keep:
                history.append((carry, saved))
            carry = new
        return carry, _stacked(xp, ys), history

    def scan_gradient(self, vjp_fn, history, elems, carry_grads, y_grads, capture_grads,
                      reverse, xp):
        """``carry_grads, x_grads_t, this = vjp_fn(kept_t, xs_t, carry_grads,
        y_grads_t)`` over the steps in reverse (``kept_t``: the step's history entry).
        Returns (the first carry's gradients, the x gradients stacked in time order, the
        captures' gradients summed)."""
        length = len(history)
        x_grads = [None] * length
        for position, t in reversed(list(enumerate(_steps(length, reverse)))):
            carry_grads, x_grads[t], this = vjp_fn(
                history[position], tuple(e[t, ...] for e in elems), carry_grads,
                tuple(g[t, ...] for g in y_grads))
            capture_grads = tuple(a + b for a, b in zip(capture_grads, this))
        return carry_grads, _stacked(xp, x_grads), capture_grads


def _steps(length, reverse):
    return range(length - 1, -1, -1) if reverse else range(length)


def _stacked(xp, rows) -> tuple:
    """Per-step tuples of arrays as one array per position, stacked on axis 0."""
    return tuple(xp.stack(column, axis=0) for column in zip(*rows))


EAGER = EagerControlFlow()
