"""A small CNN as a TF 1.x tutorial writes it, with the details that used to crash or differ:
weights from NumPy arrays by tf.get_variable(initializer=...), a reflect-padded input,
batch normalization and dropout switched by a bool placeholder, a reshape to
[tf.shape(x)[0], -1]-style dynamic batch, tf.range(tf.shape(x)[0]) to pick each example's
logit, a polynomial_decay(cycle=True) learning rate, tf.gradients with grad_ys and
stop_gradients, and integer means."""

import numpy as np

USES_TF_LAYERS = True


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    batch, size, channels, filters, classes = 4, 6, 2, 3, 3
    images = rng.randn(batch, size, size, channels).astype(np.float32)
    labels = np.array([0, 2, 1, 2], np.int32)

    x = tf.placeholder(tf.float32, [None, size, size, channels], name="x")
    y = tf.placeholder(tf.int32, [None], name="y")
    is_training = tf.placeholder(tf.bool, name="is_training")
    n = tf.shape(x)[0]

    with tf.variable_scope("conv"):
        kernel = tf.get_variable("kernel", initializer=(
            rng.randn(3, 3, channels, filters) * 0.3).astype(np.float32))
        bias = tf.get_variable("bias", initializer=np.zeros(filters, np.float32))
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    conv = tf.nn.conv2d(padded, kernel, strides=[1, 2, 2, 1], padding="VALID") + bias
    normed = tf.layers.batch_normalization(conv, training=is_training)
    hidden = tf.nn.relu(normed)
    dropped = tf.layers.dropout(hidden, rate=0.5, training=tf.logical_and(is_training, False))
    flat = tf.reshape(dropped, [n, 3 * 3 * filters])

    with tf.variable_scope("out"):
        w = tf.get_variable("w", initializer=(rng.randn(27, classes) * 0.2).astype(np.float32))
        b = tf.get_variable("b", initializer=[0.1, 0.0, -0.1])
    logits = tf.matmul(flat, w) + b + tf.zeros([n, classes])
    picked = tf.gather_nd(logits, tf.stack([tf.range(n), y], axis=1))
    loss = tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - picked)

    global_step = tf.Variable(0, trainable=False, name="global_step")
    rate = tf.train.polynomial_decay(0.5, global_step, 2, end_learning_rate=0.05, power=2.0,
                                     cycle=True)
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        train = tf.train.GradientDescentOptimizer(rate).minimize(loss, global_step=global_step)

    weights = rng.rand(batch, classes).astype(np.float32)
    weighted, = tf.gradients(logits, w, grad_ys=weights)
    stopped = tf.gradients(loss, [kernel, w], stop_gradients=[hidden])
    correct = tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.int32)
    int_means = [tf.reduce_mean(correct), tf.reduce_mean(tf.constant([1, 2, 4])),
                 tf.reduce_mean(tf.constant([-7, 1, 2]))]
    symmetric = tf.pad(w, [[1, 2], [0, 2]], mode="symmetric")
    symmetric_grad, = tf.gradients(tf.reduce_sum(symmetric * symmetric), w)

    record = {"shapes": [d if d is not None else -1 for t in (normed, dropped, flat)
                         for d in t.get_shape().as_list()]}
    feed = {x: images, y: labels, is_training: True}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        record["weighted"], record["stopped_w"] = sess.run([weighted, stopped[1]], feed)
        record["stopped_kernel_is_none"] = stopped[0] is None
        record["symmetric_grad"] = sess.run(symmetric_grad)
        for step in range(5):
            record[f"rate{step}"], record[f"loss{step}"], _ = sess.run([rate, loss, train], feed)
        record["eval_loss"], record["int_means"] = sess.run(
            [loss, int_means], {x: images[:3], y: labels[:3], is_training: False})
        record["range"] = sess.run(tf.range(n), {x: images[:2]})
        record["w"], record["kernel"], record["step"], record["b"] = sess.run(
            [w, kernel, global_step, b])  # b: float32, made from a list of Python floats
    return record
