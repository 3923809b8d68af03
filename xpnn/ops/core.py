"""What every op family shares: the bases ``Elementwise``, ``Binary``, ``Unary`` (and
``Flat``, ``ShapedLike``), broadcasting of static shapes and its gradient (``sum_to``,
``SumTo``, ``BroadcastLike``), the shape and dtype helpers the families use (axes,
index dtypes, padding and spreading along an axis), and ``run_context``: what an op's
forward may ask about the run in progress.

>>> import xpnn as xn
>>> from xpnn.ops.core import broadcast_shapes
>>> broadcast_shapes(xn.constant(0.0), (None, 3), (1, 3))
(None, 3)
"""

from __future__ import annotations

import contextlib
import threading

import array_api_compat

from ..dtypes import dtype_name
from ..graph import Node, Operation


class RunContext(threading.local):
    """What an op's forward asks about the run in progress, set by whoever runs the plan
    (the Session around each run, the JAX pass's jitted body while it traces):
    ``reads_without_sync``, whether reading a value on the host (a label range, a dropout
    rate) costs no device synchronisation. Where it is False (CuPy, CUDA tensors, a JAX
    trace) an op that checks values reads nothing and marks bad entries NaN instead.
    Per thread: two Sessions running in two threads each see their own."""

    reads_without_sync = True

    def reading(self, reads_without_sync: bool):
        """A ``with`` block in which ``reads_without_sync`` is the value given."""
        if reads_without_sync == self.reads_without_sync:
            return _UNCHANGED  # the common case, around every run: nothing to set back
        return _Reading(self, bool(reads_without_sync))


class _Reading:
    """RunContext.reading's block (a class, not a generator: it wraps every run)."""

    __slots__ = ("context", "reads", "saved")

    def __init__(self, context, reads):
        self.context, self.reads = context, reads

    def __enter__(self):
        self.saved, self.context.reads_without_sync = self.context.reads_without_sync, self.reads
        return self.context

    def __exit__(self, *exc):
        self.context.reads_without_sync = self.saved


_UNCHANGED = contextlib.nullcontext()


run_context = RunContext()


def _normalize_axis(axis):
    if axis is None:
        return None
    return tuple(axis) if isinstance(axis, (tuple, list)) else (int(axis),)


def broadcast_shapes(op: Operation, *shapes):
    """NumPy broadcasting of static shapes (None = unknown); raises on a known mismatch."""
    if any(s is None for s in shapes):
        return None
    ndim = max(len(s) for s in shapes)
    result = []
    for dims in zip(*[(1,) * (ndim - len(s)) + tuple(s) for s in shapes]):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(
                f"{op.label}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be "
                "broadcast together; reshape one input or check which inputs you combined"
            )
        if known:
            result.append(known.pop())
        elif all(d == 1 for d in dims):
            result.append(1)
        else:
            result.append(None)
    return tuple(result)


def _reduced_shape(shape, axis, keepdims):
    if shape is None:
        return None
    axes = range(len(shape)) if axis is None else [a % len(shape) for a in axis]
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def sum_to(grad: Node, like: Node) -> Node:
    """``grad`` summed over the axes that broadcasting added to ``like``."""
    if grad.shape is not None and grad.shape == like.shape and None not in grad.shape:
        return grad
    return SumTo(grad, like)


class Elementwise(Operation):
    fresh = True

    def infer_shape(self, *shapes):
        return broadcast_shapes(self, *shapes)


def _match(xp, a, b):
    """NumPy-style mixing of an integer/bool array with a floating one (e.g. one-hot labels
    fed as ints): cast the non-floating side. The standard (and array-api-strict) refuses it."""
    if a.dtype == b.dtype:
        return a, b
    a_float = xp.isdtype(a.dtype, "real floating")
    b_float = xp.isdtype(b.dtype, "real floating")
    if a_float and not b_float:
        return a, xp.astype(b, a.dtype)
    if b_float and not a_float:
        return xp.astype(a, b.dtype), b
    return a, b


class Binary(Elementwise):
    """An elementwise function of two arrays, ``xp.<function>(a, b)``; an integer operand
    meeting a floating one is cast to the floating dtype first (``_match``)."""

    function = ""

    def forward(self, xp, a, b):
        if a.dtype != b.dtype:
            a, b = _match(xp, a, b)
        return getattr(xp, self.function)(a, b)


class Unary(Operation):
    """An op of one input and its shape; ``function`` names the array-API function of the
    ops that are one call, ``xp.<function>(x)``."""

    function = ""

    def forward(self, xp, x):
        return getattr(xp, self.function)(x)

    def infer_shape(self, shape):
        return shape


class Flat(Unary):
    """A unary function whose gradient is zero wherever it has one (sign, ones_like)."""

    fresh = True

    def backward(self, grad):
        return [None]


class ShapedLike(Operation):
    """An op whose output has the shape of its second input, read for its shape only;
    ``function`` names the array-API function of those that are ``xp.<function>(x, shape)``."""

    shape_only = (1,)
    function = ""

    def forward(self, xp, x, like):
        return getattr(xp, self.function)(x, like.shape)

    def infer_shape(self, x, like):
        return like


class SumTo(ShapedLike):
    """grad summed down to the shape of ``like`` (the gradient of broadcasting)."""

    def forward(self, xp, grad, like):
        shape = tuple(like.shape)
        if tuple(grad.shape) == shape:
            return grad
        return _reduce_to(xp, grad, shape)

    def backward(self, grad):
        return [BroadcastLike(grad, self.inputs[0]), None]


class BroadcastLike(ShapedLike):
    function = "broadcast_to"

    def backward(self, grad):
        return [SumTo(grad, self.inputs[0]), None]


def _reduce_to(xp, x, shape):
    """Sum ``x`` over leading/broadcast axes so it has ``shape``."""
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1
    )
    return xp.reshape(xp.sum(x, axis=axes, keepdims=True), shape) if axes else x


_INDEX_DTYPES: dict = {}


def _index_dtype(xp, kind="indexing"):
    """The namespace's default integer type for indices (``kind="integral"``: for integers),
    int32 on JAX without x64."""
    dtype = _INDEX_DTYPES.get((xp, kind))
    if dtype is None:
        dtype = _INDEX_DTYPES[xp, kind] = xp.__array_namespace_info__().default_dtypes()[kind]
    return dtype


def xp_dtype(xp, name):
    """The namespace's dtype object of that name ("float32" -> ``xp.float32``)."""
    return getattr(xp, dtype_name(name))


def _pad_axis(xp, x, axis, before, after, value):
    if before == after == 0:
        return x
    dev = array_api_compat.device(x)
    parts = []
    for size in (before, after):
        shape = tuple(size if a == axis else d for a, d in enumerate(x.shape))
        parts.append(xp.full(shape, value, dtype=x.dtype, device=dev) if size else None)
    return xp.concat([p for p in (parts[0], x, parts[1]) if p is not None], axis=axis)


def _spread(xp, x, axis, s):
    """x with s - 1 zeros between neighbours along ``axis`` (where a stride skipped)."""
    if s == 1 or x.shape[axis] == 0:
        return x
    n = x.shape[axis]
    shape = tuple(x.shape)
    zeros = xp.zeros(shape[: axis + 1] + (s - 1,) + shape[axis + 1 :], dtype=x.dtype,
                     device=array_api_compat.device(x))
    both = xp.concat([xp.expand_dims(x, axis=axis + 1), zeros], axis=axis + 1)
    flat = xp.reshape(both, shape[:axis] + (n * s,) + shape[axis + 1 :])
    return flat[(slice(None),) * axis + (slice(0, s * (n - 1) + 1), ...)]


__all__ = ["RunContext", "run_context", "broadcast_shapes", "sum_to", "Elementwise", "Binary",
           "Unary", "Flat", "ShapedLike", "SumTo", "BroadcastLike", "xp_dtype"]
