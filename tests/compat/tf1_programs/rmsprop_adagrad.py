"""RMSProp (plain, with momentum, centered) and Adagrad training one softmax classifier each,
side by side in one graph."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(15)
    X = rng.randn(64, 4).astype(np.float32)
    y = np.argmax(X @ rng.randn(4, 3), axis=1)
    start = (0.1 * rng.randn(4, 3)).astype(np.float32)

    inputs = tf.placeholder(tf.float32, [None, 4])
    labels = tf.placeholder(tf.int32, [None])
    optimizers = {
        "rmsprop": tf.train.RMSPropOptimizer(0.01),
        "rmsprop_momentum": tf.train.RMSPropOptimizer(0.01, decay=0.8, momentum=0.5,
                                                      epsilon=1e-6),
        "centered": tf.train.RMSPropOptimizer(0.005, centered=True),
        "adagrad": tf.train.AdagradOptimizer(0.2),
        "adagrad_small_start": tf.train.AdagradOptimizer(0.1, initial_accumulator_value=0.01),
    }
    weights, losses, steps = {}, {}, {}
    for name, optimizer in optimizers.items():
        W = tf.Variable(start, name=name)
        loss = tf.losses.sparse_softmax_cross_entropy(labels, tf.matmul(inputs, W))
        weights[name], losses[name] = W, loss
        steps[name] = optimizer.minimize(loss, var_list=[W])

    feed = {inputs: X, labels: y}
    history = {name: [] for name in optimizers}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(50):
            values = sess.run([losses, steps], feed)[0]
            for name, value in values.items():
                history[name].append(value)
        final = sess.run(weights)
    out = {f"loss_{name}": np.array(h) for name, h in history.items()}
    out.update({f"W_{name}": w for name, w in final.items()})
    return out
