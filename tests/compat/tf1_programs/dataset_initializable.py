"""The classic TF 1.x pattern for data that does not fit in the graph: a Dataset over
placeholders, an initializable iterator fed the training arrays (and the batch size) at
initializer time, re-initialized each epoch and then with the validation arrays to score
them; a reinitializable iterator (Iterator.from_structure) switching between a shuffled
training set and a validation set. Shuffle's order is TF's own (Philox), so the record keeps only
what does not depend on it (which examples an epoch saw, how many batches)."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(11)
    features = 3
    train_x = rng.randn(10, features).astype(np.float32)
    train_y = (train_x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).reshape(-1, 1)
    valid_x = rng.randn(7, features).astype(np.float32)
    valid_y = (valid_x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).reshape(-1, 1)

    x_ph = tf.placeholder(tf.float32, [None, features], name="x_ph")
    y_ph = tf.placeholder(tf.float32, [None, 1], name="y_ph")
    batch_size = tf.placeholder(tf.int64, [], name="batch_size")
    dataset = tf.data.Dataset.from_tensor_slices((x_ph, y_ph)).batch(batch_size)
    iterator = dataset.make_initializable_iterator()
    x, y = iterator.get_next()

    w = tf.Variable(np.zeros((features, 1), np.float32), name="w")
    b = tf.Variable(0.0, name="b")
    prediction = tf.matmul(x, w) + b
    loss = tf.reduce_mean(tf.square(prediction - y))
    sum_squares = tf.reduce_sum(tf.square(prediction - y))
    train = tf.train.MomentumOptimizer(0.05, 0.9).minimize(loss)

    record = {}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        losses = []
        for epoch in range(3):
            sess.run(iterator.initializer, feed_dict={x_ph: train_x, y_ph: train_y,
                                                      batch_size: 4})
            while True:
                try:
                    losses.append(sess.run([train, loss])[1])
                except tf.errors.OutOfRangeError:
                    break
            sess.run(iterator.initializer, feed_dict={x_ph: valid_x, y_ph: valid_y,
                                                      batch_size: 5})
            total, count, batches = 0.0, 0, 0
            while True:
                try:
                    part, batch = sess.run([sum_squares, y])
                except tf.errors.OutOfRangeError:
                    break
                total += part
                count += batch.shape[0]
                batches += 1
            record[f"valid_mse{epoch}"] = np.float32(total / count)
            record[f"valid_count{epoch}"] = count
            record[f"valid_batches{epoch}"] = batches
        record["losses"] = np.array(losses)
        record["w"], record["b"] = sess.run([w, b])
    record.update(_reinitializable(tf, train_x, valid_x))
    return record


def _reinitializable(tf, train_x, valid_x):
    train_set = tf.data.Dataset.from_tensor_slices(train_x).shuffle(10, seed=5).batch(3)
    valid_set = tf.data.Dataset.from_tensor_slices(valid_x).batch(3)
    iterator = tf.data.Iterator.from_structure(train_set.output_types,
                                               train_set.output_shapes)
    batch = iterator.get_next()
    total = tf.reduce_sum(batch, axis=1)
    use_train = iterator.make_initializer(train_set)
    use_valid = iterator.make_initializer(valid_set)
    record = {}
    with tf.Session() as sess:
        for name, init in (("train", use_train), ("valid", use_valid), ("again", use_train)):
            sess.run(init)
            seen, batches = [], 0
            while True:
                try:
                    seen.extend(sess.run(total))
                    batches += 1
                except tf.errors.OutOfRangeError:
                    break
            record[f"{name}_seen"] = np.sort(np.array(seen, np.float32))
            record[f"{name}_batches"] = batches
    return record
