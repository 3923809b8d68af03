"""PyTorch kernels for the convolution and pooling ops of ``xpnn.ops.conv``: ATen's own
convolution, its backward and max/avg pooling in place of the portable patch gather. NHWC
images go in as permuted views, which ATen reads as channels-last NCHW (its fast layout on
the CPU), and come out the same way; filters go from HWIO to OIHW and back. TF1's
padding is ATen's where it is the same on both sides, else an explicit ``F.pad`` (zeros,
or -inf for max-pooling) before a padding-free call and a crop of the gradient after.

The max-pool gradient goes to each window's first maximum, as the portable op's does and
ATen's indices say, but the portable op also has a window's first NaN take it, and spreads
0 * inf = NaN over a window whose gradient is not finite: where the device reads values
without a synchronisation (the CPU) such windows send the op to the portable forward, else
(CUDA) ``_max_pool_indices`` and ``_nonfinite_windows`` redo what differs with ``where``.
Sums are ATen's, in its own order: results equal the portable ones to float rounding.

>>> import xpnn as xn
>>> from xpnn.devices.torch import kernels
>>> kernels.has_kernel(xn.conv.Conv2D), kernels.has_kernel(xn.conv.MaxPoolGradGrad)
(True, False)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...ops import conv
from .kernels import Constants, fast

_aten = torch.ops.aten


def _case(*tensors) -> bool:
    """Non-empty tensors of one floating dtype (the portable op promotes mixed dtypes and
    explains empty images); ``Description`` inputs count by their dtype alone."""
    dtype = tensors[0].dtype
    return (all(t.dtype == dtype and math.prod(t.shape) for t in tensors)
            and dtype.is_floating_point)


def _in_case(op, portable):
    """A decorator: the kernel for inputs in its case (``_case``) whose shapes the op
    accepts (``infer_shape`` raises the op's own error where they clash); the portable
    forward for any others."""

    def wrap(kernel):
        def forward(*values):
            if not _case(*values):
                return portable(*values)
            op.infer_shape(*(tuple(v.shape) for v in values))
            return kernel(*values)

        return forward

    return wrap


def _nchw(op, x):
    return x if op.data_format == "NCHW" else x.permute(0, 3, 1, 2)


def _out(op, y):
    return y if op.data_format == "NCHW" else y.permute(0, 2, 3, 1)


def _nchw_shape(op, shape):
    n, h, w, c = op._nhwc_shape(shape)
    return (n, c, h, w)


def _extra(op, shape, k):
    """F.pad's (left, right, top, bottom) for an input of ``shape`` in the op's layout and
    a window of size ``k``; None where TF1 pads nothing."""
    (top, bottom), (left, right) = conv._geometry(op._nhwc_shape(shape), k, op.window)[0]
    return None if top == bottom == left == right == 0 else (left, right, top, bottom)


def _padding(op, shape, k):
    """(ATen's convolution padding, F.pad's extra or None): ATen's where it is the same on
    both sides."""
    extra = _extra(op, shape, k)
    if extra is None:
        return (0, 0), None
    left, right, top, bottom = extra
    return ((top, left), None) if top == bottom and left == right else ((0, 0), extra)


def _padded(shape, extra):
    """An NCHW shape with F.pad's ``extra`` added."""
    n, c, h, w = shape
    left, right, top, bottom = extra
    return (n, c, h + top + bottom, w + left + right)


def _crop(dx, extra):
    left, right, top, bottom = extra
    return dx[:, :, top : dx.shape[2] - bottom, left : dx.shape[3] - right]


def _shaped(op, like, shape):
    """An NCHW tensor of ``shape`` that ATen reads for its shape and memory format only (a
    gradient comes out in the input's format: channels-last for NHWC), never written."""
    if op.data_format == "NCHW":
        return like.new_empty(shape)
    n, c, h, w = shape
    return like.new_empty((n, h, w, c)).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- convolution


def _conv_args(op, padding):
    w = op.window
    return list(w.strides), list(padding), list(w.dilations)


def _conv_input(op, x, k):
    """(x as NCHW, padded with zeros where TF1 pads it unevenly; ATen's padding for a
    window of size ``k``)."""
    padding, extra = _padding(op, x.shape, k)
    x = _nchw(op, x)
    return (x if extra is None else F.pad(x, extra)), padding


@fast(conv.Conv2D)
def _conv2d(op, portable, device):
    @_in_case(op, portable)
    def forward(x, w):
        x, padding = _conv_input(op, x, w.shape[:2])
        strides, padding, dilations = _conv_args(op, padding)
        return _out(op, F.conv2d(x, w.permute(3, 2, 0, 1), None, strides, padding, dilations))

    return forward


@fast(conv.Conv2DBackpropInput)
def _conv2d_backprop_input(op, portable, device):
    @_in_case(op, portable)
    def forward(x, w, g):  # x: its description
        padding, extra = _padding(op, x.shape, w.shape[:2])
        shape = _nchw_shape(op, x.shape)
        if extra is not None:
            shape = _padded(shape, extra)
        g = _nchw(op, g)
        dx = _aten.convolution_backward(g, _shaped(op, g, shape), w.permute(3, 2, 0, 1), None,
                                        *_conv_args(op, padding), False, [0, 0], 1,
                                        (True, False, False))[0]
        return _out(op, dx if extra is None else _crop(dx, extra))

    return forward


@fast(conv.Conv2DBackpropFilter)
def _conv2d_backprop_filter(op, portable, device):
    @_in_case(op, portable)
    def forward(x, w, g):  # w: its description
        kh, kw, c, o = w.shape
        x, padding = _conv_input(op, x, (kh, kw))
        g = _nchw(op, g)
        dw = _aten.convolution_backward(g, x, g.new_empty(1).expand(o, c, kh, kw), None,
                                        *_conv_args(op, padding), False, [0, 0], 1,
                                        (False, True, False))[1]
        return dw.permute(2, 3, 1, 0).contiguous()

    return forward


# ----------------------------------------------------------------------------- pooling


def _pool_input(op, x, fill):
    """(x as NCHW, padded with ``fill`` where TF1 pads it; F.pad's extra or None)."""
    extra = _extra(op, x.shape, op.ksize)
    x = _nchw(op, x)
    return (x, None) if extra is None else (F.pad(x, extra, value=fill), extra)


def _max_pool(op, x):
    """(padded NCHW input, extra, maxima, ATen's indices into each padded image)."""
    x, extra = _pool_input(op, x, -math.inf)
    top, indices = F.max_pool2d(x, op.ksize, op.window.strides, return_indices=True)
    return x, extra, top, indices


@fast(conv.MaxPool)
def _max_pool2d(op, portable, device):
    @_in_case(op, portable)
    def forward(x):
        x, _ = _pool_input(op, x, -math.inf)
        return _out(op, F.max_pool2d(x, op.ksize, op.window.strides))

    return forward


def _max_pool_indices(x, top, indices, op):
    """ATen's indices with each NaN window's first NaN instead of its last (the portable
    op's argmax): the first maximum of the window's NaN mask."""
    nan = torch.isnan(x).to(x.dtype)
    first_nan = F.max_pool2d(nan, op.ksize, op.window.strides, return_indices=True)[1]
    return torch.where(torch.isnan(top), first_nan, indices)


def _nonfinite_windows(dx, x, g, indices, op, nans):
    """dx with NaN where the portable op has 0 * (an infinite or NaN gradient): at each
    entry that such a window covers but that is not its maximum."""
    bad = torch.logical_not(torch.isfinite(g)).to(g.dtype)
    covered = _aten.avg_pool2d_backward(bad, x, op.ksize, op.window.strides, [0, 0], False,
                                        True, 1)
    at_maxima = _aten.max_pool2d_with_indices_backward(bad, x, op.ksize, op.window.strides,
                                                       [0, 0], [1, 1], False, indices)
    return torch.where(covered > at_maxima, nans.get(math.nan, (), dx.dtype), dx)


@fast(conv.MaxPoolGrad)
def _max_pool_grad(op, portable, device):
    host_reads = device.reads_without_sync
    nans = Constants(device.device)

    @_in_case(op, portable)
    def forward(x, g):
        x_in, g_in = x, g
        x, extra, top, indices = _max_pool(op, x)
        g = _nchw(op, g)
        if host_reads:  # NaN maxima, a non-finite gradient: the portable op's way
            if not bool(torch.isfinite(torch.sum(top).add_(torch.sum(g)))):
                return portable(x_in, g_in)  # (or sums that overflow: rare, and still right)
        else:
            indices = _max_pool_indices(x, top, indices, op)
        dx = _aten.max_pool2d_with_indices_backward(g, x, op.ksize, op.window.strides,
                                                    [0, 0], [1, 1], False, indices)
        if not host_reads:
            dx = _nonfinite_windows(dx, x, g, indices, op, nans)
        return _out(op, dx if extra is None else _crop(dx, extra))

    return forward


def _divisors(op, shape, like, kept):
    """The portable avg_pool divisor, NCHW-shaped (a number where no padding is counted
    out), made once per input shape."""
    key = (tuple(shape), like.dtype)
    if key not in kept:
        counts = conv._counts(torch, op._nhwc_shape(shape), op.ksize, op.window,
                              torch.empty(0, dtype=like.dtype, device=like.device))
        kept.clear()
        kept[key] = counts if isinstance(counts, float) else counts.permute(0, 3, 1, 2)
    return kept[key]


@fast(conv.AvgPool)
def _avg_pool2d(op, portable, device):
    kept = {}

    @_in_case(op, portable)
    def forward(x):
        shape, (x, _) = x.shape, _pool_input(op, x, 0.0)
        total = F.avg_pool2d(x, op.ksize, op.window.strides, divisor_override=1)
        return _out(op, torch.div(total, _divisors(op, shape, total, kept)))

    return forward


@fast(conv.AvgPoolGrad)
def _avg_pool_grad(op, portable, device):
    kept = {}

    @_in_case(op, portable)
    def forward(x, g):  # x: its description
        extra = _extra(op, x.shape, op.ksize)
        shape = _nchw_shape(op, x.shape)
        g = _nchw(op, g)
        share = torch.div(g, _divisors(op, x.shape, g, kept))
        padded = shape if extra is None else _padded(shape, extra)
        dx = _aten.avg_pool2d_backward(share, _shaped(op, g, padded), op.ksize, op.window.strides,
                                       [0, 0], False, True, 1)
        return _out(op, dx if extra is None else _crop(dx, extra))

    return forward


# ----------------------------------------------------------------------------- bias


@fast(conv.BiasAdd)
def _bias_add(op, portable, device):
    def forward(v, b):
        if not _case(v, b) or b.ndim != 1 or v.ndim < 2:
            return portable(v, b)
        op.infer_shape(tuple(v.shape), tuple(b.shape))
        if op.data_format == "NCHW":
            b = b.reshape((b.shape[0],) + (1,) * (v.ndim - 2))
        return torch.add(v, b)

    return forward


@fast(conv.BiasAddGrad)
def _bias_add_grad(op, portable, device):
    def forward(g):
        if not _case(g) or g.ndim < 2:
            return portable(g)
        return torch.sum(g, op._axes(g.ndim))

    return forward
