"""One switch for every device's reference path: ``Session(passes=False)`` or
``$XPNN_PASSES=0`` runs the portable plan (no NumPy, torch or CuPy kernels, no ``jax.jit``)
with the results of the default; the old spellings still work, with a warning."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn.devices import Device
from xpnn.executor import Executor


def _train(dev, **kw):
    """Three momentum steps of a small MLP on ``dev``: (the step's executor, the weights)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    with xn.Graph().as_default():
        x, labels = xn.placeholder(shape=(None, 5)), xn.placeholder("int64", shape=(None,))
        w1 = xn.Variable(rng.standard_normal((5, 4)).astype(np.float32) * 0.5)
        b1 = xn.Variable(np.zeros(4, np.float32))
        w2 = xn.Variable(rng.standard_normal((4, 3)).astype(np.float32) * 0.5)
        loss = xn.losses.sparse_softmax_cross_entropy(labels, xn.relu(x @ w1 + b1) @ w2)
        step = xn.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
        sess = xn.Session(device=dev, **kw)
        for _ in range(3):
            sess.run(step, {x: X, labels: y})
        (executor,) = [e for e in sess._executors.values() if e.plan.updates]
        return executor, [xn.to_numpy(sess.run(v)) for v in (w1, b1, w2)]


def _has_passes(dev) -> bool:
    return type(dev).compile is not Device.compile


def _launches(dev) -> list:
    """The stand-in's kernels launched so far (none on other devices)."""
    fuser = getattr(dev, "fuser", None)
    return list(fuser.launches) if fuser is not None else []


def _assert_portable(executor):
    assert type(executor) is Executor, "a device's executor ran"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_passes_off_runs_the_portable_plan_with_the_same_results(dev, how, monkeypatch):
    if how == "environment":
        monkeypatch.setenv("XPNN_PASSES", "0")
        executor, off = _train(dev)
        monkeypatch.delenv("XPNN_PASSES")
    else:
        executor, off = _train(dev, passes=False)
    _assert_portable(executor)
    assert _launches(dev) == []  # the stand-in's fuser ran no kernel
    fast, default = _train(dev)
    if _has_passes(dev):  # the default compiles its own: the switch made the difference
        assert type(fast) is not Executor
    for got, want in zip(off, default, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_passes_default_on_and_explicitly_on(dev, monkeypatch):
    monkeypatch.delenv("XPNN_PASSES", raising=False)
    assert xn.Session(device=dev, graph=xn.Graph()).passes is True
    monkeypatch.setenv("XPNN_PASSES", "0")
    assert xn.Session(device=dev, graph=xn.Graph(), passes=True).passes is True


def test_the_old_spellings_still_turn_passes_off_with_a_warning(dev, monkeypatch):
    with pytest.warns(DeprecationWarning, match="use Session\\(passes=...\\)"):
        assert xn.Session(device=dev, graph=xn.Graph(), jit=False).passes is False
    with pytest.raises(ValueError, match="jit is the old name of passes"), \
            pytest.warns(DeprecationWarning):
        xn.Session(device=dev, graph=xn.Graph(), jit=False, passes=True)
    if dev.old_switch is None:
        return
    monkeypatch.setenv(dev.old_switch, "0")
    with pytest.warns(DeprecationWarning, match=f"\\${dev.old_switch} is deprecated"):
        executor, _ = _train(dev)
    _assert_portable(executor)
