"""Ops of several outputs (a control-flow op, a fused recurrent cell): the op's value is a
tuple of arrays, and each output the graph uses is an ``Output`` node picking one.
Autodiff gathers the gradients of the ``Output`` nodes and hands them to the op's
``backward_outputs`` together.

>>> import xpnn as xn
>>> x = xn.Variable(2.0)
>>> a, b = xn.cond(x > 1.0, lambda: [x * 3.0, x], lambda: [x, x])
>>> a.output_index, b.output_index, type(a.inputs[0]).__name__
(0, 1, 'Cond')
"""

from __future__ import annotations

from ..graph import Operation
from .arithmetic import zeros_like


class MultiOutput(Operation):
    """An op whose forward returns a tuple; ``outputs`` are its Output nodes, made by
    ``make_outputs(shapes, dtypes)``. A subclass gives ``backward_outputs(grads)``: grads
    maps an output's index to its gradient node (outputs no gradient reaches are absent);
    it returns one gradient (or None) per input."""

    fresh = False  # an output may be one of its inputs (a loop run zero times)

    def make_outputs(self, shapes, dtypes) -> list:
        self.outputs = [Output(self, k, shape, dtype)
                        for k, (shape, dtype) in enumerate(zip(shapes, dtypes))]
        return self.outputs

    def backward(self, grad):
        raise TypeError(f"{self.label} has several outputs: differentiate its Output nodes")

    def output_gradients(self, grads) -> list:
        """One gradient per output: the given ones, zeros for the others (floating
        outputs), None for integer or bool outputs."""
        return [grads.get(k) if k in grads else (
            zeros_like(out) if _floating(out.dtype) else None)
            for k, out in enumerate(self.outputs)]


class Output(Operation):
    """Output ``index`` of a MultiOutput op."""

    def __init__(self, op, index, shape, dtype):
        self.output_index, self._shape, self._dtype = index, shape, dtype
        super().__init__(op, name=f"{op.label}:{index}" if op.name else None)

    def forward(self, xp, values):
        return values[self.output_index]

    def infer_shape(self, shape):
        return self._shape

    def infer_dtype(self, dtype):
        return self._dtype


def _floating(dtype) -> bool:
    return dtype is None or "float" in dtype
