"""``xpnn.compat.v1`` without TensorFlow: TF1's names, defaults, dtypes and errors, on every
backend; the TF 1.x programs of tests/compat/tf1_programs run alike on each backend (the oracle
tests, tests/compat/test_compat_v1_oracle.py, hold NumPy's runs to real TensorFlow)."""

from __future__ import annotations

import collections
import functools
import importlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import xpnn as xn
import xpnn.compat.v1 as tf
from tests.compat.tf1_programs import PROGRAMS, missing
from tests.compat.tf1_run import run

# --------------------------------------------------------------------------- programs

SLOW_ON_JAX = {"gradients", "mnist_softmax", "mlp_adam", "mixed_bag", "small_cnn",
               "losses_and_clipping", "layers_cnn", "layers_batch_norm", "sparse_embeddings",
               "more_ops", "sampled_losses", "tf1_semantics", "dynamic_shapes", "metrics",
               "rnn_cells", "dynamic_rnn", "rnn_stacks", "ptb_lstm"}  # JAX: test_compat_v1_rnn


@functools.cache
def _numpy_records(name, workdir):
    tf.use_device("cpu", backend="numpy")
    try:
        return importlib.import_module(f"tests.compat.tf1_programs.{name}").main(tf, workdir)
    finally:
        tf.use_device()


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_alike_on_every_backend(on, name, tmp_path, tmp_path_factory):
    if on.backend == "jax" and name in SLOW_ON_JAX:
        pytest.skip("JAX runs these op by op here (5-30 s a program); the other backends "
                    "cover them")
    if why := missing(name):
        pytest.skip(why)
    want = _numpy_records(name, str(tmp_path_factory.mktemp(name)))
    tf.use_device(on)  # (the NumPy run set it back to the default)
    got = importlib.import_module(f"tests.compat.tf1_programs.{name}").main(tf, str(tmp_path))
    with tf.Session() as sess:
        assert sess.device is on
    assert sorted(got) == sorted(want)
    for key, expected in want.items():
        expected, actual = np.asarray(expected), np.asarray(got[key])
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, key
        if expected.dtype.kind in "biuUS":
            np.testing.assert_array_equal(actual, expected, err_msg=key)
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6, err_msg=key)


# --------------------------------------------------------------------------- dtypes, values


def test_dtypes_are_objects_accepted_wherever_a_dtype_is(on):
    assert tf.float32 == "float32" and "int64" == tf.int64 and tf.float32 != tf.float64
    assert tf.as_dtype(np.float64) is tf.float64 and tf.as_dtype("bool") is tf.bool
    assert tf.as_dtype("float") is tf.float32 and tf.as_dtype("double") is tf.float64
    assert tf.placeholder("float").dtype == "float32"  # the MNIST tutorial's spelling
    assert tf.float32.as_numpy_dtype is np.float32 and tf.int32.is_integer
    assert tf.double is tf.float64 and tf.half is tf.float16 and tf.float32.max > 3e38
    assert {tf.float32: 1}["float32"] == 1  # equal objects hash alike
    assert xn.placeholder(tf.int32).dtype == "int32"  # xpnn's own functions take them too
    assert xn.Variable([1.0], dtype=tf.float64).dtype == "float64"
    x = tf.placeholder(tf.float64, [2])
    assert x.dtype == tf.float64 and run(tf.cast(x, tf.int32), {x: [1.9, -1.9]}).tolist() == [1, -1]
    with pytest.raises(TypeError, match="Cannot convert"):
        tf.as_dtype(object())


def test_values_take_tf1s_dtypes(on):
    nodes = [tf.constant(1), tf.constant(1.0), tf.constant([True]), tf.constant(2 ** 40),
             tf.constant(np.float64(1)), tf.constant(np.arange(2)), tf.constant(1, tf.float64),
             tf.zeros([2]), tf.ones([1], tf.int64), tf.fill([2], 3), tf.range(3),
             tf.range(0.0, 1.0, 0.5), tf.zeros_like(tf.constant([1, 2])),
             tf.ones_like([1.0], dtype=tf.int32), tf.to_int64(tf.constant(1.5)),
             tf.to_float(1), tf.to_double([1.0])]
    assert [n.dtype for n in nodes] == [
        "int32", "float32", "bool", "int64", "float64", "int64", "float64", "float32",
        "int64", "int32", "int32", "float32", "int32", "int32", "int64", "float32", "float64"]
    values = run(nodes)
    assert [np.asarray(v).dtype.name for v in values] == [n.dtype for n in nodes]
    assert values[9].tolist() == [3, 3] and values[11].tolist() == [0.0, 0.5]
    assert run(tf.constant(0.5, shape=[2, 2])).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert run(tf.constant([1, 2, 3, 4], shape=[2, 2])).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(TypeError, match="does not fill shape"):
        tf.constant([1, 2, 3], shape=[2, 2])
    with pytest.raises(TypeError, match=r"join tensors with tf.stack"):
        tf.constant([tf.constant(1.0), 2.0])


def test_random_tensors_are_seeded_and_the_same_on_every_backend(on):
    tf.set_random_seed(7)
    a = tf.random_normal([500], mean=1.0, stddev=2.0, seed=3)
    b = tf.truncated_normal([500], stddev=0.5, seed=3)
    u = tf.random_uniform([500], -2.0, 3.0, seed=3)
    k = tf.random_uniform([500], 0, 4, dtype=tf.int32, seed=3)
    c = tf.random_normal([3])  # graph seed only: drawn from the op's position
    values = run([a, b, u, k, c])
    tf.reset_default_graph()
    tf.set_random_seed(7)
    again = run([tf.random_normal([500], mean=1.0, stddev=2.0, seed=3),
                 tf.truncated_normal([500], stddev=0.5, seed=3),
                 tf.random_uniform([500], -2.0, 3.0, seed=3),
                 tf.random_uniform([500], 0, 4, dtype=tf.int32, seed=3), tf.random_normal([3])])
    for first, second in zip(values, again):
        np.testing.assert_array_equal(first, second)  # host draws: bit-identical anywhere
    assert abs(values[0].mean() - 1.0) < 0.3 and abs(values[0].std() - 2.0) < 0.3
    assert np.abs(values[1]).max() <= 1.0 and values[1].dtype == np.float32
    assert values[2].min() >= -2.0 and values[2].max() < 3.0
    assert set(values[3].tolist()) == {0, 1, 2, 3} and values[3].dtype == np.int32
    assert not np.array_equal(values[0], run(tf.random_normal([500], 1.0, 2.0, seed=4)))
    with pytest.raises(ValueError, match="need maxval"):
        tf.random_uniform([2], dtype=tf.int64)


def test_placeholders_feeds_and_fetches_by_name(on):
    x = tf.placeholder(tf.float32, shape=[None, 2], name="x")
    y = tf.placeholder(tf.int32)
    assert (x.name, y.name, tf.placeholder(tf.float32).name) == ("x", "Placeholder",
                                                               "Placeholder_1")
    total = tf.reduce_sum(x, name="total")
    doubled = tf.multiply(total, 2.0, name="doubled")
    graph = tf.get_default_graph()
    assert graph.get_tensor_by_name("total:0") is total and graph.get_operation_by_name(
        "doubled") is doubled
    with tf.Session() as sess:
        assert sess.run("doubled:0", {"x:0": [[1.0, 2.0]]}) == 6.0
        out = sess.run({"t": total, "pair": (doubled, [total])}, feed_dict={x: [[1.0, 1.0]]})
        assert out == {"t": 2.0, "pair": (4.0, [2.0])}
        Pair = collections.namedtuple("Pair", "a b")
        assert sess.run(Pair(total, doubled), {x: [[0.5, 0.5]]}) == Pair(1.0, 2.0)
        value = sess.run(total, {x: np.ones((3, 2))})
        assert type(value) is np.float32  # 0-d values as NumPy scalars, as TF1's
        assert type(sess.run(x, {x: [[1, 2]]})) is np.ndarray
        with pytest.raises(ValueError, match="expects shape"):
            sess.run(total, {x: [1.0, 2.0]})
        with pytest.raises(KeyError, match="not in the graph"):
            sess.run("missing:0")
        with pytest.raises(TypeError, match="invalid type"):
            sess.run(3)


def test_placeholder_with_default(on):
    keep = tf.placeholder_with_default(1.0, shape=[])
    rows = tf.placeholder_with_default(np.float32([[1, 2]]), shape=[None, 2])
    y = tf.reduce_sum(rows) * keep
    with tf.Session() as sess:
        assert sess.run(y) == 3.0
        assert sess.run(y, {keep: 0.5, rows: [[1, 1], [1, 1]]}) == 2.0
    with pytest.raises(ValueError, match="has shape"):
        tf.placeholder_with_default([1.0, 2.0], shape=[3])
    with pytest.raises(NotImplementedError, match="known when the graph is built"):
        tf.placeholder_with_default(tf.placeholder(tf.float32), shape=[])


# --------------------------------------------------------------------------- variables


def test_variables_and_their_initializers_are_real_ops(on):
    w = tf.Variable(tf.zeros([2]), name="w")
    n = tf.Variable(0, name="n", trainable=False)
    r = tf.Variable(tf.random_normal([3], seed=1) * 0.0 + w[0], name="r")  # computed now
    assert (w.dtype, n.dtype, r.dtype, tf.Variable(np.zeros(2)).dtype) == (
        "float32", "int32", "float32", "float64")
    assert tf.global_variables()[:3] == [w, n, r] and tf.trainable_variables()[:2] == [w, r]
    assert isinstance(w, xn.Variable) and isinstance(w, tf.Variable)
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        sess.run(init)
        assert sess.run(tf.assign(w, [1.0, 2.0])).tolist() == [1.0, 2.0]  # the new value
        assert sess.run(n.assign_add(5)) == 5 and sess.run(tf.assign_sub(n, 2)) == 3
        assert sess.run(w.assign_add([1.0, 1.0])).tolist() == [2.0, 3.0]
        sess.run(tf.variables_initializer([n]))
        assert (sess.run(n), sess.run(w).tolist()) == (0, [2.0, 3.0])
        sess.run(w.initializer)
        assert sess.run(w).tolist() == [0.0, 0.0]
        sess.run(n.assign(9))
        init.run(session=sess)
        assert sess.run(n) == 0
        w.load([4.0, 5.0], sess)
        assert w.eval(session=sess).tolist() == [4.0, 5.0]
        assert sess.run(w.initialized_value()).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="initial_value must be given"):
        tf.Variable()
    with pytest.raises(NotImplementedError, match="computed from a placeholder"):
        tf.Variable(tf.placeholder(tf.float32, [2]) * 2.0)
    with pytest.raises(ValueError, match="shape"):
        tf.assign(w, [1.0, 2.0, 3.0])


def test_variable_scope_and_get_variable(on):
    with tf.variable_scope("net") as scope:
        w = tf.get_variable("w", [2, 3])
        b = tf.get_variable("b", [3], initializer=tf.zeros_initializer())
        with tf.name_scope("ignored"):
            c = tf.get_variable("c", [1], dtype=tf.int32)
            d = tf.Variable(1.0, name="d")
        with pytest.raises(ValueError, match="Variable net/w already exists, disallowed"):
            tf.get_variable("w", [2, 3])
        scope.reuse_variables()
        assert tf.get_variable("w") is w
        with tf.variable_scope("inner"):
            assert tf.get_variable_scope().reuse is True  # inherited
    assert (w.name, b.name, c.name, d.name, scope.name) == (
        "net/w", "net/b", "net/c", "net/ignored/d", "net")
    assert c.dtype == "int32" and run(c).tolist() == [0]
    limit = np.sqrt(6.0 / 5.0)  # glorot_uniform, TF1's default
    assert np.abs(run(w)).max() <= limit and run(b).tolist() == [0.0, 0.0, 0.0]
    with tf.variable_scope("net", reuse=True):
        assert tf.get_variable("b") is b
        with pytest.raises(ValueError, match="Variable net/nope does not exist"):
            tf.get_variable("nope", [1])
        with pytest.raises(ValueError, match=r"specified shape \(4,\) and found shape \(3,\)"):
            tf.get_variable("b", [4])
    with tf.variable_scope(scope, reuse=True):
        assert tf.get_variable("w") is w
    with tf.variable_scope("auto", reuse=tf.AUTO_REUSE):
        first = tf.get_variable("v", [], initializer=tf.constant_initializer(2.5))
    with tf.variable_scope("auto", reuse=tf.AUTO_REUSE):
        assert tf.get_variable("v", []) is first and run(first) == 2.5
    with tf.variable_scope(None, default_name="layer"):
        one = tf.get_variable("k", [1])
    with tf.variable_scope(None, default_name="layer"):
        two = tf.get_variable("k", [1])
    assert (one.name, two.name) == ("layer/k", "layer_1/k")
    with tf.variable_scope("init", initializer=tf.ones_initializer()):
        assert run(tf.get_variable("o", [2])).tolist() == [1.0, 1.0]
        assert run(tf.get_variable("t", initializer=tf.constant([3.0, 4.0]))).tolist() == [3, 4]


def test_get_variable_refuses_to_share_a_variable_of_another_dtype(on):
    with tf.variable_scope("typed"):
        w = tf.get_variable("w", [2], dtype=tf.float32)
        h = tf.get_variable("h", [2], dtype=tf.float64)
    with tf.variable_scope("typed", reuse=True):
        with pytest.raises(ValueError, match="Trying to share variable typed/w, but specified "
                                             "dtype float64 and found dtype float32_ref"):
            tf.get_variable("w", dtype=tf.float64)
        # no dtype given: the scope's (float32), as TF1's VariableScope.get_variable
        with pytest.raises(ValueError, match="specified dtype float32 and found dtype float64"):
            tf.get_variable("h")
        assert tf.get_variable("w", [2], dtype=tf.float32) is w
        assert tf.get_variable("h", dtype=tf.float64) is h
    with tf.variable_scope("typed", reuse=tf.AUTO_REUSE, dtype=tf.float64):
        assert tf.get_variable("h") is h
        with pytest.raises(ValueError, match="specified dtype int32 and found dtype float64"):
            tf.get_variable("h", dtype=tf.int32)


def test_initializers(on):
    tf.set_random_seed(0)
    values = run([tf.truncated_normal_initializer(stddev=0.1)([1000]),
                  tf.random_uniform_initializer(-1.0, 1.0)([1000]),
                  tf.variance_scaling_initializer(2.0, "fan_in", "uniform")([50, 20]),
                  tf.glorot_normal_initializer()([20, 30]), tf.ones_initializer(tf.int32)([2]),
                  tf.constant_initializer([1, 2, 3, 4])([2, 2])])
    assert np.abs(values[0]).max() <= 0.2 and values[1].min() >= -1.0
    assert np.abs(values[2]).max() <= np.sqrt(3 * 2.0 / 50)
    assert abs(values[3].std() - np.sqrt(2 / 50)) < 0.02
    assert values[4].tolist() == [1, 1] and values[5].tolist() == [[1, 2], [3, 4]]


# --------------------------------------------------------------------------- sessions, graphs


def test_default_sessions_eval_and_run(on):
    v = tf.Variable(3.0)
    step = tf.assign_add(v, 1.0)
    with pytest.raises(ValueError, match="No default session is registered"):
        v.eval()
    sess = tf.Session(config=object(), target="")  # accepted and ignored
    with sess.as_default():
        assert tf.get_default_session() is sess
        tf.global_variables_initializer().run()
        step.run()
        assert v.eval() == 4.0
    assert tf.get_default_session() is None
    interactive = tf.InteractiveSession()
    assert tf.get_default_session() is interactive and v.eval() == 3.0  # its own values
    interactive.close()
    assert tf.get_default_session() is None
    assert v.get_shape().as_list() == [] and v.op is v
    x = tf.placeholder(tf.float32, [None, 3])
    shape = x.get_shape()
    assert shape.as_list() == [None, 3] and shape.ndims == 2 and not shape.is_fully_defined()
    assert tf.placeholder(tf.float32).get_shape().ndims is None
    x.set_shape([4, 3])
    assert x.shape == (4, 3)
    with pytest.raises(ValueError, match="incompatible"):
        x.set_shape([5, 3])


def test_graphs_collections_and_switches(on):
    tf.disable_eager_execution()
    tf.disable_v2_behavior()
    assert tf.executing_eagerly() is False
    with pytest.raises(NotImplementedError, match="graphs only"):
        tf.enable_eager_execution()
    first = tf.get_default_graph()
    tf.constant(1.0)
    tf.reset_default_graph()
    assert tf.get_default_graph() is not first and not tf.get_default_graph().nodes
    g = tf.Graph()
    with g.as_default():
        c = tf.constant(2.0, name="c")
        with tf.name_scope("scope"):
            d = tf.add(c, 1.0, name="d")
        tf.add_to_collection("mine", d)
        assert tf.get_collection("mine") == [d] and tf.get_collection("mine", "nope") == []
        assert tf.get_default_graph() is g and d.name == "scope/d"
        with tf.Session() as sess:
            assert sess.graph is g and sess.run(d) == 3.0
    assert tf.get_default_graph() is not g
    v = tf.Variable(1.0)
    assert tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES) == [v]
    assert tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES) == [v]


def test_group_no_op_and_control_dependencies(on):
    a, b = tf.Variable(0.0), tf.Variable(10.0)
    both = tf.group(tf.assign_add(a, 1.0), [tf.assign_sub(b, 1.0)], name="both")
    nothing = tf.no_op()
    counter = tf.Variable(0)
    fed = tf.placeholder(tf.int32, [])
    with tf.control_dependencies([tf.assign_add(counter, 1)]):
        watched = tf.identity(a * 2.0)
        with tf.control_dependencies([tf.assign_add(b, 100.0)]):
            inner = tf.identity(a)
    with tf.control_dependencies([tf.assign_add(counter, fed)]):
        made_here = tf.Variable(5.0)  # TF1 lifts Variables out: initialising it runs nothing
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(made_here) == 5.0
        assert sess.run(both) is None and sess.run(nothing) is None
        assert (sess.run(a), sess.run(b)) == (1.0, 9.0)
        assert sess.run(watched) == 2.0  # read before the run's writes
        assert sess.run(counter) == 1
        sess.run(inner)
        assert (sess.run(counter), sess.run(b)) == (2, 109.0)
        assert tf.tuple([a, b]) == [a, b]


# --------------------------------------------------------------------------- math, structure


def test_math_defaults_are_tf1s(on):
    x = tf.constant([[1.0, 5.0, 0.0], [3.0, 2.0, 4.0]])
    out = run([tf.argmax(x), tf.argmin(x), tf.argmax(x, 1), tf.argmax(x, dimension=1),
               tf.argmax(x, output_type=tf.int32), tf.equal(x, 5.0), x > 2.0,
               tf.reduce_sum(x, reduction_indices=[0], keep_dims=True),
               tf.reduce_mean(x, 1, keepdims=True), tf.reduce_max(x), tf.reduce_logsumexp(x),
               tf.matmul(x, x, transpose_b=True), tf.matmul(x, x, transpose_a=True),
               tf.add_n([x, x, x]), tf.squared_difference(x, 1.0), tf.rsqrt(x + 1.0),
               tf.pow(x, 2.5), tf.round(tf.constant([0.5, 1.5, -0.5])), tf.sign(x - 2.0),
               tf.add(1, 2), tf.scalar_mul(2.0, x), tf.truediv(x, 2.0)])
    assert out[0].tolist() == [1, 0, 1] and out[0].dtype == np.int64
    assert out[1].tolist() == [0, 1, 0] and out[2].tolist() == [1, 2] == out[3].tolist()
    assert out[4].dtype == np.int32 and out[5].dtype == np.bool_ and out[6].dtype == np.bool_
    assert out[7].tolist() == [[4.0, 7.0, 4.0]] and out[8].tolist() == [[2.0], [3.0]]
    assert out[9] == 5.0 and out[10] == pytest.approx(np.log(np.exp(x.value).sum()), 1e-6)
    np.testing.assert_allclose(out[11], x.value @ x.value.T)
    np.testing.assert_allclose(out[12], x.value.T @ x.value)
    np.testing.assert_allclose(out[16], x.value ** 2.5, rtol=1e-6)
    assert out[17].tolist() == [0.0, 2.0, -0.0] and out[19] == 3 and out[19].dtype == np.int32
    with pytest.raises(ValueError, match="axis or reduction_indices, not both"):
        tf.reduce_sum(x, axis=0, reduction_indices=0)


def test_clipping_is_tf1s(on):
    t = tf.Variable([3.0, 4.0])
    clipped, norm = tf.clip_by_global_norm([t, None, tf.constant([[0.0]])], 2.5)
    values = run([tf.clip_by_value(t, 3.5, 10.0), tf.clip_by_norm(t, 1.0),
                  tf.clip_by_norm(tf.zeros([2]), 1.0), norm, clipped[0],
                  tf.clip_by_value(t, tf.constant(0.0), tf.constant(3.5))])
    assert clipped[1] is None
    assert values[0].tolist() == [3.5, 4.0] and values[2].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(values[1], [0.6, 0.8], rtol=1e-6)
    assert values[3] == 5.0 and values[4].tolist() == [1.5, 2.0]
    assert values[5].tolist() == [3.0, 3.5]
    grad = run(tf.gradients(tf.reduce_sum(tf.clip_by_value(t, 3.0, 3.5)), t)[0])
    assert grad.tolist() == [1.0, 0.0]  # bounds count as inside, as TF1's
    nan_norm = tf.clip_by_global_norm([tf.constant([np.inf])], 1.0)[0][0]
    with np.errstate(invalid="ignore"):  # inf - inf, as TF1 computes it
        assert np.isnan(run(nan_norm)).all()


def test_structure_ops(on):
    x = tf.reshape(tf.range(12), [3, 4])
    out = run([x[1], x[:, ::-2], x[..., None, 0], tf.slice(x, [1, 0], [-1, 2]),
               tf.reverse(x, [0]), tf.concat([x, x], -1), tf.stack([x[0], x[1]], axis=1),
               tf.unstack(x, axis=1)[3], tf.split(x, 2, axis=1)[1],
               tf.split(x, [1, -1], 0)[1], tf.gather(x, [[2], [0]]), tf.gather(x, [3], axis=1),
               tf.one_hot([1, 3], 4, dtype=tf.int32), tf.one_hot([0, 1], 2, axis=0),
               tf.where([True, False, True], x, -x), tf.where_v2(x > 5, x, 0),
               tf.squeeze(tf.zeros([1, 3, 1]), squeeze_dims=[0]), tf.expand_dims(x, dim=0),
               tf.tile(x[:1], [2, 1]), tf.pad(x[:1, :2], [[0, 1], [2, 0]], constant_values=9),
               tf.shape(x), tf.shape(x, out_type=tf.int64), tf.size(x), tf.rank(x),
               tf.transpose(x), tf.transpose(tf.zeros([2, 3, 4]), [2, 0, 1])])
    host = np.arange(12).reshape(3, 4)
    expected = [host[1], host[:, ::-2], host[..., None, 0], host[1:, :2], host[::-1],
                np.concatenate([host, host], -1), np.stack([host[0], host[1]], 1), host[:, 3],
                host[:, 2:], host[1:], host[[[2], [0]]], host[:, [3]],
                np.eye(4, dtype=int)[[1, 3]], np.eye(2), np.where([[1], [0], [1]], host, -host),
                np.where(host > 5, host, 0), np.zeros((3, 1)), host[None],
                np.tile(host[:1], (2, 1)), np.pad(host[:1, :2], [[0, 1], [2, 0]],
                                                  constant_values=9),
                [3, 4], [3, 4], 12, 2, host.T, np.zeros((4, 2, 3))]
    for got, want in zip(out, expected):
        np.testing.assert_array_equal(got, want)
    assert out[12].dtype == np.int32 and out[20].dtype == np.int32 and out[21].dtype == np.int64
    np.testing.assert_array_equal(run(tf.where(x > 2)), np.argwhere(host > 2))  # issue 27
    with pytest.raises(ValueError, match="mode must be one of"):
        tf.pad(x, [[1, 1], [1, 1]], mode="WRAP")
    with pytest.raises(TypeError, match="not a sequence"):
        list(x)


def test_gradients_broadcast_and_second_order(on):
    a = tf.Variable(np.float32([[1.0], [2.0]]))
    b = tf.Variable(np.float32([1.0, 2.0, 3.0]))
    y = tf.reduce_sum((a * b) ** 2)
    da, db = tf.gradients(y, [a, b])
    (d2a,) = tf.gradients(tf.reduce_sum(da), a)
    assert tf.gradients(y, tf.Variable(1.0)) == [None]
    out = run([da, db, d2a])
    np.testing.assert_allclose(out[0], [[28.0], [56.0]])  # 2 a sum(b^2)
    np.testing.assert_allclose(out[1], [10.0, 20.0, 30.0])  # 2 b sum(a^2)
    np.testing.assert_allclose(out[2], [[28.0], [28.0]])


# --------------------------------------------------------------------------- tf.nn, tf.losses


def test_nn_cross_entropies_take_keywords_and_give_one_value_per_example(on):
    logits = tf.constant([[1.0, 2.0], [3.0, 1.0]])
    labels = tf.constant([[0.0, 1.0], [1.0, 0.0]])
    for fn in (tf.nn.softmax_cross_entropy_with_logits,
               tf.nn.sparse_softmax_cross_entropy_with_logits,
               tf.nn.sigmoid_cross_entropy_with_logits):
        with pytest.raises(ValueError, match="Only call .* with named arguments"):
            fn(labels, logits)
    per = [tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits),
           tf.nn.softmax_cross_entropy_with_logits_v2(labels, logits),
           tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[1, 0], logits=logits),
           tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)]
    assert [p.shape for p in per] == [(2,), (2,), (2,), (2, 2)]
    values = run(per)
    np.testing.assert_allclose(values[0], [0.3132617, 0.126928], rtol=1e-6)
    np.testing.assert_allclose(values[1], values[0]) and np.testing.assert_allclose(
        values[2], values[0], rtol=1e-6)
    # v1 lets no gradient into the labels, v2 does
    soft = tf.Variable([[0.5, 0.5]])
    assert tf.gradients(tf.nn.softmax_cross_entropy_with_logits(labels=soft, logits=logits[:1]),
                        soft) == [None]
    assert tf.gradients(tf.nn.softmax_cross_entropy_with_logits_v2(soft, logits[:1]),
                        soft)[0] is not None
    with pytest.raises(NotImplementedError, match="classes on the last axis"):
        tf.nn.softmax_cross_entropy_with_logits_v2(labels, logits, axis=0)


def test_nn_layers_with_tf1_conventions(on):
    images = tf.constant(np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2))
    filters = tf.constant(np.ones((3, 3, 2, 1), np.float32))
    conv = tf.nn.conv2d(images, filters, strides=[1, 2, 2, 1], padding="SAME")
    pooled = tf.nn.max_pool(images, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    average = tf.nn.avg_pool(images, [1, 3, 3, 1], [1, 1, 1, 1], "SAME")
    mean, variance = tf.nn.moments(tf.constant([[1.0, 2.0], [3.0, 6.0]]), axes=[0])
    normed = tf.nn.batch_normalization(tf.constant([0.0, 2.0]), 1.0, 1.0, None, None, 0.0)
    assert (conv.shape, pooled.shape, average.shape) == ((1, 2, 2, 1), (1, 2, 2, 2),
                                                         (1, 4, 4, 2))
    out = run([conv, pooled, mean, variance, normed, tf.nn.relu6([-1.0, 7.0]),
               tf.nn.leaky_relu([-1.0], alpha=0.1), tf.nn.l2_loss([3.0, 4.0]),
               tf.nn.bias_add(tf.zeros([1, 2]), [1.0, 2.0]), tf.nn.softmax([[0.0, 0.0]], axis=1),
               tf.nn.l2_normalize([3.0, 4.0]),
               tf.nn.embedding_lookup(tf.constant([[1.0], [2.0]]), [1, 0])])
    # SAME, stride 2 on 4 rows: one row of padding, at the bottom (TF1's rule)
    assert out[0][0, 0, 0, 0] == np.arange(32).reshape(4, 4, 2)[:3, :3].sum()
    assert out[0][0, 1, 1, 0] == np.arange(32).reshape(4, 4, 2)[2:, 2:].sum()
    assert out[1][0, 0, 0].tolist() == [10.0, 11.0]
    assert out[2].tolist() == [2.0, 4.0] and out[3].tolist() == [1.0, 4.0]
    assert out[4].tolist() == [-1.0, 1.0] and out[5].tolist() == [0.0, 6.0]
    assert out[7] == 12.5 and out[8].tolist() == [[1.0, 2.0]] and out[9].tolist() == [[0.5, 0.5]]
    np.testing.assert_allclose(out[10], [0.6, 0.8], rtol=1e-6)
    assert out[11].tolist() == [[2.0], [1.0]]


def test_dropout_keep_prob_and_rate(on):
    ones = tf.ones([2000])
    keep = tf.placeholder(tf.float32)
    by_keep = tf.nn.dropout(ones, keep_prob=keep)
    by_rate = tf.nn.dropout(ones, rate=0.75)
    with tf.Session() as sess:
        kept = sess.run(by_keep, {keep: 0.5})
        assert set(np.unique(kept).tolist()) == {0.0, 2.0} and 0.4 < (kept > 0).mean() < 0.6
        assert sess.run(by_keep, {keep: 1.0}).tolist() == [1.0] * 2000
        assert set(np.unique(sess.run(by_rate)).tolist()) == {0.0, 4.0}
    assert tf.nn.dropout(ones, keep_prob=1.0).type == "Identity"
    assert by_keep.op.inputs[1].type == "DropoutKeepMaskOf"
    with pytest.raises(ValueError, match="keep_prob or rate"):
        tf.nn.dropout(ones)
    with pytest.raises(NotImplementedError, match="noise_shape"):
        tf.nn.dropout(ones, 0.5, noise_shape=[1])


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.5])
def test_a_fed_keep_prob_outside_0_1_fails_where_it_is_read(dev, bad):
    """TF1 refuses keep_prob outside (0, 1]: so does every device that reads it for free,
    a compiled JAX plan too (checked on the host before its call); the others give NaN."""
    with xn.Graph().as_default():
        keep = tf.placeholder(tf.float32, shape=())
        y = tf.nn.dropout(tf.ones([4]), keep_prob=keep)
        sess = xn.Session(device=dev, seed=0)
        assert xn.to_numpy(sess.run(y, {keep: 1.0})).tolist() == [1.0] * 4
        if dev.reads_without_sync or dev.backend == "jax":
            with pytest.raises(xn.OpError, match=r"keep_prob must lie in \(0, 1\], got"):
                sess.run(y, {keep: bad})
        else:
            assert np.isnan(xn.to_numpy(sess.run(y, {keep: bad}))).all()


def test_losses_reduce_by_nonzero_weights(on):
    # per example 2.126928 and 0.126928: their mean; weights 0 and 3: 3 * 0.126928 / 1
    logits = tf.constant([[0.0, 2.0], [0.0, 2.0]])
    losses = [tf.losses.sparse_softmax_cross_entropy([0, 1], logits),
              tf.losses.sparse_softmax_cross_entropy([0, 1], logits, weights=[0.0, 3.0]),
              tf.losses.sparse_softmax_cross_entropy([[0], [1]], logits),
              tf.losses.mean_squared_error([1.0, 2.0], [2.0, 4.0]),
              tf.losses.mean_squared_error([1.0, 2.0], [2.0, 4.0], weights=[2.0, 0.0]),
              tf.losses.mean_squared_error([1.0, 2.0], [2.0, 4.0],
                                           reduction=tf.losses.Reduction.SUM),
              tf.losses.mean_squared_error([1.0, 2.0], [2.0, 4.0], weights=[2.0, 1.0],
                                           reduction=tf.losses.Reduction.MEAN),
              tf.losses.mean_squared_error([1.0, 2.0], [2.0, 4.0], weights=0.0),
              tf.losses.huber_loss([0.0, 0.0], [0.5, 3.0]),
              tf.losses.log_loss([1.0], [1.0]), tf.losses.absolute_difference([1.0], [3.0])]
    values = run(losses)
    np.testing.assert_allclose(values[:3], [1.126928, 3 * 0.126928, 1.126928], rtol=1e-6)
    assert values[3:8] == [2.5, 2.0, 5.0, (2 * 1 + 4) / 3, 0.0]
    assert values[8] == pytest.approx((0.125 + 2.5) / 2) and values[10] == 2.0
    assert values[9] == pytest.approx(-np.log(1 + 1e-7), abs=1e-6)
    assert tf.losses.get_losses() == losses
    assert run(tf.losses.get_total_loss()) == pytest.approx(sum(values), rel=1e-6)
    with pytest.raises(ValueError, match="Invalid Reduction Key"):
        tf.losses.compute_weighted_loss([1.0], reduction="average")


# --------------------------------------------------------------------------- tf.train


def test_optimizers_minimize_with_global_step(on):
    w = tf.Variable([1.0, -2.0], name="w")
    loss = tf.reduce_sum(w * w)
    step = tf.train.get_or_create_global_step()
    assert tf.train.get_or_create_global_step() is step and step.dtype == "int64"
    assert tf.train.get_global_step() is step and not step.trainable
    with pytest.raises(ValueError, match="already exists"):
        tf.train.create_global_step()
    rate = tf.train.exponential_decay(0.1, step, decay_steps=2, decay_rate=0.5, staircase=True)
    optimizers = [tf.train.GradientDescentOptimizer(rate), tf.train.MomentumOptimizer(0.1, 0.9),
                  tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
                  tf.train.AdamOptimizer(), tf.train.RMSPropOptimizer(0.01),
                  tf.train.AdagradOptimizer(0.1)]
    assert [o.get_name() for o in optimizers] == [
        "GradientDescent", "Momentum", "Momentum", "Adam", "RMSProp", "Adagrad"]
    train = optimizers[0].minimize(loss, global_step=step, name="train")
    others = [o.minimize(loss) for o in optimizers[1:]]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        rates = []
        for _ in range(4):
            rates.append(sess.run(rate))
            sess.run(train)
        assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05]) and sess.run(step) == 4
        assert tf.train.global_step(sess, step) == 4
        expected = np.float32([1.0, -2.0]) * np.float32([0.8, 0.8, 0.9, 0.9]).prod()
        np.testing.assert_allclose(sess.run(w), expected, rtol=1e-6)
        for other in others:
            sess.run(other)
        assert sess.run(step) == 4  # only the one given global_step counts
        assert sess.run("train") is None


def test_compute_and_apply_gradients(on):
    w = tf.Variable([1.0, 2.0])
    unused = tf.Variable([5.0])
    count = tf.Variable(0)  # trainable by default, as TF1's, but never differentiated
    loss = tf.reduce_sum(w * w)
    opt = tf.train.GradientDescentOptimizer(0.25)
    pairs = opt.compute_gradients(loss)
    assert [v for _, v in pairs] == [w, unused, count] and pairs[1][0] is None is pairs[2][0]
    capped = [(None if g is None else tf.clip_by_value(g, -1.0, 1.0), v) for g, v in pairs]
    step = opt.apply_gradients(capped)
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        opt.apply_gradients([(None, unused)])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step)
        assert sess.run(w).tolist() == [0.75, 1.75] and sess.run(unused).tolist() == [5.0]


def test_schedules(on):
    step = tf.placeholder(tf.int32, [])
    nodes = [tf.train.exponential_decay(1.0, step, 10, 0.5),
             tf.train.inverse_time_decay(1.0, step, 10, 1.0, staircase=True),
             tf.train.natural_exp_decay(1.0, step, 10, 1.0),
             tf.train.polynomial_decay(1.0, step, 20, 0.0, power=2.0),
             tf.train.piecewise_constant(step, [5, 15], [1.0, 0.5, 0.1])]
    with tf.Session() as sess:
        values = [sess.run(nodes, {step: s}) for s in (0, 5, 15, 30)]
    np.testing.assert_allclose(np.array(values), [
        [1.0, 1.0, 1.0, 1.0, 1.0], [0.5 ** 0.5, 1.0, np.exp(-0.5), 0.5625, 1.0],
        [0.5 ** 1.5, 0.5, np.exp(-1.5), 0.0625, 0.5], [0.125, 0.25, np.exp(-3.0), 0.0, 0.1]],
        rtol=1e-6, atol=1e-12)  # compiled JAX fuses multiply-adds: 0.0 may be 2e-16
    with pytest.raises(ValueError, match="global_step is required"):
        tf.train.exponential_decay(0.1, None, 1, 0.5)


def test_saver_round_trip_and_max_to_keep(on, tmp_path):
    w = tf.Variable([1.0, 2.0], name="w")
    b = tf.Variable(3, name="b")
    saver = tf.train.Saver(max_to_keep=2)
    only_w = tf.train.Saver(var_list={"weights": w})
    prefix = str(tmp_path / "model")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        paths = []
        for i in range(3):
            sess.run([tf.assign(w, [10.0 * i, 1.0]), tf.assign(b, i)])
            paths.append(saver.save(sess, prefix, global_step=i))
        assert paths == [f"{prefix}-0", f"{prefix}-1", f"{prefix}-2"]
        assert saver.last_checkpoints == paths[1:]
        assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model-1.npz", "model-2.npz"]
        assert tf.train.latest_checkpoint(str(tmp_path)) == paths[2]
        assert tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths == paths[1:]
        sess.run(tf.global_variables_initializer())
        saver.restore(sess, paths[1])
        assert (sess.run(w).tolist(), sess.run(b)) == ([10.0, 1.0], 1)
        only_w.save(sess, str(tmp_path / "w-only"), write_state=False)
        assert sorted(xn.io.load_arrays(str(tmp_path / "w-only.npz"))) == ["weights"]
        with pytest.raises(ValueError, match="not a valid checkpoint"):
            saver.restore(sess, paths[0])
        with pytest.raises(ValueError, match="when it is None"):
            saver.restore(sess, None)
    assert tf.train.latest_checkpoint(str(tmp_path / "nowhere")) is None
    assert tf.train.checkpoint_exists(paths[2]) and not tf.train.checkpoint_exists(paths[0])


# --------------------------------------------------------------------------- what is missing


@pytest.mark.parametrize("symbol, hint", [
    ("case", "tf.cond"), ("nn.raw_rnn", "dynamic_rnn"), ("layers.conv2d_transpose", "not impl"),
    ("flags", "argparse"), ("keras.layers", "Sequential"),
    ("no_such_name", "help(xpnn.compat.v1)"),
    ("nn.raw_rnn", "while_loop"), ("train.FtrlOptimizer", "not implemented"),
    ("losses.cosine_distance", "not implemented"), ("math.cumprod", "help(xpnn.compat.v1)"),
])
def test_missing_names_raise_not_implemented_naming_the_xpnn_way(symbol, hint):
    module, _, name = symbol.rpartition(".")
    where = getattr(tf, module) if module else tf
    with pytest.raises(NotImplementedError) as error:
        getattr(where, name)
    assert str(error.value).startswith(f"tf.{symbol} is not in xpnn.compat.v1: ")
    assert hint in str(error.value)
    assert not hasattr(where, name)  # also an AttributeError, for tools that probe
    with pytest.raises(AttributeError):
        tf._private_thing  # noqa: B018 - private names stay plain AttributeErrors


def _listed(doc: str, heading: str) -> set:
    """The names a docstring lists after ``heading`` (up to the next blank line)."""
    text = doc.split(heading, 1)[1].lstrip().split("\n\n", 1)[0]
    text = re.sub(r"^\s*- [a-z]+:", "", text, flags=re.M)  # the group labels
    return {n for n in re.split(r"[\s,.]+", text) if n}


@pytest.mark.parametrize("module, heading", [
    (tf, "Every name (tf.nn, tf.losses, tf.train and tf.layers list theirs):"),
    (tf.nn, "Its names:"), (tf.losses, "Its names:"), (tf.train, "Its names:"),
    (tf.layers, "Its names:")])
def test_docstrings_list_every_name(module, heading):
    assert _listed(module.__doc__, heading) == set(module.__all__)
    for name in module.__all__:
        getattr(module, name)

def test_tf_assign_refuses_what_xn_assign_refuses(on):
    counts = tf.Variable(np.array([1, 2], np.int32), name="counts")
    with pytest.raises(TypeError, match="Variable counts holds int32"):
        tf.assign(counts, [3.7, 1.0])  # was truncated to [3, 1] silently
    with pytest.raises(ValueError, match="Variable counts"):
        tf.assign(counts, [2**40, 1])  # was wrapped
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    assert xn.to_numpy(sess.run(tf.assign_add(counts, [5, 6]))).tolist() == [6, 8]


def test_compat_adds_nothing_to_core_classes():
    """Importing xpnn.compat.v1 changes no core class: a node's TF1 methods (``eval``,
    ``op``, ``get_shape``...) are Node's own, there before compat is imported."""
    script = """
import sys
import xpnn as xn
from xpnn import graph, session
assert "xpnn.compat.v1" not in sys.modules
classes = [graph.Node, graph.Placeholder, graph.Variable, graph.Constant, graph.Operation,
           graph.Update, graph.Graph, session.Session]
before = [dict(vars(c)) for c in classes]
x = xn.placeholder(shape=(None, 3))
y = x * 2.0
print(x.get_shape().as_list(), x.op is x, y.consumers() == [], x.consumers() == [y],
      y.eval({x: [[1.0, 2.0, 3.0]]}, session=xn.Session()).tolist())
import xpnn.compat.v1
print(sorted(f"{c.__name__}.{k}" for c, old in zip(classes, before)
             for k in set(vars(c)) | set(old) if vars(c).get(k) is not old.get(k)))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["[None, 3] True True True [[2.0, 4.0, 6.0]]", "[]"]
