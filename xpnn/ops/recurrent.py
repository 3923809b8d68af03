"""The elementwise part of a recurrent cell as one op: ``lstm_cell_elementwise(gates, c)``
takes an LSTM's gate pre-activations (..., 4 units) in PyTorch's order i, f, g, o and the
cell state c (..., units), and gives (h', c'):

    c' = sigmoid(f) c + sigmoid(i) tanh(g),    h' = sigmoid(o) tanh(c')

One op where the composition is a dozen, and its gradient one op too; the devices give
both a kernel of their own (one CUDA kernel each on CuPy). The forward keeps what the
gradient reads as internal outputs: the activated gates and tanh(c'), so the gradient
computes no sigmoid or tanh. Gradients of the gradient are not implemented.

>>> import numpy as np
>>> import xpnn as xn
>>> gates, c = xn.Variable(np.zeros((1, 8))), xn.Variable(np.ones((1, 2)))
>>> h, c_new = xn.ops.lstm_cell_elementwise(gates, c)
>>> xn.Session().run(c_new).tolist()  # sigmoid(0) * 1 + sigmoid(0) * tanh(0)
[[0.5, 0.5]]
"""

from __future__ import annotations

from ..dtypes import is_floating
from .outputs import MultiOutput


def _sigmoid(xp, x):
    return xp.exp(x - xp.logaddexp(0.0, x))  # Sigmoid's own formula (ops.activations)


def _blocks(array, n):
    """The n equal blocks of the last axis (views)."""
    u = array.shape[-1] // n
    return [array[..., k * u:(k + 1) * u] for k in range(n)]


def _units(op, gates_shape, c_shape):
    """The static units (None if unknown), the shapes checked against each other."""
    if gates_shape is None or c_shape is None:
        return None
    last = gates_shape[-1] if gates_shape else None
    if not gates_shape or len(gates_shape) != len(c_shape) or (
            last is not None and last % 4) or (
            None not in (last, c_shape[-1]) and last != 4 * c_shape[-1]) or any(
            None not in (a, b) and a != b for a, b in zip(gates_shape[:-1], c_shape[:-1])):
        raise ValueError(f"{op.label}: gates must have shape (..., 4 * units) and c (..., "
                         f"units) with the same leading axes, got gates {gates_shape} and c "
                         f"{c_shape}; gates are the i, f, g, o pre-activations side by side")
    return c_shape[-1] if c_shape[-1] is not None else (None if last is None else last // 4)


class LSTMCellElementwise(MultiOutput):
    """(h', c', activated gates, tanh(c')) from (gates, c); see the module."""

    def __init__(self, gates, c, name=None):
        super().__init__(gates, c, name=name)
        g, c = self.inputs
        known = [d for d in (g.dtype, c.dtype) if d is not None]
        if any(not is_floating(d) for d in known) or len(set(known)) > 1:
            raise TypeError(f"{self.label}: gates and c must share one floating dtype, got "
                            f"{g.dtype} and {c.dtype}; cast one (xn.cast)")
        units = _units(self, g.shape, c.shape)
        state = None if c.shape is None else tuple(c.shape[:-1]) + (units,)
        gates = None if state is None else state[:-1] + (
            None if units is None else 4 * units,)
        self.make_outputs([state, state, gates, state], [known[0] if known else None] * 4)

    def infer_shape(self, *shapes):
        return None

    def forward(self, xp, gates, c):
        if tuple(gates.shape[:-1]) != tuple(c.shape[:-1]) or \
                gates.shape[-1] != 4 * c.shape[-1]:
            _units(self, tuple(gates.shape), tuple(c.shape))  # raises the error
        i, f, g, o = _blocks(gates, 4)
        i, f, g, o = _sigmoid(xp, i), _sigmoid(xp, f), xp.tanh(g), _sigmoid(xp, o)
        c_new = f * c + i * g
        tc = xp.tanh(c_new)
        return o * tc, c_new, xp.concat([i, f, g, o], axis=-1), tc

    def backward_outputs(self, grads):
        if 2 in grads or 3 in grads:
            raise NotImplementedError(f"{self.label}: its outputs 2 and 3 (the activated "
                                      "gates, tanh(c')) are the gradient's, not to be "
                                      "differentiated")
        dh, dc, _, _ = self.output_gradients(grads)
        _, _, act, tc = self.outputs
        d_gates, d_c = LSTMCellElementwiseGrad(act, self.inputs[1], tc, dh, dc).outputs
        return [d_gates, d_c]


class LSTMCellElementwiseGrad(MultiOutput):
    """(d gates, d c) from (activated gates, c, tanh(c'), dh', dc'): the gradient of
    :class:`LSTMCellElementwise`, in one op."""

    def __init__(self, act, c, tc, dh, dc, name=None):
        super().__init__(act, c, tc, dh, dc, name=name)
        self.make_outputs([act.shape, c.shape], [act.dtype, c.dtype])

    def forward(self, xp, act, c, tc, dh, dc):
        i, f, g, o = _blocks(act, 4)
        d_o = dh * tc * (o * (1.0 - o))
        dct = dc + dh * o * (1.0 - tc * tc)  # dc' and what reaches c' through h'
        d_i = dct * g * (i * (1.0 - i))
        d_f = dct * c * (f * (1.0 - f))
        d_g = dct * i * (1.0 - g * g)
        return xp.concat([d_i, d_f, d_g, d_o], axis=-1), dct * f

    def backward_outputs(self, grads):
        raise NotImplementedError(f"{self.label}: the LSTM cell's gradient has no gradient "
                                  "of its own (second derivatives of lstm_cell_elementwise "
                                  "are not implemented)")


def lstm_cell_elementwise(gates, c, name=None):
    """(h', c') of an LSTM cell from its gate pre-activations ``gates`` (..., 4 units), in
    PyTorch's order i, f, g, o, and the cell state ``c`` (..., units): see the module."""
    op = LSTMCellElementwise(gates, c, name=name)
    return op.outputs[0], op.outputs[1]


__all__ = ["LSTMCellElementwise", "LSTMCellElementwiseGrad", "lstm_cell_elementwise"]
