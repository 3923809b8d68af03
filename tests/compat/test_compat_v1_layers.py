"""``tf.layers`` of ``xpnn.compat.v1`` on every backend: TF1's Variable names, reuse and
defaults, shapes and values against NumPy, dropout and batch normalisation in training and
inference, regularizers, and gradients against finite differences. (The TF 1.x programs
tests/compat/tf1_programs/layers_*.py hold them to real TensorFlow:
tests/compat/test_compat_v1_oracle.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
import xpnn.compat.v1 as tf
from tests.compat.tf1_run import run


def names(variables):
    return [v.name for v in variables]


def constant(array):
    return tf.constant_initializer(np.asarray(array, np.float32))


RNG = np.random.default_rng(14)
X = RNG.standard_normal((3, 4)).astype(np.float32)


# --------------------------------------------------------------------------- names, reuse


def test_names_are_tf1s_and_reuse_shares_variables(on):
    x = tf.placeholder(tf.float32, [None, 4])
    first, second = tf.layers.dense(x, 3), tf.layers.dense(x, 2, name="fc")
    third = tf.layers.dense(x, 3)
    assert names(tf.trainable_variables()) == ["dense/kernel", "dense/bias", "fc/kernel",
                                               "fc/bias", "dense_1/kernel", "dense_1/bias"]
    assert (first.name, second.name, third.name) == ("dense/BiasAdd", "fc/BiasAdd",
                                                     "dense_1/BiasAdd")
    assert tf.get_default_graph().get_tensor_by_name("dense/kernel:0").shape == (4, 3)
    again = tf.layers.dense(x, 2, name="fc", reuse=True)
    with pytest.raises(ValueError, match="Variable fc/kernel already exists, disallowed"):
        tf.layers.dense(x, 2, name="fc")
    with tf.variable_scope("model"):
        inside = tf.layers.dense(x, 3, activation=tf.nn.relu)
    with tf.variable_scope("model", reuse=True):  # TF1 counts layers afresh in a reopened scope
        shared = tf.layers.dense(x, 3, activation=tf.nn.relu)
    with tf.variable_scope("auto", reuse=tf.AUTO_REUSE):
        tf.layers.dense(x, 1, name="head")
        tf.layers.dense(x, 1, name="head")
    assert len(tf.trainable_variables()) == 10 and inside.name == "model/dense/Relu"
    assert names(tf.trainable_variables()[6:8]) == ["model/dense/kernel", "model/dense/bias"]
    out = run([second, again, inside, shared], {x: X})
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[2], out[3])
    assert (out[2] >= 0).all()


def test_layer_objects_share_their_variables_between_calls(on):
    x = tf.placeholder(tf.float32, [None, 4])
    layer = tf.layers.Dense(2, kernel_initializer=constant(np.ones((4, 2))), name="head")
    a, b = layer(x), layer.apply(x * 2.0)
    assert names(layer.trainable_variables) == ["head/kernel", "head/bias"]
    assert layer.kernel is tf.trainable_variables()[0] and layer.name == "head"
    assert (a.name, b.name) == ("head/BiasAdd", "head/BiasAdd_1")
    one, two = run([a, b], {x: X})
    np.testing.assert_allclose(two, 2 * one, rtol=1e-6)
    frozen = tf.layers.Dense(3, trainable=False)
    frozen(x)
    assert frozen.non_trainable_variables == frozen.weights and len(frozen.weights) == 2
    assert names(tf.global_variables())[2:] == ["dense/kernel", "dense/bias"]
    assert len(tf.trainable_variables()) == 2


def test_a_layer_of_ones_own(on):
    class Scale(tf.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight("w", [input_shape[-1]], initializer=tf.ones_initializer())

        def call(self, inputs):
            return inputs * self.w

    y = Scale()(tf.constant(X))
    assert names(tf.trainable_variables()) == ["layer/w"]
    np.testing.assert_array_equal(run(y), X)


# --------------------------------------------------------------------------- dense, conv


def test_dense_defaults_glorot_kernel_zero_bias_no_activation(on):
    tf.set_random_seed(3)
    x = tf.placeholder(tf.float32, [None, 4])
    y = tf.layers.dense(x, 6)
    kernel, bias = tf.trainable_variables()
    out, k, b = run([y, kernel, bias], {x: X})
    assert k.shape == (4, 6) and b.tolist() == [0.0] * 6
    assert np.abs(k).max() <= np.sqrt(6 / 10) and k.std() > 0.2  # glorot_uniform
    np.testing.assert_allclose(out, X @ k, rtol=1e-5, atol=1e-6)  # no activation
    tf.reset_default_graph()
    tf.set_random_seed(3)
    x = tf.placeholder(tf.float32, [None, 4])
    tf.layers.dense(x, 6)
    np.testing.assert_array_equal(run(tf.trainable_variables()[0]), k)  # seeded by the graph
    with tf.variable_scope("ones", initializer=tf.ones_initializer()):  # the scope's first
        tf.layers.dense(x, 2)
    assert run(tf.trainable_variables()[-2]).tolist() == [[1.0, 1.0]] * 4


def test_dense_on_rank_3_maps_the_last_axis(on):
    x = tf.placeholder(tf.float32, [None, 5, 4])
    kernel, bias = RNG.standard_normal((4, 2)), RNG.standard_normal(2)
    y = tf.layers.dense(x, 2, activation=tf.nn.tanh, kernel_initializer=constant(kernel),
                        bias_initializer=constant(bias))
    data = RNG.standard_normal((3, 5, 4)).astype(np.float32)
    assert y.shape == (None, 5, 2)
    np.testing.assert_allclose(run(y, {x: data}), np.tanh(data @ kernel + bias), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="axis -1 must be known"):
        tf.layers.dense(tf.placeholder(tf.float32, [None, None]), 3)


def conv_reference(x, w, stride, pad):
    """NHWC x HWIO by loops (pad: rows/columns of zeros before, after)."""
    (top, bottom), (left, right) = pad
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw = w.shape[:2]
    rows, cols = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], rows, cols, w.shape[3]))
    for i in range(rows):
        for j in range(cols):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j] = np.tensordot(patch, w, axes=3)
    return out


def test_conv2d_defaults_and_padding(on):
    images = RNG.standard_normal((2, 6, 5, 3)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 3, 4)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 6, 5, 3])
    valid = tf.layers.conv2d(x, 4, (3, 2), kernel_initializer=constant(w))
    same = tf.layers.conv2d(x, 4, [3, 2], strides=2, padding="Same",
                            kernel_initializer=constant(w), activation=tf.nn.relu)
    assert names(tf.trainable_variables()) == ["conv2d/kernel", "conv2d/bias",
                                               "conv2d_1/kernel", "conv2d_1/bias"]
    assert tf.trainable_variables()[0].shape == (3, 2, 3, 4)
    assert (valid.shape, same.shape) == ((None, 4, 4, 4), (None, 3, 3, 4))
    got_valid, got_same = run([valid, same], {x: images})
    np.testing.assert_allclose(got_valid, conv_reference(images, w, 1, ((0, 0), (0, 0))),
                               rtol=1e-4, atol=1e-5)
    # SAME, stride 2: 6 rows -> 3 (1 of padding, at the bottom); 5 columns -> 3 (1, right)
    want = np.maximum(conv_reference(images, w, 2, ((0, 1), (0, 1))), 0)
    np.testing.assert_allclose(got_same, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="padding"):
        tf.layers.conv2d(x, 2, 3, padding="full")
    with pytest.raises(ValueError, match="data_format"):
        tf.layers.conv2d(x, 2, 3, data_format="NHWC")


def test_conv_pool_flatten_channels_first_match_channels_last(on):
    images = RNG.standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 3, 2)).astype(np.float32)
    last = tf.placeholder(tf.float32, [None, 6, 6, 3])
    first = tf.placeholder(tf.float32, [None, 3, 6, 6])
    outs = []
    for x, fmt in ((last, "channels_last"), (first, "channels_first")):
        y = tf.layers.conv2d(x, 2, 3, padding="same", data_format=fmt,
                             kernel_initializer=constant(w), bias_initializer=constant([1, -1]))
        y = tf.layers.max_pooling2d(y, 2, 2, data_format=fmt)
        outs.append(tf.layers.flatten(y, data_format=fmt))
    assert tf.trainable_variables()[2].shape == (3, 3, 3, 2)
    assert outs[0].shape == outs[1].shape == (None, 18)
    a, b = run(outs, {last: images, first: images.transpose(0, 3, 1, 2)})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # flatten puts channels last


def test_pooling_and_flatten(on):
    images = RNG.standard_normal((2, 5, 5, 2)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 5, 5, 2])
    biggest = tf.layers.max_pooling2d(x, pool_size=2, strides=2)
    mean = tf.layers.average_pooling2d(x, [2, 2], 2, padding="same")
    flat = tf.layers.flatten(mean)
    assert (biggest.name, mean.name, flat.name) == ("max_pooling2d/MaxPool",
                                                    "average_pooling2d/AvgPool",
                                                    "flatten/Reshape")
    assert (biggest.shape, mean.shape, flat.shape) == ((None, 2, 2, 2), (None, 3, 3, 2),
                                                       (None, 18))
    assert tf.layers.flatten(tf.placeholder(tf.float32, [None])).shape == (None, 1)
    got_max, got_mean, got_flat = run([biggest, mean, flat], {x: images})
    want_max = images[:, :4, :4].reshape(2, 2, 2, 2, 2, 2).max(axis=(2, 4))
    np.testing.assert_allclose(got_max, want_max, rtol=1e-6)
    # SAME: the last window of each row holds only the real entries, divided by their count
    np.testing.assert_allclose(got_mean[:, 2, 2], images[:, 4, 4], rtol=1e-6)
    np.testing.assert_allclose(got_mean[:, 0, 2], images[:, :2, 4].mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(got_flat, got_mean.reshape(2, 18), rtol=1e-6)
    assert tf.trainable_variables() == []


# --------------------------------------------------------------------------- dropout


def test_dropout_only_while_training(on):
    ones = tf.ones([4000])
    training = tf.placeholder(tf.bool, [])
    rate = tf.placeholder(tf.float32, [])
    default = tf.layers.dropout(ones, rate=0.5)  # TF1's default: training=False
    always = tf.layers.dropout(ones, 0.75, training=True)
    switched = tf.layers.dropout(ones, 0.5, training=training)
    both = tf.layers.dropout(ones, rate, training=training)
    with tf.Session() as sess:
        assert sess.run(default).tolist() == [1.0] * 4000
        assert set(np.unique(sess.run(always)).tolist()) == {0.0, 4.0}
        dropped = sess.run(switched, {training: True})
        assert set(np.unique(dropped).tolist()) == {0.0, 2.0}
        assert 0.45 < (dropped > 0).mean() < 0.55
        assert sess.run(switched, {training: False}).tolist() == [1.0] * 4000
        assert set(np.unique(sess.run(both, {training: True, rate: 0.75})).tolist()) == {0, 4}
        assert sess.run(both, {training: False, rate: 0.75}).tolist() == [1.0] * 4000
    assert default.name == "dropout/Identity"
    with pytest.raises(TypeError, match="bool placeholder"):
        tf.layers.dropout(ones, training=tf.placeholder(tf.float32, []))
    with pytest.raises(NotImplementedError, match="noise_shape"):
        tf.layers.dropout(ones, noise_shape=[1], training=True)


# --------------------------------------------------------------------------- batch norm


def test_batch_normalization_training_updates_and_inference(on):
    images = (2.0 + 3.0 * RNG.standard_normal((4, 3, 3, 2))).astype(np.float32)
    rows = (1.0 + RNG.standard_normal((5, 3))).astype(np.float32)
    a = tf.placeholder(tf.float32, [None, 3, 3, 2])
    b = tf.placeholder(tf.float32, [None, 3])
    training = tf.placeholder(tf.bool, [])
    y4 = tf.layers.batch_normalization(a, momentum=0.0, training=True)
    y2 = tf.layers.batch_normalization(b, momentum=0.25, training=training)
    inference = tf.layers.batch_normalization(b, training=False, name="batch_normalization_1",
                                              reuse=True)
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert names(tf.global_variables()[:4]) == [
        "batch_normalization/gamma", "batch_normalization/beta",
        "batch_normalization/moving_mean", "batch_normalization/moving_variance"]
    assert len(tf.trainable_variables()) == 4 and len(tf.global_variables()) == 8
    assert names(updates) == ["batch_normalization/AssignMovingAvg",
                              "batch_normalization/AssignMovingAvg_1",
                              "batch_normalization_1/AssignMovingAvg",
                              "batch_normalization_1/AssignMovingAvg_1"]
    mean4, mean2, var2 = (tf.global_variables()[i] for i in (2, 6, 7))
    var4 = tf.global_variables()[3]
    feed = {a: images, b: rows}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out4, out2 = sess.run([y4, y2] + updates, {**feed, training: True})[:2]
        axes = (0, 1, 2)
        want4 = (images - images.mean(axes)) / np.sqrt(images.var(axes) + 1e-3)
        np.testing.assert_allclose(out4, want4, rtol=1e-4, atol=1e-5)
        # 4-D: TF1's fused kernel moves the variance towards n / (n - 1) times the batch's
        np.testing.assert_allclose(sess.run(mean4), images.mean(axes), rtol=1e-5)
        np.testing.assert_allclose(sess.run(var4), images.var(axes, ddof=1), rtol=1e-5)
        # 2-D: the biased variance; m <- m - (m - batch) * (1 - momentum)
        np.testing.assert_allclose(sess.run(mean2), 0.75 * rows.mean(0), rtol=1e-5)
        np.testing.assert_allclose(sess.run(var2), 0.25 + 0.75 * rows.var(0), rtol=1e-5)
        moved = sess.run([mean2, var2])
        sess.run(updates[2:], {b: rows, training: False})  # not training: no change
        np.testing.assert_array_equal(sess.run(mean2), moved[0])
        want2 = (rows - moved[0]) / np.sqrt(moved[1] + 1e-3)
        np.testing.assert_allclose(sess.run(y2, {b: rows, training: False}), want2, rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(sess.run(inference, {b: rows}), want2, rtol=1e-5, atol=1e-6)


def test_update_ops_run_with_the_training_step(on):
    """TF1's recipe: the step under control_dependencies(UPDATE_OPS); the optimizer's slots
    made there do not make the initializer run the updates (nor ask for their feeds)."""
    x = tf.placeholder(tf.float32, [None, 4])
    loss = tf.reduce_sum(tf.square(tf.layers.batch_normalization(x, training=True) - 1.0))
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        step = tf.train.AdamOptimizer(0.1).minimize(loss)
    moving_mean = tf.global_variables()[2]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(moving_mean).tolist() == [0.0] * 4
        sess.run(step, {x: X})
        np.testing.assert_allclose(sess.run(moving_mean), 0.01 * X.mean(0), rtol=1e-5)


def test_batch_normalization_channels_first_and_options(on):
    images = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 2, 4, 4])
    y = tf.layers.batch_normalization(x, axis=1, center=False, scale=False, training=True)
    assert tf.global_variables()[0].shape == (2,) and tf.trainable_variables() == []
    axes = (0, 2, 3)
    want = (images - images.mean(axes, keepdims=True)) / np.sqrt(
        images.var(axes, keepdims=True) + 1e-3)
    np.testing.assert_allclose(run(y, {x: images}), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(NotImplementedError, match="renorm"):
        tf.layers.batch_normalization(x, renorm=True)


# --------------------------------------------------------------------------- regularizers


def test_regularizers_go_to_their_collection(on):
    x = tf.placeholder(tf.float32, [None, 4])
    kernel = RNG.standard_normal((4, 2)).astype(np.float32)
    y = tf.layers.dense(x, 2, kernel_initializer=constant(kernel),
                        bias_initializer=tf.ones_initializer(),
                        kernel_regularizer=lambda w: 0.5 * tf.reduce_sum(tf.square(w)),
                        bias_regularizer=tf.reduce_sum,
                        activity_regularizer=lambda out: tf.reduce_sum(tf.abs(out)))
    losses = tf.losses.get_regularization_losses()
    assert len(losses) == 3
    values = run(losses + [tf.losses.get_regularization_loss(), y], {x: X})
    np.testing.assert_allclose(values[0], 0.5 * (kernel ** 2).sum(), rtol=1e-5)
    assert values[1] == 2.0
    np.testing.assert_allclose(values[2], np.abs(values[4]).sum() / 3, rtol=1e-5)  # per example
    np.testing.assert_allclose(values[3], sum(values[:3]), rtol=1e-5)
    with pytest.raises(NotImplementedError, match="constraints"):
        tf.layers.dense(x, 2, kernel_constraint=lambda w: w)


# --------------------------------------------------------------------------- gradients


def test_gradients_match_finite_differences(on):
    images = RNG.standard_normal((2, 5, 5, 2))
    x = tf.placeholder(tf.float32, [None, 5, 5, 2])
    training = tf.placeholder_with_default(True, [])
    h = tf.layers.conv2d(x, 3, 3, strides=2, padding="same", activation=tf.nn.tanh,
                         bias_initializer=constant([0.1, -0.2, 0.3]))
    h = tf.layers.batch_normalization(h, training=training)
    h = tf.layers.average_pooling2d(h, 2, 1)
    h = tf.layers.dense(tf.layers.flatten(h), 3, activation=tf.nn.sigmoid)
    loss = tf.reduce_sum(h * tf.constant([1.0, -2.0, 0.5]))
    wrt = tf.trainable_variables() + [x]
    assert len(wrt) == 7
    report = xn.gradcheck(loss, wrt, {x: images, training: np.array(True)}, device=on)
    assert report.ok


def test_missing_layers_say_so():
    with pytest.raises(NotImplementedError, match="tf.layers.conv3d is not in xpnn.compat.v1"):
        tf.layers.conv3d  # noqa: B018
    with pytest.raises(NotImplementedError, match="height 1"):
        tf.layers.conv1d  # noqa: B018
