"""The NumPy conv kernels' faster paths (``xpnn/devices/numpy/conv.py``, issue #30) against
the portable ops on odd shapes: strides 1 and 2, SAME, VALID and explicit padding,
dilation, 1 and 3 channels, batch 1, both layouts; float32 and float64."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import xpnn as xn
from xpnn.devices.numpy import blas, kernels
from xpnn.plan import Description

XP = xn.devices.resolve("cpu").xp
TOL = {np.float32: 2e-5, np.float64: 1e-12}

# (batch, height, width, in channels, out channels, kernel, strides, dilations, padding)
SHAPES = [
    (2, 7, 6, 3, 4, (3, 3), (1, 1), (1, 1), "SAME"),
    (1, 5, 5, 1, 2, (3, 3), (1, 1), (1, 1), "VALID"),
    (3, 6, 7, 1, 3, (3, 2), (1, 1), (2, 1), "SAME"),
    (2, 4, 4, 3, 2, (1, 1), (1, 1), (1, 1), "VALID"),
    (2, 5, 6, 2, 3, (2, 3), (1, 1), (1, 1), ((2, 0), (1, 3))),
    (2, 7, 7, 3, 2, (3, 3), (2, 2), (1, 1), "SAME"),
    (1, 8, 5, 1, 2, (3, 3), (2, 1), (1, 1), "VALID"),
]
IDS = [f"{s[0]}x{s[1]}x{s[2]}x{s[3]}-k{s[5][0]}{s[5][1]}-s{s[6][0]}{s[6][1]}-d{s[7][0]}{s[7][1]}-"
       f"{s[8] if isinstance(s[8], str) else 'explicit'}" for s in SHAPES]


def _case(shape, dtype, data_format, seed=0):
    n, h, w, c, o, k, strides, dilations, padding = shape
    rng = np.random.default_rng(seed)
    window = xn.conv.Window(strides, dilations, padding)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    f = rng.standard_normal((*k, c, o)).astype(dtype)
    with xn.Graph().as_default():
        conv = xn.conv.Conv2D(xn.placeholder(), xn.placeholder(), window=window)
        y = conv.forward(XP, x, f)
    g = rng.standard_normal(y.shape).astype(dtype)
    if data_format == "NCHW":
        x, g = x.transpose(0, 3, 1, 2).copy(), g.transpose(0, 3, 1, 2).copy()
    return window, x, f, g


def _op(cls, window, data_format, arity=3):
    with xn.Graph().as_default():
        return cls(*[xn.placeholder() for _ in range(arity)], window=window,
                   data_format=data_format)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_input_gradient_as_shifted_products_matches_portable(shape, dtype, data_format,
                                                             monkeypatch):
    """Stride 1: one BLAS product per kernel offset accumulated into dx (no strided adds),
    the portable op's values; other strides keep the col2im kernel."""
    if not blas.available():
        pytest.skip("NumPy's OpenBLAS not found: the kernel uses col2im")
    calls = []
    real = blas.accumulate_product
    monkeypatch.setattr(blas, "accumulate_product", lambda *a, **k: calls.append(1) or
                        real(*a, **k))
    window, x, f, g = _case(shape, dtype, data_format)
    op = _op(xn.conv.Conv2DBackpropInput, window, data_format)
    got = kernels.forward_fn(op, False, None)(Description.of(x), f, g)
    expected = op.forward(XP, x, f, g)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype], atol=TOL[dtype])
    offsets = shape[5][0] * shape[5][1]
    assert len(calls) == (offsets - 1 if shape[6] == (1, 1) else 0)



@pytest.mark.parametrize("n, elements", [(128, 128 * 21632), (7, 7 * 10), (3, 3 << 20),
                                         (1, 1 << 21)])
def test_over_batch_hands_out_cache_sized_blocks(n, elements):
    """Each call gets consecutive rows touching at most ``BLOCK_ELEMENTS`` entries (or one
    row where a row is larger); together they cover ``range(n)`` once."""
    import threading

    from xpnn.devices.numpy import threads

    lock, ranges = threading.Lock(), []

    def fn(a, b):
        with lock:
            ranges.append((a, b))

    threads.over_batch(fn, n, elements)
    per_row = elements // n
    assert sorted(r for a, b in ranges for r in range(a, b)) == list(range(n))
    assert all(b - a == 1 or (b - a) * per_row <= threads.BLOCK_ELEMENTS for a, b in ranges)


def test_over_blocks_shares_the_blocks_and_takes_over_a_late_threads(monkeypatch):
    """Each thread gets an equal share of equal blocks (at most ``rows`` each); a pool
    thread held up in its first block leaves the rest of its share to the caller, which
    takes them from the back once its own are done. Each block runs once."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from xpnn.devices.numpy import threads

    pool = ThreadPoolExecutor(1)
    monkeypatch.setattr(threads, "_workers", lambda: 2)
    monkeypatch.setattr(threads, "_pool", lambda: pool)
    lock, ran = threading.Lock(), []
    caller = threading.current_thread()

    def fn(a, b):
        mine = threading.current_thread() is caller
        if not mine:
            time.sleep(0.2)  # the pool thread's first block takes long
        with lock:
            ran.append((mine, (a, b)))

    threads.over_blocks(fn, 50, 3, threads.MIN_ELEMENTS)
    pool.shutdown()
    grid = [(50 * i // 18, 50 * (i + 1) // 18) for i in range(18)]  # 2 shares of 9 blocks
    assert sorted(r for _, r in ran) == grid and all(b - a <= 3 for a, b in grid)
    theirs = [r for mine, r in ran if not mine]
    assert theirs == [grid[9]]  # its first block; the caller took its other 8
    assert [r for mine, r in ran if mine] == grid[:9] + grid[10:][::-1]


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 5, 4, 3, 6, (1, 1), (1, 1), (1, 1), "SAME"),
                                   (1, 3, 3, 1, 2, (1, 1), (1, 1), (1, 1), "VALID")],
                         ids=["2x5x4x3-SAME", "batch1-1channel-VALID"])
def test_one_by_one_filters_use_the_input_as_patch_matrix(shape, dtype, data_format,
                                                          monkeypatch):
    """A 1x1 filter at stride 1: the forward and filter gradient multiply the input itself
    (no patch copy gathered), with the portable op's values."""
    from xpnn.devices.numpy import conv as conv_kernels

    gathered = []
    real = conv_kernels.as_strided
    monkeypatch.setattr(conv_kernels, "as_strided", lambda *a, **k: gathered.append(1) or
                        real(*a, **k))
    window, x, f, g = _case(shape, dtype, data_format)
    forward = _op(xn.conv.Conv2D, window, data_format, arity=2)
    filters = _op(xn.conv.Conv2DBackpropFilter, window, data_format)
    got_y = kernels.forward_fn(forward, False, None)(x, f)
    got_dw = kernels.forward_fn(filters, False, None)(x, Description.of(f), g)
    for got, expected in [(got_y, forward.forward(XP, x, f)),
                          (got_dw, filters.forward(XP, x, f, g))]:
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=TOL[dtype], atol=TOL[dtype])
    assert not gathered


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (2, 5, 3, 32), (1, 17, 1, 64), (3, 4, 5, 1),
                                   (2, 3, 3, 600), (8, 26, 26, 32)])
def test_bias_gradient_sums_without_blas(shape, dtype, monkeypatch):
    """The channel sums of an NHWC gradient (any row count, with or without rows left over
    from the folded first sum) are the portable op's, computed by NumPy's sums alone: no
    BLAS call wakes BLAS's threads for them."""
    from xpnn.devices.numpy import conv as conv_kernels

    products = []
    matmul = np.matmul
    monkeypatch.setattr(conv_kernels.np, "matmul", lambda *a, **k: products.append(1) or
                        matmul(*a, **k))
    g = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    with xn.Graph().as_default():
        op = xn.conv.BiasAddGrad(xn.placeholder())
    got = kernels.forward_fn(op, False, None)(g)
    monkeypatch.undo()
    expected = op.forward(XP, g)
    assert got.shape == expected.shape == (shape[-1],) and got.dtype == expected.dtype
    rows = np.prod(shape[:-1])
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype], atol=TOL[dtype] * rows ** 0.5)
    assert not products


@pytest.fixture
def split_products(monkeypatch):
    """Every conv product split over two of xpnn's threads in blocks of one or two images,
    whatever the machine's cores; the OpenBLAS thread counts seen inside recorded."""
    from concurrent.futures import ThreadPoolExecutor

    from xpnn.devices.numpy import conv as conv_kernels
    from xpnn.devices.numpy import threads

    if not blas.splits_products():
        pytest.skip("NumPy's OpenBLAS thread count not found: the products are not split")
    pool = ThreadPoolExecutor(1)
    monkeypatch.setattr(threads, "_workers", lambda: 2)
    monkeypatch.setattr(threads, "_pool", lambda: pool)
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(conv_kernels, "_BLOCK_ENTRIES", 1)
    seen = []
    real = blas.one_thread

    @contextlib.contextmanager
    def recorded():
        with real():
            seen.append(blas._thread_count[1]())
            yield

    monkeypatch.setattr(blas, "one_thread", recorded)
    yield seen
    pool.shutdown()


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_products_split_by_image_blocks_match_portable(shape, dtype, data_format,
                                                       split_products):
    """The forward, filter gradient (gathering its own patches, or handed the forward's)
    and input gradient, each thread multiplying its images block by block with OpenBLAS at
    one thread: the portable ops' values, and OpenBLAS's thread count restored after."""
    from xpnn.devices.numpy import conv as conv_kernels

    before = blas._thread_count[1]()
    window, x, f, g = _case((shape[0] + 3, *shape[1:]), dtype, data_format, seed=1)
    forward = _op(xn.conv.Conv2D, window, data_format, arity=2)
    filters = _op(xn.conv.Conv2DBackpropFilter, window, data_format)
    inputs = _op(xn.conv.Conv2DBackpropInput, window, data_format)
    handoff = conv_kernels.Handoff()
    paired_forward = kernels.FORWARD[xn.conv.Conv2D](forward, None, handoff=handoff)
    paired_filters = kernels.FORWARD[xn.conv.Conv2DBackpropFilter](filters, None,
                                                                   handoff=handoff)
    got = [kernels.forward_fn(forward, False, None)(x, f),
           kernels.forward_fn(filters, False, None)(x, Description.of(f), g),
           paired_forward(x, f), paired_filters(x, Description.of(f), g),
           kernels.forward_fn(inputs, False, None)(Description.of(x), f, g)]
    expected_y, expected_dw = forward.forward(XP, x, f), filters.forward(XP, x, f, g)
    expected = [expected_y, expected_dw, expected_y, expected_dw, inputs.forward(XP, x, f, g)]
    for value, reference in zip(got, expected):
        assert value.shape == reference.shape and value.dtype == reference.dtype
        np.testing.assert_allclose(value, reference, rtol=TOL[dtype], atol=TOL[dtype])
    stride_one = shape[6] == (1, 1)
    assert split_products == [1] * (4 + stride_one)  # col2im (strides > 1) is not split
    assert blas._thread_count[1]() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_filter_gradient_is_the_same_whichever_threads_run_its_blocks(dtype, split_products,
                                                                      monkeypatch):
    """Each block's product is kept apart and the blocks' products added in the blocks'
    order, so the sum does not depend on which threads ran which blocks: bit for bit the
    same with one pool thread, two (blocks of one image: the same blocks), or one held up
    (the caller takes over its blocks)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from xpnn.devices.numpy import threads

    window, x, f, g = _case((9, 8, 7, 3, 5, (3, 3), (1, 1), (1, 1), "SAME"), dtype, "NHWC")
    filters = _op(xn.conv.Conv2DBackpropFilter, window, "NHWC")
    run = kernels.forward_fn(filters, False, None)
    two = run(x, Description.of(f), g)
    three = ThreadPoolExecutor(2)
    monkeypatch.setattr(threads, "_workers", lambda: 3)
    monkeypatch.setattr(threads, "_pool", lambda: three)
    assert np.array_equal(run(x, Description.of(f), g).view(f"u{g.itemsize}"),
                          two.view(f"u{g.itemsize}"))
    held = ThreadPoolExecutor(1)
    held.submit(time.sleep, 0.05)  # its thread joins late
    monkeypatch.setattr(threads, "_workers", lambda: 2)
    monkeypatch.setattr(threads, "_pool", lambda: held)
    assert np.array_equal(run(x, Description.of(f), g).view(f"u{g.itemsize}"),
                          two.view(f"u{g.itemsize}"))
    three.shutdown()
    held.shutdown()
    np.testing.assert_allclose(two, filters.forward(XP, x, f, g), rtol=TOL[dtype],
                               atol=TOL[dtype])


def test_one_thread_restores_the_count_after_an_error_and_nests():
    """``one_thread`` sets OpenBLAS's count to 1 until its last user leaves, even one that
    raised, then puts the count it found back."""
    if not blas.splits_products():
        pytest.skip("NumPy's OpenBLAS thread count not found")
    count = blas._thread_count[1]
    before = count()
    with pytest.raises(RuntimeError, match="inside"):
        with blas.one_thread():
            with blas.one_thread():
                assert count() == 1
            assert count() == 1
            raise RuntimeError("inside")
    assert count() == before
