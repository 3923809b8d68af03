"""More primitive math, TensorFlow 1's: ``pow`` with any exponent (and ``**``), ``floor``,
``cast``, ``identity``, ``stop_gradient``, ``reduce_min``, ``reduce_prod`` and ``argmin``.
Each op is a small class and a lowercase function, as in ``ops``.

>>> import xpnn as xn
>>> from xpnn import math_ops
>>> x = xn.Variable([1.0, 2.0])
>>> y = xn.reduce_sum(x ** 3.0)
>>> xn.Session().run(xn.gradients(y, [x])[0]).tolist()
[3.0, 12.0]
"""

from __future__ import annotations

from . import ops
from .dtypes import dtype_name, is_floating
from .graph import Constant, Node, as_node
from .ops import Binary, Flat, Reduction, Unary, multiply, sum_to


def xp_dtype(xp, name):
    """The namespace's dtype object of that name ("float32" -> ``xp.float32``)."""
    return getattr(xp, dtype_name(name))


class Pow(Binary):
    """a ** b elementwise; the exponent's gradient is log(a) a^b where a > 0, else 0 (TF1's)."""

    function = "pow"

    def backward(self, grad):
        a, b = self.inputs
        d_a = multiply(grad, multiply(b, Pow(a, ops.subtract(b, 1.0))))
        if isinstance(b, Constant):
            return [sum_to(d_a, a), None]
        log_a = PositiveLog(a)
        return [sum_to(d_a, a), sum_to(multiply(grad, multiply(self, log_a)), b)]


class PositiveLog(Unary):
    """log(x) where x > 0, else 0 (the exponent's factor in Pow's gradient)."""

    fresh = True

    def forward(self, xp, x):
        positive = x > 0
        return xp.where(positive, xp.log(xp.where(positive, x, 1.0)), 0.0)

    def backward(self, grad):
        return [PositiveLogGrad(grad, self.inputs[0])]


class PositiveLogGrad(ops.Elementwise):
    """grad / x where x > 0, else 0."""

    def forward(self, xp, grad, x):
        positive = x > 0
        return xp.where(positive, grad / xp.where(positive, x, 1.0), 0.0)


class Floor(Flat):
    function = "floor"


class Ceil(Flat):
    function = "ceil"


class Round(Flat):
    """To the nearest integer, halves to even (TF1's ``round``)."""

    function = "round"


class Cast(Unary):
    """x in ``dtype``: floats to integers truncate toward zero, as in TF1; the gradient
    flows between floating dtypes only."""

    fresh = True
    holds_dtype = True  # JAX without x64 would make an int64 cast int32: refused instead

    def __init__(self, x, dtype, name=None):
        self.target = dtype_name(dtype)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        return xp.astype(x, xp_dtype(xp, self.target))

    def infer_dtype(self, dtype):
        return self.target

    def backward(self, grad):
        x = self.inputs[0]
        if not is_floating(self.target) or (x.dtype is not None and not is_floating(x.dtype)):
            return [None]
        return [CastLike(grad, x)]


class CastLike(ops.ShapedLike):
    """grad in the dtype of ``like`` (read for its dtype only)."""

    fresh = True

    def forward(self, xp, grad, like):
        return grad if grad.dtype == like.dtype else xp.astype(grad, like.dtype)

    def infer_shape(self, grad, like):
        return grad

    def infer_dtype(self, grad, like):
        return like

    def backward(self, grad):
        return [CastLike(grad, self.inputs[0]), None]


class Identity(Unary):
    """x itself; the gradient passes through."""

    def forward(self, xp, x):
        return x

    def backward(self, grad):
        return [grad]


class StopGradient(Unary):
    """x itself, as a constant for differentiation: no gradient flows through it."""

    def forward(self, xp, x):
        return x

    def backward(self, grad):
        return [None]


class ReduceMin(Reduction):
    def forward(self, xp, x):
        return xp.min(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        mask = ops.GreaterEqual(self.expand(self), x)  # ties share the gradient equally
        count = ops.ReduceSum(mask, self.axis, self.keepdims)
        return [multiply(mask, self.expand(ops.divide(grad, count)))]


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
        ops.Operation.__init__(self, grad, x)

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


class ArgMin(ops.ArgMax):
    """Index of the smallest entry along one axis (int64; no gradient)."""

    def forward(self, xp, x):
        return xp.argmin(x, axis=self.axis[0])


def pow(x, y, name=None):  # noqa: A001 - TF1's name
    """x ** y elementwise, any exponent (``**`` on nodes too).

    >>> import xpnn as xn
    >>> from xpnn import math_ops
    >>> xn.Session().run(math_ops.pow([2.0, 4.0], 0.5)).tolist()
    [1.4142135381698608, 2.0]
    """
    return Pow(x, y, name=name)


def _power(x, power):
    """``x ** power``: squares and square roots by their own ops (exact and cheap), any
    other exponent by Pow."""
    if not isinstance(power, Node) and power == 2:
        return ops.square(x)
    if not isinstance(power, Node) and power == 0.5:
        return ops.sqrt(x)
    return Pow(x, power)


def _attach_operators():
    """``x ** y`` and ``2.0 ** x`` build Pow nodes (``ops`` attaches the other operators)."""
    Node.__pow__ = _power
    Node.__rpow__ = lambda self, base: Pow(as_node(base, self.graph, self.dtype), self)


_attach_operators()


def floor(x, name=None):
    """The largest integer <= x, elementwise (no gradient)."""
    return Floor(x, name=name)


def ceil(x, name=None):
    """The smallest integer >= x, elementwise (no gradient)."""
    return Ceil(x, name=name)


def round(x, name=None):  # noqa: A001 - TF1's name
    """x rounded to the nearest integer, halves to even (no gradient)."""
    return Round(x, name=name)


def cast(x, dtype, name=None):
    """x converted to ``dtype`` (any spelling: "int32", ``numpy.float64``...).

    >>> import xpnn as xn
    >>> from xpnn import math_ops
    >>> xn.Session().run(math_ops.cast(xn.constant([1.7, -1.7]), "int32")).tolist()
    [1, -1]
    """
    return Cast(x, dtype, name=name)


def identity(x, name=None):
    """x itself, as a new node (a name to fetch it by)."""
    return Identity(x, name=name)


def stop_gradient(x, name=None):
    """x, with no gradient flowing into it.

    >>> import xpnn as xn
    >>> from xpnn import math_ops
    >>> w = xn.Variable(3.0)
    >>> y = w * math_ops.stop_gradient(w)
    >>> xn.Session().run(xn.gradients(y, [w])[0]).item()
    3.0
    """
    return StopGradient(x, name=name)


def reduce_min(x, axis=None, keepdims=False, name=None):
    """Min over ``axis``; ties share the gradient."""
    return ReduceMin(x, axis, keepdims, name=name)


def reduce_prod(x, axis=None, keepdims=False, name=None):
    """Product over ``axis``; the gradient is right where entries are zero.

    >>> import xpnn as xn
    >>> from xpnn import math_ops
    >>> x = xn.Variable([2.0, 0.0, 3.0])
    >>> xn.Session().run(xn.gradients(math_ops.reduce_prod(x), [x])[0]).tolist()
    [0.0, 6.0, 0.0]
    """
    return ReduceProd(x, axis, keepdims, name=name)


def argmin(x, axis=-1, name=None):
    """Index of the min along ``axis`` (int64; no gradient)."""
    return ArgMin(x, axis, name=name)


__all__ = ["pow", "floor", "ceil", "round", "cast", "identity", "stop_gradient", "reduce_min",
           "reduce_prod", "argmin", "Pow", "Floor", "Ceil", "Round", "Cast", "Identity",
           "StopGradient", "ReduceMin", "ReduceProd", "ArgMin", "xp_dtype"]
