"""The thread rule: a Session may be used from several threads at once; its runs (and
get_value, set_value, save, restore, close) are serialized by the Session's lock, as TF1's
Session.run is thread-safe. Two threads each doing N SGD steps on one Session apply exactly
2N steps, on every backend, and no thread fails."""

from __future__ import annotations

import sys
import threading

import numpy as np

import xpnn as xn

STEPS = 60  # per thread


def _model(dev, optimizer=None):
    """A small SGD (or ``optimizer``) step on one fixed batch: every step is a function of
    the weights alone, so 2N serialized steps end where 2N steps in a row end."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 8)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    graph = xn.Graph()
    with graph.as_default():
        x = xn.placeholder(shape=(None, 8), name="x")
        t = xn.placeholder("int64", (None,), name="t")
        init = xn.init.generator(1)
        w1 = xn.Variable(xn.init.he_normal((8, 16), init), name="w1")
        w2 = xn.Variable(xn.init.he_normal((16, 3), init), name="w2")
        loss = xn.losses.sparse_softmax_cross_entropy(t, xn.relu(x @ w1) @ w2)
        optimizer = optimizer or xn.train.GradientDescentOptimizer(0.05)
        step = optimizer.minimize(loss)
        sess = xn.Session(device=dev)
    return sess, step, loss, {x: X, t: y}, (w1, w2)


def _weights(sess, params):
    return [xn.to_numpy(sess.get_value(p)) for p in params]


def _in_threads(n_threads, work):
    """Run ``work(i)`` in ``n_threads`` threads started together, switching between them
    often (races show at once, not once in a while); the errors they raised."""
    errors, start = [], threading.Barrier(n_threads)

    def target(i):
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n_threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return errors


def test_two_threads_on_one_session_apply_every_step(dev):
    sess, step, loss, feed, params = _model(dev)
    for _ in range(2 * STEPS):
        sess.run(step, feed)
    expected = _weights(sess, params)

    sess, step, loss, feed, params = _model(dev)
    initial = _weights(sess, params)
    losses = [[], []]

    def work(i):
        for _ in range(STEPS):
            losses[i].append(xn.to_numpy(sess.run([step, loss], feed)[1]))

    errors = _in_threads(2, work)
    assert not errors, errors
    assert [len(ls) for ls in losses] == [STEPS, STEPS]
    got = _weights(sess, params)
    for g, e, w0 in zip(got, expected, initial):
        assert np.abs(e - w0).max() > 1e-3  # the reference moved: a lost step would show
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    sess.run(step, feed)  # still usable after the threads


def test_reads_and_writes_from_other_threads_meet_whole_steps(dev):
    """get_value and set_value from other threads while one thread trains: none fails
    (on JAX a run donates the old buffers a read may be copying) and every value read is
    finite."""
    sess, step, loss, feed, params = _model(dev)
    start = _weights(sess, params)
    training = threading.Event()
    training.set()

    def work(i):
        if i == 0:
            for _ in range(3 * STEPS):
                sess.run(step, feed)
            training.clear()
            return
        while training.is_set():
            if i == 1:
                assert all(np.isfinite(w).all() for w in _weights(sess, params))
            else:
                sess.set_value(params[1], start[1])

    errors = _in_threads(3, work)
    assert not errors, errors
    assert all(np.isfinite(w).all() for w in _weights(sess, params))


def test_sessions_of_one_graph_train_in_threads_as_alone(dev):
    """Four Sessions of one graph (one Adam optimizer) trained in four threads at once each
    end where one Session alone ends: on JAX a trace reads the optimizer's numbers as
    tracers, which must not reach the graph's optimizer that the others read."""
    sess, step, loss, feed, params = _model(dev, xn.train.AdamOptimizer(0.01))
    for _ in range(STEPS):
        sess.run(step, feed)
    expected = _weights(sess, params)
    sessions = [xn.Session(graph=sess.graph, device=dev) for _ in range(4)]

    def work(i):
        for _ in range(STEPS):
            sessions[i].run(step, feed)

    errors = _in_threads(4, work)
    assert not errors, errors
    for other in sessions:
        for g, e in zip(_weights(other, params), expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
