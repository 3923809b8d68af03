"""backend errors: a bad default device fails when it is set, and a backend that is not
installed says what to pip install."""

from __future__ import annotations

import sys

import pytest

import xpnn as xn
from xpnn import devices


@pytest.fixture
def fresh(monkeypatch):
    """A clean default device and resolve cache, restored afterwards."""
    monkeypatch.setattr(devices, "_default_device", None)
    devices._resolve.cache_clear()
    yield
    devices._resolve.cache_clear()


@pytest.mark.parametrize("device", ["mps", "tpu", "CPU", "gpu0", "cuda:x", "cpu:", "cuda:-1"])
def test_set_default_device_refuses_an_unknown_device_at_once(fresh, device):
    with pytest.raises(ValueError, match=rf"unknown device '{device}': use 'cpu', 'cuda'"):
        xn.set_default_device(device)
    assert xn.get_default_device() == "cpu"  # unchanged


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1", "gpu:0", "device1", "CPU_DEVICE"])
def test_set_default_device_accepts_good_spellings_without_importing_backends(
    fresh, monkeypatch, device
):
    for name in ("cupy", "torch", "jax"):
        monkeypatch.setitem(sys.modules, name, None)  # importing any of them would fail
    xn.set_default_device(device)
    assert xn.get_default_device() == device
    xn.set_default_device(None)


def test_set_default_device_takes_a_string(fresh):
    with pytest.raises(TypeError, match=r"a device is a string such as 'cpu' or 'cuda:1'"):
        xn.set_default_device(0)


@pytest.mark.parametrize(
    "name, device, how",
    [
        ("torch", "cpu", r"needs PyTorch, which is not installed .*pip install torch==2\.13\.0 "
                         r"\(the CPU build"),
        ("jax", "cpu", r"needs JAX, which is not installed .*pip install jax"),
        ("array_api_strict", "device1", r"needs array-api-strict, .*pip install "
                                        r"'array-api-strict>=2\.6\.1'"),
        ("cupy", "cuda", r"needs CuPy, .*pip install 'xpnn\[cuda\]'"),
    ],
)
def test_a_missing_backend_says_what_to_install(fresh, monkeypatch, name, device, how):
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeError, match=rf"device '{device}' with backend '{name}' {how}"):
        devices.resolve(device, backend=name)
    with xn.Graph().as_default(), pytest.raises(RuntimeError, match=how):
        xn.Session(device=device, backend=name)


def test_a_dtype_the_namespace_lacks_is_named(fresh):
    with pytest.raises(TypeError, match=r"backend 'array_api_strict' has no dtype 'float16'"):
        xn.Session(device="device1", dtype="float16")
