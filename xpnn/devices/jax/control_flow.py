"""Control flow on JAX: the functions of ``xpnn.control_flow.eager`` with ``lax``, so a
plan with a cond or a loop is still one ``jax.jit`` call. A branch or a body is the
portable program of its plan (``Program``), traced inline. A loop whose gradient is built
keeps its history: a ``while_loop`` then runs as a ``lax.scan`` over its
``maximum_iterations`` (each step past the end keeps the state), as TF1's XLA needs.
Outside a trace (passes off, ``check_numerics``, a plan that fell back to its portable
program) the ops run in Python (``EAGER``): only the branch taken runs, and its ops may
read values on the host.

>>> import xpnn as xn
>>> i = xn.while_loop(lambda i: i < 5, lambda i: i + 2, xn.constant(0, "int32"))
>>> xn.Session(backend="jax").run(i).item()
6
"""

from __future__ import annotations

from ...control_flow.eager import EAGER


def _lax():
    import jax

    return jax.lax, jax.numpy, jax.tree_util


def _tracing() -> bool:
    """Whether a ``jax.jit`` is being traced here: a new array is then a tracer."""
    import jax

    return isinstance(jax.numpy.zeros(()), jax.core.Tracer)


class JaxControlFlow:
    """lax.cond, lax.while_loop and lax.scan for the control-flow ops, inside a trace."""

    def cond(self, pred, true_fn, false_fn) -> tuple:
        if not _tracing():
            return EAGER.cond(pred, true_fn, false_fn)
        lax, _, _ = _lax()
        return lax.cond(pred, true_fn, false_fn)

    def while_loop(self, cond_fn, body_fn, state, limit, keep, check):
        lax, jnp, tree = _lax()
        if keep and limit is None:
            raise ValueError(
                "a differentiated while_loop on JAX needs maximum_iterations (it runs as a "
                "lax.scan over them, as TF1's XLA needs); pass maximum_iterations=")
        if not _tracing():
            return EAGER.while_loop(cond_fn, body_fn, state, limit, keep, check)
        if not keep:
            if limit is None:
                return lax.while_loop(cond_fn, lambda s: tuple(body_fn(s)[0]), state), None
            count, state = lax.while_loop(
                lambda c: (c[0] < limit) & cond_fn(c[1]),
                lambda c: (c[0] + 1, tuple(body_fn(c[1])[0])),
                (jnp.asarray(0, jnp.int32), state))
            return state, None

        def step(carry, _):
            active, state = carry
            active = active & cond_fn(state)
            new, saved = body_fn(state)
            check(new)
            kept = tree.tree_map(lambda n, s: jnp.where(active, n, s), tuple(new), state)
            return (active, kept), ((state, tuple(saved)), active)

        (_, state), history = lax.scan(step, (jnp.asarray(True), tuple(state)), None,
                                       length=limit)
        return state, history

    def while_gradient(self, vjp_fn, history, grads, capture_grads):
        if isinstance(history, list):  # the loop ran eagerly
            return EAGER.while_gradient(vjp_fn, history, grads, capture_grads)
        lax, jnp, tree = _lax()

        def step(carry, xs):
            grads, captures = carry
            kept, active = xs
            new, this = vjp_fn(kept, grads)
            grads = tree.tree_map(lambda n, g: jnp.where(active, n, g), tuple(new), grads)
            captures = tuple(c + jnp.where(active, t, jnp.zeros_like(t))
                             for c, t in zip(captures, this))
            return (grads, captures), None

        (grads, captures), _ = lax.scan(step, (tuple(grads), tuple(capture_grads)), history,
                                        reverse=True)
        return grads, captures

    def scan(self, step_fn, carry, elems, length, reverse, keep, xp):
        if not _tracing():
            return EAGER.scan(step_fn, carry, elems, length, reverse, keep, xp)
        lax, _, _ = _lax()

        def step(carry, xs):
            new, ys, saved = step_fn(carry, xs)
            return tuple(new), (tuple(ys), (carry, tuple(saved)) if keep else None)

        carry, (ys, history) = lax.scan(step, tuple(carry), tuple(elems), length=length,
                                        reverse=reverse)
        return carry, ys, history

    def scan_gradient(self, vjp_fn, history, elems, carry_grads, y_grads, capture_grads,
                      reverse, xp):
        if isinstance(history, list):  # the scan ran eagerly
            return EAGER.scan_gradient(vjp_fn, history, elems, carry_grads, y_grads,
                                       capture_grads, reverse, xp)
        lax, _, _ = _lax()

        def step(carry, xs):
            grads, captures = carry
            kept, x, y_grad = xs
            grads, x_grads, this = vjp_fn(kept, x, grads, y_grad)
            captures = tuple(c + t for c, t in zip(captures, this))
            return (tuple(grads), captures), tuple(x_grads)

        (grads, captures), x_grads = lax.scan(
            step, (tuple(carry_grads), tuple(capture_grads)),
            (history, tuple(elems), tuple(y_grads)), reverse=not reverse)
        return grads, x_grads, captures
