"""array-api-strict: the stand-in for a GPU in the tests (``device="device1"``). Its
Sessions run the portable plan: no passes.

>>> import xpnn as xn
>>> xn.devices.resolve("device1").backend
'array_api_strict'
"""

from __future__ import annotations

import numpy as np

from .. import Device, library


class StrictDevice(Device):
    """array-api-strict on one of its devices."""

    backend = "array_api_strict"
    reads_without_sync = True
    mutable = True


def open_device(device, kind, index) -> StrictDevice:
    """The array-api-strict device for ``"cpu"``, ``"device1"`` or ``"device2"``."""
    strict = library("array_api_strict", device, "array-api-strict",
                     "pip install 'array-api-strict>=2.6.1'")
    strict.set_array_api_strict_flags(api_version="2024.12")
    try:
        native = strict.Device("CPU_DEVICE" if kind == "cpu" else device)
    except ValueError as exc:
        raise ValueError(
            f"array_api_strict has no device {device!r}: use 'cpu', 'device1' or 'device2'"
        ) from exc
    return StrictDevice(device, strict, native)


def to_numpy(array) -> np.ndarray:
    """An array-api-strict array, on any of its devices, on the host (``xpnn.to_numpy``)."""
    import array_api_strict

    cpu = array_api_strict.Device("CPU_DEVICE")
    return np.asarray(array_api_strict.asarray(array, device=cpu, copy=True)._array)
