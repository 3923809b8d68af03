"""``xpnn.compat.v1`` where ordinary TF 1.x code crashed or differed from TF1: get_variable
from a value, batch_normalization and dropout on a training placeholder, tensors in shape
arguments, tf.gradients' grad_ys and stop_gradients, polynomial_decay(cycle=True) and tf.pad's
REFLECT and SYMMETRIC modes. What TF1 gives was asked of tensorflow.compat.v1 (the oracle
test holds tests/compat/tf1_programs/tf1_semantics.py to it)."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn.compat.v1 as tf
from tests.compat.tf1_run import run

# --------------------------------------------------------------------------- get_variable


def test_get_variable_takes_a_value_as_initializer_with_its_dtype(on):
    """TF1: a NumPy array keeps its dtype, a Python list or number takes TF1's (int32,
    float32), a tensor its own; the scope's dtype does not cast it."""
    with tf.variable_scope("v", dtype=tf.float64):
        made = [tf.get_variable("array", initializer=np.arange(6.0).reshape(2, 3)),
                tf.get_variable("array32", initializer=np.ones(2, np.float32)),
                tf.get_variable("ints", initializer=[1, 2, 3]),
                tf.get_variable("number", initializer=0.5),
                tf.get_variable("tensor", initializer=tf.constant([1.0, 2.0]))]
    assert [v.dtype for v in made] == ["float64", "float32", "int32", "float32", "float32"]
    assert made[0].shape == (2, 3) and made[2].shape == (3,) and made[3].shape == ()
    values = run(made)
    np.testing.assert_array_equal(values[0], np.arange(6.0).reshape(2, 3))
    assert values[2].tolist() == [1, 2, 3] and values[4].tolist() == [1.0, 2.0]


def test_get_variable_refuses_a_shape_or_another_dtype_beside_a_value(on):
    with pytest.raises(ValueError, match=r"get_variable a: If initializer is a constant, "
                                         r"do not specify shape"):
        tf.get_variable("a", [2, 3], initializer=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"get_variable b: Initializer type 'float64' and "
                                         r"explicit dtype 'float32' don't match"):
        tf.get_variable("b", dtype=tf.float32, initializer=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Initializer type 'int32' and explicit dtype"):
        tf.get_variable("c", dtype=tf.float32, initializer=[1, 2])
    assert tf.global_variables() == []  # nothing was made


def test_get_variable_under_reuse_refuses_another_dtype_or_shape(on):
    with tf.variable_scope("s"):
        tf.get_variable("w", [2, 3])
        tf.get_variable("v", initializer=np.ones(2))
    with tf.variable_scope("s", reuse=True):
        with pytest.raises(ValueError, match=r"share variable s/w, but specified dtype int32 "
                                             r"and found dtype float32"):
            tf.get_variable("w", dtype=tf.int32)
        with pytest.raises(ValueError, match=r"s/w, but specified shape \(3, 2\) and found "
                                             r"shape \(2, 3\)"):
            tf.get_variable("w", [3, 2])
        with pytest.raises(ValueError, match=r"s/v, but specified dtype float32 and found "
                                             r"dtype float64"):
            tf.get_variable("v")  # the scope's float32, as TF1's
        assert tf.get_variable("v", dtype=tf.float64).dtype == "float64"


# --------------------------------------------------------------------------- training flags


def test_batch_normalization_and_dropout_on_a_flag_keep_the_shape(on):
    x = tf.placeholder(tf.float32, [None, 6, 6, 3])
    training = tf.placeholder(tf.bool)  # no shape, as tutorials write it
    y = tf.layers.batch_normalization(x, training=training)
    z = tf.layers.dropout(y, rate=0.5, training=training)
    out = tf.layers.conv2d(z, 2, 3)
    assert y.shape == (None, 6, 6, 3) and z.shape == (None, 6, 6, 3)
    assert out.shape == (None, 4, 4, 2)
    data = np.random.RandomState(0).randn(4, 6, 6, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        tested = sess.run(y, {x: data, training: True})
        served = sess.run(z, {x: data, training: False})
        assert sess.run(out, {x: data, training: True}).shape == (4, 4, 4, 2)
    mean, var = data.mean((0, 1, 2)), data.var((0, 1, 2))
    np.testing.assert_allclose(tested, (data - mean) / np.sqrt(var + 1e-3), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(served, data / np.sqrt(1 + 1e-3), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- tf.gradients


def test_gradients_weights_ys_by_grad_ys(on):
    a = tf.constant(2.0)
    b = a * 3.0
    c, d = b * b, a * b  # dc/da = 36, dd/da = 12
    v = tf.constant([1.0, 2.0, 3.0])
    got = run([tf.gradients([c, d], [a], grad_ys=[None, 3.0])[0],
               tf.gradients(c, a, grad_ys=tf.constant(2.0))[0],
               tf.gradients(v * v, v, grad_ys=[[1.0, 0.0, 2.0]])[0]])
    assert got[0] == 72.0 and got[1] == 72.0 and got[2].tolist() == [2.0, 0.0, 12.0]


def test_gradients_refuses_grad_ys_of_another_count_or_shape(on):
    a = tf.constant(2.0)
    c = a * a
    with pytest.raises(ValueError, match="Length mismatch. Passed 2 grad_ys for 1 ys"):
        tf.gradients([c], [a], grad_ys=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"grad_ys entry of shape \(2,\) for .* of shape \(\)"):
        tf.gradients([c], [a], grad_ys=[tf.constant([1.0, 2.0])])


def test_gradients_stop_at_stop_gradients(on):
    """As TF1: no gradient goes through a stopped tensor to its inputs; one of xs that is
    stopped still gets its own."""
    a = tf.constant(2.0)
    b = a * 3.0
    c, d = b * b, a * b
    assert tf.gradients(c, [a], stop_gradients=[b]) == [None]
    assert tf.gradients(c, [a], stop_gradients=[c]) == [None]
    both = tf.gradients(c, [a, b], stop_gradients=[b])
    assert both[0] is None
    got = run([both[1], tf.gradients(c, [a], stop_gradients=[a])[0],
               tf.gradients(d + c, [a], stop_gradients=b)[0],
               tf.gradients(d + c, [a], stop_gradients=[c])[0]])
    assert got == [12.0, 36.0, 6.0, 12.0]


# --------------------------------------------------------------------------- schedules


def test_polynomial_decay_cycles_as_tf1(on):
    """decay_steps * ceil(step / decay_steps), 1 cycle at step 0."""
    step = tf.placeholder(tf.int64, [])
    rate = tf.train.polynomial_decay(0.1, step, 10, end_learning_rate=0.01, power=2.0,
                                     cycle=True)
    with tf.Session() as sess:
        got = [sess.run(rate, {step: s}) for s in (0, 1, 10, 11, 25)]

    def want(s):
        steps = 10 * max(1, np.ceil(s / 10))
        return (0.1 - 0.01) * (1 - s / steps) ** 2 + 0.01

    np.testing.assert_allclose(got, [want(s) for s in (0, 1, 10, 11, 25)], rtol=1e-6)


# --------------------------------------------------------------------------- tf.pad


@pytest.mark.parametrize("mode", ["REFLECT", "symmetric", "Symmetric"])
def test_pad_mirrors_and_its_gradient_adds_back(on, mode):
    data = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = tf.placeholder(tf.float32, [2, 3])
    rows = [[1, 1], [2, 2]]
    y = tf.pad(x, rows, mode=mode)
    weights = np.random.RandomState(1).randn(4, 7).astype(np.float32)
    grad, = tf.gradients(tf.reduce_sum(y * weights), x)
    assert y.shape == (4, 7)
    got, got_grad = run([y, grad], {x: data})
    want = np.pad(data, rows, mode=mode.lower())
    np.testing.assert_array_equal(got, want)
    # the gradient by the chain rule on the indices np.pad copied
    index = np.pad(np.arange(6).reshape(2, 3), rows, mode=mode.lower())
    want_grad = np.bincount(index.ravel(), weights.ravel(), minlength=6).reshape(2, 3)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-5)


def test_pad_refuses_an_unknown_mode_or_too_much_mirroring(on):
    x = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(ValueError, match='mode must be one of "CONSTANT", "REFLECT", or '
                                         '"SYMMETRIC", got \'WRAP\''):
        tf.pad(x, [[1, 1], [1, 1]], mode="wrap")
    with pytest.raises(ValueError, match=r"reflect padding of \(2, 1\) along axis 0 of size 2: "
                                         r"each side takes at most 1"):
        tf.pad(x, [[2, 1], [0, 0]], mode="REFLECT")
    tf.pad(x, [[2, 1], [3, 0]], mode="SYMMETRIC")  # the edge repeated: up to the size
    fed = tf.placeholder(tf.float32, [None, 3])
    y = tf.pad(fed, [[2, 0], [0, 0]], mode="REFLECT")
    with pytest.raises(Exception, match=r"reflect padding of \(2, 0\) along axis 0 of size 2"):
        run(y, {fed: np.ones((2, 3), np.float32)})


# --------------------------------------------------------------------------- shapes as tensors


def test_tensors_in_shape_arguments_as_tf1(on):
    """The ops take ``tf.shape(x)[0]`` (or a shape tensor) where a shape goes, keeping the
    static shape TF1 knows (and ``reshape(x, [tf.shape(x)[0], -1])``'s last axis)."""
    x = tf.placeholder(tf.float32, [None, 4, 5])
    y = tf.placeholder(tf.float32, [None, 3])
    n = tf.shape(x)[0]
    nodes = {"range": tf.range(n), "range2": tf.range(1, n * 3, 2),
             "flat": tf.reshape(x, [n, -1]), "cols": tf.reshape(x, [-1, tf.shape(x)[2]]),
             "same": tf.reshape(x, tf.shape(x)), "zeros": tf.zeros([n, 3]),
             "ones": tf.ones([n, 3], tf.int32), "fill": tf.fill(tf.shape(y), 7),
             "tile": tf.tile(y, [n, 1]), "normal": tf.random_normal([n, 2], seed=1),
             "uniform": tf.random_uniform(tf.shape(y), seed=1)}
    static = {"range": (None,), "range2": (None,), "flat": (None, 20), "cols": (None, 5),
              "same": (None, 4, 5), "zeros": (None, 3), "ones": (None, 3), "fill": (None, 3),
              "tile": (None, 3), "normal": (None, 2), "uniform": (None, 3)}
    assert {k: v.shape for k, v in nodes.items()} == static
    data, rows = np.ones((2, 4, 5), np.float32), np.arange(6.0, dtype=np.float32).reshape(2, 3)
    got = run(nodes, {x: data, y: rows})
    want = {"range": np.arange(2), "range2": np.arange(1, 6, 2),
            "flat": data.reshape(2, 20), "cols": data.reshape(-1, 5), "same": data,
            "zeros": np.zeros((2, 3)), "ones": np.ones((2, 3)), "fill": np.full((2, 3), 7),
            "tile": np.tile(rows, (2, 1))}
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert got["range"].dtype == np.int32 and got["fill"].dtype == np.int32
    assert got["ones"].dtype == np.int32 and got["zeros"].dtype == np.float32
    assert got["normal"].shape == (2, 2) and got["uniform"].shape == (2, 3)
    assert 0.0 <= got["uniform"].min() and got["uniform"].max() < 1.0


def test_a_fed_value_as_a_shape_and_its_errors(on):
    x = tf.placeholder(tf.float32, [None, 4])
    k = tf.placeholder(tf.int32, [])
    flat = tf.reshape(x, [k, -1])
    assert flat.shape == (None, None)
    data = np.arange(8.0, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(run(flat, {x: data, k: 4}), data.reshape(4, 2))
    with pytest.raises(Exception, match=r"cannot reshape \(2, 4\) into \(3, -1\)"):
        run(flat, {x: data, k: 3})
    with pytest.raises(Exception, match=r"a list argument takes numbers, got values of shapes"):
        run(tf.zeros([tf.shape(x), 2]), {x: data})


def test_gradients_through_shapes_known_at_run_time(on):
    x = tf.placeholder(tf.float32, [None, 3])
    n = tf.shape(x)[0]
    w = tf.Variable(np.float32([[1.0, 2.0, 3.0]]))
    tiled = tf.tile(w, [n, 1])  # one row of w per example
    loss = tf.reduce_sum(tf.reshape(tiled * x, [n, -1, 1]) ** 2) + tf.reduce_sum(
        tf.fill([n, 2], tf.reduce_sum(w)))
    grad, = tf.gradients(loss, w)
    data = np.random.RandomState(0).randn(3, 3).astype(np.float32)
    want = (2 * np.float32([1.0, 2.0, 3.0]) * data ** 2).sum(0, keepdims=True) + 3 * 2
    np.testing.assert_allclose(run(grad, {x: data}), want, rtol=1e-5)


def test_a_compiled_jax_plan_stays_compiled_for_shapes_of_its_inputs():
    """Under jax.jit the shapes of the inputs are known while tracing: a shape computed
    from them keeps the plan one compiled call; a fed value used as a shape is a tracer
    there, and the plan runs op by op instead (same results)."""
    pytest.importorskip("jax")
    import xpnn as xn

    with xn.Graph().as_default() as graph:
        x = xn.placeholder("float32", (None, 4), name="x")
        k = xn.placeholder("int32", (), name="k")
        n = xn.ops.shape.shape(x)[0]
        from_shape = xn.ops.reshape_to(x * 2.0, [n * 2, -1]) + xn.random_normal([n * 2, 2])
        from_value = xn.ops.reshape_to(x, [k, -1])
    data = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    for fetch, feed, eager in ((from_shape, {x: data}, False), (from_value, {x: data, k: 6},
                                                                 True)):
        sess = xn.Session(backend="jax", graph=graph, seed=0)
        reference = xn.Session(backend="numpy", graph=graph, seed=0)
        got, want = sess.run(fetch, feed, to_numpy=True), reference.run(fetch, feed)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert [r.eager for r in sess._executors.values()] == [eager]


def test_fill_with_a_tensor_value(on):
    value = tf.placeholder(tf.float32, [])
    filled = tf.fill([2, 3], value)
    assert filled.shape == (2, 3) and filled.dtype == "float32"
    np.testing.assert_array_equal(run(filled, {value: 1.5}), np.full((2, 3), 1.5, np.float32))
