"""Reads after writes under tf.control_dependencies, as TF 1.x programs rely on them: a
counter read after its increment, an assign chain (two writes of one Variable in one run),
a tf.group of updates, reads through read_value(), arithmetic, tf.cond and an assign, a
nested block, and a hand-written moving average of the weights read after the optimizer's
step (Momentum and Adam, whose steps are fused kernels)."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    counter = tf.Variable(0, name="counter")
    inc = tf.assign_add(counter, 1)
    with tf.control_dependencies([inc]):
        count = tf.identity(counter)

    v = tf.Variable(1.0, name="v")
    first = tf.assign(v, v + 1.0)
    with tf.control_dependencies([first]):
        second = tf.assign(v, v * 3.0)
        with tf.control_dependencies([second]):
            chained = tf.identity(v) + 0.5

    a = tf.Variable([1.0, 2.0], name="a")
    b = tf.Variable(10.0, name="b")
    both = tf.group(tf.assign_add(a, [1.0, -1.0]), tf.assign_sub(b, 4.0))
    with tf.control_dependencies([both]):
        summed = tf.reduce_sum(a) * b
        read = a.read_value()

    level = tf.Variable(3.0, name="level")
    copy = tf.Variable(0.0, name="copy")
    with tf.control_dependencies([tf.assign_add(level, 1.0)]):
        branch = tf.cond(level > 4.5, lambda: level * 2.0, lambda: -level)
        copied = tf.assign(copy, level)

    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.placeholder(tf.float32, [None, 1])
    init = rng.randn(3, 1).astype(np.float32)
    record = {}
    for opt in (tf.train.MomentumOptimizer(0.05, 0.9), tf.train.AdamOptimizer(0.1)):
        name = opt.get_name()
        w = tf.Variable(init, name="w_" + name)
        shadow = tf.Variable(init, name="shadow_" + name, trainable=False)
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - y))
        step = opt.minimize(loss, var_list=[w])
        with tf.control_dependencies([step]):
            train = tf.assign(shadow, 0.8 * shadow + 0.2 * w)
            moved = tf.identity(w)
        record[name] = (loss, train, moved, w, shadow)

    data = rng.randn(8, 3).astype(np.float32)
    target = data.sum(axis=1, keepdims=True).astype(np.float32)
    out = {}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out["counts"] = [sess.run(count) for _ in range(3)]
        out["counter"] = sess.run(counter)
        out["chained"] = sess.run(chained)
        out["v"] = sess.run(v)
        out["summed"] = sess.run(summed)
        out["read"] = sess.run(read)
        out["a"], out["b"] = sess.run([a, b])
        out["branch"] = [sess.run(branch) for _ in range(2)]
        out["copied"], out["copy"] = sess.run(copied), sess.run(copy)
        for name, (loss, train, moved, w, shadow) in record.items():
            losses, moves = [], []
            for _ in range(4):
                got = sess.run([loss, train, moved], {x: data, y: target})
                losses.append(got[0])
                moves.append(got[2])
            out[name + "_losses"] = losses
            out[name + "_shadow_fetched"] = got[1]
            out[name + "_moved"] = moves
            out[name + "_w"], out[name + "_shadow"] = sess.run([w, shadow])
    return out
