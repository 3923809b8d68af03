"""The PyTorch conv and pooling kernels (``xpnn/devices/torch/conv.py``) against the portable
ops on PyTorch: every padding, stride and dilation setup of ``test_fastpath.py`` in both
data formats and both float dtypes, pools on tied windows, NaN and infinities in the input
and in the gradient (on the CPU, which falls back for those, and on a device that reads
nothing on the host, as CUDA, which corrects ATen's result instead), the cases meant to
fall back, and a conv net's training steps."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch passes need PyTorch (pip install torch)")

import xpnn as xn  # noqa: E402
from tests.devices.numpy.test_fastpath import CONV_SETUPS, POOL_SETUPS, _images  # noqa: E402
from tests.devices.torch.test_torch_pass import (  # noqa: E402
    DEV,
    P,
    _call,
    _compare_variables,
    _DeviceReadingNothing,
    _portable,
    _run_both,
    assert_same,
    both,
)
from xpnn.devices.torch import conv as conv_kernels  # noqa: E402
from xpnn.devices.torch import kernels  # noqa: E402

c = xn.conv
DTYPES = {"f32": np.float32, "f64": np.float64}
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def _torch(values):
    return [torch.from_numpy(np.ascontiguousarray(v)) for v in values]


def _conv_cases():
    out = []
    for fmt in ("NHWC", "NCHW"):
        for name, x, w, s, d, p in CONV_SETUPS:
            window = c.Window(s, d, p)
            y = c.conv_output_shape("case", "NHWC", x, w, window)
            for cls in (c.Conv2D, c.Conv2DBackpropInput, c.Conv2DBackpropFilter):
                shapes = [(x, True), (w, False)] + ([(y, True)] if cls is not c.Conv2D else [])
                out.append((f"{cls.__name__}-{name}-{fmt}", cls, {"window": window}, fmt,
                            shapes, "normal"))
    return out


def _pool_cases():
    out = []
    for fmt in ("NHWC", "NCHW"):
        for name, x, k, s, p in POOL_SETUPS + [("tiled-uncovered", (2, 7, 9, 3), (2, 2),
                                               (2, 2), "VALID")]:
            window = c.Window(s, (1, 1), p)
            y = c.pool_output_shape("case", "NHWC", x, k, window)
            for kind in ("normal", "ties"):
                for cls in (c.MaxPool, c.MaxPoolGrad, c.AvgPool, c.AvgPoolGrad):
                    grad = cls in (c.MaxPoolGrad, c.AvgPoolGrad)
                    shapes = [(x, True)] + ([(y, True)] if grad else [])
                    out.append((f"{cls.__name__}-{name}-{kind}-{fmt}", cls,
                                {"ksize": k, "window": window}, fmt, shapes, kind))
    return out


CASES = _conv_cases() + _pool_cases()


def _op(cls, kw, fmt, arity):
    with xn.Graph().as_default():
        return cls(*[P() for _ in range(arity)], data_format=fmt, **kw)


def _values(rng, dt, fmt, shapes, kind):
    return _torch([_images(rng, dt, s, fmt, kind if i == 0 else "normal") if image
                   else rng.standard_normal(s).astype(dt)
                   for i, (s, image) in enumerate(shapes)])


def _exact(cls, kw):
    """Max-pooling moves values: exact, unless the gradient adds overlapping windows."""
    if cls is c.MaxPool:
        return True
    return cls is c.MaxPoolGrad and tuple(kw["ksize"]) == tuple(kw["window"].strides)


@pytest.mark.parametrize("dt", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize("cls, kw, fmt, shapes, kind", [pytest.param(*case[1:], id=case[0])
                                                       for case in CASES])
def test_kernel_matches_portable(cls, kw, fmt, shapes, kind, dt):
    op = _op(cls, kw, fmt, len(shapes))
    called = []
    portable = _portable(op)
    got = kernels.kernel(op, lambda *v: called.append(1) or portable(*v), DEV)(
        *_call(op, _values(np.random.default_rng(0), dt, fmt, shapes, kind)))
    assert not called  # the kernel's own arithmetic, no fall-back
    got, want = _run_both(op, _values(np.random.default_rng(0), dt, fmt, shapes, kind))
    assert_same(got, want, exact=_exact(cls, kw), rtol=TOLERANCE[dt])


def test_every_conv_kernel_has_cases():
    registered = {cls for cls, make in kernels.FORWARD.items()
                  if make.__module__ == conv_kernels.__name__}
    assert registered - {c.BiasAdd, c.BiasAddGrad} <= {case[1] for case in CASES}


# --------------------------------------------------------------------------- max-pool extremes


def _extreme_pool_values(rng, fmt, kind, x_shape, y_shape):
    """An input with windows of several NaNs, of -inf only, of tied maxima; a gradient
    with NaN and infinities of both signs where ``kind`` asks."""
    x = rng.integers(0, 3, x_shape).astype(np.float32)
    flat = x.reshape(-1)
    if kind in ("nan-input", "both"):
        flat[[0, 1, 7, 8, 20]] = np.nan  # two NaNs in the first window, stride-2 neighbours
    x[1, :2, :2, :] = -np.inf
    g = rng.standard_normal(y_shape).astype(np.float32)
    if kind in ("inf-grad", "both"):
        g.reshape(-1)[[1, 5, 6, 11]] = [np.inf, -np.inf, np.nan, np.inf]
    to = (lambda a: a) if fmt == "NHWC" else (lambda a: a.transpose(0, 3, 1, 2))
    return _torch([to(x), to(g)])


@pytest.mark.parametrize("device", ["cpu", "no-host-reads"])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("setup", [((2, 2), (2, 2), "VALID"), ((3, 3), (1, 1), "SAME"),
                                   ((3, 3), (2, 2), "SAME"), ((2, 2), (1, 1), "SAME")],
                         ids=["tiled", "overlapping", "s2-same", "asymmetric"])
@pytest.mark.parametrize("kind", ["nan-input", "inf-grad", "both", "ties"])
def test_max_pool_grad_with_nan_and_infinities_matches_portable(kind, setup, fmt, device):
    """The portable gradient's rules (a window's first NaN takes its share; 0 * inf = NaN
    over a window with a non-finite gradient) hold on both paths: the CPU's fall-back, the
    corrections where nothing is read on the host."""
    k, s, p = setup
    window = c.Window(s, (1, 1), p)
    x_shape = (2, 6, 6, 3)
    y_shape = c.pool_output_shape("case", "NHWC", x_shape, k, window)
    op = _op(c.MaxPoolGrad, {"ksize": k, "window": window}, fmt, 2)
    values = _extreme_pool_values(np.random.default_rng(5), fmt, kind, x_shape, y_shape)
    target = DEV if device == "cpu" else _DeviceReadingNothing()
    called = []
    portable = _portable(op)
    got = kernels.kernel(op, lambda *v: called.append(1) or portable(*v), target)(*values)
    want = portable(*values)
    assert_same(got, want, exact=s == k, rtol=1e-6)
    pool = _op(c.MaxPool, {"ksize": k, "window": window}, fmt, 1)
    maxima = _portable(pool)(values[0])
    finite = bool(torch.isfinite(maxima).all() and torch.isfinite(values[1]).all())
    assert bool(called) == (device == "cpu" and not finite)  # all -inf windows too, on the CPU
    if kind in ("inf-grad", "both"):
        assert torch.isnan(got).any()


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_max_pool_keeps_nan_and_infinities(fmt):
    op = _op(c.MaxPool, {"ksize": (2, 2), "window": c.Window((2, 2))}, fmt, 1)
    x, _ = _extreme_pool_values(np.random.default_rng(6), fmt, "both", (2, 6, 6, 3),
                                (2, 3, 3, 3))
    got, want = _run_both(op, [x])
    assert_same(got, want)
    assert torch.isnan(got).any() and torch.isneginf(got).any()


# --------------------------------------------------------------------------- fall-backs


def _fallback_cases():
    same = c.Window(padding="SAME")
    f32, f64 = torch.float32, torch.float64
    conv_ = functools.partial(c.Conv2D, window=same)
    pool = {"ksize": (2, 2), "window": c.Window((2, 2), padding="SAME")}
    return [
        ("Conv2D-int", conv_, [torch.ones(1, 4, 4, 2, dtype=torch.int64),
                               torch.ones(3, 3, 2, 2, dtype=torch.int64)]),
        ("Conv2D-mixed", conv_, [torch.ones(1, 4, 4, 2, dtype=f32),
                                 torch.ones(3, 3, 2, 2, dtype=f64)]),
        ("Conv2DBackpropInput-batch0", functools.partial(c.Conv2DBackpropInput, window=same),
         [torch.ones(0, 4, 4, 2), torch.ones(3, 3, 2, 2), torch.ones(0, 4, 4, 2)]),
        ("Conv2DBackpropFilter-mixed", functools.partial(c.Conv2DBackpropFilter, window=same),
         [torch.ones(1, 4, 4, 2), torch.ones(3, 3, 2, 2), torch.ones(1, 4, 4, 2, dtype=f64)]),
        ("MaxPool-int", functools.partial(c.MaxPool, **pool),
         [torch.ones(1, 4, 4, 2, dtype=torch.int64)]),
        ("MaxPoolGrad-mixed", functools.partial(c.MaxPoolGrad, **pool),
         [torch.ones(1, 4, 4, 2, dtype=f64), torch.ones(1, 2, 2, 2)]),
        ("AvgPool-batch0", functools.partial(c.AvgPool, **pool), [torch.ones(0, 4, 4, 2)]),
        ("AvgPoolGrad-mixed", functools.partial(c.AvgPoolGrad, **pool),
         [torch.ones(1, 4, 4, 2, dtype=f64), torch.ones(1, 2, 2, 2)]),
        ("BiasAdd-mixed", c.BiasAdd, [torch.ones(2, 3), torch.ones(3, dtype=f64)]),
        ("BiasAddGrad-int", c.BiasAddGrad, [torch.ones(2, 3, dtype=torch.int64)]),
    ]


@pytest.mark.parametrize("make, values", [pytest.param(*case[1:], id=case[0])
                                          for case in _fallback_cases()])
def test_inputs_outside_a_kernels_case_take_the_portable_op(make, values):
    with xn.Graph().as_default():
        op = make(*[P() for _ in values])
    called = []
    portable = _portable(op)
    fast = kernels.kernel(op, lambda *v: called.append(1) or portable(*v), DEV)
    try:
        want = portable(*_call(op, values))
    except ValueError as error:  # an empty image: the op's own error, from either
        with pytest.raises(ValueError, match="kernel covers"):
            fast(*_call(op, values))
        assert called and "kernel covers" in str(error)
        return
    assert_same(fast(*_call(op, values)), want)
    assert called


def test_shape_errors_are_the_ops_own():
    op = _op(c.Conv2D, {"window": c.Window()}, "NHWC", 2)
    x, w = torch.ones(1, 4, 4, 2), torch.ones(3, 3, 3, 2)  # 2 channels against 3
    messages = []
    for fn in (_portable(op), kernels.kernel(op, _portable(op), DEV)):
        with pytest.raises(ValueError) as info:
            fn(x, w)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "channels" in messages[0]


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_bias_kernels_match_portable(fmt):
    rng = np.random.default_rng(8)
    v = _torch([_images(rng, np.float32, (2, 3, 4, 5), fmt)])[0]
    b = torch.from_numpy(rng.standard_normal(5).astype(np.float32))
    got, want = _run_both(_op_bias(c.BiasAdd, fmt, 2), [v, b])
    assert_same(got, want)
    got, want = _run_both(_op_bias(c.BiasAddGrad, fmt, 1), [v])
    assert_same(got, want, exact=False)


def _op_bias(cls, fmt, arity):
    with xn.Graph().as_default():
        return cls(*[P() for _ in range(arity)], data_format=fmt)


# --------------------------------------------------------------------------- training


def _convnet(fmt):
    shape = (None, 9, 9, 2) if fmt == "NHWC" else (None, 2, 9, 9)
    x = xn.placeholder("float32", shape, name="x")
    labels = xn.placeholder("int64", (None,), name="labels")
    init = np.random.default_rng(1)
    w1 = xn.Variable(init.standard_normal((3, 3, 2, 4)).astype(np.float32) * 0.5)
    w2 = xn.Variable(init.standard_normal((2, 2, 4, 5)).astype(np.float32) * 0.3)
    b = xn.Variable(np.zeros(4, np.float32))
    kw = {"data_format": fmt}
    h = xn.relu(xn.bias_add(xn.conv2d(x, w1, padding="SAME", **kw), b, **kw))
    h = xn.max_pool2d(h, 3, 2, "SAME", **kw)
    h = xn.conv2d(h, w2, strides=(2, 1), padding=((1, 0), (0, 1)), dilations=1, **kw)
    h = xn.avg_pool2d(xn.relu(h), 2, 1, "SAME", **kw)
    h = xn.flatten(h)
    dense = xn.Variable(init.standard_normal((h.shape[1], 3)).astype(np.float32) * 0.1)
    loss = xn.losses.sparse_softmax_cross_entropy(labels, h @ dense)
    return {"x": x, "labels": labels, "loss": loss,
            "step": xn.train.AdamOptimizer(0.01).minimize(loss)}


def _count_conv_kernels(monkeypatch):
    runs = []
    for cls, make in list(kernels.FORWARD.items()):
        if make.__module__ == conv_kernels.__name__:
            def counted(op, portable, device, make=make, cls=cls):
                fn = make(op, portable, device)
                return lambda *v: runs.append(cls) or fn(*v)
            monkeypatch.setitem(kernels.FORWARD, cls, counted)
    return runs


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_conv_net_training_matches_portable(fmt, monkeypatch):
    runs = _count_conv_kernels(monkeypatch)
    sides = both(lambda: _convnet(fmt))
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 9, 9, 2)).astype(np.float32)
    X = X if fmt == "NHWC" else np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    y = rng.integers(0, 3, 6)
    losses = []
    for _ in range(4):  # the same batch: the loss must fall
        out = [side.run([n["step"], n["loss"]], {n["x"]: X, n["labels"]: y})[1]
               for n, side in sides]
        assert_same(out[0], out[1], exact=False, rtol=1e-5)
        losses.append(float(out[0]))
        _compare_variables(sides)
    assert losses[-1] < losses[0]
    assert set(runs) == {c.Conv2D, c.Conv2DBackpropInput, c.Conv2DBackpropFilter, c.MaxPool,
                         c.MaxPoolGrad, c.AvgPool, c.AvgPoolGrad, c.BiasAdd, c.BiasAddGrad}
