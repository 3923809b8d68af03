"""Subnormal floats flushed to zero while the optimizer updates run, as TensorFlow does on
the CPU. A slot that decays toward zero (Adam's ``m`` or momentum's velocity for an input
that is almost always 0, such as an MNIST border pixel) spends some 150 steps among the
subnormals (below 1.2e-38 in float32) before it underflows; x86 cores take about a hundred
cycles for each of them, and a few percent of such entries made Adam's update half as
slow again. Flushed, those entries are 0 a little sooner: the weight steps they would
still have made are below learning_rate * 1.2e-30.

This sets the FTZ and DAZ bits of the x86-64 SSE control register (MXCSR) through the C
library's ``fegetenv``/``fesetenv`` for the calling thread only, and puts the thread's
floating-point environment back afterwards: BLAS worker threads keep their own, so the
share of a threaded product that another thread computes is not flushed. Elsewhere
(another machine, another C library), or with ``XPNN_FLUSH_DENORMALS=0``, ``flushed()``
changes nothing.

>>> import numpy as np
>>> from xpnn.devices.numpy import denormals
>>> tiny = np.array([1e-39], dtype=np.float32)
>>> with denormals.flushed():
...     product = tiny * np.float32(1.0)
>>> bool(product[0] == 0) == denormals.available(), bool(tiny * np.float32(1.0) > 0)
(True, True)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform

import numpy as np

_MXCSR_OFFSET = 28  # of x86-64's fenv_t: the x87 environment (28 bytes), then MXCSR
_FLUSH_TO_ZERO, _DENORMALS_ARE_ZERO = 0x8000, 0x0040
_FENV_BYTES = 64  # fenv_t is 32 bytes on x86-64; room to spare


@functools.cache
def _libm():
    """The C math library's ``fegetenv``/``fesetenv``, where they act as on x86-64 glibc
    (checked: a subnormal product is 0 inside, not outside); None elsewhere."""
    if os.environ.get("XPNN_FLUSH_DENORMALS", "1") == "0":
        return None
    if platform.machine().lower() not in ("x86_64", "amd64") or os.name != "posix":
        return None
    try:
        name = ctypes.util.find_library("m")  # None where libc holds libm (musl)
        libm = ctypes.CDLL(name)  # CDLL(None): the symbols already in the process
        libm.fegetenv.argtypes = libm.fesetenv.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    tiny = np.array([1e-39], dtype=np.float32)
    with _flushing(libm):
        inside = float((tiny * np.float32(1.0))[0])
    outside = float((tiny * np.float32(1.0))[0])
    return libm if inside == 0.0 and outside > 0.0 else None


@contextlib.contextmanager
def _flushing(libm):
    saved = ctypes.create_string_buffer(_FENV_BYTES)
    if libm.fegetenv(saved) != 0:
        yield
        return
    flushing = ctypes.create_string_buffer(saved.raw, _FENV_BYTES)
    mxcsr = int.from_bytes(saved.raw[_MXCSR_OFFSET:_MXCSR_OFFSET + 4], "little")
    mxcsr |= _FLUSH_TO_ZERO | _DENORMALS_ARE_ZERO
    ctypes.memmove(ctypes.addressof(flushing) + _MXCSR_OFFSET, mxcsr.to_bytes(4, "little"), 4)
    try:
        libm.fesetenv(flushing)
        yield
    finally:
        libm.fesetenv(saved)


def available() -> bool:
    """Whether ``flushed()`` flushes on this machine."""
    return _libm() is not None


def flushed():
    """A context in which this thread's float arithmetic flushes subnormals to zero."""
    libm = _libm()
    return contextlib.nullcontext() if libm is None else _flushing(libm)
