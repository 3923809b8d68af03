"""A mixed bag of structure ops, as answers on Stack Overflow use them: concat, where, cast,
clip_by_value, stack/unstack, split, gather, one_hot, tile, pad, slicing, comparisons and
logic, pow, reduce_min/prod/logsumexp; values and gradients."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(7)
    v = tf.Variable(rng.randn(4, 3).astype(np.float32), name="v")
    ids = tf.placeholder(tf.int32, [None], name="ids")

    joined = tf.concat([v, tf.square(v)], axis=1)                      # (4, 6)
    positive = tf.where(joined > 0.0, joined, 0.1 * joined)            # leaky, by hand
    clipped = tf.clip_by_value(positive, -0.3, 1.5)
    counted = tf.reduce_sum(tf.cast(tf.logical_and(clipped > 0.0, clipped < 1.0), tf.float32))
    first, second = tf.split(clipped, 2, axis=1)
    stacked = tf.stack([first, second], axis=0)                        # (2, 4, 3)
    rows = tf.unstack(stacked, axis=1)                                 # 4 x (2, 3)
    picked = tf.gather(v, ids)                                         # (?, 3)
    hot = tf.one_hot(ids, depth=4)                                     # (?, 4)
    tiled = tf.tile(tf.expand_dims(v[:, 0], 1), [1, 2])                # (4, 2)
    padded = tf.pad(v[1:, ::-1], [[1, 0], [0, 2]])                     # (4, 5)
    powered = tf.pow(tf.abs(v) + 1.0, 1.5) + 2.0 ** tf.reduce_min(v, axis=0)
    loss = (tf.reduce_sum(rows[1] * rows[3]) + tf.reduce_sum(tf.matmul(hot, v) * picked)
            + tf.reduce_logsumexp(padded, axis=1)[2] + tf.reduce_prod(tiled[:2], axis=0)[1]
            + tf.reduce_mean(powered) + counted * 0.01 + tf.reduce_sum(stacked[:, 1:3, ::2]))

    grad = tf.gradients(loss, v)[0]
    feed = {ids: [2, 0, 2]}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run([loss, grad, clipped, counted, picked, hot, tiled, padded, powered,
                           tf.argmin(v), tf.argmax(v, axis=1), tf.shape(picked),
                           tf.reduce_any(v > 1.0, axis=0), tf.reduce_all(v < 2.0)], feed)
        for _ in range(30):
            sess.run(tf.assign_sub(v, 0.05 * grad), feed)
        trained = sess.run([loss, v], feed)
    names = ["loss", "grad", "clipped", "counted", "picked", "hot", "tiled", "padded",
             "powered", "argmin", "argmax", "shape", "any", "all"]
    out = dict(zip(names, values))
    out["trained_loss"], out["trained_v"] = trained
    return out
