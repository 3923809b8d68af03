"""Sparse updates: the gradient of gather / embedding_lookup is TF1's IndexedSlices, and
Momentum and RMSProp update only the rows a batch looked up (slots too), on every backend;
xpnn's own optimizers do with ``sparse=True``. tests/compat/tf1_programs/sparse_embeddings.py
holds a whole training run to real TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
import xpnn.compat.v1 as tf
from tests.conftest import tolerance

TABLE = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0


def _lookup_loss(table, ids):
    rows = tf.nn.embedding_lookup(table, ids)
    return tf.reduce_sum(rows * rows * np.float32(0.5))  # d/d row = the row


def test_gather_gradient_is_indexed_slices(on):
    table = tf.Variable(TABLE)
    grad, = tf.gradients(_lookup_loss(table, [2, 0, 2]), [table])
    assert type(grad).__name__ == "IndexedSlices" and grad.shape == (4, 3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value = sess.run(grad)
        dense = sess.run(tf.convert_to_tensor(grad))
    np.testing.assert_array_equal(value.indices, [2, 0, 2])
    np.testing.assert_allclose(value.values, TABLE[[2, 0, 2]])
    np.testing.assert_array_equal(value.dense_shape, [4, 3])
    want = np.zeros_like(TABLE)
    np.add.at(want, [2, 0, 2], TABLE[[2, 0, 2]])
    np.testing.assert_allclose(dense, want, **tolerance("float32"))


def test_two_lookups_concatenate_and_a_dense_use_makes_it_dense(on):
    table = tf.Variable(TABLE)
    loss = _lookup_loss(table, [1]) + _lookup_loss(table, [3, 1])
    both, = tf.gradients(loss, [table])
    dense, = tf.gradients(loss + tf.reduce_sum(table), [table])
    assert type(both).__name__ == "IndexedSlices"
    assert type(dense).__name__ != "IndexedSlices"
    with tf.Session() as sess:
        value = sess.run(both)
    assert sorted(value.indices.tolist()) == [1, 1, 3]
    assert value.values.shape == (3, 3)


def test_global_norm_counts_repeated_rows_apart(on):
    """TF1's global norm of an IndexedSlices is that of its values, repeated indices
    apart, and clipping keeps it an IndexedSlices."""
    table = tf.Variable(TABLE)
    grad, = tf.gradients(_lookup_loss(table, [2, 2]), [table])
    clipped, norm = tf.clip_by_global_norm([grad], 0.5)
    assert type(clipped[0]).__name__ == "IndexedSlices"
    with tf.Session() as sess:
        got_norm, got = sess.run([norm, clipped[0]])
    want_norm = np.sqrt(2.0 * np.sum(TABLE[2].astype(np.float64) ** 2))
    np.testing.assert_allclose(got_norm, want_norm, **tolerance("float32"))
    np.testing.assert_allclose(got.values, TABLE[[2, 2]] * (0.5 / want_norm),
                               **tolerance("float32"))


# Each TF1 rule for one row (numbers as float64), and how its slots start.
RULES = {
    "momentum": (lambda: tf.train.MomentumOptimizer(0.5, 0.9), [0.0],
                 lambda w, g, v: (w - 0.5 * (0.9 * v + g), 0.9 * v + g)),
    "nesterov": (lambda: tf.train.MomentumOptimizer(0.5, 0.9, use_nesterov=True), [0.0],
                 lambda w, g, v: (w - 0.5 * (g + 0.9 * (0.9 * v + g)), 0.9 * v + g)),
    "rmsprop": (lambda: tf.train.RMSPropOptimizer(0.1, decay=0.8, momentum=0.5), [1.0, 0.0],
                lambda w, g, ms, mom: _rmsprop(w, g, ms, mom)),
}


def _rmsprop(w, g, ms, mom):
    ms = ms + (g * g - ms) * 0.2
    mom = 0.5 * mom + 0.1 * g / np.sqrt(ms + 1e-10)
    return w - mom, ms, mom


def _sparse_reference(rule, starts, batches):
    """TF1's sparse update: repeated ids summed, only the rows looked up change."""
    w = TABLE.astype(np.float64)
    slots = [np.full_like(w, s) for s in starts]
    for ids in batches:
        g = np.zeros_like(w)
        np.add.at(g, ids, w[ids])
        for row in sorted(set(ids)):
            w[row], *new = rule(w[row], g[row], *(s[row] for s in slots))
            for s, value in zip(slots, new):
                s[row] = value
    return w


@pytest.mark.parametrize("kind", sorted(RULES))
def test_sparse_update_keeps_rows_not_looked_up(on, kind):
    """Rows 0 and 2 (looked up first) sit out the next two steps: they keep their value and
    their momentum, as in TF1 (a dense update decays them); row 3 is never touched."""
    make, starts, rule = RULES[kind]
    table = tf.Variable(TABLE)
    ids = tf.placeholder(tf.int32, [None])
    step = make().minimize(_lookup_loss(table, ids))
    batches = [[0, 2, 0], [1], [1, 1]]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for batch in batches:
            sess.run(step, {ids: batch})
        got = sess.run(table)
    np.testing.assert_allclose(got, _sparse_reference(rule, starts, batches),
                               **tolerance("float32"))
    np.testing.assert_array_equal(got[3], TABLE[3])


@pytest.mark.parametrize("dense_shape", [[4, 3], None])
def test_indexed_slices_made_by_hand_update_their_rows(on, dense_shape):
    table = tf.Variable(TABLE)
    values = tf.placeholder(tf.float32, [None, 3])
    indices = tf.placeholder(tf.int32, [None])
    grad = tf.IndexedSlices(values, indices, dense_shape=dense_shape)
    step = tf.train.MomentumOptimizer(0.5, 0.9).apply_gradients([(grad, table)])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {values: np.ones((2, 3)), indices: [3, 3]})
        fetched = sess.run(grad, {values: np.ones((1, 3)), indices: [0]})
        sess.run(step, {values: np.ones((1, 3)), indices: [0]})
        got = sess.run(table)
    assert (fetched.dense_shape is None) == (dense_shape is None)
    want = TABLE.copy()
    want[3] -= 0.5 * 2.0  # the two ids summed; then it sits out, its momentum kept
    want[0] -= 0.5
    np.testing.assert_allclose(got, want, **tolerance("float32"))


def test_indexed_slices_of_unknown_dense_shape_says_what_to_give():
    tf.reset_default_graph()
    grad = tf.IndexedSlices(tf.constant(np.ones((1, 2), np.float32)), tf.constant([0]),
                            dense_shape=tf.placeholder(tf.int32, [2]))
    with pytest.raises(ValueError, match="dense_shape of Python ints"):
        tf.convert_to_tensor(grad)


@pytest.mark.parametrize("sparse", [False, True])
def test_xpnn_momentum_sparse_option(dev, sparse):
    """xn.train's own Momentum: ``sparse=True`` is TF1's sparse rule, the default the dense
    one (a row not looked up keeps decaying its velocity into the weights)."""
    with xn.Graph().as_default():
        table = xn.Variable(TABLE)
        ids = xn.placeholder("int32", (None,))
        loss = xn.reduce_sum(xn.square(xn.embedding_lookup(table, ids))) * 0.5
        step = xn.train.MomentumOptimizer(0.5, 0.9, sparse=sparse).minimize(loss)
        sess = xn.Session(device=dev)
        for batch in ([0, 2, 0], [1]):
            sess.run(step, {ids: np.array(batch, np.int32)})
        got = np.asarray(sess.run(table, to_numpy=True))
    moved = not np.allclose(got[[0, 2]], TABLE[[0, 2]] - 0.5 * np.array([[2.0], [1.0]])
                            * TABLE[[0, 2]], **tolerance("float32"))
    assert moved != sparse
