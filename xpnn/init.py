"""Weight initialisers, drawn on the host from ``numpy.random.Generator(PCG64(seed))`` and
cast there: the same seed gives bit-identical initial weights on every backend.

>>> import xpnn as xn
>>> xn.init.he_normal((3, 2), seed=0).dtype
dtype('float32')
"""

from __future__ import annotations

import numpy as np


def generator(seed=None) -> np.random.Generator:
    """A PCG64 generator from a seed (or pass a Generator through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(seed))


def _fans(shape):
    """(fan_in, fan_out): a matrix's (in, out); convolution filters (kh, kw, in, out), HWIO,
    count every input and output of one window (kh kw in, kh kw out), as TF and Keras."""
    if len(shape) < 1:
        raise ValueError(f"initialisers need a shape with at least one axis, got {shape}")
    if len(shape) <= 2:
        return shape[0], (shape[1] if len(shape) > 1 else shape[0])
    window = int(np.prod(shape[:-2]))
    return shape[-2] * window, shape[-1] * window


def he_normal(shape, seed=None, dtype="float32") -> np.ndarray:
    """N(0, 2 / fan_in): He et al. (2015), for ReLU layers. ``shape = (fan_in, fan_out)``.

    >>> import xpnn as xn
    >>> w = xn.init.he_normal((1000, 100), seed=1)
    >>> round(float(w.std()), 2)
    0.04
    """
    fan_in, _ = _fans(shape)
    return (generator(seed).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def glorot_uniform(shape, seed=None, dtype="float32") -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)): Glorot & Bengio (2010).

    >>> import xpnn as xn
    >>> float(abs(xn.init.glorot_uniform((3, 3), seed=0)).max()) <= 1.0
    True
    """
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return generator(seed).uniform(-limit, limit, shape).astype(dtype)


def zeros(shape, seed=None, dtype="float32") -> np.ndarray:
    """All zeros (biases)."""
    return np.zeros(shape, dtype=dtype)


INITIALIZERS = {"he_normal": he_normal, "glorot_uniform": glorot_uniform, "zeros": zeros}


def get(name_or_fn):
    """An initialiser by name, or a callable ``(shape, seed, dtype) -> ndarray`` passed through."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return INITIALIZERS[name_or_fn]
    except KeyError:
        raise ValueError(
            f"unknown initialiser {name_or_fn!r}: choose one of {sorted(INITIALIZERS)}"
        ) from None
