"""TF1's structure ops with TF1's arguments: ``concat``, ``stack``, ``unstack``, ``split``,
``gather``, ``one_hot``, ``where`` (TF1's: a 1-D condition picks rows), ``squeeze``,
``expand_dims``, ``tile``, ``pad``, ``shape``, ``reshape`` (with -1), ``transpose``,
``slice``, ``reverse``; the sequence ops ``gather_nd``, ``scatter_nd``,
``unsorted_segment_sum``, ``sequence_mask``, ``cumsum``, ``einsum``, ``tensordot``; shapes
are Python lists.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.constant([[1, 2], [3, 4]])
>>> sess = tf.Session()
>>> print(sess.run(tf.concat([x, x * 10], axis=1)))
[[ 1  2 10 20]
 [ 3  4 30 40]]
>>> print(sess.run(tf.where([True, False], x, -x)))
[[ 1  2]
 [-3 -4]]
"""

from __future__ import annotations

import builtins

from ... import ops
from ...graph import Node
from ...ops import logic
from .dtypes import float32, int32, name_of
from .elementary import where_indices
from .graphs import op_name
from .tensors import as_tensor, host_array


def _tensors(values):
    return [as_tensor(v) for v in values]


def concat(values, axis, name="concat"):
    values = _tensors(values)
    if len(values) == 1:
        return ops.identity(values[0], name=op_name(name, "concat"))
    return ops.concat(values, int(axis), name=op_name(name, "concat"))


def stack(values, axis=0, name="stack"):
    return ops.stack(_tensors(values), int(axis), name=op_name(name, "stack"))


def unstack(value, num=None, axis=0, name="unstack"):
    return ops.unstack(as_tensor(value), num, int(axis))


def split(value, num_or_size_splits, axis=0, num=None, name="split"):
    splits = num_or_size_splits
    if not isinstance(splits, int):
        splits = [int(s) for s in host_array(splits).reshape(-1)]
    return ops.split(as_tensor(value), splits, int(axis))


def gather(params, indices, validate_indices=None, name=None, axis=None, batch_dims=0):
    if batch_dims:
        raise NotImplementedError("tf.gather(batch_dims=...): gather each batch entry, or "
                                  "flatten the batch into the indices")
    indices = as_tensor(indices)
    return ops.gather(as_tensor(params), indices, 0 if axis is None else int(axis),
                            name=op_name(name, "GatherV2"))


def gather_nd(params, indices, name=None, batch_dims=0):
    if batch_dims:
        raise NotImplementedError("tf.gather_nd(batch_dims=...): put the batch index into "
                                  "the index tuples")
    return ops.gather_nd(as_tensor(params), as_tensor(indices), name=op_name(name, "GatherNd"))


def scatter_nd(indices, updates, shape, name=None):
    """Zeros of ``shape`` (Python ints) with ``updates`` added at ``indices``; duplicates
    add up."""
    return ops.scatter_nd(as_tensor(indices), as_tensor(updates), _ints(shape),
                          name=op_name(name, "ScatterNd"))


def unsorted_segment_sum(data, segment_ids, num_segments, name=None):
    return ops.unsorted_segment_sum(as_tensor(data), as_tensor(segment_ids),
                                    _ints(num_segments)[0],
                                    name=op_name(name, "UnsortedSegmentSum"))


def sequence_mask(lengths, maxlen=None, dtype=None, name=None):
    maxlen = None if maxlen is None else _ints(maxlen)[0]
    return ops.sequence_mask(as_tensor(lengths), maxlen, name_of(dtype) or "bool",
                             name=op_name(name, "SequenceMask"))


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None):
    return ops.cumsum(as_tensor(x), _ints(axis)[0], exclusive, reverse,
                      name=op_name(name, "Cumsum"))


def einsum(equation, *inputs, **kwargs):
    unknown = set(kwargs) - {"name"}
    if unknown:
        raise TypeError(f"tf.einsum got unexpected keyword arguments {sorted(unknown)}")
    return ops.einsum(equation, *_tensors(inputs), name=op_name(kwargs.get("name"), "einsum"))


def tensordot(a, b, axes, name=None):
    if not isinstance(axes, int):
        axes = [_ints(ax) for ax in axes] if len(axes) == 2 else _ints(axes)
    return ops.tensordot(as_tensor(a), as_tensor(b), axes, name=op_name(name, "Tensordot"))


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None):
    """Rows of ``depth`` (float32 by default): 1 at the index, 0 elsewhere."""
    dtype = dtype or (host_array(on_value).dtype if on_value is not None else float32)
    return ops.one_hot(as_tensor(indices), int(depth),
                             1 if on_value is None else on_value,
                             0 if off_value is None else off_value,
                             -1 if axis is None else int(axis), name_of(dtype),
                             name=op_name(name, "one_hot"))


def where(condition, x=None, y=None, name=None):
    """x where ``condition`` else y; a 1-D condition picks whole rows of x and y (TF1).
    With the condition alone: the indices (int64 rows) of its true entries."""
    if x is None and y is None:  # the indices of the true entries: a run-time count
        return where_indices(condition, name)
    if x is None or y is None:
        raise ValueError("tf.where: give x and y both, or neither (the indices of the true "
                         "entries)")
    condition, x, y = as_tensor(condition), as_tensor(x), as_tensor(y)
    rows = x.shape if x.shape is not None else y.shape
    if condition.shape is not None and len(condition.shape) == 1 and rows is not None \
            and len(rows) > 1:
        condition = ops.reshape(condition, (-1,) + (1,) * (len(rows) - 1))
    return logic.where(condition, x, y, name=op_name(name, "Select"))


def where_v2(condition, x=None, y=None, name=None):
    """x where ``condition`` else y, all three broadcast together."""
    if x is None and y is None:
        return where(condition)
    return logic.where(as_tensor(condition), x, y, name=op_name(name, "SelectV2"))


def squeeze(input, axis=None, name=None, squeeze_dims=None):  # noqa: A002 - TF1's name
    axis = squeeze_dims if axis is None else axis
    return ops.squeeze(as_tensor(input), axis, name=op_name(name, "Squeeze"))


def expand_dims(input, axis=None, name=None, dim=None):  # noqa: A002 - TF1's name
    axis = dim if axis is None else axis
    if axis is None:
        raise ValueError("expand_dims: give axis")
    return ops.ExpandDims(as_tensor(input), int(axis), name=op_name(name, "ExpandDims"))


def tile(input, multiples, name=None):  # noqa: A002 - TF1's name
    if ops.holds_nodes(multiples):
        return ops.tile_to(as_tensor(input), multiples, name=op_name(name, "Tile"))
    return ops.tile(as_tensor(input), _ints(multiples), name=op_name(name, "Tile"))


def pad(tensor, paddings, mode="CONSTANT", name=None, constant_values=0):
    """``tensor`` padded by ``paddings`` (one [before, after] a dimension): with
    ``constant_values``, or mirrored (``mode`` REFLECT or SYMMETRIC, any case, as TF1's)."""
    mode = str(mode).upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ValueError(f'tf.pad: mode must be one of "CONSTANT", "REFLECT", or "SYMMETRIC", '
                         f"got {mode!r}")
    rows = [_ints(row) for row in host_array(paddings).tolist()]
    kind = "Pad" if mode == "CONSTANT" else "MirrorPad"
    return ops.pad(as_tensor(tensor), rows, constant_values, name=op_name(name, kind),
                   mode=mode.lower())


def shape(input, name=None, out_type=int32):  # noqa: A002 - TF1's name
    """The run-time shape, int32 (or ``out_type``)."""
    node = ops.shape.shape(as_tensor(input))
    if name_of(out_type) != "int32":
        node = ops.cast(node, name_of(out_type))
    return ops.identity(node, name=op_name(name, "Shape"))


def size(input, name=None, out_type=int32):  # noqa: A002 - TF1's name
    """The number of entries, int32 (or ``out_type``)."""
    node = ops.reduce_prod(ops.shape.shape(as_tensor(input)))
    return ops.cast(node, name_of(out_type), name=op_name(name, "Size"))


def rank(input, name=None):  # noqa: A002 - TF1's name
    node = as_tensor(input)
    if node.shape is None:
        raise NotImplementedError("tf.rank of a tensor of unknown rank")
    from .tensors import constant

    return constant(len(node.shape), name=name or "Rank")


def reshape(tensor, shape, name=None):
    """``tensor`` in ``shape`` (a list; one entry may be -1): ints, or scalar tensors
    known at run time (``[tf.shape(x)[0], -1]``), or a shape tensor."""
    if ops.holds_nodes(shape):
        return ops.reshape_to(as_tensor(tensor), shape, name=op_name(name, "Reshape"))
    return ops.reshape(as_tensor(tensor), _ints(shape), name=op_name(name, "Reshape"))


def transpose(a, perm=None, name="transpose", conjugate=False):
    return ops.transpose(as_tensor(a), None if perm is None else _ints(perm),
                         name=op_name(name, "transpose"))


def slice(input_, begin, size, name=None):  # noqa: A001 - TF1's name
    """``size[i]`` entries from ``begin[i]`` along each axis (-1: the rest)."""
    key = tuple(builtins.slice(b, None if s == -1 else b + s)
                for b, s in zip(_ints(begin), _ints(size)))
    return ops.GetItem(as_tensor(input_), key, name=op_name(name, "Slice"))


def reverse(tensor, axis, name=None):
    node = as_tensor(tensor)
    if node.shape is None:
        raise NotImplementedError("tf.reverse of a tensor of unknown rank")
    axes = {a % len(node.shape) for a in _ints(axis)}
    key = tuple(builtins.slice(None, None, -1) if i in axes else builtins.slice(None)
                for i in builtins.range(len(node.shape)))
    return ops.GetItem(node, key, name=op_name(name, "ReverseV2"))


def _ints(values):
    if isinstance(values, Node):
        raise NotImplementedError("a shape or index list given as a tensor: xpnn.compat.v1 "
                                  "takes Python lists of ints")
    values = values if isinstance(values, (int, list, tuple)) else host_array(values).tolist()
    return [int(v) for v in ([values] if isinstance(values, int) else values)]
