"""Ops that arrange values without computing new ones: ``reshape``, ``transpose``,
``expand_dims`` (``ExpandDims``), ``squeeze``, ``concat``, ``stack``, ``unstack``,
``split``, ``one_hot``, ``tile``, ``pad``, ``shape`` and slicing ``x[...]``
(ints, slices with any step, ``None`` and ``...``). Each gradient is portable: no scatter,
no in-place write, pieces are spread, padded and summed as the convolutions' are.

>>> import xpnn as xn
>>> x = xn.Variable([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
>>> y = xn.concat([x[:, ::-1], x[:1]], axis=0)
>>> xn.Session().run(y).tolist()
[[3.0, 2.0, 1.0], [6.0, 5.0, 4.0], [1.0, 2.0, 3.0]]
>>> xn.Session().run(xn.gradients(y, [x])[0]).tolist()
[[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import math

import array_api_compat

from ..devices import indicator
from ..dtypes import dtype_name
from ..graph import Node, Operation, as_node
from ..host import to_numpy
from .core import ShapedLike, Unary, _pad_axis, _spread, xp_dtype
from .outputs import MultiOutput


def _axis(axis, ndim):
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for rank {ndim}")
    return axis % ndim


class Reshape(Unary):
    def __init__(self, x, shape, name=None):
        self.new_shape = tuple(shape)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        return xp.reshape(x, self.new_shape)

    def infer_shape(self, shape):
        known = shape is not None and None not in shape
        if -1 in self.new_shape:
            rest = -math.prod(self.new_shape)  # product of the other entries
            if not known:
                return tuple(None if d == -1 else d for d in self.new_shape)
            if rest <= 0 or math.prod(shape) % rest:
                raise ValueError(f"{self.label}: cannot reshape {shape} into {self.new_shape}")
            return tuple(math.prod(shape) // rest if d == -1 else d for d in self.new_shape)
        if known and math.prod(shape) != math.prod(self.new_shape):
            raise ValueError(f"{self.label}: cannot reshape {shape} into {self.new_shape}")
        return self.new_shape

    def backward(self, grad):
        return [ReshapeLike(grad, self.inputs[0])]


class ReshapeLike(ShapedLike):
    function = "reshape"

    def backward(self, grad):
        return [ReshapeLike(grad, self.inputs[0]), None]


class ExpandDims(Unary):
    """x with a new axis of length 1 at ``axis`` (how a per-row gradient meets a per-class
    one)."""

    def __init__(self, x, axis, name=None):
        self.axis = int(axis)
        super().__init__(x, name=name)

    def _position(self, ndim):
        return self.axis if self.axis >= 0 else ndim + 1 + self.axis

    def forward(self, xp, x):
        return xp.expand_dims(x, axis=self._position(x.ndim))

    def infer_shape(self, shape):
        if shape is None:
            return None
        k = self._position(len(shape))
        return tuple(shape[:k]) + (1,) + tuple(shape[k:])

    def backward(self, grad):
        return [ReshapeLike(grad, self.inputs[0])]


class Transpose(Unary):
    def __init__(self, x, axes=None, name=None):
        self.axes = None if axes is None else tuple(axes)
        super().__init__(x, name=name)

    def _axes(self, ndim):
        return tuple(reversed(range(ndim))) if self.axes is None else self.axes

    def forward(self, xp, x):
        return xp.permute_dims(x, self._axes(x.ndim))

    def infer_shape(self, shape):
        if shape is None:
            return None
        return tuple(shape[a] for a in self._axes(len(shape)))

    def backward(self, grad):
        if self.axes is None:
            return [Transpose(grad)]
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return [Transpose(grad, inverse)]


def _check_key(key):
    key = key if isinstance(key, tuple) else (key,)
    for k in key:
        if isinstance(k, Node):
            raise TypeError(f"x[{k.label}]: index nodes with a graph value by gather(x, "
                            "indices); slicing takes Python ints, slices, None and ...")
        if isinstance(k, bool) or not (k is None or k is Ellipsis or isinstance(k, (int, slice))):
            raise TypeError(f"x[{k!r}]: slicing takes Python ints, slices, None and ...")
        if isinstance(k, slice) and any(
                not (v is None or isinstance(v, int)) for v in (k.start, k.stop, k.step)):
            raise TypeError(f"x[{k!r}]: slice bounds must be Python ints")
        if isinstance(k, slice) and k.step == 0:
            raise ValueError("slice step cannot be zero")
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    return key


def _expand(key, ndim):
    """The key with ``...`` expanded: one int or slice per input axis, plus the Nones."""
    real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if real > ndim:
        raise IndexError(f"too many indices: {real} for rank {ndim}")
    fill = (slice(None),) * (ndim - real)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        return key[:at] + fill + key[at + 1 :]
    return key + fill


def _selected(k, n):
    """(start, step, count) of the entries an int or slice picks from an axis of n."""
    if isinstance(k, int):
        if not -n <= k < n:
            raise IndexError(f"index {k} is out of bounds for an axis of size {n}")
        return k % n, 1, 1
    start, stop, step = k.indices(n)
    return start, step, len(range(start, stop, step))


def _sliced_shape(key, shape):
    out = []
    entries = iter(shape)
    for k in key:
        if k is None:
            out.append(1)
            continue
        n = next(entries)
        if isinstance(k, int):
            if n is not None:
                _selected(k, n)
            continue
        out.append(None if n is None else _selected(k, n)[2])
    return tuple(out)


def _basic_index(xp, x, key):
    """``x[key]`` for a checked basic key; a negative step flips the axis first."""
    out, axis = [], 0
    for k in _expand(key, x.ndim):
        if k is None:
            out.append(None)
            continue
        n = x.shape[axis]
        if isinstance(k, slice):
            start, step, count = _selected(k, n)
            if step < 0 and count:
                x = xp.flip(x, axis=axis)
                first = n - 1 - start
                k = slice(first, first + (count - 1) * -step + 1, -step)
            elif not count:
                k = slice(0, 0)
        else:
            _selected(k, n)
        out.append(k)
        axis += 1
    return x[tuple(out)]


class GetItem(Unary):
    """``x[key]``, NumPy's basic indexing; a negative step flips the axis first (PyTorch
    slices only forward)."""

    def __init__(self, x, key, name=None):
        self.key = _check_key(key)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        return _basic_index(xp, x, self.key)

    def infer_shape(self, shape):
        return None if shape is None else _sliced_shape(_expand(self.key, len(shape)), shape)

    def backward(self, grad):
        return [GetItemGrad(grad, self.inputs[0], self.key)]


class _GradientLikeInput(Operation):
    """An op (grad, x) -> the gradient with respect to x: shaped like x (read for its shape
    only), in grad's dtype."""

    shape_only = (1,)
    fresh = True

    def infer_shape(self, grad, x):
        return x

    def infer_dtype(self, grad, x):
        return grad


class GetItemGrad(_GradientLikeInput):
    """The gradient of ``x[key]``: grad placed where the entries came from, zeros elsewhere
    (x: shape only)."""

    def __init__(self, grad, x, key):
        self.key = key
        super().__init__(grad, x)

    def forward(self, xp, grad, x):
        picks = [_selected(k, n) for k, n in zip(
            (k for k in _expand(self.key, x.ndim) if k is not None), x.shape)]
        if any(count == 0 for _, _, count in picks):
            return xp.zeros(x.shape, dtype=grad.dtype, device=array_api_compat.device(grad))
        g = xp.reshape(grad, tuple(count for _, _, count in picks))
        for axis, ((start, step, count), n) in enumerate(zip(picks, x.shape)):
            low = start + (count - 1) * step if step < 0 else start
            if step < 0:
                g = xp.flip(g, axis=axis)
            g = _spread(xp, g, axis, abs(step))
            g = _pad_axis(xp, g, axis, low, n - low - (count - 1) * abs(step) - 1, 0.0)
        return g

    def backward(self, grad):
        return [GetItem(grad, self.key), None]


class _Joining(Operation):
    """``xp.<function>(inputs, axis=axis)``: the inputs joined into one array."""

    fresh = True

    def __init__(self, values, axis=0, name=None):
        self.axis = int(axis)
        super().__init__(*values, name=name)

    def forward(self, xp, *values):
        return getattr(xp, self.function)(values, axis=self.axis)


class Concat(_Joining):
    """The inputs joined along ``axis``."""

    function = "concat"

    def infer_shape(self, *shapes):
        if any(s is None for s in shapes):
            return None
        axis = _axis(self.axis, len(shapes[0]))
        sizes = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def backward(self, grad):
        return [ConcatPart(grad, self.inputs, i, self.axis) for i in range(len(self.inputs))]


class ConcatPart(Operation):
    """Input ``part``'s piece of a concatenation's gradient (the inputs: shape only)."""

    def __init__(self, grad, values, part, axis):
        self.part, self.axis = part, axis
        self.shape_only = tuple(range(1, len(values) + 1))
        super().__init__(grad, *values)

    def forward(self, xp, grad, *values):
        axis = _axis(self.axis, grad.ndim)
        start = sum(v.shape[axis] for v in values[: self.part])
        stop = start + values[self.part].shape[axis]
        return grad[(slice(None),) * axis + (slice(start, stop), ...)]

    def infer_shape(self, grad, *shapes):
        return shapes[self.part]

    def infer_dtype(self, grad, *dtypes):
        return grad


class Stack(_Joining):
    """The inputs (of one shape) stacked along a new ``axis``."""

    function = "stack"

    def infer_shape(self, *shapes):
        if any(s is None for s in shapes):
            return None
        axis = _axis(self.axis, len(shapes[0]) + 1)
        return tuple(shapes[0][:axis]) + (len(shapes),) + tuple(shapes[0][axis:])

    def backward(self, grad):  # one op for every piece (a device may lay them out once)
        keys = [_take_key(i, self.axis) for i in range(len(self.inputs))]
        return list(Pieces(grad, keys, self.axis, "stack").outputs)


class Pieces(MultiOutput):
    """``x`` cut into pieces along ``axis`` (``split``, ``unstack``): one output per key.
    The gradient joins the pieces' gradients (zeros for pieces no gradient reaches) with one
    concat (``joined="concat"``) or stack, not one zero-padded copy of ``x`` per piece."""

    def __init__(self, x, keys, axis, joined, name=None):
        self.keys, self.axis, self.joined = [_check_key(k) for k in keys], axis, joined
        super().__init__(x, name=name)
        shape = x.shape if isinstance(x, Node) else None
        self.make_outputs(
            [None if shape is None else _sliced_shape(_expand(k, len(shape)), shape)
             for k in self.keys], [self.inputs[0].dtype] * len(self.keys))

    def forward(self, xp, x):
        return tuple(_basic_index(xp, x, key) for key in self.keys)

    def backward_outputs(self, grads):
        parts = self.output_gradients(grads)
        if parts[0] is None:  # integer pieces: no gradient
            return [None]
        joining = Concat if self.joined == "concat" else Stack
        return [joining(parts, axis=self.axis)]


def _take_key(index, axis):
    """The key of entry ``index`` along ``axis`` (negative axes count from the end)."""
    if axis >= 0:
        return (slice(None),) * axis + (index,)
    return (Ellipsis, index) + (slice(None),) * (-axis - 1)


class OneHot(Unary):
    """``on_value`` where indices == class, ``off_value`` elsewhere: shape indices.shape +
    (depth,) (the new axis at ``axis``); an index outside [0, depth) gives a row of
    ``off_value``."""

    fresh = True

    def __init__(self, indices, depth, on_value=1.0, off_value=0.0, axis=-1, dtype="float32",
                 name=None):
        self.depth, self.on, self.off = int(depth), on_value, off_value
        self.axis, self.target = int(axis), dtype_name(dtype)
        super().__init__(indices, name=name)

    def forward(self, xp, indices):
        dev = array_api_compat.device(indices)
        classes = xp.arange(self.depth, dtype=indices.dtype, device=dev)
        hot = indices[..., None] == classes
        dtype = xp_dtype(xp, self.target)
        if (self.on, self.off) == (1, 0):
            out = indicator(xp, hot, dtype)
        else:
            out = xp.where(hot, xp.full(hot.shape, self.on, dtype=dtype, device=dev),
                           xp.full(hot.shape, self.off, dtype=dtype, device=dev))
        if self.axis in (-1, indices.ndim):
            return out
        axes = list(range(indices.ndim))
        axes.insert(self.axis, indices.ndim)
        return xp.permute_dims(out, tuple(axes))

    def infer_shape(self, shape):
        if shape is None:
            return None
        out = list(shape)
        out.insert(len(shape) if self.axis == -1 else self.axis, self.depth)
        return tuple(out)

    def infer_dtype(self, dtype):
        return self.target

    def backward(self, grad):
        return [None]


class Squeeze(Unary):
    """x without its axes of length 1 (only those in ``axis`` when given)."""

    def __init__(self, x, axis=None, name=None):
        self.axis = None if axis is None else tuple(
            axis if isinstance(axis, (list, tuple)) else [axis])
        super().__init__(x, name=name)

    def _axes(self, shape):
        if self.axis is None:
            return tuple(i for i, d in enumerate(shape) if d == 1)
        axes = tuple(_axis(a, len(shape)) for a in self.axis)
        for a in axes:
            if shape[a] not in (1, None):
                raise ValueError(f"{self.label}: cannot squeeze axis {a} of size {shape[a]}")
        return axes

    def forward(self, xp, x):
        return xp.squeeze(x, axis=self._axes(tuple(x.shape)))

    def infer_shape(self, shape):
        if shape is None or (self.axis is None and None in shape):
            return None
        axes = self._axes(shape)
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def backward(self, grad):
        return [ReshapeLike(grad, self.inputs[0])]


class Tile(Unary):
    """x repeated ``multiples[i]`` times along each axis i."""

    fresh = True

    def __init__(self, x, multiples, name=None):
        self.multiples = tuple(int(m) for m in multiples)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        if len(self.multiples) != x.ndim:
            raise ValueError(f"{self.label}: {len(self.multiples)} multiples for rank {x.ndim}")
        return xp.tile(x, self.multiples)

    def infer_shape(self, shape):
        if shape is None:
            return None
        return tuple(None if d is None else d * m for d, m in zip(shape, self.multiples))

    def backward(self, grad):
        return [TileGrad(grad, self.inputs[0], self.multiples)]


class TileGrad(_GradientLikeInput):
    """The sum of grad's tiles: grad seen as (m0, d0, m1, d1, ...) summed over the m axes."""

    def __init__(self, grad, x, multiples):
        self.multiples = multiples
        super().__init__(grad, x)

    def forward(self, xp, grad, x):
        split = tuple(v for pair in zip(self.multiples, x.shape) for v in pair)
        return xp.sum(xp.reshape(grad, split), axis=tuple(range(0, 2 * x.ndim, 2)))

    def backward(self, grad):
        return [Tile(grad, self.multiples), None]


class Pad(Unary):
    """x with ``paddings[i] = (before, after)`` entries of ``value`` around each axis i."""

    fresh = True

    def __init__(self, x, paddings, value=0.0, name=None):
        self.paddings = tuple((int(b), int(a)) for b, a in paddings)
        if any(b < 0 or a < 0 for b, a in self.paddings):
            raise ValueError(f"pad: paddings must not be negative, got {paddings}")
        self.value = value
        super().__init__(x, name=name)

    def forward(self, xp, x):
        if len(self.paddings) != x.ndim:
            raise ValueError(f"{self.label}: {len(self.paddings)} paddings for rank {x.ndim}")
        for axis, (before, after) in enumerate(self.paddings):
            x = _pad_axis(xp, x, axis, before, after, self.value)
        return x

    def infer_shape(self, shape):
        if shape is None:
            return None
        return tuple(None if d is None else d + b + a for d, (b, a) in zip(shape, self.paddings))

    def backward(self, grad):
        return [GetItem(grad, tuple(slice(b, -a if a else None) for b, a in self.paddings))]


class MirrorPad(Unary):
    """x with ``paddings[i] = (before, after)`` entries mirrored around each axis i, as
    ``numpy.pad``'s modes: "reflect" leaves the edge out (at most size - 1 entries a side),
    "symmetric" repeats it (at most size)."""

    fresh = True

    def __init__(self, x, paddings, mode, name=None):
        self.paddings = tuple((int(b), int(a)) for b, a in paddings)
        if mode not in ("reflect", "symmetric"):
            raise ValueError(f"pad: mode must be constant, reflect or symmetric, got {mode!r}")
        self.mode, self.edge = mode, int(mode == "reflect")
        if any(b < 0 or a < 0 for b, a in self.paddings):
            raise ValueError(f"pad: paddings must not be negative, got {paddings}")
        super().__init__(x, name=name)
        if self.inputs[0].shape is not None:
            self._check(self.inputs[0].shape)

    def _check(self, shape):
        if len(self.paddings) != len(shape):
            raise ValueError(f"{self.label}: {len(self.paddings)} paddings for rank {len(shape)}")
        for axis, ((b, a), n) in enumerate(zip(self.paddings, shape)):
            if n is not None and max(b, a) > n - self.edge:
                raise ValueError(
                    f"{self.label}: {self.mode} padding of ({b}, {a}) along axis {axis} of "
                    f"size {n}: each side takes at most {n - self.edge} (shape {tuple(shape)})")

    def forward(self, xp, x):
        self._check(x.shape)
        for axis, (before, after) in enumerate(self.paddings):
            n, e = x.shape[axis], self.edge
            left = xp.flip(_along(x, axis, e, e + before), axis=axis)
            right = xp.flip(_along(x, axis, n - e - after, n - e), axis=axis)
            x = xp.concat([left, x, right], axis=axis)
        return x

    def infer_shape(self, shape):
        return Pad.infer_shape(self, shape)

    def backward(self, grad):
        return [MirrorPadGrad(grad, self.inputs[0], self)]


class MirrorPadGrad(_GradientLikeInput):
    """The gradient of a MirrorPad: each mirrored entry's gradient added back to the entry it
    copied (x: shape only)."""

    def __init__(self, grad, x, pad):
        self.pad = pad
        super().__init__(grad, x)

    def forward(self, xp, grad, x):
        for axis, (before, after) in enumerate(self.pad.paddings):
            n, e = x.shape[axis], self.pad.edge
            left = xp.flip(_along(grad, axis, 0, before), axis=axis)
            right = xp.flip(_along(grad, axis, before + n, before + n + after), axis=axis)
            grad = (_along(grad, axis, before, before + n)
                    + _pad_axis(xp, left, axis, e, n - e - before, 0.0)
                    + _pad_axis(xp, right, axis, n - e - after, e, 0.0))
        return grad

    def backward(self, grad):
        return [MirrorPad(grad, self.pad.paddings, self.pad.mode), None]


def _along(x, axis, start, stop):
    """x[start:stop] along ``axis``."""
    return x[(slice(None),) * axis + (slice(start, stop), ...)]


class Shape(Unary):
    """The shape of x as an int32 vector (TF1's ``tf.shape``)."""

    fresh = True

    def forward(self, xp, x):
        return xp.asarray(list(x.shape), dtype=xp.int32, device=array_api_compat.device(x))

    def infer_shape(self, shape):
        return None if shape is None else (len(shape),)

    def infer_dtype(self, dtype):
        return "int32"

    def backward(self, grad):
        return [None]


def reshape(x, shape, name=None):
    """Reshape (one entry may be -1)."""
    return Reshape(x, shape, name=name)


def transpose(x, axes=None, name=None):
    """Permute axes (reverse them when ``axes`` is None), like ``numpy.transpose``."""
    return Transpose(x, axes, name=name)


def concat(values, axis, name=None):
    """The nodes of ``values`` joined along ``axis``.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.concat([[[1.0]], [[2.0]]], axis=1)).tolist()
    [[1.0, 2.0]]
    """
    return Concat(list(values), axis, name=name)


def stack(values, axis=0, name=None):
    """The nodes of ``values`` (one shape) stacked along a new ``axis``."""
    return Stack(list(values), axis, name=name)


def unstack(value, num=None, axis=0, name=None):
    """The entries of ``value`` along ``axis``, as a list of nodes (``num`` of them: the
    axis's static size when not given).

    >>> import xpnn as xn
    >>> a, b = xn.ops.unstack(xn.constant([[1.0, 2.0], [3.0, 4.0]]), axis=1)
    >>> xn.Session().run(b).tolist()
    [2.0, 4.0]
    """
    value = as_node(value)
    if num is None:
        if value.shape is None or value.shape[axis] is None:
            raise ValueError(f"unstack: the size of axis {axis} of {value.label} is not known; "
                             "pass num=")
        num = value.shape[axis]
    return list(Pieces(value, [_take_key(i, axis) for i in range(num)], axis, "stack",
                       name=name).outputs)


def split(value, num_or_size_splits, axis=0, name=None):
    """``value`` cut along ``axis`` into ``num_or_size_splits`` equal pieces, or pieces of
    the sizes listed (one of them may be -1: the rest).

    >>> import xpnn as xn
    >>> a, b = xn.ops.split(xn.constant([1.0, 2.0, 3.0]), [1, -1])
    >>> xn.Session().run(b).tolist()
    [2.0, 3.0]
    """
    value = as_node(value)
    size = None if value.shape is None else value.shape[axis]
    if isinstance(num_or_size_splits, int):
        if size is None or size % num_or_size_splits:
            raise ValueError(f"split: axis {axis} of {value.label} (size {size}) does not split "
                             f"into {num_or_size_splits} equal pieces")
        sizes = [size // num_or_size_splits] * num_or_size_splits
    else:
        sizes = [int(s) for s in num_or_size_splits]
        if -1 in sizes[:-1] or (sizes[-1] == -1 and size is not None):
            if size is None:
                raise ValueError(f"split: a size -1 before the last needs the static size of "
                                 f"axis {axis}")
            sizes[sizes.index(-1)] = size - (sum(sizes) + 1)
    key_of = (lambda a, b: (slice(None),) * axis + (slice(a, b),)) if axis >= 0 else (
        lambda a, b: (Ellipsis, slice(a, b)) + (slice(None),) * (-axis - 1))
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    keys = [key_of(a, None if n == -1 else a + n) for a, n in zip(starts, sizes)]  # -1: rest
    return list(Pieces(value, keys, axis, "concat", name=name).outputs)


def _as_indices(values):
    """Host (or any backend's) indices as a host integer array: a constant of Python ints
    would be float32."""
    values = to_numpy(values)
    if values.size == 0:
        return values.astype("int64")
    if values.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got {values.dtype} values")
    return values


def one_hot(indices, depth, on_value=1.0, off_value=0.0, axis=-1, dtype="float32", name=None):
    """Rows of ``depth`` entries, ``on_value`` at each index and ``off_value`` elsewhere.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.one_hot([2, 0], 3)).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if not isinstance(indices, Node):
        indices = as_node(_as_indices(indices))
    return OneHot(indices, depth, on_value, off_value, axis, dtype, name=name)


def squeeze(x, axis=None, name=None):
    """x without its axes of length 1 (those of ``axis`` only, when given)."""
    return Squeeze(x, axis, name=name)


def tile(x, multiples, name=None):
    """x repeated ``multiples[i]`` times along axis i."""
    return Tile(x, multiples, name=name)


def pad(x, paddings, constant_values=0.0, name=None, mode="constant"):
    """x with ``paddings[i] = [before, after]`` entries of ``constant_values`` around axis i
    (``mode`` "reflect" or "symmetric": the entries mirrored, as ``numpy.pad``'s).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.pad([[1.0, 2.0]], [[1, 0], [0, 1]])).tolist()
    [[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]]
    """
    if mode != "constant":
        return MirrorPad(x, paddings, mode, name=name)
    return Pad(x, paddings, constant_values, name=name)


def shape(x, name=None):
    """The run-time shape of ``x`` (int32)."""
    return Shape(x, name=name)


def _not_iterable(self):
    raise TypeError(f"{self.label} is a graph node, not a sequence: take its entries with "
                    "unstack(x) or x[i]")


__all__ = ["Reshape", "ReshapeLike", "ExpandDims", "Transpose", "GetItem", "GetItemGrad",
           "Concat", "ConcatPart", "Stack", "OneHot", "Squeeze", "Tile",
           "TileGrad", "Pad", "MirrorPad", "MirrorPadGrad", "Shape", "reshape", "transpose",
           "concat", "stack", "unstack", "split", "one_hot", "squeeze", "tile", "pad"]
# ``shape``, the function, is left out: the package's ``from .shape import *`` would hide the
# module ``ops.shape`` behind it.
