"""Dtype names and kinds: what the graph needs to know about dtypes, without a device.

>>> import numpy as np
>>> from xpnn.dtypes import dtype_name, is_floating
>>> dtype_name(np.float32), dtype_name("f8"), is_floating("float16"), is_floating("int64")
('float32', 'float64', True, False)
"""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = ("float32", "float64", "float16")


def dtype_name(dtype) -> str:
    """``"float32"`` for any spelling of a dtype: a string or any array library's dtype."""
    if isinstance(dtype, str):
        return np.dtype(dtype).name
    # "float32", "dtype('float32')", "<library>.float32": the name is after the last dot.
    name = str(dtype).rpartition(".")[2].removeprefix("dtype('").strip("')")
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
