"""Reverse-mode differentiation on the graph: gradients are new graph nodes.

>>> import xpnn as xn
>>> x = xn.Variable(3.0)
>>> y = x * x
>>> dy, = xn.gradients(y, [x])
>>> d2y, = xn.gradients(dy, [x])          # gradients of gradients
>>> xn.Session().run([dy, d2y], to_numpy=True)
[array(6., dtype=float32), array(2., dtype=float32)]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import ops
from .graph import Constant, Node, Operation

_registry: dict[str, Callable] = {}


class RegisterGradient:
    """Register ``fn(op, grad) -> [grad per input]`` as the gradient of an op type (the op's
    class name). A registered function wins over the op's own ``backward``.

    >>> import xpnn as xn
    >>> class Double(xn.Operation):
    ...     def forward(self, xp, x):
    ...         return 2.0 * x
    >>> @xn.RegisterGradient("Double")
    ... def _double_grad(op, grad):
    ...     return [2.0 * grad]
    >>> x = xn.Variable(1.0)
    >>> xn.Session().run(xn.gradients(Double(x), [x])[0]).item()
    2.0
    """

    def __init__(self, op_type: str):
        self.op_type = op_type

    def __call__(self, fn: Callable) -> Callable:
        _registry[self.op_type] = fn
        return fn


def topological_order(roots, stop=()) -> list[Node]:
    """Every node the roots depend on, inputs before consumers; iterative, each node once.
    The inputs of a node in ``stop`` are not visited (a body's plan fed values it saved)."""
    order, visited = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        if node not in stop:
            stack.extend((i, False) for i in reversed(node.inputs) if i not in visited)
    return order


def _input_gradients(op: Operation, grad: Node) -> list:
    fn = _registry.get(op.type)
    grads = fn(op, grad) if fn is not None else op.backward(grad)
    grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    if len(grads) != len(op.inputs):
        raise ValueError(
            f"gradient of {op.label} returned {len(grads)} values for {len(op.inputs)} inputs"
        )
    return [None if g is None else ops.as_node(g, op.graph) for g in grads]


def gradients(ys, xs, grad_ys=None, stop_gradients=()) -> list[Node | None]:
    """A list of nodes: d(sum of ys)/dx for each x in ``xs`` (None where x does not affect ys).

    ``ys`` and ``xs`` may be single nodes or lists; ``grad_ys`` seeds the backward pass
    (default: ones, as TensorFlow does for a non-scalar y). The nodes of ``stop_gradients``
    count as constants: no gradient goes through them to their inputs (one of ``xs`` among
    them still gets its own). Every node it adds has ``gradient_of`` set to the forward node
    whose gradient it computes.
    """
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    xs = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    elif not isinstance(grad_ys, (list, tuple)):
        grad_ys = [grad_ys]
    if len(grad_ys) != len(ys):
        raise ValueError(
            f"gradients: {len(grad_ys)} grad_ys for {len(ys)} ys; give one seed per y (wrap "
            "an array seed for a single y in a node or a list of one)"
        )
    for node in ys + xs:
        if not isinstance(node, Node):
            raise TypeError(f"gradients takes graph nodes, got {type(node).__name__}")
        if node.graph is not ys[0].graph:
            raise ValueError(f"gradients: {node.label} belongs to another graph than {ys[0].label}")

    order = topological_order(ys)
    # Only nodes between xs and ys need a gradient: forward-mark what depends on an x.
    targets, stop = set(xs), set(stop_gradients)
    needed = set()
    for node in order:
        if node in targets or (node not in stop and any(i in needed for i in node.inputs)):
            needed.add(node)

    graph = ys[0].graph
    contributions: dict[Node, list[Node]] = {}
    for y, g in zip(ys, grad_ys):
        start = len(graph.nodes)
        if g is None and y.shape == ():  # a scalar loss: the seed is a constant 1
            seed = Constant(np.ones((), dtype=y.dtype or "float32"), graph=y.graph)
        elif g is None:
            seed = ops.ones_like(y)
        else:
            seed = ops.as_node(g, y.graph)
        _mark(graph, start, y)
        contributions.setdefault(y, []).append(seed)

    total = _backpropagate(graph, order, needed, contributions, stop)
    return [total.get(x) for x in xs]


def _backpropagate(graph, order, needed, contributions, stop=frozenset()) -> dict:
    """Each needed node's total gradient, visiting ``order`` from the outputs back:
    contributions summed, then handed to the op's inputs (an op of several outputs gets
    its Output nodes' gradients together, ``backward_outputs``)."""
    total: dict[Node, Node] = {}
    picked: dict[Node, dict] = {}  # an op of several outputs -> {output index: gradient}
    for node in reversed(order):
        if node in picked and node in needed:
            start = len(graph.nodes)
            _add_contributions(node, node.backward_outputs(picked.pop(node)), needed,
                               contributions)
            _mark(graph, start, node)
            continue
        if node not in needed or node not in contributions:
            continue
        start = len(graph.nodes)
        grad = total[node] = ops.add_n(contributions.pop(node))
        if node in stop:  # its gradient is asked for, but goes no further
            _mark(graph, start, node)
            continue
        if getattr(node, "output_index", None) is not None:  # one output of such an op
            picked.setdefault(node.inputs[0], {})[node.output_index] = grad
            _mark(graph, start, node)
            continue
        if isinstance(node, Operation) and any(i in needed for i in node.inputs):
            for inp, g in zip(node.inputs, _input_gradients(node, grad)):
                if g is not None and inp in needed:
                    contributions.setdefault(inp, []).append(g)
        _mark(graph, start, node)

    return total


def _add_contributions(op, grads, needed, contributions) -> None:
    """Record ``grads`` (one per input of ``op``, None for none) for the needed inputs."""
    grads = list(grads)
    if len(grads) != len(op.inputs):
        raise ValueError(
            f"gradient of {op.label} returned {len(grads)} values for {len(op.inputs)} inputs"
        )
    for inp, g in zip(op.inputs, grads):
        if g is not None and inp in needed:
            contributions.setdefault(inp, []).append(ops.as_node(g, op.graph))


def _mark(graph, start: int, forward: Node) -> None:
    """Tag the nodes made since ``start`` as gradient nodes of ``forward`` (for pictures and
    messages); nodes a gradient function reuses keep their own tag."""
    for node in graph.nodes[start:]:
        node.gradient_of = forward
