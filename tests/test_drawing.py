"""The graph picture: autodiff's marks on gradient nodes, and ``xn.to_dot`` / ``xn.draw_graph``
(DOT structure checked by parsing the text; rendering only where Graphviz's ``dot`` exists)."""

from __future__ import annotations

import numpy as np

import xpnn as xn

# ------------------------------------------------------------------------- gradient marks


def test_every_node_gradients_adds_is_marked_with_its_forward_node():
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 2), name="x")
        w = xn.Variable([[1.0], [2.0]], name="w")
        z = x @ w
        loss = xn.reduce_sum(xn.square(z))
        forward = list(g.nodes)
        (dw,) = xn.gradients(loss, [w])
        result = xn.Session().run(dw, {x: [[1.0, 1.0]]}, to_numpy=True)
    added = g.nodes[len(forward):]
    assert added and all(n.gradient_of is not None for n in added)
    assert all(n.gradient_of is None for n in forward)
    assert all(n.gradient_of in forward for n in added)
    assert dw.gradient_of is z  # dloss/dw = x^T dz comes from the MatMul's backward
    seed = next(n for n in added if isinstance(n, xn.Constant))
    assert seed.gradient_of is loss
    np.testing.assert_allclose(result, [[6.0], [6.0]])  # 2 z x^T with z = 3


def test_gradient_sums_are_marked_with_the_node_whose_gradient_they_sum():
    with xn.Graph().as_default():
        x = xn.Variable(3.0, name="x")
        y = xn.relu(x) + xn.square(x)  # two paths into x
        (dx,) = xn.gradients(y, [x])
        value = xn.Session().run(dx).item()
    assert isinstance(dx, xn.Operation) and dx.type == "Add"
    assert dx.gradient_of is x and value == 7.0


def test_second_order_nodes_point_at_the_gradient_nodes_they_differentiate():
    with xn.Graph().as_default() as g:
        x = xn.Variable(3.0)
        (dy,) = xn.gradients(x * x, [x])
        first = set(g.nodes)
        (d2y,) = xn.gradients(dy, [x])
        value = xn.Session().run(d2y).item()
    second = [n for n in g.nodes if n not in first]
    assert second and all(n.gradient_of is not None for n in second)
    assert any(n.gradient_of.gradient_of is not None for n in second)
    assert value == 2.0


def test_a_node_a_gradient_function_reuses_keeps_its_own_mark():
    class Twice(xn.Operation):
        def forward(self, xp, a):
            return a + a

        def backward(self, grad):
            return [self.inputs[0] * 0.0 + grad + grad]

    with xn.Graph().as_default():
        a = xn.Variable(1.0)
        out = Twice(a)
        xn.gradients(out, [a])
    assert a.gradient_of is None and out.gradient_of is None
