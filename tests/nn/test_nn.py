"""Tests for xpnn.nn: layers on graph nodes, MLP, NNClassifier (the lesson's loop and the
scikit-learn way), SGD. Every expectation is computed with NumPy in float64 from the
model's own weights (read back with to_numpy) or by finite differences."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close
from xpnn import devices, dtypes
from xpnn.host import to_numpy

X_SMALL = np.array(
    [[0.5, -1.0, 2.0], [-1.5, 0.25, 0.0], [3.0, 1.0, -2.0], [0.1, -0.2, 0.3]], dtype=np.float32
)


def _moons(n=64):
    return xn.data.make_moons(n, noise=0.1, seed=0)


def _relu(z):
    return np.maximum(z, 0.0)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


NP_ACTIVATIONS = {"relu": _relu, "tanh": np.tanh, "sigmoid": _sigmoid}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _weights(model):
    """[(W, b)] of the model's Linear layers, on the host in float64."""
    return [
        (to_numpy(layer.W).astype(np.float64), to_numpy(layer.b).astype(np.float64))
        for layer in model.layers
    ]


def _np_forward(weights, X, activation="relu"):
    """Pre-activations z and activations a of every layer (a[0] = X); z[-1] are the logits."""
    act = NP_ACTIVATIONS[activation]
    a, zs = [np.asarray(X, np.float64)], []
    for i, (W, b) in enumerate(weights):
        z = a[-1] @ W + b
        zs.append(z)
        if i < len(weights) - 1:
            a.append(act(z))
    return zs, a


def _np_loss(weights, X, t, activation="relu"):
    """Mean cross-entropy through log-sum-exp."""
    z = _np_forward(weights, X, activation)[0][-1]
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(lse - z[np.arange(len(t)), t]))


def _np_grads(weights, X, t):
    """The lesson's closed form for a ReLU net: dL/dz = (softmax - onehot) / n,
    dW = a^T dz, db = sum(dz), dz_prev = (dz W^T) * (z_prev > 0)."""
    zs, acts = _np_forward(weights, X)
    n, k = zs[-1].shape
    dz = (_softmax(zs[-1]) - np.eye(k)[t]) / n
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads[i] = (acts[i].T @ dz, dz.sum(axis=0))
        if i:
            dz = (dz @ weights[i][0].T) * (zs[i - 1] > 0)
    return grads


# --------------------------------------------------------------------------------------------
# layers on graph nodes


def _run_layer(dev, layer_fn, X):
    g = xn.Graph()
    with g.as_default():
        x = xn.placeholder("float32", (None, X.shape[1]), name="x")
        layer = layer_fn()
        y = layer(x)
    sess = xn.Session(g, device=dev)
    return layer, sess, sess.run(y, {x: X})


def test_linear_forward_matches_numpy(dev):
    layer, sess, out = _run_layer(dev, lambda: xn.nn.Linear(3, 2, seed=0), X_SMALL)
    W = to_numpy(sess.get_value(layer.weight))
    np.testing.assert_array_equal(W, xn.init.he_normal((3, 2), seed=0))
    assert dev.owns(out) and out.shape == (4, 2)
    assert_close(out, X_SMALL.astype(np.float64) @ W)  # bias starts at zero

    sess.set_value(layer.bias, [0.5, -1.0])
    g = layer.weight.graph
    with g.as_default():
        x2 = xn.placeholder("float32", (None, 3), name="x2")
        y2 = layer(x2)
    assert_close(sess.run(y2, {x2: X_SMALL}), X_SMALL.astype(np.float64) @ W + [0.5, -1.0])


def test_linear_shapes_init_and_parameters():
    with xn.Graph().as_default():
        layer = xn.nn.Linear(4, 3, init="zeros", name="fc")
        assert layer.weight.shape == (4, 3) and layer.bias.shape == (3,)
        assert layer.parameters() == [layer.weight, layer.bias]
        assert layer.weight.label == "fc/W" and layer.bias.label == "fc/b"
        assert not layer.weight.initial_value.any()
        glorot = xn.nn.Linear(4, 3, init="glorot_uniform", seed=1)
        np.testing.assert_array_equal(
            glorot.weight.initial_value, xn.init.glorot_uniform((4, 3), seed=1)
        )
        assert repr(glorot) == "Linear(4, 3)"
        with pytest.raises(ValueError, match="unknown initialiser 'nope'"):
            xn.nn.Linear(4, 3, init="nope")


def test_linear_outside_a_model_has_no_W():
    with xn.Graph().as_default():
        layer = xn.nn.Linear(2, 2, seed=0)
    with pytest.raises(RuntimeError, match="not part of a model"):
        _ = layer.W
    with pytest.raises(RuntimeError, match="not part of a model"):
        layer.b = np.zeros(2)


Z = np.array([[-3.0, 0.0, 2.5], [1000.0, 999.0, -1000.0], [0.5, -0.5, 0.25]], dtype=np.float32)


@pytest.mark.parametrize(
    "layer, expected",
    [
        (xn.nn.ReLU, _relu),
        (xn.nn.Sigmoid, _sigmoid),
        (xn.nn.Tanh, np.tanh),
        (xn.nn.Softmax, _softmax),
    ],
    ids=["relu", "sigmoid", "tanh", "softmax"],
)
def test_activation_layers_match_numpy(dev, layer, expected):
    with np.errstate(over="ignore"):
        want = expected(Z.astype(np.float64))
    _, _, out = _run_layer(dev, layer, Z)
    assert dev.owns(out)
    assert np.all(np.isfinite(to_numpy(out)))
    assert_close(out, want)
    assert repr(layer()) == f"{layer.__name__}()"


def test_softmax_layer_rows_sum_to_one(dev):
    _, _, out = _run_layer(dev, xn.nn.Softmax, Z)
    assert_close(np.sum(to_numpy(out), axis=1), np.ones(3))


def test_sequential_applies_layers_in_order(dev):
    def build():
        return xn.nn.Sequential(
            xn.nn.Linear(3, 4, seed=1), xn.nn.Tanh(), xn.nn.Linear(4, 2, seed=2)
        )

    seq, sess, out = _run_layer(dev, build, X_SMALL)
    assert len(seq) == 3 and isinstance(seq[1], xn.nn.Tanh)
    assert seq.parameters() == [seq[0].weight, seq[0].bias, seq[2].weight, seq[2].bias]
    W1, W2 = (to_numpy(sess.get_value(seq[i].weight)).astype(np.float64) for i in (0, 2))
    assert_close(out, np.tanh(X_SMALL @ W1) @ W2)
    assert repr(seq) == "Sequential(Linear(3, 4), Tanh(), Linear(4, 2))"
    with xn.Graph().as_default():
        as_list = xn.nn.Sequential([xn.nn.ReLU(), xn.nn.Sigmoid()])
    assert len(as_list) == 2 and isinstance(as_list[0], xn.nn.ReLU)


def test_mlp_structure():
    with xn.Graph().as_default():
        mlp = xn.nn.MLP([4, 8, 3])
        assert repr(mlp) == "MLP(Linear(4, 8), ReLU(), Linear(8, 3))"
        deep = xn.nn.MLP([5, 7, 6, 2], activation="tanh", seed=0)
    kinds = [type(layer) for layer in deep.layers]
    assert kinds == [xn.nn.Linear, xn.nn.Tanh, xn.nn.Linear, xn.nn.Tanh, xn.nn.Linear]
    shapes = [p.shape for p in deep.parameters()]
    assert shapes == [(5, 7), (7,), (7, 6), (6,), (6, 2), (2,)]
    labels = [p.label for p in deep.parameters()]
    assert labels == ["layers.0/W", "layers.0/b", "layers.1/W", "layers.1/b", "layers.2/W",
                      "layers.2/b"]
    # One generator drawn layer after layer: reproducible from the seed.
    rng = xn.init.generator(0)
    for linear in deep.layers[::2]:
        np.testing.assert_array_equal(
            linear.weight.initial_value, xn.init.he_normal(linear.weight.shape, seed=rng)
        )
    with xn.Graph().as_default():
        single = xn.nn.MLP([3, 2], activation="sigmoid")
    assert [type(layer) for layer in single.layers] == [xn.nn.Linear]


def test_mlp_rejects_bad_arguments():
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match=r"input and an output size, got \[4\]"):
            xn.nn.MLP([4])
        with pytest.raises(ValueError, match=r"activation must be one of .*got 'gelu'"):
            xn.nn.MLP([4, 2], activation="gelu")


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_mlp_forward_matches_numpy(dev, activation):
    mlp, sess, out = _run_layer(
        dev, lambda: xn.nn.MLP([3, 5, 4, 2], activation=activation, seed=3), X_SMALL
    )
    weights = [
        (to_numpy(sess.get_value(p.weight)).astype(np.float64),
         to_numpy(sess.get_value(p.bias)).astype(np.float64))
        for p in mlp.layers[::2]
    ]
    assert_close(out, _np_forward(weights, X_SMALL, activation)[0][-1])


# --------------------------------------------------------------------------------------------
# NNClassifier: the lesson's loop


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_loss_is_numpy_log_sum_exp_cross_entropy(dev, activation):
    X, y = _moons(32)
    model = xn.nn.NNClassifier([2, 6, 5, 2], activation=activation, device=dev, seed=1)
    loss = model.loss(X, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(_np_loss(_weights(model), X, y, activation), rel=1e-5)


def test_loss_is_finite_for_huge_logits(dev):
    model = xn.nn.NNClassifier([2, 2], device=dev, seed=0)
    model.layers[0].W = np.array([[200.0, -200.0], [0.0, 0.0]], dtype=np.float32)
    X = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    # logits (200, -200) and (-200, 200): label 1 then 0 costs 400 each, label 0 then 1 nothing.
    assert model.loss(X, np.array([1, 0])) == pytest.approx(400.0, rel=1e-6)
    assert model.loss(X, np.array([0, 1])) == pytest.approx(0.0, abs=1e-6)


def test_backward_matches_numpy_closed_form(dev):
    X, y = _moons(48)
    model = xn.nn.NNClassifier([2, 10, 7, 2], device=dev, seed=2)
    model.loss(X, y)
    grads = model.backward()
    assert len(grads) == 6
    expected = _np_grads(_weights(model), X, y)
    for layer, (dW, db) in zip(model.layers, expected):
        assert dev.owns(layer.dW) and dev.owns(layer.db)
        assert tuple(layer.dW.shape) == dW.shape and tuple(layer.db.shape) == db.shape
        assert_close(layer.dW, dW, rtol=1e-4, atol=1e-6)
        assert_close(layer.db, db, rtol=1e-4, atol=1e-6)


def test_backward_matches_finite_differences_of_the_numpy_loss(dev):
    X, y = _moons(24)
    model = xn.nn.NNClassifier([2, 5, 3], activation="tanh", device=dev, seed=4)
    model.loss(X, y)
    model.backward()
    weights = _weights(model)
    eps = 1e-6
    for i, layer in enumerate(model.layers):
        for which, analytic in ((0, to_numpy(layer.dW)), (1, to_numpy(layer.db))):
            numeric = np.zeros(analytic.shape)
            for idx in np.ndindex(*analytic.shape):
                plus = [list(w) for w in weights]
                minus = [list(w) for w in weights]
                plus[i][which] = plus[i][which].copy()
                minus[i][which] = minus[i][which].copy()
                plus[i][which][idx] += eps
                minus[i][which][idx] -= eps
                numeric[idx] = (_np_loss(plus, X, y, "tanh") - _np_loss(minus, X, y, "tanh")) / (
                    2 * eps
                )
            np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradcheck_on_the_model_graph(dev, activation):
    X, y = _moons(16)
    model = xn.nn.NNClassifier([2, 6, 3], activation=activation, device=dev, seed=5)
    report = xn.gradcheck(
        model.loss_node, model.params, {model.inputs: X, model.labels: y}, session=model.session
    )
    assert report.ok and len(report.checks) == 4
    assert report.max_error < 1e-5


def test_forward_and_forward_probs(dev):
    X, _ = _moons(20)
    model = xn.nn.NNClassifier([2, 8, 3], device=dev, seed=0)
    logits, probs = model.forward(X), model.forward_probs(X)
    assert dev.owns(logits) and dev.owns(probs)
    assert logits.shape == (20, 3) and probs.shape == (20, 3)
    want = _np_forward(_weights(model), X)[0][-1]
    assert_close(logits, want, rtol=1e-5, atol=1e-5)
    assert_close(probs, _softmax(want), rtol=1e-5, atol=1e-6)
    assert_close(np.sum(to_numpy(probs), axis=1), np.ones(20))
    # Data already on the device is used where it is.
    assert_close(model.forward(dev.from_host(X)), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lr", [0.5, 0.1])
def test_sgd_step_is_w_minus_lr_dw(dev, lr):
    X, y = _moons(32)
    model = xn.nn.NNClassifier([2, 10, 2], device=dev, seed=0)
    opt = xn.nn.SGD(model, lr=lr)
    model.loss(X, y)
    model.backward()
    before = [(to_numpy(layer.W), to_numpy(layer.b)) for layer in model.layers]
    grads = [(to_numpy(layer.dW), to_numpy(layer.db)) for layer in model.layers]
    opt.step()
    for layer, (W, b), (dW, db) in zip(model.layers, before, grads):
        np.testing.assert_array_equal(to_numpy(layer.W), W - np.float32(lr) * dW)
        np.testing.assert_array_equal(to_numpy(layer.b), b - np.float32(lr) * db)
        assert dev.owns(layer.W)


def test_lesson_loop_reduces_the_loss(dev):
    X, y = _moons(64)
    model = xn.nn.NNClassifier([2, 10, 2], device=dev, seed=0)
    opt = xn.nn.SGD(model, lr=0.5)
    losses = []
    for _ in range(30):
        losses.append(model.loss(X, y))
        model.backward()
        opt.step()
    assert losses[-1] < 0.75 * losses[0]
    assert all(b < a + 1e-3 for a, b in zip(losses, losses[1:]))


def test_loop_order_is_enforced(dev):
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    opt = xn.nn.SGD(model, lr=0.1)
    with pytest.raises(RuntimeError, match=r"call loss\(X, t\) before backward\(\)"):
        model.backward()
    with pytest.raises(RuntimeError, match=r"backward\(\) before SGD.step\(\)"):
        opt.step()


def test_setting_W_and_b(dev):
    X, _ = _moons(8)
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    W = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    model.layers[0].W = W
    model.layers[0].b = dev.from_host(np.array([1.0, -1.0, 0.5], dtype=np.float32))
    assert dev.owns(model.layers[0].W)
    np.testing.assert_array_equal(to_numpy(model.layers[0].W), W)
    np.testing.assert_array_equal(to_numpy(model.layers[0].b), [1.0, -1.0, 0.5])
    assert_close(model.forward(X), _np_forward(_weights(model), X)[0][-1], rtol=1e-5, atol=1e-5)
    # float64 values are stored in the model's dtype
    model.layers[1].W = np.ones((3, 2))
    assert dtypes.dtype_name(model.layers[1].W.dtype) == "float32"


def test_setting_W_with_the_wrong_shape_changes_nothing(dev):
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    before = to_numpy(model.layers[0].W).copy()
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*shape \(3, 2\)"):
        model.layers[0].W = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        model.layers[0].b = np.zeros(2, dtype=np.float32)
    np.testing.assert_array_equal(to_numpy(model.layers[0].W), before)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 1, 2, 1]), r"label 2 is outside \[0, 2\)"),
        (np.array([0, -1, 1, 1]), r"label -1 is outside \[0, 2\)"),
        (np.array([0.0, 0.5, 1.0, 1.0]), r"labels must be integers in \[0, 2\), got 0\.5"),
        (np.array([0.0, np.inf, 1.0, 1.0]), r"labels must be integers in \[0, 2\), got inf"),
        (np.array([0.0, np.nan, 1.0, 1.0]), r"labels must be integers in \[0, 2\), got nan"),
        (np.array([0, 1, 1]), r"labels must have shape \(4,\).*got \(3,\)"),
        (np.array([[0, 1, 1, 0]]), r"labels must have shape \(4,\).*got \(1, 4\)"),
    ],
    ids=["too-big", "negative", "non-integer", "inf", "nan", "short", "2-d"],
)
def test_loss_rejects_bad_labels(dev, labels, message):
    X, _ = _moons(4)
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    with pytest.raises(ValueError, match=message):
        model.loss(X, labels)
    with pytest.raises(ValueError, match=message):
        model.loss(X, dev.from_host(labels))
    with pytest.raises(ValueError, match=message):
        model.fit(X, labels, epochs=1, verbose=0)


def test_loss_accepts_integer_valued_float_labels(dev):
    X, y = _moons(16)
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    assert model.loss(X, y.astype(np.float32)) == model.loss(X, y)
    assert model.loss(X, list(y)) == model.loss(X, y.astype(np.int32))


@pytest.mark.parametrize("shape", [(4, 3), (4, 1), (4,), (2, 2, 2)])
def test_x_of_wrong_shape_names_the_expected_shape(dev, shape):
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    X = np.zeros(shape, dtype=np.float32)
    message = rf"X must have shape \(n_samples, 2\), got {re_shape(shape)}"
    for call in (model.forward, model.forward_probs, model.predict, model.predict_proba):
        with pytest.raises(ValueError, match=message):
            call(X)
    with pytest.raises(ValueError, match=message):
        model.loss(X, np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=message):
        model.loss(dev.from_host(X), np.zeros(4, dtype=np.int64))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_model_repr_layers_and_device(dev):
    model = xn.nn.NNClassifier([2, 4, 4, 3], activation="tanh", device=dev, seed=0)
    assert len(model.layers) == 3 and all(isinstance(m, xn.nn.Linear) for m in model.layers)
    assert model.device is dev
    assert "NNClassifier([2, 4, 4, 3], activation='tanh'" in repr(model)
    assert [p.shape for p in model.params] == [(2, 4), (4,), (4, 4), (4,), (4, 3), (3,)]


def test_float64_model(dev):
    X, y = _moons(16)
    model = xn.nn.NNClassifier([2, 5, 2], device=dev, seed=0, dtype="float64")
    assert dtypes.dtype_name(model.forward(X).dtype) == "float64"
    assert model.loss(X, y) == pytest.approx(_np_loss(_weights(model), X, y), rel=1e-12)


# --------------------------------------------------------------------------------------------
# NNClassifier: the scikit-learn way


def test_fit_history_shape_and_validation(dev):
    X, y = _moons(64)
    Xv, yv = xn.data.make_moons(32, noise=0.1, seed=1)
    model = xn.nn.NNClassifier([2, 10, 2], device=dev, seed=0)
    history = model.fit(X, y, epochs=4, batch_size=16, learning_rate=0.3, validation_data=(Xv, yv),
                        verbose=0)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history.history is history
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"] + history["val_accuracy"])
    assert all(np.isfinite(history["loss"]))
    # The last validation numbers are those of the trained model.
    val_loss, val_acc = model.evaluate(Xv, yv)
    assert history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-6)
    assert history["val_accuracy"][-1] == val_acc
    assert val_loss == pytest.approx(model.loss(Xv, yv), rel=1e-5)
    no_val = model.fit(X, y, epochs=2, verbose=0)
    assert set(no_val) == {"loss", "accuracy"} and len(no_val["loss"]) == 2


def test_full_batch_sgd_fit_is_the_lesson_step(dev):
    X, y = _moons(32)
    fitted = xn.nn.NNClassifier([2, 6, 2], device=dev, seed=0)
    manual = xn.nn.NNClassifier([2, 6, 2], device=dev, seed=0)
    first = manual.loss(X, y)
    n_correct = int(np.sum(np.argmax(to_numpy(manual.forward(X)), axis=1) == y))
    manual.backward()
    xn.nn.SGD(manual, lr=0.4).step()
    history = fitted.fit(X, y, epochs=1, batch_size=32, optimizer="sgd", learning_rate=0.4,
                         verbose=0, shuffle=False)
    assert history["loss"][0] == pytest.approx(first, rel=1e-6)
    assert history["accuracy"][0] == n_correct / 32
    # equal up to rounding: NumPy's fit may apply lr * x^T g in one accumulating GEMM
    for a, b in zip(fitted.layers, manual.layers):
        np.testing.assert_allclose(to_numpy(a.W), to_numpy(b.W), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(to_numpy(a.b), to_numpy(b.b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "optimizer, lr", [("sgd", 0.5), ("momentum", 0.1), ("adam", 0.05)]
)
@pytest.mark.parametrize("dataset", ["moons", "blobs"])
def test_fit_reduces_the_loss(dev, optimizer, lr, dataset):
    if dataset == "moons":
        X, y = _moons(64)
    else:
        X, y = xn.data.make_blobs(32, seed=0, std=1.5)
    model = xn.nn.NNClassifier([2, 10, 2], device=dev, seed=0)
    before = model.loss(X, y)
    history = model.fit(X, y, epochs=8, batch_size=16, optimizer=optimizer, learning_rate=lr,
                        verbose=0)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert model.loss(X, y) < 0.8 * before


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_later_fit_with_another_lr_keeps_the_optimizer_state(dev, optimizer):
    """Like Keras and PyTorch: a new learning rate does not restart momentum or Adam's
    moments. The reference is one optimizer run by hand, its learning rate changed."""
    X, y = _moons(48)
    fitted = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    manual = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    opt = xn.train.get(optimizer, 0.1)  # what fit makes of the name
    with manual.graph.as_default():
        step = opt.apply_gradients(zip(manual.grad_nodes, manual.params))
    for lr in (0.1, 0.03):
        fitted.fit(X, y, epochs=1, batch_size=16, optimizer=optimizer, learning_rate=lr, verbose=0)
        opt.learning_rate = lr
        for Xb, yb in xn.data.batches(X, y, 16, seed=xn.init.generator(0)):
            manual.session.run(step, {manual.inputs: Xb, manual.labels: yb})
    for a, b in zip(fitted.layers, manual.layers):
        np.testing.assert_allclose(to_numpy(a.W), to_numpy(b.W), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_numpy(a.b), to_numpy(b.b), rtol=1e-5, atol=1e-6)


def test_a_bad_lr_is_refused_and_changes_nothing(dev):
    X, y = _moons(16)
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    model.fit(X, y, epochs=1, batch_size=8, optimizer="momentum", learning_rate=0.1, verbose=0)
    before = [to_numpy(layer.W).copy() for layer in model.layers]
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"learning_rate must be a finite number > 0, "
                                             f"got {bad}"):
            model.fit(X, y, epochs=1, optimizer="momentum", learning_rate=bad, verbose=0)
    for layer, W in zip(model.layers, before):
        np.testing.assert_array_equal(to_numpy(layer.W), W)
    model.fit(X, y, epochs=1, batch_size=8, optimizer="momentum", learning_rate=0.1, verbose=0)


def test_trained_model_scores_on_moons(dev):
    X, y = xn.data.make_moons(128, noise=0.1, seed=0)
    Xt, yt = xn.data.make_moons(64, noise=0.1, seed=1)
    model = xn.nn.NNClassifier([2, 16, 2], device=dev, seed=0)
    model.fit(X, y, epochs=40, batch_size=32, optimizer="adam", learning_rate=0.05, verbose=0)
    assert model.score(X, y) >= 0.95
    assert model.score(Xt, yt) >= 0.9

    proba = model.predict_proba(Xt)
    assert isinstance(proba, np.ndarray) and proba.shape == (64, 2)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    labels = model.predict(Xt)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, np.argmax(proba, axis=1))
    assert model.score(Xt, yt) == np.mean(labels == yt)
    # Device input, small batches: same answers.
    np.testing.assert_array_equal(model.predict(dev.from_host(Xt), batch_size=5), labels)
    # Another batch size may pick another matmul kernel (XLA does): float32 rounding differs.
    np.testing.assert_allclose(model.predict_proba(Xt, batch_size=7), proba, rtol=1e-5)


def test_untrained_score_is_in_range(dev):
    X, y = _moons(32)
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    score = model.score(X, y)
    assert 0.0 <= score <= 1.0
    assert score == np.mean(model.predict(X) == y)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_fit_takes_an_optimizer_object_as_keras_does(dev, optimizer):
    """fit(optimizer=xn.train.X(...)) trains with that object, at its own rate unless
    learning_rate= is given, and keeps its state from one fit to the next."""
    X, y = _moons(48)
    by_name = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    by_object = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    opt = xn.train.get(optimizer, 0.1)  # the object a name makes (Keras's defaults)
    for rate in (None, 0.03):
        by_name.fit(X, y, epochs=1, batch_size=16, optimizer=optimizer,
                    learning_rate=rate or 0.1, verbose=0)
        by_object.fit(X, y, epochs=1, batch_size=16, optimizer=opt, learning_rate=rate,
                      verbose=0)
    assert opt.learning_rate == 0.03
    for a, b in zip(by_name.layers, by_object.layers):
        np.testing.assert_allclose(to_numpy(a.W), to_numpy(b.W), rtol=1e-5, atol=1e-6)
    with pytest.warns(DeprecationWarning, match=r"fit\(lr=...\) is now fit\(learning_rate"):
        by_name.fit(X, y, epochs=1, optimizer=optimizer, lr=0.01, verbose=0)
    with pytest.raises(TypeError, match="give learning_rate= only"):
        by_name.fit(X, y, epochs=1, lr=0.01, learning_rate=0.01, verbose=0)


def test_fit_lr_schedule_sets_each_epochs_rate_as_keras_does(dev):
    """lr_schedule(epoch, lr) gives each epoch's rate: three epochs with a drop at the third
    train exactly as two fits at the first rate and one at the tenth (same batches)."""
    X, y = _moons(48)
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return lr if epoch < 2 else lr / 10

    fit = dict(batch_size=16, optimizer="momentum", shuffle=False, verbose=0)
    scheduled = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    history = scheduled.fit(X, y, epochs=3, learning_rate=0.2, lr_schedule=schedule, **fit)
    assert calls == [(0, 0.2), (1, 0.2), (2, 0.2)]
    assert history["learning_rate"] == [0.2, 0.2, 0.2 / 10]
    by_hand = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    by_hand.fit(X, y, epochs=2, learning_rate=0.2, **fit)
    by_hand.fit(X, y, epochs=1, learning_rate=0.02, **fit)
    for a, b in zip(scheduled.layers, by_hand.layers):
        np.testing.assert_allclose(to_numpy(a.W), to_numpy(b.W), rtol=1e-6, atol=1e-7)
    untouched = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    untouched.fit(X, y, epochs=3, learning_rate=0.2, **fit)
    assert not np.allclose(to_numpy(untouched.layers[0].W), to_numpy(by_hand.layers[0].W))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "fast"])
def test_fit_lr_schedule_giving_a_bad_rate_names_it_and_trains_nothing(dev, bad):
    X, y = _moons(16)
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    before = [to_numpy(layer.W).copy() for layer in model.layers]
    with pytest.raises(ValueError, match=r"lr_schedule\(0, 0.1\) gave"):
        model.fit(X, y, epochs=2, learning_rate=0.1, lr_schedule=lambda e, lr: bad, verbose=0)
    for layer, w in zip(model.layers, before):
        np.testing.assert_array_equal(to_numpy(layer.W), w)


def test_fit_rejects_an_unknown_optimizer(dev):
    X, y = _moons(8)
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0)
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamax': use one of"):
        model.fit(X, y, epochs=1, optimizer="adamax", verbose=0)


def test_verbose_prints_each_epoch(dev, capsys):
    X, y = _moons(32)
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    model.fit(X, y, epochs=3, batch_size=16, validation_data=(X, y), verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert f"epoch {i + 1}/3" in line and "loss" in line and "val_accuracy" in line
    model.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_works_without_tqdm(dev, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError):
        import tqdm.auto  # noqa: F401
    X, y = _moons(32)
    model = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    history = model.fit(X, y, epochs=2, batch_size=16, verbose=1)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out
    assert len(history["loss"]) == 2


def test_same_seed_same_training_on_numpy_and_strict():
    X, y = _moons(64)
    cpu = devices.resolve("cpu")
    strict = devices.resolve("device1", backend="array_api_strict")
    results = []
    for dev in (cpu, strict):
        model = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=7)
        initial = [to_numpy(layer.W).copy() for layer in model.layers]
        history = model.fit(X, y, epochs=3, batch_size=16, optimizer="adam",
                            learning_rate=0.05, verbose=0, seed=1)
        results.append((initial, history, model.predict_proba(X)))
    (w_a, h_a, p_a), (w_b, h_b, p_b) = results
    for a, b in zip(w_a, w_b):
        assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(h_a["loss"], h_b["loss"], rtol=1e-5)
    assert h_a["accuracy"] == h_b["accuracy"]
    np.testing.assert_allclose(p_a, p_b, rtol=1e-5, atol=1e-6)


def test_fit_with_device_data(dev):
    X, y = _moons(32)
    host = xn.nn.NNClassifier([2, 6, 2], device=dev, seed=0)
    on_dev = xn.nn.NNClassifier([2, 6, 2], device=dev, seed=0)
    h1 = host.fit(X, y, epochs=2, batch_size=8, learning_rate=0.2, verbose=0)
    h2 = on_dev.fit(dev.from_host(X), dev.from_host(y), epochs=2, batch_size=8, learning_rate=0.2,
                    verbose=0)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-6)
    np.testing.assert_allclose(host.predict_proba(X), on_dev.predict_proba(X), rtol=1e-6)
