"""A gradient sent through a mask (ReLU, maximum, reduce_max, max-pooling, one_hot, dropout)
is the upstream gradient times 0 or 1, so an infinite or NaN gradient gives NaN where the
mask is 0, on every backend, as NumPy and TF1 compute it. XLA rewrites a product by a cast
boolean into a select, which gives 0 there: on JAX the masks are selects of 1 and 0
(``backend.indicator``). The references are NumPy formulas written out here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpnn as xn
from xpnn import ops

X = np.array([[-2.0, -0.0, 0.0, 1.5, 7.0], [np.nan, np.inf, -np.inf, 3.0, 0.5]])
UP = np.array([[np.inf, np.inf, -np.inf, np.nan, 1.0], [np.inf, np.inf, np.inf, np.inf, -np.inf]])


def _reduce_max_reference(x, up):
    top = np.max(x, axis=1, keepdims=True)
    mask = (x >= top).astype(x.dtype)
    return mask * (up / mask.sum(axis=1))[:, None]


# name -> (build y from x, the upstream gradient, the reference gradient of sum(y * up))
CASES = {
    "relu": (xn.relu, UP, lambda x, up: up * (x > 0)),
    "relu6": (ops.relu6, UP, lambda x, up: up * ((x > 0) & (x < 6))),
    "maximum": (lambda x: xn.maximum(x, 0.0), UP, lambda x, up: up * (x >= 0)),
    "minimum": (lambda x: xn.minimum(x, 0.0), UP, lambda x, up: up * (0 >= x)),
    "reduce_max": (lambda x: xn.reduce_max(x, axis=1), np.array([np.inf, 2.0]),
                   _reduce_max_reference),
}


def _run(dev, build, x, up):
    with xn.Graph().as_default():
        xs, ups = xn.placeholder(name="x"), xn.placeholder(name="up")
        dx = xn.gradients(xn.reduce_sum(build(xs) * ups), [xs])[0]
        return xn.Session(device=dev).run(dx, {xs: x, ups: up}, to_numpy=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_masked_gradients_keep_nan(dev, name):
    build, up, reference = CASES[name]
    x, up = X.astype(np.float32), up.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0 * inf, on purpose
        want = reference(x, up)
        got = _run(dev, build, x, up)
    assert np.isnan(want).sum() > np.isnan(up).sum()  # the case reaches a 0 * inf
    np.testing.assert_array_equal(got, want)


def _max_pool_reference(x, g, k, s):
    """dx of SAME max-pooling (NHWC, one image, one channel) by loops: each window's gradient
    times the one-hot of its first maximum (NaN counting as the maximum, as argmax does)."""
    n = x.shape[1]
    out = g.shape[1]
    pad = max((out - 1) * s + k - n, 0) // 2
    dx = np.zeros_like(x)
    for i in range(out):
        for j in range(out):
            rows = [r for r in range(i * s - pad, i * s - pad + k) if 0 <= r < n]
            cols = [c for c in range(j * s - pad, j * s - pad + k) if 0 <= c < n]
            window = np.array([[x[0, r, c, 0] for c in cols] for r in rows])
            first = np.unravel_index(np.argmax(window), window.shape)
            for a, r in enumerate(rows):
                for b, c in enumerate(cols):
                    dx[0, r, c, 0] += float((a, b) == first) * g[0, i, j, 0]
    return dx


@pytest.mark.parametrize("k, s", [(3, 2), (3, 1), (2, 2)])
def test_max_pool_gradient_keeps_nan(dev, k, s):
    x = np.array([[1.0, np.nan, 2, 5], [3.0, 2.0, np.inf, 1], [-np.inf, -np.inf, 0, 0],
                  [1, 1, np.nan, np.nan]], np.float32).reshape(1, 4, 4, 1)
    out = -(-4 // s)
    g = np.ones((1, out, out, 1), np.float32)
    g[0, 0, 0, 0], g[0, -1, 0, 0] = np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = _max_pool_reference(x, g, k, s)
        got = _run(dev, lambda v: xn.max_pool2d(v, k, s, "SAME"), x, g)
    assert np.isnan(want).sum() > np.isnan(x).sum()
    np.testing.assert_array_equal(got, want)


def test_one_hot_times_log_zero_is_nan(dev):
    """Cross-entropy written out with one_hot: a probability of 0 off the label gives
    0 * log 0 = NaN, as in NumPy and TF1, not a finite loss."""
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], np.float32)
    with xn.Graph().as_default():
        labels, ps = xn.placeholder(name="labels", dtype="int64"), xn.placeholder(name="p")
        terms = ops.one_hot(labels, 3) * xn.log(ps)
        got = xn.Session(device=dev).run(xn.reduce_sum(terms, axis=1),
                                         {labels: np.array([0, 2]), ps: p}, to_numpy=True)
    assert np.isnan(got[0]) and got[1] == pytest.approx(np.log(0.5))


def test_dropout_of_infinity_is_inf_or_nan_never_zero(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        got = xn.Session(device=dev, seed=0).run(xn.dropout(x, rate=0.5),
                                                 {x: np.full(64, np.inf, np.float32)},
                                                 to_numpy=True)
    assert np.isinf(got).sum() > 0 and np.isnan(got).sum() > 0
    assert np.isinf(got).sum() + np.isnan(got).sum() == 64
