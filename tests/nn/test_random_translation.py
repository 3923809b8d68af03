"""xn.nn.RandomTranslation (Keras's preprocessing layer): shifts while the model trains, the
identity in inference, Keras's argument checks, its repr and config, and a round trip
through NNClassifier.save / load."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnn as xn
from tests.ops.test_translation import drawn_offsets, shifted
from xpnn import to_numpy
from xpnn.nn import saving

SHAPE = (8, 8, 1)


def _images(n=32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *SHAPE)).astype(np.float32)
    return X, (X[:, :4].mean(axis=(1, 2, 3)) > 0).astype(np.int64)


def _stack(shift, seed=0):
    with xn.Graph().as_default():
        net = [xn.nn.Conv2D(1, 2, 3, seed=seed), xn.nn.ReLU(), xn.nn.Flatten(),
               xn.nn.Linear(6 * 6 * 2, 2, seed=seed + 1)]
        return ([xn.nn.RandomTranslation(shift, shift, seed=5)] if shift else []) + net


def test_the_layer_shifts_by_the_seeded_draws_while_training(dev):
    X, _ = _images(n=6)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, *SHAPE), name="x")
        layer = xn.nn.RandomTranslation((-0.25, 0.25), 0.5, fill_value=-1.0)
        y = xn.nn.Sequential(layer)(x, training=True)
        got = to_numpy(xn.Session(device=dev, seed=8).run(y, {x: X}))
    offsets = drawn_offsets(np.random.Generator(np.random.PCG64(8)), 6, 8, 8,
                            (-0.25, 0.25), (-0.5, 0.5))
    assert offsets.any()
    np.testing.assert_array_equal(got, shifted(X, offsets, -1.0))


def test_the_identity_in_inference_and_a_model_trains_with_it(dev):
    X, y = _images()
    model = xn.nn.NNClassifier(_stack(0.25), input_shape=SHAPE, device=dev, seed=0)
    plain = xn.nn.NNClassifier(_stack(0), input_shape=SHAPE, device=dev, seed=0)
    plain.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict_proba(X), plain.predict_proba(X))
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    plain.fit(X, y, epochs=2, batch_size=16, verbose=0)  # the same batches, not shifted
    assert not np.array_equal(model.get_weights()[0], plain.get_weights()[0])


def test_repr_and_config():
    layer = xn.nn.RandomTranslation(0.1, (-0.2, 0.1), seed=3, fill_value=0.5)
    assert repr(layer) == "RandomTranslation(0.1, [-0.2, 0.1], seed=3, fill_value=0.5)"
    assert repr(xn.nn.RandomTranslation(0.1, 0.1)) == "RandomTranslation(0.1, 0.1)"
    assert layer.config() == {"height_factor": 0.1, "width_factor": [-0.2, 0.1],
                              "fill_mode": "constant", "interpolation": "nearest", "seed": 3,
                              "fill_value": 0.5}
    assert json.loads(json.dumps(layer.config())) == layer.config()
    assert repr(xn.nn.Sequential(_stack(0.1))).startswith("Sequential(RandomTranslation(")


def test_save_and_load_round_trip(tmp_path, dev):
    X, y = _images()
    model = xn.nn.NNClassifier(_stack(0.2), input_shape=SHAPE, device=dev, seed=0)
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "shifted.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "shifted.npz", device=dev)
    assert repr(loaded.net) == repr(model.net)
    assert loaded.net.layers[0].config() == model.net.layers[0].config()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("setting, message", [
    (2.0, r"height_factor=2\.0 must be a number in \[0, 1\]"),
    (-0.1, r"height_factor=-0\.1 must be a number in \[0, 1\]"),
    ([0.2, 0.1], r"height_factor=\[0\.2, 0\.1\] must be .* the lower first"),
    ("0.1", r"height_factor='0\.1' must be"),
])
def test_a_bad_factor_in_a_file_is_named(tmp_path, setting, message):
    X, _ = _images(n=4)
    model = xn.nn.NNClassifier(_stack(0.2), input_shape=SHAPE)
    model.save(tmp_path / "good.npz")
    arrays = dict(np.load(tmp_path / "good.npz"))
    layers = json.loads(str(arrays["__layers__"]))
    layers[0]["config"]["height_factor"] = setting
    arrays["__layers__"] = np.asarray(json.dumps(layers))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz: layer 0 \(RandomTranslation\): " + message):
        xn.nn.NNClassifier.load(tmp_path / "bad.npz")
    assert "RandomTranslation" in saving.LAYERS


@pytest.mark.parametrize("kwargs, error, message", [
    ({"fill_mode": "reflect"}, ValueError, r"fill_mode 'reflect' is not supported; xpnn "
                                           r"supports \('constant',\)"),
    ({"interpolation": "bilinear"}, ValueError, r"interpolation 'bilinear' is not supported"),
    ({"height_factor": 1.5}, ValueError, r"height_factor must lie in \[-1, 1\]"),
    ({"width_factor": (0.2, -0.2)}, ValueError, r"width_factor: the upper bound -0\.2 is below"),
    ({"seed": 1.5}, TypeError, r"seed must be an int or None, got 1\.5"),
    ({"fill_value": float("nan")}, ValueError, r"fill_value must be a finite number"),
])
def test_bad_arguments_are_refused(kwargs, error, message):
    settings = {"height_factor": 0.1, "width_factor": 0.1, **kwargs}
    with pytest.raises(error, match=message):
        xn.nn.RandomTranslation(**settings)


def test_an_input_that_is_not_a_batch_of_images_is_refused():
    with xn.Graph().as_default(), pytest.raises(ValueError, match=r"shape \(None, 64\).*NHWC"):
        xn.nn.RandomTranslation(0.1, 0.1)(xn.placeholder(shape=(None, 64), name="x"))
