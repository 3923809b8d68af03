"""devices.numpy.denormals: subnormals flushed to zero inside ``flushed()`` only, and the
optimizer updates that keep slots run inside it (NumPy backend only)."""

import numpy as np
import pytest

import xpnn as xn
from xpnn import optimizers
from xpnn.devices.numpy import denormals, updates

TINY = np.finfo(np.float32).tiny  # the smallest normal float32
needs_flushing = pytest.mark.skipif(not denormals.available(),
                                    reason="flushing subnormals needs x86-64 and its C library")


def _subnormal():
    return np.array([TINY / 64], dtype=np.float32)


def test_outside_flushed_subnormals_are_kept():
    with denormals.flushed():
        pass
    x = _subnormal()
    assert (x * np.float32(1.0))[0] == x[0] > 0
    assert (x * np.float32(2.0**30))[0] == TINY * 2**24


@needs_flushing
def test_inside_flushed_subnormal_inputs_and_results_are_zero():
    x = _subnormal()
    normal = np.array([TINY * 4], dtype=np.float32)
    with denormals.flushed():
        assert (x * np.float32(2.0**30))[0] == 0  # a subnormal input reads as zero
        assert (normal * np.float32(0.125))[0] == 0  # a subnormal result is written as zero
        assert (normal * np.float32(0.5))[0] == TINY * 2  # normal numbers are untouched
    assert (normal * np.float32(0.125))[0] == TINY / 2


@needs_flushing
def test_an_error_inside_flushed_restores_the_thread():
    with pytest.raises(KeyError), denormals.flushed():
        raise KeyError("boom")
    assert (_subnormal() * np.float32(1.0))[0] > 0


def test_the_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv("XPNN_FLUSH_DENORMALS", "0")
    denormals._libm.cache_clear()
    try:
        assert not denormals.available()
        with denormals.flushed():
            assert (_subnormal() * np.float32(1.0))[0] > 0
    finally:
        monkeypatch.undo()
        denormals._libm.cache_clear()


def _decay(make, steps, fast):
    """A Variable whose gradient is 0 from the first step on, so its slots only decay; the
    slots' values after ``steps`` updates, fast (in place) or portable."""
    with xn.Graph().as_default():
        w = xn.Variable(np.full(3, 1.0, np.float32))
        step = make().apply_gradients([(xn.placeholder(), w)])
    state = [np.array(v.initial_value, copy=True) for v in step.inputs[1:]]
    for i in range(steps):
        grad = np.full(3, 1e-3 if i == 0 else 0.0, np.float32)
        if fast:
            assert updates.update_inplace(step, [grad, *state], [False])
        else:
            state = [np.asarray(s) for s in step.forward(np, grad, *state)]
    return state


@needs_flushing
@pytest.mark.parametrize("make", [lambda: optimizers.AdamOptimizer(1e-3),
                                  lambda: optimizers.MomentumOptimizer(0.1, 0.9)],
                         ids=["adam", "momentum"])
def test_decaying_slots_reach_zero_instead_of_the_subnormals(make):
    # 0.9^800 * 1e-4 is about 1e-41: a subnormal in the portable rule, 0 when flushed.
    fast, portable = _decay(make, 800, fast=True), _decay(make, 800, fast=False)
    decayed = portable[1]  # Adam's m, momentum's velocity
    assert np.all((decayed != 0) & (np.abs(decayed) < TINY))
    assert np.all(fast[1] == 0)
    np.testing.assert_allclose(fast[0], portable[0], rtol=1e-6)  # the weights agree
