"""Normalisation as compositions of ops (TF1's ``tf.nn.moments`` and
``tf.nn.batch_normalization``): their gradients come from the ops they are made of.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.constant([[1.0, 2.0], [3.0, 6.0]])
...     mean, variance = xn.moments(x, axes=[0])
...     xn.Session().run([mean, variance], to_numpy=True)
[array([2., 4.], dtype=float32), array([1., 4.], dtype=float32)]
"""

from __future__ import annotations

from . import ops


def moments(x, axes, keepdims=False, name=None):
    """(mean, variance) of ``x`` over ``axes``; the variance is the mean squared deviation
    (biased, as TF1's and as batch norm uses)."""
    kept = ops.reduce_mean(x, axis=axes, keepdims=True)
    variance = ops.reduce_mean(ops.square(ops.subtract(x, kept)), axis=axes,
                               keepdims=keepdims, name=None if name is None else f"{name}/var")
    # Summing over the kept axes of length 1 drops them (no second pass over x).
    mean = kept if keepdims else ops.reduce_sum(kept, axis=axes)
    return mean, variance


def batch_normalization(x, mean, variance, offset=None, scale=None, variance_epsilon=1e-3,
                        name=None):
    """(x - mean) / sqrt(variance + variance_epsilon) * scale + offset, as TF1 computes it:
    ``inv = scale / sqrt(variance + eps)``, then ``x * inv + (offset - mean * inv)``.
    ``offset`` and ``scale`` may be None (0 and 1).

    >>> import xpnn as xn
    >>> y = xn.batch_normalization(xn.constant([0.0, 2.0]), 1.0, 1.0, variance_epsilon=0.0)
    >>> xn.Session().run(y).tolist()
    [-1.0, 1.0]
    """
    if not variance_epsilon >= 0:
        raise ValueError(f"batch_normalization: variance_epsilon must be >= 0, got "
                         f"{variance_epsilon}")
    inv = ops.divide(1.0, ops.sqrt(ops.add(variance, float(variance_epsilon))))
    if scale is not None:
        inv = ops.multiply(inv, scale)
    shift = ops.negative(ops.multiply(mean, inv))
    if offset is not None:
        shift = ops.subtract(offset, ops.multiply(mean, inv))
    return ops.add(ops.multiply(x, inv), shift, name=name)
