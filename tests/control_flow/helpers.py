"""Helpers of the control-flow tests: central differences in the Session under test, and
PyTorch for the unrolled twins."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn.graph import Variable


def total(sess, loss, feed) -> float:
    return float(np.sum(xn.to_numpy(sess.run(loss, feed))))


def central_differences(sess, loss, node, feed, eps=1e-6) -> np.ndarray:
    """d sum(loss) / d node (a fed placeholder or a Variable), float64, run in ``sess``."""
    feed = dict(feed)
    is_variable = isinstance(node, Variable)
    base = np.array(xn.to_numpy(sess.run(node)) if is_variable else feed[node], np.float64)
    grad = np.zeros_like(base)

    def at(value):
        if is_variable:
            sess.set_value(node, value)
        else:
            feed[node] = value
        return total(sess, loss, feed)

    for index in np.ndindex(base.shape):
        up, down = base.copy(), base.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (at(up) - at(down)) / (2 * eps)
    at(base)
    return grad


def torch():
    return pytest.importorskip("torch", reason="the unrolled twins need torch")


def tensors(*arrays):
    """float64 torch leaves that want gradients."""
    t = torch()
    return [t.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
