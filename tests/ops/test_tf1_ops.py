"""The core ops TF1 programs need beyond the series' (math_ops, activations, logic,
structure, assign), on every backend: gradients at kinks, bool and integer results, updates.
(Their forward values against NumPy and gradients against finite differences are cases of
the one table, tests/ops/cases.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import assignment, ops
from xpnn.ops import logic


def test_empty_slice_has_a_zero_gradient(dev):
    with xn.Graph().as_default():
        x = xn.Variable(np.ones((4, 2)))
        g = xn.gradients(xn.reduce_sum(x[3:1]) + xn.reduce_sum(x[:1]), [x])[0]
        np.testing.assert_array_equal(xn.Session(device=dev).run(g, to_numpy=True),
                                      [[1, 1], [0, 0], [0, 0], [0, 0]])


def test_gradients_at_kinks_are_tf1s(dev):
    """relu6: 0 at both bounds; reduce_prod: the product of the others where one is 0, none
    where two are; pow's exponent: 0 where the base is not positive."""
    with xn.Graph().as_default():
        x = xn.Variable([0.0, 3.0, 6.0])
        p = xn.Variable([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]])
        base = xn.Variable([0.0, -2.0, 2.0])
        e = xn.Variable([2.0, 2.0, 2.0])
        grads = xn.gradients(xn.reduce_sum(ops.relu6(x)), [x]) + xn.gradients(
            xn.reduce_sum(ops.reduce_prod(p, axis=1)), [p]) + xn.gradients(
            xn.reduce_sum(base ** e), [e])
        out = xn.Session(device=dev).run(grads, to_numpy=True)
    np.testing.assert_array_equal(out[0], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(out[1], [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(out[2], [0.0, 0.0, 4.0 * np.log(2.0)], rtol=1e-6)


def test_comparisons_and_logic_are_bool(dev):
    with xn.Graph().as_default():
        a = xn.constant([1.0, 2.0, 3.0])
        b = xn.constant([3.0, 2.0, 1.0])
        nodes = [a < b, a <= b, a > b, a >= b, logic.equal(a, b), logic.not_equal(a, b),
                 (a < b) & (a > 0.0), (a < b) | (a > b), (a < b) ^ (a <= b), ~(a < b),
                 ops.reduce_any(a > b), ops.reduce_all(a > 0.0, axis=0), 2.0 < a]
        assert {n.dtype for n in nodes} == {"bool"}
        out = xn.Session(device=dev).run(nodes, to_numpy=True)
    assert all(o.dtype == np.bool_ for o in out)
    assert [o.tolist() for o in out] == [
        [True, False, False], [True, True, False], [False, False, True], [False, True, True],
        [False, True, False], [True, False, True], [True, False, False], [True, False, True],
        [False, True, False], [False, True, True], True, True, [False, False, True]]


def test_integer_and_index_results(dev):
    with xn.Graph().as_default():
        x = xn.constant([[3.0, 1.0], [0.0, 5.0]])
        out = xn.Session(device=dev).run(
            [ops.argmin(x, axis=0), ops.cast(xn.constant([1.7, -1.7]), "int32"),
             ops.shape.shape(x), ops.one_hot([2, -1, 0], 3),
             ops.one_hot([1], 2, on_value=5.0, off_value=-1.0, axis=0),
             ops.floor(xn.constant([1.5, -1.5]))], to_numpy=True)
    assert out[0].tolist() == [1, 0] and out[0].dtype == np.int64
    assert out[1].tolist() == [1, -1] and out[1].dtype == np.int32
    assert out[2].tolist() == [2, 2] and out[2].dtype == np.int32
    assert out[3].tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert out[4].tolist() == [[-1.0], [5.0]]
    assert out[5].tolist() == [1.0, -2.0]


def test_stop_gradient_blocks_and_identity_passes(dev):
    with xn.Graph().as_default():
        w = xn.Variable(3.0)
        y = w * ops.stop_gradient(w) + ops.identity(w)
        assert xn.Session(device=dev).run(xn.gradients(y, [w])[0], to_numpy=True) == 4.0


def test_slicing_errors():
    x = xn.placeholder(shape=(2, 3), name="x")
    with pytest.raises(TypeError, match="gather"):
        x[xn.placeholder(name="i")]  # a node of no known integer dtype
    with pytest.raises(TypeError, match="gather"):
        x[xn.placeholder("float32", (), name="f")]
    with pytest.raises(TypeError, match="Python ints, slices"):
        x[[0, 1]]
    with pytest.raises(IndexError, match="out of bounds"):
        x[2]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(TypeError, match="not a sequence"):
        list(x)
    with pytest.raises(ValueError, match="does not split"):
        ops.split(x, 2, axis=1)
    with pytest.raises(ValueError, match="cannot squeeze axis 1 of size 3"):
        ops.squeeze(x, 1)


def test_assign_and_group_write_after_the_run(dev):
    with xn.Graph().as_default():
        v = xn.Variable([1.0, 2.0], name="v")
        n = xn.Variable(np.int64(0), name="n")
        inc = assignment.assign_add(n, 1)
        both = assignment.group(assignment.assign(v, v * 10.0), inc, name="both")
        sess = xn.Session(device=dev)
        _, before, new_n = sess.run([both, v, inc.value], to_numpy=True)
        assert before.tolist() == [1.0, 2.0] and new_n == 1  # values from before the writes
        np.testing.assert_array_equal(sess.run(v, to_numpy=True), [10.0, 20.0])
        assert sess.run(n, to_numpy=True) == 1 and n.dtype == "int64"
        sess.run(assignment.assign_sub(v, [1.0, 1.0]))
        np.testing.assert_array_equal(sess.run(v, to_numpy=True), [9.0, 19.0])
        sess.run(assignment.initializer([v, n]))
        assert sess.run([v, n], to_numpy=True)[0].tolist() == [1.0, 2.0]
        with pytest.raises(ValueError, match="shape"):
            assignment.assign(v, [1.0, 2.0, 3.0])
        with pytest.raises(TypeError, match="not a Variable"):
            assignment.assign(v * 2.0, [1.0, 2.0])
        fed = xn.placeholder(name="fed")
        bad = assignment.assign(v, fed)
        with pytest.raises(xn.OpError, match=r"has shape \(3,\) but the Variable has shape"):
            sess.run(bad, {fed: [1.0, 2.0, 3.0]})
        np.testing.assert_array_equal(sess.run(v, to_numpy=True), [1.0, 2.0])


def test_dropout_rate_may_be_a_node(dev):
    with xn.Graph().as_default():
        rate = xn.placeholder(shape=(), name="rate")
        y = xn.dropout(xn.constant(np.ones(1000, np.float32)), rate=rate)
        sess = xn.Session(device=dev, seed=0)
        kept = sess.run(y, {rate: 0.25}, to_numpy=True)
        assert set(kept.tolist()) == {0.0, np.float32(1 / 0.75)}
        assert 0.65 < np.mean(kept > 0) < 0.85
        np.testing.assert_array_equal(sess.run(y, {rate: 0.0}, to_numpy=True), 1.0)
        portable = xn.Session(device=dev, seed=0, passes=False)
        checked = dev.backend == "jax"  # its compiled plan checks a host-fed rate first
        for bad in (1.0, 1.5, -0.5):
            for session, reads in ((portable, dev.reads_without_sync),
                                   (sess, dev.reads_without_sync or checked)):
                if reads:
                    with pytest.raises(xn.OpError,
                                       match=rf"rate must lie in \[0, 1\), got {bad}"):
                        session.run(y, {rate: bad})
                else:  # the rate is not read on the host (CuPy): NaN, not a silent wrong
                    # mask
                    assert np.isnan(session.run(y, {rate: bad}, to_numpy=True)).all()
        assert 0.0 in xn.to_numpy(xn.Session(device=dev, seed=0).run(y, {rate: 0.25}))


def test_nodes_by_tf1_tensor_name():
    g = xn.Graph()
    with g.as_default():
        x = xn.placeholder(name="x")
        with xn.name_scope("layer"):
            y = x * 2.0
        xn.constant(1.0, name="twice")
        xn.constant(2.0, name="twice")
    assert g.get_tensor_by_name("x:0") is x and g.get_operation_by_name("x") is x
    assert g.get_tensor_by_name("layer/Multiply:0") is y
    with pytest.raises(ValueError, match="looks like an .*Operation name, not a Tensor"):
        g.get_tensor_by_name("x")
    with pytest.raises(KeyError, match="one output"):
        g.get_tensor_by_name("x:1")
    with pytest.raises(KeyError, match="not in the graph"):
        g.get_tensor_by_name("missing:0")
    with pytest.raises(ValueError, match="2 nodes are named 'twice'"):
        g.get_tensor_by_name("twice:0")


def test_sparse_cross_entropy_takes_int32_labels(dev):
    """TF1 programs feed int32 labels; PyTorch gathers with int64 indices only."""
    with xn.Graph().as_default():
        labels = xn.placeholder(dtype="int32", name="labels")
        logits = xn.Variable(np.float32([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]))
        loss = xn.losses.sparse_softmax_cross_entropy(labels, logits)
        value, grad = xn.Session(device=dev).run(
            [loss, xn.gradients(loss, [logits])[0]], {labels: np.int32([1, 2])}, to_numpy=True)
    z = np.float64([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(value, -(log_p[0, 1] + log_p[1, 2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(grad, (np.exp(log_p) - np.eye(3)[[1, 2]]) / 2, rtol=1e-5)
