"""``xn.scan``, ``xn.foldl``, ``xn.foldr`` and ``xn.control_flow.scan_loop`` on every
backend, passes on and off: values against NumPy loops (reverse, several carries and
elements, an int carry beside a float one), gradients against torch.autograd on an
unrolled tanh recurrence and against central differences."""

from __future__ import annotations

import numpy as np

import xpnn as xn
from tests.conftest import assert_close
from tests.control_flow.helpers import central_differences, tensors, torch

XS = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5], [1.0, 3.0]])


def test_scan_with_and_without_initializer_and_reversed(dev, passes):
    with xn.Graph().as_default():
        xs = xn.constant(XS.astype(np.float32))
        fetches = [
            xn.scan(lambda a, x: a * 0.5 + x, xs, initializer=xn.constant([1.0, 2.0])),
            xn.scan(lambda a, x: a * 0.5 + x, xs),
            xn.scan(lambda a, x: a * 0.5 + x, xs, reverse=True),
        ]
        got = xn.Session(device=dev, passes=passes).run(fetches, to_numpy=True)

    def numpy_scan(rows, acc):
        out = []
        for row in rows:
            acc = acc * 0.5 + row
            out.append(acc)
        return np.stack(out)

    assert_close(got[0], numpy_scan(XS, np.array([1.0, 2.0])))
    assert_close(got[1], np.concatenate([XS[:1], numpy_scan(XS[1:], XS[0])]))
    assert_close(got[2], np.concatenate([numpy_scan(XS[-2::-1], XS[-1])[::-1], XS[-1:]]))


def test_foldl_and_foldr_keep_the_order(dev, passes):
    with xn.Graph().as_default():
        xs = xn.constant(np.array([1.0, 2.0, 3.0], np.float32))
        got = xn.Session(device=dev, passes=passes).run(
            [xn.foldl(lambda a, x: a * 10.0 + x, xs, 0.0),
             xn.foldr(lambda a, x: a * 10.0 + x, xs, 0.0), xn.foldl(lambda a, x: a - x, xs)],
            to_numpy=True)
    assert_close(got, [123.0, 321.0, 1.0 - 2.0 - 3.0])


def test_scan_loop_with_several_carries_and_elems(dev, passes):
    """An int step counter beside a float carry, two sequences, two outputs per step."""
    ws = np.array([1.0, -2.0, 0.5, 3.0])
    with xn.Graph().as_default():
        def step(carry, x):
            count, acc = carry
            row, weight = x
            new = acc + row * weight
            return [count + 1, new], [xn.reduce_sum(new), count * 2]

        for reverse in (False, True):
            (count, acc), (sums, doubled) = xn.control_flow.scan_loop(
                step, [xn.constant(0, "int32"), xn.constant([0.0, 0.0])],
                [xn.constant(XS.astype(np.float32)), xn.constant(ws.astype(np.float32))],
                reverse=reverse)
            got = xn.Session(device=dev, passes=passes).run([count, acc, sums, doubled],
                                                          to_numpy=True)
            order = range(3, -1, -1) if reverse else range(4)
            acc0, want_sums, want_doubled = np.zeros(2), np.zeros(4), np.zeros(4, int)
            for k, t in enumerate(order):
                acc0 = acc0 + XS[t] * ws[t]
                want_sums[t], want_doubled[t] = acc0.sum(), 2 * k
            assert int(got[0]) == 4 and "int" in str(got[3].dtype)
            assert_close(got[1], acc0)
            assert_close(got[2], want_sums)
            np.testing.assert_array_equal(got[3], want_doubled)


def _rnn_graph(reverse):
    """hs = scan of h <- tanh(x W + h U + b) over xs; loss reads every h and the last."""
    h0 = xn.placeholder("float64", (1, 3), name="h0")
    xs = xn.placeholder("float64", (4, 1, 2), name="xs")
    w = xn.Variable(np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]]), name="W")
    u = xn.Variable(np.array([[0.3, 0.1, 0.0], [-0.2, 0.5, 0.3], [0.4, -0.1, 0.2]]), name="U")
    b = xn.Variable(np.array([0.1, 0.0, -0.1]), name="b")

    def step(h, x):
        new = xn.tanh(xn.matmul(x, w) + xn.matmul(h, u) + b)
        return new, new

    last, hs = xn.control_flow.scan_loop(step, h0, xs, reverse=reverse)
    loss = xn.reduce_sum(hs * xn.constant(np.arange(1.0, 13.0).reshape(4, 1, 3))) \
        + xn.reduce_sum(last * last)
    return loss, [h0, xs, w, u, b]


def test_rnn_gradients_against_torch_and_finite_differences(dev, passes):
    t = torch()
    rng = np.random.default_rng(0)
    H0, XS3 = rng.standard_normal((1, 3)), rng.standard_normal((4, 1, 2))
    for reverse in (False, True):
        with xn.Graph().as_default():
            loss, wrt = _rnn_graph(reverse)
            grads = xn.gradients(loss, wrt)
            sess = xn.Session(device=dev, passes=passes, dtype="float64")
            feed = {wrt[0]: H0, wrt[1]: XS3}
            got = sess.run([loss, *grads], feed, to_numpy=True)
            leaves = tensors(H0, XS3, *[xn.to_numpy(sess.run(v)) for v in wrt[2:]])
            th, txs, tw, tu, tb = leaves
            h, hs = th, [None] * 4
            for k in (range(3, -1, -1) if reverse else range(4)):
                h = (txs[k] @ tw + h @ tu + tb).tanh()
                hs[k] = h
            weights = t.arange(1.0, 13.0, dtype=t.float64).reshape(4, 1, 3)
            want = (t.stack(hs) * weights).sum() + (h * h).sum()
            want.backward()
            assert_close(got[0], want.item(), "float64")
            for g, leaf in zip(got[1:], leaves):
                assert_close(g, leaf.grad.numpy(), "float64")
            if not reverse:
                for node in (wrt[0], wrt[3]):  # h0 and the captured U
                    np.testing.assert_allclose(
                        sess.run(grads[wrt.index(node)], feed, to_numpy=True),
                        central_differences(sess, loss, node, feed), rtol=1e-6, atol=1e-8)


def test_scan_gradient_beside_an_int_carry(dev, passes):
    """d/dx of foldl's a*x + count (count an int carry): the int carry gets no gradient
    and does not break the float one's."""
    x0 = np.array([0.5, 2.0, -1.5])
    with xn.Graph().as_default():
        x = xn.placeholder("float64", (3,), name="x")
        (count, acc), _ = xn.control_flow.scan_loop(
            lambda c, e: ([c[0] + 1, c[1] * e + xn.cast(c[0], "float64")], []),
            [xn.constant(0, "int32"), xn.constant(1.0, "float64")], x)
        (g,) = xn.gradients(acc, [x])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        got_acc, got_g = sess.run([acc, g], {x: x0}, to_numpy=True)
        np.testing.assert_allclose(got_g, central_differences(sess, acc, x, {x: x0}),
                                   rtol=1e-6, atol=1e-8)
    a = 1.0
    for k, e in enumerate(x0):
        a = a * e + k
    assert_close(got_acc, a, "float64")


def test_scan_gradient_with_a_carry_of_unknown_batch_size(dev, passes):
    """A carry of shape (None, 3) whose final value the loss does not read: its gradient
    is zeros shaped like it at run time (a shape read from the scan's tuple of outputs)."""
    x0 = np.linspace(-1.0, 1.0, 12).reshape(2, 2, 3)
    with xn.Graph().as_default():
        x = xn.placeholder("float64", (2, None, 3), name="x")
        h0 = xn.placeholder("float64", (None, 3), name="h0")
        w = xn.Variable(np.eye(3) * 0.5)
        _, ys = xn.control_flow.scan_loop(
            lambda h, e: (xn.tanh(xn.matmul(h, w) + e),) * 2, h0, x)
        loss = xn.reduce_sum(ys)
        (g,) = xn.gradients(loss, [h0])
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        feed = {x: x0, h0: np.ones((2, 3))}
        np.testing.assert_allclose(sess.run(g, feed, to_numpy=True),
                                   central_differences(sess, loss, h0, feed),
                                   rtol=1e-6, atol=1e-8)
