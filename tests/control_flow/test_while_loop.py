"""``xn.while_loop`` on every backend, passes on and off: TF1's semantics (counters,
data-dependent termination, ``maximum_iterations``, ``shape_invariants``), gradients with
respect to the initial values and captured Variables against central differences and
torch.autograd on the unrolled twin; on JAX, a differentiated loop needs
``maximum_iterations`` and gives the eager result with it."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close
from tests.control_flow.helpers import central_differences, tensors, torch

H0 = np.array([0.1, -0.3, 0.5])
W0 = np.array([[0.4, -0.2, 0.1], [0.3, 0.5, -0.6], [-0.1, 0.2, 0.7]])
B0 = np.array([0.05, -0.1, 0.2])


def test_counter_loop_with_a_fed_bound(dev, passes):
    with xn.Graph().as_default():
        n = xn.placeholder("int32", (), name="n")
        i, total = xn.while_loop(lambda i, s: i < n,
                                 lambda i, s: [i + 1, s + xn.cast(i, "float32")],
                                 [xn.constant(0, "int32"), xn.constant(0.0)])
        sess = xn.Session(device=dev, passes=passes)
        for bound in (0, 1, 5):
            got_i, got_total = sess.run([i, total], {n: bound}, to_numpy=True)
            assert int(got_i) == bound
            assert_close(got_total, sum(range(bound)))


def test_data_dependent_termination(dev, passes):
    """Doubles a vector until its sum passes a fed threshold: the count depends on data."""
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (3,), name="x")
        limit = xn.placeholder("float32", (), name="limit")
        count, y = xn.while_loop(lambda k, v: xn.reduce_sum(v) < limit,
                                 lambda k, v: [k + 1, v * 2.0], [xn.constant(0, "int32"), x])
        sess = xn.Session(device=dev, passes=passes)
        x0 = np.array([0.5, 0.25, 1.0], np.float32)
        for bound in (1.0, 20.0, 1000.0):
            v, k = x0.copy(), 0
            while v.sum() < bound:
                v, k = v * 2, k + 1
            got_k, got_y = sess.run([count, y], {x: x0, limit: bound}, to_numpy=True)
            assert int(got_k) == k
            assert_close(got_y, v)


def test_maximum_iterations_stops_the_loop(dev, passes):
    with xn.Graph().as_default():
        n = xn.placeholder("int32", (), name="n")
        i = xn.while_loop(lambda i: i < n, lambda i: i + 1, xn.constant(0, "int32"),
                          maximum_iterations=4)
        sess = xn.Session(device=dev, passes=passes)
        assert [int(sess.run(i, {n: b})) for b in (2, 4, 9)] == [2, 4, 4]


def test_a_growing_variable_needs_shape_invariants(dev, passes):
    with xn.Graph().as_default():
        start = xn.constant([1.0])

        def body(i, v):
            return [i + 1, xn.concat([v, v * 2.0], 0)]

        def cond(i, v):
            return i < 3

        _, grown = xn.while_loop(cond, body, [xn.constant(0, "int32"), start],
                                 shape_invariants=[(), (None,)])
        got = xn.Session(device=dev, passes=passes).run(grown, to_numpy=True)
        with pytest.raises(ValueError, match=r"loop variable 1 .*shape_invariants"):
            xn.while_loop(cond, body, [xn.constant(0, "int32"), start])
    want = np.array([1.0])
    for _ in range(3):
        want = np.concatenate([want, want * 2])
    assert_close(got, want)


def _rnn_twin(h, w, b, steps):
    """The unrolled twin: h <- tanh(h @ W + b), ``steps`` times."""
    for _ in range(steps):
        h = (h @ w + b).tanh()
    return h


def test_gradients_against_torch_and_finite_differences(dev, passes):
    """d loss / d (initial h, captured W and b) through a tanh recurrence run a fed number
    of times (maximum_iterations bounds it, as JAX needs)."""
    t = torch()
    r = np.array([1.0, -2.0, 0.5])
    with xn.Graph().as_default():
        h0 = xn.placeholder("float64", (3,), name="h0")
        n = xn.placeholder("int32", (), name="n")
        w = xn.Variable(W0, name="W")
        b = xn.Variable(B0, name="b")
        _, h = xn.while_loop(lambda i, h: i < n,
                             lambda i, h: [i + 1, xn.tanh(xn.matmul(h[None], w)[0] + b)],
                             [xn.constant(0, "int32"), h0], maximum_iterations=6)
        loss = xn.reduce_sum(h * r)
        grads = xn.gradients(loss, [h0, w, b])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        for steps in (0, 3):
            feed = {h0: H0, n: steps}
            got = sess.run([loss, *grads], feed, to_numpy=True)
            th, tw, tb = tensors(H0, W0, B0)
            want = (_rnn_twin(th, tw, tb, steps) * t.tensor(r)).sum() + 0.0 * (tw.sum() + tb.sum())
            want.backward()
            assert_close(got[0], want.item(), "float64")
            for g, leaf in zip(got[1:], (th, tw, tb)):
                assert_close(g, leaf.grad.numpy(), "float64")
        feed = {h0: H0, n: 3}
        for node, g in zip((h0, w, b), sess.run(grads, feed, to_numpy=True)):
            np.testing.assert_allclose(g, central_differences(sess, loss, node, feed),
                                       rtol=1e-6, atol=1e-8)


def test_gradient_of_a_data_dependent_loop(dev, passes):
    """x is squared until it passes 10: the gradient follows the iterations that ran."""
    with xn.Graph().as_default():
        x = xn.placeholder("float64", (), name="x")
        y = xn.while_loop(lambda v: v < 10.0, lambda v: v * v, x, maximum_iterations=8)
        (g,) = xn.gradients(y, [x])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        for x0, power in ((1.5, 8), (4.0, 2), (20.0, 1)):  # 1.5**8 > 10 after 3 squarings
            got_y, got_g = sess.run([y, g], {x: x0}, to_numpy=True)
            assert_close(got_y, x0 ** power, "float64")
            assert_close(got_g, power * x0 ** (power - 1), "float64")


@pytest.mark.backends("jax")
def test_jax_differentiated_loop_needs_maximum_iterations(dev, passes):
    with xn.Graph().as_default():
        x = xn.placeholder("float64", (), name="x")
        y = xn.while_loop(lambda v: v < 10.0, lambda v: v * v, x)
        (g,) = xn.gradients(y, [x])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        with pytest.raises(ValueError, match="needs maximum_iterations"):
            sess.run(g, {x: 1.5})


@pytest.mark.backends("jax")
def test_jax_loop_with_maximum_iterations_equals_the_eager_one(dev):
    """The compiled loop (a lax.scan over maximum_iterations) gives the values and
    gradients of the portable eager run."""
    with xn.Graph().as_default():
        h0 = xn.placeholder("float64", (3,), name="h0")
        w = xn.Variable(W0, name="W")
        _, h = xn.while_loop(lambda i, h: xn.reduce_sum(h * h) < 2.0,
                             lambda i, h: [i + 1, xn.tanh(xn.matmul(h[None], w)[0]) * 1.5],
                             [xn.constant(0, "int32"), h0], maximum_iterations=7)
        fetches = [h, *xn.gradients(xn.reduce_sum(h), [h0, w])]
        feed = {h0: H0}
        compiled = xn.Session(device=dev, dtype="float64")
        eager = xn.Session(device=dev, dtype="float64", passes=False)
        got = compiled.run(fetches, feed, to_numpy=True)
        want = eager.run(fetches, feed, to_numpy=True)
        assert [r.eager for r in compiled._executors.values()] == [False]
    for a, b in zip(got, want):
        assert_close(a, b, "float64")
