"""The series' softmax perceptron on red/blue points: the likelihood criterion J built from
reduce_sum and log, misclassification counted with argmax."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(6)
    red = rng.randn(50, 2).astype(np.float32) - 2
    blue = rng.randn(50, 2).astype(np.float32) + 2
    points = np.concatenate([red, blue])
    classes = np.array([[1, 0]] * 50 + [[0, 1]] * 50, dtype=np.float32)

    X = tf.placeholder(tf.float32, name="X")
    c = tf.placeholder(tf.float32, name="c")
    W = tf.Variable(rng.randn(2, 2).astype(np.float32), name="W")
    b = tf.Variable(rng.randn(2).astype(np.float32), name="b")
    p = tf.nn.softmax(tf.add(tf.matmul(X, W), b))
    J = tf.negative(tf.reduce_sum(tf.reduce_sum(tf.multiply(c, tf.log(p)), axis=1)))
    minimization_op = tf.train.GradientDescentOptimizer(learning_rate=0.01).minimize(J)
    wrong = tf.reduce_sum(tf.cast(tf.not_equal(tf.argmax(p, axis=1), tf.argmax(c, axis=1)),
                                  tf.int32))

    feed_dict = {X: points, c: classes}
    session = tf.Session()
    session.run(tf.global_variables_initializer())
    losses, misclassified = [], []
    for _ in range(100):
        J_value = session.run(J, feed_dict)
        losses.append(J_value)
        misclassified.append(session.run(wrong, feed_dict))
        session.run(minimization_op, feed_dict)
    W_value, b_value = session.run([W, b])
    return {"J": np.array(losses), "misclassified": np.array(misclassified), "W": W_value,
            "b": b_value}
