"""xpnn.compat.v1's wider op set (issue 27): ops of a run-time length (boolean_mask,
where(condition), segment_sum) on every backend, in_top_k's edge cases, erf's accuracy, the
candidate samplers' draws, tf.initializers / tf.keras.initializers by their statistics
(the oracle programs cover the fixed ones), the placement no-ops, and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnn.compat.v1 as tf
from tests.compat.tf1_run import run
from xpnn.compat.v1.unsupported import TF1NameError

# --------------------------------------------------------------------------- run-time lengths


def test_boolean_mask_and_where_take_a_new_length_every_run(on):
    """One Session, one plan, masks of other counts: each run its own length, and the
    gradient puts the picked rows back (JAX runs the plan op by op)."""
    x = tf.placeholder(tf.float32, [None, 3])
    keep = tf.placeholder(tf.bool, [None])
    w = tf.Variable(np.arange(1.0, 4.0, dtype=np.float32))
    picked = tf.boolean_mask(x * w, keep)
    grad = tf.gradients(tf.reduce_sum(tf.square(picked)), [x, w])
    found = tf.where(x > 0.0)
    data = np.random.RandomState(0).randn(5, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for mask in ([True, False, True, True, False], [False] * 5, [True] * 5):
            mask = np.array(mask)
            rows, (d_x, d_w), where = sess.run([picked, grad, found], {x: data, keep: mask})
            scaled = data * np.arange(1.0, 4.0)
            np.testing.assert_allclose(rows, scaled[mask], rtol=1e-6)
            np.testing.assert_allclose(d_x, np.where(mask[:, None], 2 * scaled * np.arange(
                1.0, 4.0), 0.0), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(d_w, (2 * scaled * data)[mask].sum(0), rtol=1e-5,
                                       atol=1e-6)
            np.testing.assert_array_equal(where, np.argwhere(data > 0))
    assert picked.get_shape().as_list() == [None, 3] and found.get_shape().as_list() == [None, 2]


def test_boolean_mask_axis_and_segment_sum(on):
    x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    mask = np.array([[True, False, True, True], [False, False, True, False],
                     [True, True, False, False]])
    ids = np.array([0, 0, 2, 3, 3])
    rows = np.arange(10.0, dtype=np.float32).reshape(5, 2)
    got = run([tf.boolean_mask(x, mask[0, :3], axis=1), tf.boolean_mask(x[0], mask[:, :4]),
               tf.segment_sum(rows, ids), tf.math.segment_sum(rows, ids)])
    np.testing.assert_array_equal(got[0], x[:, mask[0, :3]])
    np.testing.assert_array_equal(got[1], x[0][mask])
    for summed in got[2:]:
        np.testing.assert_array_equal(summed, [[2, 4], [0, 0], [4, 5], [14, 16]])


def test_boolean_mask_and_where_refuse_bad_arguments():
    x = tf.zeros([4, 3])
    with pytest.raises(TypeError, match="boolean_mask: the mask .* must be bool, got float32"):
        tf.boolean_mask(x, [1.0, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not match .* \(4, 3\)"):
        tf.boolean_mask(x, [True, False, True])
    with pytest.raises(ValueError, match="give x and y both, or neither"):
        tf.where(x > 0.0, x)
    with pytest.raises(TypeError, match="segment_ids must be integers"):
        tf.segment_sum(x, [0.0, 0.0, 1.0, 1.0])


def test_boolean_mask_checks_fed_shapes_at_run_time(on):
    x = tf.placeholder(tf.float32, [None, 3])
    keep = tf.placeholder(tf.bool, [None])
    with pytest.raises(ValueError, match=r"mask of shape \(2,\) does not match"):
        run(tf.boolean_mask(x, keep), {x: np.zeros((4, 3)), keep: np.ones(2, bool)})


# --------------------------------------------------------------------------- in_top_k, math


def test_in_top_k_counts_ties_in_and_bad_rows_out(on):
    predictions = np.array([[0.3, 0.3, 0.4], [0.1, 0.5, 0.4], [np.nan, 0.5, 0.4],
                            [0.2, 0.5, 0.3]], np.float32)
    targets = np.array([0, 2, 0, 7], np.int32)  # a tie at the boundary, 2nd, NaN, outside
    got = run([tf.nn.in_top_k(predictions, targets, 1), tf.nn.in_top_k(predictions, targets, 2),
               tf.math.in_top_k(predictions, targets, 3)])
    assert got[0].tolist() == [False, False, False, False]
    assert got[1].tolist() == [True, True, False, False]
    assert got[2].tolist() == [True, True, False, False]
    with pytest.raises(TypeError, match="targets must be class indices"):
        tf.nn.in_top_k(predictions, [0.0, 1.0, 0.0, 1.0], 1)


def test_unary_math_refuses_integers_naming_the_cast():
    with pytest.raises(TypeError, match=r"sin takes floating values, got int32.*tf.cast"):
        tf.sin(tf.constant([1, 2]))


def test_erf_is_accurate_in_float64(on):
    points = np.concatenate([np.linspace(-6.0, 6.0, 241), [1e-300, -1e-9, 0.4999, 0.5001]])
    got = run(tf.erf(tf.constant(points, tf.float64)))
    want = np.array([math.erf(p) for p in points])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)


def test_weighted_cross_entropy_takes_labels_or_targets():
    with pytest.raises(ValueError, match="give labels or targets, not both"):
        tf.nn.weighted_cross_entropy_with_logits(labels=[1.0], targets=[1.0], logits=[0.0],
                                                 pos_weight=2.0)
    with pytest.raises(ValueError, match="needs labels .* and pos_weight"):
        tf.nn.weighted_cross_entropy_with_logits(labels=[1.0], logits=[0.0])


# --------------------------------------------------------------------------- samplers


def test_log_uniform_sampler_draws_unique_classes_anew_every_run(on):
    tf.set_random_seed(3)
    sampled, true_count, sampled_count = tf.nn.log_uniform_candidate_sampler(
        [[0], [5]], 1, num_sampled=6, unique=True, range_max=20)
    with tf.Session() as sess:
        draws = [sess.run([sampled, true_count, sampled_count]) for _ in range(30)]
    with tf.Session() as sess:
        again = sess.run(sampled)
    np.testing.assert_array_equal(again, draws[0][0])  # the seeds fix each Session's draws
    assert len({tuple(d[0]) for d in draws}) > 1
    classes = np.concatenate([d[0] for d in draws])
    assert all(len(set(d[0])) == 6 for d in draws) and 0 <= classes.min() < classes.max() < 20
    assert np.mean(classes < 5) > 0.4  # Zipfian: the small ids are the frequent ones
    def p(c):
        return (np.log(c + 2.0) - np.log(c + 1.0)) / np.log(21.0)

    for classes, true, expected in draws:  # TF1's: 1 - (1 - p) ** tries, p * 6 at 6 tries
        if np.allclose(true[:, 0], p(np.array([0, 5])) * 6):
            np.testing.assert_allclose(expected, p(classes) * 6, rtol=1e-5)
            continue
        tries = np.log1p(-true[0, 0]) / np.log1p(-p(0.0))
        assert tries > 6 - 1e-3 and abs(tries - round(tries)) < 1e-2
        for counts, c in [(true[:, 0], np.array([0, 5])), (expected, classes)]:
            np.testing.assert_allclose(counts, -np.expm1(round(tries) * np.log1p(-p(c))),
                                       rtol=1e-5)


def test_sampled_losses_train_with_their_default_sampler(on):
    tf.set_random_seed(1)
    rng = np.random.RandomState(0)
    w = tf.Variable(rng.randn(30, 4).astype(np.float32) * 0.1)
    b = tf.Variable(np.zeros(30, np.float32))
    inputs = tf.constant(rng.randn(8, 4).astype(np.float32))
    labels = tf.constant(rng.randint(0, 30, (8, 1)))
    losses = [tf.reduce_mean(tf.nn.nce_loss(w, b, labels, inputs, 5, 30)),
              tf.reduce_mean(tf.nn.sampled_softmax_loss(w, b, labels, inputs, 5, 30))]
    train = tf.train.GradientDescentOptimizer(0.5).minimize(tf.add_n(losses))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(losses)
        for _ in range(20):
            sess.run(train)
        last = sess.run(losses)
    assert np.all(np.isfinite(first)) and np.all(np.array(last) < np.array(first))


def test_unique_sampler_refuses_more_classes_than_it_has():
    with pytest.raises(ValueError, match="7 unique classes asked for out of range_max=5"):
        tf.nn.uniform_candidate_sampler([[0]], 1, 7, True, 5)


# --------------------------------------------------------------------------- initializers


@pytest.mark.parametrize("make, variance, bound", [
    (lambda: tf.initializers.glorot_uniform(), 2 / (200 + 300), math.sqrt(6 / 500)),
    (lambda: tf.keras.initializers.GlorotNormal(), 2 / 500, 2 * math.sqrt(2 / 500) / 0.8796),
    (lambda: tf.initializers.he_normal(), 2 / 200, 2 * math.sqrt(2 / 200) / 0.8796),
    (lambda: tf.keras.initializers.he_uniform(), 2 / 200, math.sqrt(6 / 200)),
    (lambda: tf.initializers.lecun_normal(), 1 / 200, 2 * math.sqrt(1 / 200) / 0.8796),
    (lambda: tf.initializers.lecun_uniform(), 1 / 200, math.sqrt(3 / 200)),
    (lambda: tf.initializers.variance_scaling(3.0, "fan_out"), 3 / 300, None),
    (lambda: tf.initializers.variance_scaling(2.0, "fan_avg", "untruncated_normal"), 2 / 250,
     None),
    (lambda: tf.initializers.variance_scaling(2.0, "fan_in", "normal"), 2 / 200,
     2 * math.sqrt(2 / 200) / 0.8796),
    (lambda: tf.keras.initializers.RandomNormal(), 0.05 ** 2, None),
    (lambda: tf.keras.initializers.random_uniform(), 0.05 ** 2 / 3, 0.05),
    (lambda: tf.initializers.truncated_normal(stddev=0.5), 0.25 * 0.7737, 1.0),
])
def test_random_initializers_have_tf1s_variance(on, make, variance, bound):
    """(200, 300): fan_in 200, fan_out 300; TF1's truncated normal is divided by 0.8796,
    the std of a unit normal cut at ±2, so its variance is the one asked for."""
    tf.set_random_seed(0)
    values = run(make()([200, 300]))
    assert values.dtype == np.float32 and values.shape == (200, 300)
    assert abs(values.var() / variance - 1.0) < 0.03
    if bound is not None:
        assert np.abs(values).max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("shape", [[6, 4], [3, 5], [3, 3, 2, 8]])
def test_orthogonal_initializer_gives_orthonormal_rows_or_columns(on, shape):
    q = run(tf.initializers.orthogonal(gain=1.5, seed=2)(shape, tf.float64))
    assert q.shape == tuple(shape) and q.dtype == np.float64
    flat = q.reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, 2.25 * np.eye(len(gram)), atol=1e-12)


def test_initializers_refuse_shapes_they_cannot_fill():
    with pytest.raises(ValueError, match=r"orthogonal initializer: shape \[5\] has fewer"):
        tf.orthogonal_initializer()([5])
    with pytest.raises(ValueError, match=r"identity initializer: shape \[2, 2, 2\]"):
        tf.initializers.identity()([2, 2, 2])


@pytest.mark.parametrize("module, name, hint", [
    ("initializers", "no_such", "help(xpnn.compat.v1)"),
    ("initializers", "uniform_unit_scaling", "variance_scaling(distribution='uniform')"),
    ("keras", "layers", "only tf.keras.initializers"),
    ("keras.initializers", "get", "help(xpnn.compat.v1)"),
    ("math", "lgamma", "not implemented"),
])
def test_missing_initializer_and_keras_names_raise_tf1_name_error(module, name, hint):
    where = tf
    for part in module.split("."):
        where = getattr(where, part)
    with pytest.raises(TF1NameError, match=f"tf.{module}.{name} is not in xpnn.compat.v1"
                       ) as error:
        getattr(where, name)
    assert hint in str(error.value) and not hasattr(where, name)


# --------------------------------------------------------------------------- no-ops


def test_device_config_and_version_are_accepted(on):
    config = tf.ConfigProto(allow_soft_placement=True, device_count={"GPU": 0},
                            gpu_options=tf.GPUOptions(allow_growth=True))
    assert config.gpu_options.allow_growth and config.intra_op_parallelism_threads == 0
    with tf.device("/gpu:0"), tf.device(None):
        x = tf.constant([1.0, 2.0]) * 2.0
    with tf.Session(config=config) as sess:
        assert sess.run(x).tolist() == [2.0, 4.0]
    assert tf.__version__.startswith("1.") and "xpnn" in tf.__version__
    with pytest.raises(ValueError, match=r"tf.ConfigProto has no field\(s\) \['gpu_option'\]"):
        tf.ConfigProto(gpu_option=None)
