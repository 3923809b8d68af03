"""``xpnn.compat.v1`` against real TensorFlow 1 (``tf.compat.v1``, graph mode) as the oracle:
each TF 1.x program of ``tests/compat/tf1_programs`` runs unchanged with either module as ``tf``,
and every loss, weight and gradient it records agrees to float32 rounding over the whole
run; integer, bool and string results (counts, argmax, names) agree exactly, dtypes too.
Snippets check single names the same way.

TensorFlow is not a dependency: ``pip install tensorflow-cpu`` (or ``nox -s tests_tf1``);
without it these tests skip. They run on NumPy: the other backends are held to NumPy by
tests/compat/test_compat_v1.py. Since TF 2.16 (Keras 3) ``tf.compat.v1.layers`` needs the
``tf_keras`` package and ``TF_USE_LEGACY_KERAS=1`` (set here); without tf_keras the programs
that use tf.layers skip.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import xpnn.compat.v1 as xtf
from tests.compat.tf1_programs import PROGRAMS, missing

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # read when tf.layers is first used
tf = pytest.importorskip(
    "tensorflow.compat.v1",
    reason="TensorFlow is not installed (pip install tensorflow-cpu): no TF1 oracle")
tf.disable_eager_execution()

# float32 over whole runs: TF's Eigen and NumPy's BLAS sum in other orders, so values drift
# apart by rounding (largest seen: 5e-5 relative, on entries near zero). Never exact digits.
RTOL, ATOL = 2e-5, 1e-6


def assert_same_records(want: dict, got: dict, where: str) -> None:
    assert sorted(got) == sorted(want), f"{where}: recorded {sorted(got)}, TF {sorted(want)}"
    for key in want:
        expected, actual = np.asarray(want[key]), np.asarray(got[key])
        what = f"{where}: {key}"
        if expected.dtype.kind in "US":
            np.testing.assert_array_equal(actual, expected, err_msg=what)
            continue
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, TF {expected.dtype}"
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, TF {expected.shape}"
        if expected.dtype.kind in "biu":
            np.testing.assert_array_equal(actual, expected, err_msg=what)
        else:
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def _tf_layers_missing() -> str | None:
    try:
        tf.layers.dense  # noqa: B018 - Keras 3 without tf_keras raises here
    except (AttributeError, ImportError) as error:
        return f"TensorFlow's tf.layers is not usable here ({error}): pip install tf_keras"
    return None


@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.filterwarnings("ignore:`tf.layers.:UserWarning")  # TF's deprecation notes
def test_program_matches_tensorflow(name, tmp_path):
    program = importlib.import_module(f"tests.compat.tf1_programs.{name}")
    if getattr(program, "USES_TF_LAYERS", False) and (why := _tf_layers_missing()):
        pytest.skip(why)
    if why := missing(name):
        pytest.skip(why)
    (tmp_path / "tf").mkdir()
    (tmp_path / "xpnn").mkdir()
    want = program.main(tf, str(tmp_path / "tf"))
    xtf.use_device("cpu", backend="numpy")
    try:
        got = program.main(xtf, str(tmp_path / "xpnn"))
    finally:
        xtf.use_device()
    assert_same_records(want, got, name)


SNIPPETS = {
    "constant dtypes": lambda tf: [tf.constant(3), tf.constant(3.0), tf.constant([True]),
                                   tf.constant(np.float64(2.0)), tf.constant(2, tf.int64),
                                   tf.constant(0.5, shape=[2, 2])],
    "zeros ones fill like": lambda tf: [
        tf.zeros([2], tf.int32), tf.ones([1, 2]), tf.fill([2], 7), tf.fill([2], 0.5),
        tf.zeros_like(tf.constant([1, 2])), tf.ones_like(tf.constant([1.5]), dtype=tf.int32)],
    "range and cast": lambda tf: [tf.range(5), tf.range(1.0, 2.0, 0.25),
                                  tf.cast(tf.constant([1.7, -1.7, 2.5]), tf.int32),
                                  tf.to_float(tf.constant([1, 2])),
                                  tf.cast(tf.constant([0.0, 2.0]), tf.bool)],
    "argmax argmin default axis 0": lambda tf: [
        tf.argmax(tf.constant([[1.0, 5.0, 0.0], [3.0, 2.0, 4.0]])),
        tf.argmin(tf.constant([[1.0, 5.0, 0.0], [3.0, 2.0, 4.0]])),
        tf.argmax(tf.constant([[1.0, 5.0, 0.0], [3.0, 2.0, 4.0]]), axis=1,
                  output_type=tf.int32)],
    "comparisons are bool": lambda tf: [
        tf.equal([1, 2], [1, 3]), tf.not_equal(1.0, 2.0), tf.greater([1.0, 3.0], 2.0),
        tf.less_equal([1, 2], 2), tf.logical_or([True, False], [False, False]),
        tf.logical_not(tf.constant([True])), tf.logical_xor(True, [True, False])],
    "old reduction spellings": lambda tf: [
        tf.reduce_sum(tf.constant([[1.0, 2.0], [3.0, 4.0]]), reduction_indices=[1],
                      keep_dims=True),
        tf.reduce_mean(tf.constant([[1.0, 2.0], [3.0, 4.0]]), axis=0, keepdims=True),
        tf.reduce_max(tf.constant([[1.0, 2.0], [3.0, 4.0]]), reduction_indices=0),
        tf.reduce_min(tf.constant([[1.0, 2.0], [3.0, 4.0]])),
        tf.reduce_prod(tf.constant([[1.0, 2.0], [3.0, 4.0]]), axis=[0, 1]),
        tf.reduce_all(tf.constant([[True, False]]), axis=1),
        tf.reduce_any(tf.constant([[True, False]]), axis=0),
        tf.reduce_logsumexp(tf.constant([[1000.0, 1000.0], [0.0, 1.0]]), axis=1),
        tf.reduce_sum(tf.constant([1, 2, 3]))],
    "pow and operators": lambda tf: [
        tf.pow(tf.constant([2.0, 3.0]), 3.0), tf.constant([4.0, 9.0]) ** 0.5,
        2.0 ** tf.constant([1.0, 2.0]), tf.pow(2, 3),
        tf.constant([1.0, 2.0]) > 1.5, ~(tf.constant([1.0]) < 0.0)],
    "clipping": lambda tf: [
        tf.clip_by_value(tf.constant([-2.0, 0.5, 3.0]), -1.0, 1.0),
        tf.clip_by_norm(tf.constant([3.0, 4.0]), 1.0),
        tf.clip_by_norm(tf.constant([[3.0, 0.0], [4.0, 0.1]]), 1.0, axes=[0]),
        tf.clip_by_global_norm([tf.constant([3.0]), tf.constant([4.0])], 1.0)[0],
        tf.global_norm([tf.constant([3.0]), tf.constant([[4.0]])])],
    "structure": lambda tf: [
        tf.concat([[[1, 2]], [[3, 4]]], 0), tf.stack([[1, 2], [3, 4]], axis=1),
        tf.unstack(tf.constant([[1, 2], [3, 4]]))[1],
        tf.split(tf.constant([1, 2, 3, 4, 5, 6]), [1, 2, 3])[2],
        tf.gather(tf.constant([[1, 2], [3, 4], [5, 6]]), [2, 0]),
        tf.one_hot([0, 2, -1], 3), tf.one_hot([1], 2, on_value=5, off_value=-1),
        tf.where([True, False], [1, 2], [3, 4]),
        tf.where([True, False], [[1, 2], [3, 4]], [[5, 6], [7, 8]]),
        tf.squeeze(tf.zeros([1, 2, 1])), tf.expand_dims(tf.constant([1, 2]), 1),
        tf.tile(tf.constant([[1, 2]]), [2, 2]), tf.pad(tf.constant([[1, 2]]), [[1, 0], [0, 2]]),
        tf.shape(tf.zeros([2, 3])), tf.size(tf.zeros([2, 3])), tf.rank(tf.zeros([2, 3])),
        tf.reshape(tf.range(6), [-1, 3]), tf.transpose(tf.reshape(tf.range(6), [2, 3])),
        tf.slice(tf.reshape(tf.range(12), [3, 4]), [1, 1], [2, -1]),
        tf.reverse(tf.reshape(tf.range(6), [2, 3]), [1]),
        tf.reshape(tf.range(24), [2, 3, 4])[1, ::2, -1], tf.range(10)[7:2:-2]],
    "tf.nn activations": lambda tf: [
        f(tf.constant([-3.0, -0.5, 0.0, 0.5, 7.0])) for f in (
            tf.nn.relu, tf.nn.relu6, tf.nn.elu, tf.nn.leaky_relu, tf.nn.softplus,
            tf.nn.sigmoid, tf.nn.tanh, tf.nn.softmax, tf.nn.log_softmax, tf.nn.l2_loss,
            tf.nn.l2_normalize)],
    "tf.nn cross-entropies per example": lambda tf: [
        tf.nn.softmax_cross_entropy_with_logits(labels=[[0.0, 1.0], [0.3, 0.7]],
                                                logits=[[1.0, 2.0], [5.0, -1.0]]),
        tf.nn.softmax_cross_entropy_with_logits_v2(labels=[[0.0, 1.0]], logits=[[1.0, 2.0]]),
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[1, 0],
                                                       logits=[[1.0, 2.0], [5.0, -1.0]]),
        tf.nn.sigmoid_cross_entropy_with_logits(labels=[[1.0, 0.0]], logits=[[2.0, -30.0]])],
    "tf.nn bias_add moments dropout": lambda tf: [
        tf.nn.bias_add(tf.ones([2, 3]), [1.0, 2.0, 3.0]),
        tf.nn.moments(tf.constant([[1.0, 2.0], [3.0, 6.0]]), axes=[0])[1],
        tf.nn.moments(tf.constant([[1.0, 2.0], [3.0, 6.0]]), axes=[0, 1], keep_dims=True)[0],
        tf.nn.dropout(tf.ones([3]), keep_prob=1.0), tf.nn.dropout(tf.ones([3]), rate=0.0),
        tf.nn.xw_plus_b(tf.ones([1, 2]), tf.ones([2, 2]), [1.0, 2.0]),
        tf.nn.embedding_lookup(tf.constant([[1.0], [2.0]]), [1, 1, 0])],
    "conv and pooling": lambda tf: [
        tf.nn.conv2d(tf.reshape(tf.range(50.0), [1, 5, 5, 2]),
                     tf.reshape(tf.range(36.0) / 36.0, [3, 3, 2, 2]), [1, 2, 2, 1], "SAME"),
        tf.nn.conv2d(tf.reshape(tf.range(50.0), [1, 5, 5, 2]),
                     tf.ones([2, 2, 2, 1]), strides=[1, 1, 1, 1], padding="VALID"),
        tf.nn.max_pool(tf.reshape(tf.range(25.0), [1, 5, 5, 1]), [1, 2, 2, 1],
                       [1, 2, 2, 1], "SAME"),
        tf.nn.avg_pool(tf.reshape(tf.range(25.0), [1, 5, 5, 1]), [1, 3, 3, 1],
                       [1, 2, 2, 1], "SAME")],
    "tf.losses reductions": lambda tf: [
        tf.losses.sparse_softmax_cross_entropy([0, 1], [[0.0, 2.0], [0.0, 2.0]]),
        tf.losses.mean_squared_error([1.0, 2.0, 3.0], [1.5, 2.0, 2.0], weights=[1.0, 0.0, 2.0]),
        tf.losses.mean_squared_error([[1.0], [2.0]], [[0.0], [0.0]],
                                     reduction=tf.losses.Reduction.NONE),
        tf.losses.absolute_difference([1.0, 2.0], [0.0, 0.0], weights=0.0),
        tf.losses.huber_loss([0.0, 0.0], [0.5, 3.0], reduction=tf.losses.Reduction.SUM),
        tf.losses.log_loss([1.0, 0.0], [0.9, 0.2], reduction=tf.losses.Reduction.MEAN,
                           weights=[2.0, 1.0]),
        tf.losses.softmax_cross_entropy([[0.0, 1.0]], [[1.0, 2.0]], label_smoothing=0.2),
        tf.losses.sigmoid_cross_entropy([[1.0, 0.0]], [[1.0, 2.0]], label_smoothing=0.1,
                                        reduction=tf.losses.Reduction.SUM_OVER_BATCH_SIZE),
        tf.losses.hinge_loss([[1.0, 0.0]], [[0.3, -2.0]])],
    "schedules": lambda tf: [
        tf.train.exponential_decay(0.1, tf.constant(25), 10, 0.5),
        tf.train.exponential_decay(0.1, tf.constant(25), 10, 0.5, staircase=True),
        tf.train.inverse_time_decay(0.1, tf.constant(25), 10, 0.5),
        tf.train.natural_exp_decay(0.1, tf.constant(25), 10, 0.5, staircase=True),
        tf.train.polynomial_decay(0.1, tf.constant(25), 100, 0.01, power=2.0),
        tf.train.piecewise_constant(tf.constant(25), [10, 20, 30], [1.0, 0.5, 0.1, 0.01])],
    "gradients": lambda tf: _gradients(tf),
}


def _gradients(tf):
    a = tf.Variable([1.0, 2.0, -0.5])
    b = tf.Variable([[5.0], [6.0], [0.0]])
    y = tf.reduce_sum(tf.stop_gradient(a) * a + tf.identity(b) * a + tf.nn.relu6(a * 3.0)
                      + tf.reduce_prod(b) + tf.reduce_min(a) * tf.reduce_max(b))
    pieces = tf.concat([a[::-1], tf.tile(a[:2], [2]), tf.pad(a, [[1, 2]])], axis=0)
    z = tf.reduce_sum(tf.where(a > 0.0, a * a, -a)) + tf.reduce_sum(tf.gather(b, [2, 2, 0]))
    dense = [tf.convert_to_tensor(g) for g in tf.gradients(z, [a, b])]  # TF: IndexedSlices
    return tf.gradients(y, [a, b]) + dense + tf.gradients(
        tf.reduce_sum(pieces * tf.range(13.0)), a) + tf.gradients(tf.reduce_sum(
            tf.nn.softplus(a) + tf.nn.elu(a) + tf.abs(a) ** 1.5 + tf.sqrt(tf.square(a) + 1.0)),
            a)


def _run_snippet(module, build):
    module.reset_default_graph()
    nodes = build(module)
    with module.Session() as sess:
        sess.run(module.global_variables_initializer())
        values = sess.run(nodes)
    return {str(i): v for i, v in enumerate(values)}


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_snippet_matches_tensorflow(name):
    want = _run_snippet(tf, SNIPPETS[name])
    got = _run_snippet(xtf, SNIPPETS[name])
    assert_same_records(want, got, name)


def test_one_adam_step_is_tf1s():
    """The issue's probe: Adam(0.1), w = [1, 1], gradient [1e-6, 1]."""
    def step(module):
        module.reset_default_graph()
        w = module.Variable([1.0, 1.0])
        train = module.train.AdamOptimizer(0.1).minimize(
            module.reduce_sum(w * module.constant([1e-6, 1.0])))
        with module.Session() as sess:
            sess.run(module.global_variables_initializer())
            sess.run(train)
            return {"w": sess.run(w)}

    assert_same_records(step(tf), step(xtf), "adam")
