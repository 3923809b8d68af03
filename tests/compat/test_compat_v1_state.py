"""State that TF1 programs read after they write it, on every backend: reads under
``control_dependencies`` (counters, assign chains, groups, optimizer steps, gradients),
``Optimizer.get_slot``, ``tf.train.ExponentialMovingAverage``, ``tf.metrics`` and local
Variables. (tests/compat/tf1_programs/{control_deps,moving_average,metrics}.py hold them to
real TensorFlow.)"""

from __future__ import annotations

import re

import numpy as np
import pytest

import xpnn.compat.v1 as tf

# --------------------------------------------------------------------------- control deps


def test_a_read_made_under_control_dependencies_sees_the_write(on):
    counter = tf.Variable(0, name="counter")
    w = tf.Variable([1.0, 2.0], name="w")
    inc, scale = tf.assign_add(counter, 1), tf.assign(w, w * 3.0)
    loss = tf.reduce_sum(w * w)
    with tf.control_dependencies([tf.group(inc, scale)]):
        count, read, doubled = tf.identity(counter), w.read_value(), w * 2.0
        (grad,) = tf.gradients(loss, [w])  # reads what the forward read: w before the write
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = [sess.run([count, read, doubled]) for _ in range(2)]
        final = sess.run([counter, w])
        gradient = sess.run(grad)
    start = np.array([1.0, 2.0], np.float32)
    np.testing.assert_allclose(gradient, 2 * final[1])
    assert [int(c) for c, _, _ in got] == [1, 2] and int(final[0]) == 2
    np.testing.assert_allclose(got[0][1], start * 3)
    np.testing.assert_allclose(got[1][2], start * 9 * 2)
    np.testing.assert_allclose(final[1], start * 9)


def test_loops_branches_and_assigns_under_control_dependencies_read_the_write(on):
    c, copy = tf.Variable(1.0, name="c"), tf.Variable(0.0, name="copy")
    with tf.control_dependencies([tf.assign_add(c, 100.0)]):
        branch = tf.cond(tf.constant(True), lambda: c + 1.0, lambda: c - 1.0)
        loop = tf.while_loop(lambda i, s: i < 2, lambda i, s: (i + 1, s + c),
                             [tf.constant(0), tf.constant(0.0)])
        copied = tf.assign(copy, c)
        (dx,) = tf.gradients(c * copy, [copy])  # its forward reads the new c
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert float(sess.run(branch)) == 101.0 + 1.0
        assert float(sess.run(loop)[1]) == 2 * 201.0
        assert float(sess.run(copied)) == 301.0 and float(sess.run(copy)) == 301.0
        assert float(sess.run(dx)) == 401.0


def test_a_fetch_beside_an_update_without_dependencies_reads_before(on):
    v = tf.Variable(1.0)
    bump = tf.assign_add(v, 10.0)
    with tf.control_dependencies([bump]):
        after = tf.identity(v)
    plain = tf.identity(v)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert [float(x) for x in sess.run([plain, bump])] == [1.0, 11.0]
        assert float(sess.run(after)) == 21.0  # runs bump again, then reads


def test_chained_writes_of_one_variable_commit_the_last(on):
    v = tf.Variable(1.0, name="v")
    first = tf.assign(v, v + 1.0)
    with tf.control_dependencies([first]):
        second = tf.assign(v, v * 3.0)
        with tf.control_dependencies([second]):
            out = tf.identity(v) - 0.5
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert float(sess.run(out)) == (1.0 + 1.0) * 3.0 - 0.5
        assert float(sess.run(v)) == 6.0
        assert float(sess.run(second)) == (6.0 + 1.0) * 3.0
        # two writes of one Variable where neither reads the other's stay refused
        with pytest.raises(ValueError, match=r"Variables \['v'\] would be updated by two"):
            sess.run(tf.group(tf.assign(v, 2.0), tf.assign(v, 3.0)))
        assert float(sess.run(v)) == 21.0


def test_an_optimizer_step_after_another_starts_from_its_new_weights(on):
    start = np.array([1.0, -2.0], np.float32)
    w = tf.Variable(start, name="w")
    loss = tf.reduce_sum(tf.square(w))
    first = tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss)  # in place on NumPy
    push = np.array([0.5, 0.25], np.float32)
    with tf.control_dependencies([first]):
        second = tf.train.GradientDescentOptimizer(0.2).apply_gradients([(tf.constant(push), w)])
        seen = tf.identity(w)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got_seen, _ = sess.run([seen, second])
        got = sess.run(w)
    moved = start - np.float32(0.1) * (2 * start)
    np.testing.assert_allclose(got_seen, moved, rtol=1e-6)
    np.testing.assert_allclose(got, moved - np.float32(0.2) * push, rtol=1e-6)


def test_the_new_value_of_each_variable_and_slot_is_the_steps_own(on):
    rng = np.random.RandomState(5)
    w = tf.Variable(rng.randn(2, 3).astype(np.float32), name="w")
    b = tf.Variable(rng.randn(3).astype(np.float32), name="b")
    loss = tf.reduce_sum(tf.square(tf.matmul(tf.ones([1, 2]), w) + b))
    step = tf.train.AdamOptimizer(0.1).minimize(loss)
    with tf.control_dependencies([step]):
        seen = [tf.identity(v) for v in step.targets]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(seen)
        want = sess.run(step.targets)
    assert len(got) == 2 + 2 * 4  # Adam: m, v and the two powers of each Variable
    for target, new, written in zip(step.targets, got, want):
        np.testing.assert_allclose(new, written, rtol=1e-6, err_msg=target.name)


# --------------------------------------------------------------------------- slots


def test_get_slot_gives_the_optimizers_slots_under_tf1s_names(on):
    start = np.array([1.0, -1.0], np.float32)
    w = tf.Variable(start, name="w")
    loss = tf.reduce_sum(tf.square(w))
    opts = [tf.train.MomentumOptimizer(0.1, 0.5), tf.train.AdamOptimizer(0.1),
            tf.train.RMSPropOptimizer(0.1, momentum=0.5), tf.train.AdagradOptimizer(0.1),
            tf.train.GradientDescentOptimizer(0.1)]
    assert [o.get_slot_names() for o in opts] == [[]] * 5  # none made yet
    steps = [o.minimize(loss) for o in opts]
    assert [o.get_slot_names() for o in opts] == [
        ["momentum"], ["m", "v"], ["momentum", "rms"], ["accumulator"], []]
    named = {n: opts[k].get_slot(w, n).name for k, ns in enumerate(
        [["momentum"], ["m", "v"], ["rms", "momentum"], ["accumulator"]]) for n in ns
        if not (k == 2 and n == "momentum")}
    assert named == {"momentum": "w/Momentum", "m": "w/Adam", "v": "w/Adam_1",
                     "rms": "w/RMSProp", "accumulator": "w/Adagrad"}
    assert opts[2].get_slot(w, "momentum").name == "w/RMSProp_1"
    assert opts[0].get_slot(w, "nope") is None and opts[4].get_slot(w, "momentum") is None
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(2):
            sess.run(steps[0])
        velocity = sess.run(opts[0].get_slot(w, "momentum"))
    first = 2 * start
    second = 2 * (start - np.float32(0.1) * first)
    np.testing.assert_allclose(velocity, np.float32(0.5) * first + second, rtol=1e-6)


# --------------------------------------------------------------------------- moving averages


def test_moving_average_of_variables_and_tensors(on):
    w = tf.Variable(2.0, name="w")
    step = tf.Variable(0, name="step", trainable=False)
    ema = tf.train.ExponentialMovingAverage(0.9, num_updates=step)
    assert ema.average(w) is None
    with tf.control_dependencies([tf.assign(w, w + 1.0), tf.assign_add(step, 1)]):
        apply = ema.apply([w])
    mean = tf.reduce_mean(tf.stack([w, w * 3.0]))
    averages = tf.train.ExponentialMovingAverage(0.5)
    track = averages.apply([mean])
    assert ema.average(w).name == ema.average_name(w) == "w/ExponentialMovingAverage"
    assert tf.moving_average_variables() == [w] and ema.average(w) in tf.global_variables()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run([apply, track])
        shadow, tracked = sess.run([ema.average(w), averages.average(mean)])
    decay = min(0.9, (1.0 + 1.0) / (10.0 + 1.0))  # step was read after its increment
    assert shadow == pytest.approx(2.0 - (2.0 - 3.0) * (1.0 - decay), rel=1e-6)
    assert tracked == pytest.approx(0.5 * 4.0, rel=1e-6)  # mean of 2 and 6, from zero


def test_moving_average_refuses_what_tf1_refuses(on):
    w = tf.Variable(1.0, name="w")
    ema = tf.train.ExponentialMovingAverage(0.9)
    ema.apply([w])
    with pytest.raises(ValueError, match="Moving average already computed for: w"):
        ema.apply([w])
    v = tf.Variable(2.0, name="v")
    with pytest.raises(TypeError, match="n has dtype int32; only floating"):
        ema.apply([v, tf.Variable(1, name="n")])
    assert ema.average(v) is None  # nothing made for the list that failed
    with pytest.raises(ValueError, match=r"tensor x has shape \(None,\); its average needs"):
        ema.apply([tf.placeholder(tf.float32, [None], name="x")])
    with pytest.raises(NotImplementedError, match="zero_debias=True"):
        tf.train.ExponentialMovingAverage(0.9, zero_debias=True).apply([w * 2.0])


def test_variables_to_restore_loads_the_averages_into_the_model(on, tmp_path):
    w = tf.Variable([1.0, 2.0], name="w")
    other = tf.Variable(5.0, name="other", trainable=False)
    ema = tf.train.ExponentialMovingAverage(0.5)
    with tf.control_dependencies([tf.assign(w, [3.0, 6.0])]):
        apply = ema.apply([w])
    assert ema.variables_to_restore() == {"w/ExponentialMovingAverage": w, "other": other}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(apply)
        path = tf.train.Saver().save(sess, str(tmp_path / "model"))
    with tf.Session() as sess:
        tf.train.Saver(ema.variables_to_restore()).restore(sess, path)
        np.testing.assert_allclose(sess.run(w), [2.0, 4.0])


# --------------------------------------------------------------------------- metrics


def test_metric_variables_are_local_and_reset_by_the_local_initializer(on):
    values = tf.placeholder(tf.float32, [None])
    mean, update = tf.metrics.mean(values)
    w = tf.Variable(1.0, name="w")
    marked = tf.Variable(0.0, name="marked", trainable=False,
                         collections=[tf.GraphKeys.LOCAL_VARIABLES])
    local = ["mean/total", "mean/count", "marked"]
    assert [v.name for v in tf.local_variables()] == local and marked.name == "marked"
    assert [v.name for v in tf.get_collection(tf.GraphKeys.LOCAL_VARIABLES)] == local
    assert [v.name for v in tf.get_collection(tf.GraphKeys.METRIC_VARIABLES)] == local[:2]
    assert tf.global_variables() == [w] and tf.trainable_variables() == [w]
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        assert float(sess.run(update, {values: [1.0, 3.0]})) == 2.0
        assert float(sess.run(update, {values: [8.0]})) == 4.0
        sess.run(tf.global_variables_initializer())  # leaves the local ones alone
        assert float(sess.run(mean)) == 4.0
        sess.run(tf.local_variables_initializer())
        assert float(sess.run(mean)) == 0.0


def test_weighted_metrics_and_their_collections(on):
    labels = tf.placeholder(tf.int32, [None, 1])
    predicted = tf.placeholder(tf.int32, [None])
    weights = tf.placeholder(tf.float32, [None])
    acc, acc_update = tf.metrics.accuracy(labels, predicted, weights=weights,
                                          metrics_collections=["m"], updates_collections="u")
    rec, rec_update = tf.metrics.recall(labels, predicted, weights=weights)
    assert tf.get_collection("m") == [acc] and tf.get_collection("u") == [acc_update]
    feed = {labels: [[1], [0], [1], [1]], predicted: [1, 0, 0, 1], weights: [1, 2, 3, 4]}
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        got = sess.run([acc_update, rec_update], feed)
    assert got[0] == pytest.approx((1 + 2 + 4) / 10) and got[1] == pytest.approx(5 / 8)


def test_auc_agrees_with_a_numpy_count_at_tf1s_thresholds(on):
    rng = np.random.RandomState(0)
    labels, scores = rng.randint(0, 2, 30), rng.rand(30).astype(np.float32)
    y, p = tf.placeholder(tf.int64, [None]), tf.placeholder(tf.float32, [None])
    value, update = tf.metrics.auc(y, p)
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        got = sess.run(update, {y: labels, p: scores})
    inner = [(i + 1) * 1.0 / 199 for i in range(198)]
    thresholds = np.array([-1e-7] + inner + [1.0 + 1e-7], np.float32)
    above, positive = scores[None, :] > thresholds[:, None], labels[None, :] == 1
    tp, fn = (above & positive).sum(1), (~above & positive).sum(1)
    fp, tn = (above & ~positive).sum(1), (~above & ~positive).sum(1)
    tpr, fpr = (tp + 1e-6) / (tp + fn + 1e-6), fp / (fp + tn + 1e-6)
    assert got == pytest.approx(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2), rel=1e-5)


def test_metrics_refuse_bad_input(on):
    with pytest.raises(ValueError, match=r"Shapes \[3\] \(predictions\) and \[4\] \(labels\)"):
        tf.metrics.accuracy(tf.constant([1, 2, 3, 4]), tf.constant([1, 2, 3]))
    with pytest.raises(ValueError, match='curve must be "ROC" or "PR"'):
        tf.metrics.auc(tf.constant([1]), tf.constant([0.5]), curve="roc")
    with pytest.raises(NotImplementedError, match="careful_interpolation"):
        tf.metrics.auc(tf.constant([1]), tf.constant([0.5]),
                       summation_method="careful_interpolation")
    with pytest.raises(NotImplementedError, match="tf.metrics.mean_iou is not in"):
        tf.metrics.mean_iou  # noqa: B018


def test_help_lists_every_name_of_tf_metrics():
    listed = tf.metrics.__doc__.split("Its names:", 1)[1].split("\n\n", 1)[0]
    assert {n for n in re.split(r"[\s,.]+", listed) if n} == set(tf.metrics.__all__)
    for name in tf.metrics.__all__:
        assert callable(getattr(tf.metrics, name))
    assert "metrics" in tf.__all__ and "moving_average_variables" in tf.__all__
