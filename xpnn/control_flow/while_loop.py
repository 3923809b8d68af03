"""``while_loop(cond, body, loop_vars)``, TF1's: the body runs while the condition holds,
each loop variable keeping its dtype and (unless ``shape_invariants`` loosens it) its shape.
Its gradient keeps the state each iteration started from (TF1's forward stacks) and runs
the body's gradient over them in reverse.

>>> import xpnn as xn
>>> x = xn.placeholder(name="x")
>>> _, y = xn.while_loop(lambda i, v: i < 3, lambda i, v: [i + 1, v * v],
...                      [xn.constant(0, "int32"), x])
>>> dy, = xn.gradients(y, [x])            # y = x ** 8
>>> [float(a) for a in xn.Session().run([y, dy], {x: 2.0})]
[256.0, 1024.0]
"""

from __future__ import annotations

from ..graph import as_node, get_default_graph
from ..ops.outputs import MultiOutput
from . import tensor_array
from .cond import control_flow_of
from .function_graph import differentiable, floating, keep_for_gradient, once_each, trace


class WhileLoop(MultiOutput):
    """Inputs: the loop variables, the condition's captured nodes, the body's. Outputs: the
    final variables, then the history its gradient reads (kept once a gradient is built)."""

    runs_bodies = True
    keeps_history = False  # set when its gradient is built (TF1 adds the stacks then)

    def __init__(self, loop_vars, cond_body, body, limit, shapes, name=None):
        self.cond_body, self.body, self.limit = cond_body, body, limit
        self.n_vars, self.shapes = len(loop_vars), shapes
        super().__init__(*loop_vars, *cond_body.captured, *body.captured, name=name)
        self.make_outputs(list(shapes) + [None], [v.dtype for v in loop_vars] + [None])

    @property
    def bodies(self) -> list:
        return [("cond", self.cond_body), ("body", self.body)]

    def forward(self, xp, *values, session):
        n, split = self.n_vars, self.n_vars + len(self.cond_body.captured)
        state, cond_caps, body_caps = values[:n], values[n:split], values[split:]
        keep = self.keeps_history
        cond_f = self.cond_body.function(session)
        body_f = (self.saving_body if keep else self.body).function(session)

        def body(state):  # (new state, what the gradient reads of this iteration)
            out = body_f(*state, *body_caps)
            return out[:n], out[n:]

        state, history = control_flow_of(session).while_loop(
            lambda s: cond_f(*s, *cond_caps)[0], body, tuple(state), self.limit, keep,
            self._check)
        return (*state, history)

    def _check(self, state) -> None:
        for k, (value, shape) in enumerate(zip(state, self.shapes)):
            if shape is not None and (len(value.shape) != len(shape) or any(
                    d is not None and d != v for d, v in zip(shape, value.shape))):
                raise ValueError(
                    f"{self.label}: loop variable {k} has shape {tuple(value.shape)} after an "
                    f"iteration, but its shape invariant is {shape}; pass shape_invariants "
                    "with None for the axes that change")

    def backward_outputs(self, grads):
        n = self.n_vars
        finals, history = self.outputs[:n], self.outputs[n]
        seeds = [g for g, out in zip(self.output_gradients(grads)[:n], finals)
                 if floating(out.dtype)]
        body_captured = self.inputs[n + len(self.cond_body.captured):]
        targets = differentiable(body_captured)
        keep_for_gradient(self, targets)
        grad = WhileGradient(self, history, seeds, self.vjp, targets)
        outs = iter(grad.outputs)
        result = [next(outs) if floating(v.dtype) else None for v in self.inputs[:n]]
        result += [None] * len(self.cond_body.captured)
        return result + once_each(body_captured, {t: next(outs) for t in targets})


class WhileGradient(MultiOutput):
    """The gradient of a WhileLoop: the body's gradient (``vjp``) run over the loop's
    history in reverse. Inputs: the history, the seeds (the final floating variables'
    gradients), the targets (the captures differentiated), the vjp's captured nodes.
    Outputs: the floating initial variables' gradients, then the targets'."""

    runs_bodies = True

    def __init__(self, loop, history, seeds, vjp, targets):
        self.loop, self.vjp = loop, vjp
        self.float_vars = [k for k, v in enumerate(loop.inputs[: loop.n_vars])
                           if floating(v.dtype)]
        self.n_seeds, self.n_targets = len(seeds), len(targets)
        super().__init__(history, *seeds, *targets, *vjp.captured)
        self.make_outputs([s.shape for s in seeds] + [t.shape for t in targets],
                          [s.dtype for s in seeds] + [t.dtype for t in targets])

    @property
    def bodies(self) -> list:
        return [("gradient of body", self.vjp)]

    def forward(self, xp, history, *values, session):
        seeds = values[: self.n_seeds]
        targets = values[self.n_seeds: self.n_seeds + self.n_targets]
        vjp_caps = values[self.n_seeds + self.n_targets:]
        vjp = self.vjp.function(session)
        k = len(seeds)

        def step(kept, grads):  # kept: (an iteration's state, its saved values)
            state, saved = kept
            out = vjp(*state, *grads, *saved, *vjp_caps)
            return out[:k], out[k:]

        zeros = tuple(xp.zeros_like(t) for t in targets)
        grads, capture_grads = control_flow_of(session).while_gradient(
            step, history, tuple(seeds), zeros)
        return (*grads, *capture_grads)

    def backward_outputs(self, grads):
        raise NotImplementedError(
            f"{self.label}: gradients of a while_loop's gradient (second order through a "
            "loop) are not supported; take second derivatives through cond, or unroll")


def while_loop(cond, body, loop_vars, shape_invariants=None, maximum_iterations=None,
               name=None):
    """Run ``body`` while ``cond`` holds, TF1's ``tf.while_loop``: ``cond(*vars)`` returns a
    scalar bool node, ``body(*vars)`` the new variables (same number, dtypes and, unless
    ``shape_invariants`` gives a shape with None axes, shapes). ``maximum_iterations`` (a
    Python int) stops it after that many. Returns the final variables (a list, or a node
    for a single variable passed as a node). Differentiable; on JAX a differentiated loop
    needs ``maximum_iterations`` (it becomes a ``lax.scan``).

    >>> import xpnn as xn
    >>> n = xn.while_loop(lambda n: n < 100, lambda n: n * 2, xn.constant(3, "int32"))
    >>> xn.Session().run(n).item()
    192
    """
    single = not isinstance(loop_vars, (list, tuple))
    graph = get_default_graph()
    loop_vars, arrays = tensor_array.flatten([loop_vars] if single else list(loop_vars))
    loop_vars = [as_node(v, graph) for v in loop_vars]
    if any(arrays):  # TensorArrays go in and out of the bodies as their arrays
        cond, body = _with_arrays(cond, arrays, False), _with_arrays(body, arrays, True)
    if not loop_vars:
        raise ValueError("while_loop needs at least one loop variable")
    if maximum_iterations is not None and not isinstance(maximum_iterations, int):
        raise TypeError("while_loop: maximum_iterations must be a Python int (or None), got "
                        f"{type(maximum_iterations).__name__}")
    shapes = _invariants(loop_vars, shape_invariants)
    label = name or "while"
    cond_body = trace(cond, loop_vars, f"{label}/cond", shapes)
    pred = cond_body.outputs
    if len(pred) != 1 or pred[0].dtype not in (None, "bool") or pred[0].shape not in (None, ()):
        raise TypeError(f"{label}: cond must return one scalar bool node, got "
                        f"{[(p.shape, p.dtype) for p in pred]}")
    loop_body = trace(body, loop_vars, f"{label}/body", shapes)
    _check_body(label, loop_vars, loop_body.outputs, shapes)
    op = WhileLoop(loop_vars, cond_body, loop_body, maximum_iterations, shapes, name=name)
    finals = tensor_array.rebuild(op.outputs[: len(loop_vars)], arrays)
    return finals[0] if single else finals


def _with_arrays(fn, arrays, returns_vars):
    """``fn`` called with TensorArrays where the loop has them; its result flattened."""

    def wrapped(*nodes):
        result = fn(*tensor_array.rebuild(nodes, arrays))
        if not returns_vars:
            return result
        listed = list(result) if isinstance(result, (list, tuple)) else [result]
        return tensor_array.flatten(listed)[0]

    return wrapped


def _invariants(loop_vars, shape_invariants) -> list:
    if shape_invariants is None:
        return [v.shape for v in loop_vars]
    single = not isinstance(shape_invariants, list) or (
        shape_invariants and not isinstance(shape_invariants[0], (list, tuple, type(None))))
    shapes = [shape_invariants] if single and len(loop_vars) == 1 else list(shape_invariants)
    if len(shapes) != len(loop_vars):
        raise ValueError(f"while_loop: {len(shapes)} shape_invariants for {len(loop_vars)} "
                         "loop variables")
    return [None if s is None else tuple(s) for s in shapes]


def _check_body(label, loop_vars, outputs, shapes) -> None:
    if len(outputs) != len(loop_vars):
        raise ValueError(f"{label}: body returned {len(outputs)} values for "
                         f"{len(loop_vars)} loop variables")
    for k, (var, out, shape) in enumerate(zip(loop_vars, outputs, shapes)):
        if None not in (var.dtype, out.dtype) and var.dtype != out.dtype:
            raise TypeError(f"{label}: loop variable {k} enters as {var.dtype} and the body "
                            f"returns {out.dtype}; cast it in the body (xn.cast)")
        if shape is not None and out.shape is not None and (len(out.shape) != len(shape) or any(
                a is not None and b is not None and a != b for a, b in zip(shape, out.shape))):
            raise ValueError(
                f"{label}: loop variable {k} enters the loop with shape {shape} but has "
                f"shape {out.shape} after one iteration; pass shape_invariants with None "
                "for the axes that change")
