"""Activation ops: ``relu``, ``leaky_relu``, ``relu6``, ``elu``, ``softplus``, ``sigmoid``,
``tanh``, and the softmax family (``softmax``, ``log_softmax``); each gradient an op of its
own (``ReluGrad``...), computed as TensorFlow 1's kernels compute it (so a TF1 program gives
the same floats).

>>> import xpnn as xn
>>> xn.Session().run(xn.ops.relu6([-1.0, 3.0, 9.0])).tolist()
[0.0, 3.0, 6.0]
"""

from __future__ import annotations

import math

from ..devices import indicator
from ..graph import Operation
from .arithmetic import abs, exp, multiply, negative, square, subtract
from .core import Elementwise, Unary
from .reductions import _stable_max, reduce_sum
from .shape import concat


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


class Sigmoid(Unary):
    fresh = True

    def forward(self, xp, x):
        # With e = exp(-|x|) (never overflows): 1 / (1 + e) above 0, e / (1 + e) below, each
        # side to an ulp or so; sigmoid(-1e4) is exactly 0 and sigmoid(1e4) exactly 1.
        e = xp.exp(-xp.abs(x))
        d = 1.0 + e
        return xp.where(x >= 0, 1.0 / d, e / d)

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


class MaskedSoftmax(Softmax):
    """softmax over ``axis`` of the entries where ``mask`` (broadcast to x; bool, or
    numbers: nonzero keeps) holds; elsewhere exactly 0, whatever the logit (-inf, NaN). A
    row with nothing kept is all 0, not NaN. The masked logits are -inf before the max is
    subtracted; the gradient is softmax's (0 at the masked entries), none to the mask."""

    def __init__(self, x, mask, axis=-1, name=None):
        self.axis = axis
        Operation.__init__(self, x, mask, name=name)

    def forward(self, xp, x, mask):
        self.infer_shape(tuple(x.shape), tuple(mask.shape))
        keep = mask if mask.dtype == xp.bool else mask != 0
        filled = xp.where(keep, x, -math.inf)
        e = xp.where(keep, xp.exp(filled - _stable_max(xp, filled, self.axis)), 0.0)
        total = xp.sum(e, axis=self.axis, keepdims=True)
        return e / xp.where(total > 0, total, 1.0)

    def infer_shape(self, shape, mask):
        if shape is None or mask is None:
            return shape
        if len(mask) > len(shape) or any(
                m not in (1, None) and s is not None and m != s
                for m, s in zip(mask[::-1], shape[::-1])):
            raise ValueError(f"{self.label}: a mask of shape {tuple(mask)} does not broadcast "
                             f"to the logits' shape {tuple(shape)}; give it the logits' shape "
                             "or 1s where it repeats")
        if not -len(shape) <= self.axis < len(shape):
            raise ValueError(f"{self.label}: axis {self.axis} is out of range for logits of "
                             f"shape {tuple(shape)}")
        return shape

    def infer_dtype(self, dtype, mask):
        return dtype

    def backward(self, grad):
        return Softmax.backward(self, grad) + [None]


def _log_softmax(xp, x, axis=-1):
    shifted = x - _stable_max(xp, x, axis)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


class LogSoftmax(Softmax):
    def forward(self, xp, x):
        return _log_softmax(xp, x, self.axis)

    def backward(self, grad):
        total = reduce_sum(grad, axis=self.axis, keepdims=True)
        return [subtract(grad, multiply(exp(self), total))]


# SELU's constants (Klambauer et al. 2017), as TF1's kernel has them
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


class Selu(Unary):
    """scale * x where x >= 0, else scale * alpha * (exp(x) - 1) (self-normalising)."""

    fresh = True

    def forward(self, xp, x):
        return xp.where(x < 0, (SELU_SCALE * SELU_ALPHA) * xp.expm1(x), SELU_SCALE * x)

    def backward(self, grad):
        return [SeluGrad(grad, self)]


class SeluGrad(Elementwise):
    """grad * scale where y >= 0, else grad (y + scale alpha), from selu's output y."""

    def forward(self, xp, grad, y):
        return xp.where(y < 0, grad * (y + SELU_SCALE * SELU_ALPHA), grad * SELU_SCALE)

    def backward(self, grad):
        g, y = self.inputs
        return [SeluGrad(grad, y), grad * g * (y < 0.0)]


class Softsign(Unary):
    """x / (1 + |x|)."""

    fresh = True

    def forward(self, xp, x):
        return x / (xp.abs(x) + 1.0)

    def backward(self, grad):
        x = self.inputs[0]
        return [grad / square(abs(x) + 1.0)]


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


def relu6(x, name=None):
    """min(max(x, 0), 6)."""
    return Relu6(x, name=name)


def elu(x, name=None):
    """x where x >= 0, else exp(x) - 1.

    >>> import xpnn as xn
    >>> round(xn.Session().run(xn.ops.elu([-1.0, 2.0]))[0].item(), 6)
    -0.632121
    """
    return Elu(x, name=name)


def softplus(x, name=None):
    """log(1 + exp(x)), finite for any x."""
    return Softplus(x, name=name)


def softmax(x, axis=-1, name=None, mask=None):
    """exp(x) normalised over ``axis``, shifted by the max so that it never overflows;
    with ``mask``, :func:`masked_softmax`."""
    if mask is not None:
        return MaskedSoftmax(x, mask, axis, name=name)
    return Softmax(x, axis, name=name)


def masked_softmax(logits, mask, axis=-1, name=None):
    """softmax over ``axis`` of the entries where ``mask`` holds (broadcast to the logits:
    bool, or numbers where nonzero keeps); the others get exactly 0, and a row with none
    kept is all 0 (not NaN). The attention mask of padding or of the future.

    >>> import xpnn as xn
    >>> p = xn.masked_softmax([[1.0, 1.0, 5.0], [2.0, 3.0, 4.0]],
    ...                       [[True, True, False], [False, False, False]])
    >>> xn.Session().run(p).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
    """
    return MaskedSoftmax(logits, mask, axis, name=name)


def log_softmax(x, axis=-1, name=None):
    """log(softmax(x)) = x - logsumexp(x), stable."""
    return LogSoftmax(x, axis, name=name)


def selu(x, name=None):
    """TF1's ``tf.nn.selu``: scale * elu(x) with alpha, the self-normalising constants.

    >>> import xpnn as xn
    >>> round(xn.Session().run(xn.ops.selu([1.0]))[0].item(), 6)
    1.050701
    """
    return Selu(x, name=name)


def softsign(x, name=None):
    """x / (1 + |x|)."""
    return Softsign(x, name=name)


def swish(x, name=None):
    """x * sigmoid(x) (TF1's ``tf.nn.swish``, also called SiLU)."""
    return multiply(x, sigmoid(x), name=name)


def crelu(x, axis=-1, name=None):
    """relu(x) and relu(-x) concatenated along ``axis`` (twice as many features)."""
    return concat([relu(x), relu(negative(x))], axis, name=name)


__all__ = ["Relu", "ReluGrad", "LeakyRelu", "LeakyReluGrad", "Sigmoid", "SigmoidGrad", "Tanh",
           "Relu6", "Relu6Grad", "Elu", "EluGrad", "Softplus", "SoftplusGrad", "Softmax",
           "LogSoftmax", "relu", "leaky_relu", "sigmoid", "tanh", "relu6", "elu", "softplus",
           "softmax", "log_softmax", "MaskedSoftmax", "masked_softmax", "SELU_ALPHA",
           "SELU_SCALE", "Selu", "SeluGrad", "Softsign", "selu", "softsign", "swish", "crelu"]
