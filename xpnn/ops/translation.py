"""Random translation of images, Keras's ``RandomTranslation`` as ops: each image of an NHWC
batch shifted by whole pixels, by its own offset drawn anew every run, the uncovered pixels
filled with a constant. Two ops: ``TranslationOffsets`` draws the (rows, columns) offsets
on the host, as the other random ops do (``ops.random``: the same seeds give the same
shifts on every backend, and a compiled JAX plan is passed them), and ``Translate`` shifts
by given offsets; its gradient is the opposite shift, filled with zeros (each output pixel
comes from at most one input pixel).

>>> import numpy as np, xpnn as xn
>>> image = np.arange(1.0, 10.0, dtype=np.float32).reshape(1, 3, 3, 1)
>>> with xn.Graph().as_default():
...     down_left = xn.ops.translate(image, [[1, -1]])
...     xn.Session().run(down_left)[0, :, :, 0].tolist()
[[0.0, 0.0, 0.0], [2.0, 3.0, 0.0], [5.0, 6.0, 0.0]]
"""

from __future__ import annotations

import numbers

import array_api_compat

from ..graph import Constant, Node, Operation, as_node
from .random import stream_seed

MAX_PIXELS = 2**31 - 1  # batch x height x width: the gather's indices are int32


def factor_range(factor, what) -> tuple[float, float]:
    """Keras's (lower, upper) fractions of the image for ``factor``: f gives (-f, f), a pair
    is itself; each within [-1, 1] and lower <= upper, else ValueError naming ``what``."""
    pair = isinstance(factor, (tuple, list))
    items = list(factor) if pair else [factor]
    if len(items) != (2 if pair else 1) or not all(
            isinstance(f, numbers.Real) and not isinstance(f, bool) for f in items):
        raise TypeError(f"{what} must be a number or a (lower, upper) pair of numbers, got "
                        f"{factor!r}")
    lower, upper = (float(items[0]), float(items[1])) if pair else (-float(factor),
                                                                     float(factor))
    if not (abs(lower) <= 1.0 and abs(upper) <= 1.0):  # NaN fails too
        raise ValueError(f"{what} must lie in [-1, 1] (a fraction of the image), got "
                         f"{factor!r}")
    if upper < lower:
        raise ValueError(f"{what}: the upper bound {upper} is below the lower bound {lower}; "
                         f"a single factor f gives [-f, f], so it must be >= 0")
    return lower, upper


def _check_images(node, what) -> None:
    shape = node.shape
    if shape is not None and len(shape) != 4:
        raise ValueError(f"{what}: {node.label} has shape {tuple(shape)}; it takes a batch of "
                         f"images, (batch, height, width, channels) (NHWC): reshape a single "
                         f"image to (1, height, width, channels)")


class TranslationOffsets(Operation):
    """Each image's (rows, columns) shift as int32, shape (batch, 2): round(uniform(lower,
    upper) * size) per axis, drawn anew every run; zeros where ``training`` is false. x is
    read for its shape only."""

    random = True
    shape_only = (0,)
    fresh = True

    def __init__(self, x, training, height, width, seed=None, name=None):
        self.height, self.width = height, width  # (lower, upper) fractions
        self.seed = stream_seed(seed)
        super().__init__(x, training, name=name)
        _check_images(self.inputs[0], "random_translation")

    def sample(self, generator, shape):
        return generator.random(shape)

    def forward(self, xp, x, training, draw):
        if training.ndim != 0:
            raise ValueError(f"{self.label}: training must be a scalar boolean, got shape "
                             f"{tuple(training.shape)}")
        u = draw(self, (x.shape[0], 2), "float32")
        (h_low, h_high), (w_low, w_high) = self.height, self.width
        rows = xp.round((h_low + u[:, 0] * (h_high - h_low)) * x.shape[1])
        cols = xp.round((w_low + u[:, 1] * (w_high - w_low)) * x.shape[2])
        offsets = xp.astype(xp.stack([rows, cols], axis=1), xp.int32)
        return xp.where(training, offsets, xp.zeros_like(offsets))

    def infer_shape(self, x, training):
        return None if x is None else (x[0], 2)

    def infer_dtype(self, x, training):
        return "int32"

    def backward(self, grad):
        return [None, None]


class Translate(Operation):
    """x (NHWC) with image n shifted down by ``offsets[n, 0]`` rows and right by
    ``offsets[n, 1]`` columns (up and left where negative; ``reverse``: the opposite way),
    the pixels shifted in set to ``fill_value``."""

    fresh = True

    def __init__(self, x, offsets, fill_value=0.0, reverse=False, name=None):
        self.fill_value, self.reverse = float(fill_value), bool(reverse)
        super().__init__(x, offsets, name=name)
        _check_images(self.inputs[0], "translate")
        shape = self.inputs[1].shape
        if shape is not None and (len(shape) != 2 or shape[1] not in (None, 2)):
            raise ValueError(f"translate: the offsets {self.inputs[1].label} have shape "
                             f"{tuple(shape)}; give (batch, 2): rows and columns per image")

    def forward(self, xp, x, offsets):
        n, h, w, c = x.shape
        if offsets.shape != (n, 2):
            raise ValueError(f"{self.label}: the offsets have shape {tuple(offsets.shape)} "
                             f"for {n} images; give ({n}, 2): rows and columns per image")
        if n * h * w > MAX_PIXELS:
            raise ValueError(f"{self.label}: {n} images of {h}x{w} are more than {MAX_PIXELS} "
                             f"pixels: translate smaller batches")
        device = array_api_compat.device(x)
        offsets = xp.astype(offsets, xp.int32)
        if self.reverse:
            offsets = -offsets
        rows = xp.arange(h, dtype=xp.int32, device=device)[None, :] - offsets[:, 0:1]
        cols = xp.arange(w, dtype=xp.int32, device=device)[None, :] - offsets[:, 1:2]
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        rows, cols = xp.clip(rows, 0, h - 1), xp.clip(cols, 0, w - 1)
        images = xp.arange(n, dtype=xp.int32, device=device)[:, None, None] * (h * w)
        flat = images + rows[:, :, None] * w + cols[:, None, :]  # each pixel's source
        taken = xp.take(xp.reshape(x, (n * h * w, c)), xp.reshape(flat, (-1,)), axis=0)
        fill = xp.asarray(self.fill_value, dtype=x.dtype, device=device)
        return xp.reshape(xp.where(xp.reshape(inside, (-1, 1)), taken, fill), (n, h, w, c))

    def infer_shape(self, x, offsets):
        return x

    def infer_dtype(self, x, offsets):
        return x

    def backward(self, grad):
        return [Translate(grad, self.inputs[1], 0.0, not self.reverse), None]


def translate(x, offsets, fill_value=0.0, name=None):
    """``x`` (a batch of NHWC images) with image n shifted by ``offsets[n]`` = (rows down,
    columns right), the pixels shifted in set to ``fill_value``."""
    if not isinstance(offsets, Node):  # int32: JAX without x64 holds it too
        offsets = Constant(offsets, dtype="int32", graph=getattr(x, "graph", None))
    return Translate(x, offsets, fill_value, name=name)


def random_translation(x, height_factor, width_factor, fill_value=0.0, training=True,
                       seed=None, name=None):
    """``x`` (a batch of NHWC images) with each image shifted by whole pixels, drawn anew
    every run: rows by round(uniform(-f, f) * height) for ``height_factor`` f (or
    uniform(lower, upper) for a pair), columns likewise by ``width_factor``, as Keras's
    ``RandomTranslation`` with ``fill_mode="constant"`` and ``interpolation="nearest"``;
    ``x`` itself where ``training`` is false (a bool or a scalar bool placeholder). The
    shifts come from the Session's generator, or from a stream of their own with ``seed``.

    >>> import numpy as np, xpnn as xn
    >>> images = np.ones((8, 28, 28, 1), np.float32)
    >>> shifted = xn.Session(seed=0).run(xn.ops.random_translation(images, 0.1, 0.1))
    >>> shifted.shape, bool((shifted == 0).any())
    ((8, 28, 28, 1), True)
    """
    height = factor_range(height_factor, "random_translation: height_factor")
    width = factor_range(width_factor, "random_translation: width_factor")
    if training is False:
        return as_node(x)
    if not isinstance(training, Node) and training is not True:
        raise TypeError(f"random_translation: training must be a bool or a bool placeholder, "
                        f"got {training!r}")
    node = as_node(x)
    flag = training if isinstance(training, Node) else Constant(True, graph=node.graph)
    offsets = TranslationOffsets(node, flag, height, width, seed)
    return Translate(node, offsets, fill_value, name=name)


__all__ = ["TranslationOffsets", "Translate", "factor_range", "translate",
           "random_translation"]
