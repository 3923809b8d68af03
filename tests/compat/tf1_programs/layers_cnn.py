"""The TF 1.x "Layers" tutorial's CNN in small: tf.layers.conv2d -> max_pooling2d ->
conv2d -> average_pooling2d -> flatten -> dense -> dropout (a training placeholder) ->
dense, an L2 kernel_regularizer, a Dense layer object called twice (shared weights), Adam.
Starting kernels come from NumPy through constant_initializer; biases take the default
(zeros)."""

import numpy as np

USES_TF_LAYERS = True  # real TF 2.16+ has tf.layers only with tf_keras (TF_USE_LEGACY_KERAS)


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(14)
    images = rng.rand(24, 8, 8, 1).astype(np.float32)
    labels = (images[:, :4].mean(axis=(1, 2, 3)) > images[:, 4:].mean(axis=(1, 2, 3)))
    labels = labels.astype(np.int32)

    def init(*shape):
        return tf.constant_initializer((0.3 * rng.randn(*shape)).astype(np.float32))

    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    y = tf.placeholder(tf.int32, [None])
    training = tf.placeholder_with_default(False, [])
    conv1 = tf.layers.conv2d(x, filters=4, kernel_size=[3, 3], padding="same",
                             activation=tf.nn.relu, kernel_initializer=init(3, 3, 1, 4))
    pool1 = tf.layers.max_pooling2d(conv1, pool_size=[2, 2], strides=2)
    conv2 = tf.layers.conv2d(pool1, 6, 2, strides=(1, 1), padding="VALID",
                             activation=tf.nn.relu, kernel_initializer=init(2, 2, 4, 6),
                             kernel_regularizer=lambda w: 0.01 * tf.nn.l2_loss(w))
    pool2 = tf.layers.average_pooling2d(conv2, pool_size=2, strides=1, padding="same")
    flat = tf.layers.flatten(pool2)
    hidden = tf.layers.dense(flat, 16, activation=tf.nn.relu, kernel_initializer=init(54, 16),
                             name="hidden")
    dropped = tf.layers.dropout(hidden, rate=0.4, training=training)
    head = tf.layers.Dense(2, kernel_initializer=init(16, 2), name="logits")
    logits = head(dropped)
    again = head.apply(hidden)  # the same Variables

    cross_entropy = tf.losses.sparse_softmax_cross_entropy(labels=y, logits=logits)
    loss = cross_entropy + tf.losses.get_regularization_loss()
    train = tf.train.AdamOptimizer(0.01).minimize(loss)
    variables = tf.trainable_variables()
    names = [v.name.split(":")[0] for v in variables]

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        losses = []
        for i in range(12):
            batch = slice((i * 8) % 24, (i * 8) % 24 + 8)
            losses.append(sess.run([train, loss], {x: images[batch], y: labels[batch]})[1])
        full = {x: images, y: labels}
        grads = sess.run(tf.gradients(loss, variables), full)
        values = sess.run(variables + [logits, again, pool1, flat], full)
    out = {"loss": np.array(losses), "names": np.array(names), "logits": values[-4],
           "again": values[-3], "pool1": values[-2], "flat": values[-1],
           "shapes": np.array([list(conv1.shape[1:]), list(conv2.shape[1:])])}
    for i, (w, g) in enumerate(zip(values[:len(variables)], grads)):
        out[f"var{i}"], out[f"grad{i}"] = w, g
    return out
