"""tf.losses with weights and reductions, L2 regularisation, gradients clipped by global
norm, a dropout keep_prob that defaults to 1 (placeholder_with_default), tf.group."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(14)
    X = rng.randn(24, 5).astype(np.float32)
    classes = rng.randint(0, 3, 24)
    onehot = np.eye(3, dtype=np.float32)[classes]
    binary = (rng.rand(24, 1) > 0.5).astype(np.float32)
    weights = np.where(np.arange(24) % 4 == 0, 0.0, 1.0 + 0.1 * np.arange(24)).astype(np.float32)

    x = tf.placeholder(tf.float32, [None, 5])
    keep = tf.placeholder_with_default(1.0, shape=[])
    W = tf.Variable(0.3 * rng.randn(5, 3).astype(np.float32), name="W")
    V = tf.Variable(0.3 * rng.randn(5, 1).astype(np.float32), name="V")
    logits = tf.matmul(tf.nn.dropout(x, keep_prob=keep), W)
    score = tf.matmul(x, V)
    probability = tf.sigmoid(score)
    L = tf.losses
    terms = [
        L.sparse_softmax_cross_entropy(classes, logits, weights=weights),
        L.softmax_cross_entropy(onehot, logits, label_smoothing=0.1),
        L.sigmoid_cross_entropy(binary, score, weights=2.0),
        L.mean_squared_error(binary, probability, weights=weights[:, None]),
        L.absolute_difference(binary, probability, reduction=L.Reduction.SUM),
        L.huber_loss(binary, score, delta=0.5, reduction=L.Reduction.MEAN),
        L.log_loss(binary, probability, reduction=L.Reduction.SUM_OVER_BATCH_SIZE),
        L.hinge_loss(binary, score),
    ]
    per_example = L.mean_squared_error(binary, probability, reduction=L.Reduction.NONE)
    regularizer = 0.01 * (tf.nn.l2_loss(W) + tf.nn.l2_loss(V))
    total = tf.add_n(terms) + regularizer

    grads = tf.gradients(total, [W, V])
    clipped, norm = tf.clip_by_global_norm(grads, 0.5)
    by_norm = tf.clip_by_norm(grads[0], 0.1, axes=[0])
    step = tf.group(tf.assign_sub(W, 0.5 * clipped[0]), tf.assign_sub(V, 0.5 * clipped[1]))

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        history = [sess.run([total, norm, step], {x: X})[:2] for _ in range(40)]
        values = sess.run(terms + [per_example, by_norm, W, V], {x: X})
    out = {"total": np.array([h[0] for h in history]), "norm": np.array([h[1] for h in history])}
    names = [f"term{i}" for i in range(len(terms))] + ["per_example", "by_norm", "W", "V"]
    out.update(zip(names, values))
    out["collected"] = np.array(len(tf.losses.get_losses()))
    return out
