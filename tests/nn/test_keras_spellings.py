"""Each Keras spelling of issue #28 on every backend (``--xp numpy,array_api_strict,
cupy_standin,torch,jax``): the same small model, one spelling per test, each checked
against a reference computed in the same run."""

from __future__ import annotations

import csv
import os
import warnings

import numpy as np
import pytest

import xpnn as xn

SPELLINGS = {}


def spelling(fn):
    SPELLINGS[fn.__name__] = fn
    return fn


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype("float32")
    return X, (X[:, 0] - X[:, 1] > 0).astype("int64")


def _model(dev, optimizer="sgd", metrics=("accuracy",), n_out=2, loss=None):
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Linear(4, 8, seed=0), xn.nn.ReLU(),
                             xn.nn.Linear(8, n_out, seed=1)], input_shape=(4,), device=dev)
    model.compile(optimizer=optimizer, metrics=list(metrics),
                  loss=loss or "sparse_categorical_crossentropy")
    return model


def _same_weights(a, b, **tol):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, **(tol or dict(rtol=1e-5, atol=1e-6)))


@spelling
def summary(dev, tmp_path):
    lines = []
    model = _model(dev)
    model.summary(print_fn=lines.append)
    total = sum(w.size for w in model.get_weights())
    assert f"Total params: {total:,} " in "\n".join(lines) and total == 4 * 8 + 8 + 8 * 2 + 2


@spelling
def validation_split(dev, tmp_path):
    X, y = _data()
    model = _model(dev)
    h = model.fit(X, y, epochs=2, validation_split=0.25, shuffle=False, verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][-1], model.evaluate(X[48:], y[48:])[0],
                               rtol=1e-5)


@spelling
def validation_data(dev, tmp_path):
    X, y = _data()
    Xv, yv = _data(20, seed=1)
    model = _model(dev)
    h = model.fit(X, y, epochs=2, validation_data=(Xv, yv), verbose=0)
    assert sorted(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    np.testing.assert_allclose([h.history["val_loss"][-1], h.history["val_accuracy"][-1]],
                               model.evaluate(Xv, yv), rtol=1e-5)


@spelling
def shuffle(dev, tmp_path):
    X, y = _data()
    a, b, c = _model(dev), _model(dev), _model(dev)
    for model, shuffled in ((a, False), (b, False), (c, True)):
        model.fit(X, y, epochs=1, batch_size=8, shuffle=shuffled, learning_rate=0.5,
                  verbose=0)
    _same_weights(a, b)
    assert not np.allclose(a.get_weights()[0], c.get_weights()[0])


@spelling
def early_stopping(dev, tmp_path):
    X, y = _data()
    stop = xn.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
    h = _model(dev).fit(X, y, epochs=10, verbose=0, callbacks=[stop])
    assert h.epoch == [0, 1] and stop.stopped_epoch == 1


@spelling
def model_checkpoint(dev, tmp_path):
    X, y = _data()
    model = _model(dev)
    path = os.fspath(tmp_path / "m-{epoch:02d}.npz")
    model.fit(X, y, epochs=2, verbose=0, callbacks=[xn.callbacks.ModelCheckpoint(path)])
    loaded = xn.nn.Model.load(tmp_path / "m-02.npz", device=dev)
    assert (tmp_path / "m-01.npz").exists()
    _same_weights(loaded, model, rtol=0, atol=0)
    np.testing.assert_allclose(loaded.evaluate(X, y), model.evaluate(X, y), rtol=1e-6)


@spelling
def reduce_lr_on_plateau(dev, tmp_path):
    X, y = _data()
    model = _model(dev)
    cb = xn.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    h = model.fit(X, y, epochs=3, learning_rate=0.1, verbose=0, callbacks=[cb])
    # Keras logs each epoch's rate before the callback lowers it at that epoch's end.
    np.testing.assert_allclose(h.history["lr"], [0.1, 0.1, 0.05])
    assert model.optimizer.learning_rate == pytest.approx(0.025)


@spelling
def csv_logger(dev, tmp_path):
    X, y = _data()
    h = _model(dev).fit(X, y, epochs=2, verbose=0,
                        callbacks=[xn.callbacks.CSVLogger(tmp_path / "log.csv")])
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], h.history["loss"])


@spelling
def terminate_on_nan(dev, tmp_path):
    X, y = _data()
    X[40] = np.nan
    model = _model(dev)
    before = model.get_weights()
    with pytest.warns(RuntimeWarning, match="not finite"):
        h = model.fit(X, y, epochs=3, batch_size=64, shuffle=False, verbose=0,
                      callbacks=[xn.callbacks.TerminateOnNaN()])
    assert h.epoch == [] and "epoch 1, batch 1" in h.stopped
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@spelling
def learning_rate_scheduler(dev, tmp_path):
    X, y = _data()
    cb = xn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    h = _model(dev).fit(X, y, epochs=3, verbose=0, callbacks=[cb])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.05, 0.1 / 3])


@spelling
def tensorboard(dev, tmp_path):
    pytest.importorskip("tensorboardX", reason="TensorBoard needs tensorboardX "
                        "(pip install -e '.[summary]')")
    X, y = _data()
    _model(dev).fit(X, y, epochs=1, validation_data=(X, y), verbose=0,
                    callbacks=[xn.callbacks.TensorBoard(tmp_path, histogram_freq=1)])
    for part in ("train", "validation"):
        assert any(n.startswith("events") for n in os.listdir(tmp_path / part))


@spelling
def class_weight_and_sample_weight(dev, tmp_path):
    X, y = _data()
    a, b = _model(dev), _model(dev)
    a.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0, class_weight={0: 3.0, 1: 1.0})
    b.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0,
          sample_weight=np.where(y == 0, 3.0, 1.0))
    _same_weights(a, b)
    plain = _model(dev)
    plain.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert not np.allclose(plain.get_weights()[0], a.get_weights()[0])
    np.testing.assert_allclose(a.evaluate(X, y, sample_weight=np.full(64, 2.0))[0],
                               2 * a.evaluate(X, y)[0], rtol=1e-5)


@spelling
def initial_epoch_and_history_epoch(dev, tmp_path):
    X, y = _data()
    h = _model(dev).fit(X, y, epochs=4, initial_epoch=2, verbose=0)
    assert h.epoch == [2, 3] and len(h.history["loss"]) == 2


@spelling
def optimizer_names_and_objects(dev, tmp_path):
    X, y = _data()
    for optimizer in ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
                      xn.train.AdamOptimizer(0.01), xn.train.get("SGD", 0.1, momentum=0.9)]:
        model = _model(dev, optimizer=optimizer)
        h = model.fit(X, y, epochs=3, batch_size=16, verbose=0)
        assert h.history["loss"][-1] < h.history["loss"][0], optimizer


@spelling
def clipnorm_clipvalue_global_clipnorm(dev, tmp_path):
    X, y = _data()
    for clip in ({"clipvalue": 1e-3}, {"clipnorm": 1e-3}, {"global_clipnorm": 1e-3}):
        model = _model(dev, optimizer=xn.train.get("sgd", 1.0, **clip))
        before = model.get_weights()
        model.fit(X, y, epochs=1, batch_size=64, verbose=0)  # one step
        steps = [w.astype("float64") - b for w, b in zip(model.get_weights(), before)]
        slack = 1e-6  # float32 weights near 1: the step read back carries their rounding
        if "clipvalue" in clip:
            assert max(np.abs(s).max() for s in steps) <= 1e-3 + slack
        elif "clipnorm" in clip:
            assert max(np.linalg.norm(s) for s in steps) <= 1e-3 + slack
        else:
            assert np.sqrt(sum((s ** 2).sum() for s in steps)) <= 1e-3 + slack
        assert max(np.abs(s).max() for s in steps) > 1e-4  # it did step


@spelling
def accumulate(dev, tmp_path):
    X, y = _data()
    a = _model(dev, optimizer=xn.train.get("sgd", 0.5, accumulate=2))
    b = _model(dev, optimizer=xn.train.get("sgd", 0.5))
    a.fit(X, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    b.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    _same_weights(a, b)


@spelling
def dense_and_predict_proba(dev, tmp_path):
    X, y = _data()
    # Dense(units) as Keras's (main's xpnn/nn/dense.py), or the older alias of Linear
    layers = ([xn.nn.Dense(4, 8), xn.nn.ReLU(), xn.nn.Dense(8, 2)] if xn.nn.Dense is xn.nn.Linear
              else [xn.nn.Dense(8, activation="relu"), xn.nn.Dense(2)])
    with xn.Graph().as_default():
        dense = xn.nn.Model(layers, input_shape=(4,), device=dev)
    dense.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    h = dense.fit(X, y, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    model = xn.nn.NNClassifier([4, 8, 2], device=dev, seed=0)
    model.fit(X, y, epochs=2, verbose=0)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), model.predict(X))


@spelling
def errors_that_teach(dev, tmp_path):
    X, y = _data()
    model = _model(dev)
    with pytest.raises(ValueError, match="look one-hot"):
        model.fit(X, np.eye(2)[y], verbose=0)
    one = _model(dev, n_out=1, metrics=())
    with pytest.raises(ValueError, match="1 output unit"):
        one.fit(X, y, verbose=0)
    with pytest.warns(UserWarning, match=r"writes .*m\.keras\.npz"):
        model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same_weights(xn.nn.Model.load(tmp_path / "m.keras", device=dev), model)


@spelling
def datasets_in_fit_evaluate_predict(dev, tmp_path):
    X, y = _data()
    Xv, yv = _data(20, seed=1)
    model = _model(dev)
    h = model.fit(xn.data.Dataset(X, y, batch_size=16, shuffle=True, seed=0), epochs=2,
                  validation_data=xn.data.Dataset(Xv, yv, batch_size=8), verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][-1], model.evaluate(Xv, yv)[0], rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(xn.data.Dataset(Xv, yv, batch_size=8)),
                               model.evaluate(Xv, yv), rtol=1e-5)
    np.testing.assert_allclose(model.predict(xn.data.Dataset(Xv, batch_size=8)),
                               model.predict(Xv), rtol=1e-6)


@spelling
def batch_logs(dev, tmp_path):
    X, y = _data()
    seen = []

    class Logs(xn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs)

    h = _model(dev).fit(X, y, epochs=1, batch_size=16, verbose=0, callbacks=[Logs()])
    assert len(seen) == 4 and sorted(seen[-1]) == ["accuracy", "loss"]
    np.testing.assert_allclose(seen[-1]["loss"], h.history["loss"][0], rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_each_keras_spelling_on_every_backend(dev, tmp_path, name):
    SPELLINGS[name](dev, tmp_path)
