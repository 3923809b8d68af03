"""The C heap's settings for NumPy's large temporaries (glibc only). A training step makes
and frees arrays of megabytes (a conv layer's activations and patches); with glibc's
defaults each comes from a fresh ``mmap`` or from heap memory trimmed back to the system,
so every step pays a page fault per 4 KiB it writes. Keeping large blocks in the heap (no
mmap below 32 MiB) and 64 MiB of free heap top lets the next step reuse the same pages.
The cost: up to that much freed memory stays with the process. ``XPNN_MALLOC=system``
keeps glibc's defaults.

>>> from xpnn.devices.numpy import allocator
>>> allocator.tune() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its adaptive threshold
TOP_PAD = 64 << 20


@functools.cache
def tune() -> bool:
    """Apply the settings once per process; whether they were applied."""
    if os.environ.get("XPNN_MALLOC", "").lower() == "system":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TOP_PAD, TOP_PAD))
