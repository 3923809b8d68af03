"""Making values, TF1's way: ``constant`` and friends with TF1's dtypes (Python floats are
float32, Python ints int32, NumPy arrays keep theirs), placeholders (with a default too),
conversions, and the random tensors.

Random tensors (``random_normal``, ``truncated_normal``, ``random_uniform``,
``random_shuffle``) are ops that draw anew at every run, as TF1's: the graph's and the op's
seeds start each Session's sequence of draws over, so two Sessions give the same values,
and the same on every backend (drawn on the host with NumPy, ``xpnn.ops.random``), though not
TF's numbers (TF uses another generator, Philox).

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> tf.constant(3).dtype, tf.constant(3.0).dtype, tf.zeros([2, 3], tf.int64).dtype
('int32', 'float32', 'int64')
>>> tf.set_random_seed(0)
>>> w = tf.random_normal([2, 2], seed=1)
>>> sess = tf.Session()
>>> first, second = sess.run(w), sess.run(w)
>>> w.shape, w.dtype, bool((first == second).all()), bool((tf.Session().run(w) == first).all())
((2, 2), 'float32', False, True)
"""

from __future__ import annotations

import numpy as np

from ... import ops
from ...graph import Constant, Node, Placeholder
from ...ops import random as _random
from .dtypes import as_dtype, float32, name_of
from .graphs import op_name, op_seeds
from .indexed_slices import IndexedSlices, to_dense
from .strings import TextConstant

_INT32 = np.iinfo(np.int32)


def host_array(value, dtype=None) -> np.ndarray:
    """A host value with TF1's dtype: the one asked for; else NumPy data's own; else
    float32 for Python floats, int32 for Python ints (int64 where they do not fit), bool."""
    if dtype is not None:
        return np.asarray(value, dtype=as_dtype(dtype).name)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind in "iu":
        fits = array.size == 0 or (array.min() >= _INT32.min and array.max() <= _INT32.max)
        return array.astype(np.int32 if fits else np.int64)
    if array.dtype.kind != "b":
        hint = ("; join tensors with tf.stack(values)" if array.dtype == object and any(
            isinstance(v, Node) for v in array.reshape(-1)) else "")
        raise TypeError(f"cannot make a tensor of {value!r} (dtype {array.dtype}): xpnn holds "
                        f"numbers and bools{hint}")
    return array


def constant(value, dtype=None, shape=None, name="Const", verify_shape=False):
    """A constant; ``shape`` broadcasts a scalar (``tf.constant(0.1, shape=[10])``) or
    reshapes a value of that many entries."""
    if _is_text(value):  # kept on the host, for tf.summary.text
        return TextConstant(value, name=op_name(name, "Const"))
    array = host_array(value, dtype)
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if array.size == 1:
            array = np.full(shape, array.reshape(()), dtype=array.dtype)
        elif array.size == int(np.prod(shape)) and not verify_shape:
            array = array.reshape(shape)
        else:
            raise TypeError(f"constant: a value of shape {array.shape} does not fill shape "
                            f"{shape}")
    return Constant(array, dtype=array.dtype, name=op_name(name, "Const"))


def _is_text(value) -> bool:
    return isinstance(value, (str, bytes)) or (
        isinstance(value, (list, tuple, np.ndarray)) and np.asarray(value).dtype.kind in "SU")


def convert_to_tensor(value, dtype=None, name=None, preferred_dtype=None):
    """Nodes pass through (cast where ``dtype`` differs), IndexedSlices become dense; other
    values become constants."""
    value = to_dense(value)
    if isinstance(value, Node):
        if dtype is not None and value.dtype is not None and name_of(dtype) != value.dtype:
            raise ValueError(f"convert_to_tensor: {value.label} is {value.dtype}, not "
                             f"{name_of(dtype)}; cast it with tf.cast")
        return value
    return constant(value, dtype or preferred_dtype, name=name or "Const")


def as_tensor(value, dtype=None):
    """A node for ``value``, with TF1's dtypes for plain values (an IndexedSlices dense)."""
    if isinstance(value, IndexedSlices):
        return to_dense(value)
    return value if isinstance(value, Node) else constant(value, dtype)


def zeros(shape, dtype=float32, name=None):
    """``shape``d zeros: a constant, or a Fill where the shape holds tensors."""
    if ops.holds_nodes(shape):
        return fill(shape, constant(0, dtype), name=op_name(name, "zeros"))
    return constant(np.zeros(_shape(shape), name_of(dtype)), name=name or "zeros")


def ones(shape, dtype=float32, name=None):
    if ops.holds_nodes(shape):
        return fill(shape, constant(1, dtype), name=op_name(name, "ones"))
    return constant(np.ones(_shape(shape), name_of(dtype)), name=name or "ones")


def fill(dims, value, name=None):
    """``dims``-shaped (ints and scalar tensors, or a shape tensor), every entry ``value``
    (its TF1 dtype)."""
    if ops.holds_nodes(dims) or isinstance(value, Node):
        return ops.fill_to(_shape(dims), as_tensor(value), name=op_name(name, "Fill"))
    value = host_array(value)
    return constant(np.full(_shape(dims), value, value.dtype), name=name or "Fill")


def zeros_like(tensor, dtype=None, name=None, optimize=True):
    return _like(ops.ZerosLike, tensor, dtype, name or "zeros_like")


def ones_like(tensor, dtype=None, name=None, optimize=True):
    return _like(ops.OnesLike, tensor, dtype, name or "ones_like")


def _like(cls, tensor, dtype, name):
    node = as_tensor(tensor)
    if dtype is not None and name_of(dtype) != node.dtype:
        node = ops.cast(node, name_of(dtype))
    return cls(node, name=op_name(name, name))


def _shape(shape):
    """A shape as a tuple of ints; one holding tensors (``[tf.shape(x)[0], 3]``, a shape
    tensor) as it is, known at run time (``xn.ops.dynamic``)."""
    if ops.holds_nodes(shape):
        return shape
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(
        int(d) for d in shape)


def range(start, limit=None, delta=1, dtype=None, name="range"):  # noqa: A001 - TF1's name
    """TF1's ``tf.range``: int32 for ints, float32 for floats; a constant, or an op where
    an argument is a tensor (``tf.range(tf.shape(x)[0])``)."""
    if limit is None:
        start, limit = 0, start
    given = (start, limit, delta)
    if any(isinstance(v, Node) for v in given):
        if dtype is None:
            kinds = [v.dtype if isinstance(v, Node) else host_array(v).dtype.name for v in given]
            dtype = next((k for k in ("float64", "float32", "int64") if k in kinds), "int32")
        return ops.range_to(*given, name_of(dtype), name=op_name(name, "range"))
    values = np.arange(start, limit, delta)
    return constant(values.tolist() if dtype is None else values, dtype, name=name)


def placeholder(dtype, shape=None, name=None):
    """A value fed at run time, of ``dtype`` (fed data is converted to it)."""
    shape = None if shape is None else tuple(None if d is None or d == -1 else int(d)
                                             for d in _dims(shape))
    return Placeholder(None, op_name(name, "Placeholder"), shape, name_of(dtype))


def _dims(shape):
    return [shape] if isinstance(shape, (int, np.integer)) else list(shape)


class PlaceholderWithDefault(Placeholder):
    """A placeholder that takes ``default`` (a host array) in a run that does not feed it:
    ``tf.Session`` feeds it for you. (A plain ``xn.Session`` asks for a feed.)"""

    def __init__(self, default: np.ndarray, shape, name):
        super().__init__(None, name, shape, default.dtype)
        self.default = default


def placeholder_with_default(input, shape, name=None):  # noqa: A002 - TF1's name
    """``input`` unless a run feeds another value (the shape may then differ where
    ``shape`` has None). ``input`` must be known when the graph is built (a number, an
    array or a constant)."""
    if isinstance(input, Node):
        if not isinstance(input, Constant):
            raise NotImplementedError(
                "placeholder_with_default: xpnn.compat.v1 takes a default known when the "
                f"graph is built (a number, an array or a constant), not {input.label}")
        default = np.asarray(input.value)
    else:
        default = host_array(input)
    shape = None if shape is None else tuple(None if d is None else int(d) for d in _dims(shape))
    if shape is not None and (len(shape) != default.ndim or any(
            d is not None and d != s for d, s in zip(shape, default.shape))):
        raise ValueError(f"placeholder_with_default: the default has shape {default.shape}, "
                         f"not {shape}")
    return PlaceholderWithDefault(default, shape, op_name(name, "PlaceholderWithDefault"))


def cast(x, dtype, name=None):
    """x in ``dtype`` (floats to integers truncate toward zero)."""
    node = as_tensor(x)
    return ops.cast(node, name_of(dtype), name=op_name(name, "Cast"))


def to_float(x, name="ToFloat"):
    return cast(x, "float32", name)


def to_double(x, name="ToDouble"):
    return cast(x, "float64", name)


def to_int32(x, name="ToInt32"):
    return cast(x, "int32", name)


def to_int64(x, name="ToInt64"):
    return cast(x, "int64", name)


def identity(input, name=None):  # noqa: A002 - TF1's name
    return ops.identity(as_tensor(input), name=op_name(name, "Identity"))


def stop_gradient(input, name=None):  # noqa: A002 - TF1's name
    return ops.stop_gradient(as_tensor(input), name=op_name(name, "StopGradient"))


# --------------------------------------------------------------------------- random


def _floating(dtype, what):
    if not as_dtype(dtype).is_floating:
        raise TypeError(f"{what}: dtype {name_of(dtype)} is not a floating type")
    return name_of(dtype)


def _number(value, what):
    if isinstance(value, Node):
        raise NotImplementedError(f"tf.{what} with a tensor as a parameter: xpnn.compat.v1 "
                                  "takes numbers (scale and shift the draw with tf ops)")
    return value


def random_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name=None):
    """Normal values, drawn anew at every run (see the module's note)."""
    return _random.random_normal(_shape(shape), _number(mean, "random_normal"),
                                 _number(stddev, "random_normal"),
                                 _floating(dtype, "random_normal"), op_seeds(seed),
                                 name=op_name(name, "random_normal"))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name=None):
    """Normal values within two standard deviations of the mean (others redrawn), drawn
    anew at every run."""
    return _random.truncated_normal(_shape(shape), _number(mean, "truncated_normal"),
                                    _number(stddev, "truncated_normal"),
                                    _floating(dtype, "truncated_normal"), op_seeds(seed),
                                    name=op_name(name, "truncated_normal"))


def random_uniform(shape, minval=0, maxval=None, dtype=float32, seed=None, name=None):
    """Uniform values in [minval, maxval) (maxval 1 for floats; needed for integers), drawn
    anew at every run."""
    if maxval is None:
        if as_dtype(dtype).is_integer:
            raise ValueError("random_uniform: integer dtypes need maxval")
        maxval = 1.0
    return _random.random_uniform(_shape(shape), _number(minval, "random_uniform"),
                                  _number(maxval, "random_uniform"), name_of(dtype),
                                  op_seeds(seed), name=op_name(name, "random_uniform"))


def random_shuffle(value, seed=None, name=None):
    """``value`` with its first axis shuffled, in a new order at every run."""
    return _random.random_shuffle(as_tensor(value), op_seeds(seed),
                                  name=op_name(name, "random_shuffle"))
