"""Large elementwise work split over the batch axis and run on every core at once. NumPy's
ufuncs run on one core and release the GIL; BLAS already uses them all, the elementwise
steps of a conv layer (pooling and its gradient, gathering patches, adding them back) did
not. The batch is cut into blocks of a few images, an equal share of them for each thread;
a thread done with its own takes what a slow or late one has left. Each block computes its
own rows, so the result is bit for bit the one-thread result, and runs in a copy of the
caller's context, so NumPy's error state (``np.errstate``, a context variable) holds in
every block.
``XPNN_THREADS=1`` runs everything inline. The parts often start right after a product:
``blas.py`` has OpenBLAS's threads sleep soon after each one instead of spinning on the
cores these threads want.

>>> import numpy as np
>>> from xpnn.devices.numpy import threads
>>> out = np.zeros(6)
>>> threads.over_batch(lambda a, b: out.__setitem__(slice(a, b), np.arange(a, b)), 6, 1 << 20)
>>> out.tolist()
[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

MIN_ELEMENTS = 1 << 18  # below this, starting the parts costs more than they save
# Entries a call of ``fn`` gets at most (a few images). Smaller blocks stay in cache between
# a kernel's passes over their strided slices, but each block is a dozen NumPy calls, and
# every call takes the GIL, which the other thread may be holding: this size took the
# conv net's step least time (benchmarks/README.md, round five).
BLOCK_ELEMENTS = 1 << 19


@functools.cache
def _workers() -> int:
    wanted = os.environ.get("XPNN_THREADS")
    if wanted:
        return max(1, int(wanted))
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


def count() -> int:
    """How many threads the parallel kernels use (``XPNN_THREADS``, else the cores, at
    most 4)."""
    return _workers()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_workers() - 1, thread_name_prefix="xpnn")


def over_batch(fn, n: int, elements: int) -> None:
    """``fn(start, stop)`` over consecutive ranges covering ``range(n)``, each touching
    about ``BLOCK_ELEMENTS`` of the ``elements`` entries or one row (``over_blocks``)."""
    over_blocks(fn, n, max(1, BLOCK_ELEMENTS * n // max(elements, 1)), elements)


def over_blocks(fn, n: int, rows: int, elements: int) -> None:
    """``fn(start, stop)`` once for each block of at most ``rows`` consecutive indices,
    the blocks covering ``range(n)``. Where there are ``MIN_ELEMENTS`` or more entries, the
    caller and up to ``count() - 1`` pool threads each take an equal share of the blocks,
    in order; one done with its own takes the last block left of the share with the most
    left, so a thread the machine slows (or wakes late) holds up none of the others for
    more than a block. Else the blocks run one after the other. Which thread runs a block
    changes nothing in its result."""
    parts = min(_workers(), n)
    if parts < 2 or elements < MIN_ELEMENTS:
        _blocks(fn, 0, n, rows)
        return
    blocks = min(n, parts * -(-n // (parts * rows)))  # as many in each share
    bounds = [n * i // blocks for i in range(blocks + 1)]
    left = [[blocks * k // parts, blocks * (k + 1) // parts] for k in range(parts)]  # [next, end)
    lock = threading.Lock()

    def take(k):
        own = left[k]
        while True:
            with lock:
                if own[0] < own[1]:
                    i = own[0]
                    own[0] += 1
                else:
                    other = max(left, key=lambda span: span[1] - span[0])
                    if other[0] == other[1]:
                        return
                    other[1] -= 1
                    i = other[1]
            fn(bounds[i], bounds[i + 1])

    futures = [_pool().submit(contextvars.copy_context().run, take, k) for k in range(1, parts)]
    try:
        take(0)
    finally:
        for future in futures:
            future.result()


def _blocks(fn, start, stop, rows):
    for a in range(start, stop, rows):
        fn(a, min(a + rows, stop))
