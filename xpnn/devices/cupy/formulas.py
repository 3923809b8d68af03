"""The arithmetic of every CuPy kernel, written once: plain elementwise functions of an array
namespace ``xp`` and array or number operands, in the order the portable ops compute. Called
with NumPy arrays they are the reference; ``source`` calls them on symbols and prints the
CUDA source of the kernel (so the kernel and its reference cannot drift apart). They use
operators and ``xp.exp``, ``log``, ``sqrt``, ``tanh``, ``isfinite``, ``maximum``,
``where``, ``logical_and`` and ``astype`` only. Numbers stay Python numbers: each becomes a
scalar argument of the kernel, in the arrays' dtype, as NumPy treats them.

An update rule returns the new values of its first arguments, in order (the kernel writes
them in place); the others return one value.

>>> import numpy as np
>>> from xpnn.devices.cupy import formulas
>>> formulas.relu_grad(np, np.array([2.0, 3.0]), np.array([-1.0, 0.5])).tolist()
[0.0, 3.0]
"""

from __future__ import annotations

import math

from ... import optimizers

# --------------------------------------------------------------------------- elementwise ops


def add(xp, a, b):
    return a + b


def subtract(xp, a, b):
    return a - b


def multiply(xp, a, b):
    return a * b


def divide(xp, a, b):
    return a / b


def negative(xp, x):
    return -x


def square(xp, x):
    return x * x  # what square rounds to


def exp(xp, x):
    return xp.exp(x)


def log(xp, x):
    return xp.log(x)


def sqrt(xp, x):
    return xp.sqrt(x)


def tanh(xp, x):
    return xp.tanh(x)


def relu(xp, x):
    return xp.maximum(x, 0.0)


def relu_grad(xp, g, y):
    return g * xp.astype(y > 0, g.dtype)


def sigmoid_grad(xp, g, y):
    return g * (y * (1.0 - y))


def sigmoid(xp, x):
    """1 / (1 + exp(-x)): within a few ulp of the portable exp(x - logaddexp(0, x)), with no
    log1p in the kernels' C; exp(-x) = inf far below 0 gives 0, as it should."""
    return 1.0 / (1.0 + xp.exp(-x))


# --------------------------------------------------------------------------- LSTM cell
# ops.recurrent's cell, one kernel each way: the gates come as four views (i, f, g, o) of
# the (batch, 4 units) array, and the results are written into views of one as well.


def lstm_cell(xp, act_i, act_f, act_g, act_o, h, c_new, tanh_c, z_i, z_f, z_g, z_o, c):
    """Writes the activated gates, h', c' and tanh(c') (its first seven operands) from the
    gates' pre-activations z and the cell state c."""
    act_i, act_f, act_o = sigmoid(xp, z_i), sigmoid(xp, z_f), sigmoid(xp, z_o)
    act_g = xp.tanh(z_g)
    c_new = act_f * c + act_i * act_g
    tanh_c = xp.tanh(c_new)
    return act_i, act_f, act_g, act_o, act_o * tanh_c, c_new, tanh_c


def lstm_cell_grad(xp, d_i, d_f, d_g, d_o, d_c, act_i, act_f, act_g, act_o, c, tc, dh, dc):
    """Writes the gates' gradients and c's (its first five operands):
    ``ops.recurrent.LSTMCellElementwiseGrad``'s arithmetic, in its order."""
    dct = dc + dh * act_o * (1.0 - tc * tc)
    return (dct * act_g * (act_i * (1.0 - act_i)), dct * c * (act_f * (1.0 - act_f)),
            dct * act_i * (1.0 - act_g * act_g), dh * tc * (act_o * (1.0 - act_o)),
            dct * act_f)


# --------------------------------------------------------------------------- softmax family
# Rows are the last axis; m is the row maximum, s a row sum (kept as axes of length 1).


def stable(xp, m):
    """``ops._stable_max``'s rule: a non-finite row maximum counts as 0."""
    return xp.where(xp.isfinite(m), m, 0.0)


def shifted_exp(xp, z, m):  # summed over a row: Softmax's denominator
    return xp.exp(z - m)


def softmax(xp, z, m, s):
    return xp.exp(z - m) / s


def stable_shifted_exp(xp, z, m):  # summed over a row: log-softmax's denominator
    return xp.exp(z - stable(xp, m))


def log_softmax(xp, z, m, s):
    return (z - stable(xp, m)) - xp.log(s)


def dense_ce_term(xp, labels, z, m, s):  # summed over a row and negated: the dense loss
    # 0 * log(0) counts as 0, as in ops.SoftmaxCrossEntropy
    return labels * xp.where(labels != 0, log_softmax(xp, z, m, s), 0.0)


def picked(xp, z, label, column):  # summed over a row: the label's logit, no gather
    return xp.where(label == column, z, 0.0)


def valid(xp, label, last):
    """A label in [0, last]: ``last`` is the last class, not the class count, which the
    labels' integer type (a kernel's I, in which CuPy takes the number) may not hold."""
    return xp.logical_and(label >= 0, label <= last)


def sparse_ce_loss(xp, s, m, z_label):
    return (xp.log(s) + stable(xp, m)) - z_label


def sparse_ce_loss_unchecked(xp, s, m, z_label, label, last):
    """Labels not read on the host: a row with a label outside [0, last] is NaN."""
    return xp.where(valid(xp, label, last), sparse_ce_loss(xp, s, m, z_label), math.nan)


def sparse_ce_grad(xp, g, z, m, s, label, column):
    probs = xp.exp(log_softmax(xp, z, m, s))
    return g * (probs - xp.astype(label == column, z.dtype))


def sparse_ce_grad_unchecked(xp, g, z, m, s, label, column, last):
    d = sparse_ce_grad(xp, g, z, m, s, label, column)
    return xp.where(valid(xp, label, last), d, math.nan)


# --------------------------------------------------------------------------- updates
# The rules of optimizers.py, term by term.


def sgd(xp, param, grad, lr):
    return (param - lr * grad,)


def momentum(xp, param, velocity, grad, lr, mu):
    velocity = mu * velocity + grad
    return param - lr * velocity, velocity


def nesterov(xp, param, velocity, grad, lr, mu):
    velocity = mu * velocity + grad
    return param - lr * (grad + mu * velocity), velocity


def adam(xp, param, m, v, grad, beta1_power, beta2_power, lr, b1, c1, b2, c2, eps):
    """TF1's Adam (``AdamOptimizer.update``); b1, c1, b2, c2 from ``beta_coefficients``. The
    step size is computed per element from the 0-d powers: the same number everywhere, and
    no launch of its own."""
    step = optimizers.adam_step_size(lr, xp, beta1_power, beta2_power)
    m = b1 * m + c1 * grad
    v = b2 * v + c2 * (grad * grad)
    return param - step * (m / (xp.sqrt(v) + eps)), m, v


def adam_powers(xp, beta1_power, beta2_power, b1, b2):
    """Run after ``adam``, which reads the old powers in every element."""
    return beta1_power * b1, beta2_power * b2
