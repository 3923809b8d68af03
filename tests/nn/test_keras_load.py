"""``Model.load`` gives the model compiled as it was saved (issue #28), as Keras's
``load_model``: loss, metrics, the optimizer's settings and its slots."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnn as xn


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype("float32")
    return X, (X[:, 0] - X[:, 2] > 0).astype("int64")


def _model(dev):
    with xn.Graph().as_default():
        return xn.nn.Model([xn.nn.Linear(4, 8, seed=0), xn.nn.ReLU(), xn.nn.Linear(8, 2, seed=1)],
                           input_shape=(4,), device=dev)


@pytest.mark.parametrize("optimizer", ["adam", "nesterov", "rmsprop", "adagrad", "sgd"])
def test_load_gives_a_compiled_model_whose_training_goes_on_as_before(dev, tmp_path, optimizer):
    X, y = _data()
    model = _model(dev)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.Model.load(tmp_path / "m.npz", device=dev)
    assert type(loaded.optimizer) is type(model.optimizer)
    np.testing.assert_allclose(loaded.evaluate(X, y), model.evaluate(X, y), rtol=1e-6)
    # The same next epoch on both: the slots (momentum, Adam's moments) came back too.
    for m in (model, loaded):
        m.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_load_keeps_the_optimizer_settings(tmp_path):
    X, y = _data()
    model = _model(None)
    model.compile(optimizer=xn.train.MomentumOptimizer(0.05, 0.8, clipnorm=1.0, accumulate=2),
                  loss="categorical_crossentropy", metrics=["accuracy", "mae"])
    model.save(tmp_path / "m.npz")  # compiled, never fit: no slots yet
    loaded = xn.nn.Model.load(tmp_path / "m.npz")
    opt = loaded.optimizer
    assert (type(opt).__name__, opt.learning_rate, opt.momentum, opt.clipnorm,
            opt.accumulate) == ("MomentumOptimizer", 0.05, 0.8, 1.0, 2)
    assert sorted(loaded.evaluate(X, np.eye(2)[y], return_dict=True)) == [
        "accuracy", "loss", "mae"]


def test_a_model_saved_with_a_loss_function_loads_uncompiled(tmp_path):
    model = _model(None)
    model.compile(optimizer="sgd", loss=lambda t, p: xn.square(p - t))
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.Model.load(tmp_path / "m.npz")
    with pytest.raises(RuntimeError, match="compile"):
        loaded.evaluate(*_data())


def test_a_corrupt_compile_record_raises_naming_the_file(tmp_path):
    model = _model(None)
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    saved = json.loads(str(arrays["__compile__"]))
    saved["optimizer"]["class"] = "os.system"
    arrays["__compile__"] = np.asarray(json.dumps(saved))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz: __compile__ is not a compile record"):
        xn.nn.Model.load(tmp_path / "bad.npz")
