"""A two-hidden-layer ReLU network trained with Adam on minibatches."""

import numpy as np


def layer(tf, inputs, w0, b0, activation=None):
    W = tf.Variable(w0)
    b = tf.Variable(b0)
    out = tf.matmul(inputs, W) + b
    return (out if activation is None else activation(out)), W


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(2)
    X = rng.randn(256, 20).astype(np.float32)
    labels = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 1).astype(np.int64)

    x = tf.placeholder(tf.float32, shape=[None, 20], name="x")
    y = tf.placeholder(tf.int64, shape=[None], name="y")
    sizes = [20, 32, 16, 3]
    h, weights = x, []
    for i in range(3):
        w0 = (rng.randn(sizes[i], sizes[i + 1]) * np.sqrt(2.0 / sizes[i])).astype(np.float32)
        b0 = np.full(sizes[i + 1], 0.1, np.float32)
        h, W = layer(tf, h, w0, b0, tf.nn.relu if i < 2 else None)
        weights.append(W)
    logits = h

    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train_op = tf.train.AdamOptimizer(learning_rate=0.01).minimize(loss)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.float32))

    losses = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(8):
            for start in range(0, 256, 32):
                feed = {x: X[start:start + 32], y: labels[start:start + 32]}
                _, current = sess.run([train_op, loss], feed_dict=feed)
                losses.append(current)
        grads = sess.run(tf.gradients(loss, weights), {x: X, y: labels})
        final = sess.run({"W": weights, "accuracy": accuracy}, {x: X, y: labels})
    out = {"loss": np.array(losses), "accuracy": np.array(final["accuracy"])}
    for i, (w, g) in enumerate(zip(final["W"], grads)):
        out[f"W{i}"], out[f"grad_W{i}"] = w, g
    return out
