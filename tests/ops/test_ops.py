"""Every primitive op: forward values against NumPy (float32) and gradients against central
finite differences (float64, ``xn.gradcheck``), on every backend, including broadcasting; the
cases are the one table of tests/ops/cases.py."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.ops.cases import CASES, inputs_for, np_sigmoid, projected_loss
from xpnn import ops

# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("c", CASES)
def test_forward_matches_numpy(dev, c):
    arrays = inputs_for(c)
    host32 = [a.astype(np.float32) for a in arrays]
    expected = np.asarray(c.ref(*[a.astype(np.float64) for a in host32]))
    with xn.Graph().as_default():
        phs = [xn.placeholder(shape=a.shape, name=f"in{i}") for i, a in enumerate(arrays)]
        out = c.build(*phs)
        assert _static_shape_fits(out, expected.shape)  # static shape inference
        result = xn.Session(device=dev).run(out, dict(zip(phs, host32)))
    assert dev.owns(result)
    assert result.dtype == dev.dtype(c.dtype)
    assert tuple(result.shape) == expected.shape
    np.testing.assert_allclose(xn.to_numpy(result), expected, rtol=2e-5, atol=2e-6)


def _static_shape_fits(out, shape):
    """The static shape is the result's; ops of a run-time length leave that axis None."""
    if isinstance(out, (ops.BooleanMask, ops.SegmentSum)):
        return len(out.shape) == len(shape) and all(
            s is None or s == d for s, d in zip(out.shape, shape)) and None in out.shape
    return out.shape == shape


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("static", [True, False], ids=["static-shapes", "unknown-shapes"])
@pytest.mark.parametrize("c", CASES)
def test_gradient_matches_finite_differences(dev, c, static):
    arrays = inputs_for(c)
    expected_shape = np.asarray(c.ref(*arrays)).shape
    if 0 in expected_shape:
        pytest.skip("an empty result has no gradient to check")
    with xn.Graph().as_default():
        phs = [
            xn.placeholder(shape=a.shape if static else None, name=f"in{i}")
            for i, a in enumerate(arrays)
        ]
        loss = projected_loss(c.build(*phs), expected_shape)
        feed = dict(zip(phs, arrays))
        # each gradient has its input's shape (broadcasting summed back)
        grads = xn.Session(device=dev, dtype="float64").run(xn.gradients(loss, phs), feed)
        for g, a in zip(grads, arrays):
            assert tuple(g.shape) == a.shape
            assert dev.owns(g)
        report = xn.gradcheck(loss, phs, feed, device=dev)
    assert report.ok and report.max_error < 1e-5


def test_gradient_of_variable_through_python_scalars(dev):
    """Python numbers on either side of every operator; exact derivative known."""
    x0 = np.array([0.5, 1.0, 2.0])
    with xn.Graph().as_default():
        x = xn.Variable(x0, name="x")
        y = xn.reduce_sum(3.0 * x - 1.0 + x / 2.0 + 4.0 / x + (2.0 - x) * 0.5)
        (g,) = xn.gradients(y, [x])
        value, grad = xn.Session(device=dev).run([y, g], to_numpy=True)
    np.testing.assert_allclose(value, np.sum(3 * x0 - 1 + x0 / 2 + 4 / x0 + (2 - x0) * 0.5))
    np.testing.assert_allclose(grad, 3.0 + 0.5 - 4.0 / x0**2 - 0.5, rtol=1e-12)


def test_broadcast_gradients_reduce_to_each_input_shape(dev):
    """Closed forms: d sum(R*(X+b))/db = R.sum(0); d sum(R*(r*X))/dr = (R*X).sum(0)."""
    rng = np.random.default_rng(3)
    X0, b0, r0, R = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(
        (1, 3)
    ), rng.standard_normal((5, 3))
    with xn.Graph().as_default():
        X = xn.placeholder(name="X")
        b = xn.Variable(b0, name="b")
        r = xn.Variable(r0, name="r")
        s = xn.Variable(np.float64(0.7), name="s")
        loss = xn.reduce_sum(xn.constant(R) * ((X + b) * r * s))
        gX, gb, gr, gs = xn.gradients(loss, [X, b, r, s])
        out = xn.Session(device=dev).run([gX, gb, gr, gs], {X: X0.astype(np.float64)},
                                         to_numpy=True)
    assert [o.shape for o in out] == [(5, 3), (3,), (1, 3), ()]
    X32 = X0.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(out[0], R * r0 * 0.7, rtol=1e-5)
    np.testing.assert_allclose(out[1], (R * r0 * 0.7).sum(0), rtol=1e-5)
    np.testing.assert_allclose(out[2], (R * (X32 + b0) * 0.7).sum(0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(out[3], np.sum(R * (X32 + b0) * r0), rtol=1e-5)


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda x: xn.maximum(x, 1.0), [1.0, 0.0, 1.0, 0.0]),  # tie at x == 1 goes to x
        (lambda x: xn.minimum(x, 1.0), [0.0, 1.0, 1.0, 1.0]),
        (lambda x: xn.abs(x - 1.0), [1.0, -1.0, 0.0, -1.0]),
        (lambda x: xn.relu(x - 1.0), [1.0, 0.0, 0.0, 0.0]),
        (lambda x: xn.clip(x, 0.0, 1.0), [0.0, 1.0, 1.0, 1.0]),  # bounds count as inside
    ],
    ids=["maximum", "minimum", "abs", "relu", "clip"],
)
def test_subgradients_at_kinks(dev, build, expected):
    with xn.Graph().as_default():
        x = xn.Variable([2.0, 0.5, 1.0, 0.0], name="x")
        (g,) = xn.gradients(xn.reduce_sum(build(x)), [x])
        np.testing.assert_array_equal(xn.Session(device=dev).run(g, to_numpy=True), expected)


def test_reduce_max_ties_share_the_gradient(dev):
    with xn.Graph().as_default():
        x = xn.Variable([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], name="x")
        (g,) = xn.gradients(xn.reduce_sum(xn.reduce_max(x, axis=1) * xn.constant([2.0, 5.0])),
                            [x])
        np.testing.assert_array_equal(
            xn.Session(device=dev).run(g, to_numpy=True), [[0.0, 1.0, 1.0], [5.0, 0.0, 0.0]]
        )


# --------------------------------------------------------------------------- operators


def test_operators_build_the_same_ops():
    with xn.Graph().as_default():
        a, b = xn.placeholder(name="a"), xn.placeholder(name="b")
        table = {
            a + b: ops.Add,
            a - b: ops.Subtract,
            a * b: ops.Multiply,
            a / b: ops.Divide,
            a @ b: ops.MatMul,
            -a: ops.Negative,
            a**2: ops.Square,
            a**0.5: ops.Sqrt,
            1.0 + a: ops.Add,
            1.0 - a: ops.Subtract,
            2.0 * a: ops.Multiply,
            2.0 / a: ops.Divide,
            np.eye(2) @ a: ops.MatMul,
            np.ones(2) * a: ops.Multiply,
        }
        for node, cls in table.items():
            assert type(node) is cls, (node, cls)
        right = 1.0 - a
        assert isinstance(right.inputs[0], xn.Constant) and right.inputs[1] is a
        left = np.eye(2) @ a
        assert isinstance(left.inputs[0], xn.Constant) and left.inputs[1] is a
        # Any other exponent is a Pow (TF1's ``**``); 2 and 0.5 keep their exact ops.
        assert type(a**3) is ops.Pow and type(a**2) is ops.Square
        assert type(2.0**a) is ops.Pow and (2.0**a).inputs[1] is a


def test_python_numbers_and_numpy_arrays_as_op_inputs(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        nodes = [
            xn.add(2, x),
            xn.multiply(np.array([2.0, 3.0]), x),
            xn.matmul(np.array([[1.0, 2.0], [3.0, 4.0]]), x),
            xn.maximum(x, 1.5),
            xn.add([10.0, 20.0], 1.0),
        ]
        out = xn.Session(device=dev).run(nodes, {x: [1.0, 2.0]}, to_numpy=True)
    expected = [[3.0, 4.0], [2.0, 6.0], [5.0, 11.0], [1.5, 2.0], [11.0, 21.0]]
    for o, e in zip(out, expected):
        np.testing.assert_array_equal(o, e)
    # a NumPy float64 constant keeps float64, Python numbers are float32
    assert out[1].dtype == np.float64 and out[0].dtype == np.float32


def test_sigmoid_and_tanh_saturate_without_overflow(dev):
    x = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
    with np.errstate(over="ignore"):
        sig = np_sigmoid(x)  # 1 / (1 + inf) = 0 exactly
    with xn.Graph().as_default():
        p = xn.placeholder(name="x")
        s, t = xn.sigmoid(p), xn.tanh(p)
        (g,) = xn.gradients(xn.reduce_sum(s + t), [p])
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = xn.Session(device=dev, dtype="float64").run([s, t, g], {p: x}, to_numpy=True)
    np.testing.assert_allclose(out[0], sig, rtol=1e-14, atol=0)
    np.testing.assert_allclose(out[1], np.tanh(x), rtol=1e-14)
    np.testing.assert_allclose(out[2], sig * (1 - sig) + (1 - np.tanh(x) ** 2), rtol=1e-12,
                               atol=0)


def test_static_shape_inference():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3), name="x")
        w = xn.Variable(np.zeros((3, 4), dtype=np.float32), name="w")
        b = xn.Variable(np.zeros(4, dtype=np.float32), name="b")
        h = x @ w + b
        assert h.shape == (None, 4) and h.dtype is None  # x's dtype is not known yet
        assert (w @ xn.reshape(b, (4, 1))).dtype == "float32"
        assert (w * np.ones(4)).dtype == "float64"
        assert xn.reduce_sum(h, axis=1).shape == (None,)
        assert xn.reduce_mean(h, axis=0, keepdims=True).shape == (1, 4)
        assert xn.transpose(h).shape == (4, None)
        assert xn.reshape(w, (2, -1)).shape == (2, 6)
        assert xn.reshape(h, (2, -1)).shape == (2, None)
        assert xn.matmul(b, xn.transpose(w)).shape == (3,)
        assert xn.logsumexp(h, axis=1).shape == (None,)
        assert xn.softmax(h).shape == (None, 4)
        assert xn.placeholder(name="u").shape is None
        assert (xn.placeholder(name="v") + b).shape is None
        with pytest.raises(ValueError, match=r"axis 2 is out of range for shape \(None, 4\)"):
            xn.reduce_sum(h, axis=2)
        with pytest.raises(ValueError, match=r"cannot reshape \(3, 4\) into \(5, 2\)"):
            xn.reshape(w, (5, 2))
        with pytest.raises(ValueError, match=r"cannot reshape \(3, 4\) into \(-1, 5\)"):
            xn.reshape(w, (-1, 5))
        with pytest.raises(ValueError, match="rank >= 1"):
            xn.matmul(xn.constant(1.0), w)


@pytest.mark.parametrize("alpha", [0.2, 0.01, 1.5])
def test_leaky_relu_gradient_matches_pytorch(dev, alpha):
    torch = pytest.importorskip("torch", reason="torch is not installed: no reference")
    x0 = np.array([[-2.0, -0.5, 0.0, 0.5], [3.0, -1e-3, 1e-3, -7.0]])
    w0 = np.linspace(-1.0, 1.0, 8).reshape(2, 4)
    with xn.Graph().as_default():
        x = xn.Variable(x0, dtype="float64", name="x")
        y = xn.reduce_sum(xn.ops.leaky_relu(x, alpha) * w0)
        (g,) = xn.gradients(y, [x])
        got_y, got_g = xn.Session(device=dev).run([y, g], to_numpy=True)
    tx = torch.tensor(x0, requires_grad=True)
    ty = (torch.nn.functional.leaky_relu(tx, alpha) * torch.tensor(w0)).sum()
    ty.backward()
    np.testing.assert_allclose(got_y, ty.item(), rtol=1e-12)
    np.testing.assert_allclose(got_g, tx.grad.numpy(), rtol=1e-12)  # slope alpha at 0 too


# --------------------------------------------------------------------------- integer means


def _truncated_mean(values, axis, keepdims):
    """TF1's integer mean in Python integers: the exact sum, divided toward zero."""
    sums = np.sum(values.astype(object), axis=axis, keepdims=keepdims)
    count = values.size // np.asarray(sums).size
    return np.vectorize(lambda s: -(-s // count) if s < 0 else s // count, otypes=[object])(sums)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), (0, True), ((0, 2), False)])
def test_reduce_mean_of_integers_is_the_integer_mean_on_every_backend(dev, dtype, axis,
                                                                      keepdims):
    info = np.iinfo(dtype)
    low, high = (-(2**56), 2**56) if dtype == "int64" else (info.min, info.max)  # TF: int64
    rng = np.random.default_rng(0)  # sums wrap past int64's range; the others' never
    values = rng.integers(low, high, size=(3, 4, 5), endpoint=True).astype(dtype)
    values[0, 0, :2] = high  # sums far past int8's and int32's range: no overflow
    with xn.Graph().as_default():
        x = xn.placeholder(dtype, (3, 4, 5), name="x")
        mean = xn.reduce_mean(x, axis=axis, keepdims=keepdims)
        got = xn.Session(device=dev).run(mean, {x: values})
    assert mean.dtype == dtype and xn.dtypes.dtype_name(got.dtype) == dtype
    expected = _truncated_mean(values, axis, keepdims)
    assert xn.to_numpy(got).tolist() == expected.tolist()


def test_reduce_mean_of_int32_truncates_toward_zero_as_tf1(dev):
    with xn.Graph().as_default():
        x = xn.placeholder("int32", (None,), name="x")
        sess = xn.Session(device=dev)
        for values in ([1, 2], [-1, -2], [-3, 0], [7, 7, -3]):
            got = xn.to_numpy(sess.run(xn.reduce_mean(x), {x: np.array(values, np.int32)}))
            assert got.dtype == np.int32
            assert got.item() == int(sum(values) / len(values))  # small: exact as a float


def test_reduce_mean_refuses_booleans_and_empty_integer_axes(dev):
    with xn.Graph().as_default():
        with pytest.raises(TypeError, match=r"reduce_mean of bool values.*xn\.cast"):
            xn.reduce_mean(xn.placeholder("bool", (2,), name="b"))
        u = xn.placeholder(name="u")  # untyped: bools arrive at run time
        sess = xn.Session(device=dev)
        with pytest.raises(xn.OpError, match=r"reduce_mean of bool values"):
            sess.run(xn.reduce_mean(u), {u: np.array([True, False])})
        i = xn.placeholder("int32", (None,), name="i")
        with pytest.raises(xn.OpError, match=r"int32 values over an empty axis"):
            sess.run(xn.reduce_mean(i), {i: np.zeros(0, np.int32)})


@pytest.mark.parametrize("dtype, wanted", [("int8", "float32"), ("uint8", "float32"),
                                           ("int16", "float32"), ("int32", "float64"),
                                           ("int64", "float64"), ("uint32", "float64")])
def test_integer_division_is_tf1_truediv_on_every_backend(dev, dtype, wanted):
    # int32 / int32 said int32 statically, but NumPy gave float64, torch/JAX float32 and
    # array-api-strict raised.
    if dtype == "uint32" and not hasattr(dev.xp, "uint32"):
        pytest.skip(f"{dev.backend} has no uint32")
    a_host = np.array([7, 100, 3], dtype)
    b_host = np.array([2, 3, 7], dtype)
    with xn.Graph().as_default():
        a, b = xn.constant(a_host), xn.constant(b_host)
        for q in (a / b, xn.divide(a, b), a / 3):
            assert q.dtype == wanted
            out = xn.to_numpy(xn.Session(device=dev).run(q))
            assert out.dtype == wanted
            divisor = b_host if q.inputs[1] is b else np.array(3, dtype)
            expected = a_host.astype(wanted) / divisor.astype(wanted)
            np.testing.assert_allclose(out, expected, rtol=np.finfo(wanted).eps)


class _Probe(ops.Unary):
    """x itself, noting what the run context says while it runs."""

    seen: list = []

    def forward(self, xp, x):
        self.seen.append(ops.run_context.reads_without_sync)
        return x


def test_ops_ask_the_run_context_whether_values_read_without_sync(dev):
    """An op's forward asks ``ops.run_context.reads_without_sync``: the Session sets it to
    its device's for the run, the JAX pass to False while it traces (a tracer has no value),
    and it is back to its default after the run."""
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(2,))
        y = _Probe(x) * 2.0
        for passes in (False, True):
            _Probe.seen = []
            xn.Session(device=dev, passes=passes).run(y, {x: np.ones(2, np.float32)})
            traced = passes and dev.backend == "jax"
            assert set(_Probe.seen) == {dev.reads_without_sync and not traced}
    assert ops.run_context.reads_without_sync is True


def test_no_op_takes_a_host_reads_keyword():
    """Device detail stays out of op signatures: ops that check values ask the run context."""
    import inspect

    from xpnn import assignment

    classes = [v for v in vars(ops).values() if isinstance(v, type)
               and issubclass(v, xn.Operation)] + [assignment.Assign]
    assert ops.SparseSoftmaxCrossEntropy in classes and ops.DropoutMaskOf in classes
    takes = [c.__name__ for c in classes if "host_reads" in inspect.signature(c.forward).parameters]
    assert not takes, f"these ops take host_reads=: {takes}"
