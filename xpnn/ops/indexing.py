"""Ops that pick entries by index, and the scatter-adds that are their gradients:
``gather`` (``embedding_lookup``), ``gather_nd``, ``scatter_nd``, ``unsorted_segment_sum``
and ``top_k`` (TF1's semantics). Every scatter here is one segment sum of rows,
``segment_sum``: portable (sort the ids, cumulative sums of the sorted rows, differences at
the segment boundaries found by ``searchsorted``), O(rows) memory, no one-hot matrix; a
device swaps in its own
(``ScatterAdd.forward_with``: NumPy's ``bincount``/``add.reduceat``, torch's
``index_add_``, JAX's ``.at[].add``).

Indices are checked where reading them costs no device synchronisation
(``run_context.reads_without_sync``): one outside its range raises, naming the op. Where
they cannot be read (a JAX trace, a GPU), TF1's GPU rules hold: a gather gives zeros for
them, a scatter drops them.

>>> import xpnn as xn
>>> table = xn.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
>>> rows = xn.embedding_lookup(table, [2, 0, 2])
>>> xn.Session().run(xn.gradients(xn.reduce_sum(rows), [table])[0]).tolist()
[[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
"""

from __future__ import annotations

import math

import array_api_compat

from ..dtypes import dtype_name
from ..graph import Node, Operation, as_node
from .arithmetic import maximum, minimum, multiply, sqrt, square
from .core import Unary, _index_dtype, run_context
from .reductions import reduce_sum
from .shape import _as_indices, _axis


def segment_sum(xp, rows, ids, n):
    """``rows`` (k, m) added into n rows by ``ids`` (k,): ``out[j]`` is the sum of the
    ``rows[i]`` whose ``ids[i] == j``; ids outside [0, n) are dropped. The portable way, in
    the array API 2023.12: a row's share is a difference of cumulative sums, so its rounding
    is that of the running sum, and a non-finite row makes the later segments NaN (the
    device kernels add each segment on its own)."""
    order = xp.argsort(ids, stable=True)
    ids = xp.take(ids, order)
    rows = xp.take(rows, order, axis=0)
    # Dropped rows sort first (negative ids) or last: zeroed, they add nothing, not even
    # rounding (or a NaN) to the segments' differences.
    rows = xp.where(((ids >= 0) & (ids < n))[:, None], rows, xp.zeros_like(rows))
    sums = xp.cumulative_sum(rows, axis=0, dtype=rows.dtype, include_initial=True)
    segments = xp.arange(n, dtype=ids.dtype, device=array_api_compat.device(ids))
    start = xp.searchsorted(ids, segments, side="left")
    end = xp.searchsorted(ids, segments, side="right")
    return xp.take(sums, end, axis=0) - xp.take(sums, start, axis=0)


def _integer_input(op, dtype, what):
    if dtype is not None and dtype_name(dtype) not in _INTEGERS:
        raise TypeError(f"{op.label}: {what} must be integers, got {dtype_name(dtype)}; "
                        "cast them with xn.cast(ids, 'int64')")


_INTEGERS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


def _numeric_input(op, dtype, what):
    if dtype == "bool":
        raise TypeError(f"{op.label}: {what} are bool; cast them to a number type to add them")


def check_range(op, xp, ids, size, what, negatives=False):
    """Raise where an entry of ``ids`` lies outside [0, size) (below ``size`` only, where
    ``negatives`` are allowed), read only where that costs no synchronisation; ``what``
    names the ids in the message."""
    if not run_context.reads_without_sync or math.prod(ids.shape) == 0:
        return
    smallest, largest = int(xp.min(ids)), int(xp.max(ids))
    if largest >= size:
        below = f"below {size}" if negatives else f"in [0, {size})"
        raise ValueError(f"{op.label}: {what} must lie {below}, got {largest}")
    if smallest < 0 and not negatives:
        raise ValueError(f"{op.label}: {what} must lie in [0, {size}), got {smallest}")


class Gather(Operation):
    """params[..., indices, ...] along ``axis``: indices of any shape (TF1's gather).
    ``dropping``: an index outside the axis gives zeros, never an error (the gradient of
    ``unsorted_segment_sum``, whose negative ids are dropped)."""

    fresh = True
    reads_values = True

    def __init__(self, params, indices, axis=0, name=None, dropping=False):
        self.axis, self.dropping = int(axis), dropping
        super().__init__(params, indices, name=name)

    def forward(self, xp, params, indices):
        axis = _axis(self.axis, params.ndim)
        n = params.shape[axis]
        flat = xp.reshape(indices, (-1,))
        check_range(self, xp, flat, n, _what(axis, params.shape, self.dropping), self.dropping)
        taken = _take_valid(self, xp, params, flat, n, axis)
        return xp.reshape(taken, tuple(params.shape[:axis]) + tuple(indices.shape)
                          + tuple(params.shape[axis + 1 :]))

    def infer_shape(self, params, indices):
        if params is None or indices is None:
            return None
        if len(params) == 0:
            raise ValueError(f"{self.label}: gather from a scalar; params need an axis")
        axis = _axis(self.axis, len(params))
        return tuple(params[:axis]) + tuple(indices) + tuple(params[axis + 1 :])

    def infer_dtype(self, params, indices):
        _integer_input(self, indices, "gather's indices")
        return params

    def backward(self, grad):
        params, indices = self.inputs
        return [GatherGrad(grad, indices, params, self.axis, self.dropping), None]


def _what(axis, shape, dropping):
    """What gather's indices are, for its errors."""
    if dropping:
        return "segment_ids (negative ones are dropped)"
    return f"indices into axis {axis} of params {tuple(shape)}"


def _take_valid(op, xp, params, flat, n, axis):
    """take(params, flat, axis), zeros where an index is outside [0, n) and either the op
    drops them or they could not be checked."""
    if not op.dropping and run_context.reads_without_sync:
        return xp.take(params, flat, axis=axis)
    valid = (flat >= 0) & (flat < n)
    taken = xp.take(params, xp.where(valid, flat, 0), axis=axis)
    shape = [1] * params.ndim
    shape[axis] = flat.shape[0]
    return xp.where(xp.reshape(valid, tuple(shape)), taken, xp.zeros_like(taken))


class ScatterAdd(Operation):
    """An op whose work is one segment sum of rows: ``forward_with(xp, add_rows, *values)``
    with ``add_rows(xp, rows, ids, n)`` as ``segment_sum``; the portable forward passes
    ``segment_sum``, a device kernel its own."""

    fresh = True

    def forward(self, xp, *values):
        return self.forward_with(xp, segment_sum, *values)

    def forward_with(self, xp, add_rows, *values):
        raise NotImplementedError


class GatherGrad(ScatterAdd):
    """The gradient of gather: each slice of ``grad`` added into params' slice it came from,
    repeated indices adding up (a segment sum, no one-hot matrix)."""

    shape_only = (2,)
    reads_values = True  # a training step may run it without the gather (for its shape)

    def __init__(self, grad, indices, params, axis, dropping=False):
        self.axis, self.dropping = axis, dropping
        super().__init__(grad, indices, params)

    def forward_with(self, xp, add_rows, grad, indices, params):
        axis = _axis(self.axis, params.ndim)
        n = params.shape[axis]
        before, after = math.prod(params.shape[:axis]), math.prod(params.shape[axis + 1 :])
        ids = xp.reshape(indices, (-1,))
        check_range(self, xp, ids, n, _what(axis, params.shape, self.dropping), self.dropping)
        k = ids.shape[0]
        g = xp.reshape(grad, (before, k, after))
        if before > 1:
            g = xp.permute_dims(g, (1, 0, 2))
        out = xp.reshape(add_rows(xp, xp.reshape(g, (k, before * after)), ids, n),
                         (n, before, after))
        if before > 1:
            out = xp.permute_dims(out, (1, 0, 2))
        return xp.reshape(out, tuple(params.shape))

    def infer_shape(self, grad, indices, params):
        return params

    def infer_dtype(self, grad, indices, params):
        return grad

    def backward(self, grad):
        return [Gather(grad, self.inputs[1], self.axis, dropping=self.dropping), None, None]


class RowsPresent(Operation):
    """Which rows of ``params`` (along axis 0) some entry of the ``indices`` names: a bool
    vector of params' first dimension, the rows a row-sparse gradient (a gather's) touches,
    for an optimizer's sparse update. Indices outside the rows name none."""

    fresh = True
    shape_only = (0,)

    def __init__(self, params, *indices):
        super().__init__(params, *indices)

    def forward(self, xp, params, *indices):
        n = params.shape[0]
        ids = xp.concat([xp.reshape(i, (-1,)) for i in indices])
        ids = xp.sort(xp.astype(ids, _index_dtype(xp)))
        rows = xp.arange(n, dtype=ids.dtype, device=array_api_compat.device(ids))
        # A row is named when its run in the sorted ids is not empty.
        return (xp.searchsorted(ids, rows, side="right")
                > xp.searchsorted(ids, rows, side="left"))

    def infer_shape(self, params, *indices):
        return None if params is None else (params[0],)

    def infer_dtype(self, params, *indices):
        for dtype in indices:
            _integer_input(self, dtype, "the indices")
        return "bool"

    def backward(self, grad):
        return [None] * len(self.inputs)


def rows_present(params, *indices):
    """A bool vector: whether each row of ``params`` is named in one of ``indices``.

    >>> import xpnn as xn
    >>> table = xn.Variable([[1.0], [2.0], [3.0], [4.0]])
    >>> xn.Session().run(xn.ops.rows_present(table, [2, 0, 2])).tolist()
    [True, False, True, False]
    """
    return RowsPresent(params, *(_indices(i) for i in indices))


class UnsortedSegmentSum(ScatterAdd):
    """TF1's ``unsorted_segment_sum``: ``out[j] = sum(data[i...] where ids[i...] == j)``,
    data shaped ``ids.shape + rest``, the result ``(num_segments,) + rest``; negative ids
    are dropped."""

    reads_values = True

    def __init__(self, data, segment_ids, num_segments, name=None):
        self.num_segments = _static_int(num_segments, "unsorted_segment_sum", "num_segments")
        super().__init__(data, segment_ids, name=name)

    def forward_with(self, xp, add_rows, data, ids):
        self.infer_shape(tuple(data.shape), tuple(ids.shape))
        n = self.num_segments
        flat = xp.reshape(ids, (-1,))
        check_range(self, xp, flat, n, "segment_ids (negative ones are dropped)",
                    negatives=True)
        rest = tuple(data.shape[ids.ndim :])
        rows = xp.reshape(data, (flat.shape[0], math.prod(rest)))
        return xp.reshape(add_rows(xp, rows, flat, n), (n,) + rest)

    def infer_shape(self, data, ids):
        if data is None or ids is None:
            return None
        lead = tuple(data[: len(ids)])
        if len(data) < len(ids) or any(a is not None and b is not None and a != b
                                       for a, b in zip(lead, ids)):
            raise ValueError(f"{self.label}: data of shape {data} must start with the shape "
                             f"of segment_ids, {ids}")
        return (self.num_segments,) + tuple(data[len(ids) :])

    def infer_dtype(self, data, ids):
        _integer_input(self, ids, "segment_ids")
        _numeric_input(self, data, "the data")
        return data

    def backward(self, grad):
        return [Gather(grad, self.inputs[1], 0, dropping=True), None]


def _static_int(value, op, what):
    if isinstance(value, Node) or not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{op}: {what} must be a Python int (a static size), got "
                        f"{type(value).__name__}")
    if value < 0:
        raise ValueError(f"{op}: {what} must be >= 0, got {value}")
    return value


def _linear(op, xp, indices, dims):
    """The flat row of each index tuple (the last axis of ``indices``) in an array whose
    leading dimensions are ``dims``; -1 where a coordinate is outside its dimension."""
    depth = indices.shape[-1]
    flat = xp.reshape(indices, (-1, depth))
    index = None
    valid = None
    for j, size in enumerate(dims):
        coordinate = flat[:, j]
        check_range(op, xp, coordinate, size, f"coordinate {j} of the indices (dimension "
                    f"{j} of shape {tuple(dims)})")
        inside = (coordinate >= 0) & (coordinate < size)
        valid = inside if valid is None else valid & inside
        term = coordinate * math.prod(dims[j + 1 :])
        index = term if index is None else index + term
    if index is None:  # indices of depth 0 pick the whole array, once per entry
        return xp.zeros((flat.shape[0],), dtype=flat.dtype, device=array_api_compat.device(flat))
    return xp.where(valid, index, -1)


def _depth(op, indices_shape, rank):
    """The index depth (indices' last dimension), checked against the indexed rank."""
    if indices_shape is None or not indices_shape or indices_shape[-1] is None:
        return None
    depth = indices_shape[-1]
    if rank is not None and depth > rank:
        raise ValueError(f"{op.label}: index tuples of length {depth} into an array of rank "
                         f"{rank}; the indices' last dimension is at most the rank")
    return depth


class GatherNd(Operation):
    """TF1's ``gather_nd``: ``out[i...] = params[indices[i..., 0], ..., indices[i..., d-1]]``,
    shaped ``indices.shape[:-1] + params.shape[d:]``."""

    fresh = True
    reads_values = True

    def forward(self, xp, params, indices):
        depth = indices.shape[-1]
        self.infer_shape(tuple(params.shape), tuple(indices.shape))
        dims, rest = tuple(params.shape[:depth]), tuple(params.shape[depth:])
        rows = xp.reshape(params, (math.prod(dims), math.prod(rest)))
        flat = _linear(self, xp, indices, dims)
        valid = flat >= 0
        taken = xp.take(rows, xp.where(valid, flat, 0), axis=0)
        taken = xp.where(valid[:, None], taken, xp.zeros_like(taken))
        return xp.reshape(taken, tuple(indices.shape[:-1]) + rest)

    def infer_shape(self, params, indices):
        if params is None or indices is None:
            return None
        depth = _depth(self, indices, len(params))
        if depth is None:
            return None
        return tuple(indices[:-1]) + tuple(params[depth:])

    def infer_dtype(self, params, indices):
        _integer_input(self, indices, "gather_nd's indices")
        return params

    def backward(self, grad):
        params, indices = self.inputs
        return [GatherNdGrad(indices, grad, params), None]


class ScatterNd(ScatterAdd):
    """TF1's ``scatter_nd``: zeros of ``shape`` with each of ``updates`` added at its index
    tuple (the last axis of ``indices``); duplicates add up."""

    reads_values = True

    def __init__(self, indices, updates, shape, name=None):
        self.out_shape = tuple(_static_int(d, "scatter_nd", "shape entries") for d in shape)
        super().__init__(indices, updates, name=name)

    def forward_with(self, xp, add_rows, indices, updates, *like):
        shape = tuple(like[0].shape) if like else self.out_shape
        self._check(tuple(indices.shape), tuple(updates.shape), shape)
        depth = indices.shape[-1]
        dims, rest = shape[:depth], shape[depth:]
        flat = _linear(self, xp, indices, dims)
        rows = xp.reshape(updates, (flat.shape[0], math.prod(rest)))
        return xp.reshape(add_rows(xp, rows, flat, math.prod(dims)), shape)

    def _check(self, indices, updates, shape):
        depth = _depth(self, indices, len(shape) if shape is not None else None)
        if depth is None or updates is None or shape is None:
            return
        expected = tuple(indices[:-1]) + tuple(shape[depth:])
        if len(updates) != len(expected) or any(
                a is not None and b is not None and a != b for a, b in zip(updates, expected)):
            raise ValueError(f"{self.label}: updates of shape {updates} for indices of shape "
                             f"{indices} into shape {shape}: updates must have shape "
                             f"indices.shape[:-1] + shape[{depth}:] = {expected}")

    def infer_shape(self, indices, updates):
        self._check(indices, updates, self.out_shape)
        return self.out_shape

    def infer_dtype(self, indices, updates):
        _integer_input(self, indices, "scatter_nd's indices")
        _numeric_input(self, updates, "the updates")
        return updates

    def backward(self, grad):
        return [None, GatherNd(grad, self.inputs[0])]


class GatherNdGrad(ScatterNd):
    """The gradient of gather_nd: scatter_nd into the shape of params (read for its shape)."""

    shape_only = (2,)

    def __init__(self, indices, updates, params):
        self.out_shape = None
        Operation.__init__(self, indices, updates, params)

    def infer_shape(self, indices, updates, params):
        self._check(indices, updates, params)
        return params

    def infer_dtype(self, indices, updates, params):
        return updates

    def backward(self, grad):
        return [None, GatherNd(grad, self.inputs[0]), None]


class TopKIndices(Unary):
    """The indices (int32) of the ``k`` largest entries along the last axis, largest first,
    ties to the lower index (a stable sort): the work of ``top_k``, whose values are
    ``TopKValues`` of these."""

    fresh = True

    def __init__(self, x, k=1, name=None):
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise TypeError(f"top_k: k must be a Python int >= 0, got {k!r}")
        self.k = k
        super().__init__(x, name=name)

    def forward(self, xp, x):
        self.infer_shape(tuple(x.shape))
        order = xp.argsort(x, axis=-1, descending=True, stable=True)
        return xp.astype(order[..., : self.k], xp.int32)

    def infer_shape(self, shape):
        if shape is None:
            return None
        if not shape or (shape[-1] is not None and shape[-1] < self.k):
            raise ValueError(f"{self.label}: top_k of k={self.k} along the last axis of shape "
                             f"{tuple(shape)}; the input needs at least k entries there")
        return tuple(shape[:-1]) + (self.k,)

    def infer_dtype(self, dtype):
        if dtype == "bool":
            raise TypeError(f"{self.label}: top_k of bool values; cast them to a number type")
        return "int32"

    def backward(self, grad):
        return [None]


class TopKValues(Operation):
    """x's entries at ``indices`` along the last axis (``take_along_axis``); the gradient
    goes back to those entries (``TopKValuesGrad``)."""

    fresh = True

    def forward(self, xp, x, indices):
        return xp.take_along_axis(x, xp.astype(indices, _index_dtype(xp)), axis=-1)

    def infer_shape(self, x, indices):
        return indices

    def infer_dtype(self, x, indices):
        return x

    def backward(self, grad):
        x, indices = self.inputs
        return [TopKValuesGrad(grad, indices, x), None]


class TopKValuesGrad(ScatterAdd):
    """grad (..., k) put at ``indices`` of zeros shaped like x (..., n), as one segment sum
    over the flattened rows."""

    shape_only = (2,)

    def forward_with(self, xp, add_rows, grad, indices, x):
        n, k = x.shape[-1], indices.shape[-1]
        count = math.prod(x.shape[:-1])
        dtype = _index_dtype(xp)
        start = xp.arange(count, dtype=dtype, device=array_api_compat.device(indices)) * n
        ids = xp.reshape(xp.astype(indices, dtype) + xp.reshape(start, (-1, 1)), (-1,))
        rows = xp.reshape(grad, (count * k, 1))
        return xp.reshape(add_rows(xp, rows, ids, count * n), tuple(x.shape))

    def infer_shape(self, grad, indices, x):
        return x

    def infer_dtype(self, grad, indices, x):
        return grad

    def backward(self, grad):
        return [TopKValues(grad, self.inputs[1]), None, None]


def gather(params, indices, axis=0, name=None):
    """The entries of ``params`` at ``indices`` (any shape) along ``axis``; its gradient adds
    the incoming slices into a zero array of params' shape (repeated indices add up).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.gather([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [2, 0])).tolist()
    [[5.0, 6.0], [1.0, 2.0]]
    """
    return Gather(params, _indices(indices), axis, name=name)


def _indices(values):
    return values if isinstance(values, Node) else as_node(_as_indices(values))


def embedding_lookup(params, ids, max_norm=None, name=None):
    """The rows of ``params`` at ``ids`` (TF1's ``tf.nn.embedding_lookup`` over one params
    tensor: a list of partitions is refused), each row scaled down to L2 norm ``max_norm``
    where it is longer. The gradient of the table is a segment sum of the rows' gradients.

    >>> import xpnn as xn
    >>> table = xn.Variable([[3.0, 4.0], [0.5, 0.0]])
    >>> xn.Session().run(xn.embedding_lookup(table, [[0, 1]], max_norm=1.0)).tolist()
    [[[0.6000000238418579, 0.800000011920929], [0.5, 0.0]]]
    """
    if isinstance(params, (list, tuple)):
        if len(params) != 1:
            raise NotImplementedError(
                f"embedding_lookup over {len(params)} partitioned params: xpnn takes one "
                "params tensor; concatenate the partitions in id order (xn.concat) first")
        params = params[0]
    rows = Gather(params, _indices(ids), 0, name=name if max_norm is None else None)
    return rows if max_norm is None else _clip_rows(rows, max_norm, rows.inputs[0], name)


def _clip_rows(rows, max_norm, params, name):
    """Each embedding (params' trailing axes) scaled to L2 norm at most ``max_norm``."""
    if rows.shape is None or params.shape is None:
        raise ValueError("embedding_lookup(max_norm=...) needs the static ranks of params and "
                         "ids: give the placeholders a shape")
    axes = tuple(range(len(rows.shape) - len(params.shape) + 1, len(rows.shape)))
    norm = sqrt(reduce_sum(square(rows), axis=axes, keepdims=True))
    scale = minimum(1.0, max_norm / maximum(norm, 1e-12))
    return multiply(rows, scale, name=name)


def gather_nd(params, indices, name=None):
    """TF1's ``gather_nd``: the slices of ``params`` at the index tuples on the last axis of
    ``indices``.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.gather_nd([[1.0, 2.0], [3.0, 4.0]], [[1, 0], [0, 1]])).tolist()
    [3.0, 2.0]
    """
    return GatherNd(params, _indices(indices), name=name)


def scatter_nd(indices, updates, shape, name=None):
    """TF1's ``scatter_nd``: zeros of ``shape`` (Python ints) with ``updates`` added at the
    index tuples on the last axis of ``indices``; duplicates add up.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.scatter_nd([[1], [3], [1]], [1.0, 2.0, 3.0], [4])).tolist()
    [0.0, 4.0, 0.0, 2.0]
    """
    return ScatterNd(_indices(indices), updates, [int(d) for d in _shape_list(shape)],
                     name=name)


def _shape_list(shape):
    if isinstance(shape, Node):
        raise TypeError("scatter_nd: shape must be Python ints (a static shape), not a graph "
                        f"node ({shape.label})")
    return list(shape)


def unsorted_segment_sum(data, segment_ids, num_segments, name=None):
    """TF1's ``unsorted_segment_sum``: ``out[j]`` sums the slices of ``data`` whose segment
    id is j, for j in [0, num_segments) (a Python int); negative ids are dropped.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.unsorted_segment_sum([1.0, 2.0, 3.0, 4.0], [0, 2, 0, -1], 3)).tolist()
    [4.0, 0.0, 2.0]
    """
    return UnsortedSegmentSum(data, _indices(segment_ids), num_segments, name=name)


def top_k(input, k=1, sorted=True, name=None):  # noqa: A002 - TF1's argument names
    """TF1's ``nn.top_k``: (values, indices) of the ``k`` largest entries along the last
    axis, largest first (``sorted=False`` gives the same order), ties to the lower index;
    indices are int32, values differentiable. Two nodes: ``TopKIndices`` sorts, and
    ``TopKValues`` takes the values at its indices.

    >>> import xpnn as xn
    >>> values, indices = xn.top_k([[1.0, 3.0, 2.0]], k=2)
    >>> xn.Session().run([values, indices], to_numpy=True)[1].tolist()
    [[1, 2]]
    """
    indices = TopKIndices(input, k, name=None if name is None else f"{name}/indices")
    return TopKValues(indices.inputs[0], indices, name=name), indices


__all__ = ["TopKIndices", "TopKValues", "TopKValuesGrad", "top_k", "segment_sum", "Gather",
           "ScatterAdd", "GatherGrad", "UnsortedSegmentSum", "GatherNd", "ScatterNd",
           "GatherNdGrad", "gather", "embedding_lookup", "gather_nd", "scatter_nd",
           "unsorted_segment_sum", "RowsPresent", "rows_present"]
