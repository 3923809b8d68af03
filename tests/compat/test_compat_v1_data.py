"""``tf.data`` in ``xpnn.compat.v1``: what a run takes from an iterator, when it stops, what
it refuses, on every backend (the TF1 programs dataset_*.py hold the numbers to TF)."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn.compat.v1 as tf
from xpnn.compat.v1.unsupported import TF1NameError


def _drain(sess, fetch, limit=100):
    out = []
    for _ in range(limit):
        try:
            out.append(sess.run(fetch))
        except tf.errors.OutOfRangeError:
            return out
    raise AssertionError(f"no OutOfRangeError after {limit} runs")


def test_a_run_takes_one_element_however_often_it_fetches_it(on):
    x = tf.data.Dataset.range(3).make_one_shot_iterator().get_next()
    doubled = x * 2
    with tf.Session() as sess:
        assert sess.run([x, x, doubled]) == [0, 0, 0]
        assert sess.run({"a": x, "b": doubled}) == {"a": 1, "b": 2}
        assert sess.run(doubled) == 4
        with pytest.raises(tf.errors.OutOfRangeError, match="End of sequence"):
            sess.run(x)
        with pytest.raises(tf.errors.OutOfRangeError):  # and stays at the end
            sess.run(x)


def test_the_end_of_the_data_changes_no_variable(on):
    data = np.arange(6, dtype=np.float32).reshape(3, 2)
    x = tf.data.Dataset.from_tensor_slices(data).batch(2).make_one_shot_iterator().get_next()
    w = tf.Variable([1.0, -1.0])
    step = tf.assign_add(w, tf.reduce_sum(x, axis=0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        _drain(sess, step)
        after = sess.run(w)
        with pytest.raises(tf.errors.OutOfRangeError):
            sess.run(step)
        np.testing.assert_array_equal(sess.run(w), after)
    np.testing.assert_allclose(after, np.array([1.0, -1.0]) + data.sum(axis=0))


def test_initializable_iterator_over_placeholders_restarts_at_each_initializer(on):
    features = tf.placeholder(tf.float32, [None, 2])
    labels = tf.placeholder(tf.int32, [None])
    iterator = tf.data.Dataset.from_tensor_slices((features, labels)).batch(2) \
        .make_initializable_iterator()
    x, y = iterator.get_next()
    assert x.get_shape().as_list() == [None, 2] and y.dtype == "int32"
    train = np.arange(10, dtype=np.float32).reshape(5, 2)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError, match="not been initialized"):
            sess.run(x)
        sess.run(iterator.initializer, {features: train, labels: np.arange(5)})
        assert sess.run(y).tolist() == [0, 1]
        sess.run(iterator.initializer, {features: train, labels: np.arange(5)})
        got = _drain(sess, (x, y))
        assert [b[1].tolist() for b in got] == [[0, 1], [2, 3], [4]]
        np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), train)
        sess.run(iterator.initializer, {features: train[:1] + 100, labels: [7]})
        assert [b.tolist() for b in _drain(sess, y)] == [[7]]
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[2, 3\] rows"):
            sess.run(iterator.initializer, {features: train[:2], labels: [1, 2, 3]})
            sess.run(y)


def test_each_session_has_its_own_position(on):
    x = tf.data.Dataset.range(4).make_one_shot_iterator().get_next()
    first, second = tf.Session(), tf.Session()
    assert [first.run(x), first.run(x), second.run(x), first.run(x)] == [0, 1, 0, 2]


def test_a_fed_element_leaves_the_iterator_where_it_is(on):
    x = tf.data.Dataset.range(5).make_one_shot_iterator().get_next()
    with tf.Session() as sess:
        assert sess.run(x) == 0
        assert sess.run(x * 10, {x: 7}) == 70
        assert sess.run(x) == 1


def test_map_is_traced_once_and_runs_in_the_session(on):
    calls = []
    scale = tf.Variable(3.0)

    def scaled(v):
        calls.append(v)
        return tf.cast(v, tf.float32) * scale + tf.constant(0.5)

    dataset = tf.data.Dataset.range(4).map(scaled).batch(3)
    assert len(calls) == 1 and dataset.output_types == tf.float32
    batch = dataset.make_one_shot_iterator().get_next()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = _drain(sess, batch)
    assert len(calls) == 1
    assert [b.tolist() for b in got] == [[0.5, 3.5, 6.5], [9.5]]


def test_batch_shapes_and_drop_remainder(on):
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((7, 3), np.float32))
    assert dataset.output_shapes.as_list() == [3]
    assert dataset.batch(2).output_shapes.as_list() == [None, 3]
    dropped = dataset.batch(2, drop_remainder=True)
    assert dropped.output_shapes.as_list() == [2, 3]
    with tf.Session() as sess:
        sizes = [b.shape[0] for b in _drain(sess, dropped.make_one_shot_iterator().get_next())]
    assert sizes == [2, 2, 2]


def test_a_seeded_shuffle_is_a_permutation_alike_in_every_session_and_backend(on):
    def orders(reshuffle):
        tf.reset_default_graph()
        ds = tf.data.Dataset.range(20).shuffle(6, seed=3, reshuffle_each_iteration=reshuffle)
        x = ds.repeat(2).make_one_shot_iterator().get_next()
        with tf.Session() as sess:
            got = _drain(sess, x)
        with tf.Session() as sess:
            assert _drain(sess, x) == got
        return got[:20], got[20:]

    first, second = orders(True)
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != list(range(20)) and first != second
    assert orders(False) == (first, first)
    tf.use_device("cpu", backend="numpy")  # NumPy's own order: the same on every backend
    assert orders(True) == (first, second)


def test_one_shot_iterator_cannot_be_fed_a_placeholder(on):
    data = tf.placeholder(tf.float32, [None], name="data")
    dataset = tf.data.Dataset.from_tensor_slices(data)
    with pytest.raises(ValueError, match="placeholder data.*make_initializable_iterator"):
        dataset.make_one_shot_iterator()


def test_bad_pipelines_are_refused_with_what_to_do(on):
    with pytest.raises(ValueError, match="same first dimension"):
        tf.data.Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        tf.data.Dataset.range(3).batch(0)
    with pytest.raises(ValueError, match="one scalar bool"):
        tf.data.Dataset.range(3).filter(lambda i: i * 2)
    with pytest.raises(TypeError, match="elements differ"):
        tf.data.Dataset.range(3).concatenate(tf.data.Dataset.from_tensor_slices([1.0]))
    ragged = tf.data.Dataset.from_generator(lambda: iter([[1.0], [1.0, 2.0]]), tf.float32)
    x = ragged.batch(2).make_one_shot_iterator().get_next()
    with tf.Session() as sess, pytest.raises(tf.errors.InvalidArgumentError,
                                             match=r"cannot be stacked"):
        sess.run(x)
    with pytest.raises(TypeError, match="iterated in a graph"):
        iter(tf.data.Dataset.range(3))


def test_names_left_out_say_so():
    with pytest.raises(TF1NameError, match="tf.data.TFRecordDataset.*from_tensor_slices"):
        tf.data.TFRecordDataset  # noqa: B018
    with pytest.raises(TF1NameError, match="tf.data.Dataset.padded_batch.*pad"):
        tf.data.Dataset.range(3).padded_batch(2, [None])
    with pytest.raises(TF1NameError, match="from_structure"):
        tf.data.Iterator.from_string_handle(None, tf.int64)
    assert tf.data.experimental.AUTOTUNE == tf.data.AUTOTUNE == -1


def test_errors_are_tf1s_classes():
    error = tf.errors.OutOfRangeError(None, None, "End of sequence")
    assert isinstance(error, tf.errors.OpError) and str(error) == "End of sequence"
    assert error.error_code == tf.errors.OUT_OF_RANGE == 11
    for name in ("InvalidArgumentError", "NotFoundError", "FailedPreconditionError"):
        assert issubclass(getattr(tf.errors, name), tf.errors.OpError)


def test_elements_stay_on_the_device_between_source_and_run(on, monkeypatch):
    """The data goes to the device once per initialization; slicing, map and batch happen
    there, so the host-to-device copies do not grow with the number of elements."""
    if on.backend == "cupy_standin":
        pytest.skip("the CuPy stand-in's device arrays are NumPy arrays: a fed element "
                    "cannot be told from host data, so every feed counts as a copy")
    moved = []
    original = type(on).from_host

    def from_host(self, value, *args, **kwargs):
        moved.append(np.shape(value))
        return original(self, value, *args, **kwargs)

    monkeypatch.setattr(type(on), "from_host", from_host)

    def copies(rows):
        tf.reset_default_graph()
        data = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
        ds = tf.data.Dataset.from_tensor_slices((data, np.arange(rows))).map(
            lambda x, i: (x * 2.0, i)).batch(2)
        x, i = ds.make_one_shot_iterator().get_next()
        total = tf.reduce_sum(x) + tf.cast(tf.reduce_sum(i), tf.float32)
        moved.clear()
        with tf.Session() as sess:
            got = sum(_drain(sess, total))
        assert got == pytest.approx(2 * data.sum() + rows * (rows - 1) / 2)
        return len(moved)

    assert copies(12) == copies(4)


def test_counts_may_be_placeholders_fed_at_initializer_time(on):
    """The TF1 trick for one pipeline with a training and an evaluation batch size."""
    batch_size = tf.placeholder(tf.int64, [], name="batch_size")
    epochs = tf.placeholder(tf.int64, [], name="epochs")
    dataset = tf.data.Dataset.range(5).repeat(epochs).batch(batch_size, drop_remainder=True)
    assert dataset.output_shapes.as_list() == [None]
    iterator = dataset.make_initializable_iterator()
    x = iterator.get_next()
    with tf.Session() as sess:
        sess.run(iterator.initializer, {batch_size: 4, epochs: 2})
        assert [b.tolist() for b in _drain(sess, x)] == [[0, 1, 2, 3], [4, 0, 1, 2]]
        sess.run(iterator.initializer, {batch_size: 5, epochs: 1})
        assert [b.tolist() for b in _drain(sess, x)] == [[0, 1, 2, 3, 4]]
        sess.run(iterator.initializer, {batch_size: 0, epochs: 1})
        with pytest.raises(tf.errors.InvalidArgumentError, match="batch_size.* is 0"):
            sess.run(x)
    with pytest.raises(TypeError, match="scalar int32 or int64"):
        dataset.batch(tf.placeholder(tf.float32, []))


def test_an_unseeded_shuffle_not_reshuffling_repeats_its_order(on):
    x = tf.data.Dataset.range(12).shuffle(12, reshuffle_each_iteration=False).repeat(3) \
        .make_one_shot_iterator().get_next()
    with tf.Session() as sess:
        got = _drain(sess, x)
    assert got[:12] == got[12:24] == got[24:] and sorted(got[:12]) == list(range(12))


def test_a_reinitializable_iterator_takes_datasets_of_its_structure_only(on):
    floats = tf.data.Dataset.from_tensor_slices({"x": np.ones((3, 2), np.float32)})
    iterator = tf.data.Iterator.from_structure(floats.output_types, floats.output_shapes)
    element = iterator.get_next()
    assert sorted(element) == ["x"] and element["x"].get_shape().as_list() == [2]
    assert iterator.output_classes == {"x": tf.Tensor}
    with pytest.raises(TypeError, match="make_initializer: the dataset's elements are"):
        iterator.make_initializer(tf.data.Dataset.range(3))
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError):
            sess.run(element)
        sess.run(iterator.make_initializer(floats.take(2)))
        assert len(_drain(sess, element)) == 2

