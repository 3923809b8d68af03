"""Ops whose output's length depends on the values, known only at run time: TF1's
``boolean_mask`` (the entries where a mask holds) and ``where(condition)`` with one argument
(the indices of the true entries); and ``in_top_k``, whether each target is among the k
largest predictions. Their static shapes hold ``None`` for the run-time length.

Reading a mask's count is a host synchronisation: on a compiling device (JAX) such a plan
cannot be traced and runs op by op (the JAX runner falls back to its eager program).

>>> import xpnn as xn
>>> x = xn.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
>>> picked = xn.ops.boolean_mask(x, [True, False, True])
>>> picked.shape, xn.Session().run(picked).tolist()
((None, 2), [[1.0, 2.0], [5.0, 6.0]])
"""

from __future__ import annotations

import math

import array_api_compat

from ..dtypes import dtype_name
from ..graph import Operation
from .core import _index_dtype
from .indexing import Gather, ScatterAdd, _indices, check_range


def _mask_shape(op, shape, mask, axis):
    """Check a mask's static shape against the dims it covers from ``axis`` on."""
    if shape is None or mask is None:
        return
    if len(mask) == 0:
        raise ValueError(f"{op.label}: the mask is a scalar; it needs at least one axis")
    covered = tuple(shape[axis:axis + len(mask)])
    if len(covered) < len(mask) or any(
            a is not None and b is not None and a != b for a, b in zip(covered, mask)):
        raise ValueError(f"{op.label}: mask of shape {tuple(mask)} does not match the "
                         f"tensor's axes {axis}.. of shape {tuple(shape)}; the mask's shape "
                         "must be those axes' shape")


class BooleanMask(Operation):
    """The entries (slices) of x where ``mask`` holds, the mask covering x's axes from
    ``axis`` on, flattened into one axis of run-time length (TF1's ``boolean_mask``)."""

    fresh = True

    def __init__(self, x, mask, axis=0, name=None):
        self.axis = int(axis)
        super().__init__(x, mask, name=name)

    def forward(self, xp, x, mask):
        k, axis = mask.ndim, self.axis
        _mask_shape(self, tuple(x.shape), tuple(mask.shape), axis)
        rows = xp.reshape(x, tuple(x.shape[:axis]) + (-1,) + tuple(x.shape[axis + k:]))
        picked = xp.nonzero(xp.reshape(mask, (-1,)))[0]
        return xp.take(rows, xp.astype(picked, _index_dtype(xp)), axis=axis)

    def infer_shape(self, x, mask):
        if x is None or mask is None:
            return None
        _mask_shape(self, x, mask, self.axis)
        return tuple(x[:self.axis]) + (None,) + tuple(x[self.axis + len(mask):])

    def infer_dtype(self, x, mask):
        if mask is not None and dtype_name(mask) != "bool":
            raise TypeError(f"{self.label}: the mask must be bool, got {dtype_name(mask)}; "
                            "compare it first (mask > 0)")
        return x

    def backward(self, grad):
        x, mask = self.inputs
        return [BooleanMaskGrad(grad, mask, x, self.axis), None]


class BooleanMaskGrad(Operation):
    """grad's slices put back where the mask holds, zeros elsewhere, in x's shape: each
    masked-in position takes the slice numbered by the mask's running count (no scatter)."""

    fresh = True
    shape_only = (2,)

    def __init__(self, grad, mask, x, axis, name=None):
        self.axis = axis
        super().__init__(grad, mask, x, name=name)

    def forward(self, xp, grad, mask, x):
        axis, k = self.axis, mask.ndim
        rows_shape = tuple(x.shape[:axis]) + (-1,) + tuple(x.shape[axis + k:])
        if grad.shape[axis] == 0:
            return xp.zeros(tuple(x.shape), dtype=grad.dtype, device=array_api_compat.device(grad))
        flat = xp.reshape(mask, (-1,))
        count = xp.cumulative_sum(xp.astype(flat, _index_dtype(xp)))
        taken = xp.take(grad, xp.where(flat, count - 1, 0), axis=axis)
        keep = xp.reshape(flat, (1,) * axis + (-1,) + (1,) * (len(rows_shape) - axis - 1))
        return xp.reshape(xp.where(keep, taken, xp.zeros_like(taken)), tuple(x.shape))

    def infer_shape(self, grad, mask, x):
        return x

    def infer_dtype(self, grad, mask, x):
        return grad

    def backward(self, grad):
        return [BooleanMask(grad, self.inputs[1], self.axis), None, None]


class WhereIndices(Operation):
    """The indices of the true (nonzero) entries of x, one row each in row-major order:
    shape (run-time count, rank of x), int64 (TF1's ``where`` with one argument; the index
    dtype, int32, on JAX without x64, as ``argmax``)."""

    fresh = True

    def forward(self, xp, x):
        if x.ndim == 0:
            raise ValueError(f"{self.label}: where(condition) of a scalar; give it an axis")
        found = xp.nonzero(x)
        return xp.stack([xp.astype(i, _index_dtype(xp)) for i in found], axis=1)

    def infer_shape(self, shape):
        return None if shape is None else (None, len(shape))

    def infer_dtype(self, dtype):
        return "int64"

    def backward(self, grad):
        return [None]


class InTopK(Operation):
    """Whether each row's ``targets`` entry is among its ``k`` largest ``predictions``
    (bool); ties at the boundary count as in, a non-finite prediction or a target outside
    the row as out (TF1's ``in_top_k``)."""

    fresh = True

    def __init__(self, predictions, targets, k, name=None):
        if not isinstance(k, int) or isinstance(k, bool):
            raise TypeError(f"in_top_k: k must be a Python int, got {k!r}")
        self.k = k
        super().__init__(predictions, targets, name=name)

    def forward(self, xp, predictions, targets):
        n = predictions.shape[-1]
        index = xp.astype(targets, _index_dtype(xp))
        inside = (index >= 0) & (index < n)
        target = xp.take_along_axis(predictions, xp.where(inside, index, 0)[:, None], axis=-1)
        above = xp.sum(xp.astype(predictions > target, _index_dtype(xp)), axis=-1)
        return inside & xp.isfinite(target[:, 0]) & (above < self.k)

    def infer_shape(self, predictions, targets):
        if predictions is not None and len(predictions) != 2:
            raise ValueError(f"{self.label}: predictions must be (batch, classes), got shape "
                             f"{tuple(predictions)}")
        return None if predictions is None else predictions[:1]

    def infer_dtype(self, predictions, targets):
        if targets is not None and not dtype_name(targets).startswith(("int", "uint")):
            raise TypeError(f"{self.label}: targets must be class indices (integers), got "
                            f"{dtype_name(targets)}")
        return "bool"

    def backward(self, grad):
        return [None, None]


class SegmentSum(ScatterAdd):
    """TF1's ``segment_sum``: ``out[j]`` sums the slices of data whose segment id is j, for
    j up to the largest id (read at run time), data shaped ``ids.shape + rest``."""

    def forward_with(self, xp, add_rows, data, ids):
        flat = xp.reshape(ids, (-1,))
        n = int(xp.max(flat)) + 1 if flat.shape[0] else 0
        check_range(self, xp, flat, n, "segment_ids")
        rest = tuple(data.shape[ids.ndim:])
        rows = xp.reshape(data, (flat.shape[0], math.prod(rest)))
        return xp.reshape(add_rows(xp, rows, flat, n), (n,) + rest)

    def infer_shape(self, data, ids):
        return None if data is None or ids is None else (None,) + tuple(data[len(ids):])

    def infer_dtype(self, data, ids):
        if ids is not None and not dtype_name(ids).startswith(("int", "uint")):
            raise TypeError(f"{self.label}: segment_ids must be integers, got "
                            f"{dtype_name(ids)}")
        return data

    def backward(self, grad):
        return [Gather(grad, self.inputs[1], 0), None]


def boolean_mask(x, mask, axis=0, name=None):
    """The slices of x where ``mask`` (bool, the shape of x's axes ``axis``..) holds, as
    one axis of run-time length; the gradient puts them back, zeros elsewhere."""
    return BooleanMask(x, mask, axis, name=name)


def where_indices(condition, name=None):
    """The indices (int64 rows) of the true entries of ``condition``."""
    return WhereIndices(condition, name=name)


def segment_sum(data, segment_ids, name=None):
    """The sums of data's slices by (sorted, non-negative) segment id; as many rows as the
    largest id + 1."""
    return SegmentSum(data, _indices(segment_ids), name=name)


def in_top_k(predictions, targets, k, name=None):
    """Whether ``targets[i]`` is among the k largest of ``predictions[i]``, as bool."""
    return InTopK(predictions, targets, k, name=name)


__all__ = ["BooleanMask", "BooleanMaskGrad", "WhereIndices", "InTopK", "boolean_mask",
           "where_indices", "in_top_k", "SegmentSum", "segment_sum"]
