"""TF1's ``tf.IndexedSlices``: a gradient that names only some rows of a Variable, as the
gradient of ``gather`` / ``embedding_lookup`` with respect to its params is: ``values`` (one
row per index, repeated indices kept apart), ``indices`` and ``dense_shape``.
``tf.gradients`` and ``compute_gradients`` hand them out; ``convert_to_tensor`` makes them
dense (a segment sum); ``clip_by_norm``, ``clip_by_value``, ``global_norm`` and
``clip_by_global_norm`` work on their values; ``apply_gradients`` takes them, and
Momentum, RMSProp and Adagrad then update only the rows named (their slots too), as TF1.
``Session.run`` of one gives an ``IndexedSlicesValue``.

They are a view over xpnn's own gradient, never a second engine: the dense gradient is the
scatter-add of the gather's gradient, and xpnn's optimizers read which rows it names
(``xpnn.optimizers.sparse_rows``).

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> table = tf.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
>>> grad, = tf.gradients(tf.reduce_sum(tf.nn.embedding_lookup(table, [2, 0, 2])), [table])
>>> type(grad).__name__
'IndexedSlices'
>>> sess = tf.Session(); sess.run(grad).indices.tolist()
[2, 0, 2]
>>> sess.run(tf.convert_to_tensor(grad))[:, 0].tolist()  # row 2 looked up twice
[1.0, 0.0, 2.0]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import ops
from ...graph import Node, TensorShape, as_node
from ...ops.indexing import GatherGrad, UnsortedSegmentSum
from ...optimizers import sparse_rows


class IndexedSlicesValue(NamedTuple):
    """What ``Session.run`` gives for an IndexedSlices: NumPy values, indices, dense_shape."""

    values: object
    indices: object
    dense_shape: object


class IndexedSlices:
    """Rows ``values`` of a ``dense_shape`` tensor at ``indices`` (repeated ones add up)."""

    def __init__(self, values, indices, dense_shape=None):
        self.values, self.indices = as_node(values), as_node(indices)
        self._shape = _static_shape(dense_shape, self.values)
        if dense_shape is None or not isinstance(dense_shape, Node):
            dense_shape = None if self._shape is None else as_node(
                np.array(self._shape, dtype=np.int32))
        self.dense_shape = dense_shape
        self._dense = None  # the dense node, where it exists already (a gradient's)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def name(self):
        return self.values.name

    @property
    def graph(self):
        return self.values.graph

    @property
    def shape(self):
        return self._shape

    def get_shape(self):
        return TensorShape(self._shape)

    def __neg__(self):
        return IndexedSlices(ops.negative(self.values), self.indices, self._dense_shape())

    # Arithmetic on it is on the dense tensor, as TF1's conversion makes it.
    def __add__(self, other):
        return to_dense(self) + other

    def __radd__(self, other):
        return other + to_dense(self)

    def __sub__(self, other):
        return to_dense(self) - other

    def __rsub__(self, other):
        return other - to_dense(self)

    def __mul__(self, other):
        return to_dense(self) * other

    def __rmul__(self, other):
        return other * to_dense(self)

    def __truediv__(self, other):
        return to_dense(self) / other

    def _dense_shape(self):
        return self.dense_shape if self._shape is None else self._shape

    def __repr__(self):
        return (f"IndexedSlices(indices={self.indices.label}, values={self.values.label}, "
                f"dense_shape={self._shape})")


def _static_shape(dense_shape, values):
    if dense_shape is None or isinstance(dense_shape, Node):
        return None
    return tuple(int(d) for d in np.asarray(dense_shape).reshape(-1))


def from_gradient(grad):
    """``grad`` as TF1 gives it: an IndexedSlices where it is a gather's gradient (or a sum
    of them), else the node itself (None stays None)."""
    if not isinstance(grad, Node) or sparse_rows(grad) is None:
        return grad
    parts = _parts(grad)
    if grad.shape is None or None in grad.shape:
        return grad
    shape = tuple(grad.shape)
    rest = shape[1:]
    values = [ops.reshape(p.inputs[0], (-1,) + rest) for p in parts]
    indices = [ops.reshape(p.inputs[1], (-1,)) for p in parts]
    if len(parts) > 1:
        if len({i.dtype for i in indices}) > 1:
            indices = [ops.cast(i, "int64") for i in indices]
        values, indices = [ops.concat(values, axis=0)], [ops.concat(indices, axis=0)]
    slices = IndexedSlices(values[0], indices[0], shape)
    slices._dense = grad
    return slices


def _parts(grad):
    """The gathers' gradients that ``grad`` sums (``sparse_rows`` said it is such a sum)."""
    if isinstance(grad, (GatherGrad, UnsortedSegmentSum)):
        return [grad]
    return [p for node in grad.inputs for p in _parts(node)]


def to_dense(value, variable=None):
    """An IndexedSlices as a dense node (TF1's ``convert_to_tensor``): the rows added up
    into zeros of its dense shape (else of the ``variable`` it updates, where given).
    Anything else passes through."""
    if not isinstance(value, IndexedSlices):
        return value
    if value._dense is None:
        shape = value._shape or (None if variable is None else variable.shape)
        if not shape:
            raise ValueError(f"{value!r}: its dense_shape is not known statically; give "
                             "IndexedSlices a dense_shape of Python ints")
        value._dense = ops.unsorted_segment_sum(value.values, value.indices, shape[0])
        value._dense.row_sparse = True  # an optimizer updates only its rows, as TF1's
    return value._dense


def map_values(fn, value):
    """An IndexedSlices of ``fn(values)`` at the same indices; ``fn(value)`` for a tensor."""
    if isinstance(value, IndexedSlices):
        return IndexedSlices(fn(value.values), value.indices, value._dense_shape())
    return fn(value)


__all__ = ["IndexedSlices"]
