"""The MNIST-for-beginners softmax regression, on synthetic 8x8 "digits"."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(1)
    centers = rng.rand(10, 64).astype(np.float32)
    labels = rng.randint(0, 10, 600)
    images = (centers[labels] + 0.3 * rng.rand(600, 64)).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[labels]

    x = tf.placeholder(tf.float32, [None, 64])
    W = tf.Variable(tf.zeros([64, 10]))
    b = tf.Variable(tf.zeros([10]))
    y = tf.nn.softmax(tf.matmul(x, W) + b)

    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
    train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

    correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

    sess = tf.InteractiveSession()
    tf.global_variables_initializer().run()
    losses, accuracies = [], []
    for i in range(100):
        start = (i * 50) % 500
        batch_xs, batch_ys = images[start:start + 50], onehot[start:start + 50]
        _, current = sess.run([train_step, cross_entropy], feed_dict={x: batch_xs, y_: batch_ys})
        losses.append(current)
        if i % 10 == 0:
            accuracies.append(accuracy.eval(feed_dict={x: images[500:], y_: onehot[500:]}))
    weights = W.eval()
    final = sess.run(accuracy, feed_dict={x: images[500:], y_: onehot[500:]})
    sess.close()
    return {"loss": np.array(losses), "accuracy": np.array(accuracies), "W": weights,
            "final_accuracy": np.array(final)}
