"""Devices: the one place that turns ``"cpu"``, ``"cuda:1"`` or ``"device1"`` into an array
namespace plus a native device, and moves arrays between the host and that device.

>>> import xpnn as xn
>>> dev = xn.backend.resolve("cpu")
>>> dev.backend, dev.to_host(dev.from_host([1, 2], "float32")).tolist()
('numpy', [1.0, 2.0])
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "cupy", "array_api_strict", "torch", "jax")
FLOAT_DTYPES = ("float32", "float64", "float16")

_default_device: str | None = None


def set_default_device(device: str | None) -> None:
    """Set the device used when a Session or model is given none (``None`` resets).

    >>> import xpnn as xn
    >>> xn.set_default_device("cpu"); xn.get_default_device()
    'cpu'
    """
    global _default_device
    if device is not None:
        _parse(device)  # a misspelling fails here, not at the first Session
    _default_device = device


def get_default_device() -> str:
    """The default device: ``set_default_device``, else ``$XPNN_DEVICE``, else ``"cpu"``."""
    return _default_device or os.environ.get("XPNN_DEVICE") or "cpu"


@dataclass(frozen=True, eq=False)
class Device:
    """An array namespace bound to one device, with host <-> device transfer."""

    backend: str
    name: str
    xp: Any
    device: Any

    def __repr__(self) -> str:
        return f"Device({self.backend}:{self.name})"

    @property
    def context(self):
        """A context manager that makes this the current device (CuPy), else None."""
        return self.device if self.backend == "cupy" else None

    def dtype(self, name) -> Any:
        """The namespace's dtype object for ``"float32"``-style names (or a dtype)."""
        if not isinstance(name, str):
            name = dtype_name(name)
        try:
            return getattr(self.xp, name)
        except AttributeError:
            raise TypeError(f"backend {self.backend!r} has no dtype {name!r}") from None

    def from_host(self, value, dtype=None, copy=False):
        """Move host data (NumPy array, list, scalar) to this device. ``copy=True`` makes
        sure the result shares no memory with ``value`` (on the host too)."""
        if dtype is not None:
            host = np.asarray(value, dtype=dtype_name(dtype))
        else:
            host = np.asarray(value)
        if self.backend == "numpy":
            return np.array(host, copy=True) if copy else host
        if self.backend == "array_api_strict":
            return self.xp.asarray(host, device=self.device, copy=True)
        if self.backend == "torch":
            return self.xp.asarray(np.asarray(host, order="C"), device=self.device, copy=True)
        if self.backend == "cupy":
            # CuPy ignores device= outside asarray; entering the device covers both.
            with self.device:
                return self.xp.asarray(host)
        return self.xp.asarray(host, device=self.device)

    def to_host(self, array) -> np.ndarray:
        """Bring an array of this namespace back to the host as a NumPy array."""
        return to_numpy(array)

    def owns(self, array) -> bool:
        """Whether ``array`` belongs to this namespace and lives on this device."""
        try:
            xp = array_api_compat.array_namespace(array)
        except TypeError:
            return False
        if xp is not self.xp:
            return False
        return _same_device(array_api_compat.device(array), self.device)

    def describe(self, array) -> str:
        """'numpy array on cpu'-style text for error messages."""
        return describe(array)

    def adopt(self, array):
        """An array of this device as a Session keeps it: torch tensors detached from
        autograd, so that Variables never carry gradient history from run to run."""
        if self.backend == "torch" and array.requires_grad:
            return array.detach()
        return array

    @property
    def host_native(self) -> bool:
        """Whether host NumPy arrays are this device's own arrays (fed as they are)."""
        return self.backend == "numpy"

    def hand_out(self, value):
        """A Variable's value as given to the user: NumPy Sessions update Variables in
        place, so they hand out a copy, never the live buffer."""
        return value.copy() if self.backend == "numpy" else value

    def keep(self, value, inputs):
        """A new Variable value as the Session stores it (NumPy: one it may write in place
        later, see ``numpy_fast.ownership.own``)."""
        if self.backend != "numpy":
            return value
        from .numpy_fast import ownership  # numpy_fast builds on plan and ops, above us

        return ownership.own(value, inputs)

    def rewrite(self, plan, session) -> None:
        """This device's passes over a freshly compiled plan (NumPy's: ``numpy_fast``)."""
        if self.backend == "numpy":
            from . import numpy_fast  # numpy_fast builds on plan and ops, above us

            numpy_fast.rewrite(plan, session)

    @property
    def reads_without_sync(self) -> bool:
        """Whether reading a value of this device's arrays (``bool(xp.all(...))``) costs no
        device synchronisation: NumPy, array-api-strict and CPU torch or JAX."""
        if self.backend in ("numpy", "array_api_strict"):
            return True
        if self.backend == "torch":
            return self.device.type == "cpu"
        return self.backend == "jax" and self.device.platform == "cpu"


def _same_device(a, b) -> bool:
    return a == b or str(a) == str(b)


def describe(array) -> str:
    """A short text naming an array's library and device, for error messages."""
    if isinstance(array, np.ndarray) or np.isscalar(array):
        return "numpy array on cpu"
    try:
        array_api_compat.array_namespace(array)
        dev = array_api_compat.device(array)
    except TypeError:
        return f"{type(array).__name__} object"
    module = type(array).__module__.split(".")[0]
    return f"{module} array on {dev}"


def to_numpy(array) -> np.ndarray:
    """Any supported array (NumPy, CuPy, torch, array-api-strict, JAX) as a host NumPy array
    that shares no memory with a device or tensor buffer (NumPy input is returned as is).

    >>> import xpnn as xn
    >>> xn.to_numpy(xn.Session().run(xn.constant([1.0, 2.0]))).tolist()
    [1.0, 2.0]
    """
    if isinstance(array, np.ndarray):
        return array
    if array is None or isinstance(array, (int, float, bool, np.generic)):
        return np.asarray(array)
    if array_api_compat.is_cupy_array(array):
        return array.get()
    if array_api_compat.is_torch_array(array):
        host = array.detach().cpu()
        # On the CPU .numpy() shares the tensor's memory: copy, as for every other backend.
        return host.numpy().copy() if host.data_ptr() == array.data_ptr() else host.numpy()
    if array_api_compat.is_jax_array(array):
        return np.array(array)  # np.asarray would be a read-only view of JAX's buffer
    if type(array).__module__.startswith("array_api_strict"):
        import array_api_strict

        cpu = array_api_strict.Device("CPU_DEVICE")
        return np.asarray(array_api_strict.asarray(array, device=cpu, copy=True)._array)
    return np.asarray(array)


class _JaxDevice(Device):
    """JAX turns every float64 request into float32 unless its x64 mode is on: refuse instead
    of computing in a precision nobody asked for. (Turning x64 on here would change JAX's
    defaults for the user's whole program.)"""

    def dtype(self, name) -> Any:
        dtype = super().dtype(name)
        self._check(dtype)
        return dtype

    def from_host(self, value, dtype=None, copy=False):
        host = np.asarray(value, dtype=None if dtype is None else dtype_name(dtype))
        self._check(host.dtype)
        # Always a copy: an immutable JAX array must not see later writes to the host array.
        return self.xp.asarray(host, device=self.device, copy=True)

    @staticmethod
    def _check(dtype) -> None:
        if dtype_name(dtype) != "float64":
            return
        import jax

        if jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
            raise RuntimeError(
                "float64 asked for on JAX, but JAX is in its default 32-bit mode and would "
                "compute in float32: set JAX_ENABLE_X64=1 in the environment, or call "
                'jax.config.update("jax_enable_x64", True) before any JAX array is made '
                "(or ask for float32)"
            )


# The package each backend needs and how to get it (a bare `pip install torch` pulls
# multi-GB CUDA wheels; 2.13.0 from PyPI is the CPU build).
_INSTALL = {
    "torch": ("PyTorch", "pip install torch==2.13.0 (the CPU build; for a GPU see pytorch.org)"),
    "jax": ("JAX", "pip install jax"),
    "array_api_strict": ("array-api-strict", "pip install 'array-api-strict>=2.6.1'"),
    "cupy": ("CuPy", "pip install 'xpnn[cuda]' (cupy-cuda12x)"),
}


def _import(backend: str, device: str):
    try:
        return importlib.import_module(backend)
    except ImportError as exc:
        package, how = _INSTALL[backend]
        raise RuntimeError(
            f"device {device!r} with backend {backend!r} needs {package}, which is not "
            f"installed ({exc}): {how}"
        ) from exc


def _parse(device: str) -> tuple[str, str | None]:
    """``"cuda:1"`` -> ``("cuda", "1")``; every device string is checked here, once."""
    if not isinstance(device, str):
        raise TypeError(f"a device is a string such as 'cpu' or 'cuda:1', not {device!r}")
    kind, colon, index = device.partition(":")
    known = kind in ("cpu", "cuda", "gpu") or kind.startswith("device") or kind == "CPU_DEVICE"
    if not known or (colon and not index.isdigit()):
        raise ValueError(
            f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' (N = 0, 1, ...), or "
            "array_api_strict's 'device1' or 'device2'"
        )
    return kind, (index or None)


def _default_backend(kind: str) -> str:
    if kind == "cpu":
        return "numpy"
    if kind in ("cuda", "gpu"):
        return "cupy"
    return "array_api_strict"


@functools.cache
def _resolve(device: str, backend: str | None) -> Device:
    kind, index = _parse(device)
    backend = backend or _default_backend(kind)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {BACKENDS}")

    if backend == "numpy":
        if kind != "cpu":
            raise ValueError(f"backend 'numpy' runs on device 'cpu' only, not {device!r}")
        return Device("numpy", "cpu", array_api_compat.array_namespace(np.empty(0)), "cpu")

    if backend == "array_api_strict":
        strict = _import("array_api_strict", device)
        strict.set_array_api_strict_flags(api_version="2024.12")
        name = "CPU_DEVICE" if kind == "cpu" else device
        try:
            native = strict.Device(name)
        except ValueError as exc:
            raise ValueError(
                f"array_api_strict has no device {device!r}: use 'cpu', 'device1' or 'device2'"
            ) from exc
        return Device("array_api_strict", device, strict, native)

    if backend == "torch":
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"backend 'torch' takes device 'cpu' or 'cuda[:N]', not {device!r}")
        torch = _import("torch", device)
        xp = array_api_compat.array_namespace(torch.empty(0))
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' asked for, but torch sees no CUDA device")
        native = torch.device(device)
        return Device("torch", device, xp, native)

    if backend == "cupy":
        if kind not in ("cuda", "gpu"):
            raise ValueError(f"backend 'cupy' runs on 'cuda' or 'cuda:N', not {device!r}")
        cupy = _import("cupy", device)
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError when no driver is present
            raise RuntimeError(f"device {device!r}: no CUDA device is available ({exc})") from exc
        idx = int(index or 0)
        if idx >= count:
            raise ValueError(f"device {device!r}: only {count} CUDA device(s) present")
        xp = array_api_compat.array_namespace(cupy.empty(0))
        return Device("cupy", f"cuda:{idx}", xp, cupy.cuda.Device(idx))

    # jax
    if kind not in ("cpu", "cuda", "gpu"):
        raise ValueError(f"backend 'jax' takes device 'cpu' or 'cuda[:N]', not {device!r}")
    jax = _import("jax", device)
    platform = "cpu" if kind == "cpu" else "gpu"
    try:
        found = jax.devices(platform)
    except RuntimeError as exc:  # no GPU backend in this jax install
        raise RuntimeError(f"device {device!r}: JAX sees no {platform} device ({exc})") from exc
    idx = int(index or 0)
    if idx >= len(found):
        raise ValueError(f"device {device!r}: JAX sees only {len(found)} {platform} device(s)")
    xp = array_api_compat.array_namespace(jax.numpy.empty(0))
    return _JaxDevice("jax", device, xp, found[idx])


def resolve(device: str | Device | None = None, backend: str | None = None) -> Device:
    """Turn a device string (and optional backend name) into a :class:`Device`.

    ``"cpu"`` -> NumPy, ``"cuda"``/``"cuda:N"`` -> CuPy; ``backend=`` picks another namespace
    (``"array_api_strict"`` with ``device="device1"``, ``"torch"``, ``"jax"``). JAX holds
    float64 only in its x64 mode (``JAX_ENABLE_X64=1``); without it a float64 request raises.

    >>> import xpnn as xn
    >>> xn.backend.resolve("device1", backend="array_api_strict").backend
    'array_api_strict'
    """
    if isinstance(device, Device):
        return device
    return _resolve(device or get_default_device(), backend)


def dtype_name(dtype) -> str:
    """``"float32"`` for any spelling of a dtype: a string, NumPy, torch or strict dtype."""
    if isinstance(dtype, str):
        return np.dtype(dtype).name
    name = str(dtype)
    for prefix in ("torch.", "dtype('", "array_api_strict."):
        name = name.replace(prefix, "")
    name = name.strip("')")
    try:
        return np.dtype(name).name
    except TypeError:
        return np.dtype(dtype).name


def is_floating(dtype) -> bool:
    """Whether a dtype (any spelling) is a real floating type."""
    try:
        return dtype_name(dtype) in FLOAT_DTYPES
    except TypeError:
        return False
