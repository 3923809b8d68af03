"""Arrays of any supported library brought to the host as NumPy arrays. No device here:
the graph uses this for initial values given as another library's array.
"""

from __future__ import annotations

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
