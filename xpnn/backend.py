"""Devices: the one place that turns ``"cpu"``, ``"cuda:1"`` or ``"device1"`` into an array
namespace plus a native device, and moves arrays between the host and that device.

>>> import xpnn as xn
>>> dev = xn.backend.resolve("cpu")
>>> dev.backend, dev.to_host(dev.from_host([1, 2], "float32")).tolist()
('numpy', [1.0, 2.0])
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import numbers
import os
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from .dtypes import FLOAT_DTYPES, dtype_name, is_floating  # noqa: F401 (their old home)
from .host import to_numpy

BACKENDS = ("numpy", "cupy", "array_api_strict", "torch", "jax", "cupy_standin")

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
    """An array namespace bound to one device, with host <-> device transfer. One small
    subclass per backend says where that backend differs; nothing else in xpnn asks which
    backend it runs on."""

    name: str
    xp: Any
    device: Any
    backend = ""  # the backend's name, for messages
    host_native = False  # host NumPy arrays are this device's own (fed as they are)
    reads_without_sync = False  # bool(xp.all(...)) costs no device synchronisation
    context = None  # a context manager making this the current device, where one is needed
    # Arrays can be written in place (NumPy, CuPy, PyTorch, array-api-strict): a buffer the
    # Session keeps (a constant, a Variable) is handed out as a copy, never live.
    mutable = False
    # The environment variable that turned this device's passes off before $XPNN_PASSES
    # (still read, deprecated): see Session(passes=).
    old_switch = None

    def __repr__(self) -> str:
        return f"Device({self.backend}:{self.name})"

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
        return self.xp.asarray(_host(value, dtype), device=self.device, copy=True)

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
        """An array of this device, fed by the user, as a Session uses it."""
        return array

    def copy(self, array):
        """A new array, on this device, equal to ``array`` and sharing no memory with it."""
        return self.xp.asarray(array, copy=True)

    def hand_out(self, value):
        """A Variable's value as given to the user: never the live buffer where arrays are
        mutable (a later run would overwrite it, or the user's write change the Variable)."""
        return self.copy(value) if self.mutable else value

    def keep(self, value, inputs):
        """A new Variable value (computed from ``inputs``) as the Session stores it."""
        return value

    def rewrite(self, plan, session) -> None:
        """This device's passes over a freshly compiled plan (none by default); not called
        where ``session.passes`` is off."""


def _host(value, dtype):
    return np.asarray(value, dtype=None if dtype is None else dtype_name(dtype))


class _Registered:
    """A device whose plan passes and whose rule for keeping a new Variable value
    (``own``) are a package of their own (``numpy_fast``, ``torch_fast``, ``cupy_fast``),
    which builds on plan and ops (modules above this one) and registers them here when
    xpnn is imported."""

    passes = None  # the package's rewrite(plan, session)
    own = None  # the package's own(value, inputs)

    @classmethod
    def register(cls, passes, own) -> None:
        cls.passes, cls.own = staticmethod(passes), staticmethod(own)

    def keep(self, value, inputs):
        return self.own(value, inputs)

    def rewrite(self, plan, session) -> None:
        self.passes(plan, session)


class NumpyDevice(_Registered, Device):
    """The CPU with NumPy. Its Sessions update Variables in place and run the plan passes
    of ``numpy_fast``, which builds on plan and ops (modules above this one) and registers
    itself here when xpnn is imported."""

    backend = "numpy"
    host_native = True
    reads_without_sync = True
    mutable = True
    passes = None  # numpy_fast.rewrite
    own = None  # numpy_fast.ownership.own

    def from_host(self, value, dtype=None, copy=False):
        host = _host(value, dtype)
        return np.array(host, copy=True) if copy else host

    def copy(self, array):
        return array.copy()


class StrictDevice(Device):
    """array-api-strict: the stand-in for a GPU in the tests."""

    backend = "array_api_strict"
    reads_without_sync = True
    mutable = True


class TorchDevice(_Registered, Device):
    """PyTorch on the CPU or a CUDA GPU. Its Sessions run the plan passes of ``torch_fast``
    (which registers itself here when xpnn is imported, and imports torch only when a torch
    plan is compiled); ``Session(passes=False)`` runs the portable plan instead."""

    backend = "torch"
    mutable = True
    old_switch = "XPNN_TORCH_PASSES"
    passes = None  # torch_fast.rewrite
    own = None  # torch_fast.own

    @property
    def reads_without_sync(self) -> bool:
        return self.device.type == "cpu"

    def from_host(self, value, dtype=None, copy=False):
        """On the CPU the tensor shares the host array's memory (``torch.from_numpy``, as
        NumPy Sessions use fed arrays as they are; no op writes into its inputs) unless
        ``copy`` is asked for or the array is read-only or not C-ordered."""
        host = _host(value, dtype)
        if self.device.type == "cpu":
            if copy or not (host.flags.writeable and host.flags.c_contiguous
                            and host.dtype.isnative and min(host.strides, default=0) >= 0):
                host = np.array(host, order="C", copy=True)
            try:
                return self.xp.from_numpy(host)
            except TypeError:  # a dtype torch has no tensors of: let asarray say so
                pass
        host = np.asarray(host, order="C")
        return self.xp.asarray(host, device=self.device, copy=True)

    def adopt(self, array):
        # Detached from autograd: Variables never carry gradient history from run to run.
        return array.detach() if array.requires_grad else array


class CupyDevice(_Registered, Device):
    """CuPy on a CUDA GPU. Its Sessions run the plan passes of ``cupy_fast`` (which
    registers itself here when xpnn is imported, and imports cupy only at its first
    kernel); ``Session(passes=False)`` runs the portable plan instead."""

    backend = "cupy"
    mutable = True
    old_switch = "XPNN_CUPY_PASSES"
    passes = None  # cupy_fast.rewrite
    own = None  # cupy_fast.ownership.own

    @property
    def context(self):  # new CuPy arrays go to the current GPU
        return self.device

    def from_host(self, value, dtype=None, copy=False):
        """With unified memory (``CUPY_ENABLE_UMP=1``) CuPy may map the host array itself:
        then the array is always copied first, or kernels still queued when ``run`` returns
        would read the user's later writes to a fed array."""
        host = _host(value, dtype)
        if copy or _unified_memory():
            host = np.array(host, copy=True)
        with self.device:  # CuPy ignores device= outside asarray; this covers both
            return self.xp.asarray(host)

    def copy(self, array):
        with self.device:  # ndarray.copy() allocates on the current GPU
            return array.copy()


def _unified_memory() -> bool:
    """Whether CuPy maps host memory (``CUPY_ENABLE_UMP``, read as CuPy reads it)."""
    try:
        return int(os.environ.get("CUPY_ENABLE_UMP", "0")) != 0
    except ValueError:
        return False


def context_of(array):
    """A context manager under which new arrays and kernels go to ``array``'s device: CuPy
    makes them on the current GPU, whatever device its arguments live on (array-api-compat
    ignores ``device=`` there). A no-op for every other array.

    >>> import numpy as np, xpnn as xn
    >>> with xn.backend.context_of(np.ones(2)):
    ...     pass
    """
    if array_api_compat.is_cupy_array(array):
        return resolve(f"cuda:{array.device.id}").context
    return contextlib.nullcontext()


def indicator(xp, condition, dtype):
    """1 where ``condition`` holds, else 0, in ``dtype``: a mask to multiply by, for which
    0 * inf and 0 * NaN are NaN on every backend. A cast, except on JAX: XLA rewrites a
    product by a cast boolean into a select, which gives 0 there; by a select of 1 and 0 it
    does not.

    >>> import numpy as np, xpnn as xn
    >>> xn.backend.indicator(np, np.array([True, False]), np.float32).tolist()
    [1.0, 0.0]
    """
    if array_api_compat.is_jax_namespace(xp):
        dev = array_api_compat.device(condition)
        one, zero = (xp.asarray(v, dtype=dtype, device=dev) for v in (1, 0))
        return xp.where(condition, one, zero)
    return xp.astype(condition, dtype)


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


# How to bring each library's array to the host, for messages.
_TO_HOST = {"torch": "tensor.numpy() (tensor.detach().cpu().numpy() for one that requires "
                     "grad or is on a GPU)", "cupy": "array.get()"}


def feed_mismatch(array, device: Device) -> str:
    """Why a Session on ``device`` cannot take the device array ``array`` fed to it, and what
    to feed instead: another library's array is to be converted to NumPy, not moved."""
    xp = array_api_compat.array_namespace(array)
    library = xp.__name__.removeprefix("array_api_compat.").split(".")[0]
    article = "an" if library[0] in "aeiou" else "a"
    noun = "tensor" if library == "torch" else "array"
    text = (f"{article} {library} {noun} on {array_api_compat.device(array)}, but this Session "
            f"runs on {device.backend} device {device.name}")
    if xp is not device.xp:
        return (f"{text}, which computes with {device.backend} arrays: convert it to NumPy "
                f"with {_TO_HOST.get(library, 'np.asarray(array)')}, or xn.to_numpy(...), and "
                f"it is moved for you; or feed a {device.backend} array on {device.name}")
    return f"{text}: feed an array on {device.name}, or NumPy data (it is moved for you)"


class JaxDevice(Device):
    """JAX turns every float64 request into float32 (and int64 into int32) unless its x64
    mode is on: refuse instead of computing in a precision nobody asked for. (Turning x64 on
    here would change JAX's defaults for the user's whole program.) Its Sessions compile
    each plan into one ``jax.jit`` function (``jax_fast``, which registers itself here when
    xpnn is imported) that donates the Variables' buffers: so the Session hands out copies
    of the values it keeps, and keeps no array that someone else holds."""

    backend = "jax"
    passes = None  # jax_fast.rewrite
    old_switch = "XPNN_JIT"

    @classmethod
    def register(cls, passes) -> None:
        cls.passes = staticmethod(passes)

    @property
    def reads_without_sync(self) -> bool:
        return self.device.platform == "cpu"

    def dtype(self, name) -> Any:
        dtype = super().dtype(name)
        self._check(dtype)
        return dtype

    def from_host(self, value, dtype=None, copy=False):
        host = _host(value, dtype)
        self._check(host.dtype)
        # Always a copy: jax.device_put may alias the host array on the CPU, and an immutable
        # JAX array must not see later writes to it. (device_put: jnp.asarray(x, device=) is
        # several times slower.)
        import jax

        return jax.device_put(np.array(host, copy=True), self.device)

    def hand_out(self, value):
        return value.copy()  # the live buffer may be donated to a later step

    def keep(self, value, inputs):
        # A new value that is one of the update's inputs (an assign step) would be shared
        # with another Variable or a feed: a later step donating one would delete both.
        return value.copy() if any(value is i for i in inputs) else value

    def rewrite(self, plan, session) -> None:
        self.passes(plan, session)

    @staticmethod
    def _check(dtype) -> None:
        name = dtype_name(dtype)
        narrow = _NEEDS_X64.get(name)
        if narrow is None:
            return
        import jax

        if jax.dtypes.canonicalize_dtype(np.dtype(name)) != np.dtype(name):
            lost = "" if narrow.startswith("float") else " (2**40 would become 0)"
            raise RuntimeError(
                f"{name} asked for on JAX, but JAX is in its default 32-bit mode and would "
                f"compute in {narrow}{lost}: set JAX_ENABLE_X64=1 in the environment, or call "
                'jax.config.update("jax_enable_x64", True) before any JAX array is made '
                f"(or ask for {narrow})"
            )


# JAX's 64-bit dtypes, which it turns into their 32-bit ones unless its x64 mode is on.
_NEEDS_X64 = {"float64": "float32", "int64": "int32", "uint64": "uint32"}


# The package each backend needs and how to get it (a bare `pip install torch` pulls
# multi-GB CUDA wheels; 2.13.0 from PyPI is the CPU build).
_INSTALL = {
    "torch": ("PyTorch", "pip install torch==2.13.0 (the CPU build; for a GPU see pytorch.org)"),
    "jax": ("JAX", "pip install jax"),
    "array_api_strict": ("array-api-strict", "pip install 'array-api-strict>=2.6.1'"),
    "cupy": ("CuPy", "pip install 'xpnn[cuda]' (cupy-cuda12x[ctk])"),
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
        raise TypeError(f"a device is a string such as 'cpu' or 'cuda:1', not {device!r}"
                        + _device_hint(device))
    kind, colon, index = device.partition(":")
    known = kind in ("cpu", "cuda", "gpu") or kind.startswith("device") or kind == "CPU_DEVICE"
    if not known or (colon and not index.isdigit()):
        raise ValueError(
            f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' (N = 0, 1, ...), or "
            "array_api_strict's 'device1' or 'device2'"
        )
    return kind, (index or None)


def _device_hint(device) -> str:
    """What to write for a device given as a number: PyTorch's ``device=0`` means GPU 0."""
    if isinstance(device, bool) or not isinstance(device, numbers.Integral):
        return ""
    if device < 0:
        return ": for the CPU write device='cpu'"
    return f": for GPU {device} write device='cuda:{device}', for the CPU device='cpu'"


def _default_backend(kind: str) -> str:
    if kind == "cpu":
        return "numpy"
    if kind in ("cuda", "gpu"):
        return "cupy"
    return "array_api_strict"


def _open_numpy(device, kind, index):
    if kind != "cpu":
        raise ValueError(f"backend 'numpy' runs on device 'cpu' only, not {device!r}")
    return NumpyDevice("cpu", array_api_compat.array_namespace(np.empty(0)), "cpu")


def _open_strict(device, kind, index):
    strict = _import("array_api_strict", device)
    strict.set_array_api_strict_flags(api_version="2024.12")
    try:
        native = strict.Device("CPU_DEVICE" if kind == "cpu" else device)
    except ValueError as exc:
        raise ValueError(
            f"array_api_strict has no device {device!r}: use 'cpu', 'device1' or 'device2'"
        ) from exc
    return StrictDevice(device, strict, native)


def _open_torch(device, kind, index):
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"backend 'torch' takes device 'cpu' or 'cuda[:N]', not {device!r}")
    torch = _import("torch", device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but torch sees no CUDA device")
    xp = array_api_compat.array_namespace(torch.empty(0))
    return TorchDevice(device, xp, torch.device(device))


def _open_cupy(device, kind, index):
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
    return CupyDevice(f"cuda:{idx}", xp, cupy.cuda.Device(idx))


def _open_jax(device, kind, index):
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
    return JaxDevice(device, xp, found[idx])


def _open_standin(device, kind, index):
    if kind != "cpu":
        raise ValueError(f"backend 'cupy_standin' (NumPy under the CuPy device's rules) runs "
                         f"on device 'cpu' only, not {device!r}")
    from .cupy_fast import standin  # the CuPy pass's package, above this module

    return standin.stand_in()


_OPEN = {"numpy": _open_numpy, "array_api_strict": _open_strict, "torch": _open_torch,
         "cupy": _open_cupy, "jax": _open_jax, "cupy_standin": _open_standin}


@functools.cache
def _resolve(device: str, backend: str | None) -> Device:
    kind, index = _parse(device)
    backend = backend or _default_backend(kind)
    if backend not in _OPEN:
        raise ValueError(f"unknown backend {backend!r}: choose one of {BACKENDS}")
    return _OPEN[backend](device, kind, index)


def resolve(device: str | Device | None = None, backend: str | None = None) -> Device:
    """Turn a device string (and optional backend name) into a :class:`Device`.

    ``"cpu"`` -> NumPy, ``"cuda"``/``"cuda:N"`` -> CuPy; ``backend=`` picks another namespace
    (``"array_api_strict"`` with ``device="device1"``, ``"torch"``, ``"jax"``; with "cpu",
    ``"cupy_standin"``: NumPy under the CuPy device's rules, ``cupy_fast.standin``). JAX holds
    float64 and int64 only in its x64 mode (``JAX_ENABLE_X64=1``); without it a request for
    either raises.

    >>> import xpnn as xn
    >>> xn.backend.resolve("device1", backend="array_api_strict").backend
    'array_api_strict'
    """
    if isinstance(device, Device):
        return device
    if device is not None and not isinstance(device, str):
        _parse(device)  # refused: device=0 is falsy and would mean the default device
    return _resolve(device or get_default_device(), backend)
