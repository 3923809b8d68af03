"""PyTorch kernels for the LSTM cell of ``xpnn.ops.recurrent``: torch's own sigmoid and
tanh written (``out=``) into one buffer of activated gates, the rest in place on a few new
tensors, the gradient's four blocks written into one; no autograd. The gradient's
arithmetic is the portable one in its order; torch.sigmoid is within a few ulp of the
portable exp(x - logaddexp(0, x)). ``tests/ops/test_recurrent.py`` checks both kernels
against the portable path.

>>> import torch
>>> h, c, act, tanh_c = lstm_cell(torch.zeros(1, 8), torch.ones(1, 2))
>>> c.tolist(), act[0, :2].tolist()
([[0.5, 0.5]], [0.5, 0.5])
"""

from __future__ import annotations

import torch

from ...ops import recurrent
from .kernels import fast


def _case(first, *others) -> bool:
    """2-D float32/float64 tensors of one dtype and device, ``first`` 4 units wide, the
    others (batch, units)."""
    if first.ndim != 2 or first.dtype not in (torch.float32, torch.float64) or \
            first.shape[1] % 4:
        return False
    state = (first.shape[0], first.shape[1] // 4)
    return all(a.dtype == first.dtype and a.device == first.device and tuple(a.shape) == state
               for a in others)


def _blocks(tensor):
    u = tensor.shape[1] // 4
    return [tensor[:, k * u:(k + 1) * u] for k in range(4)]


def lstm_cell(gates, c):
    """(h', c', activated gates, tanh(c')) of ``ops.recurrent.LSTMCellElementwise``."""
    u = c.shape[1]
    act = torch.empty_like(gates)
    torch.sigmoid(gates[:, :2 * u], out=act[:, :2 * u])  # i and f, side by side
    torch.tanh(gates[:, 2 * u:3 * u], out=act[:, 2 * u:3 * u])
    torch.sigmoid(gates[:, 3 * u:], out=act[:, 3 * u:])
    i, f, g, o = _blocks(act)
    c_new = torch.mul(f, c)
    tc = torch.mul(i, g)
    c_new.add_(tc)
    torch.tanh(c_new, out=tc)
    return torch.mul(o, tc), c_new, act, tc


def _one_minus(x, out):
    """out = 1 - x (as -x + 1: the same rounding)."""
    return torch.neg(x, out=out).add_(1.0)


def _gate_grad(dct, a, gate, out, scratch):
    """out = dct * a * (gate * (1 - gate))."""
    _one_minus(gate, out).mul_(gate)
    out.mul_(torch.mul(dct, a, out=scratch))


def lstm_cell_grad(act, c, tc, dh, dc):
    """(d gates, d c) of ``ops.recurrent.LSTMCellElementwiseGrad``."""
    i, f, g, o = _blocks(act)
    d_gates = torch.empty_like(act)
    d_i, d_f, d_g, d_o = _blocks(d_gates)
    t = torch.mul(dh, tc)
    _one_minus(o, d_o).mul_(o).mul_(t)
    s = torch.mul(tc, tc)
    _one_minus(s, s)
    dct = torch.mul(dh, o, out=t).mul_(s).add_(dc)
    _gate_grad(dct, g, i, d_i, s)
    _gate_grad(dct, c, f, d_f, s)
    _one_minus(torch.mul(g, g, out=d_g), d_g).mul_(torch.mul(dct, i, out=s))
    return d_gates, torch.mul(dct, f, out=s)


@fast(recurrent.LSTMCellElementwise)
def _lstm_cell(op, portable, device):
    return lambda gates, c: lstm_cell(gates, c) if _case(gates, c) else portable(gates, c)


@fast(recurrent.LSTMCellElementwiseGrad)
def _lstm_cell_grad(op, portable, device):
    def forward(*values):
        return lstm_cell_grad(*values) if _case(*values) else portable(*values)

    return forward
