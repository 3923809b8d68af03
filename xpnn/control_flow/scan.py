"""Loops over a sequence: ``scan_loop(fn, carry, elems)`` (lax.scan's form: a carry and
per-step outputs, what recurrent layers run on), and TF1's ``scan``, ``foldl`` and
``foldr`` on top of it. The elements are sliced along their first axis; the per-step
outputs come back stacked on a new first axis. The gradient keeps each step's carry and
runs the step's gradient in reverse.

>>> import xpnn as xn
>>> xs = xn.constant([1.0, 2.0, 3.0, 4.0])
>>> sums = xn.scan(lambda total, x: total + x, xs, initializer=xn.constant(0.0))
>>> xn.Session().run(sums).tolist()
[1.0, 3.0, 6.0, 10.0]
"""

from __future__ import annotations

from .. import ops
from ..graph import as_node, get_default_graph
from ..ops.outputs import MultiOutput
from .cond import control_flow_of
from .function_graph import differentiable, floating, keep_for_gradient, once_each, trace


class Scan(MultiOutput):
    """Inputs: the initial carry, the elements, the step's captured nodes. Outputs: the
    final carry, the stacked per-step outputs, the history its gradient reads."""

    runs_bodies = True
    keeps_history = False  # set when its gradient is built

    def __init__(self, carry, elems, body, reverse, name=None):
        self.body, self.reverse = body, reverse
        self.n_carry, self.n_elems = len(carry), len(elems)
        super().__init__(*carry, *elems, *body.captured, name=name)
        length = _length(elems)
        ys = body.outputs[len(carry):]
        self.make_outputs([c.shape for c in carry]
                          + [None if y.shape is None else (length,) + tuple(y.shape) for y in ys]
                          + [None], [c.dtype for c in carry] + [y.dtype for y in ys] + [None])

    @property
    def bodies(self) -> list:
        return [("step", self.body)]

    def forward(self, xp, *values, session):
        nc, ne = self.n_carry, self.n_elems
        carry, elems, caps = values[:nc], values[nc: nc + ne], values[nc + ne:]
        length = elems[0].shape[0]
        if any(e.shape[0] != length for e in elems) or length == 0:
            raise ValueError(f"{self.label}: the elements must share a first axis of at least "
                             f"one step, got shapes {[tuple(e.shape) for e in elems]}")
        keep = self.keeps_history
        step_f = (self.saving_body if keep else self.body).function(session)
        ny = len(self.body.outputs) - nc

        def step(carry, xs):  # (new carry, the step's outputs, what its gradient reads)
            out = step_f(*carry, *xs, *caps)
            return out[:nc], out[nc: nc + ny], out[nc + ny:]

        carry, ys, history = control_flow_of(session).scan(
            step, tuple(carry), tuple(elems), length, self.reverse, keep, xp)
        return (*carry, *ys, history)

    def backward_outputs(self, grads):
        nc, ne = self.n_carry, self.n_elems
        seeds = [g for g, out in zip(self.output_gradients(grads)[:-1], self.outputs[:-1])
                 if floating(out.dtype)]
        captured = self.inputs[nc + ne:]
        targets = differentiable(captured)
        keep_for_gradient(self, targets)
        grad = ScanGradient(self, seeds, self.vjp, targets)
        outs = iter(grad.outputs)
        result = [next(outs) if floating(v.dtype) else None for v in self.inputs[: nc + ne]]
        return result + once_each(captured, {t: next(outs) for t in targets})


class ScanGradient(MultiOutput):
    """The gradient of a Scan: the step's gradient (``vjp``) over the history in reverse.
    Inputs: the history, the elements, the seeds (floating carry's, then floating
    outputs'), the targets, the vjp's captured nodes. Outputs: the floating initial carry's
    gradients, the floating elements', the targets'."""

    runs_bodies = True

    def __init__(self, scan, seeds, vjp, targets):
        self.scan, self.vjp = scan, vjp
        nc, ne = scan.n_carry, scan.n_elems
        carry, elems = scan.inputs[:nc], scan.inputs[nc: nc + ne]
        self.n_carry_seeds = sum(floating(c.dtype) for c in carry)
        self.n_x = sum(floating(e.dtype) for e in elems)
        self.n_seeds, self.n_targets = len(seeds), len(targets)
        wanted = [c for c in carry if floating(c.dtype)] + [e for e in elems if floating(e.dtype)]
        super().__init__(scan.outputs[-1], *elems, *seeds, *targets, *vjp.captured)
        wanted += targets
        self.make_outputs([w.shape for w in wanted], [w.dtype for w in wanted])

    @property
    def bodies(self) -> list:
        return [("gradient of step", self.vjp)]

    def forward(self, xp, history, *values, session):
        ne, ns, nt = self.scan.n_elems, self.n_seeds, self.n_targets
        elems, seeds = values[:ne], values[ne: ne + ns]
        targets, caps = values[ne + ns: ne + ns + nt], values[ne + ns + nt:]
        vjp, k, n_x = self.vjp.function(session), self.n_carry_seeds, self.n_x

        def step(kept, xs, carry_grads, y_grads):  # kept: (a step's carry, saved values)
            carry, saved = kept
            out = vjp(*carry, *xs, *carry_grads, *y_grads, *saved, *caps)
            return out[:k], out[k: k + n_x], out[k + n_x:]

        zeros = tuple(xp.zeros_like(t) for t in targets)
        carry_grads, x_grads, capture_grads = control_flow_of(session).scan_gradient(
            step, history, tuple(elems), tuple(seeds[:k]), tuple(seeds[k:]), zeros,
            self.scan.reverse, xp)
        return (*carry_grads, *x_grads, *capture_grads)

    def backward_outputs(self, grads):
        raise NotImplementedError(
            f"{self.label}: gradients of a scan's gradient (second order through a loop) are "
            "not supported")


def _length(elems):
    lengths = {e.shape[0] for e in elems if e.shape}
    return lengths.pop() if len(lengths) == 1 else None


def scan_loop(fn, carry, elems, reverse=False, name=None):
    """``carry, ys = fn(carry, xs)`` for each step along the first axis of ``elems`` (a node
    or a list of nodes; ``xs`` the step's slices), from the last step to the first where
    ``reverse``. ``carry`` is a node or a list of nodes, ``fn`` returns the new carry (same
    structure, dtypes and shapes) and the step's outputs (a node or a list). Returns
    (final carry, outputs stacked on a new first axis in time order), as ``jax.lax.scan``.

    >>> import xpnn as xn
    >>> last, running = xn.control_flow.scan_loop(
    ...     lambda c, x: (c + x, c * x), xn.constant(1.0), xn.constant([2.0, 3.0]))
    >>> xn.Session().run([last, running], to_numpy=True)[1].tolist()
    [2.0, 9.0]
    """
    graph = get_default_graph()
    single_carry = not isinstance(carry, (list, tuple))
    single_elem = not isinstance(elems, (list, tuple))
    carry = [as_node(c, graph) for c in ([carry] if single_carry else carry)]
    elems = [as_node(e, graph) for e in ([elems] if single_elem else elems)]
    if not elems:
        raise ValueError("scan_loop needs at least one sequence in elems")
    for e in elems:
        if e.shape is not None and len(e.shape) == 0:
            raise ValueError(f"scan_loop: {e.label} is a scalar; elems are sliced along their "
                             "first axis")
    label = name or "scan"
    shapes = [c.shape for c in carry] + [None if e.shape is None else tuple(e.shape[1:])
                                         for e in elems]
    structure = {}

    def step(*args):
        c = args[: len(carry)]
        x = args[len(carry):]
        new, ys = fn(c[0] if single_carry else list(c), x[0] if single_elem else list(x))
        new = [new] if single_carry else list(new)
        structure["single_y"] = not isinstance(ys, (list, tuple))
        ys = [ys] if structure["single_y"] else list(ys)
        structure["n_y"] = len(ys)
        return new + ys

    body = trace(step, carry + elems, f"{label}/step", shapes)
    _check_carry(label, carry, body.outputs[: len(carry)])
    op = Scan(carry, elems, body, bool(reverse), name=name)
    n = len(carry)
    final, ys = op.outputs[:n], op.outputs[n: n + structure["n_y"]]
    return (final[0] if single_carry else final), (ys[0] if structure["single_y"] else ys)


def _check_carry(label, carry, outputs) -> None:
    if len(outputs) != len(carry):
        raise ValueError(f"{label}: fn returned {len(outputs)} carry values for {len(carry)}")
    for k, (c, out) in enumerate(zip(carry, outputs)):
        if None not in (c.dtype, out.dtype) and c.dtype != out.dtype:
            raise TypeError(f"{label}: carry {k} enters as {c.dtype} and fn returns "
                            f"{out.dtype}; cast it in fn (xn.cast)")
        if c.shape is not None and out.shape is not None and (len(c.shape) != len(out.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(c.shape, out.shape))):
            raise ValueError(f"{label}: carry {k} enters with shape {c.shape} and fn returns "
                             f"shape {out.shape}; a carry keeps its shape")


def scan(fn, elems, initializer=None, reverse=False, name=None):
    """TF1's ``tf.scan``: ``acc = fn(acc, x)`` over ``elems``' first axis, every ``acc``
    stacked. Without ``initializer`` the first element is the initial ``acc`` (and the
    result's first row). ``acc`` and ``elems`` may be lists of nodes.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.scan(lambda a, x: a * x, xn.constant([1.0, 2.0, 3.0]))).tolist()
    [1.0, 2.0, 6.0]
    """
    first, elems, initializer = _initial(elems, initializer, reverse)

    def step(acc, x):
        new = fn(acc, x)
        return new, new

    _, stacked = scan_loop(step, initializer, elems, reverse=reverse, name=name)
    if first is None:
        return stacked
    joined = [ops.concat([f[None], s], 0) if not reverse else ops.concat([s, f[None]], 0)
              for f, s in zip(_listed(first), _listed(stacked))]
    return joined if isinstance(stacked, list) else joined[0]


def foldl(fn, elems, initializer=None, name=None):
    """TF1's ``tf.foldl``: ``acc = fn(acc, x)`` from the first element to the last; the
    final ``acc``.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.foldl(lambda a, x: a - x, xn.constant([1.0, 2.0]), 10.0)).item()
    7.0
    """
    return _fold(fn, elems, initializer, False, name)


def foldr(fn, elems, initializer=None, name=None):
    """TF1's ``tf.foldr``: as ``foldl`` from the last element to the first."""
    return _fold(fn, elems, initializer, True, name)


def _fold(fn, elems, initializer, reverse, name):
    _, elems, initializer = _initial(elems, initializer, reverse)
    final, _ = scan_loop(lambda acc, x: (fn(acc, x), []), initializer, elems,
                         reverse=reverse, name=name)
    return final


def _initial(elems, initializer, reverse):
    """(the first element used as initializer or None, the elements left, initializer)."""
    if initializer is not None:
        return None, elems, initializer
    pick = (lambda e: e[-1]) if reverse else (lambda e: e[0])
    rest = (lambda e: e[:-1]) if reverse else (lambda e: e[1:])
    graph = get_default_graph()
    listed = [as_node(e, graph) for e in _listed(elems)]
    first = [pick(e) for e in listed]
    left = [rest(e) for e in listed]
    if isinstance(elems, (list, tuple)):
        return first, left, first
    return first[0], left[0], first[0]


def _listed(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]
