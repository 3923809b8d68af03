"""Reductions over axes: ``reduce_sum``, ``reduce_mean``, ``reduce_max``, ``reduce_min``,
``reduce_prod``, ``reduce_all``, ``reduce_any``, ``argmax``/``argmin`` and ``logsumexp``,
with the scan beside them (``cumsum``);
and their common base ``Reduction``, here with ``BroadcastBack`` (the gradient that spreads
a reduced value back over its axes, whose own gradient is a sum or a mean again).

>>> import xpnn as xn
>>> x = xn.Variable([2.0, 0.0, 3.0])
>>> xn.Session().run(xn.gradients(xn.reduce_prod(x), [x])[0]).tolist()
[0.0, 6.0, 0.0]
"""

from __future__ import annotations

import math

from ..dtypes import dtype_name
from ..graph import Node, Operation
from .arithmetic import GreaterEqual, divide, exp, multiply, subtract
from .core import ShapedLike, Unary, _index_dtype, _normalize_axis, _reduced_shape


class Reduction(Operation):
    fresh = True

    def __init__(self, x, axis=None, keepdims=False, name=None):
        self.axis, self.keepdims = _normalize_axis(axis), keepdims
        super().__init__(x, name=name)

    def infer_shape(self, shape):
        if shape is not None and self.axis is not None:
            for a in self.axis:
                if not -len(shape) <= a < len(shape):
                    raise ValueError(f"{self.label}: axis {a} is out of range for shape {shape}")
        return _reduced_shape(shape, self.axis, self.keepdims)

    def infer_dtype(self, dtype):
        return dtype

    def expand(self, grad: Node, mean=False) -> Node:
        """``grad`` (shaped like this reduction) broadcast back to the input's shape."""
        return BroadcastBack(grad, self.inputs[0], self.axis, self.keepdims, mean)


class ReduceSum(Reduction):
    def forward(self, xp, x):
        if xp.isdtype(x.dtype, "integral"):  # NumPy would widen int32 to int64
            return xp.sum(x, axis=self.axis, keepdims=self.keepdims, dtype=x.dtype)
        return xp.sum(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        return [self.expand(grad)]


class ReduceMean(Reduction):
    """The mean; of integers, TF1's integer mean: summed without overflow (in int64), then
    divided truncating toward zero, in the input's dtype (``[1, 2]`` -> 1, ``[-1, -2]`` ->
    -1) on every backend."""

    def infer_dtype(self, dtype):
        if dtype == "bool":
            raise TypeError(self._no_bool)
        return dtype

    @property
    def _no_bool(self) -> str:
        return (f"{self.label}: reduce_mean of bool values (TF1 has none either); cast them "
                "first, e.g. xn.cast(x, 'float32') for the fraction that is True")

    def forward(self, xp, x):
        if x.dtype == xp.bool:  # an untyped placeholder fed bools
            raise TypeError(self._no_bool)
        if xp.isdtype(x.dtype, "integral"):
            return _integer_mean(xp, x, self.axis, self.keepdims)
        return xp.mean(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        return [self.expand(grad, mean=True)]


def _integer_mean(xp, x, axis, keepdims):
    """TF1's mean of integers (``ReduceMean``), its sum in the namespace's default integer,
    as TF sums int32 in int64: exact, but for int64 sums past its range (which wrap, as in
    TF) and, on JAX without x64 (no int64), int32 sums past 2**31."""
    count = math.prod(x.shape[a] for a in (range(x.ndim) if axis is None else axis))
    if count == 0:
        raise ValueError(f"reduce_mean of {dtype_name(x.dtype)} values over an empty axis "
                         f"(shape {tuple(x.shape)}): an integer mean of nothing has no value")
    wide = _index_dtype(xp, "integral")
    if xp.iinfo(x.dtype).bits >= xp.iinfo(wide).bits:
        wide = x.dtype
    total = xp.sum(x, axis=axis, keepdims=keepdims, dtype=wide)
    mean = total // count  # floors; TF (C++) truncates toward zero
    if xp.isdtype(wide, "signed integer"):
        mean = xp.where((total < 0) & (mean * count != total), mean + 1, mean)
    return xp.astype(mean, x.dtype)


class ReduceMax(Reduction):
    def forward(self, xp, x):
        return xp.max(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        mask = GreaterEqual(x, self.expand(self))  # ties share the gradient equally
        count = ReduceSum(mask, self.axis, self.keepdims)
        return [multiply(mask, self.expand(divide(grad, count)))]


class BroadcastBack(ShapedLike):
    """Undo a reduction's shape change: re-insert reduced axes, broadcast to ``like``."""

    def __init__(self, grad, like, axis, keepdims, mean=False):
        self.axis, self.keepdims, self.mean = axis, keepdims, mean
        super().__init__(grad, like)

    def forward(self, xp, grad, like):
        axes = range(like.ndim) if self.axis is None else [a % like.ndim for a in self.axis]
        if not self.keepdims:
            grad = xp.reshape(grad, tuple(1 if i in axes else d for i, d in enumerate(like.shape)))
        if self.mean:
            grad = grad / float(math.prod(like.shape[i] for i in axes))
        return xp.broadcast_to(grad, like.shape)

    def backward(self, grad):
        # The adjoint of "spread each value over the reduced axes (/ count)".
        reduce = ReduceMean if self.mean else ReduceSum
        return [reduce(grad, self.axis, self.keepdims), None]


class ReduceMin(Reduction):
    def forward(self, xp, x):
        return xp.min(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        mask = GreaterEqual(self.expand(self), x)  # ties share the gradient equally
        count = ReduceSum(mask, self.axis, self.keepdims)
        return [multiply(mask, self.expand(divide(grad, count)))]


class ReduceProd(Reduction):
    def forward(self, xp, x):
        if xp.isdtype(x.dtype, "integral"):  # in the input's dtype, as the static one says
            return xp.prod(x, axis=self.axis, keepdims=self.keepdims, dtype=x.dtype)
        return xp.prod(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        return [ReduceProdGrad(self.expand(grad), self.inputs[0], self.axis)]


class ReduceProdGrad(Reduction):
    """grad times the product of the other entries of each reduced group, right where the
    group holds zeros (one zero: only it gets a gradient; two or more: none)."""

    fresh = True

    def __init__(self, grad, x, axis):
        self.axis, self.keepdims = axis, True
        Operation.__init__(self, grad, x)

    def forward(self, xp, grad, x):
        zero = x == 0
        zeros = xp.sum(xp.astype(zero, x.dtype), axis=self.axis, keepdims=True)
        others = xp.prod(xp.where(zero, 1.0, x), axis=self.axis, keepdims=True)
        safe = xp.where(zero, 1.0, x)
        share = xp.where(zeros == 0, others / safe, xp.where(zero, others, 0.0))
        return grad * xp.where(zeros > 1, 0.0, share)

    def infer_shape(self, grad, x):
        return x

    def infer_dtype(self, grad, x):
        return x

    def backward(self, grad):
        raise NotImplementedError("second derivatives of reduce_prod are not implemented")


class ReduceAll(Reduction):
    """Whether every entry over ``axis`` is true (``reduce_all(x, axis=None, keepdims=False,
    name=None)``)."""

    def forward(self, xp, x):
        return xp.all(x, axis=self.axis, keepdims=self.keepdims)

    def infer_dtype(self, dtype):
        return "bool"

    def backward(self, grad):
        return [None]


class ReduceAny(ReduceAll):
    """Whether any entry over ``axis`` is true (``reduce_any``)."""

    def forward(self, xp, x):
        return xp.any(x, axis=self.axis, keepdims=self.keepdims)


class ArgMax(Reduction):
    """Index of the largest entry along one axis (int64; no gradient)."""

    def __init__(self, x, axis=-1, name=None):
        if not isinstance(axis, int):
            raise ValueError(f"argmax takes one integer axis, got {axis!r}")
        super().__init__(x, axis, False, name=name)

    def forward(self, xp, x):
        return xp.argmax(x, axis=self.axis[0])

    def infer_dtype(self, dtype):
        return "int64"

    def backward(self, grad):
        return [None]


class ArgMin(ArgMax):
    """Index of the smallest entry along one axis (int64; no gradient)."""

    def forward(self, xp, x):
        return xp.argmin(x, axis=self.axis[0])


def _stable_max(xp, x, axis):
    """max over ``axis`` (kept), with non-finite maxima replaced by 0 so that
    x - m never computes inf - inf."""
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0.0)


def _logsumexp(xp, x, axis=-1):
    """log(sum(exp(x))) over ``axis``, kept."""
    m = _stable_max(xp, x, axis)
    return xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m


class LogSumExp(Reduction):
    def forward(self, xp, x):
        out = _logsumexp(xp, x, self.axis)
        if not self.keepdims:
            out = xp.reshape(out, _reduced_shape(tuple(x.shape), self.axis or None, False))
        return out

    def backward(self, grad):
        x = self.inputs[0]
        return [multiply(self.expand(grad), exp(subtract(x, self.expand(self))))]


class Cumsum(Unary):
    """TF1's ``cumsum``: running sums along ``axis``; ``exclusive``: each leaves its own
    entry out; ``reverse``: sums from the end. The gradient is the cumsum of the gradient
    the other way round."""

    fresh = True

    def __init__(self, x, axis=0, exclusive=False, reverse=False, name=None):
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"cumsum: axis must be a Python int, got {axis!r}")
        self.axis, self.exclusive, self.reverse = axis, bool(exclusive), bool(reverse)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        axis = self._axis(x.ndim)
        if self.reverse:
            x = xp.flip(x, axis=axis)
        out = xp.cumulative_sum(x, axis=axis, dtype=x.dtype, include_initial=self.exclusive)
        if self.exclusive:
            out = out[(slice(None),) * axis + (slice(0, x.shape[axis]), ...)]
        return xp.flip(out, axis=axis) if self.reverse else out

    def _axis(self, ndim):
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"{self.label}: axis {self.axis} is out of range for an input of "
                             f"rank {ndim}")
        return self.axis % ndim

    def infer_shape(self, shape):
        if shape is not None:
            self._axis(len(shape))
        return shape

    def infer_dtype(self, dtype):
        if dtype == "bool":
            raise TypeError(f"{self.label}: cumsum of bool values; cast them to a number type")
        return dtype

    def backward(self, grad):
        return [Cumsum(grad, self.axis, self.exclusive, not self.reverse)]


def reduce_sum(x, axis=None, keepdims=False, name=None):
    """Sum over ``axis`` (an int, a tuple, or None for all).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.reduce_sum([[1.0, 2.0], [3.0, 4.0]], axis=1)).tolist()
    [3.0, 7.0]
    """
    return ReduceSum(x, axis, keepdims, name=name)


def reduce_mean(x, axis=None, keepdims=False, name=None):
    """Mean over ``axis``."""
    return ReduceMean(x, axis, keepdims, name=name)


def reduce_max(x, axis=None, keepdims=False, name=None):
    """Max over ``axis``; ties share the gradient."""
    return ReduceMax(x, axis, keepdims, name=name)


def reduce_min(x, axis=None, keepdims=False, name=None):
    """Min over ``axis``; ties share the gradient."""
    return ReduceMin(x, axis, keepdims, name=name)


def reduce_prod(x, axis=None, keepdims=False, name=None):
    """Product over ``axis``; the gradient is right where entries are zero.

    >>> import xpnn as xn
    >>> x = xn.Variable([2.0, 0.0, 3.0])
    >>> xn.Session().run(xn.gradients(xn.ops.reduce_prod(x), [x])[0]).tolist()
    [0.0, 6.0, 0.0]
    """
    return ReduceProd(x, axis, keepdims, name=name)


reduce_all = ReduceAll  # TF1's functions are these ops' constructors: (x, axis, keepdims, name)


reduce_any = ReduceAny


def argmax(x, axis=-1, name=None):
    """Index of the max along ``axis`` (no gradient).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.argmax([[0.1, 0.9], [0.8, 0.2]])).tolist()
    [1, 0]
    """
    return ArgMax(x, axis, name=name)


def argmin(x, axis=-1, name=None):
    """Index of the min along ``axis`` (int64; no gradient)."""
    return ArgMin(x, axis, name=name)


def logsumexp(x, axis=None, keepdims=False, name=None):
    """log(sum(exp(x))) over ``axis``, stable for large |x|.

    >>> import xpnn as xn
    >>> round(xn.Session().run(xn.logsumexp([1e4, 1e4])).item(), 3)
    10000.693
    """
    return LogSumExp(x, axis, keepdims, name=name)


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None):
    """TF1's ``cumsum``: running sums along ``axis``, each without its own entry where
    ``exclusive``, from the end where ``reverse``.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.cumsum([1.0, 2.0, 3.0], exclusive=True, reverse=True)).tolist()
    [5.0, 3.0, 0.0]
    """
    return Cumsum(x, axis, exclusive, reverse, name=name)


__all__ = ["Reduction", "ReduceSum", "ReduceMean", "ReduceMax", "BroadcastBack", "ReduceMin",
           "ReduceProd", "ReduceProdGrad", "ReduceAll", "ReduceAny", "ArgMax", "ArgMin",
           "LogSumExp", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod",
           "reduce_all", "reduce_any", "argmax", "argmin", "logsumexp", "Cumsum", "cumsum"]
