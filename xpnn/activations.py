"""More activations, computed as TensorFlow 1's kernels compute them (so a TF1 program gives
the same floats): ``relu6``, ``elu``, ``softplus``.

>>> import xpnn as xn
>>> from xpnn import activations
>>> xn.Session().run(activations.relu6([-1.0, 3.0, 9.0])).tolist()
[0.0, 3.0, 6.0]
"""

from __future__ import annotations

import math

from .devices import indicator
from .ops import Elementwise, Unary


class Relu6(Unary):
    """min(max(x, 0), 6); the gradient is 1 strictly inside (0, 6), as TF1's."""

    fresh = True

    def forward(self, xp, x):
        return xp.minimum(xp.maximum(x, 0.0), 6.0)

    def backward(self, grad):
        return [Relu6Grad(grad, self.inputs[0])]


class Relu6Grad(Elementwise):
    def forward(self, xp, grad, x):
        return grad * indicator(xp, xp.logical_and(x > 0, x < 6), grad.dtype)

    def backward(self, grad):
        return [Relu6Grad(grad, self.inputs[1]), None]


class Elu(Unary):
    """x where x >= 0, else exp(x) - 1."""

    fresh = True

    def forward(self, xp, x):
        return xp.where(x < 0, xp.expm1(x), x)

    def backward(self, grad):
        return [EluGrad(grad, self)]


class EluGrad(Elementwise):
    """grad where y >= 0, else grad (y + 1), from elu's output y (TF1's EluGrad)."""

    def forward(self, xp, grad, y):
        return xp.where(y < 0, grad * (y + 1.0), grad)

    def backward(self, grad):
        g, y = self.inputs
        d_y = grad * g * (y < 0.0)
        return [EluGrad(grad, y), d_y]


def _softplus_threshold(xp, dtype) -> float:
    """TF1's: log(machine epsilon) + 2 of the input's dtype."""
    return math.log(float(xp.finfo(dtype).eps)) + 2.0


class Softplus(Unary):
    """log(1 + exp(x)), TF1's way: x itself above -threshold, exp(x) below threshold."""

    fresh = True

    def forward(self, xp, x):
        t = _softplus_threshold(xp, x.dtype)
        e = xp.exp(x)
        return xp.where(x > -t, x, xp.where(x < t, e, xp.log(e + 1.0)))

    def backward(self, grad):
        return [SoftplusGrad(grad, self.inputs[0])]


class SoftplusGrad(Elementwise):
    """grad / (exp(-x) + 1): grad times sigmoid(x)."""

    def forward(self, xp, grad, x):
        return grad / (xp.exp(-x) + 1.0)


def relu6(x, name=None):
    """min(max(x, 0), 6)."""
    return Relu6(x, name=name)


def elu(x, name=None):
    """x where x >= 0, else exp(x) - 1.

    >>> import xpnn as xn
    >>> from xpnn import activations
    >>> round(xn.Session().run(activations.elu([-1.0, 2.0]))[0].item(), 6)
    -0.632121
    """
    return Elu(x, name=name)


def softplus(x, name=None):
    """log(1 + exp(x)), finite for any x."""
    return Softplus(x, name=name)


__all__ = ["relu6", "elu", "softplus", "Relu6", "Elu", "Softplus"]
