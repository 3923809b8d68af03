"""TF1's wider op set as tutorials used it: a small classifier with selu, swish, softsign
and crelu layers trained by a weighted cross-entropy; the unary math (trigonometric,
hyperbolic, log1p, expm1, erf) and its gradients; integer divisions; and an evaluation with
top_k, in_top_k, boolean_mask, tf.where on its own and segment_sum; the sequence ops
gather_nd, scatter_nd, unsorted_segment_sum, sequence_mask and cumsum."""

import numpy as np


def _model(tf, x, rng):
    def dense(h, n_out, name):
        w = tf.Variable(rng.randn(int(h.shape[-1]), n_out).astype(np.float32) * 0.4,
                        name=name + "_w")
        return tf.matmul(h, w) + tf.Variable(np.zeros(n_out, np.float32), name=name + "_b")

    h = tf.nn.selu(dense(x, 6, "l1"))
    h = tf.nn.swish(dense(h, 5, "l2"))
    h = tf.nn.crelu(tf.nn.softsign(dense(h, 4, "l3")))
    return dense(h, 3, "out")


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.placeholder(tf.float32, [None, 3], name="y")
    logits = _model(tf, x, rng)
    loss = tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(
        targets=y, logits=logits, pos_weight=2.5))
    train = tf.train.GradientDescentOptimizer(0.2).minimize(loss)

    u = tf.placeholder(tf.float32, [None], name="u")
    unary = [tf.sin(u), tf.cos(u), tf.tan(u), tf.asin(u * 0.5), tf.acos(u * 0.5),
             tf.atan(u), tf.atan2(u, 1.0 - u), tf.sinh(u), tf.cosh(u), tf.asinh(u),
             tf.acosh(2.0 + u * u), tf.atanh(u * 0.5), tf.log1p(u * u), tf.expm1(u),
             tf.erf(u * 2.0), tf.math.erf(u * 0.2), tf.math.softsign(u)]
    math_grad = tf.gradients(tf.add_n([tf.reduce_sum(t) for t in unary]), u)[0]
    a = tf.constant([7, -7, 7, -7, 9])
    b = tf.constant([2, 2, -2, -2, 3])
    divisions = [tf.floordiv(a, b), tf.floor_div(a, b), tf.mod(a, b), tf.floormod(a, b),
                 tf.truncatediv(a, b), tf.truncatemod(a, b),
                 tf.floormod(tf.constant([5.5, -5.5]), 2.0), tf.math.floordiv(7.5, 2.0),
                 tf.div(a, b), tf.div(tf.constant([7.0, -7.0]), 2.0),
                 tf.div_no_nan(u, tf.floor(u * 2.0)), tf.math.divide_no_nan(3.0, 0.0),
                 tf.log_sigmoid(u * 40.0), tf.math.log_sigmoid(-u * 40.0),
                 tf.gradients(tf.reduce_sum(tf.div_no_nan(u * u, tf.floor(u * 2.0))
                                            + tf.log_sigmoid(u)), u)[0]]
    special = tf.constant([1.0, np.nan, np.inf, -np.inf])
    tests = [tf.is_nan(special), tf.is_inf(special), tf.is_finite(special),
             tf.math.is_nan(special)]

    probs = tf.nn.softmax(logits)
    top_values, top_indices = tf.nn.top_k(probs, k=2)
    labels = tf.argmax(y, axis=1)
    hit1 = tf.nn.in_top_k(probs, labels, 1)
    hit2 = tf.nn.in_top_k(predictions=probs, targets=labels, k=2)
    confident = tf.boolean_mask(probs, tf.reduce_max(probs, axis=1) > 0.4)
    positions = tf.where(probs > 0.4)
    per_class = tf.segment_sum(probs, tf.constant([0, 0, 1, 1, 1, 2, 4, 4]))
    masked_loss = tf.reduce_sum(tf.boolean_mask(logits, y > 0.5))
    mask_grad = tf.gradients(masked_loss, logits)[0]

    table = tf.reshape(tf.range(24.0), [4, 6]) * 0.1
    lengths = tf.constant([1, 3, 0, 4])
    mask = tf.sequence_mask(lengths, 5, dtype=tf.float32)
    sequences = [tf.gather_nd(table, [[1, 2], [3, 0], [1, 2]]), tf.gather_nd(table, [[2], [0]]),
                 tf.scatter_nd([[1], [3], [1]], tf.constant([1.0, 2.0, 3.0]), [5]),
                 tf.unsorted_segment_sum(table, [0, 2, 0, -1], 3),
                 tf.math.unsorted_segment_sum(tf.constant([1, 2, 3]), [1, 1, 0], 2),
                 mask, tf.sequence_mask(lengths), tf.cumsum(table, axis=1),
                 tf.cumsum(table, exclusive=True), tf.cumsum(table, axis=1, reverse=True),
                 tf.math.cumsum(table, axis=1, exclusive=True, reverse=True)]
    sequence_grad = tf.gradients(tf.reduce_sum(tf.cumsum(logits, axis=1, exclusive=True) *
                                               tf.gather_nd(logits, [[0], [2], [0]])[0]),
                                 logits)[0]

    data = rng.randn(8, 4).astype(np.float32)
    onehot = np.eye(3, dtype=np.float32)[rng.randint(0, 3, 8)]
    points = rng.uniform(-0.9, 0.9, 6).astype(np.float32)
    record = {}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(4):
            record[f"loss{step}"] = sess.run([loss, train], {x: data, y: onehot})[0]
        feed = {x: data, y: onehot, u: points}
        values = sess.run(unary + [math_grad] + divisions + tests + sequences
                          + [sequence_grad], feed)
        record.update({f"math{i}": v for i, v in enumerate(values)})
        (record["top_values"], record["top_indices"], record["hit1"], record["hit2"],
         record["confident"], record["positions"], record["per_class"],
         record["mask_grad"]) = sess.run([top_values, top_indices, hit1, hit2, confident,
                                         positions, per_class, mask_grad], feed)
    return record
