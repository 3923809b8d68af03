"""The backend selection itself: ``--xp all`` means every backend, JAX included, and one that
cannot run here is skipped with the reason, never left out."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from tests.conftest import DEVICES, _selected, _unavailable


def _config(xp):
    return SimpleNamespace(getoption=lambda name: xp)


def test_xp_all_is_every_backend_jax_included():
    assert _selected(_config("all")) == list(DEVICES)
    assert {"numpy", "array_api_strict", "torch", "jax", "cupy", "cupy_standin"} <= set(DEVICES)
    assert _unavailable("cupy_standin") is None  # NumPy only: it runs everywhere
    assert _selected(_config("jax")) == ["jax"]
    assert _selected(_config("numpy, jax")) == ["numpy", "jax"]


def test_an_unknown_backend_is_refused():
    with pytest.raises(pytest.UsageError, match=r"--xp: unknown backend\(s\) \['mxnet'\]"):
        _selected(_config("numpy,mxnet"))


@pytest.mark.parametrize("name", ["torch", "jax", "array_api_strict", "cupy"])
def test_a_backend_that_cannot_run_here_has_a_reason(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)
    reason = _unavailable(name)
    assert reason and "not installed" in reason
