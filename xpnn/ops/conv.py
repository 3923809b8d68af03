"""Convolution and pooling ops, TensorFlow 1's (and ``bias_add`` and ``flatten``, how
images meet dense layers): NHWC images (or NCHW), HWIO filters, SAME and
VALID padding as TF1 pads, and every gradient an op with its own gradient.

The array API has no strided views (no ``as_strided``, no ``sliding_window_view``), no
``pad`` and no scatter. So a convolution gathers its patches with one strided slice per
kernel offset and multiplies them with one ``matmul``; padding concatenates blocks made on
the input's device; and a gradient puts patches back by spreading, padding and adding them.

>>> import numpy as np
>>> import xpnn as xn
>>> x = xn.constant(np.arange(16.0).reshape(1, 4, 4, 1))
>>> y = xn.max_pool2d(xn.conv2d(x, np.ones((2, 2, 1, 1)), padding="SAME"), 2, 2, "VALID")
>>> xn.Session().run(xn.flatten(y)).tolist()
[[30.0, 34.0, 46.0, 50.0]]
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass

import array_api_compat

from ..devices import indicator
from ..graph import Operation
from .arithmetic import ZerosLike
from .core import _pad_axis, _spread
from .shape import ReshapeLike

# --------------------------------------------------------------------------- arguments

# data_format -> the axes of (height, width, channels)
FORMATS = {"NHWC": (1, 2, 3), "NCHW": (2, 3, 1)}


def _format(data_format, what):
    if data_format not in FORMATS:
        raise ValueError(f"{what}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    return data_format


def _integers(values, what, argument):
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise ValueError(f"{what}: {argument} must hold integers, got {values!r}") from None


def _pair(value, what, argument, data_format):
    """(h, w) from an int, a pair, or TF1's 4-list ([1, h, w, 1] in NHWC, [1, 1, h, w] in
    NCHW), each at least 1."""
    if isinstance(value, (list, tuple)):
        items = _integers(value, what, argument)
    else:
        items = _integers([value], what, argument)
    h_axis, w_axis, c_axis = FORMATS[data_format]
    if len(items) == 4:
        if items[0] != 1 or items[c_axis] != 1:
            raise ValueError(
                f"{what}: {argument} {list(value)} must be 1 in the batch and channel axes "
                f"({data_format}); only the spatial ones may differ"
            )
        items = (items[h_axis], items[w_axis])
    pair = items * 2 if len(items) == 1 else items
    if len(pair) != 2:
        raise ValueError(f"{what}: {argument} must be an int, a pair or a 4-list, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{what}: {argument} must be positive, got {value!r}")
    return pair


def _padding(padding, what, data_format, explicit=True):
    """'SAME', 'VALID', or ((top, bottom), (left, right)) from explicit pads given that way or
    TF1's way ([[0, 0], [top, bottom], [left, right], [0, 0]] in NHWC)."""
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        return padding.upper()
    choices = "'SAME', 'VALID'" + (" or explicit pads ((top, bottom), (left, right))"
                                   if explicit else "")
    if isinstance(padding, str) or not explicit:
        raise ValueError(f"{what}: padding must be {choices}, got {padding!r}")
    try:
        rows = [_integers(row, what, "padding") for row in padding]
    except TypeError:
        rows = []
    if len(rows) == 4:
        h_axis, w_axis, c_axis = FORMATS[data_format]
        if rows[0] != (0, 0) or rows[c_axis] != (0, 0):
            raise ValueError(f"{what}: padding {padding!r} pads the batch or channel axis "
                             f"({data_format}); pad only the spatial ones")
        rows = [rows[h_axis], rows[w_axis]]
    if len(rows) != 2 or any(len(row) != 2 for row in rows):
        raise ValueError(f"{what}: padding must be {choices}, got {padding!r}")
    if min(rows[0] + rows[1]) < 0:
        raise ValueError(f"{what}: padding must not be negative, got {padding!r}")
    return (rows[0], rows[1])


@dataclass(frozen=True)
class Window:
    """How a kernel slides over the two spatial axes (0: height, 1: width)."""

    strides: tuple = (1, 1)
    dilations: tuple = (1, 1)
    padding: str | tuple = "VALID"

    def span(self, axis, k):
        """How many input entries a kernel of size k covers (dilated)."""
        return (k - 1) * self.dilations[axis] + 1

    def pads(self, axis, n, k):
        """(before, after) padding of an axis of length n, TF1's rule for SAME: the output
        has ceil(n / s) entries, the smaller half of the padding goes before."""
        if self.padding == "VALID":
            return (0, 0)
        if self.padding == "SAME":
            s = self.strides[axis]
            total = max((-(-n // s) - 1) * s + self.span(axis, k) - n, 0)
            return (total // 2, total - total // 2)
        return self.padding[axis]

    def out(self, axis, n, k):
        before, after = self.pads(axis, n, k)
        return (n + before + after - self.span(axis, k)) // self.strides[axis] + 1


# --------------------------------------------------------------------------- static shapes


def _layout(data_format, n, h, w, c):
    return (n, h, w, c) if data_format == "NHWC" else (n, c, h, w)


def _output_hw(what, data_format, x, k, window, described):
    """(oh, ow) for an input of shape x and a kernel k = (kh, kw), None where unknown;
    a ValueError where a known kernel does not fit the (padded) input."""
    out = []
    for axis, (n, size) in enumerate(zip((x[FORMATS[data_format][0]],
                                          x[FORMATS[data_format][1]]), k)):
        if n is None or size is None:
            out.append(None)
            continue
        before, after = window.pads(axis, n, size)
        span = window.span(axis, size)
        if n == 0 or n + before + after < span:
            side = "rows" if axis == 0 else "columns"
            padded = f" (+ {before + after} padding)" if before + after else ""
            raise ValueError(
                f"{what}: the kernel covers {span} {side} (size {size}, dilation "
                f"{window.dilations[axis]}) but the input has {n}{padded}, padding "
                f"{window.padding if isinstance(window.padding, str) else 'explicit'}: "
                f"{described}; use padding='SAME', a smaller kernel or a larger input"
            )
        out.append(window.out(axis, n, size))
    return tuple(out)


def conv_output_shape(what, data_format, x, w, window):
    """Conv2D's output shape (in ``data_format``) from its input's and filters' shapes, None
    where unknown; a ValueError naming ``what`` where they cannot go together.

    >>> conv_output_shape("conv", "NHWC", (None, 28, 28, 1), (5, 5, 1, 8), Window((2, 2)))
    (None, 12, 12, 8)
    """
    if x is None:
        return None
    w = (None,) * 4 if w is None else tuple(w)
    described = f"input of shape {tuple(x)} ({data_format}), filters of shape {w} (HWIO)"
    if len(x) != 4 or len(w) != 4:
        raise ValueError(f"{what}: conv2d needs a 4-D input and 4-D filters, got {described}")
    c = x[FORMATS[data_format][2]]
    if c is not None and w[2] is not None and c != w[2]:
        raise ValueError(
            f"{what}: {described}: the input has {c} channels but the filters take {w[2]} "
            "(their axis 2); make them agree"
        )
    oh, ow = _output_hw(what, data_format, x, w[:2], window, described)
    return _layout(data_format, x[0], oh, ow, w[3])


def pool_output_shape(what, data_format, x, ksize, window):
    """A pooling op's output shape (in ``data_format``), None where unknown."""
    if x is None:
        return None
    described = f"input of shape {tuple(x)} ({data_format}), window {ksize}"
    if len(x) != 4:
        raise ValueError(f"{what}: pooling needs a 4-D input, got {described}")
    oh, ow = _output_hw(what, data_format, x, ksize, window, described)
    return _layout(data_format, x[0], oh, ow, x[FORMATS[data_format][2]])


def _check_grad(what, grad, expected, of="the forward op's output"):
    """The incoming gradient must have the shape of ``of`` (``expected``)."""
    if grad is None or expected is None:
        return
    if len(grad) != len(expected) or any(
            a is not None and b is not None and a != b for a, b in zip(grad, expected)):
        raise ValueError(f"{what}: the gradient has shape {tuple(grad)} but {of} has shape "
                         f"{tuple(expected)}")


# --------------------------------------------------------------------------- portable kernels
# All in NHWC; the ops transpose NCHW in and out.


def _pad(xp, x, pads, value=0.0):
    """x with pads ((top, bottom), (left, right)) rows and columns of ``value``."""
    (top, bottom), (left, right) = pads
    return _pad_axis(xp, _pad_axis(xp, x, 1, top, bottom, value), 2, left, right, value)


def _crop(x, pads, hw):
    """The inverse of _pad: the (h, w) entries after the top and left padding."""
    top, left = pads[0][0], pads[1][0]
    return x[:, top : top + hw[0], left : left + hw[1], :]


def _geometry(shape, k, window):
    """The padding and output size of each spatial axis of an NHWC ``shape``."""
    pads = (window.pads(0, shape[1], k[0]), window.pads(1, shape[2], k[1]))
    return pads, (window.out(0, shape[1], k[0]), window.out(1, shape[2], k[1]))


def _patches(x, k, window, out_hw):
    """One (N, oh, ow, C) strided slice of the padded x per kernel offset, row-major."""
    (sh, sw), (dh, dw), (oh, ow) = window.strides, window.dilations, out_hw
    rows, cols = sh * (oh - 1) + 1, sw * (ow - 1) + 1
    return [x[:, i * dh : i * dh + rows : sh, j * dw : j * dw + cols : sw, :]
            for i in range(k[0]) for j in range(k[1])]


def _im2col(xp, x, k, window, out_hw):
    """The patches as one (N*oh*ow, kh*kw*C) matrix (im2col): the convolution is then one
    large matmul with the (kh*kw*C, O) filters, a single GEMM on every backend, instead of
    kh*kw thin ones; it costs kh*kw copies of the input. The (offset, channel) order of its
    columns is that of HWIO filters reshaped, so the filters need no transpose."""
    stacked = xp.stack(_patches(x, k, window, out_hw), axis=3)
    n, oh, ow, kk, c = stacked.shape
    return xp.reshape(stacked, (n * oh * ow, kk * c))


def _col2im(xp, cols, k, window, padded_hw):
    """The adjoint of _patches: cols (N, oh, ow, kh*kw or 1, C) added back where each
    offset's slice came from, in a zero (N, Hp, Wp, C) array (an axis of 1: the same piece
    at every offset). No scatter in the standard and no setitem on JAX, so each piece is
    spread to its stride, padded to its offset, and the pieces are summed."""
    spread = _spread(xp, _spread(xp, cols, 1, window.strides[0]), 2, window.strides[1])
    (dh, dw), (hp, wp) = window.dilations, padded_hw
    hs, ws = spread.shape[1], spread.shape[2]
    total = None
    for index in range(k[0] * k[1]):
        i, j = divmod(index, k[1])
        piece = spread[:, :, :, index if spread.shape[3] > 1 else 0, :]
        piece = _pad(xp, piece, ((i * dh, hp - i * dh - hs), (j * dw, wp - j * dw - ws)))
        total = piece if total is None else total + piece
    return total


def _padded_hw(shape, pads):
    return (shape[1] + sum(pads[0]), shape[2] + sum(pads[1]))


def _conv(xp, x, w, window):
    kh, kw, c, o = w.shape
    pads, (oh, ow) = _geometry(x.shape, (kh, kw), window)
    cols = _im2col(xp, _pad(xp, x, pads), (kh, kw), window, (oh, ow))
    y = xp.matmul(cols, xp.reshape(w, (kh * kw * c, o)))
    return xp.reshape(y, (x.shape[0], oh, ow, o))


def _conv_backprop_input(xp, x_shape, w, g, window):
    kh, kw, c, o = w.shape
    n, oh, ow, _ = g.shape
    pads, _ = _geometry(x_shape, (kh, kw), window)
    cols = xp.matmul(xp.reshape(g, (n * oh * ow, o)),
                     xp.matrix_transpose(xp.reshape(w, (kh * kw * c, o))))
    cols = xp.reshape(cols, (n, oh, ow, kh * kw, c))
    padded = _col2im(xp, cols, (kh, kw), window, _padded_hw(x_shape, pads))
    return _crop(padded, pads, x_shape[1:3])


def _conv_backprop_filter(xp, x, w_shape, g, window):
    kh, kw, c, o = w_shape
    n, oh, ow, _ = g.shape
    pads, _ = _geometry(x.shape, (kh, kw), window)
    cols = _im2col(xp, _pad(xp, x, pads), (kh, kw), window, (oh, ow))
    dw = xp.matmul(xp.matrix_transpose(cols), xp.reshape(g, (n * oh * ow, o)))
    return xp.reshape(dw, (kh, kw, c, o))


def _first_max(xp, x, k, window):
    """One-hot (N, oh, ow, kh*kw, C) of each window's first maximum, row-major within the
    window (argmax's first occurrence: where PyTorch's max_pool2d sends the gradient)."""
    pads, out_hw = _geometry(x.shape, k, window)
    stacked = xp.stack(_patches(_pad(xp, x, pads, -math.inf), k, window, out_hw), axis=3)
    first = xp.argmax(stacked, axis=3, keepdims=True)
    offsets = xp.arange(k[0] * k[1], dtype=first.dtype, device=array_api_compat.device(x))
    return indicator(xp, first == xp.reshape(offsets, (-1, 1)), x.dtype), pads, out_hw


def _counts(xp, x_shape, k, window, like):
    """How many real (unpadded) entries each window holds: TF1's avg_pool divisor."""
    pads, out_hw = _geometry(x_shape, k, window)
    if pads == ((0, 0), (0, 0)):
        return float(k[0] * k[1])
    per_axis = []
    for axis in (0, 1):
        n, s, before = x_shape[axis + 1], window.strides[axis], pads[axis][0]
        per_axis.append([float(min(r * s - before + k[axis], n) - max(r * s - before, 0))
                         for r in range(out_hw[axis])])
    dev = array_api_compat.device(like)
    rows = xp.asarray(per_axis[0], dtype=like.dtype, device=dev)
    cols = xp.asarray(per_axis[1], dtype=like.dtype, device=dev)
    return xp.reshape(rows, (1, -1, 1, 1)) * xp.reshape(cols, (1, 1, -1, 1))


# --------------------------------------------------------------------------- ops


class _Spatial(Operation):
    """An op on NHWC or NCHW images; its arithmetic runs in NHWC."""

    data_format = "NHWC"

    def _in(self, xp, x):
        return x if self.data_format == "NHWC" else xp.permute_dims(x, (0, 2, 3, 1))

    def _out(self, xp, y):
        return y if self.data_format == "NHWC" else xp.permute_dims(y, (0, 3, 1, 2))

    def _nhwc_shape(self, shape):
        shape = tuple(shape)
        return shape if self.data_format == "NHWC" else (shape[0],) + shape[2:] + shape[1:2]


class _ConvOp(_Spatial):
    def __init__(self, *inputs, window, data_format="NHWC", name=None):
        self.window, self.data_format = window, data_format
        super().__init__(*inputs, name=name)

    def _same(self, cls, *inputs):
        """Another conv op with this one's strides, dilations, padding and format."""
        return cls(*inputs, window=self.window, data_format=self.data_format)

    def _output_shape(self, x, w):
        return conv_output_shape(self.label, self.data_format, x, w, self.window)


class Conv2D(_ConvOp):
    """The convolution (TF1's cross-correlation) of NHWC/NCHW input with HWIO filters."""

    def infer_shape(self, x, w):
        return self._output_shape(x, w)

    def forward(self, xp, x, w):
        self.infer_shape(tuple(x.shape), tuple(w.shape))  # where shapes were unknown
        return self._out(xp, _conv(xp, self._in(xp, x), w, self.window))

    def backward(self, grad):
        x, w = self.inputs
        return [self._same(Conv2DBackpropInput, x, w, grad),
                self._same(Conv2DBackpropFilter, x, w, grad)]


class _ConvGrad(_ConvOp):
    """A gradient of Conv2D, (input, filters, out_backprop) in TF1's order, shaped like the
    one of the first two it reads for its shape only."""

    def infer_shape(self, x, w, g):
        _check_grad(self.label, g, self._output_shape(x, w))
        return (x, w)[self.shape_only[0]]


class Conv2DBackpropInput(_ConvGrad):
    """The gradient of Conv2D with respect to its input."""

    shape_only = (0,)

    def forward(self, xp, x, w, g):
        self.infer_shape(tuple(x.shape), tuple(w.shape), tuple(g.shape))
        dx = _conv_backprop_input(xp, self._nhwc_shape(x.shape), w, self._in(xp, g), self.window)
        return self._out(xp, dx)

    def backward(self, grad):
        # Linear in (filters, out_backprop): the adjoint of an adjoint is the convolution.
        x, w, g = self.inputs
        return [None, self._same(Conv2DBackpropFilter, grad, w, g), self._same(Conv2D, grad, w)]


class Conv2DBackpropFilter(_ConvGrad):
    """The gradient of Conv2D with respect to its filters."""

    shape_only = (1,)

    def forward(self, xp, x, w, g):
        self.infer_shape(tuple(x.shape), tuple(w.shape), tuple(g.shape))
        return _conv_backprop_filter(xp, self._in(xp, x), tuple(w.shape), self._in(xp, g),
                                     self.window)

    def backward(self, grad):
        x, w, g = self.inputs
        return [self._same(Conv2DBackpropInput, x, grad, g), None, self._same(Conv2D, x, grad)]


class _PoolOp(_Spatial):
    def __init__(self, *inputs, ksize, window, data_format="NHWC", name=None):
        self.ksize, self.window, self.data_format = ksize, window, data_format
        super().__init__(*inputs, name=name)

    def _same(self, cls, *inputs):
        return cls(*inputs, ksize=self.ksize, window=self.window, data_format=self.data_format)

    def _output_shape(self, x):
        return pool_output_shape(self.label, self.data_format, x, self.ksize, self.window)


class _PoolGrad(_PoolOp):
    """A pooling gradient: (input, grad) -> shaped like the input."""

    def infer_shape(self, x, g):
        _check_grad(self.label, g, self._output_shape(x))
        return x


class _Pool(_PoolOp):
    """A pooling: ``_combine`` of the window's patches, padded with ``pad_value``."""

    pad_value = 0.0

    def infer_shape(self, x):
        return self._output_shape(x)

    def forward(self, xp, x):
        self.infer_shape(tuple(x.shape))
        x = self._in(xp, x)
        pads, out_hw = _geometry(x.shape, self.ksize, self.window)
        patches = _patches(_pad(xp, x, pads, self.pad_value), self.ksize, self.window, out_hw)
        return self._out(xp, self._combine(xp, patches, x))


class MaxPool(_Pool):
    """The max of each window; SAME padding counts as -inf."""

    pad_value = -math.inf

    def _combine(self, xp, patches, x):
        return functools.reduce(xp.maximum, patches)

    def backward(self, grad):
        return [self._same(MaxPoolGrad, self.inputs[0], grad)]


class MaxPoolGrad(_PoolGrad):
    """Each window's gradient sent to its first maximum (TF1's MaxPoolGrad, without the
    original output it takes: the maxima are found again from the input)."""

    def forward(self, xp, x, g):
        self.infer_shape(tuple(x.shape), tuple(g.shape))
        x = self._in(xp, x)
        hot, pads, _ = _first_max(xp, x, self.ksize, self.window)
        cols = hot * xp.expand_dims(self._in(xp, g), axis=3)
        padded = _col2im(xp, cols, self.ksize, self.window, _padded_hw(x.shape, pads))
        return self._out(xp, _crop(padded, pads, x.shape[1:3]))

    def backward(self, grad):
        # Piecewise constant in the input (None); linear in the gradient.
        return [None, self._same(MaxPoolGradGrad, self.inputs[0], grad)]


class MaxPoolGradGrad(_PoolOp):
    """(input, grad of the input's shape) -> grad at each window's first maximum, shaped like
    the pooled output: the gradient of MaxPoolGrad with respect to its gradient."""

    def infer_shape(self, x, g):
        _check_grad(self.label, g, x, of="the pooled input")
        return self._output_shape(x)

    def forward(self, xp, x, g):
        self.infer_shape(tuple(x.shape), tuple(g.shape))
        x, g = self._in(xp, x), self._in(xp, g)
        hot, pads, out_hw = _first_max(xp, x, self.ksize, self.window)
        stacked = xp.stack(_patches(_pad(xp, g, pads), self.ksize, self.window, out_hw),
                           axis=3)
        return self._out(xp, xp.sum(hot * stacked, axis=3))

    def backward(self, grad):
        return [None, self._same(MaxPoolGrad, self.inputs[0], grad)]


class AvgPool(_Pool):
    """The mean of each window over its real entries (SAME padding is not counted)."""

    def _combine(self, xp, patches, x):
        total = functools.reduce(xp.add, patches)
        return total / _counts(xp, x.shape, self.ksize, self.window, x)

    def backward(self, grad):
        return [self._same(AvgPoolGrad, self.inputs[0], grad)]


class AvgPoolGrad(_PoolGrad):
    """Each window's gradient shared by its real entries: (input (its shape only), grad)."""

    shape_only = (0,)

    def forward(self, xp, x, g):
        self.infer_shape(tuple(x.shape), tuple(g.shape))
        x_shape, g = self._nhwc_shape(x.shape), self._in(xp, g)
        pads, _ = _geometry(x_shape, self.ksize, self.window)
        share = g / _counts(xp, x_shape, self.ksize, self.window, g)
        padded = _col2im(xp, xp.expand_dims(share, axis=3), self.ksize, self.window,
                         _padded_hw(x_shape, pads))
        return self._out(xp, _crop(padded, pads, x_shape[1:3]))

    def backward(self, grad):
        return [None, self._same(AvgPool, grad)]


class BiasAdd(Operation):
    """value + bias along the channel axis (the last in NHWC, axis 1 in NCHW)."""

    def __init__(self, value, bias, data_format="NHWC", name=None):
        self.data_format = data_format
        super().__init__(value, bias, name=name)

    def infer_shape(self, v, b):
        if v is None:
            return None
        axis = -1 if self.data_format == "NHWC" else 1
        if len(v) < 2 or (b is not None and len(b) != 1):
            raise ValueError(f"{self.label}: bias_add needs a value of rank >= 2 and a 1-D "
                             f"bias, got shapes {tuple(v)} and {None if b is None else tuple(b)}")
        if b is not None and None not in (v[axis], b[0]) and v[axis] != b[0]:
            raise ValueError(f"{self.label}: bias of shape {tuple(b)} does not match the "
                             f"{v[axis]} channels of value {tuple(v)} ({self.data_format})")
        return v

    def forward(self, xp, v, b):
        self.infer_shape(tuple(v.shape), tuple(b.shape))
        if self.data_format == "NCHW":
            b = xp.reshape(b, (b.shape[0],) + (1,) * (v.ndim - 2))
        return xp.add(v, b)

    def backward(self, grad):
        return [grad, BiasAddGrad(grad, self.data_format)]


class BiasAddGrad(Operation):
    """The gradient of BiasAdd's bias: grad summed over every axis but the channels."""

    def __init__(self, grad, data_format="NHWC", name=None):
        self.data_format = data_format
        super().__init__(grad, name=name)

    def _axes(self, ndim):
        channel = ndim - 1 if self.data_format == "NHWC" else 1
        return tuple(a for a in range(ndim) if a != channel)

    def infer_shape(self, g):
        if g is None:
            return None
        return (g[-1] if self.data_format == "NHWC" else g[1],)

    def forward(self, xp, g):
        return xp.sum(g, axis=self._axes(g.ndim))

    def backward(self, grad):
        # Spread back along the channel axis: a bias_add on zeros of the gradient's shape.
        return [BiasAdd(ZerosLike(self.inputs[0]), grad, self.data_format)]


class Flatten(Operation):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def infer_shape(self, shape):
        if shape is None:
            return None
        if len(shape) == 0:
            raise ValueError(f"{self.label}: flatten needs a batch axis, got a scalar")
        rest = shape[1:]
        return (shape[0], None if None in rest else math.prod(rest))

    def forward(self, xp, x):
        self.infer_shape(tuple(x.shape))
        return xp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    def backward(self, grad):
        return [ReshapeLike(grad, self.inputs[0])]


# --------------------------------------------------------------------------- functions


def conv2d(input, filters, strides=1, padding="VALID", data_format="NHWC", dilations=1,
           name=None):
    """2-D convolution, TF1's ``tf.nn.conv2d``: ``input`` NHWC (or NCHW with
    ``data_format="NCHW"``), ``filters`` HWIO; ``strides`` and ``dilations`` an int, a pair
    or ``[1, sh, sw, 1]``; ``padding`` "SAME" (output ``ceil(in / stride)``, the odd row or
    column of padding at the bottom/right), "VALID", or explicit
    ``((top, bottom), (left, right))`` / ``[[0, 0], [top, bottom], [left, right], [0, 0]]``.

    >>> import numpy as np
    >>> import xpnn as xn
    >>> x = xn.constant(np.arange(9.0).reshape(1, 3, 3, 1))
    >>> y = xn.conv2d(x, np.ones((2, 2, 1, 2)), padding="SAME")
    >>> y.shape
    (1, 3, 3, 2)
    >>> xn.Session().run(y)[0, :, :, 0].tolist()
    [[8.0, 12.0, 7.0], [20.0, 24.0, 13.0], [13.0, 15.0, 8.0]]
    """
    what = name or "conv2d"
    data_format = _format(data_format, what)
    window = Window(_pair(strides, what, "strides", data_format),
                    _pair(dilations, what, "dilations", data_format),
                    _padding(padding, what, data_format))
    return Conv2D(input, filters, window=window, data_format=data_format, name=name)


def _pool(cls, what, value, ksize, strides, padding, data_format, name):
    what = name or what
    data_format = _format(data_format, what)
    window = Window(_pair(strides, what, "strides", data_format), (1, 1),
                    _padding(padding, what, data_format, explicit=False))
    return cls(value, ksize=_pair(ksize, what, "ksize", data_format), window=window,
               data_format=data_format, name=name)


def max_pool2d(value, ksize, strides, padding, data_format="NHWC", name=None):
    """The max over each ``ksize`` window, TF1's ``tf.nn.max_pool``; SAME padding counts as
    -inf. The gradient of a window goes to its first maximum in row-major order, as in
    PyTorch's ``max_pool2d`` (ties do not share it).

    >>> import xpnn as xn
    >>> x = xn.constant([[[[1.0], [3.0]], [[3.0], [2.0]]]])
    >>> y = xn.max_pool2d(x, 2, 2, "VALID")
    >>> sess = xn.Session()
    >>> sess.run(y).tolist(), sess.run(xn.gradients(y, [x])[0])[0, :, :, 0].tolist()
    ([[[[3.0]]]], [[0.0, 1.0], [0.0, 0.0]])
    """
    return _pool(MaxPool, "max_pool2d", value, ksize, strides, padding, data_format, name)


def avg_pool2d(value, ksize, strides, padding, data_format="NHWC", name=None):
    """The mean over each ``ksize`` window, TF1's ``tf.nn.avg_pool``; with SAME padding each
    window is divided by its number of real (unpadded) entries.

    >>> import xpnn as xn
    >>> x = xn.constant([[[[1.0], [2.0], [6.0]]]])  # one row of three
    >>> xn.Session().run(xn.avg_pool2d(x, [1, 1, 2, 1], [1, 1, 2, 1], "SAME")).tolist()
    [[[[1.5], [6.0]]]]
    """
    return _pool(AvgPool, "avg_pool2d", value, ksize, strides, padding, data_format, name)


def bias_add(value, bias, data_format="NHWC", name=None):
    """``value`` plus a 1-D ``bias`` along the channel axis (the last in NHWC, axis 1 in
    NCHW), TF1's ``tf.nn.bias_add``; the bias's gradient sums over the other axes.

    >>> import xpnn as xn
    >>> value = [[[1.0, 2.0], [3.0, 4.0]]]  # N=1, C=2, W=2
    >>> xn.Session().run(xn.bias_add(value, [10.0, 20.0], data_format="NCHW")).tolist()
    [[[11.0, 12.0], [23.0, 24.0]]]
    """
    data_format = _format(data_format, name or "bias_add")
    return BiasAdd(value, bias, data_format, name=name)


def flatten(x, name=None):
    """(N, ...) -> (N, product of the rest): images into rows for a dense layer.

    >>> import xpnn as xn
    >>> xn.flatten(xn.placeholder(shape=(None, 4, 4, 3))).shape
    (None, 48)
    """
    return Flatten(x, name=name)


__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "bias_add", "flatten", "conv_output_shape",
           "pool_output_shape", "Window", "Conv2D", "Conv2DBackpropInput",
           "Conv2DBackpropFilter", "MaxPool", "MaxPoolGrad", "MaxPoolGradGrad", "AvgPool",
           "AvgPoolGrad", "BiasAdd", "BiasAddGrad", "Flatten"]
