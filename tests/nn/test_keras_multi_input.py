"""A graph ``Model`` of several inputs (issue #28), as Keras's functional API:
``Model(inputs=[a, b], outputs=y)``, ``x`` a list or a dict of arrays by input name."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 3)).astype("float32")
    B = rng.normal(size=(n, 2)).astype("float32")
    y = (A @ np.float32([[1.0], [-2.0], [0.5]]) + B @ np.float32([[3.0], [1.0]])).astype(
        "float32")
    return A, B, y


W0 = np.random.default_rng(1).normal(size=(5, 1)).astype("float32") * 0.1


def _two_inputs(dev):
    with xn.Graph().as_default():
        a = xn.placeholder("float32", (None, 3), name="a")
        b = xn.placeholder("float32", (None, 2), name="b")
        wa, wb = xn.Variable(W0[:3], name="wa"), xn.Variable(W0[3:], name="wb")
        out = xn.matmul(a, wa) + xn.matmul(b, wb)
        return xn.nn.Model(inputs=[a, b], outputs=out, device=dev)


def _one_input(dev):
    """The same model on the inputs side by side: the reference."""
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (None, 5), name="x")
        out = xn.matmul(x, xn.Variable(W0, name="w"))
        return xn.nn.Model(inputs=x, outputs=out, device=dev)


def test_two_inputs_train_as_the_same_model_on_one_input(dev):
    A, B, y = _data()
    two, one = _two_inputs(dev), _one_input(dev)
    for model in (two, one):
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    # shuffled batches and a validation split: every input takes the same rows
    h2 = two.fit([A, B], y, epochs=5, batch_size=8, validation_split=0.25, learning_rate=0.05,
                 verbose=0)
    h1 = one.fit(np.concatenate([A, B], 1), y, epochs=5, batch_size=8, validation_split=0.25,
                 learning_rate=0.05, verbose=0)
    np.testing.assert_allclose(np.concatenate(two.get_weights()), one.get_weights()[0],
                               rtol=1e-5, atol=1e-6)
    for key in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(h2.history[key], h1.history[key], rtol=1e-5)
    assert h2.history["loss"][-1] < h2.history["loss"][0] / 4
    by_list = two.predict([A, B], batch_size=10)
    np.testing.assert_allclose(two.predict({"b": B, "a": A}), by_list, rtol=1e-6)
    np.testing.assert_allclose(by_list, one.predict(np.concatenate([A, B], 1)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(two.evaluate([A, B], y, batch_size=16),
                               one.evaluate(np.concatenate([A, B], 1), y), rtol=1e-5)
    lines = []
    two.summary(print_fn=lines.append)
    assert any(line.startswith(" a (InputLayer)") for line in lines)
    assert any(line.startswith(" b (InputLayer)") for line in lines)


def test_the_errors_of_a_model_of_two_inputs_teach(dev):
    A, B, y = _data(16)
    model = _two_inputs(dev)
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"2 inputs \['a', 'b'\]: pass x as a list of 2"):
        model.fit(A, y, verbose=0)
    with pytest.raises(ValueError, match=r"each input by name, \['a', 'b'\], got \['a', 'c'\]"):
        model.fit({"a": A, "c": B}, y, verbose=0)
    with pytest.raises(ValueError, match=r"same number of samples, got \[16, 15\]"):
        model.fit([A, B[:15]], y, verbose=0)
    with pytest.raises(ValueError, match=r"x\['b'\] must have shape \(n_samples, 2\)"):
        model.fit([A, A], y, verbose=0)
    with pytest.raises(ValueError, match="Dataset feeds a model of one input"):
        model.fit(xn.data.Dataset(A, y), verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    with xn.Graph().as_default():
        a = xn.placeholder("float32", (None, 3), name="a")
        c = xn.placeholder("float32", (None, 3), name="c")
        out = xn.matmul(a, xn.Variable(np.ones((3, 1), "float32")))
        with pytest.raises(ValueError, match=r"do not depend on the inputs \['c'\]"):
            xn.nn.Model(inputs=[a, c], outputs=out)
