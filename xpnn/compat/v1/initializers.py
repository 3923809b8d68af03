"""TF1's initializers (``tf.zeros_initializer()``, ``tf.glorot_uniform_initializer()``...):
called with a shape they give a tensor, as TF1's. Constant ones give a constant; random ones
a random op (``xpnn.ops.random``) that draws anew at every run from the graph's and their own
seeds, so that each run of ``global_variables_initializer`` draws new initial values, as in
TF1 (TF's numbers come from another generator: equal seeds give other values than TF's).

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> tf.constant_initializer(0.5)([2]).value.tolist()
[0.5, 0.5]
>>> tf.random_normal_initializer(seed=1)([2, 3]).type
'InitialDraw'
"""

from __future__ import annotations

import math

import numpy as np

from ...graph import Constant
from ...ops.random import RandomDraw, truncated
from .dtypes import float32, name_of
from .graphs import op_name, op_seeds


class Initializer:
    """Base: ``draw(shape)`` gives the values on the host; calling gives them as a constant."""

    dtype = float32

    def __call__(self, shape, dtype=None, partition_info=None):
        values = self.draw(tuple(int(d) for d in shape)).astype(name_of(dtype or self.dtype))
        return Constant(values, dtype=values.dtype, name=op_name(None, type(self).__name__))

    def draw(self, shape) -> np.ndarray:
        raise NotImplementedError


class RandomInitializer(Initializer):
    """Base of the random ones: ``sample(generator, shape)`` draws the values; calling
    gives the op that draws them at every run."""

    seed = None

    def __call__(self, shape, dtype=None, partition_info=None):
        return InitialDraw(self, tuple(int(d) for d in shape), name_of(dtype or self.dtype),
                           op_seeds(self.seed), name=op_name(None, type(self).__name__))

    def sample(self, generator, shape) -> np.ndarray:
        raise NotImplementedError


class InitialDraw(RandomDraw):
    """A random initializer's values, drawn anew at every run."""

    def __init__(self, initializer, shape, dtype, seed, name=None):
        self.initializer = initializer
        super().__init__(shape, dtype, seed, name)

    def sample(self, generator, shape):
        return self.initializer.sample(generator, shape)


class zeros_initializer(Initializer):  # noqa: N801 - TF1's names
    def __init__(self, dtype=float32):
        self.dtype = dtype

    def draw(self, shape):
        return np.zeros(shape)


class ones_initializer(zeros_initializer):  # noqa: N801
    def draw(self, shape):
        return np.ones(shape)


class constant_initializer(Initializer):  # noqa: N801
    """A number fills the shape; an array (or list) of that many entries is reshaped."""

    def __init__(self, value=0, dtype=float32, verify_shape=False):
        self.value, self.dtype = np.asarray(value), dtype

    def draw(self, shape):
        if self.value.size == 1:
            return np.full(shape, self.value.reshape(()))
        if self.value.size != math.prod(shape):
            raise ValueError(f"constant_initializer: {self.value.size} values for shape {shape}")
        return self.value.reshape(shape)


class random_normal_initializer(RandomInitializer):  # noqa: N801
    def __init__(self, mean=0.0, stddev=1.0, seed=None, dtype=float32):
        self.mean, self.stddev, self.seed, self.dtype = mean, stddev, seed, dtype

    def sample(self, generator, shape):
        return generator.standard_normal(shape) * self.stddev + self.mean


class truncated_normal_initializer(random_normal_initializer):  # noqa: N801
    def sample(self, generator, shape):
        return truncated(generator, shape) * self.stddev + self.mean


class random_uniform_initializer(RandomInitializer):  # noqa: N801
    def __init__(self, minval=0.0, maxval=None, seed=None, dtype=float32):
        self.minval, self.maxval = minval, 1.0 if maxval is None else maxval
        self.seed, self.dtype = seed, dtype

    def sample(self, generator, shape):
        return generator.uniform(self.minval, self.maxval, shape)


def fans(shape) -> tuple[float, float]:
    """TF1's (fan_in, fan_out): a convolution's filters count their receptive field."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


class variance_scaling_initializer(RandomInitializer):  # noqa: N801
    """TF1's: ``scale / fan`` as the variance, truncated normal (corrected for the
    truncation), untruncated normal, or uniform."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 dtype=float32):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"variance_scaling_initializer: mode {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"variance_scaling_initializer: distribution {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.seed, self.dtype = seed, dtype

    def sample(self, generator, shape):
        fan_in, fan_out = fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            return truncated(generator, shape) * (math.sqrt(variance) / 0.87962566103423978)
        if self.distribution == "untruncated_normal":
            return generator.standard_normal(shape) * math.sqrt(variance)
        limit = math.sqrt(3.0 * variance)
        return generator.uniform(-limit, limit, shape)


def glorot_uniform_initializer(seed=None, dtype=float32):
    """Uniform in ±sqrt(6 / (fan_in + fan_out)): TF1's default for ``get_variable``."""
    return variance_scaling_initializer(1.0, "fan_avg", "uniform", seed, dtype)


def glorot_normal_initializer(seed=None, dtype=float32):
    return variance_scaling_initializer(1.0, "fan_avg", "truncated_normal", seed, dtype)


def he_normal(seed=None):
    return variance_scaling_initializer(2.0, "fan_in", "truncated_normal", seed)


def he_uniform(seed=None):
    return variance_scaling_initializer(2.0, "fan_in", "uniform", seed)
