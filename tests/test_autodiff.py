"""xn.gradients: second order, shared nodes, off-path consumers, long chains, custom ops."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import xpnn as xn
from xpnn.autodiff import topological_order


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- second order


@pytest.mark.parametrize(
    "build, d1, d2",
    [
        (lambda x: x * x * x, lambda x: 3 * x**2, lambda x: 6 * x),
        (xn.sigmoid, lambda x: np_sigmoid(x) * (1 - np_sigmoid(x)),
         lambda x: np_sigmoid(x) * (1 - np_sigmoid(x)) * (1 - 2 * np_sigmoid(x))),
        (xn.tanh, lambda x: 1 - np.tanh(x) ** 2,
         lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
        (xn.exp, np.exp, np.exp),
        (xn.log, lambda x: 1 / x, lambda x: -1 / x**2),
        (xn.sqrt, lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 * x**-1.5),
        (lambda x: 1.0 / x, lambda x: -1 / x**2, lambda x: 2 / x**3),
    ],
    ids=["cube", "sigmoid", "tanh", "exp", "log", "sqrt", "reciprocal"],
)
def test_second_derivative_closed_form_and_finite_differences(dev, build, d1, d2):
    x0 = np.array([0.3, 0.9, 1.7, 2.5])
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        (g,) = xn.gradients(xn.reduce_sum(build(x)), [x])
        (h,) = xn.gradients(xn.reduce_sum(g), [x])  # diagonal: elementwise f''
        sess = xn.Session(device=dev, dtype="float64")
        first, second = sess.run([g, h], {x: x0}, to_numpy=True)
        np.testing.assert_allclose(first, d1(x0), rtol=1e-12)
        np.testing.assert_allclose(second, d2(x0), rtol=1e-12)
        # and against finite differences of the first gradient
        xn.gradcheck(xn.reduce_sum(g * xn.constant([1.0, -2.0, 0.5, 3.0])), [x], {x: x0},
                     device=dev)


def _second_order_loss(out, out_shape, xs, values, seed=2):
    """sum(R1 * out) -> first gradients g -> sum(R2 * g^2): exercises each backward's backward
    with seeds that a plain sum would not (its gradcheck is FD of the first gradient)."""
    rng = np.random.default_rng(seed)
    loss = xn.reduce_sum(out * xn.constant(rng.standard_normal(out_shape)))
    total = None
    for g, a in zip(xn.gradients(loss, xs), values):
        term = xn.reduce_sum(xn.square(g) * xn.constant(rng.standard_normal(a.shape)))
        total = term if total is None else total + term
    return total


SECOND_ORDER = [
    ("matmul-2d@2d", xn.matmul, [(2, 3), (3, 4)]),
    ("matmul-1d@2d", xn.matmul, [(3,), (3, 4)]),
    ("matmul-W@x", xn.matmul, [(4, 3), (3,)]),
    ("matmul-1d@1d", xn.matmul, [(3,), (3,)]),
    ("matmul-3d@3d", xn.matmul, [(2, 2, 3), (2, 3, 4)]),
    ("matmul-3d@2d", xn.matmul, [(2, 2, 3), (3, 4)]),
    ("matmul-1d@3d", xn.matmul, [(3,), (2, 3, 4)]),
    ("add-bias", xn.add, [(3, 4), (4,)]),
    ("multiply-row", xn.multiply, [(1, 4), (3, 4)]),
    ("divide-bias", lambda a, b: a / (xn.square(b) + 1.0), [(3, 4), (4,)]),
    ("softmax", xn.softmax, [(3, 4)]),
    ("softmax-axis0", lambda x: xn.softmax(x, axis=0), [(3, 4)]),
    ("log_softmax", xn.log_softmax, [(3, 4)]),
    ("logsumexp-axis1", lambda x: xn.logsumexp(x, axis=1), [(3, 4)]),
    ("logsumexp-all-keepdims", lambda x: xn.logsumexp(x, keepdims=True), [(3, 4)]),
    ("reduce_mean-axis0", lambda x: xn.reduce_mean(x * x, axis=0), [(3, 4)]),
    ("reduce_sum-keepdims", lambda x: xn.reduce_sum(x * x, axis=1, keepdims=True), [(3, 4)]),
    ("reduce_max", lambda x: xn.square(xn.reduce_max(x, axis=1)), [(3, 4)]),
    ("reshape-transpose", lambda x: xn.transpose(xn.reshape(x * x, (4, -1)), (1, 0)),
     [(3, 4)]),
    ("relu", lambda x: xn.relu(x) * x, [(3, 4)]),
    ("abs-clip", lambda x: xn.abs(x) * xn.clip(x, -0.5, 0.5), [(3, 4)]),
    ("sigmoid-tanh", lambda x: xn.sigmoid(x) * xn.tanh(x), [(3, 4)]),
    ("softmax_cross_entropy",
     lambda z: xn.losses.softmax_cross_entropy(np.eye(4)[[0, 3, 1]], z, reduction="none"),
     [(3, 4)]),
    ("sigmoid_binary_cross_entropy",
     lambda z: xn.losses.sigmoid_binary_cross_entropy(z, np.array([0.0, 1.0, 1.0])), [(3,)]),
]


@pytest.mark.parametrize("build, shapes", [pytest.param(b, s, id=i) for i, b, s in SECOND_ORDER])
def test_second_order_against_finite_differences_of_first_gradient(dev, build, shapes):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s) for s in shapes]
    if shapes == [(3, 4)]:  # distinct, >= 0.1 from the kinks of relu, abs, clip and max
        values = [rng.permutation(12).reshape(3, 4) * 0.25 - 1.4]
    with xn.Graph().as_default():
        xs = [xn.placeholder(name=f"in{i}") for i in range(len(shapes))]
        feed = dict(zip(xs, values))
        out = build(*xs)
        out_shape = tuple(xn.Session(dtype="float64", device=dev).run(out, feed).shape)
        loss = _second_order_loss(out, out_shape, xs, values)
        xn.gradcheck(loss, xs, feed, device=dev)


def test_matmul_hessian_vector_product_exact(dev):
    """L = sum((A @ B)^2) has dL/dA = 2 A B B^T; the gradient of f = <V, dL/dA> is
    df/dA = 2 V B B^T and df/dB = 2 (A^T V B + V^T A B)."""
    rng = np.random.default_rng(5)
    A0, B0, V = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(
        (2, 3)
    )
    with xn.Graph().as_default():
        A, B = xn.Variable(A0, name="A"), xn.Variable(B0, name="B")
        (gA,) = xn.gradients(xn.reduce_sum(xn.square(A @ B)), [A])
        hA, hB = xn.gradients(xn.reduce_sum(gA * xn.constant(V)), [A, B])
        out = xn.Session(device=dev).run([gA, hA, hB], to_numpy=True)
    np.testing.assert_allclose(out[0], 2 * A0 @ B0 @ B0.T, rtol=1e-12)
    np.testing.assert_allclose(out[1], 2 * V @ B0 @ B0.T, rtol=1e-12)
    np.testing.assert_allclose(out[2], 2 * (A0.T @ V @ B0 + V.T @ A0 @ B0), rtol=1e-12)


# --------------------------------------------------------------------------- graph shapes


def test_node_used_many_times_skip_connection(dev):
    """y = tanh(x) * x + x: x is used three times; d/dx = (1 - t^2) x + t + 1."""
    x0 = np.array([-1.2, 0.1, 0.7, 2.0])
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        t = xn.tanh(x)
        y = t * x + x
        (g,) = xn.gradients(xn.reduce_sum(y), [x])
        got = xn.Session(device=dev, dtype="float64").run(g, {x: x0}, to_numpy=True)
        np.testing.assert_allclose(got, (1 - np.tanh(x0) ** 2) * x0 + np.tanh(x0) + 1, rtol=1e-12)
        xn.gradcheck(xn.reduce_sum(y * xn.constant([1.0, 2.0, -1.0, 0.5])), [x], {x: x0},
                     device=dev)


def test_residual_network_of_shared_nodes(dev):
    rng = np.random.default_rng(1)
    W0, x0 = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((4, 3))
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        W = xn.Variable(W0, name="W")
        h = x
        for _ in range(3):
            h = h + xn.tanh(h @ W) * h  # h and W used repeatedly
        loss = xn.reduce_sum(xn.square(h)) + xn.reduce_sum(W * W)
        xn.gradcheck(loss, [W, x], {x: x0}, device=dev)


def test_consumer_off_the_loss_path(dev):
    """A metric reading an intermediate does not change the gradient and is not computed."""
    x0 = np.array([0.5, -1.0, 2.0])
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0, 2.0, 3.0], name="w")
        h = x * w
        metric = xn.reduce_max(xn.exp(h) * 1000.0, name="metric")  # uses h, not in the loss
        loss = xn.reduce_sum(xn.square(h))
        (gw,) = xn.gradients(loss, [w])
        sess = xn.Session(device=dev)
        got = sess.run(gw, {x: x0}, to_numpy=True)
        np.testing.assert_allclose(got, 2 * x0 * np.array([1.0, 2.0, 3.0]) * x0)
        (plan,) = sess._plans.values()
        planned = {step.op for step in plan.steps}
        assert metric not in planned and metric.inputs[0] not in planned
        assert h in planned
        # fetching both computes both, gradient unchanged
        got2, m = sess.run([gw, metric], {x: x0}, to_numpy=True)
        np.testing.assert_array_equal(got2, got)
        np.testing.assert_allclose(m, 1000 * np.exp(6.0), rtol=1e-6)  # h = [0.5, -2, 6]


def test_gradient_of_unrelated_node_is_none(dev):
    with xn.Graph().as_default():
        x, z = xn.Variable(2.0, name="x"), xn.Variable(3.0, name="z")
        y = x * x
        gx, gz = xn.gradients(y, [x, z])
        assert gz is None
        assert xn.Session(device=dev).run(gx, to_numpy=True) == 4.0
        # a node that depends on x only through a no-gradient op
        mask = xn.ops.GreaterEqual(x, 1.0)
        assert xn.gradients(mask, [x]) == [None]


def test_gradients_of_several_ys_with_grad_ys(dev):
    with xn.Graph().as_default():
        x = xn.Variable([1.0, 2.0], name="x")
        y1, y2 = x * x, 3.0 * x
        (g,) = xn.gradients([y1, y2], [x])
        (gs,) = xn.gradients([y1, y2], [x], grad_ys=[xn.constant([1.0, 0.0]),
                                                     xn.constant([2.0, 2.0])])
        (g1,) = xn.gradients(y1, x, grad_ys=[[10.0, 1.0]])
        (g2,) = xn.gradients(y1, x, grad_ys=xn.constant([10.0, 1.0]))
        with pytest.raises(ValueError, match="2 grad_ys for 1 ys"):
            xn.gradients(y1, x, grad_ys=[10.0, 1.0])
        out = xn.Session(device=dev).run([g, gs, g1, g2], to_numpy=True)
    np.testing.assert_array_equal(out[0], [2.0 + 3.0, 4.0 + 3.0])
    np.testing.assert_array_equal(out[1], [2.0 + 6.0, 0.0 + 6.0])
    np.testing.assert_array_equal(out[2], [20.0, 4.0])
    np.testing.assert_array_equal(out[3], [20.0, 4.0])


def test_gradients_rejects_bad_arguments():
    with xn.Graph().as_default():
        x = xn.Variable(1.0, name="x")
        with pytest.raises(TypeError, match="gradients takes graph nodes, got ndarray"):
            xn.gradients(x * x, [np.ones(1)])
    with xn.Graph().as_default():
        other = xn.Variable(1.0, name="other")
    with pytest.raises(ValueError, match="other belongs to another graph"):
        xn.gradients(x * x, [other])


# --------------------------------------------------------------------------- long chains


def test_chain_of_2000_ops_no_recursion(dev):
    n = 2000
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 250)  # any recursive traversal of 2,000 nodes would fail
    try:
        with xn.Graph().as_default() as graph:
            x = xn.Variable(np.array([1.0, -2.0]), name="x")
            y = x
            for _ in range(n):
                y = y * 1.001
            before = len(graph.nodes)
            (g,) = xn.gradients(xn.reduce_sum(y), [x])
            added = len(graph.nodes) - before
            value, grad = xn.Session(device=dev).run([y, g], to_numpy=True)
    finally:
        sys.setrecursionlimit(old)
    factor = 1.001**n  # the Python float meets a float64 Variable: it is float64, exactly
    np.testing.assert_allclose(grad, [factor, factor], rtol=1e-10)
    np.testing.assert_allclose(value, np.array([1.0, -2.0]) * factor, rtol=1e-10)
    assert added <= 4 * n + 10, f"gradient graph grew by {added} nodes for {n} ops"


def test_gradient_graph_grows_linearly():
    def added(n):
        with xn.Graph().as_default() as graph:
            x = xn.Variable([1.0, 2.0])
            h = x
            for _ in range(n):
                h = xn.tanh(h) + h * 0.5  # h used twice per layer
            before = len(graph.nodes)
            xn.gradients(xn.reduce_sum(h), [x])
            return len(graph.nodes) - before

    base, small, big = added(0), added(50), added(100)
    assert big - small == small - base  # the same number of gradient nodes per layer
    assert small - base <= 50 * 12


class Counted(xn.Operation):
    """Identity whose backward counts its calls."""

    calls = 0

    def forward(self, xp, x):
        return x

    def infer_shape(self, shape):
        return shape

    def backward(self, grad):
        Counted.calls += 1
        return [grad]


def test_each_node_is_visited_once(dev):
    """h_{k+1} = Counted(h_k) used twice: 2^30 paths, 30 backward calls."""
    Counted.calls = 0
    with xn.Graph().as_default():
        x = xn.Variable([1.0, 2.0], name="x")
        h = x
        layers = 30
        for _ in range(layers):
            a = Counted(h)
            h = a + a * 0.5
        (g,) = xn.gradients(xn.reduce_sum(h), [x])
        assert Counted.calls == layers
        got = xn.Session(device=dev).run(g, to_numpy=True)
    np.testing.assert_allclose(got, [1.5**layers] * 2, rtol=1e-6)  # float32


def test_topological_order_inputs_first_each_once():
    with xn.Graph().as_default():
        x = xn.Variable(1.0, name="x")
        a = x * x
        b = a + x
        c = b * a
        order = topological_order([c, a])
    assert len(order) == len(set(order))
    position = {n: i for i, n in enumerate(order)}
    for node in order:
        for i in node.inputs:
            assert position[i] < position[node]
    assert set(order) == {x, a, b, c} | {n for n in order if isinstance(n, xn.Constant)}


# --------------------------------------------------------------------------- custom ops


class Softplus(xn.Operation):
    """log(1 + e^x) with its own backward (sigmoid), built of graph ops."""

    def forward(self, xp, x):
        return xp.log(1.0 + xp.exp(x))

    def infer_shape(self, shape):
        return shape

    def backward(self, grad):
        (x,) = self.inputs
        return [grad * xn.sigmoid(x)]


class XpnnTestCubeRegistered(xn.Operation):
    """x^3 with no backward: the gradient is registered seed style."""

    def forward(self, xp, x):
        return x * x * x


@xn.RegisterGradient("XpnnTestCubeRegistered")
def _cube_grad(op, grad):
    (x,) = op.inputs
    return [grad * 3.0 * xn.square(x)]


class XpnnTestWrongBackward(xn.Operation):
    """2x, whose own backward is wrong: the registered gradient must win."""

    def forward(self, xp, x):
        return 2.0 * x

    def backward(self, grad):
        return [grad * 5.0]


@xn.RegisterGradient("XpnnTestWrongBackward")
def _right_grad(op, grad):
    return [grad * 2.0]


def test_custom_op_with_backward(dev):
    x0 = np.array([-2.0, 0.0, 1.5])
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        y = Softplus(x)
        (g,) = xn.gradients(xn.reduce_sum(y), [x])
        (h,) = xn.gradients(xn.reduce_sum(g), [x])
        vals = xn.Session(device=dev, dtype="float64").run([y, g, h], {x: x0}, to_numpy=True)
        np.testing.assert_allclose(vals[0], np.log1p(np.exp(x0)), rtol=1e-12)
        np.testing.assert_allclose(vals[1], np_sigmoid(x0), rtol=1e-12)
        np.testing.assert_allclose(vals[2], np_sigmoid(x0) * (1 - np_sigmoid(x0)), rtol=1e-12)
        xn.gradcheck(xn.reduce_sum(y * xn.constant([1.0, -3.0, 2.0])), [x], {x: x0}, device=dev)


def test_custom_op_with_registered_gradient(dev):
    x0 = np.array([[-2.0, 0.5], [1.5, 3.0]])
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable(np.array([[1.0, -1.0], [0.5, 2.0]]), name="w")
        y = XpnnTestCubeRegistered(x @ w)
        (gw,) = xn.gradients(xn.reduce_sum(y), [w])
        got = xn.Session(device=dev).run(gw, {x: x0}, to_numpy=True)
        z = x0.astype(np.float32) @ np.array([[1.0, -1.0], [0.5, 2.0]])
        np.testing.assert_allclose(got, x0.T @ (3 * z**2), rtol=1e-5)
        xn.gradcheck(xn.reduce_sum(y * xn.constant([[1.0, 2.0], [-1.0, 0.5]])), [w, x],
                     {x: x0}, device=dev)


def test_registered_gradient_wins_over_backward(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        y = XpnnTestWrongBackward(x)
        (g,) = xn.gradients(xn.reduce_sum(y), [x])
        assert xn.Session(device=dev).run(g, {x: [1.0, 2.0]}, to_numpy=True).tolist() == [2, 2]
        xn.gradcheck(xn.reduce_sum(y), [x], {x: [1.0, 2.0]}, device=dev)


def test_custom_op_errors():
    class NoGrad(xn.Operation):
        def forward(self, xp, x):
            return x

    class TooMany(xn.Operation):
        def forward(self, xp, x):
            return x

        def backward(self, grad):
            return [grad, grad]

    with xn.Graph().as_default():
        x = xn.Variable(1.0, name="x")
        with pytest.raises(NotImplementedError, match=r"NoGrad has no gradient.*RegisterGradient"):
            xn.gradients(NoGrad(x), [x])
        with pytest.raises(ValueError, match=r"TooMany#\d+ returned 2 values for 1 inputs"):
            xn.gradients(TooMany(x), [x])
