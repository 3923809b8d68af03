"""``TensorArray``: TF1's per-step output stack for loops, functional. It holds one array of
shape (size, *element_shape); ``write(i, value)`` returns a new TensorArray whose row i is
``value`` (a ``WriteRow`` op: a new array, so every iteration's history stays intact for the
gradient), ``read(i)`` gathers a row, ``stack()`` is the array itself. A TensorArray can be
a ``while_loop`` variable, as in TF1. Each write copies the array: a loop of ``size`` writes
moves size² rows, fine for the sequences a teaching library meets.

>>> import xpnn as xn
>>> squares = xn.TensorArray("float32", size=4, element_shape=())
>>> _, squares = xn.while_loop(
...     lambda i, ta: i < 4,
...     lambda i, ta: [i + 1, ta.write(i, xn.cast(i * i, "float32"))],
...     [xn.constant(0, "int32"), squares])
>>> xn.Session().run(squares.stack()).tolist()
[0.0, 1.0, 4.0, 9.0]
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Node, Operation, as_node, constant, get_default_graph


class WriteRow(Operation):
    """``buffer`` with row ``index`` (a scalar int node) replaced by ``value``: a new array.
    Inputs: buffer, index, value."""

    fresh = True

    def forward(self, xp, buffer, index, value):
        n = buffer.shape[0]
        if value.shape != buffer.shape[1:]:
            raise ValueError(f"{self.label}: writing a value of shape {tuple(value.shape)} into "
                             f"a TensorArray of elements {tuple(buffer.shape[1:])}")
        if ops.run_context.reads_without_sync and not 0 <= int(index) < n:
            raise IndexError(f"{self.label}: index {int(index)} is outside the TensorArray's "
                             f"size {n}")
        hit = _row_mask(xp, buffer, index)
        return xp.where(hit, xp.astype(value, buffer.dtype)[None, ...], buffer)

    def infer_shape(self, buffer, index, value):
        return buffer

    def infer_dtype(self, buffer, index, value):
        return buffer

    def backward(self, grad):
        buffer, index, value = self.inputs
        return [RowCleared(grad, index), None, ops.gather(grad, index)]


class RowCleared(Operation):
    """``grad`` with row ``index`` set to zero (what of a buffer a write kept)."""

    fresh = True

    def forward(self, xp, grad, index):
        return xp.where(_row_mask(xp, grad, index), xp.zeros_like(grad[:1, ...]), grad)

    def infer_shape(self, grad, index):
        return grad

    def infer_dtype(self, grad, index):
        return grad

    def backward(self, grad):
        return [RowCleared(grad, self.inputs[1]), None]


def _row_mask(xp, array, index):
    """(n, 1, 1...) bool: True on row ``index``."""
    rows = xp.arange(array.shape[0], dtype=index.dtype, device=_device(array))
    return xp.reshape(rows == index, (array.shape[0],) + (1,) * (array.ndim - 1))


def _device(array):
    import array_api_compat

    return array_api_compat.device(array)


class TensorArray:
    """TF1's ``tf.TensorArray`` for a fixed ``size`` (a Python int) and ``element_shape``
    (needed: the array is made at once). ``write`` and ``unstack`` return new TensorArrays;
    ``read(i)``, ``gather(indices)``, ``stack()`` and ``size()`` give nodes."""

    def __init__(self, dtype="float32", size=None, element_shape=None, buffer=None):
        if buffer is None:
            if not isinstance(size, int) or size < 0:
                raise ValueError(f"TensorArray: size must be a Python int >= 0, got {size!r} "
                                 "(this TensorArray has a fixed size)")
            if element_shape is None or None in tuple(element_shape):
                raise ValueError("TensorArray: give element_shape, fully known (the array "
                                 "of all elements is made at once)")
            buffer = constant(np.zeros((size, *element_shape), dtype=dtype))
        self.buffer = buffer
        self.dtype = buffer.dtype

    def write(self, index, value, name=None) -> TensorArray:
        graph = get_default_graph()
        return TensorArray(buffer=WriteRow(self.buffer, _index(index, graph),
                                           as_node(value, graph), name=name))

    def read(self, index, name=None) -> Node:
        return ops.gather(self.buffer, _index(index, get_default_graph()), name=name)

    def gather(self, indices, name=None) -> Node:
        return ops.gather(self.buffer, indices, name=name)

    def stack(self, name=None) -> Node:
        return ops.identity(self.buffer, name=name)

    def unstack(self, value, name=None) -> TensorArray:
        value = as_node(value)
        if value.shape is not None and self.buffer.shape is not None and (
                tuple(value.shape) != tuple(self.buffer.shape)):
            raise ValueError(f"TensorArray.unstack: a value of shape {value.shape} into a "
                             f"TensorArray of shape {self.buffer.shape}")
        return TensorArray(buffer=ops.cast(value, self.dtype) if value.dtype != self.dtype
                           else value)

    def size(self) -> Node:
        return constant(np.int32(self.buffer.shape[0]))


def _index(index, graph):
    node = as_node(index, graph) if isinstance(index, Node) else constant(np.int32(index))
    if node.dtype is not None and np.dtype(node.dtype).kind not in "iu":
        raise TypeError(f"TensorArray: an index must be an integer, got {node.dtype}")
    return node


def flatten(values) -> tuple[list, list]:
    """Loop variables with each TensorArray as its array node, and which ones were."""
    arrays = [isinstance(v, TensorArray) for v in values]
    return [v.buffer if a else v for v, a in zip(values, arrays)], arrays


def rebuild(nodes, arrays) -> list:
    """``flatten``'s nodes with the TensorArrays made again."""
    return [TensorArray(buffer=n) if a else n for n, a in zip(nodes, arrays)]
