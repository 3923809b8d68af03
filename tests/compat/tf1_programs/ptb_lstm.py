"""The PTB language-model tutorial's shape, small: one-hot characters into a two-layer LSTM
stepped by hand in a Python loop under ``variable_scope("RNN")`` (``reuse_variables``
after the first step), the final state fed back as the next batch's initial state
(truncated backpropagation through time), gradients clipped by global norm, plain SGD;
a second model for evaluation built in ``variable_scope("Model", reuse=True)`` shares
every Variable. Records the losses, the carried states and the Variable names; the
weights are set from NumPy by assigning to the Variables, found by name."""

import numpy as np

VOCAB, STEPS, UNITS, BATCH = 7, 4, 5, 2


class Model:
    def __init__(self, tf, batch_size):
        self.inputs = tf.placeholder(tf.int32, [batch_size, STEPS])
        self.targets = tf.placeholder(tf.int32, [batch_size, STEPS])
        cells = [tf.nn.rnn_cell.BasicLSTMCell(UNITS, forget_bias=0.0,
                                              reuse=tf.get_variable_scope().reuse)
                 for _ in range(2)]
        cell = tf.nn.rnn_cell.MultiRNNCell(cells, state_is_tuple=True)
        self.initial_state = cell.zero_state(batch_size, tf.float32)
        inputs = tf.one_hot(self.inputs, VOCAB)  # char-rnn's inputs (PTB's embedding_lookup
        # gives TF an IndexedSlices gradient, whose global norm counts repeated ids apart)
        outputs, state = [], self.initial_state
        with tf.variable_scope("RNN"):
            for time_step in range(STEPS):
                if time_step > 0:
                    tf.get_variable_scope().reuse_variables()
                cell_output, state = cell(inputs[:, time_step, :], state)
                outputs.append(cell_output)
        output = tf.reshape(tf.concat(outputs, 1), [-1, UNITS])
        softmax_w = tf.get_variable("softmax_w", [UNITS, VOCAB], dtype=tf.float32)
        softmax_b = tf.get_variable("softmax_b", [VOCAB], dtype=tf.float32)
        logits = tf.matmul(output, softmax_w) + softmax_b
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.reshape(self.targets, [-1]), logits=logits)
        self.cost = tf.reduce_sum(loss) / batch_size
        self.final_state = state

    def feed_state(self, feed, state):
        for i, (c, h) in enumerate(self.initial_state):
            feed[c] = state[i].c
            feed[h] = state[i].h


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(29)
    initializer = tf.random_uniform_initializer(-0.1, 0.1)
    with tf.variable_scope("Model", reuse=None, initializer=initializer):
        m = Model(tf, BATCH)
        tvars = tf.trainable_variables()
        grads, norm = tf.clip_by_global_norm(tf.gradients(m.cost, tvars), 0.5)
        train_op = tf.train.GradientDescentOptimizer(1.0).apply_gradients(zip(grads, tvars))
    with tf.variable_scope("Model", reuse=True, initializer=initializer):
        mvalid = Model(tf, 1)
    data = rng.randint(0, VOCAB, size=(BATCH, 3 * STEPS + 1)).astype(np.int32)
    record = {"names": np.array([v.name.split(":")[0] for v in tf.global_variables()])}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        wrng = np.random.RandomState(31)
        by_name = {v.name.split(":")[0]: v for v in tvars}
        for name in sorted(by_name):
            shape = by_name[name].get_shape().as_list()
            by_name[name].load((wrng.randn(*shape) * 0.3).astype(np.float32), sess)
        state = sess.run(m.initial_state)
        for k in range(3):
            window = data[:, k * STEPS:(k + 1) * STEPS + 1]
            feed = {m.inputs: window[:, :-1], m.targets: window[:, 1:]}
            m.feed_state(feed, state)
            cost, state, record[f"norm{k}"], _ = sess.run(
                [m.cost, m.final_state, norm, train_op], feed)
            record[f"cost{k}"] = cost
            record[f"state{k}_c"], record[f"state{k}_h"] = state[1].c, state[1].h
        feed = {mvalid.inputs: data[:1, :STEPS], mvalid.targets: data[:1, 1:STEPS + 1]}
        record["valid_cost"] = sess.run(mvalid.cost, feed)
    return record
