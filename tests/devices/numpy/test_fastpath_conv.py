"""The NumPy conv and pooling kernels (``xpnn/devices/numpy/conv.py``) beyond the per-op cases
of ``test_fastpath.py``: that they run rather than fall back, that their kept buffers never
leak into results, and a conv net's training steps against array-api-strict."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.devices.numpy.test_fastpath import CASES, F32, F64, XP, _both, _build, _call_values
from xpnn.devices.numpy import kernels

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
            xn.conv.MaxPool, xn.conv.MaxPoolGrad, xn.conv.AvgPool, xn.conv.AvgPoolGrad,
            xn.conv.BiasAdd, xn.conv.BiasAddGrad]


def _count_kernel_runs(monkeypatch):
    runs = []

    def counting(cls, make):
        def counted(op, portable, **handoff):
            fn = make(op, portable, **handoff)
            return lambda *v: runs.append(cls) or fn(*v)

        return counted

    for cls in CONV_OPS:
        for table in (kernels.FORWARD, kernels.INPLACE):
            if cls in table:
                monkeypatch.setitem(table, cls, counting(cls, table[cls]))
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
    # each kernel ran in the NumPy session's steps; in NHWC the conv kernel adds the bias
    # (fusion.bias_add_into_conv), so the BiasAdd kernel has nothing left to do
    fused = {xn.conv.BiasAdd} if data_format == "NHWC" else set()
    assert set(runs) == set(CONV_OPS) - fused


def test_filter_gradient_shares_the_forward_patches_within_a_run(monkeypatch):
    """A Conv2D and its filter gradient in one plan gather the patches once; a plan with the
    gradient alone, run after the input changed, gathers them anew (nothing stale)."""
    from xpnn.devices.numpy import conv as conv_kernels

    gathered = []
    real = conv_kernels.as_strided
    monkeypatch.setattr(conv_kernels, "as_strided", lambda *a, **k: gathered.append(1) or
                        real(*a, **k))
    rng = np.random.default_rng(3)
    x0, x1 = (rng.standard_normal((2, 6, 6, 3)).astype(F32) for _ in range(2))
    w0 = rng.standard_normal((3, 3, 3, 4)).astype(F32)

    def build():
        x, w = xn.Variable(x0, name="x"), xn.Variable(w0, name="w")
        loss = xn.reduce_sum(xn.square(xn.conv2d(x, w, padding="SAME")))
        return x, loss, xn.gradients(loss, [w])[0]

    def run(sess, nodes):
        x, loss, dw = nodes
        both = xn.to_numpy(sess.run([loss, dw])[1])
        sess.set_value(x, x1)
        return both, xn.to_numpy(sess.run(dw)), xn.to_numpy(sess.run([loss, dw])[1])

    fast, portable = _both(build, run)
    for got, expected in zip(fast, portable):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fast[0], fast[1])  # the input did change
    assert len(gathered) == 3  # once per plan run: shared in the two-fetch plan


@pytest.mark.parametrize("setting, applied", [("", "True"), ("system", "False")])
def test_allocator_settings_are_applied_once_unless_refused(setting, applied):
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        applied = "False"
    code = ("import xpnn as xn; from xpnn.devices.numpy import allocator\n"
            "with xn.Graph().as_default():\n"
            "    x = xn.placeholder(); xn.Session(device='cpu').run(x * 2.0, {x: 1.0})\n"
            "print(allocator.tune.cache_info().currsize, allocator.tune())")
    env = {**__import__("os").environ, "XPNN_MALLOC": setting}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["1", applied]  # tuned at the first plan, by the time it ran


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_pool_kernels_split_over_threads_match_portable(data_format):
    """Arrays big enough for ``threads.over_batch`` to split: the same values as the
    portable ops, ties (ReLU's zeros) included."""
    from xpnn.devices.numpy import threads

    rng = np.random.default_rng(7)
    shape = (5, 64, 66, 16) if data_format == "NHWC" else (5, 16, 64, 66)
    x = np.maximum(rng.standard_normal(shape), 0).astype(F32)  # many tied zero windows
    assert x.size >= threads.MIN_ELEMENTS
    window = xn.conv.Window((2, 2))
    with xn.Graph().as_default():
        pool = xn.conv.MaxPool(xn.placeholder(), ksize=(2, 2), window=window,
                               data_format=data_format)
        y = pool.forward(XP, x)
        g = rng.standard_normal(y.shape).astype(F32)
        grad = xn.conv.MaxPoolGrad(xn.placeholder(), xn.placeholder(), ksize=(2, 2),
                                   window=window, data_format=data_format)
        fast_y = kernels.forward_fn(pool, False, None)(x)
        fast_dx = kernels.forward_fn(grad, False, None)(x, g)
        np.testing.assert_array_equal(fast_y, y)
        np.testing.assert_array_equal(fast_dx, grad.forward(XP, x, g))


def _count_relu_grad_kernels(monkeypatch):
    runs = []
    for table in (kernels.FORWARD, kernels.INPLACE):
        make = table[xn.ops.ReluGrad]

        def counted(op, portable, make=make, **options):
            fn = make(op, portable, **options)
            return lambda *v: runs.append(1) or fn(*v)

        monkeypatch.setitem(table, xn.ops.ReluGrad, counted)
    return runs


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("ksize, strides, padding", [(2, 2, "VALID"), (3, 2, "SAME"),
                                                     ((2, 3), 1, "VALID")],
                         ids=["tiled", "overlapping", "stride1"])
@pytest.mark.parametrize("also_fetched", [False, True], ids=["fused", "dx-fetched"])
def test_relu_grad_folded_into_max_pool_grad_matches_portable(data_format, ksize, strides,
                                                                padding, also_fetched,
                                                                monkeypatch):
    """ReluGrad(MaxPoolGrad(relu, g), relu) as one kernel (``devices.numpy.fusion``): equal to
    the portable ops (zeros of either sign), with tied zero windows, all-negative windows, NaN,
    infinite and negative gradients; not fused where the pool's gradient is also fetched."""
    runs = _count_relu_grad_kernels(monkeypatch)
    rng = np.random.default_rng(11)
    shape = (3, 8, 10, 4) if data_format == "NHWC" else (3, 4, 8, 10)
    x0 = rng.standard_normal(shape).astype(F32)
    x0[0] = -np.abs(x0[0])  # an image of zero ReLU outputs only: every window tied
    x0[1, :4] = 0.0

    def build():
        x = xn.placeholder(shape=shape, name="x")
        y = xn.max_pool2d(xn.relu(x), ksize, strides, padding, data_format=data_format)
        g = xn.placeholder(shape=y.shape, name="g")
        dx = xn.gradients(xn.reduce_sum(y * g), [x])[0]
        assert isinstance(dx, xn.ops.ReluGrad)
        assert isinstance(dx.inputs[0], xn.conv.MaxPoolGrad)
        return x, g, y, [dx, dx.inputs[0]] if also_fetched else [dx]

    def run(sess, nodes):
        x, g, y, fetches = nodes
        gy = np.random.default_rng(12).standard_normal(y.shape).astype(F32)
        gy.flat[::7] = -np.inf
        gy.flat[3::11] = np.nan
        gy.flat[5::13] = np.inf
        with np.errstate(invalid="ignore"):
            return [xn.to_numpy(v) for v in sess.run(fetches, {x: x0, g: gy})]

    fast, portable = _both(build, run)  # NumPy first: its kernels alone are counted
    for got, want in zip(fast, portable):
        np.testing.assert_array_equal(got, want)
    assert np.isnan(fast[0]).any() and (fast[0] == 0).any() and (fast[0] != 0).any()
    assert len(runs) == (1 if also_fetched else 0)  # fused: no ReluGrad kernel ran
