"""The LSTM cell of ``xpnn.ops.recurrent`` as one CuPy kernel, and its gradient as one:
the (batch, 4 units) arrays go in and come out as four column views each (the kernels
take any strides), so nothing is split or joined by a launch of its own
(``formulas.lstm_cell``, ``formulas.lstm_cell_grad``). ``tests/ops/test_recurrent.py``
checks both against the portable path on the stand-in.

>>> import numpy as np
>>> from xpnn.devices.cupy import reference
>>> fuser = reference.ReferenceFuser(np)
>>> h, c, act, tanh_c = lstm_cell(np, fuser, np.zeros((1, 8)), np.ones((1, 2)))
>>> c.tolist(), fuser.launches
([[0.5, 0.5]], ['xpnn_lstm_cell'])
"""

from __future__ import annotations

from ...ops import recurrent
from . import formulas
from .kernels import fast
from .softmax import floating


def _case(first, *others) -> bool:
    """2-D float32/float64 arrays of one dtype, ``first`` 4 units wide, the others
    (batch, units)."""
    if first.ndim != 2 or not floating(first) or first.shape[1] % 4:
        return False
    state = (first.shape[0], first.shape[1] // 4)
    return all(a.dtype == first.dtype and tuple(a.shape) == state for a in others)


def _blocks(array):
    u = array.shape[1] // 4
    return [array[:, k * u:(k + 1) * u] for k in range(4)]


def lstm_cell(xp, fuser, gates, c):
    """(h', c', activated gates, tanh(c')): one kernel."""
    act = xp.empty_like(gates)
    h, c_new, tanh_c = (xp.empty_like(c) for _ in range(3))
    fuser.elementwise(formulas.lstm_cell,
                      (*_blocks(act), h, c_new, tanh_c, *_blocks(gates), c), writes=7)
    return h, c_new, act, tanh_c


def lstm_cell_grad(xp, fuser, act, c, tanh_c, dh, dc):
    """(d gates, d c): one kernel."""
    d_gates, d_c = xp.empty_like(act), xp.empty_like(c)
    fuser.elementwise(formulas.lstm_cell_grad,
                      (*_blocks(d_gates), d_c, *_blocks(act), c, tanh_c, dh, dc), writes=5)
    return d_gates, d_c


@fast(recurrent.LSTMCellElementwise)
def _lstm_cell(op, portable, device, fuser):
    xp = device.xp

    def forward(gates, c):
        return lstm_cell(xp, fuser, gates, c) if _case(gates, c) else portable(gates, c)

    return forward


@fast(recurrent.LSTMCellElementwiseGrad)
def _lstm_cell_grad(op, portable, device, fuser):
    xp = device.xp

    def forward(*values):
        return lstm_cell_grad(xp, fuser, *values) if _case(*values) else portable(*values)

    return forward
