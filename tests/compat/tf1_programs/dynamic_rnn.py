"""A sequence classifier as TF1 tutorials build it: padded sequences of different lengths
through tf.nn.dynamic_rnn with sequence_length (an LSTM, batch-major), the final state's h
into a softmax layer, a few steps of Adam; and a GRU encoder run time-major from a fed
initial state. Records the outputs (zeros past each length), the final states, the
gradients, the losses and the Variable names; the weights are set from NumPy by
assigning to the cells' Variables, found by name."""

import numpy as np


def set_weights(tf, sess, seed):
    rng = np.random.RandomState(seed)
    by_name = {v.name.split(":")[0]: v for v in tf.trainable_variables()}
    for name in sorted(by_name):
        shape = by_name[name].get_shape().as_list()
        by_name[name].load((rng.randn(*shape) * 0.4).astype(np.float32), sess)


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(5)
    batch, steps, depth, units, classes = 4, 6, 3, 8, 3
    x = tf.placeholder(tf.float32, [None, steps, depth], name="x")
    lengths = tf.placeholder(tf.int32, [None], name="lengths")
    labels = tf.placeholder(tf.int32, [None], name="labels")

    cell = tf.nn.rnn_cell.BasicLSTMCell(units)
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
    w = tf.get_variable("softmax_w", [units, classes])
    b = tf.get_variable("softmax_b", [classes], initializer=tf.zeros_initializer())
    logits = tf.matmul(state.h, w) + b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                         logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32),
                                               labels), tf.float32))
    variables = tf.trainable_variables()
    grads = tf.gradients(loss, variables)
    train = tf.train.AdamOptimizer(0.05).minimize(loss)

    x_tm = tf.placeholder(tf.float32, [steps, None, depth], name="x_time_major")
    h0 = tf.placeholder(tf.float32, [None, 5], name="h0")
    enc_out, enc_state = tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(5), x_tm, initial_state=h0,
                                           time_major=True, scope="encoder")
    enc_grads = tf.gradients(tf.reduce_sum(enc_out) + tf.reduce_sum(enc_state * enc_state),
                             [h0] + tf.trainable_variables("encoder"))

    data = rng.randn(batch, steps, depth).astype(np.float32)
    feed = {x: data, lengths: np.array([6, 2, 4, 1], np.int32),
            labels: np.array([0, 2, 1, 2], np.int32)}
    enc_feed = {x_tm: data.transpose(1, 0, 2), h0: rng.randn(batch, 5).astype(np.float32)}
    record = {"names": np.array([v.name.split(":")[0] for v in tf.trainable_variables()]),
              "output_shape": np.array(outputs.get_shape().as_list()[1:])}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        set_weights(tf, sess, seed=9)
        (record["outputs"], record["c"], record["h"], record["accuracy"]) = sess.run(
            [outputs, state.c, state.h, accuracy], feed)
        for v, g in zip(variables, sess.run(grads, feed)):
            record["grad_" + v.name.split(":")[0]] = g
        record["enc_out"], record["enc_state"] = sess.run([enc_out, enc_state], enc_feed)
        for k, g in enumerate(sess.run(enc_grads, enc_feed)):
            record[f"enc_grad{k}"] = g
        for step in range(4):
            record[f"loss{step}"] = sess.run([loss, train], feed)[0]
        record["kernel"] = sess.run(cell.weights[0])
    return record
