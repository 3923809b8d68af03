"""backend: device strings -> Device objects, host <-> device transfer, dtype names."""

from __future__ import annotations

import array_api_compat
import array_api_strict as strict
import numpy as np
import pytest

import xpnn as xn
from xpnn import devices, dtypes


def _cuda_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


# --------------------------------------------------------------------------- resolve


def test_resolve_cpu_is_numpy():
    dev = devices.resolve("cpu")
    assert isinstance(dev, devices.Device)
    assert (dev.backend, dev.name, dev.device) == ("numpy", "cpu", "cpu")
    assert array_api_compat.is_numpy_namespace(dev.xp)
    assert devices.resolve("cpu") is dev  # parsed once, cached
    assert devices.resolve("cpu", backend="numpy").xp is dev.xp
    assert repr(dev) == "Device(numpy:cpu)"


def test_resolve_array_api_strict():
    dev = devices.resolve("device1", backend="array_api_strict")
    assert (dev.backend, dev.name) == ("array_api_strict", "device1")
    assert dev.xp is strict and dev.device == strict.Device("device1")
    assert devices.resolve("device1").backend == "array_api_strict"  # inferred from the name
    cpu = devices.resolve("cpu", backend="array_api_strict")
    assert cpu.device == strict.Device("CPU_DEVICE")


def test_resolve_torch():
    torch = pytest.importorskip("torch")
    dev = devices.resolve("cpu", backend="torch")
    assert (dev.backend, dev.name) == ("torch", "cpu")
    assert dev.device == torch.device("cpu")
    assert array_api_compat.is_torch_namespace(dev.xp)
    with pytest.raises(ValueError, match="backend 'torch' takes device 'cpu' or 'cuda"):
        devices.resolve("device1", backend="torch")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="torch sees no CUDA device"):
            devices.resolve("cuda", backend="torch")


@pytest.mark.skipif(_cuda_present(), reason="a CUDA device with CuPy is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cupy_or_gpu_is_a_clear_runtime_error(device):
    with pytest.raises(RuntimeError, match=r"CuPy|CUDA device"):
        devices.resolve(device)
    with xn.Graph().as_default():
        with pytest.raises(RuntimeError, match=r"CuPy|CUDA device"):
            xn.Session(device=device)


@pytest.mark.parametrize("device", ["tpu", "CPU", "gpu0", "metal", "cpu0", "npu:1"])
def test_unknown_device_string_is_a_value_error(device):
    with pytest.raises(ValueError, match=rf"unknown device '{device}': use 'cpu', 'cuda'"):
        devices.resolve(device)


@pytest.mark.parametrize(
    "device, name, message",
    [
        ("cpu", "mxnet", r"unknown backend 'mxnet': choose one of"),
        ("device1", "numpy", r"backend 'numpy' runs on device 'cpu' only, not 'device1'"),
        ("cuda", "numpy", r"backend 'numpy' runs on device 'cpu' only"),
        ("device9", "array_api_strict", r"array_api_strict has no device 'device9'"),
        ("cpu", "cupy", r"backend 'cupy' runs on 'cuda' or 'cuda:N', not 'cpu'"),
    ],
)
def test_bad_device_backend_combinations(device, name, message):
    with pytest.raises(ValueError, match=message):
        devices.resolve(device, backend=name)


def test_resolve_passes_a_device_through_and_uses_the_default(dev, monkeypatch):
    assert devices.resolve(dev) is dev
    monkeypatch.setattr(devices, "_default_device", None)
    monkeypatch.setenv("XPNN_DEVICE", "device1")
    assert devices.resolve().backend == "array_api_strict"
    monkeypatch.delenv("XPNN_DEVICE")
    assert devices.resolve().backend == "numpy"


# --------------------------------------------------------------------------- transfer


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
def test_from_host_to_host_round_trip(dev, dtype):
    host = np.array([[1, 0, 3], [4, 5, 0]]).astype(dtype)
    on_dev = dev.from_host(host)
    assert dev.owns(on_dev)
    assert on_dev.dtype == dev.dtype(dtype)
    assert tuple(on_dev.shape) == (2, 3)
    back = dev.to_host(on_dev)
    assert isinstance(back, np.ndarray) and back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host)
    np.testing.assert_array_equal(xn.to_numpy(on_dev), host)


def test_from_host_converts_lists_scalars_and_dtypes(dev):
    a = dev.from_host([1, 2, 3], "float32")
    assert a.dtype == dev.dtype("float32") and dev.owns(a)
    np.testing.assert_array_equal(dev.to_host(a), np.float32([1, 2, 3]))
    s = dev.from_host(0.1, dev.dtype("float64"))  # a namespace dtype works too
    assert s.shape == () and dev.to_host(s) == 0.1
    h = np.array([0.5, 1.5])
    d = dev.from_host(h, "float32")
    assert dev.to_host(d).dtype == np.float32
    h[0] = 9.0  # the caller's array changed afterwards: the float32 copy did not
    assert dev.to_host(d)[0] == 0.5


def test_owns_and_describe(dev):
    mine = dev.from_host(np.ones(2))
    assert dev.owns(mine)
    assert not dev.owns([1.0, 2.0])
    other = strict.ones(2, device=strict.Device("device2"))
    assert not dev.owns(other)
    assert devices.describe(other) == "array_api_strict array on " + repr(other.device)
    assert devices.describe(np.ones(1)) == "numpy array on cpu"
    if not array_api_compat.is_numpy_namespace(dev.xp):  # the CuPy stand-in's are NumPy's
        assert not dev.owns(np.ones(2))


def test_the_cupy_standin_backend_opens_by_name():
    """``backend="cupy_standin"`` on "cpu": the CuPy device's rules over NumPy, one per
    process, as the examples and any Session opened by name get it."""
    dev = devices.resolve("cpu", backend="cupy_standin")
    assert dev.backend == "cupy_standin" and not dev.reads_without_sync
    assert devices.resolve("cpu", backend="cupy_standin") is dev
    with xn.Graph().as_default():
        same = xn.Session(device=dev.name, backend=dev.backend).device
    assert same is dev
    with pytest.raises(ValueError, match="'cupy_standin'.* runs on device 'cpu' only"):
        devices.resolve("device1", backend="cupy_standin")


def test_to_numpy_of_every_array_kind():
    np.testing.assert_array_equal(xn.to_numpy(np.arange(3)), [0, 1, 2])
    x = strict.asarray([1.0, 2.0], device=strict.Device("device1"))
    out = xn.to_numpy(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 2.0])
    assert xn.to_numpy(2.5) == 2.5 and isinstance(xn.to_numpy(2.5), np.ndarray)
    assert xn.to_numpy(np.float32(1.5)).dtype == np.float32


def test_to_numpy_of_torch():
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.0, 2.0], requires_grad=True) * 2
    out = xn.to_numpy(t)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [2.0, 4.0])


def test_session_results_to_numpy(dev):
    with xn.Graph().as_default():
        out = xn.Session(device=dev).run(xn.constant([1.0, 2.0]) * 3.0)
    assert dev.owns(out)
    host = xn.to_numpy(out)
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    np.testing.assert_array_equal(host, [3.0, 6.0])


# --------------------------------------------------------------------------- dtypes


def test_dtype_names_and_floating():
    torch = pytest.importorskip("torch")
    spellings = ["float32", np.float32, np.dtype("float32"), strict.float32, torch.float32]
    assert {dtypes.dtype_name(s) for s in spellings} == {"float32"}
    assert dtypes.dtype_name(torch.int64) == "int64"
    assert dtypes.dtype_name(strict.float64) == "float64"
    assert dtypes.is_floating("float16") and dtypes.is_floating(strict.float64)
    assert not dtypes.is_floating("int64") and not dtypes.is_floating(torch.bool)
    assert not dtypes.is_floating("not a dtype")


def test_device_dtype_objects(dev):
    for name in ("float32", "float64", "int64"):
        assert dev.dtype(name) == getattr(dev.xp, name)
        assert dev.dtype(np.dtype(name)) == getattr(dev.xp, name)
