"""TF1's random ops in ``xpnn.compat.v1``: new values at every ``Session.run``; the graph's
and the op's seeds fix the sequence, which every Session starts over (so two Sessions, and
every backend, give the same draws: the host draws of NumPy's PCG64 from the pair, not TF's
Philox numbers); fresh draws where neither seed is set; a Variable made from a random
tensor drawn anew at each run of its initializer; noise in a training loss."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn.compat.v1 as tf
from xpnn.compat.v1.graphs import DEFAULT_GRAPH_SEED


def host(*seeds):
    return np.random.Generator(np.random.PCG64(seeds))


def test_a_seeded_op_draws_its_pairs_sequence_anew_at_every_run(on):
    tf.set_random_seed(7)
    a = tf.random_normal([500], mean=1.0, stddev=2.0, seed=3)
    k = tf.random_uniform([500], 0, 4, dtype=tf.int32, seed=4)
    rng_a, rng_k = host(7, 3), host(7, 4)
    want = [[(rng_a.standard_normal(500) * 2.0 + 1.0).astype(np.float32),
             rng_k.integers(0, 4, 500).astype(np.int32)] for _ in range(3)]
    for _ in range(2):  # a second Session starts each op's sequence over
        with tf.Session() as sess:
            runs = [sess.run([a, k]) for _ in range(3)]
        for got, expected in zip(runs, want):
            for g, w in zip(got, expected):
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g, w)  # on every backend, bit for bit
    assert not np.array_equal(runs[0][0], runs[1][0])


def test_tf1s_seed_rules(on):
    op_only = tf.random_normal([4], seed=3)  # TF1's default graph seed
    with tf.Session() as sess:
        np.testing.assert_array_equal(
            sess.run(op_only), host(DEFAULT_GRAPH_SEED, 3).standard_normal(4).astype(np.float32))

    def graph_seed_only():
        tf.reset_default_graph()
        tf.set_random_seed(11)
        ops = [tf.random_normal([4]), tf.random_normal([4]), tf.random_uniform([4])]
        with tf.Session() as sess:
            return [sess.run(ops) for _ in range(2)]

    first, again = graph_seed_only(), graph_seed_only()
    np.testing.assert_array_equal(np.array(first), np.array(again))  # the same program
    assert not np.array_equal(first[0][0], first[0][1])  # each op its own sequence
    assert not np.array_equal(first[0][0], first[1][0])

    tf.reset_default_graph()  # neither seed: fresh draws in every Session
    free = tf.random_normal([8])
    with tf.Session() as one, tf.Session() as two:
        assert not np.array_equal(one.run(free), two.run(free))


def test_the_distributions_and_dtypes(on):
    tf.set_random_seed(1)
    normal = tf.random_normal([20000], mean=-2.0, stddev=3.0, dtype=tf.float64)
    truncated = tf.truncated_normal([20000], mean=1.0, stddev=0.5)
    uniform = tf.random_uniform([20000], 2.0, 5.0)
    ints = tf.random_uniform([20000], -3, 3, dtype=tf.int64)
    with tf.Session() as sess:
        n, t, u, i = sess.run([normal, truncated, uniform, ints])
    assert (n.dtype, t.dtype, u.dtype, i.dtype) == ("float64", "float32", "float32", "int64")
    assert abs(n.mean() + 2.0) < 0.1 and abs(n.std() - 3.0) < 0.1
    assert t.min() >= 0.0 and t.max() <= 2.0 and abs(t.std() - 0.5 * 0.8796) < 0.02
    assert u.min() >= 2.0 and u.max() < 5.0 and abs(u.mean() - 3.5) < 0.05
    assert set(np.unique(i).tolist()) == set(range(-3, 3))
    with pytest.raises(ValueError, match="need maxval"):
        tf.random_uniform([2], dtype=tf.int32)
    with pytest.raises(TypeError, match="not a floating type"):
        tf.random_normal([2], dtype=tf.int32)
    with pytest.raises(NotImplementedError, match="takes numbers"):
        tf.random_normal([2], stddev=tf.constant(2.0))


def test_random_shuffle_draws_a_new_order_at_every_run(on):
    x = tf.placeholder(tf.int32, [None])
    shuffled = tf.random_shuffle(x, seed=1)
    of_constant = tf.random_shuffle([[1, 2], [3, 4], [5, 6], [7, 8]], seed=2)
    with tf.Session() as sess:
        runs = [sess.run(shuffled, {x: np.arange(30)}) for _ in range(3)]
        rows = [sess.run(of_constant) for _ in range(20)]
    assert all(sorted(r.tolist()) == list(range(30)) for r in runs)
    assert not np.array_equal(runs[0], runs[1]) and runs[0].dtype == np.int32
    assert all(sorted(r.tolist()) == [[1, 2], [3, 4], [5, 6], [7, 8]] for r in rows)
    assert len({r.tobytes() for r in rows}) > 1


def test_a_random_initial_value_is_drawn_at_each_run_of_the_initializer(on):
    tf.set_random_seed(5)
    w = tf.Variable(tf.random_normal([3, 2], stddev=0.1), name="w")
    v = tf.get_variable("v", [4], initializer=tf.random_uniform_initializer(-1.0, 1.0))
    glorot = tf.get_variable("g", [5, 5])  # TF1's default: glorot_uniform
    fixed = tf.Variable(tf.zeros([2]) + 1.0, name="fixed")
    made = [w.initial_value, v.initial_value, glorot.initial_value]
    init = tf.global_variables_initializer()
    for _ in range(2):
        with tf.Session() as sess:
            before = sess.run([w, v, glorot])
            sess.run(init)
            first = sess.run([w, v, glorot])
            sess.run(init)
            second = sess.run([w, v, glorot, fixed])
            sess.run(w.initializer)
            third = sess.run(w)
        for m, b, f, s in zip(made, before, first, second):
            np.testing.assert_array_equal(b, m)  # before the initializer: the initial value
            np.testing.assert_array_equal(f, m)  # the first draw of the op's sequence
            assert not np.array_equal(s, f)  # the next one
        assert second[3].tolist() == [1.0, 1.0]
        assert not np.array_equal(third, second[0])
    assert np.abs(made[2]).max() <= np.sqrt(6.0 / 10.0)


def test_unseeded_initial_values_differ_between_sessions(on):
    w = tf.Variable(tf.truncated_normal([50]))
    init = tf.global_variables_initializer()
    values = []
    for _ in range(2):
        with tf.Session() as sess:
            sess.run(init)
            values.append(sess.run(w))
    assert not np.array_equal(values[0], values[1]) and np.abs(values[0]).max() <= 2.0


def _noise_injection(tf):
    """A TF1 program: linear regression with Gaussian noise added to its inputs at every
    step (a random op in the loss), weights from a seeded truncated normal."""
    tf.reset_default_graph()
    tf.set_random_seed(0)
    X = np.random.default_rng(0).uniform(-1.0, 1.0, (32, 2)).astype(np.float32)
    Y = X @ np.array([[2.0], [-1.0]], np.float32) + 0.5
    x = tf.placeholder(tf.float32, [None, 2])
    y = tf.placeholder(tf.float32, [None, 1])
    W = tf.Variable(tf.truncated_normal([2, 1], stddev=0.1))
    b = tf.Variable(tf.zeros([1]))
    noisy = x + tf.random_normal([32, 2], stddev=0.05)
    loss = tf.reduce_mean(tf.square(tf.matmul(noisy, W) + b - y))
    train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    losses = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(80):
            _, value = sess.run([train, loss], {x: X, y: Y})
            losses.append(value)
        return np.array(losses), sess.run(W).ravel(), sess.run(b)


def test_a_training_program_with_noise_in_its_loss(on):
    losses, W, b = _noise_injection(tf)
    assert losses[-1] < losses[0] / 20 and len(set(losses[-5:].tolist())) == 5
    np.testing.assert_allclose(W, [2.0, -1.0], atol=0.1)
    np.testing.assert_allclose(b, [0.5], atol=0.05)
    tf.use_device("cpu", backend="numpy")
    want = _noise_injection(tf)  # the same draws on NumPy: the same run to rounding
    for got, expected in zip((losses, W, b), want):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_the_documented_differences_say_so():
    notes = tf.__doc__
    assert "ops that draw anew at every run" in notes and "Philox" in notes
    assert "same draw at every run" not in notes
