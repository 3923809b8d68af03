"""tf.layers.batch_normalization as TF 1.x programs use it: a bool placeholder for
``training``, the moving averages' updates from tf.GraphKeys.UPDATE_OPS run with the step
(control_dependencies), inference on the moving statistics. After a conv2d (4-D: TF1's fused
kernel, whose moving variance takes the batch variance with Bessel's correction) and after a
dense layer (2-D: without), reused in a reopened variable scope."""

import numpy as np

USES_TF_LAYERS = True  # real TF 2.16+ has tf.layers only with tf_keras (TF_USE_LEGACY_KERAS)


def net(tf, x, training, init):
    conv = tf.layers.conv2d(x, 3, 3, padding="same", use_bias=False,
                            kernel_initializer=tf.constant_initializer(init["conv"]))
    normed = tf.nn.relu(tf.layers.batch_normalization(conv, momentum=0.9, training=training))
    flat = tf.layers.flatten(normed)
    # No bias before a batch norm: its gradient is zero up to rounding, which Adam would
    # scale up to whole steps of noise (different noise in TF and xpnn).
    hidden = tf.layers.dense(flat, 5, use_bias=False,
                             kernel_initializer=tf.constant_initializer(init["dense"]))
    hidden = tf.nn.relu(tf.layers.batch_normalization(hidden, training=training, momentum=0.8,
                                                      epsilon=1e-2, name="bn_dense"))
    return tf.layers.dense(hidden, 1, kernel_initializer=tf.constant_initializer(init["out"]))


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(15)
    init = {"conv": (0.4 * rng.randn(3, 3, 2, 3)).astype(np.float32),
            "dense": (0.2 * rng.randn(75, 5)).astype(np.float32),
            "out": (0.5 * rng.randn(5, 1)).astype(np.float32)}
    images = (1.5 + 2.0 * rng.randn(20, 5, 5, 2)).astype(np.float32)
    targets = images.mean(axis=(1, 2, 3))[:, None].astype(np.float32)

    x = tf.placeholder(tf.float32, [None, 5, 5, 2])
    t = tf.placeholder(tf.float32, [None, 1])
    training = tf.placeholder(tf.bool, [])
    with tf.variable_scope("model"):
        prediction = net(tf, x, training, init)
    with tf.variable_scope("model", reuse=True):
        inference = net(tf, x, False, init)
    loss = tf.reduce_mean(tf.square(prediction - t))
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        train = tf.train.AdamOptimizer(0.02).minimize(loss)
    moving = [v for v in tf.global_variables() if "moving" in v.name]
    names = [v.name.split(":")[0] for v in tf.trainable_variables() + moving]

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        losses = []
        for i in range(10):
            batch = slice((i * 5) % 20, (i * 5) % 20 + 10)
            feed = {x: images[batch], t: targets[batch], training: True}
            losses.append(sess.run([train, loss], feed)[1])
        stats = sess.run(moving)
        fed_false = sess.run(prediction, {x: images, training: False})
        inferred = sess.run(inference, {x: images})
        eval_loss = sess.run(loss, {x: images, t: targets, training: False})
        stats_after_eval = sess.run(moving)
    out = {"loss": np.array(losses), "names": np.array(names), "fed_false": fed_false,
           "inferred": inferred, "eval_loss": eval_loss,
           "updates": np.array(len(update_ops))}
    for i, (s, s2) in enumerate(zip(stats, stats_after_eval)):
        out[f"moving{i}"], out[f"moving{i}_after_eval"] = s, s2
    return out
