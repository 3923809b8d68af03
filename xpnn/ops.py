"""Primitive ops. Each is a small class with ``forward(xp, *values)`` (portable array-API
code) and ``backward(grad)`` (graph nodes built from these same ops), plus the lowercase
function users call.

>>> import xpnn as xn
>>> x = xn.Variable([1.0, 4.0])
>>> y = xn.reduce_sum(xn.sqrt(x) * 2.0)
>>> xn.Session().run([y, xn.gradients(y, [x])[0]], to_numpy=True)[1].tolist()
[1.0, 0.5]
"""

from __future__ import annotations

import math

import array_api_compat

from .devices import indicator
from .dtypes import dtype_name
from .graph import Constant, Node, Operation, as_node

# --------------------------------------------------------------------------- shapes


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


# --------------------------------------------------------------------------- elementwise


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


class Add(Binary):
    function = "add"

    def backward(self, grad):
        a, b = self.inputs
        return [sum_to(grad, a), sum_to(grad, b)]


class Subtract(Binary):
    function = "subtract"

    def backward(self, grad):
        a, b = self.inputs
        return [sum_to(grad, a), sum_to(negative(grad), b)]


class Multiply(Binary):
    function = "multiply"

    def backward(self, grad):
        a, b = self.inputs
        return [sum_to(multiply(grad, b), a), sum_to(multiply(grad, a), b)]


class Divide(Binary):
    """a / b. Integers divide as TF1's truediv on every backend: both cast first to float32
    (8- and 16-bit inputs) or float64 (wider ones), the static dtype saying so."""

    function = "divide"
    holds_dtype = True  # float64 from int32 inputs: refused where the device has none

    def forward(self, xp, a, b):
        target = _truediv_dtype(a.dtype, b.dtype)
        if target is None:
            return super().forward(xp, a, b)
        target = getattr(xp, target)
        return xp.divide(xp.astype(a, target), xp.astype(b, target))

    def infer_dtype(self, a, b):
        return _truediv_dtype(a, b) or super().infer_dtype(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return [sum_to(divide(grad, b), a), sum_to(negative(divide(multiply(grad, self), b)), b)]


def _truediv_dtype(a, b) -> str | None:
    """TF1's truediv dtype for integer (or bool) inputs of dtypes ``a`` and ``b``; None
    where either is floating or unknown."""
    if a is None or b is None or not (_integer(a) and _integer(b)):
        return None
    names = dtype_name(a), dtype_name(b)
    bits = max(8 if n == "bool" else int(n.lstrip("uint")) for n in names)
    return "float32" if bits <= 16 else "float64"


def _integer(dtype) -> bool:
    name = dtype_name(dtype)
    return name == "bool" or name.lstrip("u").startswith("int")


class Maximum(Binary):
    function = "maximum"

    def backward(self, grad):
        a, b = self.inputs
        mask = GreaterEqual(a, b)  # ties send the gradient to the first input
        return [sum_to(multiply(grad, mask), a), sum_to(multiply(grad, subtract(1.0, mask)), b)]


class Minimum(Binary):
    function = "minimum"

    def backward(self, grad):
        a, b = self.inputs
        mask = GreaterEqual(b, a)
        return [sum_to(multiply(grad, mask), a), sum_to(multiply(grad, subtract(1.0, mask)), b)]


class GreaterEqual(Binary):
    """1.0 where a >= b else 0.0, in the inputs' floating dtype (a mask; no gradient)."""

    function = "greater_equal"

    def forward(self, xp, a, b):
        a, b = _match(xp, a, b)
        return indicator(xp, xp.greater_equal(a, b), xp.result_type(a, b))

    def backward(self, grad):
        return [None, None]


class Equal(Binary):
    """1.0 where a == b else 0.0 as float32 (counting correct predictions; no gradient)."""

    function = "equal"

    def forward(self, xp, a, b):
        return xp.astype(super().forward(xp, a, b), xp.float32)

    def infer_dtype(self, *dtypes):
        return "float32"

    def backward(self, grad):
        return [None, None]


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


class Negative(Unary):
    function = "negative"
    fresh = True

    def backward(self, grad):
        return [negative(grad)]


class Exp(Unary):
    function = "exp"
    fresh = True

    def backward(self, grad):
        return [multiply(grad, self)]


class Log(Unary):
    function = "log"
    fresh = True

    def backward(self, grad):
        return [divide(grad, self.inputs[0])]


class Sqrt(Unary):
    function = "sqrt"
    fresh = True

    def backward(self, grad):
        return [divide(grad, multiply(2.0, self))]


class Square(Unary):
    function = "square"
    fresh = True

    def backward(self, grad):
        return [multiply(grad, multiply(2.0, self.inputs[0]))]


class Abs(Unary):
    function = "abs"
    fresh = True

    def backward(self, grad):
        return [multiply(grad, Sign(self.inputs[0]))]


class Sign(Flat):
    function = "sign"


def _clip(xp, x, low, high):
    """x limited to [low, high] (Python floats, or None for no bound) by maximum and minimum:
    array-api-compat's clip selects with boolean masks on CuPy, and each one synchronises
    the GPU. NaN stays NaN, as with clip."""
    if low is None and high is None:
        return xp.asarray(x, copy=True)
    if low is not None:
        x = xp.maximum(x, low)
    return x if high is None else xp.minimum(x, high)


class Clip(Unary):
    fresh = True

    def __init__(self, x, low, high, name=None):
        # Python floats: the standard's functions take scalars, not NumPy ones.
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        return _clip(xp, x, self.low, self.high)

    def backward(self, grad):
        return [multiply(grad, InRange(self.inputs[0], self.low, self.high))]


class InRange(Clip):
    """1.0 where low <= x <= high (the mask of Clip's gradient)."""

    def forward(self, xp, x):
        inside = x == x if self.low is None else x >= self.low
        if self.high is not None:
            inside = xp.logical_and(inside, x <= self.high)
        return xp.astype(inside, x.dtype)

    def backward(self, grad):
        return [None]


class Relu(Unary):
    fresh = True

    def forward(self, xp, x):
        return xp.maximum(x, 0.0)

    def backward(self, grad):
        return [ReluGrad(grad, self)]


class ReluGrad(Elementwise):
    """grad times the mask (y > 0) of the ReLU's output y. A multiplication, not a select:
    it is much faster on NumPy (benchmarks/README.md), and a NaN gradient stays NaN."""

    def forward(self, xp, grad, y):
        return grad * indicator(xp, y > 0, grad.dtype)

    def backward(self, grad):
        return [ReluGrad(grad, self.inputs[1]), None]


class LeakyRelu(Unary):
    """x where x > 0, else alpha x (TF1's leaky_relu)."""

    fresh = True

    def __init__(self, x, alpha=0.2, name=None):
        self.alpha = float(alpha)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        return xp.where(x > 0, x, self.alpha * x)

    def backward(self, grad):
        return [LeakyReluGrad(grad, self.inputs[0], self.alpha)]


class LeakyReluGrad(Elementwise):
    """grad where x > 0, else alpha grad (TF1's: at 0 the slope is alpha)."""

    def __init__(self, grad, x, alpha, name=None):
        self.alpha = alpha
        super().__init__(grad, x, name=name)

    def forward(self, xp, grad, x):
        return xp.where(x > 0, grad, self.alpha * grad)

    def backward(self, grad):
        return [LeakyReluGrad(grad, self.inputs[1], self.alpha), None]


class _DropoutMask(Operation):
    """What both dropout masks share: a random op shaped like x, read for its shape only,
    with no gradient (the mask multiplies x, whose product carries it)."""

    random = True
    shape_only = (0,)
    fresh = True

    def sample(self, generator, shape):
        return generator.random(shape)

    def infer_shape(self, x, rate_or_training):
        return x

    def infer_dtype(self, x, rate_or_training):
        return x

    def backward(self, grad):
        return [None, None]


class DropoutMask(_DropoutMask):
    """1 / (1 - rate) where a uniform draw is >= rate, else 0 (shaped like x, in its dtype);
    all ones where ``training`` is false. A random op: a new mask every run."""

    def __init__(self, x, training, rate, name=None):
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"dropout: rate must lie in [0, 1), got {rate}")
        super().__init__(x, training, name=name)

    def forward(self, xp, x, training, draw):
        dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float32
        u = draw(self, x.shape, dtype)
        keep = indicator(xp, u >= self.rate, dtype) / (1.0 - self.rate)
        if training.ndim != 0:
            raise ValueError(f"{self.label}: training must be a scalar boolean, got shape "
                             f"{tuple(training.shape)}")
        return xp.where(training, keep, xp.ones_like(keep))


class DropoutMaskOf(_DropoutMask):
    """DropoutMask with a rate that is a graph node (a scalar placeholder, TF1's
    ``keep_prob`` fed 0.5 to train and 1.0 to test): 1 / (1 - rate) where a uniform draw is
    >= rate, else 0. A rate outside [0, 1) fails the run where the device reads it for free
    (``host_reads``); elsewhere (CuPy, CUDA tensors, a jitted JAX plan) the mask is NaN, as
    a bad label's row is, with no synchronisation."""

    reads_values = True

    def forward(self, xp, x, rate, draw, host_reads=True):
        if rate.ndim != 0:
            raise ValueError(f"{self.label}: the dropout rate must be a scalar, got shape "
                             f"{tuple(rate.shape)}")
        valid = xp.logical_and(rate >= 0, rate < 1)
        if host_reads and not bool(valid):
            raise ValueError(f"{self.label}: the dropout rate must lie in [0, 1), got "
                             f"{float(rate)}")
        dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float32
        rate = xp.astype(rate, dtype)
        if not host_reads:  # unread, 1.5 would give a mask of -0.0, -1 one of 0.5: NaN instead
            rate = xp.where(valid, rate, math.nan)
        return indicator(xp, draw(self, x.shape, dtype) >= rate, dtype) / (1.0 - rate)


class Sigmoid(Unary):
    fresh = True

    def forward(self, xp, x):
        # exp(x - log(1 + e^x)): logaddexp never overflows and keeps precision on both sides
        # (a few ulp), so sigmoid(-1e4) is exactly 0 and sigmoid(1e4) exactly 1.
        return xp.exp(x - xp.logaddexp(0.0, x))

    def backward(self, grad):
        return [SigmoidGrad(grad, self)]


class SigmoidGrad(Elementwise):
    """grad * y * (1 - y) for y = sigmoid(x)."""

    def forward(self, xp, grad, y):
        return grad * (y * (1.0 - y))

    def backward(self, grad):
        g, y = self.inputs
        dy = multiply(grad, multiply(g, subtract(1.0, multiply(2.0, y))))
        return [SigmoidGrad(grad, y), dy]


class Tanh(Unary):
    function = "tanh"
    fresh = True

    def backward(self, grad):
        return [multiply(grad, subtract(1.0, square(self)))]


def nonfinite(xp, x) -> str | None:
    """What is not finite in a floating array ("2 NaN and 1 inf in float32 shape (2, 3)"), or
    None when every entry is finite (or the array is not floating)."""
    if not xp.isdtype(x.dtype, "real floating") or bool(xp.all(xp.isfinite(x))):
        return None
    nans = int(xp.sum(xp.astype(xp.isnan(x), xp.int64)))
    infs = int(xp.sum(xp.astype(xp.isinf(x), xp.int64)))
    dtype = dtype_name(x.dtype)
    return f"{nans} NaN and {infs} inf in {dtype} shape {tuple(x.shape)}"


class CheckNumerics(Unary):
    """x unchanged, after checking that it holds no NaN or infinity (TF1's check_numerics)."""

    def __init__(self, x, message, name=None):
        self.message = str(message)
        super().__init__(x, name=name)

    def forward(self, xp, x):
        problem = nonfinite(xp, x)
        if problem is not None:
            raise FloatingPointError(f"{self.message}: {problem}")
        return x

    def backward(self, grad):
        return [CheckNumerics(grad, "Not a number (NaN) or infinity (Inf) values detected in "
                                    f"gradient. {self.message}")]


# --------------------------------------------------------------------------- matmul


class MatMul(Operation):
    """NumPy's matmul: 1-D operands are promoted and the added axis removed."""

    fresh = True

    def forward(self, xp, a, b):
        return xp.matmul(a, b)

    def infer_shape(self, a, b):
        if a is None or b is None:
            return None
        if len(a) == 0 or len(b) == 0:
            raise ValueError(f"{self.label}: matmul needs operands of rank >= 1, got {a} @ {b}")
        k_a = a[-1]
        k_b = b[0] if len(b) == 1 else b[-2]
        if k_a is not None and k_b is not None and k_a != k_b:
            raise ValueError(
                f"{self.label}: matmul shapes {a} @ {b} do not match: the last axis of the "
                f"first ({k_a}) must equal the {'only' if len(b) == 1 else 'second-last'} axis "
                f"of the second ({k_b})"
            )
        batch = broadcast_shapes(self, a[:-2], b[:-2])
        rows = a[-2:-1] if len(a) > 1 else ()
        cols = b[-1:] if len(b) > 1 else ()
        return tuple(batch) + tuple(rows) + tuple(cols)

    def backward(self, grad):
        a, b = self.inputs
        return [MatMulGradA(grad, a, b), MatMulGradB(grad, a, b)]


def _expand_grad(xp, g, a_ndim, b_ndim):
    """The gradient of a matmul with 1-D operands, viewed as the matrix product's."""
    if a_ndim == 1:
        g = g[..., None, :]
    if b_ndim == 1:
        g = g[..., None]
    return g


def _reduce_to(xp, x, shape):
    """Sum ``x`` over leading/broadcast axes so it has ``shape``."""
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1
    )
    return xp.reshape(xp.sum(x, axis=axes, keepdims=True), shape) if axes else x


class MatMulGradA(Operation):
    """d(a @ b)/da applied to grad: grad @ b^T, reduced to a's shape (a: shape only)."""

    shape_only = (1,)
    fresh = True

    def forward(self, xp, g, a, b):
        if a.ndim == 2 and b.ndim == 2:
            return xp.matmul(g, xp.matrix_transpose(b))
        if a.ndim == 1 and b.ndim == 1:
            return xp.multiply(g, b)
        a_shape = (1,) + tuple(a.shape) if a.ndim == 1 else tuple(a.shape)
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = _expand_grad(xp, g, a.ndim, b.ndim)
        return xp.reshape(_reduce_to(xp, xp.matmul(g2, xp.matrix_transpose(b2)), a_shape), a.shape)

    def infer_shape(self, g, a, b):
        return a

    def backward(self, grad):
        g, a, b = self.inputs
        return [matmul(grad, b), None, MatMulGradB(g, grad, b)]


class MatMulGradB(Operation):
    """d(a @ b)/db applied to grad: a^T @ grad, reduced to b's shape (b: shape only)."""

    shape_only = (2,)
    fresh = True

    def forward(self, xp, g, a, b):
        if a.ndim == 2 and b.ndim == 2:
            return xp.matmul(xp.matrix_transpose(a), g)
        if a.ndim == 1 and b.ndim == 1:
            return xp.multiply(g, a)
        b_shape = tuple(b.shape) + (1,) if b.ndim == 1 else tuple(b.shape)
        a2 = a[None, :] if a.ndim == 1 else a
        g2 = _expand_grad(xp, g, a.ndim, b.ndim)
        return xp.reshape(_reduce_to(xp, xp.matmul(xp.matrix_transpose(a2), g2), b_shape), b.shape)

    def infer_shape(self, g, a, b):
        return b

    def backward(self, grad):
        g, a, b = self.inputs
        return [matmul(a, grad), MatMulGradA(g, a, grad), None]


# --------------------------------------------------------------------------- reductions


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


class ReduceMax(Reduction):
    def forward(self, xp, x):
        return xp.max(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        mask = GreaterEqual(x, self.expand(self))  # ties share the gradient equally
        count = ReduceSum(mask, self.axis, self.keepdims)
        return [multiply(mask, self.expand(divide(grad, count)))]


class ShapedLike(Operation):
    """An op whose output has the shape of its second input, read for its shape only;
    ``function`` names the array-API function of those that are ``xp.<function>(x, shape)``."""

    shape_only = (1,)
    function = ""

    def forward(self, xp, x, like):
        return getattr(xp, self.function)(x, like.shape)

    def infer_shape(self, x, like):
        return like


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


class OnesLike(Flat):
    function = "ones_like"


class ZerosLike(Flat):
    function = "zeros_like"


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


# --------------------------------------------------------------------------- softmax family


class Softmax(Unary):
    fresh = True

    def __init__(self, x, axis=-1, name=None):
        self.axis = axis
        super().__init__(x, name=name)

    def forward(self, xp, x):
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))
        return e / xp.sum(e, axis=self.axis, keepdims=True)

    def backward(self, grad):
        dot = reduce_sum(multiply(grad, self), axis=self.axis, keepdims=True)
        return [multiply(self, subtract(grad, dot))]


def _stable_max(xp, x, axis):
    """max over ``axis`` (kept), with non-finite maxima replaced by 0 so that
    x - m never computes inf - inf."""
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0.0)


def _log_softmax(xp, x, axis=-1):
    shifted = x - _stable_max(xp, x, axis)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _logsumexp(xp, x, axis=-1):
    """log(sum(exp(x))) over ``axis``, kept."""
    m = _stable_max(xp, x, axis)
    return xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m


class LogSoftmax(Softmax):
    def forward(self, xp, x):
        return _log_softmax(xp, x, self.axis)

    def backward(self, grad):
        total = reduce_sum(grad, axis=self.axis, keepdims=True)
        return [subtract(grad, multiply(exp(self), total))]


class LogSumExp(Reduction):
    def forward(self, xp, x):
        out = _logsumexp(xp, x, self.axis)
        if not self.keepdims:
            out = xp.reshape(out, _reduced_shape(tuple(x.shape), self.axis or None, False))
        return out

    def backward(self, grad):
        x = self.inputs[0]
        return [multiply(self.expand(grad), exp(subtract(x, self.expand(self))))]


# --------------------------------------------------------------------------- losses
# The fused losses of losses.py: finite for logits of any size, and cheaper than their
# compositions.

BCE_LOG_FLOOR = -100.0  # PyTorch's BCELoss clamps each log at -100


class SoftmaxCrossEntropy(Operation):
    """Per-row -sum(labels * log_softmax(logits)) via log-sum-exp."""

    fresh = True

    def forward(self, xp, labels, logits):
        if labels.dtype != logits.dtype:
            labels, logits = _match(xp, labels, logits)
        # 0 * log(0) counts as 0: a class with no target mass and a -inf logit adds nothing.
        log_p = xp.where(labels != 0, _log_softmax(xp, logits), 0.0)
        return -xp.sum(labels * log_p, axis=-1)

    def infer_shape(self, labels, logits):
        shape = broadcast_shapes(self, labels, logits)
        return None if shape is None else shape[:-1]

    def backward(self, grad):
        labels, logits = self.inputs
        g = ExpandDims(grad, -1)
        total = reduce_sum(labels, axis=-1, keepdims=True)
        d_logits = multiply(g, subtract(multiply(softmax(logits), total), labels))
        d_labels = multiply(g, negative(log_softmax(logits)))
        return [sum_to(d_labels, labels), sum_to(d_logits, logits)]


def check_labels(labels, logits) -> None:
    """Sparse labels hold one class index per row: their shape must be the logits' shape
    without its last axis (no broadcasting, as in TensorFlow and PyTorch). ``None`` (an
    unknown shape or dimension) matches anything."""
    if labels is None or logits is None:
        return
    if len(labels) != len(logits) - 1 or any(
            a is not None and b is not None and a != b for a, b in zip(labels, logits)):
        raise ValueError(
            f"sparse_softmax_cross_entropy: labels of shape {tuple(labels)} do not match "
            f"logits of shape {tuple(logits)}: give one class index per row, labels of "
            f"shape {tuple(logits[:-1])}"
        )


def check_label_values(xp, labels, classes: int) -> None:
    """Class indices must lie in [0, classes): NumPy, array-api-strict and PyTorch would
    gather a negative index from the end instead of failing. Called only where reading the
    labels costs no device synchronisation (``host_reads``)."""
    if 0 in labels.shape:
        return
    low, high = xp.min(labels), xp.max(labels)
    if bool(low < 0) or bool(high >= classes):
        raise label_range_error(int(low) if bool(low < 0) else int(high), classes)


def label_range_error(bad: int, classes: int) -> ValueError:
    """The error for a class index ``bad`` outside [0, classes)."""
    return ValueError(
        f"sparse_softmax_cross_entropy: labels must be class indices in [0, {classes}), "
        f"got {bad}"
    )


def _valid_labels(xp, labels, classes: int):
    """The mask of labels in [0, classes), made on the device without reading it: where the
    labels cannot be checked on the host, a row with a bad label gets a NaN loss and a NaN
    gradient (CuPy's gather would wrap the index, PyTorch's on CUDA would abort)."""
    return xp.logical_and(labels >= 0, labels < classes)


class SparseSoftmaxCrossEntropy(Operation):
    """Per-row logsumexp(logits) - logits[label]."""

    fresh = True
    reads_values = True
    labels_input = 0  # the labels' position among the inputs; the logits' is the next

    def forward(self, xp, labels, logits, host_reads=True):
        check_labels(labels.shape, logits.shape)
        k = logits.shape[-1]
        if host_reads:
            check_label_values(xp, labels, k)
            return self._loss(xp, labels, logits)
        valid = _valid_labels(xp, labels, k)
        # Gather at label 0 for the bad rows, never out of bounds; their loss is NaN.
        return xp.where(valid, self._loss(xp, xp.where(valid, labels, 0), logits), math.nan)

    @staticmethod
    def _loss(xp, labels, logits):
        index = _index_dtype(xp)  # PyTorch gathers with int64 only; 32-bit JAX has no int64
        if labels.dtype != index:
            labels = xp.astype(labels, index)
        picked = xp.take_along_axis(logits, labels[..., None], axis=-1)
        return (_logsumexp(xp, logits) - picked)[..., 0]

    def infer_shape(self, labels, logits):
        check_labels(labels, logits)
        return None if logits is None else logits[:-1]

    def infer_dtype(self, labels, logits):
        return logits

    def backward(self, grad):
        labels, logits = self.inputs
        return [None, SparseSoftmaxCrossEntropyGrad(grad, labels, logits)]


class SparseSoftmaxCrossEntropyGrad(Operation):
    """grad[:, None] * (softmax(logits) - one_hot(labels)), fused; NaN rows for bad labels
    where they are not checked (see SparseSoftmaxCrossEntropy)."""

    fresh = True
    reads_values = True
    labels_input = 1

    def forward(self, xp, grad, labels, logits, host_reads=True):
        check_labels(labels.shape, logits.shape)
        k = logits.shape[-1]
        if host_reads:  # a training step skips the loss's forward: check here too
            check_label_values(xp, labels, k)
        probs = self.probabilities(xp, logits)
        classes = xp.arange(k, dtype=labels.dtype, device=array_api_compat.device(labels))
        hot = xp.astype(labels[..., None] == classes, probs.dtype)
        d_logits = grad[..., None] * (probs - hot)
        if host_reads:
            return d_logits
        return xp.where(_valid_labels(xp, labels, k)[..., None], d_logits, math.nan)

    @staticmethod
    def probabilities(xp, logits):
        """softmax(logits) over the last axis, as the gradient computes it."""
        return xp.exp(_log_softmax(xp, logits))

    def infer_shape(self, grad, labels, logits):
        return logits

    def infer_dtype(self, grad, labels, logits):
        return logits

    def backward(self, grad):
        raise NotImplementedError(
            "second derivatives of sparse_softmax_cross_entropy are not implemented; "
            "compose log_softmax with a one-hot product instead"
        )


class BinaryCrossEntropy(Operation):
    """-(y log p + (1-y) log(1-p)) with each log floored at -100, as PyTorch's BCELoss."""

    fresh = True

    def forward(self, xp, p, y):
        log_p = xp.maximum(xp.log(p), BCE_LOG_FLOOR)
        log_q = xp.maximum(xp.log(1.0 - p), BCE_LOG_FLOOR)
        return -(y * log_p + (1.0 - y) * log_q)

    def infer_shape(self, p, y):
        return broadcast_shapes(self, p, y)

    def backward(self, grad):
        p, y = self.inputs
        return [sum_to(BinaryCrossEntropyGrad(grad, p, y), p), None]


class BinaryCrossEntropyGrad(Operation):
    """grad * (p - y) / max(p (1 - p), 1e-12): PyTorch's finite gradient at p = 0 or 1."""

    fresh = True

    def forward(self, xp, grad, p, y):
        return grad * (p - y) / xp.maximum(p * (1.0 - p), 1e-12)

    def infer_shape(self, grad, p, y):
        return broadcast_shapes(self, grad, p, y)


class SigmoidBinaryCrossEntropy(Operation):
    """BCE of sigmoid(logits): max(x, 0) - x y + log(1 + exp(-|x|)), finite for any x."""

    fresh = True

    def forward(self, xp, x, y):
        return xp.maximum(x, 0.0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))

    def infer_shape(self, x, y):
        return broadcast_shapes(self, x, y)

    def backward(self, grad):
        x, y = self.inputs
        d_x = multiply(grad, subtract(sigmoid(x), y))
        return [sum_to(d_x, x), sum_to(multiply(grad, negative(x)), y)]


# --------------------------------------------------------------------------- shape ops


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


# --------------------------------------------------------------------------- functions


def add(a, b, name=None):
    """a + b, broadcasting like NumPy.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.add([1.0, 2.0], 1.0)).tolist()
    [2.0, 3.0]
    """
    return Add(a, b, name=name)


def subtract(a, b, name=None):
    """a - b."""
    return Subtract(a, b, name=name)


def multiply(a, b, name=None):
    """a * b elementwise."""
    return Multiply(a, b, name=name)


def divide(a, b, name=None):
    """a / b elementwise."""
    return Divide(a, b, name=name)


def negative(x, name=None):
    """-x."""
    return Negative(x, name=name)


def matmul(a, b, name=None):
    """Matrix product with NumPy's rules (1-D operands allowed, batch axes broadcast).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.matmul([[1.0, 2.0]], [[3.0], [4.0]])).tolist()
    [[11.0]]
    """
    return MatMul(a, b, name=name)


def exp(x, name=None):
    """e ** x."""
    return Exp(x, name=name)


def log(x, name=None):
    """Natural logarithm."""
    return Log(x, name=name)


def sqrt(x, name=None):
    """Square root."""
    return Sqrt(x, name=name)


def square(x, name=None):
    """x * x."""
    return Square(x, name=name)


def abs(x, name=None):  # noqa: A001 - the public name mirrors numpy/tf
    """|x| (gradient sign(x), 0 at 0)."""
    return Abs(x, name=name)


def maximum(a, b, name=None):
    """Elementwise max; at ties the gradient goes to ``a``."""
    return Maximum(a, b, name=name)


def minimum(a, b, name=None):
    """Elementwise min; at ties the gradient goes to ``a``."""
    return Minimum(a, b, name=name)


def clip(x, low, high, name=None):
    """x limited to [low, high] (either may be None); gradient 1 inside, 0 outside.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.clip([-2.0, 0.5, 3.0], 0.0, 1.0)).tolist()
    [0.0, 0.5, 1.0]
    """
    return Clip(x, low, high, name=name)


def check_numerics(x, message, name=None):
    """``x`` itself, or a failed run (``xn.NumericsError`` naming this op and ``message``)
    when ``x`` holds a NaN or an infinity; its gradient is checked the same way. The run
    fails before any Variable is written.

    >>> import xpnn as xn
    >>> x = xn.placeholder(name="x")
    >>> y = xn.check_numerics(xn.log(x), "log of the input")
    >>> xn.Session().run(y, {x: [1.0]}).tolist()
    [0.0]
    >>> try:
    ...     xn.Session().run(y, {x: [0.0]})
    ... except xn.NumericsError as error:
    ...     print(str(error).splitlines()[0].split(": ", 1)[1])
    log of the input: 0 NaN and 1 inf in float32 shape (1,)
    """
    return CheckNumerics(x, message, name=name)


def relu(x, name=None):
    """max(x, 0)."""
    return Relu(x, name=name)


def leaky_relu(x, alpha=0.2, name=None):
    """x where x > 0, else ``alpha`` x (TF1's ``tf.nn.leaky_relu``, same default).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.leaky_relu([-1.0, 2.0], alpha=0.1)).tolist()
    [-0.10000000149011612, 2.0]
    """
    return LeakyRelu(x, alpha, name=name)


def dropout(x, rate, training=True, name=None):
    """x with each entry zeroed with probability ``rate`` and the rest scaled by
    1 / (1 - rate), as TF1's ``tf.nn.dropout(x, rate=...)``; ``x`` itself where ``training`` is
    false. ``training`` may be a bool or a scalar bool placeholder, so one graph serves both;
    ``rate`` may be a scalar node as well (TF1's ``keep_prob`` placeholder), fed 0 to keep
    every entry. The mask is drawn anew every run from the Session's generator
    (``Session(seed=...)``): the same seed gives the same masks on every backend.

    >>> import xpnn as xn
    >>> with xn.Graph().as_default():
    ...     y = xn.dropout(xn.constant([1.0, 1.0, 1.0, 1.0]), rate=0.5)
    ...     sorted(set(xn.Session(seed=0).run(y).tolist()) - {0.0})
    [2.0]
    """
    if training is False:
        return as_node(x)
    if not isinstance(training, Node) and training is not True:
        raise TypeError(f"dropout: training must be a bool or a bool placeholder, got "
                        f"{training!r}")
    node = as_node(x)
    if isinstance(rate, Node):  # a rate fed at run time
        if training is not True:
            raise TypeError("dropout: a rate node comes with training=True (feed rate 0 "
                            "to switch dropout off)")
        return multiply(node, DropoutMaskOf(node, rate), name=name)
    flag = training if isinstance(training, Node) else Constant(True, graph=node.graph)
    return multiply(node, DropoutMask(node, flag, rate), name=name)


def sigmoid(x, name=None):
    """1 / (1 + e^-x), computed without overflow for any x.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.sigmoid([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return Sigmoid(x, name=name)


def tanh(x, name=None):
    """Hyperbolic tangent."""
    return Tanh(x, name=name)


def softmax(x, axis=-1, name=None):
    """exp(x) normalised over ``axis``, shifted by the max so that it never overflows."""
    return Softmax(x, axis, name=name)


def log_softmax(x, axis=-1, name=None):
    """log(softmax(x)) = x - logsumexp(x), stable."""
    return LogSoftmax(x, axis, name=name)


def logsumexp(x, axis=None, keepdims=False, name=None):
    """log(sum(exp(x))) over ``axis``, stable for large |x|.

    >>> import xpnn as xn
    >>> round(xn.Session().run(xn.logsumexp([1e4, 1e4])).item(), 3)
    10000.693
    """
    return LogSumExp(x, axis, keepdims, name=name)


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


def reshape(x, shape, name=None):
    """Reshape (one entry may be -1)."""
    return Reshape(x, shape, name=name)


def transpose(x, axes=None, name=None):
    """Permute axes (reverse them when ``axes`` is None), like ``numpy.transpose``."""
    return Transpose(x, axes, name=name)


def argmax(x, axis=-1, name=None):
    """Index of the max along ``axis`` (no gradient).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.argmax([[0.1, 0.9], [0.8, 0.2]])).tolist()
    [1, 0]
    """
    return ArgMax(x, axis, name=name)


def equal(a, b, name=None):
    """1.0 where a == b else 0.0 (float32; no gradient)."""
    return Equal(a, b, name=name)


def zeros_like(x, name=None):
    return ZerosLike(x, name=name)


def ones_like(x, name=None):
    return OnesLike(x, name=name)


def add_n(nodes):
    """Sum of a list of nodes (how gradients from many consumers meet)."""
    total = nodes[0]
    for node in nodes[1:]:
        total = add(total, node)
    return total


def _attach_operators():
    """Give Node its operators: ``a + b`` is ``add(a, b)``, ``2.0 * a`` is
    ``multiply(2.0, a)``, and so on."""
    for name, fn in [("add", add), ("sub", subtract), ("mul", multiply),
                     ("truediv", divide), ("matmul", matmul)]:
        setattr(Node, f"__{name}__", lambda self, other, fn=fn: fn(self, other))
        setattr(Node, f"__r{name}__", lambda self, other, fn=fn: fn(other, self))
    Node.__neg__ = lambda self: negative(self)  # ** comes with Pow, from math_ops


_attach_operators()

_INDEX_DTYPES: dict = {}


def _index_dtype(xp, kind="indexing"):
    """The namespace's default integer type for indices (``kind="integral"``: for integers),
    int32 on JAX without x64."""
    dtype = _INDEX_DTYPES.get((xp, kind))
    if dtype is None:
        dtype = _INDEX_DTYPES[xp, kind] = xp.__array_namespace_info__().default_dtypes()[kind]
    return dtype


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


__all__ = [name for name in dir() if not name.startswith("_")] + ["as_node"]
