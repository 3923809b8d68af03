"""One optimizer step whose loss runs through a while_loop or a scan changes the Variables
as the same step in torch does (unrolled twin, SGD), on every backend, passes on and off."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close
from tests.control_flow.helpers import tensors, torch

W0 = np.array([[0.4, -0.2], [0.3, 0.5]])
B0 = np.array([0.1, -0.1])
XS = np.array([[1.0, -0.5], [0.25, 2.0], [-1.0, 0.5]])
TARGET = np.array([0.3, -0.2])


def _loss(kind, w, b, xs):
    h0 = xn.constant(np.zeros(2))
    if kind == "scan":
        last = xn.foldl(lambda h, x: xn.tanh(xn.matmul(h[None], w)[0] + x + b), xs, h0)
    else:
        _, last = xn.while_loop(
            lambda i, h: i < 3,
            lambda i, h: [i + 1, xn.tanh(xn.matmul(h[None], w)[0] + xn.gather(xs, i) + b)],
            [xn.constant(0, "int32"), h0], maximum_iterations=3)
    return xn.reduce_sum(xn.square(last - TARGET))


@pytest.mark.parametrize("kind", ["while_loop", "scan"])
def test_one_gradient_descent_step_matches_torch(dev, passes, kind):
    t = torch()
    with xn.Graph().as_default():
        w, b = xn.Variable(W0, name="W"), xn.Variable(B0, name="b")
        xs = xn.placeholder("float64", (3, 2), name="xs")
        step = xn.train.GradientDescentOptimizer(0.5).minimize(_loss(kind, w, b, xs))
        sess = xn.Session(device=dev, passes=passes, dtype="float64")
        sess.run(step, {xs: XS})
        got_w, got_b = (xn.to_numpy(sess.run(v)) for v in (w, b))
    tw, tb = tensors(W0, B0)
    h = t.zeros(2, dtype=t.float64)
    for x in t.tensor(XS):
        h = (h @ tw + x + tb).tanh()
    optimizer = t.optim.SGD([tw, tb], lr=0.5)
    ((h - t.tensor(TARGET)) ** 2).sum().backward()
    optimizer.step()
    assert not np.allclose(got_w, W0)  # the step moved W
    assert_close(got_w, tw.detach().numpy(), "float64")
    assert_close(got_b, tb.detach().numpy(), "float64")
