"""xpnn against real TensorFlow 1 (``tf.compat.v1``, graph mode) as the oracle: the same
float32 programs, trained side by side, agree to float32 rounding over the whole run.

TensorFlow is not a dependency: ``pip install tensorflow-cpu`` (or ``nox -s tests_tf1``);
without it these tests skip. Only the NumPy backend runs here: the other backends are held
equal to NumPy by the rest of the suite.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

tf = pytest.importorskip(
    "tensorflow.compat.v1",
    reason="TensorFlow is not installed (pip install tensorflow-cpu): no TF1 oracle")
tf.disable_eager_execution()

# float32 over a whole run: TF's Eigen and NumPy's BLAS sum in other orders (even in float64
# TF's first SGD step here is 1e-9 away from NumPy's), and Adam's normalised steps amplify
# those differences where a gradient is near zero. The exact rule is held to a float64
# reimplementation of TF's kernel in test_optimizers.py.
RTOL, ATOL = 1e-4, 2e-5
STEPS = 40


def _problem(seed=0, n=32, d=5, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, k)).astype(np.float32)
    y = (X @ rng.normal(size=(d, k)) + 0.1 * rng.normal(size=(n, k))).astype(np.float32)
    return X, y, W


XPNN_OPTIMIZERS = {
    "sgd": lambda: xn.train.GradientDescentOptimizer(0.05),
    "momentum": lambda: xn.train.MomentumOptimizer(0.02, momentum=0.9),
    "nesterov": lambda: xn.train.MomentumOptimizer(0.02, momentum=0.8, use_nesterov=True),
    "adam": lambda: xn.train.AdamOptimizer(0.05),
    "adam-eps": lambda: xn.train.AdamOptimizer(0.1, beta1=0.5, beta2=0.9, epsilon=1e-3),
}
TF_OPTIMIZERS = {
    "sgd": lambda: tf.train.GradientDescentOptimizer(0.05),
    "momentum": lambda: tf.train.MomentumOptimizer(0.02, momentum=0.9),
    "nesterov": lambda: tf.train.MomentumOptimizer(0.02, momentum=0.8, use_nesterov=True),
    "adam": lambda: tf.train.AdamOptimizer(0.05),
    "adam-eps": lambda: tf.train.AdamOptimizer(0.1, beta1=0.5, beta2=0.9, epsilon=1e-3),
}


def _train_tf(name, X, y, W0):
    graph = tf.Graph()
    with graph.as_default():
        w = tf.Variable(W0)
        b = tf.Variable(np.zeros(W0.shape[1], W0.dtype))
        loss = tf.reduce_mean(tf.square(tf.matmul(X, w) + b - y))
        step = TF_OPTIMIZERS[name]().minimize(loss)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            losses = [sess.run([step, loss])[1] for _ in range(STEPS)]
            return np.array(losses), sess.run(w), sess.run(b)


def _train_xpnn(name, X, y, W0):
    with xn.Graph().as_default():
        w = xn.Variable(W0, name="w")
        b = xn.Variable(np.zeros(W0.shape[1], W0.dtype), name="b")
        loss = xn.reduce_mean(xn.square(xn.matmul(X, w) + b - y))
        step = XPNN_OPTIMIZERS[name]().minimize(loss)
        sess = xn.Session()
        losses = [sess.run([step, loss])[1] for _ in range(STEPS)]
        return np.array(losses), sess.run(w), sess.run(b)


@pytest.mark.parametrize("name", list(XPNN_OPTIMIZERS))
def test_training_run_matches_tensorflow(name):
    X, y, W0 = _problem()
    want = _train_tf(name, X, y, W0)
    got = _train_xpnn(name, X, y, W0)
    for g, t, what in zip(got, want, ("losses", "weights", "biases")):
        assert g.dtype == np.float32, what
        np.testing.assert_allclose(g, t, rtol=RTOL, atol=ATOL, err_msg=f"{name}: {what}")


def test_adam_adds_epsilon_to_sqrt_v_as_tensorflow_does():
    # A gradient near epsilon / sqrt(1 - beta2): PyTorch's form moves w by about 0.0990,
    # TensorFlow's by 0.0760 (see the issue); both libraries' programs are run here.
    w0, grad = np.ones(2, np.float32), np.array([1e-6, 1.0], np.float32)
    graph = tf.Graph()
    with graph.as_default():
        w = tf.Variable(w0)
        step = tf.train.AdamOptimizer(0.1).minimize(tf.reduce_sum(w * grad))
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            want = []
            for _ in range(5):
                sess.run(step)
                want.append(sess.run(w))
    with xn.Graph().as_default():
        v = xn.Variable(w0)
        step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(v * grad))
        sess = xn.Session()
        got = []
        for _ in range(5):
            sess.run(step)
            got.append(sess.run(v))
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-6)
    assert abs(got[0][0] - 0.9240254) < 1e-6  # far from PyTorch's 0.9009907
