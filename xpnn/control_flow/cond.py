"""``cond(pred, true_fn, false_fn)``: both branches built as body graphs, only the taken
one runs. Its gradient is a ``Cond`` on the same ``pred`` whose branches are the branches'
gradients (zeros for what the other branch reads), so gradients of gradients work too.

>>> import xpnn as xn
>>> x = xn.placeholder(name="x")
>>> y = xn.cond(x > 0.0, lambda: x * x, lambda: -x)
>>> dy, = xn.gradients(y, [x])
>>> sess = xn.Session()
>>> [[float(a) for a in sess.run([y, dy], {x: v})] for v in (3.0, -2.0)]
[[9.0, 6.0], [2.0, -1.0]]
"""

from __future__ import annotations

from ..graph import as_node, get_default_graph
from ..ops.outputs import MultiOutput
from .eager import EAGER
from .function_graph import differentiable, floating, once_each, trace


def control_flow_of(session):
    """The device's own control flow (JAX's lax), or Python's."""
    return session.device.control_flow or EAGER


class Cond(MultiOutput):
    """Runs ``branches[0]`` where ``pred`` is true, else ``branches[1]``; each branch is fed
    the ``operands`` (as its params), then its captures. Inputs: pred, operands, the true
    branch's captured nodes, the false branch's."""

    runs_bodies = True

    def __init__(self, pred, operands, true_body, false_body, name=None):
        self.branches = (true_body, false_body)
        self.n_operands = len(operands)
        super().__init__(pred, *operands, *true_body.captured, *false_body.captured, name=name)
        shapes, dtypes = _merged_outputs(self, true_body.outputs, false_body.outputs)
        self.make_outputs(shapes, dtypes)

    @property
    def bodies(self) -> list:
        """(title, Body) of each branch: what ``draw_graph`` draws inside the op's boxes."""
        return [("true_fn", self.branches[0]), ("false_fn", self.branches[1])]

    def forward(self, xp, pred, *values, session):
        if getattr(pred, "ndim", 0) != 0:
            raise ValueError(f"{self.label}: pred must be a scalar bool, got shape "
                             f"{tuple(pred.shape)}; reduce it first (xn.reduce_all, x[0])")
        operands, rest = values[: self.n_operands], values[self.n_operands:]
        true_body, false_body = self.branches
        split = len(true_body.captured)
        true_fn, false_fn = true_body.function(session), false_body.function(session)
        return control_flow_of(session).cond(
            pred, lambda: true_fn(*operands, *rest[:split]),
            lambda: false_fn(*operands, *rest[split:]))

    def backward_outputs(self, grads):
        seeds = [g for g, out in zip(self.output_gradients(grads), self.outputs)
                 if floating(out.dtype)]
        pred, operands = self.inputs[0], self.inputs[1 : 1 + self.n_operands]
        captured = self.inputs[1 + self.n_operands:]
        targets = differentiable(captured)
        true_grad, false_grad = (body.gradient(targets) for body in self.branches)
        grad_cond = Cond(pred, list(operands) + seeds, true_grad, false_grad)
        outs = iter(grad_cond.outputs)
        result = [None]  # pred
        result += [next(outs) if floating(o.dtype) else None for o in operands]
        # a node both branches read gets its gradient once
        return result + once_each(captured, {node: next(outs) for node in targets})


def _merged_outputs(op, true_outputs, false_outputs):
    """Shapes (None where the branches differ) and dtypes (which must agree)."""
    if len(true_outputs) != len(false_outputs):
        raise ValueError(f"{op.label}: true_fn returned {len(true_outputs)} values and "
                         f"false_fn {len(false_outputs)}; both branches must return the same "
                         "structure")
    shapes, dtypes = [], []
    for k, (a, b) in enumerate(zip(true_outputs, false_outputs)):
        if a.dtype != b.dtype and None not in (a.dtype, b.dtype):
            raise TypeError(f"{op.label}: output {k} is {a.dtype} in true_fn and {b.dtype} in "
                            "false_fn; cast one branch's result (xn.cast)")
        shapes.append(_common_shape(a.shape, b.shape))
        dtypes.append(a.dtype or b.dtype)
    return shapes, dtypes


def _common_shape(a, b):
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def cond(pred, true_fn, false_fn, name=None):
    """``true_fn()`` where ``pred`` (a scalar bool node, fed or computed, or a Python bool)
    is true, else ``false_fn()``: each returns a node or a list/tuple of nodes, the same
    number and dtypes in both. Only the taken branch runs; both are built once, as graphs
    of their own that read the nodes they use. Gradients flow through the taken branch
    (zeros for what only the other one reads). Returns a node, or a list of nodes.

    >>> import xpnn as xn
    >>> flag = xn.placeholder("bool", (), name="flag")
    >>> out = xn.cond(flag, lambda: xn.constant(1.0), lambda: xn.constant(2.0))
    >>> xn.Session().run(out, {flag: False}).item()
    2.0
    """
    if not callable(true_fn) or not callable(false_fn):
        raise TypeError("cond takes true_fn and false_fn as functions of no argument "
                        "(lambda: ...), not values")
    pred = as_node(pred, get_default_graph())
    if pred.dtype not in (None, "bool"):
        raise TypeError(f"cond: pred {pred.label} is {pred.dtype}; it must be a bool scalar "
                        "(compare first: x > 0)")
    if pred.shape not in (None, ()):
        raise ValueError(f"cond: pred {pred.label} has shape {pred.shape}; it must be a scalar")
    label = name or "cond"
    true_body = trace(true_fn, [], f"{label}/true_fn")
    false_body = trace(false_fn, [], f"{label}/false_fn")
    op = Cond(pred, [], true_body, false_body, name=name)
    return op.outputs[0] if true_body.single else list(op.outputs)
