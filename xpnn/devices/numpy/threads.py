"""Large elementwise work split over the batch axis and run on every core at once, and the
threads BLAS runs its parallel work on. NumPy's ufuncs run on one core and release the GIL;
the elementwise steps of a conv layer (pooling and its gradient, gathering patches, adding
them back) did not use the other cores. Each part computes its own rows, so the result is
bit for bit the one-thread result. ``XPNN_THREADS=1`` runs everything inline.

One set of helper threads serves both: ``over_batch``'s parts and the parallel jobs of
NumPy's OpenBLAS (``blas.py`` hands them here). OpenBLAS's own threads spin for a while after
each product, holding a core that the next elementwise step wanted; helpers here sleep
until given work. A helper runs one call at a time; a call that finds none idle (nested
calls, several user threads) starts another, so calls that must run at the same time (BLAS
jobs wait for one another) always do.

>>> import numpy as np
>>> from xpnn.devices.numpy import threads
>>> out = np.zeros(6)
>>> threads.over_batch(lambda a, b: out.__setitem__(slice(a, b), np.arange(a, b)), 6, 1 << 20)
>>> out.tolist()
[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
"""

from __future__ import annotations

import _thread
import functools
import os
import queue
import threading

MIN_ELEMENTS = 1 << 18  # below this, starting the parts costs more than they save
# Entries a call of ``fn`` gets at most (a few images): the kernels pass over strided
# slices of their rows several times, and a block this size is still in L2 for the next.
BLOCK_ELEMENTS = 1 << 17


@functools.cache
def _workers() -> int:
    wanted = os.environ.get("XPNN_THREADS")
    if wanted:
        return max(1, int(wanted))
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


class _Helper:
    """A daemon thread that runs the calls put in its queue, one at a time."""

    def __init__(self):
        self.work = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="xpnn", daemon=True).start()

    def _serve(self):
        while True:
            fn, done, outcome = self.work.get()
            try:
                fn()
                outcome.append(None)
            except BaseException as error:  # re-raised by the caller's thread
                outcome.append(error)
            finally:
                _idle.append(self)
                done.release()


_idle: list[_Helper] = []  # list.append/pop are atomic: no lock needed


def _reset_after_fork():
    _idle.clear()  # the child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def run_together(calls, interruptible: bool = True) -> None:
    """Run ``calls[0]()`` on this thread and each other call on a helper of its own, all at
    the same time; return when all have returned, raising the first error. With
    ``interruptible=False`` a signal (Ctrl-C) does not end the wait: it is raised again once
    every call is done (BLAS jobs hold pointers into their caller's stack)."""
    started = []
    for fn in calls[1:]:
        done = _thread.allocate_lock()
        done.acquire()
        outcome: list = []  # the call's error or None, appended before done is released
        try:
            helper = _idle.pop()
        except IndexError:
            helper = _Helper()
        helper.work.put((fn, done, outcome))
        started.append((done, outcome))
    errors = []
    try:
        calls[0]()
    except BaseException as error:
        errors.append(error)
    for done, outcome in started:
        _wait(done, outcome, interruptible)
        errors += [error for error in outcome if error is not None]
    if errors:
        raise errors[0]


def _wait(done, outcome, interruptible):
    """Until the helper has filled ``outcome``. A signal's exception can come just after
    ``acquire`` succeeded: ``outcome``, not the lock, says whether the call is over."""
    interrupted = False
    while not outcome:
        try:
            done.acquire()
        except BaseException:
            if interruptible:
                raise
            interrupted = True
    if interrupted:
        _thread.interrupt_main()


def over_batch(fn, n: int, elements: int) -> None:
    """``fn(start, stop)`` over consecutive ranges covering ``range(n)``, each touching
    about ``BLOCK_ELEMENTS`` of the ``elements`` entries or one row: the ranges in parallel
    when there are ``MIN_ELEMENTS`` or more, else one after the other."""
    rows = max(1, BLOCK_ELEMENTS * n // max(elements, 1))
    parts = min(_workers(), n)
    if parts < 2 or elements < MIN_ELEMENTS:
        _blocks(fn, 0, n, rows)
        return
    bounds = [n * i // parts for i in range(parts + 1)]
    run_together([functools.partial(_blocks, fn, a, b, rows)
                  for a, b in zip(bounds, bounds[1:])])


def _blocks(fn, start, stop, rows):
    for a in range(start, stop, rows):
        fn(a, min(a + rows, stop))
