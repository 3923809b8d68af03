"""Finite-difference gradient checks in float64: per element (up to ``max_elements`` per
input, chosen at random when there are more) and along random directions.

>>> import xpnn as xn
>>> x = xn.placeholder(name="x")
>>> w = xn.Variable([[0.5, -1.0], [2.0, 0.3]], name="w")
>>> loss = xn.reduce_sum(xn.tanh(xn.matmul(x, w)))
>>> report = xn.gradcheck(loss, [w, x], {x: [[1.0, 2.0]]})
>>> report.ok, report.max_error < 1e-6
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .autodiff import gradients
from .graph import Node, Placeholder, Variable
from .host import to_numpy
from .session import Session


class GradcheckError(AssertionError):
    """Raised when analytic and numeric gradients disagree beyond the tolerance."""


@dataclass
class InputCheck:
    """The comparison for one input: worst entries and directional errors."""

    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    worst: list = field(default_factory=list)  # (index, analytic, numeric)
    direction_errors: list = field(default_factory=list)  # (analytic, numeric)
    ok: bool = True

    def __str__(self) -> str:
        lines = [
            f"{self.name} {self.shape}: max abs error {self.max_abs_error:.3e}, "
            f"max rel error {self.max_rel_error:.3e}{'' if self.ok else '  <-- FAILED'}"
        ]
        for index, a, n in self.worst:
            lines.append(f"    at {index}: analytic {a:+.8e}  numeric {n:+.8e}")
        for a, n in self.direction_errors:
            lines.append(f"    random direction: analytic {a:+.8e}  numeric {n:+.8e}")
        return "\n".join(lines)


@dataclass
class GradcheckReport:
    checks: list
    eps: float
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def max_error(self) -> float:
        """The largest relative error over all inputs."""
        return max((c.max_rel_error for c in self.checks), default=0.0)

    def __str__(self) -> str:
        head = f"gradcheck (eps={self.eps:g}, rtol={self.rtol:g}, atol={self.atol:g}):"
        return "\n".join([head] + [str(c) for c in self.checks])


def gradcheck(loss: Node, wrt, feed_dict=None, *, eps=1e-6, rtol=1e-4, atol=1e-6,
              max_elements=100, n_directions=2, seed=0, device=None, backend=None,
              session: Session | None = None, raise_on_failure=True) -> GradcheckReport:
    """Compare ``gradients(loss, wrt)`` with central differences of the sum of ``loss``,
    everything in float64 on ``device``/``backend`` (or those of ``session``, whose
    current Variable values are the point checked). ``wrt`` may hold Variables and
    Placeholders. Raises :class:`GradcheckError` with the worst entries on failure."""
    wrt = list(wrt) if isinstance(wrt, (list, tuple)) else [wrt]
    feed_dict = dict(feed_dict or {})
    if session is not None:
        device, backend = session.device, None
    sess = Session(loss.graph, device=device, backend=backend, dtype="float64")
    if session is not None:
        for variable, value in session._values.items():
            sess.set_value(variable, to_numpy(value))
    host_feeds = {p: np.asarray(to_numpy(v)) for p, v in feed_dict.items()}
    for p, v in host_feeds.items():
        if v.dtype.kind == "f":
            host_feeds[p] = v.astype("float64")

    grad_nodes = gradients(loss, wrt)
    analytic = sess.run([g for g in grad_nodes if g is not None], host_feeds, to_numpy=True)
    grads = iter(analytic)
    rng = np.random.default_rng(seed)
    checks = []
    for node, g in zip(wrt, grad_nodes):
        if not isinstance(node, (Variable, Placeholder)):
            raise TypeError(f"gradcheck: {node.label} is not a Variable or placeholder")
        base = _value(sess, node, host_feeds)
        grad = np.zeros_like(base) if g is None else next(grads).astype("float64")

        def f(value, node=node):
            return _loss_at(sess, loss, node, value, host_feeds)

        checks.append(_check(node, base, grad, f, eps, rtol, atol, max_elements, n_directions, rng))
        _restore(sess, node, base, host_feeds)

    report = GradcheckReport(checks, eps, rtol, atol)
    if raise_on_failure and not report.ok:
        raise GradcheckError(str(report))
    return report


def _value(sess, node, feeds):
    if isinstance(node, Variable):
        return to_numpy(sess.get_value(node)).astype("float64")
    if node not in feeds:
        raise ValueError(f"gradcheck: placeholder {node.label} needs a value in feed_dict")
    return feeds[node].astype("float64")


def _restore(sess, node, value, feeds):
    if isinstance(node, Variable):
        sess.set_value(node, value)
    else:
        feeds[node] = value


def _loss_at(sess, loss, node, value, feeds) -> float:
    _restore(sess, node, value, feeds)
    return float(np.sum(sess.run(loss, feeds, to_numpy=True)))


def _check(node, base, grad, f, eps, rtol, atol, max_elements, n_directions, rng):
    flat = base.reshape(-1)
    indices = np.arange(flat.size)
    if flat.size > max_elements:
        indices = np.sort(rng.choice(flat.size, max_elements, replace=False))
    numeric = np.empty(indices.size)
    for k, i in enumerate(indices):
        step = np.zeros_like(flat)
        step[i] = eps
        numeric[k] = (f((flat + step).reshape(base.shape)) - f((flat - step).reshape(base.shape)))
        numeric[k] /= 2 * eps
    analytic = grad.reshape(-1)[indices]
    abs_err = np.abs(analytic - numeric)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-12)
    bad = abs_err > atol + rtol * np.abs(numeric)

    directions = []
    for _ in range(n_directions):
        d = rng.standard_normal(base.shape)
        d /= np.linalg.norm(d) or 1.0
        num = (f(base + eps * d) - f(base - eps * d)) / (2 * eps)
        ana = float(np.sum(grad * d))
        directions.append((ana, num))
    dir_bad = [abs(a - n) > atol + rtol * abs(n) for a, n in directions]

    order = np.argsort(-abs_err)[:3]
    worst = [
        (tuple(int(j) for j in np.unravel_index(indices[o], base.shape)), analytic[o], numeric[o])
        for o in order
    ]
    return InputCheck(
        name=node.label,
        shape=tuple(base.shape),
        max_abs_error=float(abs_err.max(initial=0.0)),
        max_rel_error=float((abs_err / scale).max(initial=0.0)),
        worst=worst,
        direction_errors=directions,
        ok=not (bad.any() or any(dir_bad)),
    )
