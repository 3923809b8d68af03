"""A JAX kernel for ``xpnn.ops.conv``'s max-pool gradient, traced into a compiled plan: where
the windows tile the input (the usual 2x2, stride 2) each window's share is put in place by
reshaping, not by the portable spread-pad-and-add of every kernel offset, which XLA does not
turn into anything as cheap (the simple convnet's first pool gradient and its training step
on the CPU, timed in ``benchmarks/README.md``). The same first maxima (``argmax``'s, NaN
counting as the maximum) and shares: the same values, zeros' signs aside.

Convolutions stay portable: ``lax.conv_general_dilated`` computes a forward faster alone,
but in a compiled step XLA shares the portable patches between a convolution and its filter
gradient, and XLA's own filter gradient is slower on the CPU: the training step was slower
with lax's forward, and slower still with its filter gradient (``benchmarks/README.md``).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.constant(np.array([[1.0, 3.0], [3.0, 2.0]], np.float32).reshape(1, 2, 2, 1))
...     dx = xn.gradients(xn.reduce_sum(xn.max_pool2d(x, 2, 2, "VALID")), [x])[0]
...     xn.Session(backend="jax").run(dx)[0, :, :, 0].tolist()
[[0.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ...ops import conv
from .kernels import fast


def _case(*values) -> bool:
    """Non-empty values of one floating dtype."""
    dtype = values[0].dtype
    return (all(v.dtype == dtype and math.prod(v.shape) for v in values)
            and jnp.issubdtype(dtype, jnp.floating))


def _tiles(op, shape):
    """Whether the op's windows tile an input of ``shape`` (NHWC): no padding, no overlap."""
    pads, _ = conv._geometry(shape, op.ksize, op.window)
    return pads == ((0, 0), (0, 0)) and tuple(op.ksize) == tuple(op.window.strides)


@fast(conv.MaxPoolGrad)
def _max_pool_grad(op, portable):
    def forward(x, g):
        if not _case(x, g) or not _tiles(op, op._nhwc_shape(x.shape)):
            return portable(x, g)
        op.infer_shape(tuple(x.shape), tuple(g.shape))
        x, g = op._in(jnp, x), op._in(jnp, g)
        (n, h, w, c), (kh, kw), (oh, ow) = x.shape, op.ksize, g.shape[1:3]
        # (N, oh, ow, C, kh*kw): each window's entries, row-major, as the portable patches
        windows = jnp.reshape(x[:, : oh * kh, : ow * kw, :], (n, oh, kh, ow, kw, c))
        windows = jnp.reshape(jnp.transpose(windows, (0, 1, 3, 5, 2, 4)), (n, oh, ow, c, -1))
        first = jnp.argmax(windows, axis=-1, keepdims=True)
        hot = first == jnp.arange(kh * kw, dtype=first.dtype)
        # The portable hot * g as a select: XLA would fold a product by a converted mask
        # into one and lose 0 * inf = NaN.
        g = g[..., None]
        shares = jnp.where(hot, g, jnp.where(jnp.isfinite(g), 0.0, jnp.nan).astype(g.dtype))
        shares = jnp.reshape(shares, (n, oh, ow, c, kh, kw))
        dx = jnp.reshape(jnp.transpose(shares, (0, 1, 4, 2, 5, 3)), (n, oh * kh, ow * kw, c))
        dx = jnp.pad(dx, ((0, 0), (0, h - oh * kh), (0, w - ow * kw), (0, 0)))
        return op._out(jnp, dx)

    return forward
