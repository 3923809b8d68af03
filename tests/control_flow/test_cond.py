"""``xn.cond`` on every backend, passes on and off: the pred fed or computed, only the
taken branch runs, gradients through the taken branch (zeros for the other's inputs),
nested conds, list results, captured Variables and placeholders, second order; checked
against central differences and torch.autograd on the unrolled twin."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close
from tests.control_flow.helpers import central_differences, tensors

X0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
W0 = np.array([0.3, -0.6, 0.9])


def test_fed_pred_picks_the_branch_and_lists_come_back_as_lists(dev, passes):
    with xn.Graph().as_default():
        flag = xn.placeholder("bool", (), name="flag")
        x = xn.placeholder("float32", (2, 3), name="x")
        w = xn.Variable(W0.astype(np.float32), name="w")
        a, b = xn.cond(flag, lambda: [x * w, xn.reduce_sum(x)], lambda: [x - w, xn.constant(7.0)])
        sess = xn.Session(device=dev, passes=passes)
        X = X0.astype(np.float32)
        got_true = sess.run([a, b], {flag: True, x: X}, to_numpy=True)
        got_false = sess.run([a, b], {flag: np.asarray(False), x: X}, to_numpy=True)
    assert a.shape == (2, 3) and b.shape == ()
    assert_close(got_true[0], X * W0.astype(np.float32))
    assert_close(got_true[1], X.sum())
    assert_close(got_false[0], X - W0.astype(np.float32))
    assert_close(got_false[1], 7.0)


def test_computed_pred(dev, passes):
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (3,), name="x")
        y = xn.cond(xn.reduce_sum(x) > 0.0, lambda: x * 2.0, lambda: -x)
        sess = xn.Session(device=dev, passes=passes)
        for value in ([1.0, 2.0, -0.5], [-1.0, -2.0, 0.5]):
            v = np.array(value, np.float32)
            want = v * 2.0 if v.sum() > 0 else -v
            assert_close(sess.run(y, {x: v}), want)


def test_a_python_bool_pred(dev, passes):
    with xn.Graph().as_default():
        y = xn.cond(False, lambda: xn.constant(1.0), lambda: xn.constant(2.0))
        assert_close(xn.Session(device=dev, passes=passes).run(y), 2.0)


def test_only_the_taken_branch_runs(dev, passes):
    """A branch that would fail (a reshape of the wrong size, labels out of range) fails
    the run only when taken."""
    with xn.Graph().as_default():
        flag = xn.placeholder("bool", (), name="flag")
        x = xn.placeholder("float32", None, name="x")  # unknown shape: nothing fails at build
        labels = xn.placeholder("int64", None, name="labels")
        bad_reshape = xn.cond(flag, lambda: xn.reduce_sum(x),
                              lambda: xn.reduce_sum(xn.reshape(x, (7,))))
        bad_labels = xn.cond(flag, lambda: xn.reduce_sum(x),
                             lambda: xn.losses.sparse_softmax_cross_entropy(labels, x))
        sess = xn.Session(device=dev, passes=passes)
        X = np.ones((2, 3), np.float32)
        feed = {x: X, labels: np.array([5, 9]), flag: True}
        assert_close(sess.run(bad_reshape, feed), 6.0)
        assert_close(sess.run(bad_labels, feed), 6.0)
        with pytest.raises(Exception, match="(?i)reshape"):
            sess.run(bad_reshape, {**feed, flag: False})


def test_gradients_through_the_taken_branch_zeros_for_the_other(dev, passes):
    """x feeds both branches, w (a Variable) only the true one, v only the false one."""
    with xn.Graph().as_default():
        flag = xn.placeholder("bool", (), name="flag")
        x = xn.placeholder("float64", (2, 3), name="x")
        w = xn.Variable(W0, name="w")
        v = xn.Variable(np.array(2.0), name="v")
        loss = xn.cond(flag, lambda: xn.reduce_sum(xn.tanh(x) * w),
                       lambda: xn.reduce_sum(x * x) * v)
        grads = xn.gradients(loss, [x, w, v])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        for f in (True, False):
            feed = {flag: f, x: X0}
            gx, gw, gv = sess.run(grads, feed, to_numpy=True)
            if f:
                assert_close(gx, (1 - np.tanh(X0) ** 2) * W0, "float64")
                assert_close(gw, np.tanh(X0).sum(0), "float64")
                assert_close(gv, 0.0, "float64")  # v's branch did not run: zero, not None
            else:
                assert_close(gx, 2 * X0 * 2.0, "float64")
                assert_close(gw, np.zeros(3), "float64")
                assert_close(gv, (X0 * X0).sum(), "float64")
            for node, g in zip((x, w, v), (gx, gw, gv)):
                numeric = central_differences(sess, loss, node, feed)
                np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-7)


def test_nested_conds_with_captures_against_torch(dev, passes):
    """An inner cond reads the outer branch's values, a Variable and a placeholder of the
    outer graph; gradients match torch.autograd on Python ``if``s."""
    with xn.Graph().as_default():
        a = xn.placeholder("float64", (), name="a")
        x = xn.placeholder("float64", (3,), name="x")
        w = xn.Variable(W0, name="w")

        def outer_true():
            h = x * w
            return xn.cond(a > 1.0, lambda: xn.reduce_sum(xn.tanh(h) * a),
                           lambda: xn.reduce_sum(h * h))

        loss = xn.cond(a > 0.0, outer_true, lambda: xn.reduce_sum(xn.exp(x)) * a)
        grads = xn.gradients(loss, [a, x, w])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        x0 = np.array([0.2, -0.4, 1.1])
        for a0 in (2.0, 0.5, -1.0):
            got = sess.run([loss, *grads], {a: a0, x: x0}, to_numpy=True)
            ta, tx, tw = tensors(a0, x0, W0)
            if a0 > 0:
                h = tx * tw
                want = (h.tanh() * ta).sum() if a0 > 1 else (h * h).sum()
            else:
                want = tx.exp().sum() * ta
            want = want + 0.0 * (ta + tx.sum() + tw.sum())  # every leaf gets a gradient
            want.backward()
            assert_close(got[0], want.item(), "float64")
            for g, t in zip(got[1:], (ta, tx, tw)):
                assert_close(g, t.grad.numpy(), "float64")


def test_second_order_through_cond_against_torch(dev, passes):
    with xn.Graph().as_default():
        flag = xn.placeholder("bool", (), name="flag")
        x = xn.placeholder("float64", (3,), name="x")
        w = xn.Variable(W0, name="w")
        y = xn.cond(flag, lambda: xn.reduce_sum(xn.tanh(x) * w * x),
                    lambda: xn.reduce_sum(x * x * x))
        (gx,) = xn.gradients(y, [x])
        second = xn.gradients(xn.reduce_sum(gx * gx), [x, w])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        x0 = np.array([0.3, -1.2, 0.8])
        for f in (True, False):
            got = sess.run(second, {flag: f, x: x0}, to_numpy=True)
            torch_ = pytest.importorskip("torch")
            tx, tw = tensors(x0, W0)
            ty = (tx.tanh() * tw * tx).sum() if f else (tx ** 3).sum() + 0.0 * tw.sum()
            (tg,) = torch_.autograd.grad(ty, [tx], create_graph=True)
            ((tg * tg).sum() + 0.0 * tw.sum()).backward()
            assert_close(got[0], tx.grad.numpy(), "float64")
            assert_close(got[1], tw.grad.numpy(), "float64")
