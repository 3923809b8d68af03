"""A stand-in for a GPU where there is none: a device whose Sessions run the CuPy pass, with
NumPy arrays and the reference fuser (``reference.py``) in place of CuPy and compiled
kernels. Like CuPy's, its arrays are moved from the host (so fed data is copied), kept
between runs and written in place, and by default it reads no labels on the host (a bad
label gives NaN, as on a GPU); ``stand_in(reads_labels=True)`` checks them as the CPU does.
It is the test suite's ``--xp cupy_standin`` backend, and ``Session(device="cpu",
backend="cupy_standin")`` (one stand-in per process) opens it too.

>>> import xpnn as xn
>>> from xpnn.devices.cupy_standin import stand_in
>>> device = stand_in()
>>> with xn.Graph().as_default():
...     w = xn.Variable([1.0, 2.0])
...     step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
...     sess = xn.Session(device=device)
...     sess.run(step)
...     sess.run(w).tolist(), device.fuser.launches  # the gradient g*w + g*w: one kernel
([0.0, 0.0], ['xpnn_multiply_multiply_add', 'xpnn_sgd'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from .. import Device
from ..cupy import CupyExecutor, ownership
from ..cupy.reference import ReferenceFuser


@dataclass(frozen=True, eq=False)
class StandInDevice(Device):
    fuser: Any = None  # its ReferenceFuser, which tells the kernels it ran
    backend = "cupy_standin"
    mutable = True
    old_switch = "XPNN_CUPY_PASSES"

    def keep(self, value, inputs):
        if isinstance(value, np.generic):  # NumPy's 0-d results: make them arrays, writable
            return np.asarray(value)
        return ownership.own(value, inputs)

    def compile(self, plan, session):
        return CupyExecutor(plan, session, self.fuser)


@dataclass(frozen=True, eq=False)
class CheckingStandInDevice(StandInDevice):
    reads_without_sync = True


def stand_in(reads_labels=False, fuser=None) -> StandInDevice:
    """A new stand-in device, with ``fuser`` (by default a new ReferenceFuser);
    ``Session(device=stand_in())``."""
    xp = array_api_compat.array_namespace(np.empty(0))
    kind = CheckingStandInDevice if reads_labels else StandInDevice
    return kind("cpu", xp, "cpu", fuser if fuser is not None else ReferenceFuser(xp))


def open_device(device, kind, index) -> StandInDevice:
    """A new stand-in for ``"cpu"`` (``devices.resolve``; resolved once per process)."""
    if kind != "cpu":
        raise ValueError(f"backend 'cupy_standin' (NumPy under the CuPy device's rules) runs "
                         f"on device 'cpu' only, not {device!r}")
    return stand_in()
