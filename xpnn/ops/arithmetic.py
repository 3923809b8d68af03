"""Arithmetic ops: ``add`` ... ``pow`` (and the operators that build them), ``exp``, ``log``,
``sqrt``, ``square``, ``abs``, ``maximum``/``minimum`` (with their float masks
``GreaterEqual`` and ``equal``), ``clip``, ``floor``/``ceil``/``round``, ``cast``,
``identity``, ``stop_gradient``, ``zeros_like``/``ones_like``, ``check_numerics`` and
``matmul``. Each op is a small class with ``forward(xp, *values)`` (portable array-API code)
and ``backward(grad)`` (graph nodes built from these same ops), plus the lowercase function
users call.

>>> import xpnn as xn
>>> x = xn.Variable([1.0, 4.0])
>>> y = xn.reduce_sum(xn.sqrt(x) * 2.0 + x ** 3.0)
>>> xn.Session().run([y, xn.gradients(y, [x])[0]], to_numpy=True)[1].tolist()
[4.0, 48.5]
"""

from __future__ import annotations

import math

from ..devices import indicator
from ..dtypes import dtype_name, is_floating
from ..graph import Constant, Node, Operation
from .core import (
    Binary,
    Elementwise,
    Flat,
    ShapedLike,
    Unary,
    _match,
    _reduce_to,
    broadcast_shapes,
    sum_to,
    xp_dtype,
)


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


class Rsqrt(Unary):
    """1 / sqrt(x), TF1's ``rsqrt``: a normalisation's scale in one op."""

    fresh = True

    def forward(self, xp, x):
        return 1.0 / xp.sqrt(x)

    def backward(self, grad):  # d(x^-1/2) = -x^-3/2 / 2 = -y^3 / 2
        return [multiply(grad, multiply(-0.5, multiply(self, square(self))))]


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


class Pow(Binary):
    """a ** b elementwise; the exponent's gradient is log(a) a^b where a > 0, else 0 (TF1's)."""

    function = "pow"

    def backward(self, grad):
        a, b = self.inputs
        d_a = multiply(grad, multiply(b, Pow(a, subtract(b, 1.0))))
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


class PositiveLogGrad(Elementwise):
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


class CastLike(ShapedLike):
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


class OnesLike(Flat):
    function = "ones_like"


class ZerosLike(Flat):
    function = "zeros_like"


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
        if b.ndim == 2 and a.ndim > 2 and g.ndim == a.ndim:  # every row of a: one product,
            rows, (k, n) = math.prod(a.shape[:-1]), b.shape  # not a batch of them summed
            return xp.matmul(xp.matrix_transpose(xp.reshape(a, (rows, k))),
                             xp.reshape(g, (rows, n)))
        b_shape = tuple(b.shape) + (1,) if b.ndim == 1 else tuple(b.shape)
        a2 = a[None, :] if a.ndim == 1 else a
        g2 = _expand_grad(xp, g, a.ndim, b.ndim)
        return xp.reshape(_reduce_to(xp, xp.matmul(xp.matrix_transpose(a2), g2), b_shape), b.shape)

    def infer_shape(self, g, a, b):
        return b

    def backward(self, grad):
        g, a, b = self.inputs
        return [matmul(a, grad), MatMulGradA(g, a, grad), None]


def _rows_times(node, b) -> bool:
    """Whether ``node`` is the gradient of b in a 2-D product ``a @ b``, a's shape known."""
    if type(node) is not MatMulGradB or node.inputs[2] is not b:
        return False
    g, a, _ = node.inputs
    return (a.shape is not None and len(a.shape) == 2 and g.shape is not None
            and len(g.shape) == 2 and b.shape is not None and len(b.shape) == 2)


class StackedMatMulGradB(Operation):
    """The sum of ``a_i^T @ g_i`` over i (b's gradient from many 2-D products ``a_i @ b``)
    as one product: the a's and the g's stacked row-wise, ``A^T @ G``. Inputs: the a's, the
    g's, then b (shape only)."""

    fresh = True

    def __init__(self, rows, grads, b):
        self.n = len(rows)
        self.shape_only = (2 * self.n,)
        super().__init__(*rows, *grads, b)

    def forward(self, xp, *values):
        rows, grads = values[: self.n], values[self.n: 2 * self.n]
        return xp.matmul(xp.matrix_transpose(xp.concat(rows, axis=0)),
                         xp.concat(grads, axis=0))

    def infer_shape(self, *shapes):
        return shapes[-1]

    def infer_dtype(self, *dtypes):
        return super().infer_dtype(*dtypes[:-1])

    def backward(self, grad):
        rows, grads = self.inputs[: self.n], self.inputs[self.n: 2 * self.n]
        return ([MatMulGradA(g, a, grad) for g, a in zip(grads, rows)]  # g_i @ grad^T
                + [matmul(a, grad) for a in rows] + [None])


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


def rsqrt(x, name=None):
    """1 / sqrt(x).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.rsqrt(xn.constant([4.0, 0.25]))).tolist()
    [0.5, 2.0]
    """
    return Rsqrt(x, name=name)


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


def equal(a, b, name=None):
    """1.0 where a == b else 0.0 (float32; no gradient)."""
    return Equal(a, b, name=name)


def zeros_like(x, name=None):
    return ZerosLike(x, name=name)


def ones_like(x, name=None):
    return OnesLike(x, name=name)


def add_n(nodes):
    """Sum of a list of nodes (how gradients from many consumers meet). The gradients of
    one matrix used in many products (a recurrent weight, unrolled over time) add up as one
    product of the stacked rows: ``StackedMatMulGradB``.

    >>> import xpnn as xn
    >>> w = xn.Variable([[1.0], [2.0]])
    >>> xs = [xn.constant([[1.0, float(t)]]) for t in range(3)]
    >>> dw, = xn.gradients(xn.add_n([x @ w for x in xs]), [w])
    >>> type(dw).__name__, xn.Session().run(dw).ravel().tolist()
    ('StackedMatMulGradB', [3.0, 3.0])
    """
    first = nodes[0]
    if len(nodes) > 2 and type(first) is MatMulGradB and all(
            _rows_times(n, first.inputs[2]) for n in nodes):
        return StackedMatMulGradB([n.inputs[1] for n in nodes], [n.inputs[0] for n in nodes],
                                  nodes[0].inputs[2])
    total = nodes[0]
    for node in nodes[1:]:
        total = add(total, node)
    return total


def pow(x, y, name=None):  # noqa: A001 - TF1's name
    """x ** y elementwise, any exponent (``**`` on nodes too).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.pow([2.0, 4.0], 0.5)).tolist()
    [1.4142135381698608, 2.0]
    """
    return Pow(x, y, name=name)


def _power(x, power):
    """``x ** power``: squares and square roots by their own ops (exact and cheap), any
    other exponent by Pow."""
    if not isinstance(power, Node) and power == 2:
        return square(x)
    if not isinstance(power, Node) and power == 0.5:
        return sqrt(x)
    return Pow(x, power)


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
    >>> xn.Session().run(xn.ops.cast(xn.constant([1.7, -1.7]), "int32")).tolist()
    [1, -1]
    """
    return Cast(x, dtype, name=name)


def identity(x, name=None):
    """x itself, as a new node (a name to fetch it by)."""
    return Identity(x, name=name)


def stop_gradient(x, name=None):
    """x, with no gradient flowing into it.

    >>> import xpnn as xn
    >>> w = xn.Variable(3.0)
    >>> y = w * xn.ops.stop_gradient(w)
    >>> xn.Session().run(xn.gradients(y, [w])[0]).item()
    3.0
    """
    return StopGradient(x, name=name)


__all__ = ["Add", "Subtract", "Multiply", "Divide", "Maximum", "Minimum", "GreaterEqual", "Equal",
           "Negative", "Exp", "Log", "Sqrt", "Rsqrt", "Square", "Abs", "Sign", "Clip", "InRange",
           "Pow", "PositiveLog", "PositiveLogGrad", "Floor", "Ceil", "Round", "Cast", "CastLike",
           "Identity", "StopGradient", "OnesLike", "ZerosLike", "nonfinite", "CheckNumerics",
           "MatMul", "MatMulGradA", "MatMulGradB", "add", "subtract", "multiply", "divide",
           "negative", "matmul", "exp", "log", "sqrt", "rsqrt", "square", "abs", "maximum",
           "minimum", "clip", "check_numerics", "equal", "zeros_like", "ones_like", "add_n", "pow",
           "floor", "ceil", "round", "cast", "identity", "stop_gradient"]
