"""Sequence models through ``NNClassifier.fit`` (issue #26): per-step integer labels with
the masked sparse cross-entropy (a negative label marks a padded step), per-step predict,
predict_proba and score, sequence classification, fit's options, save and load, bad
labels."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn.host import to_numpy

V, T, E, H = 5, 6, 8, 16  # vocabulary, steps, embedding width, LSTM units


def _tokens(n, seed=0):
    return np.random.default_rng(seed).integers(0, V, (n, T))


def _previous_token(X):
    """Each step's label is the token before it; the first step has none: padding (-1)."""
    return np.concatenate([np.full((len(X), 1), -1), X[:, :-1]], axis=1)


def _tagger(dev, seed=0, recurrent=xn.nn.LSTM):
    with xn.Graph().as_default():
        layers = [xn.nn.Embedding(V, E, seed=seed),
                  recurrent(E, H, return_sequences=True, seed=seed + 1),
                  xn.nn.Linear(H, V, seed=seed + 2)]
        return xn.nn.NNClassifier(layers, input_shape=(T,), device=dev)


def _padded(X, y, seed=3):
    """y with each sequence cut at a random length >= 2 (the rest marked -1)."""
    lengths = np.random.default_rng(seed).integers(2, T + 1, len(X))
    return np.where(np.arange(T) < lengths[:, None], y, -1)


def _np_loss_and_accuracy(probs, y):
    real = y >= 0
    picked = np.take_along_axis(probs, np.where(real, y, 0)[..., None], axis=-1)[..., 0]
    return -np.log(picked[real]).mean(), (probs.argmax(-1) == y)[real].mean()


# ------------------------------------------------------------------------------ learning


def test_a_tagger_learns_the_previous_token(dev):
    X, Xv = _tokens(256), _tokens(64, seed=1)
    y, yv = _previous_token(X), _previous_token(Xv)
    model = _tagger(dev)
    assert model.label_shape == (T,) and model.labels.shape == (None, T)
    h = model.fit(X, y, epochs=8, batch_size=64, optimizer="adam", learning_rate=0.1,
                  validation_data=(Xv, yv), verbose=0)
    assert sorted(h) == ["accuracy", "loss", "val_accuracy", "val_loss"] and h.stopped is None
    assert h["loss"][-1] < h["loss"][0] / 10
    assert h["accuracy"][-1] > 0.97 and model.score(Xv, yv) > 0.97
    probs = model.predict_proba(Xv)
    assert probs.shape == (64, T, V)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    predicted = model.predict(Xv)
    assert predicted.shape == (64, T) and predicted.dtype == np.int64
    assert (predicted[:, 1:] == Xv[:, :-1]).mean() > 0.97


def test_sequence_classification_fits(dev):
    """One label per sequence (its largest token) from an LSTM's last state."""
    X, Xv = _tokens(256), _tokens(64, seed=1)
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([xn.nn.Embedding(V, E, seed=0), xn.nn.LSTM(E, H, seed=1),
                                    xn.nn.Linear(H, V, seed=2)], input_shape=(T,), device=dev)
    assert model.label_shape == ()
    h = model.fit(X, X.max(1), epochs=8, batch_size=64, optimizer="adam", learning_rate=0.1,
                  validation_data=(Xv, Xv.max(1)), verbose=0)
    assert h["accuracy"][-1] > 0.9 and h["val_accuracy"][-1] > 0.9
    assert model.predict(Xv).shape == (64,) and model.predict_proba(Xv).shape == (64, V)


# ------------------------------------------------------------------------------ padding


def test_padded_steps_change_neither_loss_nor_gradients(dev):
    X = _tokens(12)
    y = _padded(X, _previous_token(X))
    other = np.where(y >= 0, y, -100)  # PyTorch's ignore_index marks padding too
    model = _tagger(dev)
    s = model.session
    feed = {model.inputs: X, model.training: False}
    a = s.run([model.loss_node, *model.grad_nodes], {**feed, model.labels: y}, to_numpy=True)
    b = s.run([model.loss_node, *model.grad_nodes], {**feed, model.labels: other},
              to_numpy=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # The mean over the real steps only: against the same run's probabilities...
    loss, _ = _np_loss_and_accuracy(model.predict_proba(X), y)
    np.testing.assert_allclose(a[0], loss, **tolerance("float32"))
    # ...and the gradients of the sum over the real steps divided by their number.
    with model.graph.as_default():
        per_step = xn.losses.sparse_softmax_cross_entropy(np.where(y >= 0, y, 0), model.logits,
                                                          reduction="none")
        reference = xn.reduce_sum(per_step * (y >= 0).astype(np.float32)) / float((y >= 0).sum())
        expected = s.run(xn.gradients(reference, model.params), feed, to_numpy=True)
    for got, want in zip(a[1:], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_fit_and_evaluate_average_over_real_steps_not_rows(dev):
    """Batches with different numbers of real steps: the epoch's loss and accuracy weigh
    each batch by its real steps (a learning rate of 1e-30 leaves the weights as they are
    to float32's rounding, so the epoch's numbers equal evaluate's, at any batch size, and
    NumPy's from predict_proba)."""
    X = _tokens(21)
    y = _padded(X, _previous_token(X))
    y[:7, 3:] = -1  # the first batch far shorter than the others
    model = _tagger(dev)
    loss, accuracy = _np_loss_and_accuracy(model.predict_proba(X), y)
    np.testing.assert_allclose(model.evaluate(X, y, batch_size=7), (loss, accuracy),
                               **tolerance("float32"))
    assert model.score(X, y) == pytest.approx(accuracy)
    h = model.fit(X, y, epochs=1, batch_size=7, learning_rate=1e-30, shuffle=False, verbose=0)
    np.testing.assert_allclose([h["loss"][0], h["accuracy"][0]], [loss, accuracy],
                               **tolerance("float32"))
    assert model.loss(X, y) == pytest.approx(loss, rel=1e-5)  # the series' loop too
    assert len(model.backward()) == len(model.params)


# ------------------------------------------------------------------------------ fit's options


def test_fit_options_train_a_tagger(dev):
    X = _tokens(96)
    y = _previous_token(X)
    model = _tagger(dev, recurrent=xn.nn.GRU)
    first = model.evaluate(X, y)[0]
    h = model.fit(X, y, epochs=3, batch_size=32, optimizer=xn.train.MomentumOptimizer(0.1, 0.9),
                  lr_schedule=lambda epoch, lr: lr if epoch < 2 else lr / 2, shuffle=True,
                  seed=4, verbose=0)
    assert [round(r, 4) for r in h["learning_rate"]] == [0.1, 0.1, 0.05]
    assert model.evaluate(X, y)[0] < first
    # The same seed shuffles the same way: a twin trained alike ends with the same weights.
    twin = _tagger(dev, recurrent=xn.nn.GRU)
    twin.fit(X, y, epochs=3, batch_size=32, optimizer=xn.train.MomentumOptimizer(0.1, 0.9),
             lr_schedule=lambda epoch, lr: lr if epoch < 2 else lr / 2, shuffle=True, seed=4,
             verbose=0)
    for p, q in zip(model.params, twin.params):
        np.testing.assert_array_equal(to_numpy(model.session.get_value(p)),
                                      to_numpy(twin.session.get_value(q)))


def test_a_tagger_saves_loads_and_trains_on(dev, tmp_path):
    X = _tokens(64)
    y = _padded(X, _previous_token(X))
    model = _tagger(dev)
    model.fit(X, y, epochs=2, batch_size=32, optimizer="adam", learning_rate=0.05, verbose=0)
    model.save(tmp_path / "tagger.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "tagger.npz", device=dev)
    assert repr(loaded.net) == repr(model.net) and loaded.label_shape == (T,)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.score(X, y) == model.score(X, y)
    before = loaded.evaluate(X, y)[0]
    loaded.fit(X, y, epochs=2, batch_size=32, optimizer="adam", learning_rate=0.05, verbose=0)
    assert loaded.evaluate(X, y)[0] < before


# ------------------------------------------------------------------------------ bad labels


@pytest.mark.parametrize("labels, match", [
    (lambda X: X[:, 0], r"labels must have shape \(8, 6\) to match X and the model's output "
                        r"\(None, 6, 5\).*got \(8,\); for one label per sequence"),
    (lambda X: np.zeros((8, T + 1), int), r"labels must have shape \(8, 6\).*got \(8, 7\)"),
    (lambda X: np.full((8, T), V), r"label 5 is outside \[0, 5\).*negative label marks a "
                                   r"padded step"),
    (lambda X: np.full((8, T), -1), r"every label is negative \(padding\)"),
    (lambda X: np.full((8, T), 0.5), r"labels must be integers in \[0, 5\), got 0.5"),
])
def test_bad_per_step_labels_are_named_and_change_nothing(labels, match):
    X = _tokens(8)
    model = _tagger(None)
    before = [to_numpy(model.session.get_value(p)).copy() for p in model.params]
    for call in (lambda: model.fit(X, labels(X), epochs=1, verbose=0),
                 lambda: model.evaluate(X, labels(X)), lambda: model.loss(X, labels(X))):
        with pytest.raises(ValueError, match=match):
            call()
    for p, value in zip(model.params, before):
        np.testing.assert_array_equal(to_numpy(model.session.get_value(p)), value)


def test_per_step_labels_for_a_per_sequence_model_get_a_hint():
    X = _tokens(8)
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([xn.nn.Embedding(V, E), xn.nn.LSTM(E, H),
                                    xn.nn.Linear(H, V)], input_shape=(T,))
    with pytest.raises(ValueError, match=r"labels must have shape \(8,\) to match X, got "
                                         r"\(8, 6\): this model gives one class per sample; "
                                         r"for one per step, keep the time axis"):
        model.fit(X, _previous_token(X), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"label -1 is outside \[0, 5\): this model has 5 "
                                         r"classes$"):
        model.fit(X, np.full(8, -1), epochs=1, verbose=0)
