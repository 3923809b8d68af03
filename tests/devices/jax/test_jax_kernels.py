"""The JAX kernels (``xpnn/devices/jax/kernels.py``, ``conv.py``) against the portable ops on
JAX: the tiled max-pool gradient, traced by ``jax.jit`` as in a compiled plan, on tied
windows, NaN and infinities in the input and the gradient, windows of -inf, rows and
columns no window reaches, both data formats; windows that do not tile go to the portable
op; and conv nets train as on the eager path (``Session(passes=False)``)."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

jax = pytest.importorskip("jax", reason="jax is not installed: the JAX kernels are not tested")

from tests.devices.numpy.test_fastpath import _images  # noqa: E402
from xpnn.devices.jax import conv as conv_kernels  # noqa: E402, F401  (registers them)
from xpnn.devices.jax import kernels  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

c = xn.conv
XP = xn.devices.resolve("cpu", backend="jax").xp
TILED = [("2x2", (2, 6, 8, 3), (2, 2)), ("uncovered", (2, 7, 9, 3), (2, 2)),
         ("3x2", (1, 6, 4, 2), (3, 2)), ("1x1", (1, 3, 3, 2), (1, 1))]


def _pool_grad(ksize, strides, padding, fmt):
    with xn.Graph().as_default():
        return c.MaxPoolGrad(xn.placeholder(), xn.placeholder(), ksize=ksize,
                             window=c.Window(strides, (1, 1), padding), data_format=fmt)


def _inputs(rng, x_shape, op, kind):
    """(x, g) as JAX arrays in the op's layout; ``kind`` "nonfinite": NaN (two in a window),
    infinities and a window of -inf in x, NaN and infinities in g."""
    fmt = op.data_format
    x = _images(rng, np.float32, x_shape, "NHWC", "ties" if kind == "ties" else "normal")
    y_shape = c.pool_output_shape("case", "NHWC", x_shape, op.ksize, op.window)
    g = rng.standard_normal(y_shape).astype(np.float32)
    if kind == "nonfinite":
        x.reshape(-1)[[0, 1, 5, 9]] = [np.nan, np.nan, np.inf, -np.inf]
        x[-1, : op.ksize[0], : op.ksize[1], :] = -np.inf
        g.reshape(-1)[[2, 3, 4]] = [np.nan, np.inf, -np.inf]
    if fmt == "NCHW":
        x, g = x.transpose(0, 3, 1, 2), g.transpose(0, 3, 1, 2)
    return jax.numpy.asarray(x), jax.numpy.asarray(g)


@pytest.mark.parametrize("kind", ["normal", "ties", "nonfinite"])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("name, x_shape, k", TILED, ids=[t[0] for t in TILED])
def test_tiled_max_pool_grad_matches_portable(name, x_shape, k, fmt, kind):
    op = _pool_grad(k, k, "VALID", fmt)
    x, g = _inputs(np.random.default_rng(0), x_shape, op, kind)
    called = []

    def portable(*v):
        called.append(1)
        return op.forward(XP, *v)

    got = jax.jit(kernels.kernel(op, portable))(x, g)
    assert not called  # traced the kernel, not the portable op
    want = op.forward(XP, x, g)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # NaN where NaN
    if kind == "nonfinite":
        assert np.isnan(np.asarray(got)).any()


@pytest.mark.parametrize("setup", [((2, 2), (1, 1), "VALID"), ((3, 3), (2, 2), "SAME"),
                                   ((2, 2), (2, 2), "SAME")],
                         ids=["overlapping", "same-s2", "same-padded"])
def test_windows_that_do_not_tile_take_the_portable_op(setup):
    op = _pool_grad(*setup, "NHWC")
    x, g = _inputs(np.random.default_rng(1), (2, 5, 5, 2), op, "normal")
    called = []
    fn = kernels.kernel(op, lambda *v: called.append(1) or op.forward(XP, *v))
    np.testing.assert_array_equal(np.asarray(fn(x, g)), np.asarray(op.forward(XP, x, g)))
    assert called


def test_integer_inputs_take_the_portable_op():
    op = _pool_grad((2, 2), (2, 2), "VALID", "NHWC")
    x = jax.numpy.arange(16, dtype=jax.numpy.int32).reshape(1, 4, 4, 1)
    called = []
    kernels.kernel(op, lambda *v: called.append(1) or op.forward(XP, *v))(x, x[:, :2, :2, :])
    assert called


def kernel_runs(monkeypatch, op_class) -> list:
    """A list that grows by one each time the JAX kernel of ``op_class`` is traced."""
    runs = []
    make = kernels.FORWARD[op_class]
    monkeypatch.setitem(kernels.FORWARD, op_class,
                        lambda op, portable: (lambda *v: runs.append(1) or
                                              make(op, portable)(*v)))
    return runs


def _convnet(fmt, jit, seed=0):
    graph = xn.Graph()
    with graph.as_default():
        shape = (None, 8, 8, 1) if fmt == "NHWC" else (None, 1, 8, 8)
        x = xn.placeholder("float32", shape, name="x")
        t = xn.placeholder("int64", (None,), name="t")
        init = np.random.default_rng(seed)
        w1 = xn.Variable(init.standard_normal((3, 3, 1, 4)).astype(np.float32) * 0.5)
        w2 = xn.Variable(init.standard_normal((3, 3, 4, 4)).astype(np.float32) * 0.3)
        kw = {"data_format": fmt}
        h = xn.max_pool2d(xn.relu(xn.conv2d(x, w1, padding="SAME", **kw)), 2, 2, "VALID", **kw)
        h = xn.max_pool2d(xn.relu(xn.conv2d(h, w2, **kw)), 2, 2, "VALID", **kw)
        dense = xn.Variable(init.standard_normal((4, 3)).astype(np.float32) * 0.3)
        loss = xn.losses.sparse_softmax_cross_entropy(t, xn.flatten(h) @ dense)
        step = xn.train.AdamOptimizer(0.01).minimize(loss)
        sess = xn.Session(backend="jax", passes=jit)
    return graph, sess, (x, t), (step, loss)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_conv_net_training_matches_the_eager_path(fmt, monkeypatch):
    runs = kernel_runs(monkeypatch, c.MaxPoolGrad)
    rng = np.random.default_rng(2)
    X = np.maximum(rng.standard_normal((10, 8, 8, 1)), 0).astype(np.float32)  # tied zeros
    X = X if fmt == "NHWC" else X.transpose(0, 3, 1, 2).copy()
    y = rng.integers(0, 3, 10)
    results = []
    for jit in (True, False):
        graph, sess, (x, t), (step, loss) = _convnet(fmt, jit)
        losses = [float(sess.run([step, loss], {x: X, t: y})[1]) for _ in range(4)]
        results.append((losses, [xn.to_numpy(sess.get_value(v)) for v in graph.variables]))
    (got, got_state), (want, want_state) = results
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(got_state, want_state):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    assert got[-1] < got[0]
    assert runs  # both pool gradients traced through the kernel
