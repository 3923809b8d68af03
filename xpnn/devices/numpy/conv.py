"""NumPy kernels for the convolution and pooling ops of ``xpnn.ops.conv``: the portable
arithmetic (im2col and one GEMM, col2im by added slices, pooling over one slice per kernel
offset, in the same order) without its copies. The padded input is written into a buffer
kept per shape instead of concatenated anew; the patch matrix is copied from one strided
view of it into another kept buffer instead of stacked from kh*kw slices (a 1x1 filter
uses the input itself); col2im adds each offset's columns into strided slices of one zero
array instead of spreading, padding and summing kh*kw arrays, and at stride 1 BLAS
accumulates them into shifted rows of dx. The products run image block by image block on
each of xpnn's threads (``_by_blocks``), a block's patches gathered right before its product
while they are in cache. Kept buffers never leave a kernel: every result is a fresh array.

>>> import xpnn as xn
>>> from xpnn.devices.numpy import kernels
>>> kernels.has_fast_forward(xn.conv.Conv2D)
True
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...ops import conv
from . import blas, threads
from .kernels import _filled, _Kept, _relu_with, _row_axes, _rowwise, fast

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
    """fn(x NHWC, k) -> (the (N*oh*ow, kh*kw*C) patch matrix, in a buffer kept per shape,
    its columns in the portable order (offset-major, then channel); gather(a, b), which
    fills the rows of images a..b and returns them). A 1x1 filter at stride 1 without
    padding multiplies x itself: gather only slices it."""

    def columns(x, k):
        pads, (oh, ow) = conv._geometry(x.shape, k, op.window)
        n, _, _, c = x.shape
        per = oh * ow
        if k == (1, 1) and pads == _NO_PADS and tuple(op.window.strides) == (1, 1):
            matrix = x.reshape(n * per, c)  # each patch is one pixel: x itself, no copy
            return matrix, lambda a, b: matrix[a * per:b * per]
        padded = pad(x, "NHWC", pads, x.shape[1:3])
        if c == 1:  # offset-major rows: each a copy of whole image rows, not of 1 value
            cols_t = kept.get(((k[0] * k[1], n, oh, ow), x.dtype))
            offsets = list(_offsets("NHWC", k, op.window, (oh, ow)))

            def gather_rows(a, b):
                for i, j, index in offsets:
                    np.copyto(cols_t[i * k[1] + j, a:b], padded[a:b][index][..., 0])
                return cols_t[:, a:b].reshape(k[0] * k[1], (b - a) * per).T

            return cols_t.reshape(k[0] * k[1], n * per).T, gather_rows
        (sh, sw), (dh, dw) = op.window.strides, op.window.dilations
        s_n, s_h, s_w, s_c = padded.strides
        shape = (n, oh, ow, k[0], k[1], c)
        view = as_strided(padded, shape, (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                          writeable=False)
        cols = kept.get((shape, x.dtype))

        def gather(a, b):
            if b - a == n:  # the whole batch, not split: the copy alone split over threads
                threads.over_batch(lambda i, j: np.copyto(cols[i:j], view[i:j]), n, cols.size)
            else:  # a block, on the thread that multiplies it
                np.copyto(cols[a:b], view[a:b])
            return cols[a:b].reshape((b - a) * per, k[0] * k[1] * c)

        return cols.reshape(n * per, k[0] * k[1] * c), gather

    return columns


def _im2col_for(op):
    return _im2col(op, _padder(0.0), _Kept(lambda key: np.empty(key[0], key[1])))


# Entries (patches, gradients, results) one block of images touches in a split product:
# small enough to stay in cache from its gathering to its product, large enough that its
# product is not a short one.
_BLOCK_ENTRIES = 1 << 19


def _by_blocks(n, entries_per_image, block, total) -> None:
    """Run ``block(a, b)`` over blocks of images covering range(n), which xpnn's threads
    take in turn (``threads.over_blocks``), with OpenBLAS at one thread (so the cores are
    xpnn's); one call over all n where the products are not split (one thread, small work,
    no OpenBLAS thread count)."""
    if threads.count() < 2 or total < threads.MIN_ELEMENTS or not blas.splits_products():
        block(0, n)
        return
    step = max(1, _BLOCK_ENTRIES // max(1, entries_per_image))
    with blas.one_thread():
        threads.over_blocks(block, n, step, total)


class Handoff:
    """What a forward kernel leaves for its gradient's kernel in the same run (``pairs``):
    Conv2D's patch matrix, MaxPool's maxima. Taken once, and only for the very input array
    it was made from."""

    def __init__(self):
        self.source = self.cols = None

    def leave(self, source, cols):
        self.source, self.cols = source, cols

    def take(self, source):
        cols = self.cols if source is self.source and source is not None else None
        self.source = self.cols = None
        return cols


class ConvBias:
    """A BiasAdd (and the Relu folded into it) that a Conv2D kernel applies to each block of
    images right after the block's product, while it is in cache (``fusion``): ``done``
    tells the BiasAdd step whether this run's conv added it. The rows are laid out as the
    BiasAdd kernel lays them (``_bias_add_maker``) and go through the same ufunc calls, so
    the result is that kernel's bit for bit."""

    def __init__(self, relu):
        self.relu, self.done = relu, False
        self.rows, self.zeros = _Kept(lambda key: np.empty(key[0], key[1])), _filled(0.0)
        self.pool = None  # a ConvPool, where the MaxPool after it was fused too

    def finisher(self, shape, b, dtype):
        """fn(block of NHWC images of ``shape[1:]``) adding b in place (then max(., 0) with
        a Relu); None where b is not a vector of ``dtype`` with one entry per channel."""
        if type(b) is not np.ndarray or b.dtype != dtype or b.shape != shape[-1:]:
            return None
        k = _row_axes(shape)
        row = b
        if b.size < math.prod(shape[-k:]):
            row = self.rows.get((shape[-k:], dtype))
            np.copyto(row, b)
        zero = self.zeros.get(((1,) * (len(shape) - k) + shape[-k:], dtype)) \
            if self.relu else None

        def finish(block):
            np.add(block, row, out=block)
            if zero is not None:
                np.maximum(block, zero, out=block)

        return finish


class ConvPool:
    """A MaxPool of a conv layer's activation that the Conv2D kernel computes block by
    block of images, right after the block's bias and ReLU (``fusion.pool_into_conv``),
    folding the windows' slices in the MaxPool kernel's order: its result bit for bit.
    The MaxPool kernel takes the maxima for the very array they were pooled from, once;
    with ``keep_copy`` (the MaxPool paired with its gradient) the conv also copies them for
    the gradient's kernel."""

    def __init__(self, op):
        self.op, self.keep_copy = op, False
        self.source = self.pooled = self.kept = None
        self.copies = _Kept(lambda key: np.empty(key[0], key[1]))

    def pooler(self, shape, dtype):
        """fn(block of NHWC images, a, b) pooling images a..b of an activation of
        ``shape``; None where the pool pads it."""
        op = self.op
        _, pads, out_hw = _geometry(op, shape, op.ksize)
        if op.data_format != "NHWC" or pads != _NO_PADS:
            return None
        offsets = [index for _, _, index in _offsets("NHWC", op.ksize, op.window, out_hw)]
        pooled_shape = (shape[0], *out_hw, shape[3])
        pooled = np.empty(pooled_shape, dtype)
        kept = self.copies.get((pooled_shape, dtype)) if self.keep_copy else None
        self.pooled, self.kept = pooled, kept

        def pool(block, a, b):
            _fold_slices(np.maximum, offsets, block, pooled[a:b],
                         None if kept is None else kept[a:b])

        return pool

    def take(self, x):
        """(maxima, their copy) pooled from x this run, else (None, None); forgotten here."""
        found = (self.pooled, self.kept) if x is self.source else (None, None)
        self.source = self.pooled = self.kept = None
        return found


@fast(conv.Conv2D)
def _conv2d(op, portable, handoff=None, bias=None):
    """Given ``bias`` (a ``ConvBias``), the step also reads the bias, after x and w."""
    columns = _im2col_for(op)

    def forward(x, w, *bias_value):
        op.infer_shape(x.shape, w.shape)
        if handoff is not None:
            handoff.leave(None, None)
        if bias is not None:
            bias.done = False
            if bias.pool is not None:
                bias.pool.source = None
        if not _floats(x, w):
            return portable(x, w)
        kh, kw, c, o = w.shape
        source, x = x, op._in(np, x)
        cols, gather = columns(x, (kh, kw))
        weights = w.reshape(kh * kw * c, o)
        n, (_, (oh, ow)) = x.shape[0], conv._geometry(x.shape, (kh, kw), op.window)
        per = oh * ow
        y = np.empty((cols.shape[0], o), x.dtype)
        finish = pool = None
        if bias is not None and op.data_format == "NHWC":
            finish = bias.finisher((n, oh, ow, o), bias_value[0], x.dtype)
            if finish is not None and bias.pool is not None:
                pool = bias.pool.pooler((n, oh, ow, o), x.dtype)

        def block(a, b):
            out = y[a * per:b * per]
            np.matmul(gather(a, b), weights, out=out)
            if finish is not None:
                images = out.reshape(b - a, oh, ow, o)
                finish(images)
                if pool is not None:
                    pool(images, a, b)

        _by_blocks(n, per * (cols.shape[1] + o), block, cols.size)
        if handoff is not None:
            handoff.leave(source, cols)
        result = op._out(np, y.reshape(n, oh, ow, o))
        if finish is not None:
            bias.done = True
            if pool is not None:
                bias.pool.source = result
        return result

    return forward


@fast(conv.Conv2DBackpropFilter)
def _conv2d_backprop_filter(op, portable, handoff=None):
    columns = _im2col_for(op)

    def forward(x, w, g):  # w: its description only
        op.infer_shape(x.shape, w.shape, g.shape)
        cols = None if handoff is None else handoff.take(x)
        if not _floats(x, g) or w.dtype != x.dtype or not math.prod(w.shape):
            return portable(x, w, g)
        kh, kw, c, o = w.shape
        if cols is None:
            cols, gather = columns(op._in(np, x), (kh, kw))
        else:  # the forward's patches, gathered already
            gather = None
        n = x.shape[0]
        per = cols.shape[0] // n
        rows = op._in(np, g).reshape(cols.shape[0], o)
        sums = {}  # first image -> its block's product, by BLAS (ctypes frees the GIL where
        # NumPy's matmul of a few rows by a long K held it: conv 1's 9 rows)

        def block(a, b):
            patches = cols[a * per:b * per] if gather is None else gather(a, b)
            sums[a] = total = np.zeros((cols.shape[1], o), x.dtype)
            blas.accumulate_product(total, patches.T, rows[a * per:b * per], 1.0)

        _by_blocks(n, per * (cols.shape[1] + o), block, cols.size)
        starts = sorted(sums)
        dw = sums[starts[0]]
        for a in starts[1:]:  # then the blocks' products added in order: the same sum
            dw += sums[a]  # whichever threads ran them
        return dw.reshape(kh, kw, c, o)

    return forward


@fast(conv.Conv2DBackpropInput)
def _conv2d_backprop_input(op, portable):
    pieces = _Kept(lambda key: np.empty(key[0], key[1]))
    grids = _Kept(lambda key: np.zeros(key[0], key[1]))  # only their corners are written

    def forward(x, w, g):  # x: its description (shape and dtype) only
        op.infer_shape(x.shape, w.shape, g.shape)
        if not _floats(w, g) or x.dtype != w.dtype or not math.prod(x.shape):
            return portable(x, w, g)
        kh, kw, c, o = w.shape
        nhwc, pads, out_hw = _geometry(op, x.shape, (kh, kw))
        g = op._in(np, g)
        shape = _padded_shape("NHWC", nhwc, pads)
        if tuple(op.window.strides) == (1, 1) and w.flags.c_contiguous and blas.available():
            dx = _shifted_products(g, w, shape, op.window.dilations, grids)
        else:
            dx = _col2im_products(g, w, shape, op.window, out_hw, pieces)
        return op._out(np, dx[_inner("NHWC", pads, nhwc[1:3])])

    return forward


def _col2im_products(g, w, shape, window, out_hw, pieces):
    """The padded input gradient offset by offset: each offset's columns of the portable
    GEMM as one product that stays in cache, added into its strided slice of dx."""
    kh, kw, c, o = w.shape
    rows = g.reshape(-1, o)
    piece = pieces.get(((rows.shape[0], c), w.dtype))
    dx = np.zeros(shape, w.dtype)
    for i, j, index in _offsets("NHWC", (kh, kw), window, out_hw):
        np.matmul(rows, w[i, j].T, out=piece)
        dx[index] += piece.reshape(g.shape[:3] + (c,))
    return dx


def _shifted_products(g, w, shape, dilations, grids):
    """The padded input gradient of a stride-1 convolution without strided slices: with g
    written into the top-left corner of a zero grid of the padded input's shape, offset
    (i, j) adds ``g[n, h, w] @ w[i, j].T`` at grid row ``r + i*dh*W + j*dw`` for every flat
    row r, so each offset is one GEMM accumulated by BLAS into a contiguous block of dx's
    rows. Products whose target wraps past a row's or an image's end come from the grid's
    zero border (r there lies outside g), so they add nothing."""
    kh, kw, c, o = w.shape
    n, height, width, _ = shape
    oh, ow = g.shape[1:3]
    grid = grids.get(((n, height, width, o), w.dtype, (oh, ow)))
    rows = grid.reshape(-1, o)
    dx = np.empty((n * height * width, c), w.dtype)
    per = height * width

    def block(a, b):  # images a..b: what wraps past image b comes from zero rows
        np.copyto(grid[a:b, :oh, :ow], g[a:b])  # the block's g, into its zero grid
        part, into = rows[a * per:b * per], dx[a * per:b * per]
        np.matmul(part, w[0, 0].T, out=into)
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    shift = i * dilations[0] * width + j * dilations[1]
                    blas.accumulate_product(into[shift:], part[:len(part) - shift], w[i, j].T,
                                            1.0)

    _by_blocks(n, per * (o + c), block, rows.size)
    return dx.reshape(shape)


# ----------------------------------------------------------------------------- pooling
# In the op's own layout: pooling treats channels alike, so NCHW needs no transpose.


def _pool_setup(op, x):
    """(pads, out_hw, the op's (h, w) input size)."""
    nhwc, pads, out_hw = _geometry(op, x.shape, op.ksize)
    return pads, out_hw, nhwc[1:3]


def _fold_slices(ufunc, offsets, part, out, kept=None):
    """ufunc folded over each offset's slice of ``part`` (a block of images), left to right
    (the portable order), into ``out``; and copied into ``kept`` if given."""
    if len(offsets) == 1:
        np.copyto(out, part[offsets[0]])
    else:
        ufunc(part[offsets[0]], part[offsets[1]], out=out)
        for index in offsets[2:]:
            ufunc(out, part[index], out=out)
    if kept is not None:  # while the block is in cache
        np.copyto(kept, out)


def _reduce_slices(ufunc, padded, fmt, k, window, out_hw, copies=None):
    """(ufunc folded over each offset's slice into a fresh array; a copy of it in a buffer
    that ``copies`` keeps, or None without one)."""
    offsets = [index for _, _, index in _offsets(fmt, k, window, out_hw)]
    shape = padded[offsets[0]].shape
    kept = None if copies is None else copies.get((shape, padded.dtype))
    out = np.empty(shape, padded.dtype)

    def rows(a, b):
        _fold_slices(ufunc, offsets, padded[a:b], out[a:b], None if kept is None else kept[a:b])

    threads.over_batch(rows, padded.shape[0], padded.size)
    return out, kept


def _pool(ufunc, fill, finish=None):
    """The kernel maker of a pooling: ``ufunc`` folded over the window's slices of the input
    padded with ``fill``, then ``finish(op, x, total)``. Given a ``Handoff`` (``pairs``), it
    also leaves a copy of the result for the gradient's kernel (the result itself may be
    overwritten downstream). Given ``after`` (a ``ConvPool``: MaxPool only), it returns
    what the conv kernel before it pooled of this very x, if it did."""

    def make(op, portable, handoff=None, after=None):
        pad = _padder(fill)
        copies = _Kept(lambda key: np.empty(key[0], key[1]))
        if after is not None:
            after.keep_copy = handoff is not None

        def forward(x):
            op.infer_shape(x.shape)
            if handoff is not None:
                handoff.leave(None, None)
            if after is not None and after.source is not None:
                pooled, kept = after.take(x)
                if pooled is not None:  # the conv kernel pooled x's blocks already
                    if handoff is not None:
                        handoff.leave(x, kept)
                    return pooled
            if not _floats(x):
                return portable(x)
            pads, out_hw, hw = _pool_setup(op, x)
            padded = pad(x, op.data_format, pads, hw)
            total, kept = _reduce_slices(ufunc, padded, op.data_format, op.ksize, op.window,
                                         out_hw, None if handoff is None else copies)
            if handoff is not None:
                handoff.leave(x, kept)
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
def _max_pool_grad(op, portable, handoff=None, relu_grad=None):
    """Given ``relu_grad`` (the portable ReluGrad, ``fusion``), the result is also multiplied
    by the mask (x > 0) of the pool's input, as ReluGrad(MaxPoolGrad(x, g), x) is: only a
    window's maximum gets a share, and there x equals the maximum, so the mask is the
    maxima's (t > 0), applied to the pooled shares instead of to the whole input."""
    pad = _padder(-math.inf)

    def forward(x, g):
        op.infer_shape(x.shape, g.shape)
        top = None if handoff is None else handoff.take(x)  # MaxPool's result, if paired
        if not _floats(x, g):
            dx = portable(x, g)
            return dx if relu_grad is None else relu_grad(dx, x)
        pads, out_hw, hw = _pool_setup(op, x)
        fmt = op.data_format
        if top is None:
            top, _ = _reduce_slices(np.maximum, pad(x, fmt, pads, hw), fmt, op.ksize,
                                    op.window, out_hw)
        if pads == _NO_PADS and tuple(op.ksize) == tuple(op.window.strides):
            dx = _max_pool_grad_tiled(op, x, g, top, out_hw, relu_grad is not None)
            if dx is not None:
                return dx
        positive = None if relu_grad is None else top > 0
        padded = pad(x, fmt, pads, hw)
        dx = np.zeros(padded.shape, g.dtype)
        taken = np.zeros(top.shape, bool)
        for _, _, index in _offsets(fmt, op.ksize, op.window, out_hw):
            # The first maximum in row-major order, NaN counting as the maximum (argmax's).
            piece = padded[index]
            hit = np.equal(piece, top) | np.isnan(piece)
            hit &= ~taken
            taken |= hit
            if positive is not None:
                hit &= positive
            dx[index] += np.multiply(hit, g)  # 0 * inf is NaN there too
        return dx[_inner(fmt, pads, hw)]

    return forward


def _max_pool_grad_tiled(op, x, g, top, out_hw, relu=False):
    """MaxPoolGrad where the windows tile the input without overlap or padding (the usual
    2x2, stride 2): each entry is in one window at most, so each offset's share is written,
    not added, and the first-maximum bookkeeping needs no NaN test once the maxima hold no
    NaN. None when they do (the general kernel then handles it). ``relu``: also apply the
    maxima's ReLU mask (t > 0), to g once per block: hit * (g * mask) and (hit & mask) * g
    are the same products by 0 and 1 (signed zeros and NaN included)."""
    fmt = op.data_format
    h, w, _ = conv.FORMATS[fmt]
    covered = (out_hw[0] * op.ksize[0], out_hw[1] * op.ksize[1])
    dx = np.empty(x.shape, g.dtype)
    uncovered = [] if covered == (x.shape[h], x.shape[w]) else [  # no window reaches these
        _region(fmt, slice(covered[0], None), slice(None)),
        _region(fmt, slice(None), slice(covered[1], None))]
    offsets = [index for _, _, index in _offsets(fmt, op.ksize, op.window, out_hw)]
    found_nan = []

    def rows(a, b):  # images a..b: each block its own buffers
        part = slice(a, b)
        t, gp = top[part], g[part]
        with np.errstate(invalid="ignore", over="ignore"):  # a sum is NaN if any term is
            maybe_nan = np.isnan(np.add.reduce(t, axis=None))
        if found_nan or (maybe_nan and np.isnan(t).any()):
            found_nan.append(True)
            return
        if relu:
            gp = np.multiply(gp, t > 0)  # a bool operand multiplies as 0/1 in g's dtype
        hit, taken = np.empty(t.shape, bool), None
        for n, index in enumerate(offsets):
            np.equal(x[part][index], t, out=hit)
            if taken is None:
                taken = hit.copy()
            else:
                np.greater(hit, taken, out=hit)  # a maximum, and none before it
                if n < len(offsets) - 1:
                    np.logical_or(taken, hit, out=taken)
            np.multiply(hit, gp, out=dx[part][index])  # 0 * inf is NaN, as portably
        for index in uncovered:
            dx[part][index] = 0

    threads.over_batch(rows, x.shape[0], x.size)
    return None if found_nan else dx


# ----------------------------------------------------------------------------- bias


def _bias_shape(op, v, b):
    return b if op.data_format == "NHWC" else b.reshape((b.shape[0],) + (1,) * (v.ndim - 2))


def _bias_add_maker(inplace):
    """BiasAdd's kernel: the bias laid along a row of v's trailing axes (``kernels._rowwise``:
    a whole image where it spans the channel axis, copied into a buffer kept per shape)
    rather than a row of channels alone, and added split over threads when v is large.
    Given ``relu`` (the portable Relu, ``fusion``), each block is also clamped at 0 by the
    Relu kernel's ufunc while in cache: Relu(BiasAdd(v, b)) in one pass, bit for bit."""

    def make(op, portable, relu=None):
        rows, zeros = _Kept(lambda key: np.empty(key[0], key[1])), _filled(0.0)

        def forward(v, b):
            op.infer_shape(v.shape, b.shape)
            if not _floats(v, b):
                return portable(v, b) if relu is None else relu(portable(v, b))
            bias, out = _bias_shape(op, v, b), v if inplace else None
            if not v.flags.c_contiguous:
                y = np.add(v, bias, out=out)
                return y if relu is None else _relu_with(zeros, y, y)
            k = _row_axes(v.shape)
            if k >= bias.ndim and bias.size < math.prod(v.shape[-k:]):
                row = rows.get((v.shape[-k:], v.dtype))
                np.copyto(row, bias)
                bias = row
            if relu is None:
                return _rowwise(np.add, v, bias, out)
            zero = zeros.get(((1,) * (v.ndim - k) + v.shape[-k:], v.dtype))  # _relu_with's

            def add_relu(x, row, out=None):
                y = np.add(x, row, out=out)
                return np.maximum(y, zero, out=y)

            return _rowwise(add_relu, v, bias, out)

        return forward

    return make


fast(conv.BiasAdd)(_bias_add_maker(inplace=False))
fast(conv.BiasAdd, inplace=True)(_bias_add_maker(inplace=True))


@fast(conv.BiasAddGrad)
def _bias_add_grad(op, portable):
    ones = _Kept(lambda key: np.ones(key[0], key[1]))

    def forward(g):
        if not _floats(g) or g.ndim < 2 or op.data_format != "NHWC" or not g.flags.c_contiguous:
            return portable(g)
        rows = g.reshape(-1, g.shape[-1])
        if g.dtype.itemsize < 4:  # float16: the fold adds in float16, matmul's sums are closer
            return np.matmul(ones.get(((rows.shape[0],), g.dtype)), rows)
        return _channel_sums(rows)

    return forward


_FOLD = 512  # entries per row of the first sum


def _channel_sums(rows):
    """The column sums of C-ordered (M, C) ``rows``: first over rows of ``_FOLD // C`` of
    them side by side, then those partial sums. add.reduce over the rows themselves runs an
    inner loop of one row (a few dozen channels), and ``ones @ rows`` (BLAS's
    matrix-vector product) wakes BLAS's threads for a fraction of a millisecond of work."""
    m, c = rows.shape
    k = max(1, _FOLD // c)
    top = m - m % k
    total = np.add.reduce(_column_sums(rows[:top].reshape(-1, k * c)).reshape(k, c), axis=0)
    if top < m:
        total += np.add.reduce(rows[top:], axis=0)
    return total


_SUM_CHUNK = 1 << 19  # entries of a partial sum: a few chunks, each reduce call has a cost


def _column_sums(wide):
    """The column sums of (R, W) ``wide``: one partial sum per chunk of about
    ``_SUM_CHUNK`` entries, the chunks split over threads, then the partial sums added in
    order. The chunks do not depend on the number of threads, nor the result."""
    r, w = wide.shape
    step = max(1, _SUM_CHUNK // w)
    n = -(-r // step)
    if n < 2:
        return np.add.reduce(wide, axis=0)
    partials = np.empty((n, w), wide.dtype)

    def chunks(a, b):
        for j in range(a, b):
            np.add.reduce(wide[j * step:(j + 1) * step], axis=0, out=partials[j])

    threads.over_batch(chunks, n, wide.size)
    return np.add.reduce(partials, axis=0)
