"""An input pipeline as TF 1.x tutorials built it: tf.data.Dataset.from_tensor_slices over
NumPy arrays, a map written with tf ops (scaling features, one-hot labels), batch, repeat,
a one-shot iterator whose get_next() feeds a small MLP, and an epoch loop ending on
tf.errors.OutOfRangeError; the last partial batch, the static shapes and dtypes."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    n, features, hidden, classes = 22, 4, 5, 3
    data = rng.randn(n, features).astype(np.float32)
    labels = rng.randint(0, classes, size=n).astype(np.int64)

    def preprocess(x, y):
        x = (x - 0.5) * 2.0
        return x, tf.one_hot(y, classes)

    dataset = tf.data.Dataset.from_tensor_slices((data, labels))
    dataset = dataset.map(preprocess, num_parallel_calls=2).batch(8).repeat(2).prefetch(1)
    iterator = dataset.make_one_shot_iterator()
    x, y = iterator.get_next()

    w1 = tf.Variable(rng.randn(features, hidden).astype(np.float32) * 0.5, name="w1")
    b1 = tf.Variable(np.zeros(hidden, np.float32), name="b1")
    w2 = tf.Variable(rng.randn(hidden, classes).astype(np.float32) * 0.5, name="w2")
    logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.3).minimize(loss)

    record = {
        "x_shape": np.array([-1 if d is None else d for d in x.get_shape().as_list()]),
        "y_shape": np.array([-1 if d is None else d for d in y.get_shape().as_list()]),
        "types": np.array([t.name for t in dataset.output_types]),
        "rows": np.array([-1 if d is None else d
                          for d in dataset.output_shapes[0].as_list()]),
    }
    losses, sizes = [], []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        while True:
            try:
                step_loss, batch, _ = sess.run([loss, x, train])
            except tf.errors.OutOfRangeError:
                break
            losses.append(step_loss)
            sizes.append(batch.shape[0])
        record["w1"], record["w2"], record["b1"] = sess.run([w1, w2, b1])
    record["losses"] = np.array(losses)
    record["sizes"] = np.array(sizes)
    return record
