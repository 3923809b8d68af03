"""tf.gradients: broadcasting, several consumers, second derivatives, grad_ys."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    a = tf.Variable(rng.randn(3, 1).astype(np.float32), name="a")
    b = tf.Variable(rng.randn(4).astype(np.float32), name="b")
    c = tf.constant(rng.rand(3, 4).astype(np.float32) + 0.5)

    s = a + b                            # (3, 1) + (4,) -> (3, 4)
    y = tf.reduce_sum(tf.tanh(s) * c + tf.exp(-s * s) / c)
    z = tf.reduce_sum(tf.sigmoid(a * b) * s) + tf.reduce_max(s, axis=1)[0]

    grads = tf.gradients(y, [a, b])
    mixed = tf.gradients([y, z], [a, b])
    seeded = tf.gradients(s, [a, b], grad_ys=tf.constant(rng.randn(3, 4).astype(np.float32)))

    x = tf.Variable(np.float32([0.5, -1.0, 2.0]), name="x")
    f = tf.reduce_sum(x ** 3 - 2.0 * x * x + tf.sqrt(x * x + 1.0))
    df = tf.gradients(f, x)[0]
    d2f = tf.gradients(df, x)[0]
    d3f = tf.gradients(tf.reduce_sum(d2f * d2f), x)[0]

    p = tf.nn.softmax(tf.matmul(a, tf.reshape(b, [1, 4])) + tf.tile(a, [1, 4]))
    dp = tf.gradients(tf.reduce_sum(p * tf.log(p)), [a, b])

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run({"y": y, "z": z, "grads": grads, "mixed": mixed, "seeded": seeded,
                        "df": df, "d2f": d2f, "d3f": d3f, "dp": dp})
    flat = {}
    for key, value in out.items():
        if isinstance(value, list):
            for i, v in enumerate(value):
                flat[f"{key}{i}"] = v
        else:
            flat[key] = value
    return flat
