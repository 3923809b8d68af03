"""Momentum on the NumPy fast path (v = m v + x^T g as one GEMM, then w -= lr v) against
array-api-strict's portable update: several steps, dtypes, mixed steps in one run, failed
runs, checkpoints, hyperparameters changed between runs."""

from __future__ import annotations

import os

import numpy as np
import pytest

import xpnn as xn
from xpnn.devices.numpy import blas

F32 = np.float32
RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 5)).astype(F32)
W1 = RNG.standard_normal((5, 4)).astype(F32)
W2 = RNG.standard_normal((4, 3)).astype(F32)

needs_blas = pytest.mark.skipif(not blas.available(), reason="momentum defers only with BLAS")


def _sessions(**kw):
    return [xn.Session(device="cpu", **kw),
            xn.Session(backend="array_api_strict", device="device1", **kw)]


def _build(opt, x_dtype=None, w_dtype=None, bad_second=False):
    x = xn.placeholder(shape=(None, 5), name="x", dtype=x_dtype)
    w1, w2 = xn.Variable(W1, name="w1", dtype=w_dtype), xn.Variable(W2, name="w2", dtype=w_dtype)
    loss = xn.reduce_sum(xn.square(xn.tanh(x @ w1) @ w2))
    pairs = opt.compute_gradients(loss)
    gp = xn.placeholder(name="gp")
    if bad_second:
        pairs = [pairs[0], (gp, w2)]
    step = opt.apply_gradients(pairs)
    return x, gp, [w1, w2, *step.targets[2:]], step, [g for g, _ in pairs]


def _both(fn, **kw):
    out = []
    for i in range(2):
        with xn.Graph().as_default():
            out.append(fn(_sessions(**kw)[i]))
    return out


def _close(a, b, tol=1e-5):
    for p, q in zip(a, b):
        np.testing.assert_allclose(np.asarray(p, np.float64), np.asarray(q, np.float64),
                                   rtol=tol, atol=tol)


def _m(**kw):
    return xn.train.MomentumOptimizer(kw.pop("lr", 0.05), kw.pop("m", 0.9), **kw)


@pytest.mark.parametrize("case", ["plain", "m0", "m1.5", "nesterov", "f64", "x64", "w64",
                                  "fetch"])
def test_momentum_steps_match_strict(case):
    opt = {"m0": lambda: _m(m=0.0), "m1.5": lambda: _m(lr=0.001, m=1.5),
           "nesterov": lambda: _m(use_nesterov=True)}.get(case, _m)
    kw = {"dtype": "float64"} if case == "f64" else {}

    def run(sess):
        x, _, tracked, step, grads = _build(opt(), x_dtype="float64" if case == "x64" else None,
                                            w_dtype="float64" if case == "w64" else None)
        fetched = []
        for _ in range(4):
            extra = [grads[1], tracked[2], tracked[3]] if case == "fetch" else []
            out = sess.run([step, *extra], {x: X})
            fetched += [xn.to_numpy(v).copy() for v in out[1:]]
        return [sess.run(v, to_numpy=True) for v in tracked] + fetched

    _close(*_both(run, **kw), tol=1e-10 if case == "f64" else 1e-5)


@pytest.mark.parametrize("second", ["sgd", "momentum", "nesterov", "adam"])
def test_momentum_with_another_step_in_one_run(second):
    other = {"sgd": lambda: xn.train.GradientDescentOptimizer(0.05),
             "momentum": lambda: _m(lr=0.02, m=0.5),
             "nesterov": lambda: _m(lr=0.02, m=0.5, use_nesterov=True),
             "adam": lambda: xn.train.AdamOptimizer(0.01)}[second]

    def run(sess):
        x = xn.placeholder(shape=(None, 5))
        w1, w2 = xn.Variable(W1), xn.Variable(W2)
        loss = xn.reduce_sum(xn.square(xn.tanh(x @ w1) @ w2))
        s1, s2 = _m().minimize(loss, [w1]), other().minimize(loss, [w2])
        for _ in range(4):
            sess.run([s1, s2], {x: X})
        return [sess.run(v, to_numpy=True) for v in [w1, w2, *s1.targets[1:], *s2.targets[1:]]]

    _close(*_both(run))


def test_failed_run_leaves_weights_and_velocity(tmp_path):
    def run(sess):
        x, gp, tracked, step, _ = _build(_m(), bad_second=True)
        sess.run(step, {x: X, gp: np.ones((4, 3), F32)})
        before = [sess.run(v, to_numpy=True) for v in tracked]
        with pytest.raises(xn.OpError):
            sess.run(step, {x: X, gp: np.ones((4, 4), F32)})
        after = [sess.run(v, to_numpy=True) for v in tracked]
        for b, a in zip(before, after):
            np.testing.assert_array_equal(a, b)
        return after

    _close(*_both(run))


def test_checkpoint_of_the_velocity(tmp_path):
    def run(sess, restore):
        x, _, tracked, step, _ = _build(_m())
        path = os.path.join(tmp_path, f"c{restore}.npz")
        for _ in range(3):
            sess.run(step, {x: X})
        if restore:
            sess.save(path)
            for _ in range(3):
                sess.run(step, {x: X})
            sess.restore(path)
        for _ in range(3):
            sess.run(step, {x: X})
        return [sess.run(v, to_numpy=True) for v in tracked]

    straight = _both(lambda s: run(s, False))
    restored = _both(lambda s: run(s, True))
    _close(*straight)
    _close(restored[0], straight[0], tol=0)


@needs_blas
def test_switching_on_nesterov_after_a_run():
    def run(sess):
        x, _, tracked, step, _ = _build(_m())
        sess.run(step, {x: X})
        step.optimizer.use_nesterov = True
        sess.run(step, {x: X})
        return [sess.run(v, to_numpy=True) for v in tracked]

    _close(*_both(run))


@needs_blas
def test_momentum_zero_with_nonfinite_velocity():
    """BLAS ignores c when beta = 0; 0 * inf must still give NaN, as on strict."""
    def run(sess):
        x, _, tracked, step, _ = _build(_m(m=0.0))
        sess.set_value(tracked[3], np.full((4, 3), np.inf, F32))
        sess.run(step, {x: X})
        return [sess.run(v, to_numpy=True) for v in tracked]

    with np.errstate(invalid="ignore"):
        fast, portable = _both(run)
    np.testing.assert_array_equal(np.isnan(fast[1]), np.isnan(portable[1]))


def test_nnclassifier_momentum_matches_strict():
    rng = np.random.default_rng(1)
    X_, y = rng.standard_normal((41, 5)).astype(F32), rng.integers(0, 3, 41)
    models = [xn.nn.NNClassifier([5, 7, 3], seed=0, device="cpu"),
              xn.nn.NNClassifier([5, 7, 3], seed=0, backend="array_api_strict",
                                 device="device1")]
    for m in models:
        m.fit(X_, y, epochs=3, batch_size=8, optimizer="momentum", learning_rate=0.05, verbose=0)
    for f, p in zip(models[0].layers, models[1].layers):
        np.testing.assert_allclose(f.W, xn.to_numpy(p.W), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f.b, xn.to_numpy(p.b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("blas_gemm", ["numpy-blas", "no-blas"])
@pytest.mark.parametrize("make", [_m, lambda: xn.train.GradientDescentOptimizer(0.05)],
                         ids=["momentum", "sgd"])
def test_learning_rate_changed_between_runs(make, blas_gemm, monkeypatch):
    if blas_gemm == "no-blas":
        monkeypatch.setattr(blas, "_gemm", {})

    def run(sess):
        x, _, tracked, step, _ = _build(make())
        sess.run(step, {x: X})
        step.optimizer.learning_rate = 0.3
        sess.run(step, {x: X})
        return [sess.run(v, to_numpy=True) for v in tracked]

    _close(*_both(run))
