"""Keras's Dense(units, activation): the input size read from the first input, the
activation fused, saved and loaded with the model, and errors that say what to write."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


def _data(n=64, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    return X, (X[:, 0] - X[:, 1] > 0).astype("int64")


def test_dense_builds_from_its_input_and_fuses_the_activation(dev):
    X, _ = _data()
    with xn.Graph().as_default():
        layers = [xn.nn.Dense(7, activation="tanh", seed=0), xn.nn.Dense(3, use_bias=False)]
        assert layers[0].weight is None and layers[0].parameters() == []
        model = xn.nn.Model(layers, input_shape=(5,), device=dev)
    assert layers[0].weight.shape == (5, 7) and layers[1].weight.shape == (7, 3)
    assert layers[1].bias is None and len(model.params) == 3
    W, b, V = (np.asarray(w, np.float64) for w in model.get_weights())
    expected = np.tanh(X.astype(np.float64) @ W + b) @ V
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-4, atol=1e-5)


def test_dense_softmax_output_is_read_as_probabilities(dev):
    X, y = _data()
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Dense(16, activation="relu", seed=0),
                             xn.nn.Dense(2, activation="softmax", seed=1)],
                            input_shape=(5,), device=dev)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    probabilities = model.predict(X)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    first, _ = model.evaluate(X, y)
    expected = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    np.testing.assert_allclose(first, expected, rtol=1e-4)
    model.fit(X, y, epochs=30, batch_size=16, learning_rate=0.01, verbose=0)
    loss, accuracy = model.evaluate(X, y)
    assert loss < first and accuracy > 0.9


def test_dense_model_saves_and_loads(dev, tmp_path):
    X, _ = _data()
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Dense(6, activation="sigmoid", seed=2), xn.nn.Dense(2)],
                            input_shape=(5,), device=dev)
    path = tmp_path / "dense.npz"
    model.save(path)
    twin = xn.nn.Model.load(path, device=dev)
    assert [type(layer).__name__ for layer in twin.net.layers] == ["Dense", "Dense"]
    assert twin.net.layers[0].activation == "sigmoid"
    np.testing.assert_allclose(twin.predict(X), model.predict(X), rtol=1e-6)


def test_dense_input_dim_builds_at_once_and_names_as_keras():
    with xn.Graph().as_default():
        first, second = xn.nn.Dense(4, input_dim=3), xn.nn.Dense(2, input_dim=4)
    assert first.weight.shape == (3, 4) and (first.name, second.name) == ("dense", "dense_1")
    assert repr(xn.nn.Dense(4, activation="relu")) == "Dense(4, activation='relu')"


def test_dense_errors_say_what_to_write():
    with pytest.raises(TypeError, match=r"write Dense\(32\).*Linear\(8, 32\)"):
        xn.nn.Dense(8, 32)
    with pytest.raises(ValueError, match="activation must be .*'relu'"):
        xn.nn.Dense(8, activation="swishy")
    with pytest.raises(ValueError, match="units must be a positive int"):
        xn.nn.Dense(0)
    with xn.Graph().as_default():
        x = xn.placeholder("float32", None, name="x")
        with pytest.raises(ValueError, match=r"cannot tell its input size.*input_dim"):
            xn.nn.Dense(3)(x)
        with pytest.raises(ValueError, match="not built yet"):
            xn.nn.Dense(3).config()
        layer = xn.nn.Dense(3, input_dim=4)
        with pytest.raises(ValueError, match="takes inputs with 4 features"):
            layer(xn.placeholder("float32", (None, 5)))
