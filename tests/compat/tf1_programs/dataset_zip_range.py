"""Building datasets the other TF 1.x ways: Dataset.range, zip, take, skip, filter,
enumerate, concatenate, from_tensors, dict elements, unbatch, from_generator; repeat
before batch against batch before repeat, drop_remainder; two get_next() calls taking two
elements in one run, a fetch of one get_next() twice taking one. Every element is recorded
with its dtype."""

import numpy as np


def _drain(tf, sess, fetch, limit=50):
    out = []
    for _ in range(limit):
        try:
            out.append(sess.run(fetch))
        except tf.errors.OutOfRangeError:
            break
    return out


def _ranks(shapes):
    if hasattr(shapes, "ndims"):
        return [-1 if shapes.ndims is None else shapes.ndims]
    if isinstance(shapes, dict):
        return [r for key in sorted(shapes) for r in _ranks(shapes[key])]
    return [r for s in shapes for r in _ranks(s)]


def _datasets(tf):
    rng = np.random.RandomState(5)
    points = rng.randn(6, 2).astype(np.float32)
    squares = tf.data.Dataset.range(1, 12, 2).map(lambda i: i * i)
    letters = tf.data.Dataset.from_tensor_slices(points)
    zipped = tf.data.Dataset.zip((squares, letters)).skip(1).take(4)
    evens = tf.data.Dataset.range(10).filter(lambda i: tf.logical_and(i > 2, i * 3 < 22))
    joined = tf.data.Dataset.from_tensors(np.float32(-1.0)).concatenate(
        tf.data.Dataset.from_tensor_slices(points[:, 0]))
    table = tf.data.Dataset.from_tensor_slices(
        {"a": np.arange(5, dtype=np.int32), "b": points[:5]}).map(
            lambda d: {"a": d["a"] * 10, "b": tf.reduce_sum(d["b"])})

    def gen():
        for k in range(3):
            yield np.full(k + 1, k, np.int32), np.float32(k) / 2

    generated = tf.data.Dataset.from_generator(gen, (tf.int32, tf.float32), ([None], []))
    return {
        "zipped": zipped, "evens": evens, "joined": joined, "table": table,
        "repeat_batch": tf.data.Dataset.range(5).repeat(2).batch(3),
        "batch_repeat": tf.data.Dataset.range(5).batch(3).repeat(2),
        "dropped": tf.data.Dataset.range(7).batch(3, drop_remainder=True),
        "enumerated": letters.enumerate(start=3).take(3),
        "unbatched": tf.data.Dataset.from_tensor_slices(points.reshape(3, 2, 2)).unbatch(),
        "generated": generated.map(lambda v, s: tf.cast(tf.reduce_sum(v), tf.float32) + s),
    }


def main(tf, workdir=None):
    tf.reset_default_graph()
    record = {}
    nexts = {}
    for name, dataset in _datasets(tf).items():
        nexts[name] = tf.data.make_one_shot_iterator(dataset).get_next()
        record[f"{name}_ranks"] = np.array(_ranks(tf.data.get_output_shapes(dataset)))
    pairs = tf.data.Dataset.range(6).make_one_shot_iterator()
    first, second = pairs.get_next(), pairs.get_next()
    with tf.Session() as sess:
        for name, fetch in nexts.items():
            for i, element in enumerate(_drain(tf, sess, fetch)):
                if isinstance(element, dict):
                    element = [element["a"], element["b"]]
                if not isinstance(element, (tuple, list)):
                    element = [element]
                for j, part in enumerate(element):
                    record[f"{name}_{i}_{j}"] = part
        # (which of two get_next() ops takes which element TF leaves to its scheduler)
        record["pair0"] = np.sort(sess.run([first, second]))
        record["pair1"] = np.array(sess.run([first, first]))
        record["pair2"] = np.unique(sess.run([second, first, second]))
    return record
