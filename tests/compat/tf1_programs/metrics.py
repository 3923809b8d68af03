"""tf.metrics as a TF 1.x evaluation loop uses them: a logistic-regression classifier trained
a few steps, then streamed over evaluation batches with accuracy, precision, recall, auc
(ROC, TF1's 200 thresholds; and PR), a weighted mean of the loss and mean_squared_error;
update ops fetched per batch, values read at the end, local_variables_initializer resetting
them for a second pass."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(21)
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    weight = tf.placeholder(tf.float32, [None], name="weight")
    w = tf.Variable((0.1 * rng.randn(3, 1)).astype(np.float32), name="w")
    b = tf.Variable(np.zeros(1, np.float32), name="b")
    logits = tf.squeeze(tf.matmul(x, w) + b, [1])
    labels = tf.cast(y, tf.float32)
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    prob = tf.sigmoid(logits)
    predicted = tf.cast(prob > 0.5, tf.int64)

    with tf.name_scope("eval"):
        metrics = {
            "accuracy": tf.metrics.accuracy(y, predicted),
            "precision": tf.metrics.precision(y, predicted),
            "recall": tf.metrics.recall(y, predicted, weights=weight),
            "auc": tf.metrics.auc(y, prob),
            "auc_pr": tf.metrics.auc(y, prob, curve="PR", num_thresholds=50),
            "mean_loss": tf.metrics.mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits),
                weights=weight),
            "mse": tf.metrics.mean_squared_error(labels, prob),
        }
    values = {k: v for k, (v, _) in metrics.items()}
    updates = {k: u for k, (_, u) in metrics.items()}

    data = rng.randn(40, 3).astype(np.float32)
    target = (data @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.randn(40) > 0).astype(np.int64)
    weights = rng.uniform(0.5, 1.5, 40).astype(np.float32)
    out = {"local": sorted(v.name.split(":")[0] for v in tf.local_variables()),
           "global": sorted(v.name.split(":")[0] for v in tf.global_variables())}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out["losses"] = [sess.run([train, loss], {x: data[:24], y: target[:24]})[1]
                         for _ in range(5)]
        for run, size in (("first", 10), ("second", 5)):
            sess.run(tf.local_variables_initializer())
            before = sess.run(values)
            streamed = [sess.run(updates, {x: data[i:i + size], y: target[i:i + size],
                                           weight: weights[i:i + size]})
                        for i in range(40 - 4 * size, 40, size)]
            after = sess.run(values)
            for k in metrics:
                out[f"{run}.{k}"] = [before[k]] + [s[k] for s in streamed] + [after[k]]
    return out
