"""tf.train.Saver: save every few steps with global_step, keep the newest, restore the
latest checkpoint into a new session and into a fresh graph, and continue training."""

import os

import numpy as np


def build(tf, rng_seed):
    rng = np.random.RandomState(rng_seed)
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    W = tf.Variable(rng.randn(3, 1).astype(np.float32), name="W")
    b = tf.Variable(np.zeros(1, np.float32), name="b")
    loss = tf.reduce_mean(tf.square(tf.matmul(x, W) + b - y))
    global_step = tf.train.get_or_create_global_step()
    train = tf.train.AdamOptimizer(0.05).minimize(loss, global_step=global_step)
    return x, y, W, b, loss, global_step, train


def main(tf, workdir):
    tf.reset_default_graph()
    rng = np.random.RandomState(11)
    X = rng.randn(50, 3).astype(np.float32)
    Y = (X @ np.float32([[1.5], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    x, y, W, b, loss, global_step, train = build(tf, 12)
    saver = tf.train.Saver(max_to_keep=2)
    prefix = os.path.join(workdir, "model.ckpt")
    feed = {x: X, y: Y}
    losses, saved = [], {}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(30):
            losses.append(sess.run([train, loss], feed)[1])
            if step % 10 == 9:
                path = saver.save(sess, prefix, global_step=global_step)
                saved[os.path.basename(path)] = sess.run(W)
        latest = tf.train.latest_checkpoint(workdir)
        for _ in range(5):
            sess.run(train, feed)
        saver.restore(sess, latest)
        restored = sess.run([W, b, global_step])
        losses += [sess.run([train, loss], feed)[1] for _ in range(10)]
        kept = [os.path.basename(p) for p in saver.last_checkpoints]

    tf.reset_default_graph()
    x, y, W, b, loss, global_step, train = build(tf, 13)  # other starting weights
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, tf.train.latest_checkpoint(workdir))
        fresh = sess.run([W, b, global_step, loss], {x: X, y: Y})
    return {"loss": np.array(losses), "latest": np.array(os.path.basename(latest)),
            "kept": np.array(kept), "saved_W": np.array(list(saved.values())),
            "restored_W": restored[0], "restored_b": restored[1],
            "restored_step": np.array(restored[2]), "fresh_W": fresh[0],
            "fresh_step": np.array(fresh[2]), "fresh_loss": np.array(fresh[3])}
