"""Deeper recurrent models as TF1 tutorials wrote them: a MultiRNNCell of two LSTMs (the
first behind a DropoutWrapper whose keep probability is fed) through tf.nn.dynamic_rnn; a
GRU unrolled by tf.nn.static_rnn over tf.unstack'ed steps with sequence_length; a
tf.nn.bidirectional_dynamic_rnn (a peephole LSTM forward, a GRU backward) over padded
sequences, its two outputs concatenated; all trained together a few steps with
RMSProp. Records outputs, final states, gradients, losses and Variable names; the
weights are set from NumPy by assigning to the cells' Variables, found by name."""

import numpy as np


def flat(state):
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in flat(s)]
    return [state]


def set_weights(tf, sess, seed):
    rng = np.random.RandomState(seed)
    by_name = {v.name.split(":")[0]: v for v in tf.trainable_variables()}
    for name in sorted(by_name):
        shape = by_name[name].get_shape().as_list()
        by_name[name].load((rng.randn(*shape) * 0.4).astype(np.float32), sess)


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(17)
    batch, steps, depth = 3, 5, 4
    x = tf.placeholder(tf.float32, [None, steps, depth], name="x")
    lengths = tf.placeholder(tf.int32, [None], name="lengths")
    keep_prob = tf.placeholder(tf.float32, [], name="keep_prob")
    rnn = tf.nn.rnn_cell

    stack = rnn.MultiRNNCell([
        rnn.DropoutWrapper(rnn.BasicLSTMCell(6), output_keep_prob=keep_prob),
        rnn.BasicLSTMCell(4)])
    deep_out, deep_state = tf.nn.dynamic_rnn(stack, x, dtype=tf.float32, scope="deep")

    gru = rnn.GRUCell(3)
    static_out, static_state = tf.nn.static_rnn(gru, tf.unstack(x, axis=1), dtype=tf.float32,
                                                sequence_length=lengths)

    (fw_out, bw_out), (fw_state, bw_state) = tf.nn.bidirectional_dynamic_rnn(
        rnn.LSTMCell(3, use_peepholes=True), rnn.GRUCell(2), x, sequence_length=lengths,
        dtype=tf.float32)
    both = tf.concat([fw_out, bw_out], axis=2)

    loss = (tf.reduce_mean(tf.square(deep_out - 0.1)) + tf.reduce_sum(flat(deep_state)[-1])
            + tf.reduce_mean(tf.square(tf.stack(static_out, axis=1))) * 2.0
            + tf.reduce_sum(static_state) * 0.1
            + tf.reduce_mean(tf.square(both)) + tf.reduce_sum(bw_state) * 0.1
            + tf.reduce_sum(fw_state.h) * 0.1)
    variables = tf.trainable_variables()
    grads = tf.gradients(loss, variables)
    train = tf.train.RMSPropOptimizer(0.01).minimize(loss)

    feed = {x: rng.randn(batch, steps, depth).astype(np.float32),
            lengths: np.array([5, 3, 1], np.int32), keep_prob: 1.0}
    fetches = {"deep_out": deep_out, "static_out": tf.stack(static_out, axis=1),
               "static_state": static_state, "both": both, "bw_state": bw_state,
               "fw_c": fw_state.c, "fw_h": fw_state.h}
    for k, t in enumerate(flat(deep_state)):
        fetches[f"deep_state{k}"] = t
    record = {"names": np.array([v.name.split(":")[0] for v in variables]),
              "deep_state_size": str(stack.state_size)}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        set_weights(tf, sess, seed=23)
        record.update(sess.run(fetches, feed))
        for v, g in zip(variables, sess.run(grads, feed)):
            record["grad_" + v.name.split(":")[0]] = g
        for step in range(3):
            record[f"loss{step}"] = sess.run([loss, train], feed)[0]
        record["loss3"] = sess.run(loss, feed)
    return record
