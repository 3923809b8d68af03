"""The elementary functions TF1 has beyond ``arithmetic``: trigonometric and hyperbolic
functions and their inverses (``sin`` ... ``atanh``, ``atan2``), ``log1p``, ``expm1``,
``erf``, the integer-style divisions ``floordiv``, ``floormod`` (TF1's ``mod``),
``truncatediv``, ``truncatemod``, and the tests ``is_nan``, ``is_inf``, ``is_finite``
(bool). Each is the array API's function where it has one, with its gradient; ``erf``,
which the standard lacks, is computed portably (a series near 0, a Chebyshev fit of erfc
beyond).

>>> import xpnn as xn
>>> x = xn.Variable([0.0, 0.5])
>>> y = xn.reduce_sum(xn.ops.sin(x) + xn.ops.log1p(x))
>>> [round(v, 6) for v in xn.Session().run(xn.gradients(y, [x])[0]).tolist()]
[2.0, 1.544249]
"""

from __future__ import annotations

import math

from ..dtypes import dtype_name, is_floating
from .arithmetic import (
    Floor,
    add,
    divide,
    exp,
    multiply,
    negative,
    sqrt,
    square,
    subtract,
)
from .core import Binary, Flat, Unary, _match, sum_to


class Floating(Unary):
    """A unary function defined on real floating values only (TF1 refuses integers)."""

    fresh = True

    def infer_dtype(self, dtype):
        if dtype is not None and not is_floating(dtype):
            raise TypeError(f"{self.label}: {type(self).__name__.lower()} takes floating "
                            f"values, got {dtype_name(dtype)}; cast them first (tf.cast / "
                            "xn.cast(x, 'float32'))")
        return dtype


def _derivative(name, slope):
    """A Floating op calling ``xp.<name>`` whose gradient is ``grad * slope(op)``."""

    def backward(self, grad):
        return [multiply(grad, slope(self))]

    return type(name.capitalize(), (Floating,), {"function": name, "backward": backward,
                                                 "__doc__": f"``{name}(x)`` elementwise."})


def _x(op):
    return op.inputs[0]


Sin = _derivative("sin", lambda op: Cos(_x(op)))
Cos = _derivative("cos", lambda op: negative(Sin(_x(op))))
Tan = _derivative("tan", lambda op: add(1.0, square(op)))
Asin = _derivative("asin", lambda op: divide(1.0, sqrt(subtract(1.0, square(_x(op))))))
Acos = _derivative("acos", lambda op: divide(-1.0, sqrt(subtract(1.0, square(_x(op))))))
Atan = _derivative("atan", lambda op: divide(1.0, add(1.0, square(_x(op)))))
Sinh = _derivative("sinh", lambda op: Cosh(_x(op)))
Cosh = _derivative("cosh", lambda op: Sinh(_x(op)))
Asinh = _derivative("asinh", lambda op: divide(1.0, sqrt(add(square(_x(op)), 1.0))))
Acosh = _derivative("acosh", lambda op: divide(1.0, sqrt(subtract(square(_x(op)), 1.0))))
Atanh = _derivative("atanh", lambda op: divide(1.0, subtract(1.0, square(_x(op)))))
Log1p = _derivative("log1p", lambda op: divide(1.0, add(1.0, _x(op))))
Expm1 = _derivative("expm1", lambda op: add(op, 1.0))


class Atan2(Binary):
    """The angle of the point (x, y), ``atan2(y, x)``, in (-pi, pi]."""

    function = "atan2"

    def backward(self, grad):
        y, x = self.inputs
        scale = divide(grad, add(square(x), square(y)))
        return [sum_to(multiply(scale, x), y), sum_to(negative(multiply(scale, y)), x)]


# erfc(z) = t exp(-z^2 + g(1 - 2t)), t = 2 / (2 + z), for z >= 0: the Chebyshev coefficients
# of g, fitted to erfc at 40 digits (mpmath); relative error below 2e-13 in float64.
_ERFC_CHEBYSHEV = (
    -0.6513268598908547, -0.6419697923564902, 0.01947647320418585, 0.009561514786808618,
    -0.0009465953444820561, -0.0003668394978527918, 4.2523324806872214e-05,
    2.027857811250982e-05, -1.6242900046949537e-06, -1.3036558357155646e-06,
    1.5626441554742545e-08, 8.523809579475518e-08, 6.529054341894673e-09,
    -5.059343708910495e-09, -9.913643952772689e-10, 2.273647798683774e-10,
    9.64674954362619e-11, -2.394484398371005e-12, -6.886490767230734e-12,
    -8.946735327429917e-13, 3.1318597212603917e-13, 1.1325626381356237e-13,
    1.335890046641251e-15, -6.127492715446241e-15, -4.489257605466647e-16,
)
_SERIES_TERMS = 14  # erf's Taylor series below |x| = 0.5: the last term is under 1e-19


def _erfc_positive(xp, z):
    t = 2.0 / (2.0 + z)
    u = 1.0 - 2.0 * t
    b1 = b2 = xp.zeros_like(z)
    for c in reversed(_ERFC_CHEBYSHEV[1:]):  # Clenshaw's recurrence
        b1, b2 = 2.0 * u * b1 - b2 + c, b1
    return t * xp.exp(u * b1 - b2 + _ERFC_CHEBYSHEV[0] - z * z)


class Erf(Floating):
    """The error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x."""

    def forward(self, xp, x):
        z = xp.abs(x)
        small = z < 0.5
        far = 1.0 - _erfc_positive(xp, xp.where(small, 0.5, z))
        near = _erf_taylor(xp, xp.where(small, x, 0.0))
        return xp.where(small, near, xp.where(x < 0, -far, far))

    def backward(self, grad):
        x = self.inputs[0]
        return [multiply(grad, multiply(2.0 / math.sqrt(math.pi), exp(negative(square(x)))))]


def _erf_taylor(xp, x):
    """2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n + 1)), for |x| <= 0.5."""
    x2 = x * x
    total = xp.zeros_like(x)
    for n in reversed(range(_SERIES_TERMS)):
        coefficient = (-1.0) ** n / (math.factorial(n) * (2 * n + 1))
        total = total * x2 + coefficient
    return total * x * (2.0 / math.sqrt(math.pi))


class IsNan(Flat):
    """Whether each entry is NaN, as bool."""

    function = "isnan"

    def infer_dtype(self, dtype):
        return "bool"


class IsInf(IsNan):
    function = "isinf"


class IsFinite(IsNan):
    function = "isfinite"


class FloorDiv(Binary):
    """floor(a / b) elementwise, in a's dtype (integers: Python's ``//``); no gradient."""

    function = "floor_divide"

    def backward(self, grad):
        return [None, None]


class FloorMod(Binary):
    """a - floor(a / b) * b: the remainder with b's sign (Python's ``%``, TF1's ``mod``)."""

    function = "remainder"

    def backward(self, grad):
        a, b = self.inputs
        return [sum_to(grad, a), sum_to(negative(multiply(grad, Floor(divide(a, b)))), b)]


class TruncateDiv(Binary):
    """a / b rounded toward zero (C's integer division); no gradient."""

    def forward(self, xp, a, b):
        if a.dtype != b.dtype:
            a, b = _match(xp, a, b)
        if xp.isdtype(a.dtype, "real floating"):
            return xp.trunc(a / b)
        q = xp.floor_divide(a, b)
        # floor and truncation differ by one where the division is inexact and negative
        inexact = xp.remainder(a, b) != 0
        negative_quotient = (a < 0) != (b < 0)
        return xp.where(inexact & negative_quotient, q + 1, q)

    def backward(self, grad):
        return [None, None]


def _unary(cls):
    def build(x, name=None):
        return cls(x, name=name)

    build.__name__ = cls.__name__.lower()
    build.__doc__ = cls.__doc__
    return build


sin, cos, tan = _unary(Sin), _unary(Cos), _unary(Tan)
asin, acos, atan = _unary(Asin), _unary(Acos), _unary(Atan)
sinh, cosh = _unary(Sinh), _unary(Cosh)
asinh, acosh, atanh = _unary(Asinh), _unary(Acosh), _unary(Atanh)
log1p, expm1, erf = _unary(Log1p), _unary(Expm1), _unary(Erf)
is_nan, is_inf, is_finite = _unary(IsNan), _unary(IsInf), _unary(IsFinite)


def _binary(cls):
    def build(a, b, name=None):
        return cls(a, b, name=name)

    build.__name__ = cls.__name__.lower()
    build.__doc__ = cls.__doc__
    return build


atan2 = _binary(Atan2)
floordiv, floormod, truncatediv = _binary(FloorDiv), _binary(FloorMod), _binary(TruncateDiv)


def truncatemod(a, b, name=None):
    """a - truncatediv(a, b) * b: the remainder with a's sign (C's ``%``, ``fmod``)."""
    quotient = TruncateDiv(a, b)
    a, b = quotient.inputs
    return subtract(a, multiply(quotient, b), name=name)


__all__ = ["Floating", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Atan2", "Sinh", "Cosh",
           "Asinh", "Acosh", "Atanh", "Log1p", "Expm1", "Erf", "IsNan", "IsInf", "IsFinite",
           "FloorDiv", "FloorMod", "TruncateDiv", "sin", "cos", "tan", "asin", "acos", "atan",
           "atan2", "sinh", "cosh", "asinh", "acosh", "atanh", "log1p", "expm1", "erf",
           "is_nan", "is_inf", "is_finite", "floordiv", "floormod", "truncatediv",
           "truncatemod"]
