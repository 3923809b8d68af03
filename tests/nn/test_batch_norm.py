"""The BatchNorm layer: the batch's moments while training, the moving ones in inference,
moving statistics updated by the training step, saved with the model."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import to_numpy

RNG = np.random.default_rng(0)


def test_training_normalises_by_the_batch_and_moves_the_statistics(dev):
    x0 = RNG.standard_normal((16, 3)).astype(np.float32) * 2.0 + 5.0
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3), name="x")
        training = xn.placeholder("bool", (), name="training")
        bn = xn.nn.BatchNorm(3, momentum=0.9)
        y = bn(x, training)
        (update,) = bn.updates()
        sess = xn.Session(device=dev)
        out = to_numpy(sess.run([y, update], {x: x0, training: True})[0])
        want = (x0 - x0.mean(0)) / np.sqrt(x0.var(0) + 1e-3)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
        moving_mean = to_numpy(sess.get_value(bn.moving_mean))
        np.testing.assert_allclose(moving_mean, 0.1 * x0.mean(0), rtol=1e-5)
        np.testing.assert_allclose(to_numpy(sess.get_value(bn.moving_variance)),
                                   0.9 + 0.1 * x0.var(0), rtol=1e-5)
        # inference: the moving statistics, and the update changes nothing
        inferred = to_numpy(sess.run([y, update], {x: x0, training: False})[0])
        np.testing.assert_allclose(
            inferred, (x0 - moving_mean) / np.sqrt(0.9 + 0.1 * x0.var(0) + 1e-3), rtol=1e-4)
        np.testing.assert_allclose(to_numpy(sess.get_value(bn.moving_mean)), moving_mean)


def test_batch_norm_gradients_by_finite_differences(dev):
    if dev.backend == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("jax: float64 needs JAX_ENABLE_X64=1")
    x0 = RNG.standard_normal((6, 2, 2, 3))
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 2, 2, 3), name="x")
        bn = xn.nn.BatchNorm(3, dtype="float64")
        loss = xn.reduce_sum(bn(x) * np.arange(72.0).reshape(6, 2, 2, 3))
        report = xn.gradcheck(loss, [x, bn.gamma, bn.beta], {x: x0}, device=dev)
    assert report.ok, report


def test_a_classifier_with_batch_norm_trains_and_saves_its_statistics(dev, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 8, 8, 1)).astype(np.float32) * 3.0 + 2.0
    y = (X[:, :4].mean(axis=(1, 2, 3)) > X[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)

    def layers(seed):
        return [xn.nn.Conv2D(1, 4, 3, padding="SAME", seed=seed), xn.nn.BatchNorm(4),
                xn.nn.ReLU(), xn.nn.MaxPool2D(2), xn.nn.Flatten(), xn.nn.Linear(64, 2, seed=1)]

    model = xn.nn.NNClassifier(layers(0), input_shape=(8, 8, 1), device=dev)
    history = model.fit(X, y, epochs=10, batch_size=16, optimizer="adam", learning_rate=0.02,
                        verbose=0)
    assert history["loss"][-1] < history["loss"][0] / 2
    bn = model.net[1]
    moving = to_numpy(model.session.get_value(bn.moving_mean))
    assert np.abs(moving).max() > 0.1  # moved from its zeros
    path = tmp_path / "bn.npz"
    model.save(path)
    other = xn.nn.NNClassifier(layers(7), input_shape=(8, 8, 1), device=dev)
    other.load_weights(path)
    np.testing.assert_allclose(to_numpy(other.session.get_value(other.net[1].moving_mean)),
                               moving)
    np.testing.assert_allclose(other.predict_proba(X), model.predict_proba(X), rtol=1e-5,
                               atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="momentum must lie in"):
        xn.nn.BatchNorm(3, momentum=1.0)
