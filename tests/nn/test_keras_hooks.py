"""Keras's callback logs in ``xn.nn.Model`` (issue #28): the batch hooks get the running
means, evaluate and predict run their own hooks, and fit/evaluate/predict take an
``xn.data.Dataset`` where Keras takes a ``tf.data.Dataset``."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype("float32")
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype("int64")


def _model(dev):
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Linear(3, 2, seed=0)], input_shape=(3,), device=dev)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Recorder(xn.callbacks.Callback):
    def __init__(self):
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_") and name != "on_nan":
            return lambda *args: self.calls.append((name, *args))
        return super().__getattribute__(name)


class BatchLogs(xn.callbacks.Callback):
    def __init__(self):
        self.begin, self.end = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begin.append((batch, logs))

    def on_train_batch_end(self, batch, logs=None):
        self.end.append((batch, dict(logs)))


def test_train_batch_end_gets_the_running_means_as_keras(dev):
    X, y = _data()
    model = _model(dev)
    first = model.evaluate(X[:16], y[:16], return_dict=True)  # batch 0, before its step
    seen = BatchLogs()
    h = model.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[seen])
    assert [b for b, _ in seen.end] == [0, 1, 2, 0, 1, 2]
    assert all(logs == {} for _, logs in seen.begin)  # Keras: begin hooks get {}
    assert all(sorted(logs) == ["accuracy", "loss"] for _, logs in seen.end)
    np.testing.assert_allclose(seen.end[0][1]["loss"], first["loss"], rtol=1e-5)
    np.testing.assert_allclose(seen.end[0][1]["accuracy"], first["accuracy"])
    for epoch, last in ((0, seen.end[2][1]), (1, seen.end[5][1])):  # the last: the epoch's
        np.testing.assert_allclose(last["loss"], h.history["loss"][epoch], rtol=1e-5)
        np.testing.assert_allclose(last["accuracy"], h.history["accuracy"][epoch], rtol=1e-6)


def test_evaluate_and_predict_run_their_hooks_with_keras_logs(dev):
    X, y = _data()
    model = _model(dev)
    rec = Recorder()
    result = model.evaluate(X, y, batch_size=16, callbacks=[rec], return_dict=True)
    names = [c[0] for c in rec.calls]
    assert names == ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 3 + [
        "on_test_end"]
    assert rec.calls[-1][1] == result and rec.calls[-2][2] == pytest.approx(result)
    rec.calls.clear()
    out = model.predict(X, batch_size=16, callbacks=[rec])
    names = [c[0] for c in rec.calls]
    assert names == ["on_predict_begin"] + ["on_predict_batch_begin",
                                            "on_predict_batch_end"] * 3 + ["on_predict_end"]
    np.testing.assert_array_equal(np.concatenate([c[2]["outputs"] for c in rec.calls
                                                  if c[0] == "on_predict_batch_end"]), out)


def test_fit_validation_runs_the_test_hooks(dev):
    X, y = _data()
    rec = Recorder()
    _model(dev).fit(X, y, epochs=1, validation_data=(X, y), verbose=0, callbacks=[rec])
    names = [c[0] for c in rec.calls]
    assert names.index("on_test_begin") < names.index("on_test_end") < names.index(
        "on_epoch_end")


def test_validation_data_evaluate_and_predict_take_a_dataset(dev):
    X, y = _data()
    Xv, yv = _data(24, seed=1)
    a, b = _model(dev), _model(dev)
    ha = a.fit(X, y, epochs=2, shuffle=False, verbose=0, validation_data=(Xv, yv))
    hb = b.fit(X, y, epochs=2, shuffle=False, verbose=0,
               validation_data=xn.data.Dataset(Xv, yv, batch_size=5))
    np.testing.assert_allclose(hb.history["val_loss"], ha.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(hb.history["val_accuracy"], ha.history["val_accuracy"])
    ds = xn.data.Dataset(Xv, yv, batch_size=7, prefetch=1)
    np.testing.assert_allclose(b.evaluate(ds), b.evaluate(Xv, yv), rtol=1e-5)
    np.testing.assert_allclose(b.predict(ds), b.predict(Xv), rtol=1e-6)
    np.testing.assert_allclose(b.predict(xn.data.Dataset(Xv, batch_size=7)), b.predict(Xv),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="not taken with a Dataset"):
        b.evaluate(ds, yv)
    with pytest.raises(ValueError, match="without labels"):
        b.evaluate(xn.data.Dataset(Xv, batch_size=7))
