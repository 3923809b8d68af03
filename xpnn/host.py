"""Arrays of any supported library brought to the host as NumPy arrays, each by its
backend's folder (``devices/<library>/to_numpy``), imported by name: nothing here names a
backend. The graph uses this for initial values given as another library's array.
"""

from __future__ import annotations

import importlib

import array_api_compat
import numpy as np


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
    folder = backend_folder(array)
    convert = getattr(folder, "to_numpy", None)
    return np.asarray(array) if convert is None else convert(array)


def backend_folder(array):
    """The package of ``array``'s backend (``xpnn.devices.<library>``), imported by name, or
    None where xpnn has none for it (or ``array`` is no array)."""
    try:
        library = array_api_compat.array_namespace(array).__name__
    except TypeError:  # not an array of a library array-api-compat knows
        return None
    return optional_module(
        "xpnn.devices." + library.removeprefix("array_api_compat.").partition(".")[0])


def optional_module(name: str):
    """The module ``name``, or None where there is none (an import failing inside it
    still raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
