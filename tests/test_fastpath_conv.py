"""The NumPy conv and pooling kernels (``xpnn/numpy_fast/conv.py``) beyond the per-op cases
of ``test_fastpath.py``: that they run rather than fall back, that their kept buffers never
leak into results, and a conv net's training steps against array-api-strict."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.test_fastpath import CASES, F32, F64, XP, _both, _build, _call_values
from xpnn.numpy_fast import kernels

CONV_CASES = [p for p in CASES if "Conv" in p.id or "Pool" in p.id]


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("build, gen, exact", CONV_CASES)
def test_kernels_fall_back_only_where_meant(build, gen, exact, dtype, request):
    values = gen(np.random.default_rng(1), dtype)
    op = _build(build, values)
    called = []

    def portable(*v):
        called.append(True)
        return op.forward(XP, *v)

    with np.errstate(all="ignore"):
        kernels.forward_fn(op, False, portable)(*_call_values(op, values))
    assert bool(called) == ("fallback" in request.node.callspec.id)


@pytest.mark.parametrize("cls, arity", [(xn.conv.Conv2D, 2), (xn.conv.Conv2DBackpropFilter, 3),
                                        (xn.conv.Conv2DBackpropInput, 3), (xn.conv.MaxPool, 1),
                                        (xn.conv.MaxPoolGrad, 2), (xn.conv.AvgPool, 1),
                                        (xn.conv.AvgPoolGrad, 2)])
def test_results_survive_the_next_call(cls, arity):
    """The padded input and the patch matrix are kept between calls; results are not."""
    window = xn.conv.Window(padding="SAME")
    extra = {"ksize": (2, 2)} if "Pool" in cls.__name__ else {}
    with xn.Graph().as_default():
        op = cls(*[xn.placeholder() for _ in range(arity)], window=window, **extra)
    rng = np.random.default_rng(3)
    shapes = {1: [(2, 5, 5, 3)], 2: [(2, 5, 5, 3), (2, 5, 5, 3)],
              3: [(2, 5, 5, 3), (3, 3, 3, 3), (2, 5, 5, 3)]}[arity]
    if cls is xn.conv.Conv2D:
        shapes = [(2, 5, 5, 3), (3, 3, 3, 3)]
    fn = kernels.forward_fn(op, False, None)
    first = fn(*_call_values(op, [rng.standard_normal(s).astype(F32) for s in shapes]))
    kept = first.copy()
    fn(*_call_values(op, [rng.standard_normal(s).astype(F32) for s in shapes]))
    np.testing.assert_array_equal(first, kept)


def _images(n=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, 8, 8, 1)).astype(F32) * 0.1
    labels = np.arange(n) % 3
    images[labels == 1, 1:7, 3:5, 0] += 1.0  # a vertical bar
    images[labels == 2, 3:5, 1:7, 0] += 1.0  # a horizontal one
    return images, labels


CONV_OPS = [xn.conv.Conv2D, xn.conv.Conv2DBackpropInput, xn.conv.Conv2DBackpropFilter,
            xn.conv.MaxPool, xn.conv.MaxPoolGrad, xn.conv.AvgPool, xn.conv.AvgPoolGrad]


def _count_kernel_runs(monkeypatch):
    runs = []

    def counting(cls, make):
        def counted(op, portable):
            fn = make(op, portable)
            return lambda *v: runs.append(cls) or fn(*v)

        return counted

    for cls in CONV_OPS:
        monkeypatch.setitem(kernels.FORWARD, cls, counting(cls, kernels.FORWARD[cls]))
    return runs


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv_net_training_matches_strict(data_format, monkeypatch):
    runs = _count_kernel_runs(monkeypatch)
    images, labels = _images()
    if data_format == "NCHW":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    before = images.copy()
    init = np.random.default_rng(1)
    w1 = init.standard_normal((3, 3, 1, 4)).astype(F32) * 0.5
    w2 = init.standard_normal((3, 3, 4, 6)).astype(F32) * 0.3
    dense = init.standard_normal((24, 3)).astype(F32) * 0.1

    def build():
        x = xn.placeholder(shape=before.shape, name="x")
        t = xn.placeholder(dtype="int64", shape=(None,), name="t")
        kw = {"data_format": data_format}
        b = xn.Variable(np.zeros(4, F32), name="b")
        h = xn.relu(xn.bias_add(xn.conv2d(x, xn.Variable(w1), padding="SAME", **kw), b, **kw))
        h = xn.max_pool2d(h, 2, 2, "VALID", **kw)
        h = xn.conv2d(h, xn.Variable(w2), strides=2, padding=((1, 0), (0, 1)), **kw)
        h = xn.avg_pool2d(xn.relu(h), 3, 1, "SAME", **kw)
        loss = xn.losses.sparse_softmax_cross_entropy(t, xn.flatten(h) @ xn.Variable(dense))
        return x, t, loss, xn.train.AdamOptimizer(0.01).minimize(loss), b

    def run(sess, nodes):
        x, t, loss, step, b = nodes
        losses = [float(xn.to_numpy(sess.run([loss, step], {x: images, t: labels})[0]))
                  for _ in range(4)]
        return losses, xn.to_numpy(sess.run(b))

    (fast, fast_b), (portable, portable_b) = _both(build, run)
    np.testing.assert_array_equal(images, before)
    np.testing.assert_allclose(fast, portable, rtol=1e-5)
    np.testing.assert_allclose(fast_b, portable_b, rtol=1e-4, atol=1e-6)
    assert fast[-1] < fast[0]
    assert set(runs) == set(CONV_OPS)  # each kernel ran in the NumPy session's steps
