"""Random ops, drawn anew at every run: dropout and its masks, and random tensors (normal,
truncated normal and uniform values, floats or integers, and a tensor with its first axis
shuffled). Each is an op with no gradient (a constant to autodiff, as in TF1) whose values
are drawn on the host with NumPy (``Session.draw``) and moved to the device: the same seeds
give the same values on every backend, under every device's passes (the JAX pass hands each
run's draws to its compiled call; none is ever compiled in as a constant).

An op given a ``seed`` (an int, or a tuple of ints such as TF1's graph and op seeds) draws
from a stream of its own that every Session starts anew: two Sessions give the same
sequence of values, each run the next ones. Without one it draws from the Session's
generator (``Session(seed=...)``).

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     noise = xn.random_normal((2, 3), stddev=0.1, seed=0)
...     sess = xn.Session()
...     first, second, other = sess.run(noise), sess.run(noise), xn.Session().run(noise)
>>> first.shape, bool((first == second).all()), bool((first == other).all())
((2, 3), False, True)
"""

from __future__ import annotations

import math

import numpy as np

from ..devices import indicator
from ..dtypes import dtype_name
from ..graph import Constant, Node, Operation, as_node
from .arithmetic import multiply
from .core import run_context
from .dynamic import Argument, holds_nodes


class _DropoutMask(Operation):
    """What both dropout masks share: a random op shaped like x, read for its shape only,
    with no gradient (the mask multiplies x, whose product carries it)."""

    random = True
    shape_only = (0,)
    fresh = True

    def sample(self, generator, shape):
        return generator.random(shape)

    def infer_shape(self, x, rate_or_training):
        return x

    def infer_dtype(self, x, rate_or_training):
        return x

    def backward(self, grad):
        return [None, None]


class DropoutMask(_DropoutMask):
    """1 / (1 - rate) where a uniform draw is >= rate, else 0 (shaped like x, in its dtype);
    all ones where ``training`` is false. A random op: a new mask every run."""

    def __init__(self, x, training, rate, name=None):
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"dropout: rate must lie in [0, 1), got {rate}")
        super().__init__(x, training, name=name)

    def forward(self, xp, x, training, draw):
        dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float32
        u = draw(self, x.shape, dtype)
        keep = indicator(xp, u >= self.rate, dtype) / (1.0 - self.rate)
        if training.ndim != 0:
            raise ValueError(f"{self.label}: training must be a scalar boolean, got shape "
                             f"{tuple(training.shape)}")
        return xp.where(training, keep, xp.ones_like(keep))


class DropoutMaskOf(_DropoutMask):
    """DropoutMask with a rate that is a graph node (a scalar placeholder, TF1's
    ``keep_prob`` fed 0.5 to train and 1.0 to test): 1 / (1 - rate) where a uniform draw is
    >= rate, else 0. A rate outside [0, 1) fails the run where the device reads it for free
    (``run_context.reads_without_sync``), and in a compiled JAX plan where it is fed from
    the host (checked before the call); elsewhere (CuPy, CUDA tensors, a rate that a compiled
    JAX plan computes) the mask is NaN, as a bad label's row is, with no synchronisation."""

    reads_values = True
    rate_input = 1  # a compiled plan checks a fed rate with check_rate before its call

    def check_rate(self, xp, rate) -> None:
        """Fail for a scalar rate outside [0, 1) (reads it)."""
        if not bool(xp.logical_and(rate >= 0, rate < 1)):
            raise ValueError(f"{self.label}: the dropout rate must lie in [0, 1), got "
                             f"{float(rate)}")

    def rate_of(self, given):
        """The rate, from the value of the op's second input."""
        return given

    def forward(self, xp, x, given, draw):
        reads = run_context.reads_without_sync
        if given.ndim != 0:
            raise ValueError(f"{self.label}: the dropout rate must be a scalar, got shape "
                             f"{tuple(given.shape)}")
        if reads:
            self.check_rate(xp, given)
        rate = self.rate_of(given)
        dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float32
        valid = xp.logical_and(rate >= 0, rate < 1)
        rate = xp.astype(rate, dtype)
        if not reads:  # unread, 1.5 would give a mask of -0.0, -1 one of 0.5: NaN instead
            rate = xp.where(valid, rate, math.nan)
        return indicator(xp, draw(self, x.shape, dtype) >= rate, dtype) / (1.0 - rate)


class DropoutKeepMaskOf(DropoutMaskOf):
    """DropoutMaskOf given TF1's ``keep_prob`` node instead of a rate (the rate is
    1 - keep_prob): a keep_prob outside (0, 1] fails as a bad rate does, where it is read
    and before a compiled JAX call where it is fed."""

    def check_rate(self, xp, keep) -> None:
        """Fail for a scalar keep_prob outside (0, 1] (reads it)."""
        if not bool(xp.logical_and(keep > 0, keep <= 1)):
            raise ValueError(f"{self.label}: keep_prob must lie in (0, 1], got {float(keep)}")

    def rate_of(self, keep):
        return 1.0 - keep


def stream_seed(seed) -> tuple | None:
    """``seed`` as the tuple of non-negative ints a stream is seeded with (None: none)."""
    if seed is None:
        return None
    parts = tuple(seed) if isinstance(seed, (tuple, list)) else (seed,)
    return tuple(int(s) % 2**64 for s in parts)  # TF1 seeds may be negative


def truncated(generator, shape) -> np.ndarray:
    """Standard normal draws, those outside [-2, 2] drawn again (TF1's truncation)."""
    values = generator.standard_normal(shape)
    while True:
        outside = np.abs(values) > 2.0
        if not outside.any():
            return values
        values[outside] = generator.standard_normal(int(outside.sum()))


class RandomDraw(Operation):
    """Base of the ops that draw a ``shape``d value in ``dtype`` every run:
    ``sample(generator, shape)`` gives it on the host. ``shape`` may hold scalar nodes or be
    a vector node (``ops.dynamic``): the op then reads what it is computed from."""

    random = True
    fresh = True

    def __init__(self, shape, dtype="float32", seed=None, name=None):
        if holds_nodes(shape):
            self.drawn = Argument(shape, type(self).__name__)
            self.shape_only = tuple(k for k, s in enumerate(self.drawn.shape_only) if s)
        else:
            self.drawn = None
            self.drawn_shape = tuple(int(d) for d in shape)
        self.drawn_dtype = dtype_name(dtype)
        self.seed = stream_seed(seed)
        super().__init__(*(self.drawn.inputs if self.drawn else ()), name=name)

    def sample(self, generator, shape) -> np.ndarray:
        raise NotImplementedError

    def forward(self, xp, *values, draw):
        shape = self.drawn.value(values) if self.drawn else self.drawn_shape
        return draw(self, shape, self.drawn_dtype)

    def infer_shape(self, *shapes):
        return self.drawn.known if self.drawn else self.drawn_shape

    def infer_dtype(self, *dtypes):
        return self.drawn_dtype

    def backward(self, grad):
        return [None] * len(self.inputs)


class RandomNormal(RandomDraw):
    """``mean + stddev * z``, z standard normal."""

    def __init__(self, shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
        self.mean, self.stddev = float(mean), float(stddev)
        super().__init__(shape, dtype, seed, name)

    def sample(self, generator, shape):
        return generator.standard_normal(shape) * self.stddev + self.mean


class TruncatedNormal(RandomNormal):
    """``mean + stddev * z``, z standard normal redrawn until within [-2, 2]."""

    def sample(self, generator, shape):
        return truncated(generator, shape) * self.stddev + self.mean


class RandomUniform(RandomDraw):
    """Uniform in [minval, maxval): floats, or integers for an integer dtype."""

    def __init__(self, shape, minval=0.0, maxval=1.0, dtype="float32", seed=None, name=None):
        kind = np.dtype(dtype_name(dtype)).kind
        if kind not in "fiu":
            raise TypeError(f"random_uniform: dtype {dtype_name(dtype)} is not a number type")
        cast = float if kind == "f" else int
        self.minval, self.maxval = cast(minval), cast(maxval)
        if not self.minval < self.maxval:
            raise ValueError(f"random_uniform: minval {minval} must be below maxval {maxval}")
        super().__init__(shape, dtype, seed, name)

    def sample(self, generator, shape):
        if isinstance(self.minval, int):
            return generator.integers(self.minval, self.maxval, shape)
        span = self.maxval - self.minval
        values = (generator.random(shape) * span + self.minval).astype(self.drawn_dtype)
        # rounding to float32 can reach maxval, which the interval leaves out
        top = np.nextafter(values.dtype.type(self.maxval), values.dtype.type(self.minval))
        return np.minimum(values, top)


class RandomShuffle(Operation):
    """x with its first axis in a new random order every run (no gradient, as TF1's)."""

    random = True
    fresh = True

    def __init__(self, x, seed=None, name=None):
        self.seed = stream_seed(seed)
        super().__init__(x, name=name)
        if self.shape is not None and len(self.shape) == 0:
            raise ValueError(f"random_shuffle: {self.inputs[0].label} is a scalar; shuffle "
                             "a tensor of at least one axis")

    def sample(self, generator, shape):
        return generator.permutation(shape[0])

    def forward(self, xp, x, draw):
        order = draw(self, (x.shape[0],), "int32")  # int32: JAX without x64 holds it too
        return xp.take(x, order, axis=0)

    def infer_shape(self, x):
        return x

    def infer_dtype(self, x):
        return x

    def backward(self, grad):
        return [None]


def dropout(x, rate, training=True, name=None):
    """x with each entry zeroed with probability ``rate`` and the rest scaled by
    1 / (1 - rate), as TF1's ``tf.nn.dropout(x, rate=...)``; ``x`` itself where ``training`` is
    false. ``training`` may be a bool or a scalar bool placeholder, so one graph serves both;
    ``rate`` may be a scalar node as well (TF1's ``keep_prob`` placeholder), fed 0 to keep
    every entry. The mask is drawn anew every run from the Session's generator
    (``Session(seed=...)``): the same seed gives the same masks on every backend.

    >>> import xpnn as xn
    >>> with xn.Graph().as_default():
    ...     y = xn.dropout(xn.constant([1.0, 1.0, 1.0, 1.0]), rate=0.5)
    ...     sorted(set(xn.Session(seed=0).run(y).tolist()) - {0.0})
    [2.0]
    """
    if training is False:
        return as_node(x)
    if not isinstance(training, Node) and training is not True:
        raise TypeError(f"dropout: training must be a bool or a bool placeholder, got "
                        f"{training!r}")
    node = as_node(x)
    if isinstance(rate, Node):  # a rate fed at run time
        if training is not True:
            raise TypeError("dropout: a rate node comes with training=True (feed rate 0 "
                            "to switch dropout off)")
        return multiply(node, DropoutMaskOf(node, rate), name=name)
    flag = training if isinstance(training, Node) else Constant(True, graph=node.graph)
    return multiply(node, DropoutMask(node, flag, rate), name=name)


def random_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
    """Normal values with ``mean`` and ``stddev``, drawn anew every run.

    >>> import xpnn as xn
    >>> sample = xn.Session(seed=0).run(xn.random_normal((10000,), mean=5.0, stddev=2.0))
    >>> round(float(sample.mean())), round(float(sample.std()))
    (5, 2)
    """
    return RandomNormal(shape, mean, stddev, dtype, seed, name=name)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
    """Normal values within two ``stddev`` of ``mean`` (those beyond are drawn again), drawn
    anew every run.

    >>> import xpnn as xn
    >>> sample = xn.Session(seed=0).run(xn.truncated_normal((10000,), stddev=0.5))
    >>> bool(abs(sample).max() <= 1.0)
    True
    """
    return TruncatedNormal(shape, mean, stddev, dtype, seed, name=name)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None, name=None):
    """Uniform values in [minval, maxval), drawn anew every run: integers where ``dtype``
    is an integer type.

    >>> import xpnn as xn
    >>> dice = xn.Session(seed=0).run(xn.random_uniform((1000,), 1, 7, dtype="int32"))
    >>> sorted(set(dice.tolist())), dice.dtype
    ([1, 2, 3, 4, 5, 6], dtype('int32'))
    """
    return RandomUniform(shape, minval, maxval, dtype, seed, name=name)


def random_shuffle(x, seed=None, name=None):
    """``x`` with its first axis shuffled, in a new order every run.

    >>> import xpnn as xn
    >>> rows = xn.Session(seed=0).run(xn.random_shuffle(xn.constant([1.0, 2.0, 3.0, 4.0])))
    >>> sorted(rows.tolist())
    [1.0, 2.0, 3.0, 4.0]
    """
    return RandomShuffle(x, seed, name=name)


__all__ = ["DropoutMask", "DropoutMaskOf", "DropoutKeepMaskOf", "stream_seed", "truncated",
           "RandomDraw",
           "RandomNormal", "TruncatedNormal", "RandomUniform", "RandomShuffle", "dropout",
           "random_normal", "truncated_normal", "random_uniform", "random_shuffle"]
