"""moments and batch_normalization (TF1's), against NumPy, finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("axes, keepdims", [([0], False), ([0, 1, 2], False), ([1], True)])
def test_moments_match_numpy(dev, axes, keepdims):
    x0 = RNG.standard_normal((4, 3, 3, 2)).astype(np.float32) * 3.0 + 1.0
    with xn.Graph().as_default():
        mean, variance = xn.moments(xn.constant(x0), axes=axes, keepdims=keepdims)
        got = xn.Session(device=dev).run([mean, variance])
    axis = tuple(axes)
    assert_close(got[0], x0.mean(axis=axis, keepdims=keepdims))
    assert_close(got[1], x0.var(axis=axis, keepdims=keepdims), rtol=1e-5, atol=1e-5)


def test_batch_normalization_matches_the_formula_and_torch(dev):
    x0 = RNG.standard_normal((8, 5)).astype(np.float64)
    gamma, beta = RNG.standard_normal(5), RNG.standard_normal(5)
    with xn.Graph().as_default():
        x = xn.Variable(x0, dtype="float64", name="x")
        scale = xn.Variable(gamma, dtype="float64", name="scale")
        offset = xn.Variable(beta, dtype="float64", name="offset")
        mean, variance = xn.moments(x, axes=[0])
        y = xn.batch_normalization(x, mean, variance, offset, scale, variance_epsilon=1e-3)
        loss = xn.reduce_sum(y * np.arange(40.0).reshape(8, 5))
        grads = xn.gradients(loss, [x, scale, offset])
        if dev.backend == "jax":
            import jax

            if not jax.config.jax_enable_x64:
                pytest.skip("jax: float64 needs JAX_ENABLE_X64=1")
        sess = xn.Session(device=dev)
        got = sess.run([y, *grads], to_numpy=True)
        report = xn.gradcheck(loss, [x, scale, offset], device=dev)
    want = (x0 - x0.mean(0)) / np.sqrt(x0.var(0) + 1e-3) * gamma + beta
    np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-12)
    assert report.ok, report
    torch = pytest.importorskip("torch", reason="torch is not installed: no reference")
    tx = torch.tensor(x0, requires_grad=True)
    tg = torch.tensor(gamma, requires_grad=True)
    tb = torch.tensor(beta, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-3)
    (ty * torch.arange(40.0, dtype=torch.float64).reshape(8, 5)).sum().backward()
    for ours, theirs in zip(got[1:], (tx.grad, tg.grad, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


def test_batch_normalization_without_offset_or_scale_and_bad_epsilon():
    with xn.Graph().as_default():
        y = xn.batch_normalization(xn.constant([1.0, 3.0]), 2.0, 4.0, variance_epsilon=0.0)
        assert xn.Session().run(y).tolist() == [-0.5, 0.5]
        with pytest.raises(ValueError, match="variance_epsilon must be >= 0, got -1"):
            xn.batch_normalization(xn.constant([1.0]), 0.0, 1.0, variance_epsilon=-1)
