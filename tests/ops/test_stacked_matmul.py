"""One matrix used in many 2-D products (an unrolled recurrent weight): add_n meets its
gradients as one StackedMatMulGradB, checked against torch.autograd (first and second
order) and central differences."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance


def _graph(rows, w0):
    w = xn.Variable(w0, dtype="float64", name="w")
    xs = [xn.Variable(a, dtype="float64") for a in rows]
    y = xn.add_n([xn.reduce_sum(xn.tanh(x @ w)) for x in xs])
    return w, xs, y


def test_the_gradients_of_one_matrix_in_many_products_are_one_product():
    rng = np.random.default_rng(0)
    w, xs, y = _graph([rng.standard_normal((4, 3)) for _ in range(5)], rng.standard_normal((3, 2)))
    dw, = xn.gradients(y, [w])
    assert type(dw).__name__ == "StackedMatMulGradB"
    with xn.Graph().as_default():  # two uses: a plain sum
        w, xs, y = _graph([rng.standard_normal((4, 3)) for _ in range(2)],
                          rng.standard_normal((3, 2)))
        assert type(xn.gradients(y, [w])[0]).__name__ == "Add"


def test_stacked_gradient_matches_torch_first_and_second_order(dev):
    torch = pytest.importorskip("torch", reason="torch is not installed: no torch.autograd")
    rng = np.random.default_rng(1)
    rows, w0 = [rng.standard_normal((4, 3)) for _ in range(4)], rng.standard_normal((3, 2))
    with xn.Graph().as_default():
        w, xs, y = _graph(rows, w0)
        grads = xn.gradients(y, [w, *xs])
        second = xn.gradients(xn.reduce_sum(grads[0] * grads[0]), [w, xs[0]])
        ours = xn.Session(device=dev, dtype="float64").run(grads + second, to_numpy=True)
    wt = torch.tensor(w0, requires_grad=True)
    xt = [torch.tensor(a, requires_grad=True) for a in rows]
    yt = sum(torch.tanh(a @ wt).sum() for a in xt)
    theirs = list(torch.autograd.grad(yt, [wt, *xt], create_graph=True))
    theirs += torch.autograd.grad((theirs[0] * theirs[0]).sum(), [wt, xt[0]])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.detach().numpy(), **tolerance("float64"))


def test_stacked_gradient_matches_central_differences():
    rng = np.random.default_rng(2)
    rows, w0 = [rng.standard_normal((2, 3)) for _ in range(3)], rng.standard_normal((3, 2))
    with xn.Graph().as_default():
        w, xs, y = _graph(rows, w0)
        dw = xn.Session(dtype="float64").run(xn.gradients(y, [w])[0], to_numpy=True)

    def f(w_value):
        return sum(np.tanh(a @ w_value).sum() for a in rows)

    numeric = np.zeros_like(w0)
    for index in np.ndindex(*w0.shape):
        step = np.zeros_like(w0)
        step[index] = 1e-6
        numeric[index] = (f(w0 + step) - f(w0 - step)) / 2e-6
    np.testing.assert_allclose(dw, numeric, rtol=1e-6, atol=1e-8)
