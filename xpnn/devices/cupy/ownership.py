"""Which arrays the CuPy pass may write in place: only the Session's own Variable values.

The updates write Variables (and optimizer slots) in place, so a Variable's array must
share memory with nothing else: a new value that a portable update made as (a view of) one
of its inputs (a fed array, a constant, another Variable) is copied before the Session
keeps it (``own``). An in-place update must not read what another one writes: gradients
that are (views of) Variables are told apart by ``passes.live_slots``.

>>> import numpy as np
>>> from xpnn.devices.cupy import ownership
>>> grad = np.ones(3); fresh = grad * 2
>>> [ownership.own(v, [grad]) is v for v in (grad, fresh, fresh[1:])]
[False, True, False]
"""

from __future__ import annotations


def own(value, inputs):
    """``value`` as the Session keeps it: a copy when it is a view (CuPy and NumPy arrays
    both tell by ``base``) or one of the update's ``inputs``; fresh results as they are."""
    if getattr(value, "base", None) is not None or any(value is a for a in inputs):
        return value.copy()
    return value
