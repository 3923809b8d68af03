"""Logistic regression on two Gaussian blobs: sigmoid cross-entropy with logits."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(5)
    n = 200
    features = np.concatenate([rng.randn(n // 2, 2) + [2, 2], rng.randn(n // 2, 2) - [1, 1]])
    features = features.astype(np.float32)
    targets = np.concatenate([np.ones(n // 2), np.zeros(n // 2)]).astype(np.float32)[:, None]

    x = tf.placeholder(tf.float32, shape=(None, 2))
    y = tf.placeholder(tf.float32, shape=(None, 1))
    w = tf.Variable(tf.zeros((2, 1)), name="weights")
    b = tf.Variable(0.0, name="bias")
    logits = tf.matmul(x, w) + b
    probabilities = tf.sigmoid(logits)

    per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
    loss = tf.reduce_mean(per_example)
    train = tf.train.GradientDescentOptimizer(learning_rate=0.1).minimize(loss)
    predicted = tf.cast(tf.greater(probabilities, 0.5), tf.float32)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, y), tf.float32))

    losses = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(300):
            _, current = sess.run([train, loss], feed_dict={x: features, y: targets})
            losses.append(current)
        per, acc, weights, bias = sess.run([per_example, accuracy, w, b],
                                           feed_dict={x: features, y: targets})
    return {"loss": np.array(losses), "per_example": per, "accuracy": np.array(acc),
            "weights": weights, "bias": np.array(bias)}
