"""Data augmentation as a layer, as Keras's preprocessing layers: ``RandomTranslation``
shifts each training image by its own random whole-pixel offset and is the identity in
inference (the model's ``training`` flag, as ``Dropout``).

>>> import xpnn as xn
>>> xn.nn.RandomTranslation(0.1, 0.1)
RandomTranslation(0.1, 0.1)
"""

from __future__ import annotations

from ..ops.translation import factor_range, random_translation
from .layers import Layer

FILL_MODES = ("constant",)
INTERPOLATIONS = ("nearest",)


class RandomTranslation(Layer):
    """Keras's ``RandomTranslation`` on NHWC batches: while training, each image moves by
    round(uniform(-f, f) * height) rows for ``height_factor`` f (a fraction of the image,
    in [0, 1]; a (lower, upper) pair for an asymmetric range; negative moves up) and
    likewise by ``width_factor`` columns (negative moves left), drawn anew every step; the
    pixels moved in take ``fill_value``. The shifts come from the model's Session generator
    (``seed=`` of the model), or from a stream of their own with ``seed``: the same on
    every backend. Only ``fill_mode="constant"`` and ``interpolation="nearest"`` (whole
    pixels) are supported.

    >>> import numpy as np, xpnn as xn
    >>> X = np.ones((4, 28, 28, 1), np.float32)
    >>> with xn.Graph().as_default():
    ...     x = xn.placeholder(shape=(None, 28, 28, 1), name="x")
    ...     shifted = xn.nn.RandomTranslation(0.1, 0.1, seed=0)(x, training=True)
    ...     bool((xn.Session().run(shifted, {x: X}) == 0).any())
    True
    """

    def __init__(self, height_factor, width_factor, fill_mode="constant",
                 interpolation="nearest", seed=None, fill_value=0.0):
        self._height = factor_range(height_factor, "RandomTranslation: height_factor")
        self._width = factor_range(width_factor, "RandomTranslation: width_factor")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"RandomTranslation: fill_mode {fill_mode!r} is not supported; "
                             f"xpnn supports {FILL_MODES} (Keras's 'reflect', 'wrap' and "
                             f"'nearest' are not implemented)")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"RandomTranslation: interpolation {interpolation!r} is not "
                             f"supported; xpnn supports {INTERPOLATIONS} (whole-pixel "
                             f"shifts; Keras's 'bilinear' is not implemented)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"RandomTranslation: seed must be an int or None, got {seed!r}")
        fill = float(fill_value)
        if fill != fill or abs(fill) == float("inf"):
            raise ValueError(f"RandomTranslation: fill_value must be a finite number, got "
                             f"{fill_value!r}")
        self.height_factor = _plain(height_factor)
        self.width_factor = _plain(width_factor)
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.seed, self.fill_value = seed, fill

    def __call__(self, x, training=None):
        return random_translation(x, self._height, self._width, self.fill_value,
                                  True if training is None else training, self.seed)

    def config(self):
        return {"height_factor": self.height_factor, "width_factor": self.width_factor,
                "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "seed": self.seed, "fill_value": self.fill_value}

    def __repr__(self) -> str:
        extra = "" if self.seed is None else f", seed={self.seed}"
        extra += "" if self.fill_value == 0.0 else f", fill_value={self.fill_value}"
        return f"RandomTranslation({self.height_factor!r}, {self.width_factor!r}{extra})"


def _plain(factor):
    """A factor as JSON data: a float, or a [lower, upper] list of floats."""
    if isinstance(factor, (tuple, list)):
        return [float(f) for f in factor]
    return float(factor)
