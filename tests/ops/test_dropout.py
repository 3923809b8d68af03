"""Dropout: TF1's scaling, masks from the Session's seeded generator (the same on every
backend), a new mask every run, one graph for training and inference, the gradient through
the same mask."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import to_numpy


def reference_mask(seed, shape, rate, dtype=np.float32):
    """What the Session's first draw gives: PCG64(seed) uniforms >= rate, scaled."""
    u = np.random.Generator(np.random.PCG64(seed)).random(shape, dtype=np.float64)
    keep = (u.astype(dtype) >= rate).astype(dtype)
    return keep / dtype(1.0 - rate) if dtype is np.float32 else keep / (1.0 - rate)


def test_the_mask_is_the_seeded_draw_on_every_backend(dev):
    x0 = np.arange(1.0, 13.0, dtype=np.float32).reshape(3, 4)
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        y = xn.dropout(x, rate=0.25)
        got = to_numpy(xn.Session(device=dev, seed=7).run(y, {x: x0}))
    np.testing.assert_allclose(got, x0 * reference_mask(7, (3, 4), 0.25), rtol=1e-6)


def test_rate_and_scaling_follow_tf1(dev):
    with xn.Graph().as_default():
        y = xn.dropout(xn.constant(np.ones((200, 100), np.float32)), rate=0.3)
        out = to_numpy(xn.Session(device=dev, seed=0).run(y))
    assert set(np.unique(out).tolist()) == {0.0, float(np.float32(1.0) / np.float32(0.7))}
    assert abs((out == 0).mean() - 0.3) < 0.01  # 20,000 draws: 4 standard deviations
    assert abs(out.mean() - 1.0) < 0.02  # kept values make up for the dropped ones


def test_a_new_mask_every_run_and_the_same_masks_for_the_same_seed(dev):
    with xn.Graph().as_default():
        y = xn.dropout(xn.constant(np.ones(64, np.float32)), rate=0.5)
        a, b = xn.Session(device=dev, seed=1), xn.Session(device=dev, seed=1)
        first = [to_numpy(a.run(y)) for _ in range(3)]
        again = [to_numpy(b.run(y)) for _ in range(3)]
    assert not np.array_equal(first[0], first[1])
    for u, v in zip(first, again):
        np.testing.assert_array_equal(u, v)


def test_one_graph_for_training_and_inference(dev):
    x0 = np.arange(1.0, 9.0, dtype=np.float32)
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        training = xn.placeholder("bool", (), name="training")
        y = xn.dropout(x, rate=0.5, training=training)
        sess = xn.Session(device=dev, seed=2)
        np.testing.assert_array_equal(to_numpy(sess.run(y, {x: x0, training: False})), x0)
        trained = to_numpy(sess.run(y, {x: x0, training: True}))
        assert (trained == 0).any() and set(trained[trained != 0] / x0[trained != 0]) == {2.0}
        assert xn.dropout(x, rate=0.5, training=False) is x


def test_the_gradient_goes_through_the_same_mask(dev):
    x0 = np.linspace(1.0, 2.0, 12).reshape(3, 4)
    c = np.arange(12.0).reshape(3, 4)
    with xn.Graph().as_default():
        x = xn.Variable(x0, dtype="float64", name="x")
        y = xn.dropout(x, rate=0.4)
        (g,) = xn.gradients(xn.reduce_sum(y * c), [x])
        if dev.backend == "jax":
            import jax

            if not jax.config.jax_enable_x64:
                pytest.skip("jax: float64 needs JAX_ENABLE_X64=1")
        out, grad = xn.Session(device=dev, seed=5).run([y, g], to_numpy=True)
    mask = out / x0  # the mask this run drew, 0 or 1 / 0.6
    assert set(np.round(np.unique(mask), 12).tolist()) <= {0.0, round(1 / 0.6, 12)}
    np.testing.assert_allclose(grad, mask * c, rtol=1e-12)


def test_a_model_trains_with_dropout(dev):
    X, y = xn.data.make_moons(64, noise=0.1, seed=0)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 2), name="x")
        t = xn.placeholder("int64", (None,), name="t")
        training = xn.placeholder("bool", (), name="training")
        mlp = xn.nn.MLP([2, 32, 2], seed=0)
        hidden = xn.dropout(xn.relu(mlp[0](x)), rate=0.2, training=training)
        loss = xn.losses.sparse_softmax_cross_entropy(t, mlp[2](hidden))
        step = xn.train.AdamOptimizer(0.05).minimize(loss)
        sess = xn.Session(device=dev, seed=0)
        first = float(to_numpy(sess.run(loss, {x: X, t: y, training: False})))
        for _ in range(60):
            sess.run(step, {x: X, t: y, training: True})
        last = float(to_numpy(sess.run(loss, {x: X, t: y, training: False})))
    assert last < first / 2


def test_bad_arguments_are_named():
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        for rate in (1.0, -0.1, 1.5):
            with pytest.raises(ValueError, match=r"dropout: rate must lie in \[0, 1\)"):
                xn.dropout(x, rate)
        with pytest.raises(TypeError, match="training must be a bool or a bool placeholder"):
            xn.dropout(x, 0.5, training="yes")
        flags = xn.placeholder("bool", name="flags")
        y = xn.dropout(x, 0.5, training=flags)
        with pytest.raises(xn.OpError, match="training must be a scalar boolean, got shape"):
            xn.Session().run(y, {x: [1.0, 2.0], flags: [True, False]})
