"""TF1's recurrent API in ``xpnn.compat.v1`` (``tf.nn.rnn_cell``, ``dynamic_rnn``,
``static_rnn``, ``bidirectional_dynamic_rnn``) on every backend, JAX included: the loop's
values and gradients against the same cell unrolled in Python, ``sequence_length``'s zeros
and final states against runs on the cut sequences, dropout masks, Variable names in a
Saver's checkpoint, and the errors. (The TF 1.x programs rnn_cells, dynamic_rnn and
rnn_stacks hold the formulas and names to real TensorFlow.)"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
import xpnn.compat.v1 as tf
from tests.conftest import tolerance

RNG = np.random.RandomState(0)
DATA = RNG.randn(3, 4, 2).astype(np.float32)  # (batch, time, depth)
LENGTHS = np.array([4, 1, 3], np.int32)


def _cells():
    rnn = tf.nn.rnn_cell
    return {"lstm": rnn.BasicLSTMCell(3), "gru": rnn.GRUCell(3),
            "peephole": rnn.LSTMCell(3, use_peepholes=True, num_proj=2, cell_clip=0.5),
            "stack": rnn.MultiRNNCell([rnn.GRUCell(2), rnn.BasicRNNCell(2),
                                      rnn.BasicLSTMCell(3)])}


def _flat(state):
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in _flat(s)]
    return [state]


@pytest.mark.parametrize("kind", ["lstm", "gru", "peephole", "stack"])
def test_dynamic_rnn_equals_the_cell_unrolled_with_its_gradients(on, kind):
    """dynamic_rnn (one scan) against static_rnn (the cell called per step) on the same
    Variables: outputs, final state and the gradients of a loss of both; a training step
    on the scan's loss moves each Variable by its gradient."""
    if on.backend == "jax" and kind in ("gru", "peephole"):
        pytest.skip("JAX compiles each run here (seconds): lstm and stack (a GRU and an LSTM) "
                    "cover the scan's gradient there")
    cell = _cells()[kind]
    x = tf.placeholder(tf.float32, [None, 4, 2])
    lengths = tf.placeholder(tf.int32, [None])
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
    unrolled, unrolled_state = tf.nn.static_rnn(cell, tf.unstack(x, axis=1), dtype=tf.float32,
                                                sequence_length=lengths)
    unrolled = tf.stack(unrolled, axis=1)

    def loss_of(out, final):
        return tf.reduce_sum(tf.square(out - 0.3)) + tf.add_n(
            [tf.reduce_sum(t * t) for t in _flat(final)])

    variables = tf.trainable_variables()
    loss, loss_unrolled = loss_of(outputs, state), loss_of(unrolled, unrolled_state)
    grads = tf.gradients(loss, variables + [x])
    grads_unrolled = tf.gradients(loss_unrolled, variables + [x])
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    feed = {x: DATA, lengths: LENGTHS}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got, want, before = sess.run([[outputs, _flat(state), grads],
                                      [unrolled, _flat(unrolled_state), grads_unrolled],
                                      variables], feed)
        sess.run(train, feed)
        after = sess.run(variables)
    for g, w in zip(_flat(got), _flat(want)):
        np.testing.assert_allclose(g, w, **tolerance("float32"))
    for old, new, grad in zip(before, after, got[2]):  # the step took the scan's gradient
        np.testing.assert_allclose(new, old - np.float32(0.1) * grad, **tolerance("float32"))


def test_sequence_length_zeros_the_outputs_past_it_and_keeps_the_last_state(on):
    """Each example run alone on its first ``length`` steps gives the same outputs there
    and the same final state; past its length the outputs are zeros. Time-major too, and
    the backward direction of bidirectional_dynamic_rnn is the cell over the reversed cut
    sequence."""
    cell, bw_cell = tf.nn.rnn_cell.GRUCell(3), tf.nn.rnn_cell.GRUCell(2)
    x = tf.placeholder(tf.float32, [None, None, 2])
    lengths = tf.placeholder(tf.int32, [None])
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
    tm_out, tm_state = tf.nn.dynamic_rnn(cell, tf.transpose(x, [1, 0, 2]), lengths,
                                         dtype=tf.float32, time_major=True, scope="rnn_tm")
    (_, bw_out), (_, bw_state) = tf.nn.bidirectional_dynamic_rnn(
        cell, bw_cell, x, sequence_length=lengths, dtype=tf.float32)
    whole, whole_state = tf.nn.dynamic_rnn(bw_cell, x, dtype=tf.float32, scope="whole")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out, last, tm, tm_last, bw, bw_last = sess.run(
            [outputs, state, tm_out, tm_state, bw_out, bw_state], {x: DATA, lengths: LENGTHS})
        for b, n in enumerate(LENGTHS):
            alone, alone_last = sess.run([outputs, state], {x: DATA[b:b + 1, :n],
                                                            lengths: [n]})
            np.testing.assert_allclose(out[b, :n], alone[0], **tolerance("float32"))
            np.testing.assert_allclose(last[b], alone_last[0], **tolerance("float32"))
            assert not out[b, n:].any()
            rev, rev_last = sess.run([whole, whole_state], {x: DATA[b:b + 1, :n][:, ::-1]})
            np.testing.assert_allclose(bw[b, :n], rev[0, ::-1], **tolerance("float32"))
            np.testing.assert_allclose(bw_last[b], rev_last[0], **tolerance("float32"))
            assert not bw[b, n:].any()
    np.testing.assert_array_equal(tm, out.transpose(1, 0, 2))
    np.testing.assert_array_equal(tm_last, last)


def test_variable_names_are_tf1s_and_a_saver_keeps_them(on, tmp_path):
    x = tf.placeholder(tf.float32, [None, 4, 2])
    stack = tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.BasicLSTMCell(3),
                                         tf.nn.rnn_cell.GRUCell(2)])
    tf.nn.dynamic_rnn(stack, x, dtype=tf.float32)
    tf.nn.bidirectional_dynamic_rnn(tf.nn.rnn_cell.BasicRNNCell(2),
                                    tf.nn.rnn_cell.LSTMCell(2, num_proj=1), x,
                                    dtype=tf.float32)
    names = [v.name for v in tf.global_variables()]
    assert names == [
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
        "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel",
        "rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias",
        "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel",
        "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias",
        "bidirectional_rnn/fw/basic_rnn_cell/kernel",
        "bidirectional_rnn/fw/basic_rnn_cell/bias",
        "bidirectional_rnn/bw/lstm_cell/kernel", "bidirectional_rnn/bw/lstm_cell/bias",
        "bidirectional_rnn/bw/lstm_cell/projection/kernel"]
    shapes = [tuple(v.shape) for v in tf.global_variables()]
    assert shapes[:6] == [(5, 12), (12,), (5, 4), (4,), (5, 2), (2,)]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        gates_bias = sess.run(tf.global_variables()[3])
        np.testing.assert_array_equal(gates_bias, np.ones(4, np.float32))  # TF1's default
        path = tf.train.Saver().save(sess, str(tmp_path / "model"))
    assert sorted(xn.io.load_arrays(path + ".npz")) == sorted(names)


def test_cells_called_directly_share_their_variables(on):
    """A second call of a cell reuses its Variables; a second cell gets the next name;
    zero_state takes tf.shape(x)[0] for a batch known only at run time."""
    x = tf.placeholder(tf.float32, [None, 2])
    cell = tf.nn.rnn_cell.BasicLSTMCell(3)
    state = cell.zero_state(tf.shape(x)[0], tf.float32)
    h1, state = cell(x, state)
    h2, state = cell(x, state)
    other = tf.nn.rnn_cell.BasicLSTMCell(3)
    other(x, other.zero_state(2, tf.float32))
    assert [v.name for v in tf.global_variables()] == [
        "basic_lstm_cell/kernel", "basic_lstm_cell/bias", "basic_lstm_cell_1/kernel",
        "basic_lstm_cell_1/bias"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        kernel = sess.run(cell.weights[0])
        got1, got2, c = sess.run([h1, h2, state.c], {x: DATA[:, 0]})
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, c_ref = np.zeros((3, 3), np.float32), np.zeros((3, 3), np.float32)
    for _ in range(2):
        i, j, f, o = np.split(np.concatenate([DATA[:, 0], h], 1) @ kernel, 4, axis=1)
        c_ref = c_ref * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
        h = np.tanh(c_ref) * sigmoid(o)
        if _ == 0:
            np.testing.assert_allclose(got1, h, **tolerance("float32"))
    np.testing.assert_allclose(got2, h, **tolerance("float32"))
    np.testing.assert_allclose(c, c_ref, **tolerance("float32"))


def test_dropout_wrapper_drops_outputs_at_each_step(on):
    keep = tf.placeholder(tf.float32, [])
    cell = tf.nn.rnn_cell.GRUCell(4)
    dropped = tf.nn.rnn_cell.DropoutWrapper(cell, output_keep_prob=keep)
    assert (dropped.state_size, dropped.output_size) == (4, 4)
    x = tf.placeholder(tf.float32, [3, 4, 2])
    outputs, _ = tf.nn.dynamic_rnn(dropped, x, dtype=tf.float32)
    assert [v.name for v in tf.global_variables()] == [
        "rnn/gru_cell/gates/kernel", "rnn/gru_cell/gates/bias", "rnn/gru_cell/candidate/kernel",
        "rnn/gru_cell/candidate/bias"]  # a wrapper adds no scope, as TF1's
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        full = sess.run(outputs, {x: DATA, keep: 1.0})
        half = sess.run(outputs, {x: DATA, keep: 0.5})
    kept = half != 0
    assert 0 < kept.mean() < 1 and kept[:, 0].any() and (~kept[:, -1]).any()
    np.testing.assert_allclose(half[kept], 2 * full[kept], **tolerance("float32"))


def test_dropout_wrapper_on_an_lstms_state_drops_h_and_keeps_c(on):
    keep = tf.placeholder(tf.float32, [])
    cell = tf.nn.rnn_cell.BasicLSTMCell(50)
    dropped = tf.nn.rnn_cell.DropoutWrapper(cell, state_keep_prob=keep)
    x = tf.constant(DATA[:, 0])
    _, state = dropped(x, dropped.zero_state(3, tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        full, half = sess.run(state, {keep: 1.0}), sess.run(state, {keep: 0.5})
    np.testing.assert_array_equal(half.c, full.c)
    kept = half.h != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(half.h[kept], 2 * full.h[kept], **tolerance("float32"))


def test_bad_input_is_refused_with_tf1s_errors():
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, [None, 4, 2])
    with pytest.raises(ValueError, match="you must give a dtype"):
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(2), x)
    with pytest.raises(ValueError, match=r"shape \(batch, time, depth\)"):
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(2), x[:, 0], dtype=tf.float32)
    with pytest.raises(ValueError, match="depth known"):
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(2), tf.placeholder(tf.float32, [2, 3, None]),
                          dtype=tf.float32)
    with pytest.raises(ValueError, match="sequence_length must be a vector"):
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(2), x, sequence_length=[[1]], dtype=tf.float32)
    tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicLSTMCell(2), x, dtype=tf.float32)
    with pytest.raises(ValueError, match="rnn/basic_lstm_cell/kernel already exists"):
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicLSTMCell(2), x, dtype=tf.float32)  # as TF1
    with pytest.raises(ValueError, match="between 0 and 1"):
        tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.GRUCell(2), output_keep_prob=0.0)
    with pytest.raises(NotImplementedError, match="variational_recurrent"):
        tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.GRUCell(2), variational_recurrent=True)
    with pytest.raises(ValueError, match="at least one cell"):
        tf.nn.rnn_cell.MultiRNNCell([])
    with pytest.raises(NotImplementedError, match=r"tf.shape\(x\)\[k\]"):
        tf.nn.rnn_cell.GRUCell(2).zero_state(tf.reduce_sum(tf.constant([1, 2])), tf.float32)
    with pytest.raises(tf.unsupported.TF1NameError, match="one device"):
        tf.nn.rnn_cell.DeviceWrapper  # noqa: B018
    with pytest.raises(tf.unsupported.TF1NameError, match="bidirectional_dynamic_rnn"):
        tf.nn.static_bidirectional_rnn  # noqa: B018


def test_the_zero_state_is_fed_the_last_batchs_final_state(on):
    """Truncated backpropagation through time as TF1 programs write it: the final state
    of one run fed into the zero state of the next gives the run over both windows."""
    cell = tf.nn.rnn_cell.BasicLSTMCell(3)
    x = tf.placeholder(tf.float32, [3, 2, 2])
    initial = cell.zero_state(3, tf.float32)
    outputs, final = tf.nn.dynamic_rnn(cell, x, initial_state=initial)
    whole = tf.placeholder(tf.float32, [3, 4, 2])
    whole_out, whole_final = tf.nn.dynamic_rnn(cell, whole, initial_state=initial)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        state = sess.run(initial)
        assert not state.c.any() and not state.h.any()
        for t in (0, 2):
            out, state = sess.run([outputs, final], {x: DATA[:, t:t + 2], initial: state})
        want_out, want = sess.run([whole_out, whole_final], {whole: DATA})
        with pytest.raises(ValueError, match="a tuple of 2 tensors"):
            sess.run(final, {x: DATA[:, :2], initial: state.c})
    np.testing.assert_allclose(out, want_out[:, 2:], **tolerance("float32"))
    np.testing.assert_allclose(state.c, want.c, **tolerance("float32"))


def test_the_docstring_lists_every_name_of_rnn_cell():
    from tests.compat.test_compat_v1 import _listed

    assert _listed(tf.nn.rnn_cell.__doc__, "Its names:") == set(tf.nn.rnn_cell.__all__)
    assert {"dynamic_rnn", "static_rnn", "bidirectional_dynamic_rnn", "rnn_cell"} <= _listed(
        tf.nn.__doc__, "Its names:")
