"""A learning rate decayed by tf.train.exponential_decay of the global step, which
minimize(global_step=...) counts; a staircase schedule and a placeholder rate beside it."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(9)
    A = rng.randn(40, 5).astype(np.float32)
    target = rng.randn(40).astype(np.float32)

    w = tf.Variable(np.zeros(5, np.float32), name="w")
    u = tf.Variable(np.zeros(5, np.float32), name="u")
    loss = tf.reduce_mean(tf.square(tf.reduce_sum(A * w, axis=1) - target))
    loss_u = tf.reduce_mean(tf.square(tf.reduce_sum(A * u, axis=1) - target))

    global_step = tf.Variable(0, trainable=False, name="global_step")
    learning_rate = tf.train.exponential_decay(0.1, global_step, 10, 0.7)
    staircase = tf.train.exponential_decay(0.1, global_step, 10, 0.7, staircase=True)
    train = tf.train.GradientDescentOptimizer(learning_rate).minimize(
        loss, global_step=global_step, var_list=[w])

    rate = tf.placeholder(tf.float32, shape=[], name="rate")
    train_u = tf.train.AdamOptimizer(rate).minimize(loss_u, var_list=[u])

    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    rates, stairs, steps, losses, losses_u = [], [], [], [], []
    for i in range(60):
        stairs.append(sess.run(staircase))  # alone: a run that also steps may read either
        r, current, _ = sess.run([learning_rate, loss, train])
        rates.append(r)
        losses.append(current)
        steps.append(sess.run(global_step))
        losses_u.append(sess.run([loss_u, train_u], {rate: 0.05 / (1 + i)})[0])
    return {"rate": np.array(rates), "staircase": np.array(stairs), "loss": np.array(losses),
            "step": np.array(steps), "w": sess.run(w), "loss_u": np.array(losses_u),
            "u": sess.run(u)}
