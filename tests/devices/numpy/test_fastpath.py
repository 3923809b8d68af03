"""The NumPy fast paths (``xpnn.fastpath``) against the portable ``forward`` on the same
inputs: every registered op, with and without a donated first input; the in-place optimizer
updates; and whole graphs, where the plan decides which buffers may be overwritten, against
array-api-strict (the portable path on another device)."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import ops, optimizers
from xpnn.devices.numpy import blas, kernels, updates
from xpnn.plan import Description

XP = xn.devices.resolve("cpu").xp  # the namespace a NumPy Session hands to forward()
F32, F64 = np.float32, np.float64
RTOL = {F32: 1e-6, F64: 1e-12}


def strict_session(**kw):
    return xn.Session(backend="array_api_strict", device="device1", **kw)


def numpy_session(**kw):
    return xn.Session(device="cpu", **kw)


# --------------------------------------------------------------------------- helpers


def _copy(v):
    return np.array(v, copy=True) if isinstance(v, np.ndarray) else v


def _call_values(op, values):
    """What a plan passes: a shape description at the op's shape-only positions."""
    return [Description.of(v) if k in op.shape_only else v for k, v in enumerate(values)]


def _run_both(op, values, donate):
    """(fast result, portable result, the fast path's inputs after the call)."""
    port_in = [_copy(v) for v in values]
    fast_in = [_copy(v) for v in values]
    try:  # where the portable path raises no floating-point warning, the fast one must not
        with np.errstate(all="raise"):
            expected = op.forward(XP, *_call_values(op, port_in))
        state = "raise"
    except FloatingPointError:
        state = "ignore"
        with np.errstate(all="ignore"):
            expected = op.forward(XP, *_call_values(op, port_in))
    fn = kernels.forward_fn(op, donate, lambda *v: op.forward(XP, *v))
    with np.errstate(all=state):
        got = fn(*_call_values(op, fast_in))
    return got, expected, fast_in


def assert_same(got, expected, exact, dtype=None):
    """Same shape and dtype; bitwise equal (NaN where NaN, same zero signs) when ``exact``,
    else within about an ulp."""
    if isinstance(expected, tuple):  # an op of several outputs
        assert isinstance(got, tuple) and len(got) == len(expected), (type(got), len(got))
        for g, e in zip(got, expected):
            assert_same(g, e, exact, dtype)
        return
    got_a, exp_a = np.asarray(got), np.asarray(expected)
    assert got_a.shape == exp_a.shape, (got_a.shape, exp_a.shape)
    assert got_a.dtype == exp_a.dtype, (got_a.dtype, exp_a.dtype)
    if exact or exp_a.dtype.kind != "f":
        np.testing.assert_array_equal(got_a, exp_a, strict=True)
        if got_a.dtype.kind == "f":
            np.testing.assert_array_equal(np.signbit(got_a), np.signbit(exp_a))
    else:
        dtype = np.dtype(dtype or exp_a.dtype).type
        finite = exp_a[np.isfinite(exp_a)]
        scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
        atol = 8 * np.finfo(exp_a.dtype).eps * scale
        np.testing.assert_allclose(got_a, exp_a, rtol=RTOL.get(dtype, 1e-6), atol=atol)


def _normal(rng, dtype, shape):
    if shape == "scalar":  # what 0-d NumPy results often are: a NumPy scalar, not an array
        return dtype(rng.standard_normal())
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _probs(rng, dtype, shape, edges=True):
    """Values in [0, 1], with exact 0s and 1s (the BCE edges) when there is room."""
    if shape == "scalar":
        return dtype(rng.uniform(0.05, 0.95))
    p = np.asarray(rng.uniform(0.0, 1.0, shape), dtype=dtype)
    if edges and p.size >= 4:
        flat = p.reshape(-1)
        flat[0], flat[1] = 0.0, 1.0
    return p


def _relu_out(rng, dtype, shape):
    y = np.maximum(_normal(rng, dtype, shape), 0.0)
    return y.astype(dtype) if isinstance(y, np.ndarray) else dtype(y)


def _shape_of(shape):
    return () if shape == "scalar" else shape


def _out_shape(*shapes):
    return np.broadcast_shapes(*(_shape_of(s) for s in shapes))


# --------------------------------------------------------------------------- op cases
# (id, build(*placeholders) -> op, gen(rng, dtype) -> input values, exact)

CASES = []


def case(name, build, gen, exact=True):
    CASES.append(pytest.param(build, gen, exact, id=name))


BINARY_SHAPES = [
    ((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((1, 4), (3, 4)), ((3, 4), (1, 4)),
    ((3, 1), (4,)), ((), ()), ((), (3,)), ((3,), ()), ((2, 3, 4), (3, 1)),
    ("scalar", (3,)), ((3,), "scalar"), ("scalar", "scalar"), ((0, 3), (3,)),
]
for _cls in (ops.Add, ops.Subtract, ops.Multiply, ops.Divide):
    for _a, _b in BINARY_SHAPES:
        case(f"{_cls.__name__}-{_a}-{_b}", _cls,
             lambda rng, dt, a=_a, b=_b: [_normal(rng, dt, a), _normal(rng, dt, b)])

for _s in [(3, 4), (7,), (), "scalar", (2, 3, 4)]:
    case(f"Relu-{_s}", ops.Relu, lambda rng, dt, s=_s: [_normal(rng, dt, s)])
    case(f"Sigmoid-{_s}", ops.Sigmoid, lambda rng, dt, s=_s: [_normal(rng, dt, s)])
    case(f"OnesLike-{_s}", ops.OnesLike, lambda rng, dt, s=_s: [_normal(rng, dt, s)])
    case(f"Rsqrt-{_s}", ops.Rsqrt, lambda rng, dt, s=_s: [np.abs(_normal(rng, dt, s)) + dt(0.1)])
case("Rsqrt-edges", ops.Rsqrt, lambda rng, dt: [np.array([0.0, 1e-30, 4.0, np.inf], dt)])
case("Sigmoid-large", ops.Sigmoid,
     lambda rng, dt: [np.array([-1e4, -90.0, -20.0, -1e-8, 0.0, 1e-8, 20.0, 90.0, 1e4], dt)])
case("Sigmoid-nonfinite", ops.Sigmoid,
     lambda rng, dt: [np.array([[np.nan, np.inf, -np.inf], [-0.0, 0.0, -1e-40]], dt)])
case("Sigmoid-nan-signs", ops.Sigmoid,  # both signs of NaN come out as the portable's
     lambda rng, dt: [np.array([np.nan, -np.nan, np.copysign(np.nan, -1.0), 1.0], dt)])
# The layouts a plan hands ReLU: F-ordered (a transposed product), C-ordered, strided views.
for _alpha in (0.2, 1.0, 0.0, 1.5):
    case(f"LeakyRelu-{_alpha}", lambda x, a=_alpha: ops.LeakyRelu(x, a), lambda rng, dt: [
        np.array([[-2.0, -0.0, 0.0, 3.0], [np.inf, -np.inf, np.nan, -1e-30]], dt)])
    case(f"LeakyReluGrad-{_alpha}", lambda g, x, a=_alpha: ops.LeakyReluGrad(g, x, a),
         lambda rng, dt: [_normal(rng, dt, (2, 4)), np.array(
             [[-2.0, -0.0, 0.0, 3.0], [np.inf, -np.inf, np.nan, 1e-30]], dt)])
case("LeakyRelu-F", ops.LeakyRelu, lambda rng, dt: [np.asfortranarray(_normal(rng, dt, (6, 5)))])
case("LeakyReluGrad-bias", lambda g, x: ops.LeakyReluGrad(g, x, 0.2),
     lambda rng, dt: [_normal(rng, dt, (3, 4)), _normal(rng, dt, (4,))])
case("Relu-F", ops.Relu, lambda rng, dt: [np.asfortranarray(_normal(rng, dt, (6, 5)))])
case("Relu-F-3d", ops.Relu, lambda rng, dt: [np.asfortranarray(_normal(rng, dt, (2, 3, 4)))])
case("Relu-strided", ops.Relu, lambda rng, dt: [_normal(rng, dt, (6, 8))[:, ::2]])
case("Relu-edges-F", ops.Relu, lambda rng, dt: [np.asfortranarray(
    np.array([[np.nan, -np.inf, np.inf, -0.0], [0.0, -1.0, 2.0, -0.0]], dt))])
case("Relu-edges", ops.Relu,
     lambda rng, dt: [np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.0, 2.0], dt)])

# gradient shapes: grad and the activation's output alike, plus broadcast ones
GRAD_SHAPES = [((3, 4), (3, 4)), ((7,), (7,)), ((), ()), ("scalar", "scalar"), ("scalar", ()),
               ((1, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (2, 3, 4))]
for _g, _y in GRAD_SHAPES:
    case(f"ReluGrad-{_g}-{_y}", ops.ReluGrad,
         lambda rng, dt, g=_g, y=_y: [_normal(rng, dt, g), _relu_out(rng, dt, y)])
    case(f"SigmoidGrad-{_g}-{_y}", ops.SigmoidGrad,
         lambda rng, dt, g=_g, y=_y: [_normal(rng, dt, g), _probs(rng, dt, y)])
case("ReluGrad-nonfinite", ops.ReluGrad, lambda rng, dt: [
    np.array([np.nan, np.inf, -np.inf, np.nan, 1.0, np.inf, 3.0, -2.0], dt),
    np.array([0.0, 0.0, 1.0, 2.0, np.nan, np.nan, -0.0, np.inf], dt)])

MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((3, 4), (4,)), ((4,), (4, 5)), ((4,), (4,)), ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5)), ((2, 3, 4), (4,)),
    ((4,), (2, 4, 5)), ((0, 4), (4, 5)), ((2, 3, 5, 4), (4, 6)), ((2, 0, 4), (4, 5)),
    ((2, 2, 0), (0, 3)),
]
for _a, _b in MATMUL_SHAPES:
    _exact2d = len(_a) == 2 and len(_b) == 2
    case(f"MatMul-{_a}-{_b}", ops.MatMul,
         lambda rng, dt, a=_a, b=_b: [_normal(rng, dt, a), _normal(rng, dt, b)])

    def _mm_grad(rng, dt, a=_a, b=_b):
        out = np.matmul(np.zeros(a), np.zeros(b)).shape
        return [_normal(rng, dt, out), _normal(rng, dt, a), _normal(rng, dt, b)]

    case(f"MatMulGradA-{_a}-{_b}", ops.MatMulGradA, _mm_grad, exact=_exact2d)
    case(f"MatMulGradB-{_a}-{_b}", ops.MatMulGradB, _mm_grad, exact=_exact2d)

# a gradient in F order, or stacked from F-ordered pieces (what the 2-D product kernel
# returns, stacked over time steps: its last axis outermost in memory)
for _a in [(4, 5, 3), (2, 3, 4, 3)]:
    case(f"MatMulGradB-F-{_a}", ops.MatMulGradB, lambda rng, dt, a=_a: [
        np.asfortranarray(_normal(rng, dt, a[:-1] + (6,))), _normal(rng, dt, a),
        _normal(rng, dt, (3, 6))], exact=False)
    case(f"MatMulGradB-stacked-{_a}", ops.MatMulGradB, lambda rng, dt, a=_a: [
        np.moveaxis(np.ascontiguousarray(np.moveaxis(_normal(rng, dt, a[:-1] + (6,)), -1, 0)),
                    0, -1), _normal(rng, dt, a), _normal(rng, dt, (3, 6))], exact=False)

for _g, _like in [((3, 4), (4,)), ((3, 4), (3, 4)), ((3, 4), (1, 4)), ((3, 4), ()),
                  ((2, 3, 4), (3, 1)), ((3,), ()), ((2, 3, 4), (3, 4)), ((3, 4), (3, 1)),
                  ((5, 1), (1,))]:
    case(f"SumTo-{_g}-{_like}", ops.SumTo,
         lambda rng, dt, g=_g, like=_like: [_normal(rng, dt, g), _normal(rng, dt, like)])

# Wide bias gradients are summed by a matrix-vector product: another summation order.
for _order in "CF":
    case(f"SumTo-wide-{_order}", ops.SumTo, lambda rng, dt, o=_order: [
        np.asarray(_normal(rng, dt, (33, 70)), order=o), _normal(rng, dt, (70,))], exact=False)
case("SumTo-wide-nonfinite", ops.SumTo, lambda rng, dt: [
    np.array([[np.inf] * 64, [-np.inf] * 32 + [np.nan] * 32, [1.0] * 64], dt).T.copy().T,
    _normal(rng, dt, (64,))], exact=False)

for _like, _axis, _keep, _mean in [
        ((3, 4), None, False, False), ((3, 4), None, False, True), ((3, 4), None, True, False),
        ((3, 4), None, True, True), ((3, 4), (1,), False, False), ((3, 4), (0,), True, True),
        ((2, 3, 4), (-1,), False, True), ((2, 3, 4), (0, 2), False, False), ((), None, False, True),
        ((2, 3, 4), (1,), True, False)]:
    def _bb_gen(rng, dt, like=_like, axis=_axis, keep=_keep):
        shape = ops.core._reduced_shape(like, axis, keep)
        return [_normal(rng, dt, shape), _normal(rng, dt, like)]

    _name = f"{_like}-{_axis}-{'keep' if _keep else 'drop'}-{'mean' if _mean else 'sum'}"
    case(f"BroadcastBack-{_name}",
         lambda g, like, a=_axis, k=_keep, m=_mean: ops.BroadcastBack(g, like, a, k, m), _bb_gen)

for _s, _axis, _keep in [((3, 4), None, False), ((3, 4), 0, False), ((3, 4), 1, True),
                         ((2, 3, 4), (0, 2), False), ((2, 3, 4), -1, True), ((3, 4), (), False),
                         ((), None, False), ((3, 4), None, True), ((0, 4), 0, False)]:
    case(f"ReduceSum-{_s}-{_axis}-{_keep}",
         lambda x, a=_axis, k=_keep: ops.ReduceSum(x, a, k),
         lambda rng, dt, s=_s: [_normal(rng, dt, s)])


def _ce_gen(n=5, k=4, label_dtype=np.int64, scale=3.0, batch=None):
    def gen(rng, dt):
        lead = (n,) if batch is None else (batch, n)
        labels = rng.integers(0, k, lead).astype(label_dtype)
        logits = np.asarray(scale * rng.standard_normal(lead + (k,)), dtype=dt)
        return [labels, logits]
    return gen


def _ce_grad_gen(**kw):
    base = _ce_gen(**kw)

    def gen(rng, dt):
        labels, logits = base(rng, dt)
        return [_normal(rng, dt, labels.shape), labels, logits]
    return gen


for _name, _kw in [("", {}), ("-int32", dict(label_dtype=np.int32)), ("-batched", dict(batch=2)),
                   ("-1row", dict(n=1)), ("-0rows", dict(n=0)), ("-1class", dict(k=1)),
                   ("-big", dict(scale=1e4))]:
    case(f"SparseCE{_name}", ops.SparseSoftmaxCrossEntropy, _ce_gen(**_kw), exact=False)
    case(f"SparseCEGrad{_name}", ops.SparseSoftmaxCrossEntropyGrad, _ce_grad_gen(**_kw),
         exact=False)


def _nonfinite_logits(rng, dt):
    logits = np.asarray(rng.standard_normal((4, 3)), dtype=dt)
    logits[1, 0], logits[2, 1], logits[3] = np.inf, np.nan, -np.inf
    return [np.array([0, 1, 2, 0]), logits]


case("SparseCE-nonfinite", ops.SparseSoftmaxCrossEntropy, _nonfinite_logits, exact=False)
case("SparseCEGrad-nonfinite", ops.SparseSoftmaxCrossEntropyGrad,
     lambda rng, dt: [np.ones(4, dt)] + _nonfinite_logits(rng, dt), exact=False)

for _p, _y in [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((), ()), ("scalar", "scalar"),
               ((7,), ()), ((), (3,)), ((1, 4), (3, 4))]:
    case(f"BCE-{_p}-{_y}", ops.BinaryCrossEntropy,
         lambda rng, dt, p=_p, y=_y: [_probs(rng, dt, p), _probs(rng, dt, y, edges=False)])

    def _bce_grad_gen(rng, dt, p=_p, y=_y):
        return [_normal(rng, dt, _out_shape(p, y)), _probs(rng, dt, p),
                _probs(rng, dt, y, edges=False)]

    case(f"BCEGrad-{_p}-{_y}", ops.BinaryCrossEntropyGrad, _bce_grad_gen)
case("BCE-hard-labels", ops.BinaryCrossEntropy, lambda rng, dt: [
    np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30], dt), np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0], dt)])
case("BCEGrad-hard-labels", ops.BinaryCrossEntropyGrad, lambda rng, dt: [
    np.ones(6, dt), np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30], dt),
    np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0], dt)])


# --------------------------------------------------------------------------- scatter-adds
# (the segment sums of ops.indexing: bincount for few segments, add.reduceat for many)

case("GatherGrad-axis1-bincount", lambda g, i, p: ops.GatherGrad(g, i, p, 1), lambda rng, dt: [
    _normal(rng, dt, (2, 6, 3)), np.array([1, 0, 1, 1, 3, 0]), _normal(rng, dt, (2, 4, 3))],
    exact=False)
case("GatherGrad-reduceat", lambda g, i, p: ops.GatherGrad(g, i, p, 0), lambda rng, dt: [
    _normal(rng, dt, (2, 2, 3)), np.array([[5, 2], [5, 9]], np.int32), _normal(rng, dt, (12, 3))],
    exact=False)
case("UnsortedSegmentSum-dropped", lambda d, i: ops.UnsortedSegmentSum(d, i, 3), lambda rng, dt: [
    _normal(rng, dt, (5, 2)), np.array([2, -1, 0, 2, -3])], exact=False)
case("UnsortedSegmentSum-int", lambda d, i: ops.UnsortedSegmentSum(d, i, 4), lambda rng, dt: [
    np.array([[3, 1], [2, 7], [-4, 5]], np.int32), np.array([1, 3, 1])])
case("ScatterNd", lambda i, u: ops.ScatterNd(i, u, (3, 2, 2)), lambda rng, dt: [
    np.array([[0, 1], [2, 0], [0, 1]]), _normal(rng, dt, (3, 2))], exact=False)
case("GatherNdGrad", ops.GatherNdGrad, lambda rng, dt: [
    np.array([[[1], [1]], [[0], [2]]]), _normal(rng, dt, (2, 2, 4)), _normal(rng, dt, (3, 4))],
    exact=False)
case("TopKValuesGrad", ops.TopKValuesGrad, lambda rng, dt: [
    _normal(rng, dt, (3, 2)), np.array([[4, 0], [1, 2], [2, 3]], np.int32),
    _normal(rng, dt, (3, 5))], exact=False)


# --------------------------------------------------------------------------- LSTM cell
# (ops.recurrent; the forward's sigmoid is a few ulp from the portable one, the gradient is
# its arithmetic in its order; F-ordered gates are what the matmul kernel hands the cell)


def _lstm_grad_inputs(rng, dt, shape=(5, 3)):
    """activated gates, c, tanh(c'), dh', dc'"""
    act = np.asarray(rng.uniform(0.0, 1.0, shape[:-1] + (4 * shape[-1],)), dt)
    c, c_new, dh, dc = (_normal(rng, dt, shape) for _ in range(4))
    return [act, c, np.tanh(c_new), dh, dc]


case("LSTMCell", ops.LSTMCellElementwise, lambda rng, dt: [
    _normal(rng, dt, (5, 12)) * 4, _normal(rng, dt, (5, 3))], exact=False)
case("LSTMCell-F-ordered", ops.LSTMCellElementwise, lambda rng, dt: [
    np.asfortranarray(_normal(rng, dt, (5, 12)) * 4), _normal(rng, dt, (5, 3))], exact=False)
case("LSTMCell-3d", ops.LSTMCellElementwise, lambda rng, dt: [
    _normal(rng, dt, (2, 5, 8)), _normal(rng, dt, (2, 5, 2))])
case("LSTMCellGrad", ops.LSTMCellElementwiseGrad, _lstm_grad_inputs)
case("LSTMCellGrad-F-ordered", ops.LSTMCellElementwiseGrad, lambda rng, dt: [
    np.asfortranarray(a) for a in _lstm_grad_inputs(rng, dt)])
case("LSTMCellGrad-3d", ops.LSTMCellElementwiseGrad,
     lambda rng, dt: _lstm_grad_inputs(rng, dt, (2, 5, 2)))


# (stacking: F-ordered pieces on axis 0 are laid out (n, time, batch); a 3-D array whose
# pieces have no contiguous axis is copied once; every other case is NumPy's own)


def _time_major_rows(rng, dt, shape=(4, 3, 5)):
    """(time, batch, n) as the reshape of an F-ordered product's rows gives it"""
    t, b, n = shape
    return [np.asfortranarray(_normal(rng, dt, (t * b, n))).reshape(t, b, n)]


case("Stack-F-pieces", lambda *p: ops.Stack(list(p), axis=0), lambda rng, dt: [
    np.asfortranarray(_normal(rng, dt, (3, 5))) for _ in range(4)])
case("Stack-F-pieces-axis1", lambda *p: ops.Stack(list(p), axis=1), lambda rng, dt: [
    np.asfortranarray(_normal(rng, dt, (3, 5))) for _ in range(4)])
case("Stack-C-pieces", lambda *p: ops.Stack(list(p), axis=0), lambda rng, dt: [
    _normal(rng, dt, (3, 5)) for _ in range(4)])
for _axis in (0, 1, -1):
    case(f"Pieces-strided-axis{_axis}",
         lambda x, axis=_axis: ops.unstack(x, axis=axis, num=(4, 3, 5)[axis])[0].inputs[0],
         lambda rng, dt: [_normal(rng, dt, (5, 4, 3)).transpose(1, 2, 0)])
case("Pieces-time-major-rows", lambda x: ops.unstack(x, axis=0, num=4)[0].inputs[0],
     _time_major_rows)
case("Pieces-split", lambda x: ops.split(x, [1, 2], axis=1)[0].inputs[0],
     lambda rng, dt: [_normal(rng, dt, (5, 4, 3)).transpose(1, 2, 0)])


# --------------------------------------------------------------------------- conv and pooling
# Shapes given NHWC; NCHW cases hold the same images transposed. The kernels make the
# portable GEMM calls on equal operands (bitwise equal today), so exact=False only leaves
# room for BLAS blocking: about an ulp of the largest output, fine for these few terms.

CONV_SETUPS = [  # name, x (NHWC), filters (HWIO), strides, dilations, padding
    ("same", (2, 5, 5, 3), (3, 3, 3, 4), (1, 1), (1, 1), "SAME"),
    ("valid-s2", (2, 7, 6, 2), (3, 2, 2, 3), (2, 2), (1, 1), "VALID"),
    ("same-s23", (1, 6, 7, 2), (2, 3, 2, 2), (2, 3), (1, 1), "SAME"),
    ("dilated", (2, 7, 7, 2), (3, 3, 2, 3), (1, 1), (2, 2), "SAME"),
    ("dilated-s2-valid", (1, 9, 8, 1), (2, 3, 1, 2), (2, 1), (3, 2), "VALID"),
    ("explicit", (1, 5, 4, 2), (2, 2, 2, 2), (1, 2), (1, 1), ((1, 2), (0, 3))),
    ("1x1", (2, 3, 3, 4), (1, 1, 4, 5), (1, 1), (1, 1), "VALID"),
]
POOL_SETUPS = [  # name, x (NHWC), ksize, strides, padding
    ("2x2", (2, 6, 6, 3), (2, 2), (2, 2), "VALID"),
    ("3x3-s2-same", (2, 7, 5, 2), (3, 3), (2, 2), "SAME"),
    ("3x3-s1-same", (1, 5, 5, 2), (3, 3), (1, 1), "SAME"),
    ("2x3-s12", (1, 5, 6, 2), (2, 3), (1, 2), "VALID"),
    ("1x1", (1, 3, 3, 2), (1, 1), (1, 1), "VALID"),
    ("skipping", (1, 7, 7, 1), (2, 2), (3, 3), "VALID"),
]


def _layout(a, fmt):
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _images(rng, dt, shape, fmt, kind="normal"):
    if kind == "ties":  # few distinct values: windows with several maxima
        x = rng.integers(0, 3, shape).astype(dt)
    else:
        x = _normal(rng, dt, shape)
    if kind == "nonfinite":
        flat = x.reshape(-1)
        flat[[1, 4, 9]] = [np.nan, np.inf, -np.inf]
        x[:, :2, :2, :] = -np.inf  # whole windows of -inf, some with padding in them
    return _layout(x, fmt)


def _conv_case(name, fmt, x_shape, w_shape, window, kind="normal"):
    y_shape = xn.conv.conv_output_shape("case", "NHWC", x_shape, w_shape, window)

    def forward(rng, dt):
        return [_images(rng, dt, x_shape, fmt, kind), _normal(rng, dt, w_shape)]

    def grads(rng, dt):
        return forward(rng, dt) + [_images(rng, dt, y_shape, fmt)]

    def build(cls):
        return lambda *v: cls(*v, window=window, data_format=fmt)

    case(f"Conv2D-{name}-{fmt}", build(xn.conv.Conv2D), forward, exact=False)
    for cls in (xn.conv.Conv2DBackpropInput, xn.conv.Conv2DBackpropFilter):
        case(f"{cls.__name__}-{name}-{fmt}", build(cls), grads, exact=False)


def _pool_case(name, fmt, x_shape, ksize, window, kind="normal"):
    y_shape = xn.conv.pool_output_shape("case", "NHWC", x_shape, ksize, window)

    def forward(rng, dt):
        return [_images(rng, dt, x_shape, fmt, kind)]

    def grads(rng, dt):
        return forward(rng, dt) + [_images(rng, dt, y_shape, fmt)]

    def build(cls):
        return lambda *v: cls(*v, ksize=ksize, window=window, data_format=fmt)

    c = xn.conv
    # The pools take the portable path's steps in its order; col2im may differ in zero signs.
    for cls, gen, exact in [(c.MaxPool, forward, True), (c.MaxPoolGrad, grads, False),
                            (c.AvgPool, forward, True), (c.AvgPoolGrad, grads, False)]:
        case(f"{cls.__name__}-{name}-{kind}-{fmt}", build(cls), gen, exact)


for _fmt in ("NHWC", "NCHW"):
    for _name, _x, _w, _s, _d, _p in CONV_SETUPS:
        _conv_case(_name, _fmt, _x, _w, xn.conv.Window(_s, _d, _p))
    _conv_case("nonfinite", _fmt, (2, 5, 5, 2), (3, 3, 2, 3), xn.conv.Window(padding="SAME"),
               kind="nonfinite")
    for _name, _x, _k, _s, _p in POOL_SETUPS:
        for _kind in ("normal", "ties"):
            _pool_case(_name, _fmt, _x, _k, xn.conv.Window(_s, (1, 1), _p), _kind)
    _pool_case("nonfinite", _fmt, (2, 6, 6, 2), (3, 3), xn.conv.Window((2, 2), (1, 1), "SAME"),
               kind="nonfinite")
    # Windows that tile the input (MaxPoolGrad's written-not-added kernel), with rows and
    # columns no window reaches, and with NaN and infinities (back to the general kernel).
    _pool_case("tiled-uncovered", _fmt, (2, 7, 9, 3), (2, 2), xn.conv.Window((2, 2)))
    _pool_case("tiled-3x2", _fmt, (2, 6, 4, 2), (3, 2), xn.conv.Window((3, 2)), "ties")
    _pool_case("tiled-nonfinite", _fmt, (2, 6, 6, 2), (2, 2), xn.conv.Window((2, 2)),
               kind="nonfinite")
    case(f"BiasAdd-{_fmt}", lambda v, b, f=_fmt: xn.conv.BiasAdd(v, b, data_format=f),
         lambda rng, dt, f=_fmt: [_images(rng, dt, (2, 3, 4, 5), f), _normal(rng, dt, (5,))])
    case(f"BiasAddGrad-{_fmt}", lambda g, f=_fmt: xn.conv.BiasAddGrad(g, data_format=f),
         lambda rng, dt, f=_fmt: [_images(rng, dt, (3, 4, 5, 6), f)], exact=False)
case("BiasAdd-2d", lambda v, b: xn.conv.BiasAdd(v, b),
     lambda rng, dt: [_normal(rng, dt, (4, 3)), _normal(rng, dt, (3,))])
case("BiasAddGrad-2d", lambda g: xn.conv.BiasAddGrad(g),
     lambda rng, dt: [_normal(rng, dt, (70, 3))], exact=False)


def _conv_fallback(name, build, gen):
    """Cases the conv kernels hand to the portable path: whatever dt the test asks for."""
    case(f"fallback-{name}", build, gen, exact=False)


_W = xn.conv.Window(padding="SAME")
_conv_fallback("Conv2D-int", lambda x, w: xn.conv.Conv2D(x, w, window=_W), lambda rng, dt: [
    rng.integers(-3, 3, (1, 4, 4, 2)), rng.integers(-3, 3, (3, 3, 2, 2))])
_conv_fallback("Conv2D-mixed", lambda x, w: xn.conv.Conv2D(x, w, window=_W), lambda rng, dt: [
    _normal(rng, F32, (1, 4, 4, 2)), _normal(rng, F64, (3, 3, 2, 2))])
_conv_fallback("Conv2D-batch0", lambda x, w: xn.conv.Conv2D(x, w, window=_W), lambda rng, dt: [
    _normal(rng, dt, (0, 4, 4, 2)), _normal(rng, dt, (3, 3, 2, 2))])
_conv_fallback("Conv2DBackpropInput-batch0",
               lambda *v: xn.conv.Conv2DBackpropInput(*v, window=_W), lambda rng, dt: [
                   _normal(rng, dt, (0, 4, 4, 2)), _normal(rng, dt, (3, 3, 2, 2)),
                   _normal(rng, dt, (0, 4, 4, 2))])
_conv_fallback("Conv2DBackpropFilter-mixed",
               lambda *v: xn.conv.Conv2DBackpropFilter(*v, window=_W), lambda rng, dt: [
                   _normal(rng, F32, (1, 4, 4, 2)), _normal(rng, F32, (3, 3, 2, 2)),
                   _normal(rng, F64, (1, 4, 4, 2))])
_conv_fallback("MaxPool-int", lambda x: xn.conv.MaxPool(x, ksize=(2, 2), window=_W),
               lambda rng, dt: [rng.integers(-3, 3, (1, 4, 4, 2))])
_conv_fallback("MaxPoolGrad-mixed",
               lambda *v: xn.conv.MaxPoolGrad(*v, ksize=(2, 2), window=_W), lambda rng, dt: [
                   _normal(rng, F64, (1, 4, 4, 2)), _normal(rng, F32, (1, 4, 4, 2))])
_conv_fallback("AvgPool-batch0", lambda x: xn.conv.AvgPool(x, ksize=(2, 2), window=_W),
               lambda rng, dt: [_normal(rng, dt, (0, 4, 4, 2))])
_conv_fallback("AvgPoolGrad-mixed",
               lambda *v: xn.conv.AvgPoolGrad(*v, ksize=(2, 2), window=_W), lambda rng, dt: [
                   _normal(rng, F64, (1, 4, 4, 2)), _normal(rng, F32, (1, 4, 4, 2))])


def _build(build, values):
    with xn.Graph().as_default():
        return build(*[xn.placeholder() for _ in values])


def _case_classes():
    classes = set()
    for param in CASES:
        build, gen, _ = param.values
        values = gen(np.random.default_rng(0), F32)
        classes.add(type(_build(build, values)))
    return classes


def test_ops_without_a_fast_path_run_the_portable_forward():
    with xn.Graph().as_default():
        op = ops.Tanh(xn.placeholder())
    portable = object()
    assert kernels.forward_fn(op, False, portable) is portable
    assert kernels.forward_fn(op, True, portable) is portable


def test_stacked_steps_keep_the_products_layout():
    """A recurrent layer's steps: F-ordered pieces stacked on axis 0 merge back into rows
    without a copy, and the pieces of a strided array get a contiguous batch axis."""
    rng = np.random.default_rng(0)
    pieces = [np.asfortranarray(_normal(rng, F32, (3, 5))) for _ in range(4)]
    with xn.Graph().as_default():
        stack = ops.Stack([xn.placeholder() for _ in pieces], axis=0)
        unstack = ops.unstack(xn.placeholder(), axis=1, num=4)[0].inputs[0]
    stacked = kernels.forward_fn(stack, False, None)(*pieces)
    np.testing.assert_array_equal(stacked, np.stack(pieces))
    assert np.shares_memory(stacked.reshape(12, 5), stacked)  # a view: no copy
    strided = _normal(rng, F32, (5, 3, 4)).transpose(1, 2, 0)  # (3, 4, 5), axis 1 fastest
    got = kernels.forward_fn(unstack, False, lambda x: unstack.forward(XP, x))(strided)
    for t, piece in enumerate(got):
        np.testing.assert_array_equal(piece, strided[:, t])
        assert piece.strides[0] == piece.itemsize


# Fast paths whose ops the cases above cannot call: a random op draws from a Session's stream
# (test_dropout_mask_kernel_draws_the_portable_masks, below).
TESTED_APART = {ops.random.DropoutMask}


def test_every_fast_path_has_cases():
    untested = (set(kernels.FORWARD) | set(kernels.INPLACE)) - _case_classes() - TESTED_APART
    assert not untested, f"fast paths without a test case: {sorted(c.__name__ for c in untested)}"
    assert set(kernels.INPLACE) <= set(kernels.FORWARD)
    assert set(kernels.INPLACE) <= kernels.FRESH  # a donated input is a fresh buffer too


@pytest.mark.parametrize("donate", [False, True], ids=["keep", "donate"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("build, gen, exact", CASES)
def test_forward_matches_portable(build, gen, exact, dtype, donate):
    values = gen(np.random.default_rng(1), dtype)
    op = _build(build, values)
    got, expected, after = _run_both(op, values, donate)
    assert_same(got, expected, exact, dtype)
    # Only a donated first input may be written; every other input is left as it was.
    first = 1 if donate else 0
    for k, (before, now) in enumerate(zip(values, after)):
        if k >= first:
            np.testing.assert_array_equal(np.asarray(now), np.asarray(before), strict=True,
                                          err_msg=f"input {k} was modified")
    if type(op) in kernels.FRESH and isinstance(got, np.ndarray):
        # FRESH promises a buffer nothing else holds (a later step may overwrite it)
        assert got.flags.writeable
        for k, v in enumerate(after):
            if k >= first and isinstance(v, np.ndarray):
                assert not np.shares_memory(got, v), f"the output shares input {k}'s buffer"


# --------------------------------------------------------------------------- mixed dtypes

MIXED = [
    ("Add", ops.Add, lambda rng: [_normal(rng, F32, (3, 4)), _normal(rng, F64, (4,))]),
    ("Multiply", ops.Multiply, lambda rng: [_normal(rng, F64, (3, 4)), _normal(rng, F32, (3, 4))]),
    ("Divide-int", ops.Divide, lambda rng: [_normal(rng, F32, (3, 4)), np.arange(1, 5)]),
    ("ReluGrad", ops.ReluGrad,
     lambda rng: [_normal(rng, F64, (3, 4)), _relu_out(rng, F32, (3, 4))]),
    ("ReluGrad-32", ops.ReluGrad,
     lambda rng: [_normal(rng, F32, (3, 4)), _relu_out(rng, F64, (3, 4))]),
    ("SigmoidGrad", ops.SigmoidGrad,
     lambda rng: [_normal(rng, F64, (3, 4)), _probs(rng, F32, (3, 4))]),
    ("SigmoidGrad-32", ops.SigmoidGrad,
     lambda rng: [_normal(rng, F32, (3, 4)), _probs(rng, F64, (3, 4))]),
    ("MatMul", ops.MatMul, lambda rng: [_normal(rng, F32, (3, 4)), _normal(rng, F64, (4, 2))]),
    ("MatMulGradA", ops.MatMulGradA,
     lambda rng: [_normal(rng, F64, (3, 2)), _normal(rng, F32, (3, 4)), _normal(rng, F32, (4, 2))]),
    ("MatMulGradB", ops.MatMulGradB,
     lambda rng: [_normal(rng, F64, (3, 2)), _normal(rng, F32, (3, 4)), _normal(rng, F32, (4, 2))]),
    ("BroadcastBack-all", lambda g, like: ops.BroadcastBack(g, like, None, False, False),
     lambda rng: [_normal(rng, F64, ()), _normal(rng, F32, (3, 4))]),
    ("BroadcastBack-all-mean", lambda g, like: ops.BroadcastBack(g, like, None, False, True),
     lambda rng: [_normal(rng, F64, ()), _normal(rng, F32, (3, 4))]),
    ("BroadcastBack-axis", lambda g, like: ops.BroadcastBack(g, like, (1,), False, True),
     lambda rng: [_normal(rng, F64, (3,)), _normal(rng, F32, (3, 4))]),
    ("SumTo", ops.SumTo, lambda rng: [_normal(rng, F64, (3, 4)), _normal(rng, F32, (4,))]),
    ("SparseCEGrad", ops.SparseSoftmaxCrossEntropyGrad,
     lambda rng: [_normal(rng, F64, (5,))] + _ce_gen()(rng, F32)),
    ("BCE", ops.BinaryCrossEntropy,
     lambda rng: [_probs(rng, F32, (3, 4)), _probs(rng, F64, (4,))]),
    ("BCE-64", ops.BinaryCrossEntropy,
     lambda rng: [_probs(rng, F64, (3, 4)), _probs(rng, F32, (3, 4))]),
    ("BCEGrad", ops.BinaryCrossEntropyGrad,
     lambda rng: [_normal(rng, F64, (3, 4)), _probs(rng, F32, (3, 4)), _probs(rng, F32, (3, 4))]),
    ("BCEGrad-32", ops.BinaryCrossEntropyGrad,
     lambda rng: [_normal(rng, F32, (3, 4)), _probs(rng, F64, (3, 4)), _probs(rng, F32, (3, 4))]),
    ("ReduceSum-int32", ops.ReduceSum, lambda rng: [np.arange(12, dtype=np.int32).reshape(3, 4)]),
    ("OnesLike-int", ops.OnesLike, lambda rng: [np.arange(3)]),
    ("Sigmoid-int", ops.Sigmoid, lambda rng: [np.arange(-3, 3)]),
    ("Relu-int", ops.Relu, lambda rng: [np.arange(-3, 3)]),
    ("Rsqrt-int", ops.Rsqrt, lambda rng: [np.arange(1, 7)]),
]


@pytest.mark.parametrize("donate", [False, True], ids=["keep", "donate"])
@pytest.mark.parametrize("build, gen", [pytest.param(b, g, id=n) for n, b, g in MIXED])
def test_mixed_dtypes_promote_like_portable(build, gen, donate):
    values = gen(np.random.default_rng(2))
    op = _build(build, values)
    got, expected, after = _run_both(op, values, donate)
    assert_same(got, expected, exact=False, dtype=F32)
    for k, (before, now) in enumerate(zip(values, after)):
        if k >= (1 if donate else 0):
            np.testing.assert_array_equal(np.asarray(now), np.asarray(before), strict=True)


# --------------------------------------------------------------------------- edge values


@pytest.mark.parametrize("donate", [False, True], ids=["keep", "donate"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_bce_at_zero_and_one_is_finite_and_silent(dtype, donate):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype)
    with xn.Graph().as_default():
        loss = ops.BinaryCrossEntropy(xn.placeholder(), xn.placeholder())
        grad = ops.BinaryCrossEntropyGrad(xn.placeholder(), xn.placeholder(), xn.placeholder())
    with np.errstate(all="ignore"):
        want_loss = loss.forward(XP, p, y)
        want_grad = grad.forward(XP, np.ones_like(p), p, y)
    with np.errstate(all="raise"):  # the fast path floors log(0) without a warning
        got_loss = kernels.forward_fn(loss, donate, None)(p.copy(), y.copy())
        got_grad = kernels.forward_fn(grad, donate, None)(np.ones_like(p), p.copy(), y.copy())
    assert_same(got_loss, want_loss, exact=True)
    assert_same(got_grad, want_grad, exact=True)
    np.testing.assert_array_equal(got_loss, np.array([100.0, 100.0, 0.0, 0.0, np.log(2.0)], dtype))
    assert np.isfinite(got_grad).all()


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_sparse_ce_with_huge_logits_stays_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4 - 1.0], [1e4, 1e4, 1e4]], dtype)
    labels = np.array([0, 2, 1])
    exact = (np.log(np.exp(logits.astype(np.longdouble)
                           - logits.max(1, keepdims=True)).sum(1))
             + logits.max(1) - logits[np.arange(3), labels]).astype(np.float64)
    with xn.Graph().as_default():
        ce = ops.SparseSoftmaxCrossEntropy(xn.placeholder(), xn.placeholder())
        ce_grad = ops.SparseSoftmaxCrossEntropyGrad(xn.placeholder(), xn.placeholder(),
                                                       xn.placeholder())
    with np.errstate(all="raise", under="ignore"):
        got = kernels.forward_fn(ce, False, None)(labels, logits)
        got_grad = kernels.forward_fn(ce_grad, False, None)(np.ones(3, dtype), labels, logits)
    assert np.isfinite(got).all() and np.isfinite(got_grad).all()
    # as accurate as the portable path: its error is about an ulp of the logits' size
    ulp = np.spacing(dtype(1e4))
    np.testing.assert_allclose(got, exact, rtol=0, atol=2 * ulp)
    np.testing.assert_allclose(np.asarray(ce.forward(XP, labels, logits)), exact, atol=2 * ulp)
    assert_same(got_grad, ce_grad.forward(XP, np.ones(3, dtype), labels, logits), exact=False)


# --------------------------------------------------------------------------- optimizer updates

UPDATE_OPTIMIZERS = [
    pytest.param(lambda: optimizers.GradientDescentOptimizer(0.1), id="sgd"),
    pytest.param(lambda: optimizers.MomentumOptimizer(0.1, 0.9), id="momentum"),
    pytest.param(lambda: optimizers.MomentumOptimizer(0.1, 0.9, use_nesterov=True), id="nesterov"),
    pytest.param(lambda: optimizers.AdamOptimizer(0.01), id="adam"),
]
PARAM_SHAPES = [(3, 4), (4,), ()]


def test_every_update_is_tested():
    tested = {type(p.values[0]()) for p in UPDATE_OPTIMIZERS}
    assert set(updates.UPDATES) <= tested


def _grads(rng, dtype, shapes):
    grads = [_normal(rng, dtype, s) for s in shapes]
    grads[-1] = dtype(grads[-1])  # a 0-d gradient often arrives as a NumPy scalar
    return grads


@pytest.mark.parametrize("grad_dtype", ["same", F64], ids=["same", "grads-f64"])
@pytest.mark.parametrize("owned", [False, True], ids=["borrowed", "owned"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("make", UPDATE_OPTIMIZERS)
def test_update_inplace_matches_portable_step(make, dtype, owned, grad_dtype):
    rng = np.random.default_rng(3)
    gdtype = dtype if grad_dtype == "same" else grad_dtype
    with xn.Graph().as_default():
        params = [xn.Variable(_normal(rng, dtype, s)) for s in PARAM_SHAPES]
        step = make().apply_gradients([(xn.placeholder(), p) for p in params])
    n = len(step.pairs)
    leaves = step.inputs[n:]  # the Variables, then their slots
    fast_state = [np.array(v.initial_value, copy=True) for v in leaves]
    port_state = [np.array(v.initial_value, copy=True) for v in leaves]
    buffers = list(fast_state)
    for _ in range(3):
        grads = _grads(rng, gdtype, PARAM_SHAPES)
        port_state = list(step.forward(XP, *[_copy(g) for g in grads], *port_state))
        given = [_copy(g) for g in grads]
        assert updates.update_inplace(step, given + fast_state, [owned] * n) is True
        assert all(a is b for a, b in zip(fast_state, buffers))  # written in place
        for fast, port in zip(fast_state, port_state):  # BLAS may fuse the multiply-adds
            assert_same(fast, port, exact=False)
        if not owned:
            for g, before in zip(given, grads):
                np.testing.assert_array_equal(g, before, strict=True)


def test_update_inplace_declines_unknown_optimizers():
    class Halving(optimizers.GradientDescentOptimizer):
        pass

    with xn.Graph().as_default():
        w = xn.Variable([1.0])
        step = Halving(0.5).apply_gradients([(xn.placeholder(), w)])
    state = np.ones(1, F32)
    assert updates.update_inplace(step, [np.ones(1, F32), state], [True]) is False
    np.testing.assert_array_equal(state, [1.0])


# --------------------------------------------------------------------------- whole graphs


def _blobs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)).astype(F32)
    y = rng.integers(0, 3, n)
    return X, y


@pytest.mark.parametrize("blas_gemm", ["numpy-blas", "no-blas"])
@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.1), ("momentum", 0.05), ("adam", 0.01)])
def test_mlp_training_matches_strict(optimizer, lr, blas_gemm, monkeypatch):
    if blas_gemm == "no-blas":  # as where NumPy's OpenBLAS is not found: NumPy arithmetic
        monkeypatch.setattr(blas, "_gemm", {})
    X, y = _blobs()
    X_before, y_before = X.copy(), y.copy()
    models = [xn.nn.NNClassifier([5, 7, 6, 3], seed=0, device="cpu"),
              xn.nn.NNClassifier([5, 7, 6, 3], seed=0, backend="array_api_strict",
                                 device="device1")]
    held = [layer.W for layer in models[0].layers]  # copies: training must not move them
    held_before = [h.copy() for h in held]
    # 5 steps; unshuffled batches are views
    histories = [m.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, learning_rate=lr,
                       verbose=0, shuffle=False) for m in models]
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    for h, before in zip(held, held_before):
        np.testing.assert_array_equal(h, before)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5)
    for fast, portable in zip(models[0].layers, models[1].layers):
        np.testing.assert_allclose(fast.W, xn.to_numpy(portable.W), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fast.b, xn.to_numpy(portable.b), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(models[0].layers[0].W, held_before[0])  # it did train


def _both(build, run):
    """``run(sess, nodes)`` on NumPy and on strict, each in a fresh graph from ``build()``."""
    results = []
    for make in (numpy_session, strict_session):
        with xn.Graph().as_default():
            nodes = build()
            results.append(run(make(), nodes))
    return results


def _affine(rng):
    x = xn.placeholder(shape=(None, 4), name="x")
    w = xn.Variable(np.asarray(rng.standard_normal((4, 3)), F32), name="w")
    b = xn.Variable(np.asarray(rng.standard_normal(3), F32), name="b")
    return x, w, b, x @ w + b


X4 = np.random.default_rng(4).standard_normal((5, 4)).astype(F32)


def test_fetched_value_is_not_overwritten_downstream():
    def build():
        x, w, b, h = _affine(np.random.default_rng(5))
        r = xn.relu(h)
        return x, h, [h, r, (r + 1.0) * 2.0, xn.sigmoid(h) - 0.5, xn.reduce_sum(r * r)]

    def run(sess, nodes):
        x, h, fetches = nodes
        feed = X4.copy()
        out = [xn.to_numpy(v).copy() for v in sess.run(fetches, {x: feed})]
        np.testing.assert_array_equal(feed, X4)
        return out

    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-6)
    h = fast[0]
    np.testing.assert_array_equal(fast[1], np.maximum(h, 0))  # relu(h) did not clobber h


def _fetch_all(sess, nodes):
    x, fetches = nodes
    return [xn.to_numpy(v) for v in sess.run(fetches, {x: X4})]


def test_views_survive_in_place_consumers_of_their_base():
    def build():
        x, w, b, h = _affine(np.random.default_rng(14))
        # reshape/transpose may return views of h; relu and add are h's last readers
        return x, [xn.reshape(h, (-1,)), xn.transpose(h), xn.relu(h), xn.add(h, 1.0)]

    fast, portable = _both(build, _fetch_all)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(fast[0].reshape(fast[1].T.shape), fast[1].T)
    np.testing.assert_array_equal(np.maximum(fast[1].T, 0), fast[2])


def test_held_results_survive_later_runs():
    rng = np.random.default_rng(6)
    with xn.Graph().as_default():
        x, w, b, h = _affine(rng)
        r = xn.relu(h)
        out = r * 3.0 + 1.0
        sess = numpy_session()
        first = sess.run([h, out], {x: X4})
        kept = [a.copy() for a in first]
        sess.run([h, out], {x: X4 * 2.0})
        sess.run(out, {x: -X4})
    for a, k in zip(first, kept):
        np.testing.assert_array_equal(a, k)


def test_value_with_two_consumers():
    def build():
        x, w, b, h = _affine(np.random.default_rng(7))
        r = xn.relu(h)  # relu may overwrite h only if nothing reads h later
        metric = xn.reduce_sum(h * h)
        return x, [r + 1.0, metric, xn.sigmoid(h) * r]

    fast, portable = _both(build, _fetch_all)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-6)


def test_one_array_fed_to_two_placeholders_and_a_node_used_twice():
    data = np.random.default_rng(8).standard_normal((3, 4)).astype(F32)
    kept = data.copy()

    def build():
        a, b = xn.placeholder(name="a"), xn.placeholder(name="b")
        s = xn.relu(a + 1.0) * b  # Add/Relu/Multiply could overwrite a fresh input
        t = xn.relu(b - 0.5)
        u = (a * a) + (a * a)
        return a, b, [s + t, u, xn.sigmoid(a) * xn.sigmoid(b), xn.add(s, s)]

    def run(sess, nodes):
        a, b, fetches = nodes
        out = [xn.to_numpy(v) for v in sess.run(fetches, {a: data, b: data})]
        np.testing.assert_array_equal(data, kept)
        return out

    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", UPDATE_OPTIMIZERS)
def test_gradient_shared_by_two_variables(make):
    rng = np.random.default_rng(9)
    a0, b0 = rng.standard_normal((3, 4)).astype(F32), rng.standard_normal((3, 4)).astype(F32)

    def build():
        a, b = xn.Variable(a0, name="a"), xn.Variable(b0, name="b")
        s = a + b  # d loss/da and d loss/db are one node: one buffer
        loss = xn.reduce_sum(xn.sigmoid(s) * xn.relu(s))
        grads = xn.gradients(loss, [a, b])
        return a, b, make().minimize(loss), grads

    def run(sess, nodes):
        a, b, step, grads = nodes
        for _ in range(3):
            sess.run(step)
        g = sess.run(grads, to_numpy=True)
        return [sess.run(a, to_numpy=True), sess.run(b, to_numpy=True)] + g

    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast[0] - a0, fast[1] - b0, rtol=1e-5, atol=1e-6)


def test_fetching_gradients_with_the_step():
    def build():
        x, w, b, h = _affine(np.random.default_rng(10))
        loss = xn.reduce_mean(xn.relu(h) * h)
        gw, gb = xn.gradients(loss, [w, b])
        step = xn.train.GradientDescentOptimizer(0.5).apply_gradients([(gw, w), (gb, b)])
        return x, w, b, step, gw, gb

    def run(sess, nodes):
        x, w, b, step, gw, gb = nodes
        out = []
        for _ in range(3):
            _, g1, g2 = sess.run([step, gw, gb], {x: X4})
            out += [xn.to_numpy(g1).copy(), xn.to_numpy(g2).copy()]
        return out + [sess.run(w, to_numpy=True), sess.run(b, to_numpy=True)]

    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-6)


def test_fed_arrays_are_never_modified():
    rng = np.random.default_rng(11)
    with xn.Graph().as_default():
        x, w, b, h = _affine(rng)
        seed = xn.placeholder(name="seed")
        out = xn.sigmoid(xn.relu(h) + 1.0)
        gw, gx = xn.gradients(out, [w, x], grad_ys=seed)  # a fed seed flows into ReluGrad etc.
        g_w, g_b = xn.placeholder(name="g_w"), xn.placeholder(name="g_b")
        fed_step = xn.train.MomentumOptimizer(0.1).apply_gradients([(g_w, w), (g_b, b)])
        sess = numpy_session()
        feeds = {x: X4.copy(), seed: rng.standard_normal((5, 3)).astype(F32),
                 g_w: rng.standard_normal((4, 3)).astype(F32),
                 g_b: rng.standard_normal(3)}  # float64: converted for the float32 Variable
        kept = {k: v.copy() for k, v in feeds.items()}
        for _ in range(2):
            sess.run([out, gw, gx], {x: feeds[x], seed: feeds[seed]})
            sess.run(fed_step, {g_w: feeds[g_w], g_b: feeds[g_b]})
    for k, v in feeds.items():
        np.testing.assert_array_equal(v, kept[k], err_msg=k.label)


def test_variable_values_handed_out_are_copies():
    rng = np.random.default_rng(12)
    w0 = rng.standard_normal((4, 3)).astype(F32)
    w0_kept = w0.copy()
    with xn.Graph().as_default():
        x, _, b, _ = _affine(rng)
        w = xn.Variable(w0, name="w2")
        loss = xn.reduce_sum(xn.square(x @ w + b))
        sess = numpy_session()
        steps = [opt.minimize(loss) for opt in (xn.train.GradientDescentOptimizer(0.01),
                                                xn.train.MomentumOptimizer(0.01),
                                                xn.train.AdamOptimizer(0.01))]
        fetched, fetched_list = sess.run(w), sess.run([w, b])
        got = sess.get_value(w)
        held = [fetched.copy(), fetched_list[0].copy(), fetched_list[1].copy(), got.copy()]
        new = rng.standard_normal((4, 3)).astype(F32)
        new_kept = new.copy()
        for step in steps:
            sess.run(step, {x: X4})
        assert not np.array_equal(sess.run(w), held[0])
        for a, k in zip([fetched, fetched_list[0], fetched_list[1], got], held):
            np.testing.assert_array_equal(a, k)
        sess.set_value(w, new)
        for step in steps:
            sess.run(step, {x: X4})
        np.testing.assert_array_equal(new, new_kept)
        assert not np.array_equal(sess.run(w), new)
    np.testing.assert_array_equal(w0, w0_kept)
    np.testing.assert_array_equal(w.initial_value, w0_kept)


def test_scalar_variable_trains_like_strict():
    def build():
        w = xn.Variable(1.5)
        v = xn.Variable([0.5, -1.0])
        loss = w * w + xn.reduce_sum(xn.sigmoid(v * w))
        return w, v, [opt.minimize(loss) for opt in (xn.train.GradientDescentOptimizer(0.1),
                                                     xn.train.MomentumOptimizer(0.1),
                                                     xn.train.AdamOptimizer(0.1))]

    def run(sess, nodes):
        w, v, steps = nodes
        for step in steps:
            sess.run(step)
        return [sess.run(w, to_numpy=True), sess.run(v, to_numpy=True)]

    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-6)


# Variables around their updates: the NumPy plan must agree with the portable path.


def _variable_and_step():
    w = xn.Variable([1.0, 2.0], name="w")
    return w, xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))


def test_variable_fetched_with_its_update_is_the_value_before_it():
    def run(sess, nodes):
        w, step = nodes
        return xn.to_numpy(sess.run([w, step])[0])

    fast, portable = _both(_variable_and_step, run)
    np.testing.assert_array_equal(portable, [1.0, 2.0])
    np.testing.assert_array_equal(fast, portable)


def test_views_of_variables_are_not_live():
    def run(sess, nodes):
        w, step = nodes
        held = sess.run([xn.transpose(w), xn.reshape(w, (2, 1))])
        sess.run(step)
        return [xn.to_numpy(h).ravel() for h in held]

    for h in _both(_variable_and_step, run)[0]:
        np.testing.assert_array_equal(h, [1.0, 2.0])


def test_failed_update_changes_no_variable():
    def build():
        w1, w2 = xn.Variable([1.0, 2.0]), xn.Variable([1.0, 2.0, 3.0])
        g1, g2 = xn.placeholder(), xn.placeholder()
        step = xn.train.GradientDescentOptimizer(0.5).apply_gradients([(g1, w1), (g2, w2)])
        return w1, step, g1, g2

    def run(sess, nodes):
        w1, step, g1, g2 = nodes
        with pytest.raises(xn.OpError):  # g2 cannot broadcast to w2's shape
            sess.run(step, {g1: np.ones(2, F32), g2: np.ones(4, F32)})
        return sess.run(w1, to_numpy=True)

    for w1 in _both(build, run):
        np.testing.assert_array_equal(w1, [1.0, 2.0])


@pytest.mark.parametrize("case_", ["swap", "two-updates"])
def test_updates_read_the_values_before_the_run(case_):
    def build():
        w1, w2 = xn.Variable([1.0, 2.0]), xn.Variable([10.0, 20.0])
        sgd = xn.train.GradientDescentOptimizer
        if case_ == "swap":
            steps = [sgd(0.5).apply_gradients([(w2, w1), (w1, w2)])]
        else:
            loss = xn.reduce_sum(w1 * w1)
            steps = [sgd(0.1).minimize(loss, [w1]), sgd(0.2).minimize(loss, [w1])]
        return w1, w2, steps

    def run(sess, nodes):
        w1, w2, steps = nodes
        sess.run(steps)
        return [sess.run(w1, to_numpy=True), sess.run(w2, to_numpy=True)]

    if case_ == "two-updates":  # ambiguous: refused on every backend, nothing changed
        for device, backend_name in (("cpu", "numpy"), ("device1", "array_api_strict")):
            with xn.Graph().as_default():
                w1, w2, steps = build()
                sess = xn.Session(device=device, backend=backend_name)
                with pytest.raises(ValueError, match=r"updated by two steps in one run"):
                    sess.run(steps)
                np.testing.assert_array_equal(sess.run(w1, to_numpy=True), [1.0, 2.0])
        return
    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p)


def _sgd_steps(build, steps=3):
    def run(sess, nodes):
        feed, step, variables = nodes
        for _ in range(steps):
            sess.run(step, feed)
        return [sess.run(v, to_numpy=True) for v in variables]

    return run


DEFERRING = {  # the optimizers whose weight gradients the update may compute itself
    "sgd": lambda lr: xn.train.GradientDescentOptimizer(lr),
    "momentum": lambda lr: xn.train.MomentumOptimizer(lr, 0.9),
    "nesterov": lambda lr: xn.train.MomentumOptimizer(lr, 0.9, use_nesterov=True),  # never
}


@pytest.mark.parametrize("opt", list(DEFERRING))
@pytest.mark.parametrize("order", ["vw", "wv"])
def test_deferred_weight_gradient_made_from_another_variable(order, opt):
    """y = V @ W: W's gradient V^T g must use V before this step's update of V, even where
    the update computes it straight into W (whichever Variable it updates first)."""
    rng = np.random.default_rng(21)
    v0 = rng.standard_normal((3, 4)).astype(F32)
    w0 = rng.standard_normal((4, 2)).astype(F32)

    def build():
        v, w = xn.Variable(v0, name="v"), xn.Variable(w0, name="w")
        loss = xn.reduce_sum(xn.square(v @ w))
        var_list = [v, w] if order == "vw" else [w, v]
        return {}, DEFERRING[opt](0.01).minimize(loss, var_list), [v, w]

    fast, portable = _both(build, _sgd_steps(build, steps=1))
    v, w = v0.astype(np.float64), w0.astype(np.float64)
    g = 2 * (v @ w)
    # one step from zero velocity: momentum moves by lr * g; Nesterov by lr * (1 + 0.9) g
    scale = 1.9 if opt == "nesterov" else 1.0
    expected = [v - 0.01 * scale * g @ w.T, w - 0.01 * scale * v.T @ g]
    for f, p, e in zip(fast, portable, expected):
        np.testing.assert_allclose(f, e, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opt", list(DEFERRING))
def test_deferred_weight_gradient_operand_is_not_reused_before_the_update(opt):
    """h feeds W2's gradient (computed at the update) and, last in the plan, h * 0.5:
    that product must not be written into h's buffer."""
    rng = np.random.default_rng(22)
    w1_0 = rng.standard_normal((4, 5)).astype(F32) * 0.5
    w2_0 = rng.standard_normal((5, 2)).astype(F32) * 0.5

    def build():
        x = xn.placeholder(shape=(None, 4), name="x")
        w1, w2 = xn.Variable(w1_0, name="w1"), xn.Variable(w2_0, name="w2")
        h = x @ w1
        loss = xn.reduce_sum(h @ w2) + xn.reduce_sum(xn.exp(h * 0.5))
        return {x: X4}, DEFERRING[opt](0.05).minimize(loss), [w1, w2]

    fast, portable = _both(build, _sgd_steps(build))
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fast[1], w2_0)


@pytest.mark.parametrize("opt", list(DEFERRING))
@pytest.mark.parametrize("order", ["wv", "vw"])
def test_deferred_weight_gradient_operand_that_is_another_variables_gradient(order, opt):
    """out = x @ W + V, V of out's full shape: V's gradient is the very array g that W's
    pending gradient x^T g reads at the update, so V's update must not scale g in place."""
    rng = np.random.default_rng(23)
    w0 = rng.standard_normal((4, 3)).astype(F32)
    v0 = rng.standard_normal((5, 3)).astype(F32)

    def build():
        x = xn.constant(X4, name="x")
        w, v = xn.Variable(w0, name="w"), xn.Variable(v0, name="v")
        loss = xn.reduce_sum(xn.square(x @ w + v))
        var_list = [w, v] if order == "wv" else [v, w]
        return {}, DEFERRING[opt](0.01).minimize(loss, var_list), [w, v]

    fast, portable = _both(build, _sgd_steps(build, steps=2))
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opt, expected", [
    ("sgd", [((5, 7), -0.5, 1.0), ((7, 3), -0.5, 1.0)]),  # w += -lr x^T g
    ("momentum", [((5, 7), 1.0, 0.9), ((7, 3), 1.0, 0.9)]),  # v = 0.9 v + x^T g
    ("adam", []),
])
def test_weight_gradients_are_left_to_the_update(monkeypatch, opt, expected):
    """With NumPy's BLAS found, a Linear layer's weight gradient is never made under SGD or
    momentum: the update accumulates x^T g into W or into the velocity."""
    if not blas.available():
        pytest.skip("NumPy's OpenBLAS was not found: the gradients are computed")
    made = []
    original = blas.accumulate_product

    def spy(c, a, b, alpha, beta=1.0):
        made.append((c.shape, alpha, beta))
        return original(c, a, b, alpha, beta)

    X, y = _blobs()
    model = xn.nn.NNClassifier([5, 7, 3], seed=0, device="cpu")
    monkeypatch.setattr(blas, "accumulate_product", spy)
    model.fit(X, y, epochs=1, batch_size=40, optimizer=opt, learning_rate=0.5, verbose=0)
    assert sorted(made) == expected


# --------------------------------------------------------------------------- second order


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("dtype", [None, "float64"], ids=["f32", "f64"])
def test_second_order_gradients_match_strict(activation, dtype):
    rng = np.random.default_rng(13)
    X = rng.standard_normal((5, 4))
    w0, v0 = rng.standard_normal((4, 3)), rng.standard_normal(4)

    def build():
        x = xn.placeholder(shape=(None, 4), name="x")
        w, v = xn.Variable(w0, name="w"), xn.Variable(v0, name="v")
        act = getattr(xn, activation)
        y = xn.reduce_sum(act(x @ w)) + xn.reduce_sum(act(xn.matmul(v, w) * 2.0))  # x @ W, x 1-D
        y = y + xn.reduce_sum(act(x @ v))  # W @ x-style: a 1-D right operand
        gw, gv = xn.gradients(y, [w, v])
        second = xn.gradients(xn.reduce_sum(gw * gw) + xn.reduce_sum(gv), [w, v, x])
        fetches = [gw, gv] + second + xn.gradients(gw, [w, v])
        return x, [f for f in fetches if f is not None]  # relu has no second derivative

    def run(sess, nodes):
        x, fetches = nodes
        return sess.run(fetches, {x: X}, to_numpy=True)

    fast, portable = [_run_with(make, build, run, dtype)
                      for make in (numpy_session, strict_session)]
    tol = dict(rtol=1e-12, atol=1e-12) if dtype else dict(rtol=1e-5, atol=1e-5)
    for f, p in zip(fast, portable):
        assert f.dtype == p.dtype
        np.testing.assert_allclose(f, p, **tol)


def _run_with(make, build, run, dtype):
    with xn.Graph().as_default():
        nodes = build()
        return run(make(dtype=dtype), nodes)


# --------------------------------------------------------------------------- kept per shape


def _mean_loss_graph():
    x = xn.placeholder(shape=(None, 3), name="x")  # a scalar loss: its gradient seed is a constant
    w = xn.Variable(np.array([0.5, -2.0, 1.5], F32), name="w")
    loss = xn.reduce_mean(xn.square(x * w))
    (gx,) = xn.gradients(loss, [x])
    return x, loss, gx


def test_values_fixed_by_shapes_are_kept_per_shape_and_handed_out_as_copies():
    """The gradient of a mean (a constant over the batch size) is computed once per shape:
    right for every batch size, and a fetched one can be written without changing later runs."""
    rng = np.random.default_rng(12)
    with xn.Graph().as_default():
        x, loss, gx = _mean_loss_graph()
        (seed_grad,) = [n for n in xn.autodiff.topological_order([gx])  # constant / n
                        if isinstance(n, ops.BroadcastBack)]
        fast, portable = numpy_session(), strict_session()
        plan_fns = []
        for n in (4, 7, 4, 1, 7):
            X = rng.standard_normal((n, 3)).astype(F32)
            got = fast.run([gx, seed_grad], {x: X})
            want = portable.run([gx, seed_grad], {x: X}, to_numpy=True)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
            np.testing.assert_array_equal(got[1], np.full(n, 1.0 / (3 * n), F32)[:, None]
                                          * np.ones(3, F32))
            got[1][...] = 99.0  # the caller's copy
            plan_fns.append([getattr(step.fn, "__qualname__", "") for step in
                             next(iter(fast._plans.values())).steps])
        assert any("_memoized_by_shape" in name for name in plan_fns[0])
        X = np.ones((4, 3), F32)
        np.testing.assert_allclose(fast.run(gx, {x: X}), portable.run(gx, {x: X}, to_numpy=True))


def test_kept_values_are_read_only_and_never_donated():
    with xn.Graph().as_default():
        x, _, gx = _mean_loss_graph()
        sess = numpy_session()
        X = np.ones((5, 3), F32)
        first = sess.run(gx, {x: X}).copy()
        plan = next(iter(sess._plans.values()))
        kept = [step for step in plan.steps if "_memoized_by_shape" in
                getattr(step.fn, "__qualname__", "")]
        assert kept
        for step in kept:
            value = step.fn(*[plan.template[s] if plan.template[s] is not None
                              else Description.of(X) for s in step.inputs])
            assert not value.flags.writeable
        for _ in range(3):  # in-place consumers downstream leave the kept value alone
            np.testing.assert_array_equal(sess.run(gx, {x: X}), first)


def test_shape_only_loss_still_checks_its_inputs_every_run():
    """The loss under a training step's mean is only described (and the description kept per
    shape); a bad feed must still fail each run, and change no Variable."""
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([4, 3], device="cpu", seed=0)
    X = np.random.default_rng(13).standard_normal((6, 4)).astype(F32)
    y = np.array([0, 1, 2, 0, 1, 2])
    step = model._train_step("sgd", 0.1)
    def run(step, feed):  # fit's feed: the step's loss weights each sample
        feed[model.sample_weight] = np.ones(len(feed[model.inputs]), F32)
        return model.session.run(step, feed)

    run(step, {model.inputs: X, model.labels: y})
    before = [np.array(layer.W) for layer in model.layers]
    for _ in range(2):
        with pytest.raises(ValueError, match=r"labels of shape \(4,\) do not match logits"):
            run(step, {model.inputs: X, model.labels: y[:4]})
        for bad in (7, -1):  # NumPy would gather label -1 from the last class
            with pytest.raises(xn.session.OpError, match=rf"indices in \[0, 3\), got {bad}"):
                run(step, {model.inputs: X, model.labels: np.array([0, 1, 2, 0, 1, bad])})
    for layer, W in zip(model.layers, before):
        np.testing.assert_array_equal(layer.W, W)
    run(step, {model.inputs: X, model.labels: y})
    assert not np.array_equal(model.layers[0].W, before[0])


class _Count(xn.Update):
    """A user's update beside the optimizer's: counter <- counter + 1 (fails on demand)."""

    fail = False

    def forward(self, xp, counter, w):
        if _Count.fail:
            raise RuntimeError("the count failed")
        return [counter + 1.0]


def test_an_optimizer_step_in_place_beside_a_portable_update():
    """NumPy applies the optimizer in place and the user's update portably, in one commit;
    a failure of either leaves every Variable as it was."""
    def build():
        x = xn.placeholder(shape=(None, 4), name="x")
        w = xn.Variable(np.linspace(-1, 1, 12).reshape(4, 3).astype(F32), name="w")
        counter = xn.Variable(0.0, name="counter", trainable=False)
        step = xn.train.MomentumOptimizer(0.1).minimize(xn.reduce_mean(xn.square(x @ w)))
        return x, w, counter, [step, _Count([counter], counter, w)]

    X = np.random.default_rng(1).standard_normal((6, 4)).astype(F32)
    results = []
    for make in (numpy_session, strict_session):
        with xn.Graph().as_default():
            x, w, counter, fetches = build()
            sess = make()
            for _ in range(3):
                sess.run(fetches, {x: X})
            results.append([sess.run(v, to_numpy=True) for v in (w, counter)])
            if make is numpy_session:
                executor = next(e for e in sess._executors.values() if e.plan.updates)
                assert [u in executor.in_place for u in executor.plan.updates] == [True, False]
            before = [sess.run(v, to_numpy=True).copy() for v in (w, counter)]
            _Count.fail = True
            try:
                with pytest.raises(xn.OpError, match="the count failed"):
                    sess.run(fetches, {x: X})
            finally:
                _Count.fail = False
            for v, old in zip((w, counter), before):
                np.testing.assert_array_equal(sess.run(v, to_numpy=True), old)
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    assert results[0][1] == results[1][1] == 3.0


@pytest.mark.parametrize("dtype", [F32, F64, np.float16], ids=["f32", "f64", "f16"])
@pytest.mark.parametrize("rate", [0.5, 0.15, 0.0])
def test_dropout_mask_kernel_draws_the_portable_masks(rate, dtype, monkeypatch):
    """The DropoutMask kernel against the portable op in a NumPy Session without it and in
    array-api-strict (no float16 there), from one seed: the same masks bit for bit
    (1 / (1 - rate) rounded as portably: for 0.15, 1 / 0.85 rounded to float32 is another
    number), ones where training is false, and the stream moved on alike by those runs."""
    x0 = np.random.default_rng(0).standard_normal((64, 300)).astype(dtype)

    def masks(session):
        with xn.Graph().as_default():
            x = xn.placeholder(shape=x0.shape, dtype=str(x0.dtype), name="x")
            training = xn.placeholder(dtype="bool", shape=(), name="training")
            y = xn.dropout(x, rate, training=training)
            mask = y.op.inputs[1]
            sess = session(seed=7)
            got = [sess.run(mask, {x: x0, training: t}) for t in (True, False, True)]
            return [xn.to_numpy(m) for m in got], sess

    ran = []
    real = kernels.FORWARD[ops.random.DropoutMask]
    monkeypatch.setitem(kernels.FORWARD, ops.random.DropoutMask,
                        lambda op, portable: (ran.append(op), real(op, portable))[1])
    fast, _ = masks(numpy_session)
    assert ran
    monkeypatch.delitem(kernels.FORWARD, ops.random.DropoutMask)
    plain, _ = masks(numpy_session)
    strict = plain if dtype == np.float16 else masks(strict_session)[0]
    for got, unfused, portable in zip(fast, plain, strict, strict=True):
        assert got.dtype == dtype and got.shape == x0.shape
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}"),
                                      unfused.view(f"u{got.itemsize}"))
        np.testing.assert_array_equal(got, portable)
    np.testing.assert_array_equal(fast[1], np.ones_like(fast[1]))
    assert not np.array_equal(fast[0], fast[2]) or rate == 0.0  # a new mask every run
    if rate == 0.15 and dtype == F32:
        assert fast[0].max() != np.float32(1 / 0.85)  # the portable rounding, not this one


@pytest.mark.parametrize("order", ["C", "F"])
def test_matmul_gradient_of_a_is_laid_out_as_a_was(order):
    """MatMulGradA's 2-D g @ b^T comes C-ordered where ``a`` was a C-ordered matrix (its
    description says so, ``kernels.described``; or a itself, passed as its own
    description), else F-ordered as the 2-D products' results; the same values."""
    rng = np.random.default_rng(4)
    a = np.asarray(rng.standard_normal((6, 5)), order=order)
    b, g = rng.standard_normal((5, 3)), rng.standard_normal((6, 3))
    with xn.Graph().as_default():
        op = ops.MatMulGradA(*[xn.placeholder() for _ in range(3)])
    fn = kernels.forward_fn(op, False, None)
    for shape_only in (kernels.described(a), a):
        got = fn(g, shape_only, b)
        assert got.flags.c_contiguous == (order == "C")
        assert got.flags.f_contiguous == (order == "F")
        np.testing.assert_allclose(got, g @ b.T, rtol=1e-12)
    assert fn(g, xn.plan.Description.of(a), b).flags.f_contiguous  # no layout told: F


def test_a_plan_describes_shape_only_inputs_with_their_layout():
    """The NumPy plan's describe steps tell the layout (``kernels.described``), so the
    gradient of a C-ordered matrix input of a product comes C-ordered, and an F-ordered
    one's F-ordered."""
    rng = np.random.default_rng(6)
    w0 = rng.standard_normal((50, 30)).astype(F32)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 50), name="x")
        loss = xn.reduce_sum(xn.matmul(x, xn.Variable(w0)) ** 2)
        (g,) = xn.gradients(loss, [x])
        sess = numpy_session()
        for order in "CF":
            x0 = np.asarray(rng.standard_normal((200, 50)).astype(F32), order=order)
            got = sess.run(g, {x: x0})
            assert got.flags.c_contiguous == (order == "C")
            np.testing.assert_allclose(got, 2 * (x0 @ w0) @ w0.T, rtol=1e-4, atol=1e-4)
