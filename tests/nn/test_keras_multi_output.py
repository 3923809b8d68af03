"""A graph ``Model`` of several outputs (issue #28), as Keras's functional API: a loss per
output, ``loss_weights``, per-output metrics, ``y`` a list or a dict by output name."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

RNG = np.random.default_rng(2)
WV = (RNG.normal(size=(3, 1)) * 0.1).astype("float32")
WK = (RNG.normal(size=(2, 2)) * 0.1).astype("float32")


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 3)).astype("float32")
    B = rng.normal(size=(n, 2)).astype("float32")
    value = (A @ np.float32([[1.0], [-2.0], [0.5]])).astype("float32")
    kind = (B[:, 0] > B[:, 1]).astype("int64")
    return A, B, value, kind


def _graph(dev, which=("value", "kind")):
    """The two heads on their own weights; ``which`` picks the outputs of the Model."""
    with xn.Graph().as_default():
        a = xn.placeholder("float32", (None, 3), name="a")
        b = xn.placeholder("float32", (None, 2), name="b")
        heads = {"value": (a, xn.identity(xn.matmul(a, xn.Variable(WV)), name="value")),
                 "kind": (b, xn.identity(xn.matmul(b, xn.Variable(WK)), name="kind"))}
        if len(which) == 1:
            p, out = heads[which[0]]
            return xn.nn.Model(inputs=p, outputs=out, device=dev)
        return xn.nn.Model(inputs=[a, b], outputs=[heads[w][1] for w in which], device=dev)


def test_two_outputs_train_as_their_heads_alone_with_the_loss_weights(dev):
    A, B, value, kind = _data()
    both = _graph(dev)
    both.compile(optimizer="sgd", loss={"value": "mse", "kind": "sparse_categorical_crossentropy"},
                 loss_weights={"value": 0.5, "kind": 2.0}, metrics={"kind": ["accuracy"]})
    h = both.fit([A, B], {"kind": kind, "value": value}, epochs=3, batch_size=16,
                 learning_rate=0.1, validation_split=0.25, verbose=0)
    # Each head has its own weights: the weighted sum trains each as its loss alone would
    # at the learning rate times its weight, on the same shuffled rows.
    alone = {}
    for name, loss, rate, y in (("value", "mse", 0.05, value),
                                ("kind", "sparse_categorical_crossentropy", 0.2, kind)):
        model = _graph(dev, (name,))
        model.compile(optimizer="sgd", loss=loss,
                      metrics=["accuracy"] if name == "kind" else None)
        alone[name] = model, model.fit(A if name == "value" else B, y, epochs=3, batch_size=16,
                                       learning_rate=rate, validation_split=0.25, verbose=0)
    (mv, hv), (mk, hk) = alone["value"], alone["kind"]
    for w, ref in zip(both.get_weights(), [*mv.get_weights(), *mk.get_weights()]):
        np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert sorted(h.history) == sorted(["loss", "value_loss", "kind_loss", "kind_accuracy",
                                        "val_loss", "val_value_loss", "val_kind_loss",
                                        "val_kind_accuracy"])
    for key, ref in (("value_loss", hv.history["loss"]), ("kind_loss", hk.history["loss"]),
                     ("kind_accuracy", hk.history["accuracy"]),
                     ("val_kind_loss", hk.history["val_loss"])):
        np.testing.assert_allclose(h.history[key], ref, rtol=1e-5)
    np.testing.assert_allclose(h.history["loss"], 0.5 * np.asarray(h.history["value_loss"])
                               + 2.0 * np.asarray(h.history["kind_loss"]), rtol=1e-5)
    pv, pk = both.predict([A, B], batch_size=10)
    np.testing.assert_allclose(pv, mv.predict(A), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pk, mk.predict(B), rtol=1e-5, atol=1e-6)
    loss, value_loss, kind_loss, acc = both.evaluate([A, B], [value, kind])
    np.testing.assert_allclose([value_loss, kind_loss, acc],
                               [mv.evaluate(A, value), *mk.evaluate(B, kind)], rtol=1e-5)


def test_the_errors_of_a_model_of_two_outputs_teach(dev):
    A, B, value, kind = _data(16)
    model = _graph(dev)
    with pytest.raises(ValueError, match=r"loss names outputs \['kinds'\]; the outputs are"):
        model.compile(loss={"value": "mse", "kinds": "mse"})
    with pytest.raises(ValueError, match="loss has 1 entries for 2 outputs"):
        model.compile(loss=["mse"])
    model.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"])
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"2 outputs \['value', 'kind'\]: pass y as a list"):
        model.fit([A, B], value, verbose=0)
    with pytest.raises(ValueError, match="class_weight is for a model of one output"):
        model.fit([A, B], [value, kind], class_weight={0: 1.0, 1: 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"label 2 is outside \[0, 2\)"):
        model.fit([A, B], [value, np.full(16, 2)], verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    one = _graph(dev, ("value",))
    with pytest.raises(ValueError, match="loss_weights weighs the losses of several outputs"):
        one.compile(loss="mse", loss_weights=[2.0])
