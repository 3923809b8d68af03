"""The getting-started linear regression: y = W x + b by gradient descent."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(0)
    x_data = rng.rand(100).astype(np.float32)
    y_data = x_data * 0.1 + 0.3 + 0.01 * rng.randn(100).astype(np.float32)

    W = tf.Variable(np.float32(rng.uniform(-1.0, 1.0)), name="W")
    b = tf.Variable(tf.zeros([1]), name="b")
    y = W * x_data + b

    loss = tf.reduce_mean(tf.square(y - y_data))
    optimizer = tf.train.GradientDescentOptimizer(0.5)
    train = optimizer.minimize(loss)

    init = tf.global_variables_initializer()
    sess = tf.Session()
    sess.run(init)

    losses, Ws, bs = [], [], []
    for step in range(201):
        _, current = sess.run([train, loss])
        losses.append(current)
        if step % 20 == 0:
            Ws.append(sess.run(W))
            bs.append(sess.run(b))
    grad_W, grad_b = sess.run(tf.gradients(loss, [W, b]))
    sess.close()
    return {"loss": np.array(losses), "W": np.array(Ws), "b": np.array(bs),
            "grad_W": grad_W, "grad_b": grad_b}
