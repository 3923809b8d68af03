"""TF1's dtypes as objects: ``tf.float32`` and friends, accepted wherever xpnn takes a dtype
(xpnn reads them as NumPy does, through their ``dtype`` attribute), equal to their names.

>>> import xpnn.compat.v1 as tf
>>> tf.float32 == "float32", tf.as_dtype("int64") is tf.int64, tf.float32.is_floating
(True, True, True)
"""

from __future__ import annotations

import numpy as np

from ...dtypes import dtype_name


def _kind_in(kinds: str) -> property:
    """A DType property: whether its NumPy kind is one of ``kinds``."""
    return property(lambda self: self.dtype.kind in kinds)


class DType:
    """A dtype by TF1's name, with its NumPy twin (``as_numpy_dtype``)."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(name)  # np.dtype(tf.float32) reads this

    @property
    def as_numpy_dtype(self):
        return self.dtype.type

    @property
    def base_dtype(self) -> DType:
        return self

    @property
    def real_dtype(self) -> DType:
        return self

    is_floating = _kind_in("f")
    is_integer = _kind_in("iu")
    is_bool = _kind_in("b")
    is_unsigned = _kind_in("ub")  # bool too, as in TF1 (its min is 0)

    @property
    def size(self) -> int:
        return self.dtype.itemsize

    @property
    def min(self):
        return np.finfo(self.dtype).min if self.is_floating else np.iinfo(self.dtype).min

    @property
    def max(self):
        return np.finfo(self.dtype).max if self.is_floating else np.iinfo(self.dtype).max

    def __eq__(self, other) -> bool:
        try:
            return self.name == as_dtype(other).name
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: '{self.name}'>"


float16 = half = DType("float16")
float32 = DType("float32")
float64 = double = DType("float64")
int8 = DType("int8")
int16 = DType("int16")
int32 = DType("int32")
int64 = DType("int64")
uint8 = DType("uint8")
uint16 = DType("uint16")
bool = DType("bool")  # noqa: A001 - TF1's name

_ALL = {d.name: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, uint16,
                            bool)}


_TF_NAMES = {"float": float32, "double": float64, "half": float16}  # TF1's C names


def as_dtype(value) -> DType:
    """The DType of any spelling: a DType, a name (TF1's "float" is float32), a NumPy or
    Python type, a node's dtype.

    >>> import xpnn.compat.v1 as tf
    >>> tf.as_dtype(float), tf.as_dtype("float32")
    (tf.float64, tf.float32)
    """
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in _TF_NAMES:
        return _TF_NAMES[value]
    try:
        name = dtype_name(value)
    except TypeError:
        raise TypeError(f"Cannot convert {value!r} to a dtype") from None
    if name not in _ALL:
        raise TypeError(f"dtype {name} is not one of xpnn.compat.v1's: {sorted(_ALL)}")
    return _ALL[name]


def name_of(dtype) -> str | None:
    """The xpnn (NumPy) name of a dtype given any way, None for None."""
    return None if dtype is None else as_dtype(dtype).name
