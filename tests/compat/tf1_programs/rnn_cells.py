"""Recurrent cells stepped by hand, as tutorials first show them: each tf.nn.rnn_cell cell
called on an input and its zero state, then again on its new state (the same Variables),
with the sizes, the Variable names, the outputs and states, their gradients and a few
steps of training. The weights are set from NumPy by assigning to the cells' Variables,
found by name."""

import numpy as np


def flat(state):
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in flat(s)]
    return [state]


def set_weights(tf, sess, seed):
    """Every trainable Variable set from NumPy, drawn in the order of their names."""
    rng = np.random.RandomState(seed)
    by_name = {v.name.split(":")[0]: v for v in tf.trainable_variables()}
    for name in sorted(by_name):
        v = by_name[name]
        shape = v.get_shape().as_list()
        v.load((rng.randn(*shape) * 0.4).astype(np.float32), sess)


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    batch, depth = 3, 4
    x1 = tf.placeholder(tf.float32, [None, depth], name="x1")
    x2 = tf.placeholder(tf.float32, [None, depth], name="x2")
    keep = tf.placeholder(tf.float32, [], name="keep")
    rnn = tf.nn.rnn_cell
    cells = {
        "rnn": rnn.BasicRNNCell(5),
        "lstm": rnn.BasicLSTMCell(5),
        "flat_lstm": rnn.BasicLSTMCell(5, forget_bias=0.5, state_is_tuple=False,
                                       name="flat_lstm"),
        "relu_lstm": rnn.BasicLSTMCell(3, activation=tf.nn.relu),
        "peephole": rnn.LSTMCell(5, use_peepholes=True, cell_clip=0.9, num_proj=3,
                                 proj_clip=0.7),
        "lstm_plain": rnn.LSTMCell(4),
        "gru": rnn.GRUCell(5),
        "stack": rnn.MultiRNNCell([rnn.GRUCell(4), rnn.BasicLSTMCell(3)]),
        "dropped": rnn.DropoutWrapper(rnn.GRUCell(2), input_keep_prob=keep,
                                      output_keep_prob=keep),
    }
    record, results = {}, {}
    for key, cell in cells.items():
        batch_size = tf.shape(x1)[0] if key in ("gru", "stack") else batch
        state = cell.zero_state(batch_size, tf.float32)
        out1, state1 = cell(x1, state)
        out2, state2 = cell(x2, state1)
        results[key] = [out1, out2] + flat(state2)
        record[f"{key}_sizes"] = f"{cell.state_size} {cell.output_size}"

    loss = tf.add_n([tf.reduce_sum(tf.square(t)) for ts in results.values() for t in ts])
    variables = tf.trainable_variables()
    record["names"] = np.array([v.name.split(":")[0] for v in variables])
    grads = tf.gradients(loss, variables)
    train = tf.train.GradientDescentOptimizer(0.05).minimize(loss)

    feed = {x1: rng.randn(batch, depth).astype(np.float32),
            x2: rng.randn(batch, depth).astype(np.float32), keep: 1.0}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        set_weights(tf, sess, seed=11)
        values = sess.run(results, feed)
        for key, ts in values.items():
            for k, t in enumerate(ts):
                record[f"{key}_{k}"] = t
        for v, g in zip(variables, sess.run(grads, feed)):
            record["grad_" + v.name.split(":")[0]] = g
        for step in range(3):
            record[f"loss{step}"] = sess.run([loss, train], feed)[0]
        record["loss3"] = sess.run(loss, feed)
    return record
