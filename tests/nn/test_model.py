"""``xn.nn.Model`` and Keras's spellings on it and on NNClassifier (issue #28): compile with
any loss, fit/evaluate/predict, callbacks, validation, weights, summary, errors that teach."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import xpnn as xn


def _regression(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype("float32")
    return X, (X @ np.float32([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")


def _linear_model(dev, n_out=1, n_in=3, seed=0):
    with xn.Graph().as_default():
        return xn.nn.Model([xn.nn.Linear(n_in, n_out, seed=seed)], input_shape=(n_in,),
                           device=dev)


def _blobs():
    X, y = xn.data.make_blobs(n_per_class=30, seed=0)
    return X, y


# ------------------------------------------------------------------ any loss


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_a_regression_fits_on_each_loss(dev, loss):
    X, y = _regression()
    model = _linear_model(dev)
    model.compile(optimizer="sgd", loss=loss, metrics=["mae", "mse"])
    h = model.fit(X, y, epochs=30, batch_size=16, learning_rate=0.1, verbose=0)
    assert h.epoch == list(range(30)) and sorted(h.history) == ["loss", "mae", "mse"]
    assert h.history["mae"][-1] < h.history["mae"][0] / 5
    pred = model.predict(X, batch_size=7)  # batched: 14 runs, one array back
    assert pred.shape == (96, 1) and isinstance(pred, np.ndarray)
    loss_value, mae, mse = model.evaluate(X, y)
    np.testing.assert_allclose(mae, np.abs(pred - y).mean(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mse, ((pred - y) ** 2).mean(), rtol=1e-4, atol=1e-6)


def test_binary_crossentropy_from_logits_and_from_probabilities_agree(dev):
    X, y = _blobs()
    t = y.astype("float32")[:, None]
    with xn.Graph().as_default():
        linear = xn.nn.Linear(2, 1, seed=0)
        logits_model = xn.nn.Model([linear], input_shape=(2,), device=dev)
        probs_model = xn.nn.Model([linear, xn.nn.Sigmoid()], input_shape=(2,), device=dev)
    logits_model.compile(loss="binary_crossentropy", from_logits=True, metrics=["accuracy"])
    probs_model.compile(loss="binary_crossentropy", from_logits=False, metrics=["accuracy"])
    a, b = logits_model.evaluate(X, t), probs_model.evaluate(X, t)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    p = probs_model.predict(X)
    want = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    np.testing.assert_allclose(a[0], want, rtol=1e-4)
    assert a[1] == ((p > 0.5) == t).mean()  # binary accuracy, Keras's rule for this loss


def test_categorical_and_sparse_crossentropy_agree_and_train(dev):
    X, y = _blobs()
    a = _linear_model(dev, n_out=2, n_in=2)
    a.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    b = _linear_model(dev, n_out=2, n_in=2)
    b.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_allclose(a.evaluate(X, y), b.evaluate(X, np.eye(2)[y]), rtol=1e-5)
    h = a.fit(X, y, epochs=20, learning_rate=0.05, verbose=0)
    assert h.history["accuracy"][-1] > 0.95


def test_a_graph_model_with_a_loss_node_trains_without_labels(dev):
    """An autoencoder's loss built on the graph: fit(x) alone."""
    X, _ = _regression(64)
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (None, 3), name="x")
        code = xn.nn.Linear(3, 3, seed=1)(x)
        loss = xn.reduce_mean(xn.square(code - x))
        model = xn.nn.Model(inputs=x, outputs=code, device=dev)
    model.compile(optimizer="adam", loss=loss)
    h = model.fit(X, epochs=30, batch_size=16, learning_rate=0.05, verbose=0)
    assert h["loss"][-1] < h["loss"][0] / 4
    with pytest.raises(ValueError, match="takes no labels"):
        model.fit(X, X, epochs=1, verbose=0)


# ------------------------------------------------------------------ fit's options


def test_validation_split_holds_out_the_last_rows(dev):
    X, y = _regression(100)
    model = _linear_model(dev)
    model.compile(optimizer="sgd", loss="mse")
    h = model.fit(X, y, epochs=2, validation_split=0.2, verbose=0, shuffle=False)
    np.testing.assert_allclose(h["val_loss"][-1], model.evaluate(X[80:], y[80:]), rtol=1e-5)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, y, validation_split=1.5, verbose=0)


def test_sample_weight_zero_leaves_a_sample_out_and_class_weight_scales(dev):
    X, y = _blobs()
    w = (y == 0).astype("float32")
    a = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    b = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    a.fit(X, y, epochs=2, batch_size=8, shuffle=True, sample_weight=w, verbose=0)
    b.fit(X, y, epochs=2, batch_size=8, shuffle=True, class_weight={0: 1.0, 1: 0.0}, verbose=0)
    for la, lb in zip(a.layers, b.layers):  # one weighting, two spellings
        np.testing.assert_allclose(xn.to_numpy(la.W), xn.to_numpy(lb.W), rtol=1e-5)
    c = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    c.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert not np.allclose(xn.to_numpy(a.layers[0].W), xn.to_numpy(c.layers[0].W))
    with pytest.raises(ValueError, match="no weight for class 1"):
        c.fit(X, y, class_weight={0: 1.0}, verbose=0)


def test_initial_epoch_numbers_the_epochs(dev):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    h = model.fit(X, y, epochs=5, initial_epoch=3, verbose=0)
    assert h.epoch == [3, 4] and len(h.history["loss"]) == 2


# ------------------------------------------------------------------ callbacks


def _recorder():
    class Recorder(xn.callbacks.Callback):
        def __init__(self):
            self.calls = []

        def on_train_begin(self, logs=None):
            self.calls.append("train_begin")

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append((epoch, sorted(logs)))

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append("batch")

        def on_train_end(self, logs=None):
            self.calls.append("train_end")

    return Recorder()


def test_callbacks_get_keras_hooks(dev):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    rec = _recorder()
    model.fit(X, y, epochs=2, batch_size=30, callbacks=[rec], validation_data=(X, y), verbose=0)
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert rec.calls == ["train_begin", "batch", "batch", (0, keys), "batch", "batch",
                         (1, keys), "train_end"]
    with pytest.raises(TypeError, match="callbacks must be"):
        model.fit(X, y, callbacks=[print], verbose=0)


def test_early_stopping_restores_the_best_weights(dev):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    seen = []

    class Keep(xn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], model.get_weights()))

    stop = xn.nn.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # A huge rate makes the loss climb after the first epoch.
    h = model.fit(X, y, epochs=50, learning_rate=50.0, validation_data=(X, y), verbose=0,
                  callbacks=[Keep(), stop])
    assert len(h.epoch) < 50 and stop.stopped_epoch == h.epoch[-1]
    best = min(range(len(seen)), key=lambda i: seen[i][0])
    for got, want in zip(model.get_weights(), seen[best][1]):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint_saves_the_best_only(dev, tmp_path):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    path = tmp_path / "best.npz"
    check = xn.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    h = model.fit(X, y, epochs=4, learning_rate=0.1, callbacks=[check], verbose=0)
    assert check.best == min(h["loss"])
    loaded = xn.nn.NNClassifier.load(path, device=dev)
    if h["loss"][-1] == check.best:
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    weights = xn.callbacks.ModelCheckpoint(tmp_path / "w-{epoch:02d}.npz",
                                           save_weights_only=True)
    model.fit(X, y, epochs=2, callbacks=[weights], verbose=0)
    assert sorted(p.name for p in tmp_path.glob("w-*")) == ["w-01.npz", "w-02.npz"]


def test_reduce_lr_on_plateau_and_scheduler_set_the_rate(dev):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    plateau = xn.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                             min_delta=10.0)
    h = model.fit(X, y, epochs=3, learning_rate=0.4, callbacks=[plateau], verbose=0)
    # Keras logs each epoch's rate before the reduction its end makes.
    np.testing.assert_allclose(h["lr"], [0.4, 0.4, 0.2], rtol=1e-6)
    np.testing.assert_allclose(model.optimizer.learning_rate, 0.1, rtol=1e-6)
    sched = xn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    h = model.fit(X, y, epochs=2, callbacks=[sched], verbose=0)
    np.testing.assert_allclose(h["learning_rate"], [0.1, 0.05], rtol=1e-6)


def test_csv_logger_writes_a_row_per_epoch(dev, tmp_path):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    path = tmp_path / "log.csv"
    h = model.fit(X, y, epochs=3, callbacks=[xn.callbacks.CSVLogger(path)], verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and list(rows[0]) == [
        "epoch", "accuracy", "loss"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], h["loss"], rtol=1e-6)


def test_terminate_on_nan_is_a_callback_and_stops(dev):
    X, y = _blobs()
    X = X.copy()
    X[5] = np.nan
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    nan = xn.callbacks.TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match="not finite"):
        h = model.fit(X, y, epochs=3, callbacks=[nan], verbose=0)
    assert model.stop_training and h.stopped and h.epoch == []


# ------------------------------------------------------------------ summary, names, saving


KERAS_SUMMARY = """\
Model: "model"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 dense (Dense)               (None, 8)                 40

 re_lu (ReLU)                (None, 8)                 0

 dropout (Dropout)           (None, 8)                 0

 dense_1 (Dense)             (None, 3)                 27

=================================================================
Total params: 67 (268.00 Byte)
Trainable params: 67 (268.00 Byte)
Non-trainable params: 0 (0.00 Byte)
_________________________________________________________________"""


def test_summary_prints_as_keras(dev):
    """The text tf_keras prints for Dense(8), ReLU, Dropout, Dense(3) on 4 inputs."""
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Dense(8), xn.nn.ReLU(), xn.nn.Dropout(0.1), xn.nn.Dense(3)],
                            input_shape=(4,), device=dev)
    lines = []
    model.summary(print_fn=lines.append)
    # tf_keras pads each table line to 65 characters; the text here drops the trailing spaces.
    assert "\n".join(line.rstrip() for line in lines) == KERAS_SUMMARY
    assert all(len(line) == 65 for line in lines[1:-4])


def test_keras_names_exist():
    assert xn.callbacks.EarlyStopping is xn.nn.EarlyStopping
    for name in ["EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau", "CSVLogger",
                 "TerminateOnNaN", "LearningRateScheduler", "Callback"]:
        assert getattr(xn.callbacks, name) is getattr(xn.nn, name)


@pytest.mark.parametrize("name", ["rmsprop", "adagrad", "nesterov"])
def test_optimizer_names_train(dev, name):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    h = model.fit(X, y, epochs=3, optimizer=name, learning_rate=0.05, verbose=0)
    assert h["loss"][-1] < h["loss"][0]


def test_saving_under_another_suffix_says_what_is_written(dev, tmp_path):
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    with pytest.warns(UserWarning, match=r"writes .*model\.keras\.npz"):
        model.save(tmp_path / "model.keras")
    assert (tmp_path / "model.keras.npz").exists()
    loaded = xn.nn.NNClassifier.load(tmp_path / "model.keras", device=dev)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_model_save_and_load_round_trip(dev, tmp_path):
    X, y = _regression(16)
    model = _linear_model(dev)
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.Model.load(tmp_path / "m.npz", device=dev)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)
    with pytest.raises(RuntimeError, match="compile"):
        loaded.fit(X, y)


# ------------------------------------------------------------------ errors that teach


def test_one_hot_labels_to_a_sparse_loss_say_what_to_do(dev):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    with pytest.raises(ValueError, match=r"pass integer labels .*"
                                         r"loss='categorical_crossentropy'"):
        model.fit(X, np.eye(2)[y], verbose=0)
    m = _linear_model(dev, n_out=2, n_in=2)
    m.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"pass integer labels .*"
                                         r"loss='categorical_crossentropy'"):
        m.fit(X, np.eye(2)[y], verbose=0)


def test_one_output_unit_with_two_classes_says_what_to_do(dev):
    X, y = _blobs()
    model = xn.nn.NNClassifier([2, 4, 1], device=dev, seed=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"use 2 outputs .*loss='binary_crossentropy'"):
        model.fit(X, y, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    m = _linear_model(dev, n_out=1, n_in=2)
    m.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"use 2 outputs .*loss='binary_crossentropy'"):
        m.fit(X, y, verbose=0)


def test_the_readme_keras_section_runs(capsys):
    """The README's "For Keras users" block, run as printed."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## For Keras users", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["history"].epoch[0] == 0 and "val_accuracy" in scope["history"].history
    assert scope["accuracy"] > 0.8 and scope["logits"].shape == (5, 2)
    assert "Total params: 354" in capsys.readouterr().out
