"""NumPy kernels for the LSTM cell of ``xpnn.ops.recurrent``: each ufunc writes into
preallocated buffers (``out=``) in the gates' layout: the activated gates into one buffer,
the gradient's four blocks into one, two scratch arrays besides the results. The
gradient's arithmetic is the portable one in its order. The sigmoid is 1 / (1 + exp(-x)),
not the portable exp(x - logaddexp(0, x)): within a few ulp of it (NumPy's logaddexp is
no vector code, and it dominated the cell). ``tests/ops/test_recurrent.py`` checks both
kernels against the portable path.

>>> import numpy as np
>>> h, c, act, tanh_c = lstm_cell(np.zeros((1, 8)), np.ones((1, 2)))
>>> c.tolist(), act[0, :2].tolist()
([[0.5, 0.5]], [0.5, 0.5])
"""

from __future__ import annotations

import numpy as np

from ...ops import recurrent
from .kernels import fast


def _case(first, *others) -> bool:
    """2-D float32/float64 ndarrays of one dtype, ``first`` 4 units wide, the others
    (batch, units)."""
    if type(first) is not np.ndarray or first.ndim != 2 or first.dtype not in (
            np.float32, np.float64) or first.shape[1] % 4:
        return False
    state = (first.shape[0], first.shape[1] // 4)
    return all(type(a) is np.ndarray and a.dtype == first.dtype and a.shape == state
               for a in others)


def _blocks(array):
    u = array.shape[1] // 4
    return [array[:, k * u:(k + 1) * u] for k in range(4)]


def _sigmoid_into(x, out):
    with np.errstate(over="ignore"):  # exp(-x) is inf far below 0: 1 / (1 + inf) is 0
        np.negative(x, out=out)
        np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.divide(1.0, out, out=out)


def lstm_cell(gates, c):
    """(h', c', activated gates, tanh(c')) of ``ops.recurrent.LSTMCellElementwise``."""
    u = c.shape[1]
    act = np.empty_like(gates)
    _sigmoid_into(gates[:, :2 * u], act[:, :2 * u])  # i and f, side by side
    _sigmoid_into(gates[:, 3 * u:], act[:, 3 * u:])
    np.tanh(gates[:, 2 * u:3 * u], out=act[:, 2 * u:3 * u])
    i, f, g, o = _blocks(act)
    c_new = np.multiply(f, c, out=np.empty_like(f))  # in the gates' layout, as the others
    tc = np.multiply(i, g, out=np.empty_like(f))
    np.add(c_new, tc, out=c_new)
    np.tanh(c_new, out=tc)
    return np.multiply(o, tc, out=np.empty_like(f)), c_new, act, tc


def _gate_grad(dct, a, gate, out, scratch):
    """out = dct * a * (gate * (1 - gate))."""
    np.subtract(1.0, gate, out=out)
    np.multiply(gate, out, out=out)
    np.multiply(dct, a, out=scratch)
    np.multiply(scratch, out, out=out)


def lstm_cell_grad(act, c, tc, dh, dc):
    """(d gates, d c) of ``ops.recurrent.LSTMCellElementwiseGrad``."""
    i, f, g, o = _blocks(act)
    d_gates = np.empty_like(act)
    d_i, d_f, d_g, d_o = _blocks(d_gates)
    t = np.multiply(dh, tc, out=np.empty_like(i))  # in the gates' layout, as d_gates
    np.subtract(1.0, o, out=d_o)
    np.multiply(o, d_o, out=d_o)
    np.multiply(t, d_o, out=d_o)
    s = np.multiply(tc, tc, out=np.empty_like(i))
    np.subtract(1.0, s, out=s)
    np.multiply(dh, o, out=t)
    np.multiply(t, s, out=t)
    dct = np.add(dc, t, out=t)
    _gate_grad(dct, g, i, d_i, s)
    _gate_grad(dct, c, f, d_f, s)
    np.multiply(g, g, out=d_g)
    np.subtract(1.0, d_g, out=d_g)
    np.multiply(dct, i, out=s)
    np.multiply(s, d_g, out=d_g)
    return d_gates, np.multiply(dct, f, out=s)


@fast(recurrent.LSTMCellElementwise, fresh=False)
def _lstm_cell(op, portable):
    return lambda gates, c: lstm_cell(gates, c) if _case(gates, c) else portable(gates, c)


@fast(recurrent.LSTMCellElementwiseGrad, fresh=False)
def _lstm_cell_grad(op, portable):
    def forward(*values):
        return lstm_cell_grad(*values) if _case(*values) else portable(*values)

    return forward
