"""Control flow as TF 1.x tutorials wrote it: tf.cond on a fed flag and on a computed value,
a tf.while_loop counting and one running a recurrence with a TensorArray, tf.scan and
tf.foldl, tf.map_fn; gradients through each, and a few steps of training a recurrence
unrolled by tf.while_loop."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(7)
    steps, batch, units = 5, 3, 4
    x = tf.placeholder(tf.float32, [steps, batch, units], name="x")
    flag = tf.placeholder(tf.bool, [], name="flag")
    w = tf.Variable(rng.randn(units, units).astype(np.float32) * 0.5, name="w")
    b = tf.Variable(np.zeros(units, np.float32), name="b")

    picked = tf.cond(flag, lambda: tf.reduce_sum(w * w), lambda: tf.reduce_sum(b) - 1.0)
    larger = tf.cond(tf.reduce_sum(w) > 0.0, lambda: w * 2.0, lambda: -w)

    i0 = tf.constant(0)
    count = tf.while_loop(lambda i: i < 7, lambda i: i + 2, [i0])

    h0 = tf.zeros([batch, units])
    outputs = tf.TensorArray(tf.float32, size=steps, element_shape=[batch, units])

    def body(t, h, outputs):
        h = tf.tanh(tf.matmul(x[t], w) + tf.matmul(h, w) * 0.5 + b)
        return t + 1, h, outputs.write(t, h)

    # maximum_iterations: xpnn on JAX compiles a differentiated loop as a lax.scan over them
    _, h_last, outputs = tf.while_loop(lambda t, h, o: t < steps, body, (i0, h0, outputs),
                                       maximum_iterations=steps)
    stacked = outputs.stack()
    loss = tf.reduce_mean(tf.square(stacked - 0.25)) + tf.reduce_sum(h_last)

    sums = tf.scan(lambda acc, row: acc + tf.reduce_sum(row * w[0]), x, initializer=0.0)
    folded = tf.foldl(lambda acc, row: acc * 0.5 + row, x)
    squares = tf.map_fn(lambda row: tf.reduce_sum(tf.square(row)), x)

    grads = tf.gradients(loss, [w, b])
    more = tf.gradients(tf.reduce_sum(sums) + tf.reduce_sum(folded) + picked + tf.reduce_sum(
        larger), [w, b])
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)

    data = rng.randn(steps, batch, units).astype(np.float32)
    record = {}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for on in (True, False):
            record[f"picked_{on}"] = sess.run(picked, {flag: on})
        (record["larger"], record["count"], record["loss0"], record["grad_w"], record["grad_b"],
         record["sums"], record["folded"], record["squares"], record["more_w"],
         record["more_b"]) = sess.run([larger, count, loss, *grads, sums, folded, squares,
                                       *more], {x: data, flag: True})
        for step in range(4):
            record[f"loss{step + 1}"] = sess.run([loss, train], {x: data})[0]
        record["w"], record["b"] = sess.run([w, b])
    return record
