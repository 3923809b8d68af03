"""Tests for xpnn.init: He / Glorot / zeros drawn on the host from PCG64, so the same seed
gives bit-identical weights on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import devices, dtypes, init
from xpnn.host import to_numpy


def _pcg(seed):
    return np.random.Generator(np.random.PCG64(seed))


# --------------------------------------------------------------------------------------------
# he_normal


def test_he_normal_std_on_a_big_draw():
    fan_in = 200
    w = init.he_normal((fan_in, 500), seed=1)
    assert w.shape == (fan_in, 500) and w.dtype == np.float32
    expected = np.sqrt(2.0 / fan_in)  # 0.1
    assert abs(float(w.std()) - expected) < 0.01 * expected
    assert abs(float(w.mean())) < 0.005
    # Normal, not uniform: about 4.6% of the draws lie beyond two standard deviations.
    beyond = float(np.mean(np.abs(w) > 2 * expected))
    assert 0.035 < beyond < 0.057


def test_he_normal_std_follows_fan_in_not_fan_out():
    narrow = init.he_normal((8, 20000), seed=0)
    assert abs(float(narrow.std()) - 0.5) < 0.01  # sqrt(2 / 8)


def test_he_normal_is_exactly_the_pcg64_draw():
    w = init.he_normal((3, 4), seed=5)
    expected = (_pcg(5).standard_normal((3, 4)) * np.sqrt(2.0 / 3)).astype(np.float32)
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(w, init.he_normal((3, 4), seed=5))
    assert not np.array_equal(w, init.he_normal((3, 4), seed=6))


def test_he_normal_dtype_float64():
    w = init.he_normal((3, 4), seed=5, dtype="float64")
    assert w.dtype == np.float64
    np.testing.assert_array_equal(w, _pcg(5).standard_normal((3, 4)) * np.sqrt(2.0 / 3))


def test_a_generator_is_passed_through_and_advances():
    rng = _pcg(7)
    first, second = init.he_normal((2, 3), seed=rng), init.he_normal((2, 3), seed=rng)
    assert not np.array_equal(first, second)
    ref = _pcg(7)
    np.testing.assert_array_equal(first, init.he_normal((2, 3), seed=ref))
    np.testing.assert_array_equal(second, init.he_normal((2, 3), seed=ref))
    assert init.generator(rng) is rng


def test_no_seed_draws_fresh_weights():
    assert not np.array_equal(init.he_normal((4, 4)), init.he_normal((4, 4)))


# --------------------------------------------------------------------------------------------
# glorot_uniform and zeros


def test_glorot_uniform_bounds_and_spread():
    fan_in, fan_out = 30, 70
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    w = init.glorot_uniform((fan_in, fan_out), seed=0)
    assert w.shape == (fan_in, fan_out) and w.dtype == np.float32
    assert float(np.abs(w).max()) <= limit
    assert float(w.max()) > 0.98 * limit and float(w.min()) < -0.98 * limit
    assert abs(float(w.std()) - limit / np.sqrt(3)) < 0.03 * limit
    big = init.glorot_uniform((400, 600), seed=3)
    assert float(np.abs(big).max()) <= np.sqrt(6.0 / 1000)


def test_glorot_uniform_is_exactly_the_pcg64_draw():
    limit = np.sqrt(6.0 / 7)
    expected = _pcg(2).uniform(-limit, limit, (3, 4)).astype(np.float32)
    np.testing.assert_array_equal(init.glorot_uniform((3, 4), seed=2), expected)


def test_one_axis_shape_uses_it_as_both_fans():
    limit = np.sqrt(6.0 / 10)
    expected = _pcg(0).uniform(-limit, limit, (5,)).astype(np.float32)
    np.testing.assert_array_equal(init.glorot_uniform((5,), seed=0), expected)


def test_zero_axis_shape_is_rejected():
    with pytest.raises(ValueError, match=r"at least one axis, got \(\)"):
        init.he_normal((), seed=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zeros(dtype):
    z = init.zeros((3, 2), seed=0, dtype=dtype)
    assert z.shape == (3, 2) and z.dtype == np.dtype(dtype)
    assert not z.any()


def test_get_by_name_and_callable_and_unknown():
    assert init.get("he_normal") is init.he_normal
    assert init.get("glorot_uniform") is init.glorot_uniform
    assert init.get("zeros") is init.zeros

    def custom(shape, seed, dtype):
        return np.full(shape, 0.25, dtype=dtype)

    assert init.get(custom) is custom
    with pytest.raises(ValueError, match=r"unknown initialiser 'lecun'.*glorot_uniform.*he_normal"):
        init.get("lecun")


# --------------------------------------------------------------------------------------------
# the same seed gives the same weights on every backend


def _expected_mlp_weights(units, seed):
    rng = init.generator(seed)
    return [init.he_normal((a, b), seed=rng) for a, b in zip(units[:-1], units[1:])]


def test_nnclassifier_weights_are_the_seeded_draws(dev):
    units = [3, 5, 4, 2]
    model = xn.nn.NNClassifier(units, device=dev, seed=11)
    expected = _expected_mlp_weights(units, 11)
    for layer, w, n_out in zip(model.layers, expected, units[1:]):
        assert dev.owns(layer.W) and dev.owns(layer.b)
        np.testing.assert_array_equal(to_numpy(layer.W), w)
        np.testing.assert_array_equal(to_numpy(layer.b), np.zeros(n_out, np.float32))


def test_same_seed_bit_identical_weights_on_numpy_and_strict():
    units = [2, 16, 8, 3]
    cpu = devices.resolve("cpu")
    strict = devices.resolve("device1", backend="array_api_strict")
    on_numpy = xn.nn.NNClassifier(units, device=cpu, seed=3)
    on_strict = xn.nn.NNClassifier(units, device=strict, seed=3)
    for a, b in zip(on_numpy.layers, on_strict.layers):
        wa, wb = to_numpy(a.W), to_numpy(b.W)
        assert wa.dtype == wb.dtype == np.float32
        assert wa.tobytes() == wb.tobytes()
        assert to_numpy(a.b).tobytes() == to_numpy(b.b).tobytes()
    other = xn.nn.NNClassifier(units, device=strict, seed=4)
    assert not np.array_equal(to_numpy(other.layers[0].W), to_numpy(on_numpy.layers[0].W))


def test_float64_model_weights_are_the_float64_draws(dev):
    model = xn.nn.NNClassifier([2, 3, 2], device=dev, seed=0, dtype="float64")
    expected = _expected_mlp_weights([2, 3, 2], 0)
    assert dtypes.dtype_name(model.layers[0].W.dtype) == "float64"
    rng = init.generator(0)
    w0 = init.he_normal((2, 3), seed=rng, dtype="float64")
    np.testing.assert_array_equal(to_numpy(model.layers[0].W), w0)
    np.testing.assert_allclose(to_numpy(model.layers[0].W), expected[0], rtol=1e-6)
