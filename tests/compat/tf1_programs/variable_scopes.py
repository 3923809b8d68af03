"""Weight sharing with variable_scope and get_variable: a siamese pair of towers reusing one
set of weights (reuse=True, reuse_variables, AUTO_REUSE), initialised from NumPy through
constant_initializer, trained together."""

import numpy as np


def tower(tf, inputs, init):
    with tf.variable_scope("hidden"):
        w = tf.get_variable("w", [6, 4], initializer=tf.constant_initializer(init["w1"]))
        b = tf.get_variable("b", [4], initializer=tf.zeros_initializer())
        hidden = tf.nn.relu(tf.matmul(inputs, w) + b)
    with tf.variable_scope("out"):
        w = tf.get_variable("w", [4, 1], initializer=tf.constant_initializer(init["w2"]))
        return tf.matmul(hidden, w)


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(10)
    init = {"w1": rng.randn(6, 4).astype(np.float32), "w2": rng.randn(4, 1).astype(np.float32)}
    left_data = rng.randn(16, 6).astype(np.float32)
    right_data = rng.randn(16, 6).astype(np.float32)
    same = (np.abs(left_data - right_data).sum(axis=1) < 6.5).astype(np.float32)[:, None]

    left = tf.placeholder(tf.float32, [None, 6])
    right = tf.placeholder(tf.float32, [None, 6])
    with tf.variable_scope("siamese") as scope:
        out_left = tower(tf, left, init)
        scope.reuse_variables()
        out_right = tower(tf, right, init)
    with tf.variable_scope("siamese", reuse=True):
        shared = tf.get_variable("hidden/w")
    with tf.variable_scope("head", reuse=tf.AUTO_REUSE):
        scale = tf.get_variable("scale", [], initializer=tf.constant_initializer(0.5))
        again = tf.get_variable("scale")
    distance = tf.abs(out_left - out_right) * scale
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=same,
                                                                  logits=1.0 - distance))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)

    names = [v.name.split(":")[0] for v in tf.trainable_variables()]
    feed = {left: left_data, right: right_data}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        losses = [sess.run([train, loss], feed)[1] for _ in range(40)]
        trained = sess.run(tf.trainable_variables())
    out = {"loss": np.array(losses), "names": np.array(names),
           "shared_is_same": np.array(shared is tf.trainable_variables()[0] and again is scale)}
    for name, value in zip(names, trained):
        out[name] = value
    return out
