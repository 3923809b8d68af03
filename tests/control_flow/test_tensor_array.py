"""TensorArray: per-step outputs of a while_loop, values and gradients (against torch on the
unrolled twin and against central differences), and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance

T, B, H = 4, 2, 3


def _recurrence(h0, w, steps=T):
    """h_{t+1} = tanh(h_t @ w), every h_{t+1} written to a TensorArray; returns the stack."""
    ta = xn.TensorArray(h0.dtype, size=steps, element_shape=h0.shape)

    def body(i, h, ta):
        h = xn.tanh(h @ w)
        return [i + 1, h, ta.write(i, h)]

    _, _, ta = xn.while_loop(lambda i, h, ta: i < steps, body,
                             [xn.constant(0, "int32"), h0, ta], maximum_iterations=steps)
    return ta.stack()


@pytest.mark.parametrize("passes", [True, False], ids=["passes-on", "passes-off"])
def test_per_step_outputs_and_their_gradients_match_torch(dev, passes):
    torch = pytest.importorskip("torch", reason="torch is not installed: no torch.autograd")
    rng = np.random.default_rng(0)
    h_value, w_value = rng.standard_normal((B, H)), rng.standard_normal((H, H)) * 0.7
    weights = rng.standard_normal((T, B, H))
    with xn.Graph().as_default():
        h0, w = xn.Variable(h_value, dtype="float64"), xn.Variable(w_value, dtype="float64")
        stacked = _recurrence(h0, w)
        loss = xn.reduce_sum(stacked * weights)
        grads = xn.gradients(loss, [h0, w])
        ours = xn.Session(device=dev, passes=passes).run([stacked, *grads], to_numpy=True)
    ht, wt = torch.tensor(h_value, requires_grad=True), torch.tensor(w_value, requires_grad=True)
    h, rows = ht, []
    for _ in range(T):
        h = torch.tanh(h @ wt)
        rows.append(h)
    stacked_t = torch.stack(rows)
    theirs = [stacked_t, *torch.autograd.grad((stacked_t * torch.tensor(weights)).sum(),
                                             [ht, wt])]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.detach().numpy(), **tolerance("float64"))


def test_write_read_gather_unstack_and_central_differences():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((3, 2))
    with xn.Graph().as_default():
        x = xn.Variable(values, dtype="float64")
        ta = xn.TensorArray("float64", size=3, element_shape=(2,)).unstack(x)
        ta = ta.write(1, x[0] * 5.0)
        picked = ta.gather([2, 1])
        y = xn.reduce_sum(ta.read(1) * ta.stack()[2]) + xn.reduce_sum(picked)
        dx, = xn.gradients(y, [x])
        sess = xn.Session(dtype="float64")
        y_value, dx_value, size = sess.run([y, dx, ta.size()], to_numpy=True)

    def f(v):
        return (v[0] * 5.0 * v[2]).sum() + v[2].sum() + (v[0] * 5.0).sum()

    assert int(size) == 3
    np.testing.assert_allclose(y_value, f(values), rtol=1e-12)
    numeric = np.zeros_like(values)
    for index in np.ndindex(*values.shape):
        step = np.zeros_like(values)
        step[index] = 1e-6
        numeric[index] = (f(values + step) - f(values - step)) / 2e-6
    np.testing.assert_allclose(dx_value, numeric, rtol=1e-6, atol=1e-8)


def test_bad_tensor_arrays_are_refused():
    with pytest.raises(ValueError, match="element_shape"):
        xn.TensorArray("float32", size=3)
    with pytest.raises(ValueError, match="size must be a Python int"):
        xn.TensorArray("float32", size=xn.constant(3, "int32"), element_shape=())
    ta = xn.TensorArray("float32", size=2, element_shape=(2,))
    with pytest.raises(TypeError, match="index must be an integer"):
        ta.read(xn.constant(1.0))
    with pytest.raises(xn.OpError, match="outside the TensorArray's size 2"):
        xn.Session().run(ta.write(5, xn.constant([1.0, 2.0])).stack())
    with pytest.raises(xn.OpError, match="shape"):
        xn.Session().run(ta.write(0, xn.placeholder("float32", None, name="v")).stack(),
                         {xn.get_default_graph().get_tensor_by_name("v:0"): [1.0, 2.0, 3.0]})
