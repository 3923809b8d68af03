"""NumPy kernels for the convolution and pooling ops of ``xpnn.conv``: the portable
arithmetic (im2col and one GEMM, col2im by added slices, pooling over one slice per kernel
offset, in the same order) without its copies. The padded input is written into a buffer
kept per shape instead of concatenated anew; the patch matrix is copied from one strided
view of it into another kept buffer instead of stacked from kh*kw slices; col2im adds each
offset's columns into strided slices of one zero array instead of spreading, padding and
summing kh*kw arrays. Kept buffers never leave a kernel: every result is a fresh array.

>>> import xpnn as xn
>>> from xpnn.numpy_fast import kernels
>>> kernels.has_fast_forward(xn.conv.Conv2D)
True
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import conv
from .kernels import _Kept, fast

_NO_PADS = ((0, 0), (0, 0))


def _floats(*arrays):
    """Whether the kernels handle these: non-empty NumPy arrays of one floating dtype (the
    portable path promotes mixed dtypes and explains empty images)."""
    first = arrays[0]
    return all(type(a) is np.ndarray and a.dtype == first.dtype and a.size for a in arrays) \
        and first.dtype.kind == "f"


def _region(fmt, rows, cols):
    """The index of ``rows`` x ``cols`` of 4-D images in layout ``fmt``."""
    h, w, _ = conv.FORMATS[fmt]
    index = [slice(None)] * 4
    index[h], index[w] = rows, cols
    return tuple(index)


def _offsets(fmt, k, window, out_hw):
    """(i, j, index of the padded input that kernel offset (i, j) reads), row-major."""
    (sh, sw), (dh, dw), (oh, ow) = window.strides, window.dilations, out_hw
    for i in range(k[0]):
        for j in range(k[1]):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            yield i, j, _region(fmt, rows, slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _inner(fmt, pads, hw):
    """The index of the real (unpadded) entries in a padded array."""
    (top, _), (left, _) = pads
    return _region(fmt, slice(top, top + hw[0]), slice(left, left + hw[1]))


def _padded_shape(fmt, shape, pads):
    h, w, _ = conv.FORMATS[fmt]
    shape = list(shape)
    shape[h] += sum(pads[0])
    shape[w] += sum(pads[1])
    return tuple(shape)


def _padder(value):
    """fn(x, fmt, pads, hw) -> x padded with ``value``, in a buffer kept per shape (its
    border is written once; each call overwrites only the inside)."""
    kept = _Kept(lambda key: np.full(key[0], value, key[1]))

    def pad(x, fmt, pads, hw):
        if pads == _NO_PADS:
            return x
        buffer = kept.get((_padded_shape(fmt, x.shape, pads), x.dtype))
        buffer[_inner(fmt, pads, hw)] = x
        return buffer

    return pad


def _geometry(op, shape, k):
    """(NHWC shape, pads, output (oh, ow)) of an input of ``shape`` in the op's layout."""
    nhwc = op._nhwc_shape(shape)
    pads, out_hw = conv._geometry(nhwc, k, op.window)
    return nhwc, pads, out_hw


# ----------------------------------------------------------------------------- convolution


def _im2col(op, pad, kept):
    """fn(x NHWC, k) -> the (N*oh*ow, kh*kw*C) patch matrix, in a buffer kept per shape, its
    columns in the portable order (offset-major, then channel)."""

    def columns(x, k):
        pads, (oh, ow) = conv._geometry(x.shape, k, op.window)
        padded = pad(x, "NHWC", pads, x.shape[1:3])
        n, _, _, c = x.shape
        (sh, sw), (dh, dw) = op.window.strides, op.window.dilations
        s_n, s_h, s_w, s_c = padded.strides
        shape = (n, oh, ow, k[0], k[1], c)
        view = as_strided(padded, shape, (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                          writeable=False)
        cols = kept.get((shape, x.dtype))
        np.copyto(cols, view)
        return cols.reshape(n * oh * ow, k[0] * k[1] * c)

    return columns


def _im2col_for(op):
    return _im2col(op, _padder(0.0), _Kept(lambda key: np.empty(key[0], key[1])))


@fast(conv.Conv2D)
def _conv2d(op, portable):
    columns = _im2col_for(op)

    def forward(x, w):
        op.infer_shape(x.shape, w.shape)
        if not _floats(x, w):
            return portable(x, w)
        kh, kw, c, o = w.shape
        x = op._in(np, x)
        cols = columns(x, (kh, kw))
        y = np.matmul(cols, w.reshape(kh * kw * c, o))
        _, (oh, ow) = conv._geometry(x.shape, (kh, kw), op.window)
        return op._out(np, y.reshape(x.shape[0], oh, ow, o))

    return forward


@fast(conv.Conv2DBackpropFilter)
def _conv2d_backprop_filter(op, portable):
    columns = _im2col_for(op)

    def forward(x, w, g):  # w: its description only
        op.infer_shape(x.shape, w.shape, g.shape)
        if not _floats(x, g) or w.dtype != x.dtype or not math.prod(w.shape):
            return portable(x, w, g)
        kh, kw, c, o = w.shape
        cols = columns(op._in(np, x), (kh, kw))
        dw = np.matmul(cols.T, op._in(np, g).reshape(cols.shape[0], o))
        return dw.reshape(kh, kw, c, o)

    return forward


@fast(conv.Conv2DBackpropInput)
def _conv2d_backprop_input(op, portable):
    def forward(x, w, g):  # x: its description (shape and dtype) only
        op.infer_shape(x.shape, w.shape, g.shape)
        if not _floats(w, g) or x.dtype != w.dtype or not math.prod(x.shape):
            return portable(x, w, g)
        kh, kw, c, o = w.shape
        nhwc, pads, out_hw = _geometry(op, x.shape, (kh, kw))
        g = op._in(np, g)
        cols = np.matmul(g.reshape(-1, o), w.reshape(kh * kw * c, o).T)
        cols = cols.reshape(g.shape[:3] + (kh, kw, c))
        dx = np.zeros(_padded_shape("NHWC", nhwc, pads), w.dtype)
        for i, j, index in _offsets("NHWC", (kh, kw), op.window, out_hw):
            dx[index] += cols[:, :, :, i, j, :]
        return op._out(np, dx[_inner("NHWC", pads, nhwc[1:3])])

    return forward


# ----------------------------------------------------------------------------- pooling
# In the op's own layout: pooling treats channels alike, so NCHW needs no transpose.


def _pool_setup(op, x):
    """(pads, out_hw, the op's (h, w) input size)."""
    nhwc, pads, out_hw = _geometry(op, x.shape, op.ksize)
    return pads, out_hw, nhwc[1:3]


def _reduce_slices(ufunc, padded, fmt, k, window, out_hw):
    """ufunc folded over each offset's slice, left to right (the portable order), into a
    fresh array."""
    slices = [padded[index] for _, _, index in _offsets(fmt, k, window, out_hw)]
    if len(slices) == 1:
        return slices[0].copy()
    out = ufunc(slices[0], slices[1])
    for piece in slices[2:]:
        ufunc(out, piece, out=out)
    return out


def _pool(ufunc, fill, finish=None):
    """The kernel maker of a pooling: ``ufunc`` folded over the window's slices of the input
    padded with ``fill``, then ``finish(op, x, total)``."""

    def make(op, portable):
        pad = _padder(fill)

        def forward(x):
            op.infer_shape(x.shape)
            if not _floats(x):
                return portable(x)
            pads, out_hw, hw = _pool_setup(op, x)
            padded = pad(x, op.data_format, pads, hw)
            total = _reduce_slices(ufunc, padded, op.data_format, op.ksize, op.window, out_hw)
            return total if finish is None else finish(op, x, total)

        return forward

    return make


fast(conv.MaxPool)(_pool(np.maximum, -math.inf))
fast(conv.AvgPool)(_pool(np.add, 0.0, lambda op, x, total: np.divide(
    total, _counts(op, x, x), out=total)))


def _counts(op, x, like):
    """The portable divisor of each window (in ``like``'s dtype), shaped to broadcast in
    the op's layout."""
    counts = conv._counts(np, op._nhwc_shape(x.shape), op.ksize, op.window, like)
    if isinstance(counts, float) or op.data_format == "NHWC":
        return counts
    return counts.reshape(1, 1, counts.shape[1], counts.shape[2])


@fast(conv.AvgPoolGrad)
def _avg_pool_grad(op, portable):
    def forward(x, g):  # x: its description only
        op.infer_shape(x.shape, g.shape)
        if not _floats(g) or x.dtype != g.dtype or not math.prod(x.shape):
            return portable(x, g)
        pads, out_hw, hw = _pool_setup(op, x)
        fmt = op.data_format
        share = np.divide(g, _counts(op, x, g))
        dx = np.zeros(_padded_shape(fmt, x.shape, pads), g.dtype)
        for _, _, index in _offsets(fmt, op.ksize, op.window, out_hw):
            dx[index] += share
        return dx[_inner(fmt, pads, hw)]

    return forward


@fast(conv.MaxPoolGrad)
def _max_pool_grad(op, portable):
    pad = _padder(-math.inf)

    def forward(x, g):
        op.infer_shape(x.shape, g.shape)
        if not _floats(x, g):
            return portable(x, g)
        pads, out_hw, hw = _pool_setup(op, x)
        fmt = op.data_format
        padded = pad(x, fmt, pads, hw)
        top = _reduce_slices(np.maximum, padded, fmt, op.ksize, op.window, out_hw)
        dx = np.zeros(padded.shape, g.dtype)
        taken = np.zeros(top.shape, bool)
        for _, _, index in _offsets(fmt, op.ksize, op.window, out_hw):
            # The first maximum in row-major order, NaN counting as the maximum (argmax's).
            piece = padded[index]
            hit = np.equal(piece, top) | np.isnan(piece)
            hit &= ~taken
            taken |= hit
            dx[index] += np.multiply(hit, g)  # 0 * inf is NaN there too
        return dx[_inner(fmt, pads, hw)]

    return forward
