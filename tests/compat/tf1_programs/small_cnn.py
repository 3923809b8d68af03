"""A small CNN in the deep-MNIST tutorial's style: conv2d/relu/max_pool, conv2d/avg_pool,
a dense layer on the reshaped maps, dropout with a keep_prob placeholder, Adam."""

import numpy as np


def weight(tf, rng, shape):
    return tf.Variable((0.1 * rng.randn(*shape)).astype(np.float32))


def bias(tf, shape):
    return tf.Variable(tf.constant(0.1, shape=shape))


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(8)
    images = rng.rand(32, 10, 10, 1).astype(np.float32)
    labels = (images[:, :5].mean(axis=(1, 2, 3)) > images[:, 5:].mean(axis=(1, 2, 3)))
    labels = np.eye(2, dtype=np.float32)[labels.astype(int)]

    x = tf.placeholder(tf.float32, [None, 10, 10, 1])
    y_ = tf.placeholder(tf.float32, [None, 2])
    keep_prob = tf.placeholder(tf.float32)
    W_conv1, b_conv1 = weight(tf, rng, [3, 3, 1, 4]), bias(tf, [4])
    h_conv1 = tf.nn.relu(tf.nn.conv2d(x, W_conv1, strides=[1, 1, 1, 1], padding="SAME") + b_conv1)
    h_pool1 = tf.nn.max_pool(h_conv1, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    W_conv2, b_conv2 = weight(tf, rng, [3, 3, 4, 8]), bias(tf, [8])
    h_conv2 = tf.nn.relu(tf.nn.bias_add(
        tf.nn.conv2d(h_pool1, W_conv2, strides=[1, 2, 2, 1], padding="VALID"), b_conv2))
    h_pool2 = tf.nn.avg_pool(h_conv2, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="SAME")
    flat = tf.reshape(h_pool2, [-1, 2 * 2 * 8])
    W_fc, b_fc = weight(tf, rng, [32, 2]), bias(tf, [2])
    y_conv = tf.matmul(tf.nn.dropout(flat, keep_prob), W_fc) + b_fc

    cross_entropy = tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=y_conv))
    train_step = tf.train.AdamOptimizer(1e-2).minimize(cross_entropy)
    correct = tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    variables = [W_conv1, b_conv1, W_conv2, b_conv2, W_fc, b_fc]

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        losses = []
        for i in range(25):
            batch = slice((i * 8) % 32, (i * 8) % 32 + 8)
            feed = {x: images[batch], y_: labels[batch], keep_prob: 1.0}
            losses.append(sess.run([train_step, cross_entropy], feed)[1])
        full = {x: images, y_: labels, keep_prob: 1.0}
        grads = sess.run(tf.gradients(cross_entropy, variables), full)
        values = sess.run(variables + [accuracy, h_pool1], full)
    out = {"loss": np.array(losses), "accuracy": values[-2], "pool1": values[-1]}
    for i, (w, g) in enumerate(zip(values[:-2], grads)):
        out[f"var{i}"], out[f"grad{i}"] = w, g
    return out
