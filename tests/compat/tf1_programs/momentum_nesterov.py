"""Polynomial regression with Nesterov momentum, gradients clipped between
compute_gradients and apply_gradients."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(4)
    xs = np.linspace(-1, 1, 64).astype(np.float32)
    ys = (0.5 * xs ** 3 - xs + 0.2 + 0.05 * rng.randn(64)).astype(np.float32)

    X = tf.placeholder(tf.float32, [None], name="X")
    Y = tf.placeholder(tf.float32, [None], name="Y")
    coefficients = tf.Variable(rng.randn(4).astype(np.float32) * 0.1, name="coefficients")
    powers = tf.stack([tf.ones_like(X), X, X * X, X * X * X], axis=1)
    prediction = tf.reduce_sum(powers * coefficients, axis=1)
    loss = tf.reduce_mean(tf.square(prediction - Y))

    optimizer = tf.train.MomentumOptimizer(learning_rate=0.05, momentum=0.9, use_nesterov=True)
    grads_and_vars = optimizer.compute_gradients(loss)
    clipped = [(tf.clip_by_value(g, -0.5, 0.5), v) for g, v in grads_and_vars]
    train_op = optimizer.apply_gradients(clipped)
    plain = tf.train.MomentumOptimizer(0.01, 0.5).minimize(loss, var_list=[coefficients])

    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    losses, grads, history = [], [], []
    for _ in range(150):
        g, current, _ = sess.run([grads_and_vars[0][0], loss, train_op], {X: xs, Y: ys})
        losses.append(current)
        grads.append(g)
        history.append(sess.run(coefficients))
    for _ in range(20):
        sess.run(plain, {X: xs, Y: ys})
    final = sess.run(coefficients)
    return {"loss": np.array(losses), "grads": np.array(grads),
            "coefficients": np.array(history), "final": final}
