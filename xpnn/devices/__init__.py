"""Devices: the one place that turns ``"cpu"``, ``"cuda:1"`` or ``"device1"`` into an array
namespace plus a native device, and moves arrays between the host and that device.

This module holds the contract (``Device``) and the device-string parser (``resolve``).
Each backend is a subpackage named after it (``numpy``, ``torch``, ``jax``, ``cupy``,
``cupy_standin``, ``array_api_strict``) holding its Device subclass, whose ``compile``
turns a portable plan into that device's executor (``xpnn.executor``), and its passes; it
is imported when a device of that backend is first resolved, and its
``open_device(device, kind, index)`` makes the Device. Nothing registers itself: a new
backend is a new folder here.

>>> import xpnn as xn
>>> dev = xn.devices.resolve("cpu")
>>> dev.backend, dev.to_host(dev.from_host([1, 2], "float32")).tolist()
('numpy', [1.0, 2.0])
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import numbers
import os
import pkgutil
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from ..dtypes import dtype_name
from ..host import to_numpy

# Every backend: the subpackages of this one.
BACKENDS = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))

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
    # How control-flow ops run their bodies, where not as Python ``if``/``for`` over the
    # bodies' compiled plans (``xpnn.control_flow.eager``): JAX's is ``lax``.
    control_flow = None

    def __repr__(self) -> str:
        return f"Device({self.backend}:{self.name})"

    def __deepcopy__(self, memo):
        # A device is a place, not data: a copy is the same device (scikit-learn's clone
        # deep-copies an estimator's parameters, device= among them).
        return self

    def __reduce__(self):
        # Pickled as its name (scikit-learn pickles and hashes an estimator's parameters,
        # device= among them): the copy is the device resolve gives for that name.
        return resolve, (self.name, self.backend)

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
        return self.xp.asarray(host_array(value, dtype), device=self.device, copy=True)

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

    def compile(self, plan, session):
        """This device's executor for the portable ``plan`` of ``session``: something with
        ``run(values)`` and ``commit(values)`` (``xpnn.executor.Executor``, which a device's
        subclasses). By default the portable executor itself (``session.portable``); not
        called where ``session.passes`` is off, which gets that one on every device."""
        return session.portable(plan)

    def compiling(self):
        """A ``with`` block for compiling a body's plan while the plan around it runs
        (JAX: while it is traced, so the body's constants are made, not traced)."""
        return contextlib.nullcontext()

    def body_executor(self, plan, session):
        """The executor of a cond branch's or loop body's ``plan``, run by the control-flow
        op once per branch taken or iteration: the device's own (``compile``) where
        ``session.passes`` is on, the portable one where it is off."""
        return self.compile(plan, session) if session.passes else session.portable(plan)


def library(name: str, device: str, package: str, how: str):
    """Import the array library ``name`` for ``device``, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise RuntimeError(
            f"device {device!r} with backend {name!r} needs {package}, which is not "
            f"installed ({exc}): {how}"
        ) from exc


def host_array(value, dtype):
    """``value`` as a NumPy array of ``dtype`` (its own dtype where None)."""
    return np.asarray(value, dtype=None if dtype is None else dtype_name(dtype))


def context_of(array):
    """A context manager under which new arrays and kernels go to ``array``'s device: CuPy
    makes them on the current GPU, whatever device its arguments live on (array-api-compat
    ignores ``device=`` there). A no-op for every other array.

    >>> import numpy as np, xpnn as xn
    >>> with xn.devices.context_of(np.ones(2)):
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
    >>> xn.devices.indicator(np, np.array([True, False]), np.float32).tolist()
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


@functools.cache
def _resolve(device: str, backend: str | None) -> Device:
    kind, index = _parse(device)
    backend = backend or _default_backend(kind)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {BACKENDS}")
    return importlib.import_module(f"{__name__}.{backend}").open_device(device, kind, index)


def resolve(device: str | Device | None = None, backend: str | None = None) -> Device:
    """Turn a device string (and optional backend name) into a :class:`Device`.

    ``"cpu"`` -> NumPy, ``"cuda"``/``"cuda:N"`` -> CuPy; ``backend=`` picks another namespace
    (``"array_api_strict"`` with ``device="device1"``, ``"torch"``, ``"jax"``; with "cpu",
    ``"cupy_standin"``: NumPy under the CuPy device's rules). JAX holds
    float64 and int64 only in its x64 mode (``JAX_ENABLE_X64=1``); without it a request for
    either raises.

    >>> import xpnn as xn
    >>> xn.devices.resolve("device1", backend="array_api_strict").backend
    'array_api_strict'
    """
    if isinstance(device, Device):
        return device
    if device is not None and not isinstance(device, str):
        _parse(device)  # refused: device=0 is falsy and would mean the default device
    return _resolve(device or get_default_device(), backend)


# What ``xn.debug.compare_backends`` compares by default: NumPy, PyTorch and JAX on the CPU.
COMPARED = ("cpu", "torch:cpu", "jax:cpu")


def named(spec) -> tuple[str, Device]:
    """(name, Device) for a device string (``"cpu"``, ``"cuda:1"``, ``"device1"``), a
    ``"backend:device"`` pair (``"torch:cpu"``, ``"jax:cpu"``, ``"array_api_strict:device1"``),
    a backend alone (``"cupy_standin"``: on ``"cpu"``) or a Device (named
    ``"backend:device"``): how ``xn.debug.compare_backends`` is told its devices.

    >>> import xpnn as xn
    >>> name, device = xn.devices.named("array_api_strict:device1")
    >>> name, device.backend, device.name
    ('array_api_strict:device1', 'array_api_strict', 'device1')
    """
    if isinstance(spec, Device):
        return f"{spec.backend}:{spec.name}", spec
    if not isinstance(spec, str):
        raise TypeError(f"a device is a string such as 'cpu' or 'torch:cpu', or a Device, "
                        f"not {spec!r}")
    library, _, where = spec.partition(":")
    if library in BACKENDS:
        return spec, resolve(where or "cpu", backend=library)
    try:
        return spec, resolve(spec)
    except ValueError as exc:
        raise ValueError(f"{exc}; or 'backend:device' with a backend of {BACKENDS}, such as "
                         f"'{COMPARED[1]}'") from None
