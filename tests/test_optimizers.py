"""Optimizers: the red/blue perceptron trains on every backend; SGD, momentum (plain and
Nesterov) and Adam match NumPy reimplementations step by step; state lives per Session."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance

# --------------------------------------------------------------------------- the perceptron


def red_blue(n=50, seed=0):
    """Lesson 2's two gaussian blobs: blue around (2, 2) is class 0, red around (-2, -2)."""
    rng = np.random.default_rng(seed)
    red = rng.standard_normal((n, 2)) - 2 * np.ones((n, 2))
    blue = rng.standard_normal((n, 2)) + 2 * np.ones((n, 2))
    X = np.concatenate([blue, red])
    C = np.array([[1.0, 0.0]] * n + [[0.0, 1.0]] * n)
    return X, C


def test_perceptron_learns_red_blue(dev):
    X0, C0 = red_blue()
    rng = np.random.default_rng(1)
    W0, b0 = rng.standard_normal((2, 2)), rng.standard_normal(2)
    with xn.Graph().as_default():
        X = xn.placeholder(name="X")
        c = xn.placeholder(name="c")
        W = xn.Variable(W0, name="W")
        b = xn.Variable(b0, name="b")
        p = xn.softmax(X @ W + b)
        J = xn.negative(xn.reduce_sum(xn.reduce_sum(c * xn.log(p), axis=1)))  # the series' J
        J_lib = xn.losses.cross_entropy(c, p)
        step = xn.train.GradientDescentOptimizer(0.01).minimize(J)
        sess = xn.Session(device=dev)
        feed = {X: X0, c: C0}
        j0, j0_lib, p0 = sess.run([J, J_lib, p], feed, to_numpy=True)
        assert j0 == pytest.approx(j0_lib, rel=1e-6)
        # the first step against the closed form dJ/dz = p - c
        sess.run(step, feed)
        X32 = X0.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(sess.run(W, to_numpy=True), W0 - 0.01 * X32.T @ (p0 - C0),
                                   rtol=1e-5)
        np.testing.assert_allclose(sess.run(b, to_numpy=True), b0 - 0.01 * (p0 - C0).sum(0),
                                   rtol=1e-5)
        for _ in range(99):
            sess.run(step, feed)
        j1, probs = sess.run([J, p], feed, to_numpy=True)
    assert j1 < 0.05 * j0
    accuracy = np.mean(probs.argmax(axis=1) == C0.argmax(axis=1))
    assert accuracy >= 0.98


# --------------------------------------------------------------------------- exact steps


A = np.array([[2.0, -1.0, 0.5], [0.3, 1.5, -0.7], [1.0, 0.2, 0.9], [-0.4, 0.8, 1.1]])
T = np.array([1.0, -2.0, 0.5, 3.0])
W_START = np.array([0.5, -1.5, 2.0])


def quadratic_grad(w):
    """Gradient of L(w) = 0.5 ||A w - t||^2."""
    return A.T @ (A @ w - T)


def quadratic_loss(w):
    return 0.5 * np.sum((A @ w - T) ** 2)


def numpy_sgd(w, steps, lr):
    for _ in range(steps):
        w = w - lr * quadratic_grad(w)
    return w


def numpy_momentum(w, steps, lr, m, nesterov=False):
    v = np.zeros_like(w)
    for _ in range(steps):
        g = quadratic_grad(w)
        v = m * v + g
        w = w - lr * (g + m * v if nesterov else v)
    return w


def numpy_adam(w, steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    """TF1's form (training_ops.cc ApplyAdam): epsilon added to sqrt(v), not sqrt(v_hat)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    b1_power, b2_power = b1, b2
    for _ in range(steps):
        g = quadratic_grad(w)
        lr_t = lr * np.sqrt(1 - b2_power) / (1 - b1_power)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr_t * m / (np.sqrt(v) + eps)
        b1_power, b2_power = b1_power * b1, b2_power * b2
    return w


def numpy_rmsprop(w, steps, lr, decay=0.9, momentum=0.0, eps=1e-10, centered=False):
    """TF1's ApplyRMSProp: the mean square starts at 1."""
    ms, mom, mg = np.ones_like(w), np.zeros_like(w), np.zeros_like(w)
    for _ in range(steps):
        g = quadratic_grad(w)
        ms = ms + (g * g - ms) * (1 - decay)
        mg = mg + (g - mg) * (1 - decay)
        mom = momentum * mom + lr * g / np.sqrt(ms - (mg * mg if centered else 0) + eps)
        w = w - mom
    return w


def numpy_adagrad(w, steps, lr, initial=0.1):
    acc = np.full_like(w, initial)
    for _ in range(steps):
        g = quadratic_grad(w)
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc)
    return w


OPTIMIZERS = {
    "sgd": (lambda: xn.train.GradientDescentOptimizer(0.05),
            lambda w, n: numpy_sgd(w, n, 0.05)),
    "momentum": (lambda: xn.train.MomentumOptimizer(0.02, momentum=0.9),
                 lambda w, n: numpy_momentum(w, n, 0.02, 0.9)),
    "nesterov": (lambda: xn.train.MomentumOptimizer(0.02, momentum=0.8, use_nesterov=True),
                 lambda w, n: numpy_momentum(w, n, 0.02, 0.8, nesterov=True)),
    "adam": (lambda: xn.train.AdamOptimizer(0.1), lambda w, n: numpy_adam(w, n, 0.1)),
    "adam-betas": (lambda: xn.train.AdamOptimizer(0.05, beta1=0.5, beta2=0.9, epsilon=1e-3),
                   lambda w, n: numpy_adam(w, n, 0.05, 0.5, 0.9, 1e-3)),
    "rmsprop": (lambda: xn.train.RMSPropOptimizer(0.01),
                lambda w, n: numpy_rmsprop(w, n, 0.01)),
    "rmsprop-centered": (
        lambda: xn.train.RMSPropOptimizer(0.01, decay=0.8, momentum=0.5, epsilon=1e-3,
                                          centered=True),
        lambda w, n: numpy_rmsprop(w, n, 0.01, 0.8, 0.5, 1e-3, centered=True)),
    "adagrad": (lambda: xn.train.AdagradOptimizer(0.1), lambda w, n: numpy_adagrad(w, n, 0.1)),
}


def quadratic_graph(optimizer):
    w = xn.Variable(W_START, name="w")  # float64: exact comparisons
    a = xn.placeholder(dtype="float64", name="A")
    loss = 0.5 * xn.reduce_sum(xn.square(a @ w - T))
    return w, a, loss, optimizer.minimize(loss)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_steps_match_numpy_reimplementation(dev, name):
    make, reference = OPTIMIZERS[name]
    with xn.Graph().as_default():
        w, a, loss, step = quadratic_graph(make())
        sess = xn.Session(device=dev)
        for n in range(1, 4):
            sess.run(step, {a: A})
            got = sess.run(w, to_numpy=True)
            assert got.dtype == np.float64
            np.testing.assert_allclose(got, reference(W_START, n), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_reduce_the_loss(dev, name):
    make, reference = OPTIMIZERS[name]
    with xn.Graph().as_default():
        w, a, loss, step = quadratic_graph(make())
        sess = xn.Session(device=dev)
        start = sess.run(loss, {a: A}, to_numpy=True)
        assert start == pytest.approx(quadratic_loss(W_START), rel=1e-12)
        for _ in range(60):
            sess.run(step, {a: A})
        end = sess.run(loss, {a: A}, to_numpy=True)
        np.testing.assert_allclose(sess.run(w, to_numpy=True), reference(W_START, 60),
                                   rtol=1e-9, atol=1e-12)
    optimum = quadratic_loss(np.linalg.lstsq(A, T, rcond=None)[0])
    assert end - optimum < 0.2 * (start - optimum)


def test_float32_variables_train_in_float32(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, -2.0], name="w")
        step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(xn.square(w)))
        sess = xn.Session(device=dev)
        sess.run(step)
        for v in w.graph.variables:
            assert sess.get_value(v).dtype == dev.dtype("float32"), v
        # Adam's first step moves each weight by lr against the gradient's sign
        np.testing.assert_allclose(sess.run(w, to_numpy=True), [0.9, -1.9], rtol=1e-6)


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_optimizer_state_is_per_session(dev, name):
    make, reference = OPTIMIZERS[name]
    with xn.Graph().as_default():
        w, a, loss, step = quadratic_graph(make())
        first, second = xn.Session(device=dev), xn.Session(device=dev)
        for _ in range(3):
            first.run(step, {a: A})
        second.run(step, {a: A})  # a fresh velocity/moment: one step from the start
        np.testing.assert_allclose(second.run(w, to_numpy=True), reference(W_START, 1),
                                   rtol=1e-12)
        np.testing.assert_allclose(first.run(w, to_numpy=True), reference(W_START, 3),
                                   rtol=1e-12)
        first.run(step, {a: A})
        second.run(step, {a: A})
        np.testing.assert_allclose(first.run(w, to_numpy=True), reference(W_START, 4),
                                   rtol=1e-12)
        np.testing.assert_allclose(second.run(w, to_numpy=True), reference(W_START, 2),
                                   rtol=1e-12)


def test_var_list_restricts_updates(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, 2.0], name="w")
        b = xn.Variable([3.0], name="b")
        frozen = xn.Variable([4.0], name="frozen", trainable=False)
        loss = xn.reduce_sum(xn.square(w)) + xn.reduce_sum(xn.square(b)) + xn.reduce_sum(
            frozen * w
        )
        only_b = xn.train.GradientDescentOptimizer(0.1).minimize(loss, var_list=[b])
        default = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev)
        sess.run(only_b)
        np.testing.assert_allclose(sess.run([w, b, frozen], to_numpy=True)[0], [1.0, 2.0])
        np.testing.assert_allclose(sess.run(b, to_numpy=True), [3.0 - 0.1 * 6.0], rtol=1e-6)
        sess.run(default)  # w and b, never the non-trainable Variable
        out = sess.run([w, b, frozen], to_numpy=True)
        np.testing.assert_allclose(out[0], [1.0 - 0.1 * (2 + 4), 2.0 - 0.1 * (4 + 4)], rtol=1e-6)
        np.testing.assert_allclose(out[1], [2.4 - 0.1 * 4.8], rtol=1e-6)
        np.testing.assert_array_equal(out[2], [4.0])


def test_compute_and_apply_gradients(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, -2.0], name="w")
        u = xn.Variable([5.0], name="unused")
        loss = xn.reduce_sum(xn.square(w))
        opt = xn.train.MomentumOptimizer(0.1, momentum=0.5)
        pairs = opt.compute_gradients(loss, var_list=[w, u])
        assert [v for _, v in pairs] == [w, u]
        assert pairs[1][0] is None  # unused does not affect the loss
        sess = xn.Session(device=dev)
        np.testing.assert_array_equal(sess.run(pairs[0][0], to_numpy=True), [2.0, -4.0])
        halved = [(None if g is None else g * 0.5, v) for g, v in pairs]
        step = opt.apply_gradients(halved, name="train")
        assert isinstance(step, xn.Update) and step.label == "train"
        sess.run(step)  # v = g/2 = w; w -= 0.1 v
        np.testing.assert_allclose(sess.run(w, to_numpy=True), [0.9, -1.8], rtol=1e-6)
        sess.run(step)  # v = 0.5 v + w = [1.4, -2.8]
        np.testing.assert_allclose(sess.run(w, to_numpy=True), [0.9 - 0.14, -1.8 + 0.28],
                                   rtol=1e-6)
        np.testing.assert_array_equal(sess.run(u, to_numpy=True), [5.0])


RATE_OPTIMIZERS = {
    "sgd": lambda lr: xn.train.GradientDescentOptimizer(lr),
    "nesterov": lambda lr: xn.train.MomentumOptimizer(lr, momentum=0.8, use_nesterov=True),
    "adam": lambda lr: xn.train.AdamOptimizer(lr),
    "rmsprop": lambda lr: xn.train.RMSPropOptimizer(lr, momentum=0.5),
    "adagrad": lambda lr: xn.train.AdagradOptimizer(lr),
}


@pytest.mark.parametrize("name", list(RATE_OPTIMIZERS))
def test_learning_rate_may_be_a_node(dev, name):
    """A placeholder rate, fed a different value each run, moves the Variables exactly as
    a number set before each run does (the schedule of TF1's exponential_decay)."""
    rates = [0.05, 0.02, 0.01]
    with xn.Graph().as_default():
        rate = xn.placeholder(dtype="float64", shape=(), name="rate")
        w, a, loss, step = quadratic_graph(RATE_OPTIMIZERS[name](rate))
        assert step.rate is not None and step.inputs[step.rate] is rate
        sess = xn.Session(device=dev)
        for r in rates:
            sess.run(step, {a: A, rate: r})
        by_node = sess.run(w, to_numpy=True)
    with xn.Graph().as_default():
        opt = RATE_OPTIMIZERS[name](rates[0])
        w, a, loss, step = quadratic_graph(opt)
        sess = xn.Session(device=dev)
        for r in rates:
            opt.learning_rate = r
            sess.run(step, {a: A})
        np.testing.assert_allclose(by_node, sess.run(w, to_numpy=True), rtol=1e-12)
    assert not np.allclose(by_node, W_START)


def test_learning_rate_node_must_be_a_scalar():
    with pytest.raises(ValueError, match="learning_rate rates must be a scalar"):
        xn.train.AdamOptimizer(xn.placeholder(shape=(2,), name="rates"))


def test_optimizer_argument_errors():
    with xn.Graph().as_default():
        counts = xn.Variable(np.array([1, 2]), dtype="int64", name="counts")
        w = xn.Variable([1.0], name="w")
        loss = xn.reduce_sum(w * counts)
        opt = xn.train.GradientDescentOptimizer(0.1)
        with pytest.raises(TypeError, match=r"Variable counts has dtype int64; only floating "
                                            r"Variables can be trained"):
            opt.minimize(loss, var_list=[w, counts])
        with pytest.raises(TypeError, match="counts has dtype int64"):
            xn.train.AdamOptimizer().minimize(loss)  # found among the trainable ones
        with pytest.raises(TypeError, match="is not a Variable"):
            opt.minimize(loss, var_list=[w * 2.0])
        other = xn.Variable([0.0], name="other")
        with pytest.raises(ValueError, match=r"loss .* does not depend on any of \['other'\]"):
            opt.minimize(loss, var_list=[other])
        for lr in (0.0, -1.0, float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
                xn.train.MomentumOptimizer(lr)
            with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
                opt.learning_rate = lr  # a schedule changing it between runs is checked too
        assert opt.learning_rate == 0.1
    with xn.Graph().as_default():
        frozen = xn.Variable([1.0], trainable=False)
        with pytest.raises(ValueError, match="no trainable Variable"):
            xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(frozen))


def test_one_name_one_thing():
    # xn.nn.SGD(model, lr) is the lesson's model optimizer; xn.train has no second SGD.
    assert not hasattr(xn.train, "SGD")
    assert xn.nn.SGD.__init__.__code__.co_varnames[1] == "model"


# --------------------------------------------------------------------------- float16


def _train_half_and_single(dev, make, steps=5, rate_node=False):
    """The same model trained in float16 and in float32: w * x against a target, where x is
    0 for w[1] (no gradient) and small for w[2]; the Variables after ``steps`` steps."""
    out = {}
    for dtype in ("float16", "float32"):
        with xn.Graph().as_default() as graph:
            w = xn.Variable(np.array([1.0, 0.5, -2.0], dtype), name="w")
            x = xn.placeholder(dtype, (3,), name="x")
            lr = xn.placeholder(dtype, (), name="lr") if rate_node else None
            loss = xn.reduce_sum(xn.square(w * x - np.array([0.25, 0.0, 0.0], dtype)))
            optimizer = make()
            if rate_node:
                optimizer.learning_rate = lr
            step = optimizer.minimize(loss)
            sess = xn.Session(device=dev)
            feed = {x: np.array([1.0, 0.0, 0.01], dtype)}
            if rate_node:
                feed[lr] = np.asarray(0.05, dtype)
            for _ in range(steps):
                sess.run(step, feed)
            out[dtype] = {v.label: sess.run(v, to_numpy=True) for v in graph.variables}
    return out["float16"], out["float32"]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float16_variables_train_as_float32_ones_and_stay_finite(dev, name):
    """In float16 Adam's epsilon 1e-8 is 0: a weight with no gradient became 0/0 = NaN after
    one step. A float16 Variable's update is computed in float32 (slots in float32)."""
    if not hasattr(dev.xp, "float16"):
        pytest.skip(f"{dev.backend} has no float16 (the array API standard has none)")
    half, single = _train_half_and_single(dev, OPTIMIZERS[name][0])
    assert half["w"].dtype == np.float16 and np.isfinite(half["w"]).all(), half["w"]
    assert half["w"][1] == 0.5  # no gradient: unchanged
    np.testing.assert_allclose(half["w"], single["w"], **tolerance("float16"))
    for label, value in half.items():  # the slots: float32, as a float32 model's
        if label != "w":
            assert value.dtype == np.float32, label
            np.testing.assert_allclose(value, single[label], **tolerance("float16"))


@pytest.mark.parametrize("name", list(RATE_OPTIMIZERS))
def test_float16_variables_with_a_learning_rate_node(dev, name):
    if not hasattr(dev.xp, "float16"):
        pytest.skip(f"{dev.backend} has no float16 (the array API standard has none)")
    half, single = _train_half_and_single(dev, lambda: RATE_OPTIMIZERS[name](0.05),
                                          rate_node=True)
    assert np.isfinite(half["w"]).all() and half["w"][1] == 0.5, half["w"]
    np.testing.assert_allclose(half["w"], single["w"], **tolerance("float16"))
