"""tf.train.ExponentialMovingAverage as TF 1.x tutorials use it: the weights' averages applied
after each optimizer step (control_dependencies), the decay tied to the global step
(num_updates), a loss average, evaluation with the averaged weights restored into the model
through Saver(ema.variables_to_restore()); and the optimizer's slots by get_slot."""

import os

import numpy as np


def main(tf, workdir):
    tf.reset_default_graph()
    rng = np.random.RandomState(11)
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.placeholder(tf.float32, [None, 2], name="y")
    w = tf.Variable((0.5 * rng.randn(4, 2)).astype(np.float32), name="w")
    b = tf.Variable(np.zeros(2, np.float32), name="b")
    global_step = tf.train.get_or_create_global_step()
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
    opt = tf.train.AdamOptimizer(0.05)
    opt_op = opt.minimize(loss, global_step=global_step)
    ema = tf.train.ExponentialMovingAverage(0.9, num_updates=global_step)
    with tf.control_dependencies([opt_op]):
        train = ema.apply([w, b])
    loss_ema = tf.train.ExponentialMovingAverage(0.7, name="avg")
    track = loss_ema.apply([loss])

    data = rng.randn(16, 4).astype(np.float32)
    target = np.stack([data.sum(axis=1), data[:, 0] - data[:, 1]], axis=1).astype(np.float32)
    feed = {x: data, y: target}
    out = {"names": [ema.average_name(w), ema.average(b).name.split(":")[0],
                     loss_ema.average(loss).name.split(":")[0],
                     opt.get_slot(w, "m").name.split(":")[0],
                     opt.get_slot(w, "v").name.split(":")[0]],
           "slot_names": opt.get_slot_names(),
           # xpnn's Adam keeps its beta powers per Variable, TF1's once (beta1_power)
           "restore_names": sorted(n for n in ema.variables_to_restore() if "power" not in n)}
    path = os.path.join(workdir, "model")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out["losses"] = [sess.run([loss, train, track], feed)[0] for _ in range(5)]
        out["w"], out["w_avg"], out["b_avg"] = sess.run([w, ema.average(w), ema.average(b)])
        out["loss_avg"] = sess.run(loss_ema.average(loss))
        out["m"], out["v"] = sess.run([opt.get_slot(w, "m"), opt.get_slot(w, "v")])
        tf.train.Saver().save(sess, path)
    with tf.Session() as sess:
        tf.train.Saver(ema.variables_to_restore()).restore(sess, path)
        out["restored_w"], out["restored_b"] = sess.run([w, b])
        out["averaged_loss"] = sess.run(loss, feed)
    return out
