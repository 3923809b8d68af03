"""Keras's gradient clipping (``clipnorm``, ``clipvalue``, ``global_clipnorm`` of every
``xn.train`` optimizer) as graph ops between the gradients and the update: they run in
the same plan on every backend (in a compiled JAX plan too), and the update that reads
the clipped gradients keeps its device's in-place kernel.

>>> import xpnn as xn
>>> from xpnn.clipping import clip_gradients
>>> g = xn.constant([3.0, 4.0])
>>> clipped, = xn.Session().run(clip_gradients([g], clipnorm=1.0))  # norm 5 -> 1
>>> [round(x, 6) for x in clipped.tolist()]
[0.6, 0.8]
"""

from __future__ import annotations

from . import ops
from .dtypes import dtype_name


def clip_gradients(grads, clipnorm=None, clipvalue=None, global_clipnorm=None) -> list:
    """``grads`` (nodes) clipped as Keras does with the one option given (None: as they
    are): ``clipnorm`` scales each gradient whose own L2 norm exceeds it down to it;
    ``global_clipnorm`` scales them all by one factor where their joint norm exceeds it
    (TF's ``clip_by_global_norm``); ``clipvalue`` limits every entry to [-v, v]. A
    non-finite norm makes the gradients it scales NaN, as TF's ``clip_by_global_norm``
    does, so a diverged step is not silently zeroed."""
    if clipvalue is not None:
        return [ops.clip(g, -clipvalue, clipvalue) for g in grads]
    if clipnorm is not None:
        return [_scaled(g, _norm([g]), clipnorm) for g in grads]
    if global_clipnorm is not None:
        norm = _norm(grads)
        return [_scaled(g, norm, global_clipnorm) for g in grads]
    return list(grads)


def _norm(grads):
    """The L2 norm of all of ``grads`` together; a float16 one's squares are summed in
    float32, where they cannot overflow."""
    squares = [ops.reduce_sum(ops.square(_wide(g))) for g in grads]
    return ops.sqrt(ops.add_n(squares))


def _wide(g):
    return ops.cast(g, "float32") if g.dtype is not None and dtype_name(g.dtype) == "float16" else g


def _scaled(g, norm, limit):
    scale = ops.divide(limit, ops.maximum(norm, limit))
    scale = ops.add(scale, ops.subtract(norm, norm))  # NaN where the norm is not finite
    if g.dtype is not None and scale.dtype is not None and g.dtype != scale.dtype:
        scale = ops.cast(scale, g.dtype)
    return ops.multiply(g, scale)
