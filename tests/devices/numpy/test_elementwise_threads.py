"""The NumPy device's elementwise kernels around the conv layers (issue #30) on arrays large
enough for ``threads.over_batch`` to split, two threads forced: bit for bit the portable ops
(compared as integers, so signed zeros and NaN payloads count), NaN, infinities, signed
zeros and exact cancellations included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import xpnn as xn
from xpnn.devices.numpy import kernels, threads

XP = xn.devices.resolve("cpu").xp
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


@pytest.fixture
def splits(monkeypatch):
    """Two threads whatever the machine or ``XPNN_THREADS``; the sizes ``over_batch`` split."""
    pool = ThreadPoolExecutor(1)
    monkeypatch.setattr(threads, "_workers", lambda: 2)
    monkeypatch.setattr(threads, "_pool", lambda: pool)
    real, seen = threads.over_batch, []
    monkeypatch.setattr(threads, "over_batch", lambda fn, n, elements: seen.append(elements)
                        or real(fn, n, elements))
    yield seen
    pool.shutdown()


def bits(a):
    return np.asarray(a).view(f"u{a.dtype.itemsize}")


def specials(shape, dtype, seed=0):
    """Normal values with every kind of special one sprinkled in."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    for start, value in enumerate([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf]):
        flat[start::7 + start] = value
    return a


# NHWC images whose bias row spans whole images (k = 3), and larger ones (a row of pixels)
SHAPES = [(100, 20, 20, 8), (6, 40, 40, 32)]


def _bias_case(shape, dtype, data_format):
    v = specials(shape, dtype)
    b = specials(shape[-1:], dtype, seed=1)
    b[:3] = [-0.0, 0.0, -0.0]
    v[::2, ::3, :, 0] = -0.0  # -0.0 + -0.0 keeps its sign
    v[1::2, :, ::5, 1] = -0.0  # -0.0 + 0.0 does not
    v[:, :, 1, 5] = -b[5]  # exact cancellation: +0.0
    if data_format == "NCHW":
        v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))
    return v, b


@DTYPES
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("shape", SHAPES, ids=["image-rows", "pixel-rows"])
@pytest.mark.parametrize("inplace", [False, True], ids=["new", "inplace"])
def test_bias_add_then_relu_split_over_threads_match_portable(shape, data_format, dtype,
                                                              inplace, splits):
    v, b = _bias_case(shape, dtype, data_format)
    assert v.size >= threads.MIN_ELEMENTS
    with xn.Graph().as_default():
        add = xn.conv.BiasAdd(xn.placeholder(), xn.placeholder(), data_format=data_format)
        relu = xn.ops.Relu(xn.placeholder())
    given = v.copy()
    with np.errstate(invalid="ignore"):  # inf - inf
        expected = add.forward(XP, v, b)
        got = kernels.forward_fn(add, inplace, None)(given, b)
        assert (got is given) == inplace
        np.testing.assert_array_equal(bits(got), bits(expected))
        y = kernels.forward_fn(relu, inplace, None)(got)
        np.testing.assert_array_equal(bits(y), bits(relu.forward(XP, expected)))
    assert (y is got) == inplace
    assert np.signbit(expected[expected == 0]).any() and np.isnan(y).any()
    assert splits == [v.size, v.size]  # each kernel split its array over the threads


@DTYPES
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(700, 400), (50, 30, 200)])
def test_relu_split_over_threads_in_either_order_matches_portable(shape, order, dtype, splits):
    x = np.asarray(specials(shape, dtype), order=order)
    with xn.Graph().as_default():
        relu = xn.ops.Relu(xn.placeholder())
    expected = relu.forward(XP, x)
    got = kernels.forward_fn(relu, False, None)(x)
    np.testing.assert_array_equal(bits(got), bits(expected))
    assert got.flags[f"{order}_CONTIGUOUS"]
    assert splits == [x.size]


@pytest.mark.parametrize("state", ["raise", "ignore"])
def test_error_state_holds_in_every_thread(state, splits):
    """inf - inf in the last image alone, which the second thread adds: ``np.errstate``
    rules there as on the portable path (it raises, or stays silent)."""
    import warnings

    v = np.ones((8, 64, 64, 8), np.float32)
    v[-1, 0, 0, 0] = np.inf
    b = np.zeros(8, np.float32)
    b[0] = -np.inf
    with xn.Graph().as_default():
        add = xn.conv.BiasAdd(xn.placeholder(), xn.placeholder())
    kernel = kernels.forward_fn(add, False, None)
    with np.errstate(invalid=state), warnings.catch_warnings():
        warnings.simplefilter("error")
        if state == "raise":
            with pytest.raises(FloatingPointError):
                add.forward(XP, v, b)
            with pytest.raises(FloatingPointError):
                kernel(v, b)
        else:
            np.testing.assert_array_equal(kernel(v, b), add.forward(XP, v, b))
    assert splits == [v.size]


def _pool_case(data_format, nan_image=None):
    """ReLU outputs (ties of zeros, -0.0 among them, and infinities) pooled 2x2, and a
    gradient with every special value; a NaN in image ``nan_image`` of the input."""
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal((12, 30, 34, 24)), 0).astype(np.float32)
    x[0] = 0.0  # every window tied
    x[1, ::2] = -0.0  # ties of -0.0 and 0.0
    x[2, 5, 7] = np.inf
    x[3, ::3, ::2] = x[3, 1::3, ::2]  # ties of positive maxima
    if nan_image is not None:
        x[nan_image, 3, 4, 5] = np.nan
    g = specials((12, 15, 17, 24), np.float32, seed=6)
    if data_format == "NCHW":
        x, g = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in (x, g))
    return x, g


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("nan_image", [None, 11], ids=["finite", "nan-in-last-image"])
def test_max_pool_grad_with_relu_mask_matches_unfused_kernels(data_format, nan_image, splits):
    """The tiled max-pool gradient with the ReLU's mask folded in (``fusion``) against the
    unfused kernels bit for bit (the mask applied to g once per block rather than to each
    offset's hits) and against the portable ops; a NaN in the second thread's images alone
    sends the whole gradient to the general kernel (equal values, zeros of either sign)."""
    x, g = _pool_case(data_format, nan_image)
    assert x.size >= threads.MIN_ELEMENTS
    window = xn.conv.Window((2, 2))
    with xn.Graph().as_default():
        grad = xn.conv.MaxPoolGrad(xn.placeholder(), xn.placeholder(), ksize=(2, 2),
                                   window=window, data_format=data_format)
        relu_grad = xn.ops.ReluGrad(xn.placeholder(), xn.placeholder())
    portable_relu_grad = lambda d, y: relu_grad.forward(XP, d, y)  # noqa: E731
    fused = kernels.forward_fn(grad, False, None, relu_grad=portable_relu_grad)
    with np.errstate(invalid="ignore"):  # 0 * inf
        got = fused(x, g)
        unfused = kernels.forward_fn(relu_grad, False, None)(
            kernels.forward_fn(grad, False, None)(x, g), x)
        portable = relu_grad.forward(XP, grad.forward(XP, x, g), x)
    if nan_image is None:  # the general kernel adds shares into zeros: -0.0 becomes 0.0
        np.testing.assert_array_equal(bits(got), bits(unfused))
        assert np.signbit(got[got == 0]).any()
    np.testing.assert_array_equal(got, portable)
    np.testing.assert_array_equal(got, unfused)
    assert np.isnan(got).any()
    assert splits[0] == x.size  # the tiled kernel split over the threads


@DTYPES
@pytest.mark.parametrize("shape", [(128, 26, 26, 32), (128, 11, 11, 64), (200, 30, 31, 3)])
def test_bias_gradient_split_over_threads_is_the_one_thread_sum(shape, dtype, splits,
                                                                monkeypatch):
    """The channel sums of a large NHWC gradient, chunks of it summed on two threads: the
    portable sums within float tolerance, and bit for bit what one thread gives (the chunks
    do not depend on the thread count)."""
    g = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    with xn.Graph().as_default():
        op = xn.conv.BiasAddGrad(xn.placeholder())
    kernel = kernels.forward_fn(op, False, None)
    got = kernel(g)
    assert splits and splits[0] >= threads.MIN_ELEMENTS
    monkeypatch.setattr(threads, "_workers", lambda: 1)
    np.testing.assert_array_equal(bits(got), bits(kernel(g)))
    expected = op.forward(XP, g)
    tol = {np.float32: 2e-5, np.float64: 1e-12}[dtype] * np.prod(shape[:-1]) ** 0.5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("strides, padding", [((1, 1), "SAME"), ((2, 1), "VALID")])
def test_patch_matrix_copied_over_threads_is_the_portable_one(strides, padding, splits):
    """im2col's copy of conv 2's patches for the whole batch, split by images over the
    threads, and gathered block by block as a split product does: the portable patch
    matrix bit for bit (NaN and signed zeros among the inputs)."""
    from xpnn.devices.numpy import conv as conv_kernels
    from xpnn.ops import conv

    x = specials((40, 15, 15, 32), np.float32, seed=9)
    window = xn.conv.Window(strides, padding=padding)
    with xn.Graph().as_default():
        op = xn.conv.Conv2D(xn.placeholder(), xn.placeholder(), window=window)
    pads, out_hw = conv._geometry(x.shape, (3, 3), window)
    expected = conv._im2col(XP, conv._pad(XP, x, pads), (3, 3), window, out_hw)
    got, gather = conv_kernels._im2col_for(op)(x, (3, 3))
    assert gather(0, 40) is not None
    np.testing.assert_array_equal(bits(got), bits(expected))
    assert splits == [got.size] and got.size >= threads.MIN_ELEMENTS
    per = out_hw[0] * out_hw[1]
    got, gather = conv_kernels._im2col_for(op)(x, (3, 3))
    blocks = [gather(a, min(a + 7, 40)) for a in range(0, 40, 7)]
    np.testing.assert_array_equal(bits(np.concatenate(blocks)), bits(expected))
    np.testing.assert_array_equal(bits(got), bits(expected))
    assert blocks[1].shape == (7 * per, expected.shape[1]) and len(splits) == 1


def _count_relu_kernels(monkeypatch):
    runs = []
    for table in (kernels.FORWARD, kernels.INPLACE):
        make = table[xn.ops.Relu]

        def counted(op, portable, make=make, **options):
            fn = make(op, portable, **options)
            return lambda *v: runs.append(1) or fn(*v)

        monkeypatch.setitem(table, xn.ops.Relu, counted)
    return runs


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("source", ["owned", "fed", "also-fetched"])
def test_relu_folded_into_bias_add_matches_unfused_kernels(data_format, source, splits,
                                                          monkeypatch):
    """Relu(BiasAdd(v, b)) as one kernel (``fusion.relu_into_bias_add``): bit for bit the
    unfused kernels (a plan with the fusion turned off) and equal to array-api-strict, with
    every special value in v and b; written into v where the plan owns it (v = x * 1.0),
    into a new array where v is fed; not fused where the BiasAdd's result is also fetched."""
    from tests.devices.numpy.test_fastpath import numpy_session, strict_session
    from xpnn.devices.numpy import fusion

    v0, b0 = _bias_case(SHAPES[0], np.float32, data_format)
    before = v0.copy()

    def build():
        x = xn.placeholder(shape=v0.shape, name="x")
        b = xn.placeholder(shape=b0.shape, name="b")
        added = xn.bias_add(x * 1.0 if source == "owned" else x, b, data_format=data_format)
        y = xn.relu(added)
        return x, b, [y, added] if source == "also-fetched" else [y]

    def run(session):
        with xn.Graph().as_default():
            x, b, fetches = build()
            with np.errstate(invalid="ignore"):
                return [xn.to_numpy(v) for v in session().run(fetches, {x: v0, b: b0})]

    runs, made = _count_relu_kernels(monkeypatch), []
    for table in (kernels.FORWARD, kernels.INPLACE):
        make = table[xn.conv.BiasAdd]

        def recorded(op, portable, make=make, table=table, **options):
            made.append((table is kernels.INPLACE, sorted(options)))
            return make(op, portable, **options)

        monkeypatch.setitem(table, xn.conv.BiasAdd, recorded)
    fused = run(numpy_session)
    fused_runs = len(runs)
    monkeypatch.setattr(fusion, "relu_into_bias_add", lambda *a, **k: ({}, set()),
                        raising=False)  # before the fusion existed: the same plan
    unfused = run(numpy_session)
    portable = run(strict_session)
    for got, plain, want in zip(fused, unfused, portable):
        np.testing.assert_array_equal(bits(got), bits(plain))
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(bits(v0), bits(before))  # the fed array is left alone
    assert fused_runs == (1 if source == "also-fetched" else 0)  # fused: no Relu kernel ran
    assert made[0] == ({"owned": (True, ["relu"]), "fed": (False, ["relu"]),
                        "also-fetched": (False, [])}[source])
    assert len(runs) == fused_runs + 1 and v0.size in splits


@pytest.mark.parametrize("case", ["relu", "no-relu", "conv-fetched", "bias-add-fetched",
                                  "float64-bias", "NCHW"])
def test_bias_add_folded_into_conv_matches_unfused_kernels(case, splits, monkeypatch):
    """BiasAdd (and the Relu folded into it) applied by the Conv2D kernel to each block of
    images after its product (``fusion.bias_add_into_conv``): bit for bit the plan without
    that fold, and array-api-strict's values, with every special value in the bias; the
    products split over two threads. Folded where the bias add's result is fetched too (the
    Relu then runs alone), not where the conv's is, nor in NCHW; a bias of another dtype
    leaves the add to the BiasAdd step."""
    from tests.devices.numpy.test_fastpath import numpy_session, strict_session
    from xpnn.devices.numpy import blas, fusion
    from xpnn.devices.numpy import conv as conv_kernels

    if not blas.splits_products():
        pytest.skip("NumPy's OpenBLAS thread count not found: the products are not split")
    monkeypatch.setattr(conv_kernels, "_BLOCK_ENTRIES", 1)  # a block per image
    blocks, real = [], threads.over_blocks
    monkeypatch.setattr(threads, "over_blocks", lambda fn, n, rows, elements: blocks.append(
        (n, rows)) or real(fn, n, rows, elements))
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((6, 40, 40, 8)).astype(np.float32)
    w0 = rng.standard_normal((3, 3, 8, 16)).astype(np.float32) * 0.2
    b0 = specials((16,), np.float64 if case == "float64-bias" else np.float32, seed=3)
    fmt = "NCHW" if case == "NCHW" else "NHWC"
    if fmt == "NCHW":
        x0 = np.ascontiguousarray(x0.transpose(0, 3, 1, 2))

    def run(session):
        with xn.Graph().as_default():
            x, w = xn.placeholder(name="x"), xn.placeholder(name="w")
            b = xn.placeholder(name="b", dtype=str(b0.dtype))
            y = xn.conv2d(x, w, padding="SAME", data_format=fmt)
            added = xn.bias_add(y, b, data_format=fmt)
            fetches = [added if case == "no-relu" else xn.relu(added)]
            fetches += {"conv-fetched": [y], "bias-add-fetched": [added]}.get(case, [])
            with np.errstate(invalid="ignore"):
                return [xn.to_numpy(v) for v in session().run(fetches, {x: x0, w: w0, b: b0})]

    options, ran = [], []
    for table in (kernels.FORWARD, kernels.INPLACE):
        if xn.conv.Conv2D in table:
            make = table[xn.conv.Conv2D]

            def recorded(op, portable, make=make, **kw):
                options.append(sorted(kw))
                return make(op, portable, **kw)

            monkeypatch.setitem(table, xn.conv.Conv2D, recorded)
        make_add = table[xn.conv.BiasAdd]

        def counted(op, portable, make_add=make_add, **kw):
            fn = make_add(op, portable, **kw)
            return lambda *v: ran.append(1) or fn(*v)

        monkeypatch.setitem(table, xn.conv.BiasAdd, counted)
    fused = run(numpy_session)
    fused_options, fused_adds = options[:], len(ran)
    monkeypatch.setattr(fusion, "bias_add_into_conv", lambda *a, **k: set())
    unfused = run(numpy_session)
    portable = run(strict_session)
    for got, plain, want in zip(fused, unfused, portable, strict=True):
        np.testing.assert_array_equal(bits(got), bits(plain))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    folds = case in ("relu", "no-relu", "bias-add-fetched", "float64-bias")
    assert any("bias" in o for o in fused_options) == folds
    # the BiasAdd kernel runs where nothing was folded, or the conv left the bias to it
    assert fused_adds == (0 if case in ("relu", "no-relu", "bias-add-fetched") else 1)
    assert (6, 1) in blocks  # the conv's products ran image by image on two threads


@pytest.mark.parametrize("case", ["pooled", "pool-padded", "relu-fetched-too", "no-relu",
                                  "float64-bias"])
def test_max_pool_folded_into_conv_matches_unfused_kernels(case, splits, monkeypatch):
    """MaxPool(Relu(BiasAdd(Conv2D))) pooled by the Conv2D kernel block by block, right
    after the bias and ReLU (``fusion.pool_into_conv``), the maxima handed to the pool's
    gradient: the loss, the activation, the pooled values and every gradient bit for bit
    the plan without that fold, and array-api-strict's values. The MaxPool kernel pools for
    itself where the conv did not: SAME padding, a bias the conv left to its BiasAdd; a
    pool with no ReLU before it, or of a ReLU that is fetched too, is the conv's too."""
    from tests.devices.numpy.test_fastpath import numpy_session, strict_session
    from xpnn.devices.numpy import blas, fusion
    from xpnn.devices.numpy import conv as conv_kernels

    if not blas.splits_products():
        pytest.skip("NumPy's OpenBLAS thread count not found: the products are not split")
    monkeypatch.setattr(conv_kernels, "_BLOCK_ENTRIES", 1)  # a block per image
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((6, 41, 41, 3)).astype(np.float32)
    w0 = rng.standard_normal((3, 3, 3, 16)).astype(np.float32) * 0.3
    b0 = rng.standard_normal(16).astype(np.float64 if case == "float64-bias" else np.float32)
    b0[:2] = [-0.0, 0.0]
    t0 = rng.integers(0, 5, 6)

    def run(session):
        with xn.Graph().as_default():
            x = xn.placeholder(shape=x0.shape, name="x")
            b = xn.Variable(b0, name="b")
            w = xn.Variable(w0, name="w")
            a = xn.bias_add(xn.conv2d(x, w, padding="VALID"), b)
            h = a if case == "no-relu" else xn.relu(a)
            p = xn.max_pool2d(h, 2, 2, "SAME" if case == "pool-padded" else "VALID")
            logits = xn.matmul(xn.flatten(p), xn.constant(
                np.random.default_rng(9).standard_normal((p.shape[1] * p.shape[2] * 16, 5)),
                dtype="float32"))
            loss = xn.losses.sparse_softmax_cross_entropy(xn.constant(t0), logits)
            grads = xn.gradients(loss, [w, b])
            fetches = [loss, p, *grads] + ([h] if case == "relu-fetched-too" else [])
            with np.errstate(invalid="ignore"):
                return [xn.to_numpy(v) for v in session().run(fetches, {x: x0})]

    hits, real_take = [], conv_kernels.ConvPool.take
    monkeypatch.setattr(conv_kernels.ConvPool, "take", lambda self, x: hits.append(
        x is self.source) or real_take(self, x))
    fused = run(numpy_session)
    fused_hits = hits[:]
    monkeypatch.setattr(fusion, "pool_into_conv", lambda *a, **k: None)
    unfused = run(numpy_session)
    portable = run(strict_session)
    for got, plain, want in zip(fused, unfused, portable, strict=True):
        np.testing.assert_array_equal(bits(got), bits(plain))
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    # the MaxPool kernel took the conv's maxima (True), or found none to take ([])
    assert fused_hits == {"pooled": [True], "pool-padded": [], "relu-fetched-too": [True],
                          "no-relu": [True], "float64-bias": []}[case]
