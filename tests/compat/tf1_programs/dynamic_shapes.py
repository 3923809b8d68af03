"""A recurrence unrolled by hand over a batch of any size, as TF 1.x code wrote it before
dynamic_rnn: the batch size read with tf.shape(x)[0] and used in tf.reshape, tf.zeros (the
initial state), tf.fill, tf.tile and tf.range (per-example weights), a reshape to a shape
tensor built with tf.stack; trained with Adam on batches of 6 and evaluated on one of 2."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(11)
    steps, features, hidden = 3, 4, 5
    x = tf.placeholder(tf.float32, [None, steps, features], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    batch = tf.shape(x)[0]

    w = tf.Variable(rng.randn(features, hidden).astype(np.float32) * 0.5, name="w")
    u = tf.Variable(rng.randn(hidden, hidden).astype(np.float32) * 0.3, name="u")
    v = tf.get_variable("v", initializer=rng.randn(hidden, 1).astype(np.float32) * 0.5)

    flat = tf.reshape(x, [-1, features])
    projected = tf.reshape(tf.matmul(flat, w), [batch, steps, hidden])
    h = tf.zeros([batch, hidden])
    for t in [0, 1, 2]:
        h = tf.tanh(projected[:, t, :] + tf.matmul(h, u))

    bias = tf.fill([batch, 1], 0.1)
    weights = tf.reshape(tf.cast(tf.range(batch), tf.float32) + 1.0, tf.stack([batch, 1]))
    prediction = tf.matmul(h, v) + bias
    tiled = tf.tile(tf.reshape(v, [1, hidden]), [batch, 1])
    penalty = tf.reduce_mean(tf.reduce_sum(tiled * h, axis=1) ** 2)
    loss = tf.reduce_sum(weights * tf.square(prediction - y)) / tf.reduce_sum(
        weights) + 0.01 * penalty
    train = tf.train.AdamOptimizer(0.05).minimize(loss)

    data = rng.randn(6, steps, features).astype(np.float32)
    target = rng.randn(6, 1).astype(np.float32)
    record = {"shapes": [d if d is not None else -1 for t in (projected, h, weights, tiled)
                         for d in t.get_shape().as_list()]}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(4):
            record[f"loss{step}"], _ = sess.run([loss, train], {x: data, y: target})
        record["eval"], record["eval_weights"], record["eval_h"] = sess.run(
            [loss, weights, h], {x: data[:2], y: target[:2]})
        record["w"], record["u"], record["v"] = sess.run([w, u, v])
    return record
