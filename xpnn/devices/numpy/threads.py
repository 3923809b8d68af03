"""Large elementwise work split over the batch axis and run on every core at once. NumPy's
ufuncs run on one core and release the GIL; BLAS already uses them all, the elementwise
steps of a conv layer (pooling and its gradient, gathering patches, adding them back) did
not. The batch is cut into blocks of a few images, which the threads take in turn (a slow
or late thread takes fewer). Each block computes its own rows, so the result is bit for bit
the one-thread result, and runs in a copy of the caller's context, so NumPy's error state
(``np.errstate``, a context variable) holds in every block.
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
    """``fn(start, stop)`` once for each block of ``rows`` consecutive indices covering
    ``range(n)``. Where there are ``MIN_ELEMENTS`` or more entries, the caller and up to
    ``count() - 1`` pool threads take the blocks in order, each the next one as soon as it
    is done with its last, so a thread the machine slows (or wakes late) takes fewer and
    none waits long for another at the end; else they run one after the other. Which
    thread runs a block changes nothing in its result."""
    starts = range(0, n, rows)
    helpers = min(_workers(), len(starts)) - 1
    if helpers < 1 or elements < MIN_ELEMENTS:
        _blocks(fn, 0, n, rows)
        return
    pending, lock = iter(starts), threading.Lock()

    def take():
        while True:
            with lock:
                a = next(pending, None)
            if a is None:
                return
            fn(a, min(a + rows, n))

    futures = [_pool().submit(contextvars.copy_context().run, take) for _ in range(helpers)]
    try:
        take()
    finally:
        for future in futures:
            future.result()


def _blocks(fn, start, stop, rows):
    for a in range(start, stop, rows):
        fn(a, min(a + rows, stop))
