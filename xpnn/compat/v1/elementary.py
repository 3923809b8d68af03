"""TF1's elementary functions (``tf.sin`` ... ``tf.atanh``, ``atan2``, ``log1p``, ``expm1``,
``erf``, ``log_sigmoid``), its integer-style divisions (``floordiv``/``floor_div``,
``mod``/``floormod``, ``truncatediv``, ``truncatemod``, the old ``div``, ``div_no_nan``),
the tests ``is_nan``/``is_inf``/``is_finite``, and the selections of run-time length
``boolean_mask`` and ``segment_sum``: top-level and under ``tf.math``
(``tf.math.is_nan``...), over ``xpnn.ops.elementary`` and ``xpnn.ops.selection``.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.constant([[1.0, -2.0], [3.0, 4.0]])
>>> sess = tf.Session()
>>> print(sess.run(tf.boolean_mask(x, x > 0.0)), sess.run(tf.floormod(-7, 3)))
[1. 3. 4.] 2
"""

from __future__ import annotations

from ... import ops
from ...graph import Node
from .graphs import op_name
from .tensors import as_tensor


def _unary(fn, default):
    def unary(x, name=None):
        return fn(as_tensor(x), name=op_name(name, default))

    unary.__name__ = fn.__name__
    unary.__doc__ = f"TF1's elementwise ``{fn.__name__}``: floating values only."
    return unary


def _binary(fn, default):
    def binary(x, y, name=None):
        if not isinstance(x, Node) and not isinstance(y, Node):
            x = as_tensor(x)  # TF1's dtype for plain values; y then takes x's
        return fn(x, y, name=op_name(name, default))

    binary.__name__ = fn.__name__
    binary.__doc__ = fn.__doc__
    return binary


sin = _unary(ops.sin, "Sin")
cos = _unary(ops.cos, "Cos")
tan = _unary(ops.tan, "Tan")
asin = _unary(ops.asin, "Asin")
acos = _unary(ops.acos, "Acos")
atan = _unary(ops.atan, "Atan")
sinh = _unary(ops.sinh, "Sinh")
cosh = _unary(ops.cosh, "Cosh")
asinh = _unary(ops.asinh, "Asinh")
acosh = _unary(ops.acosh, "Acosh")
atanh = _unary(ops.atanh, "Atanh")
log1p = _unary(ops.log1p, "Log1p")
expm1 = _unary(ops.expm1, "Expm1")
erf = _unary(ops.erf, "Erf")
is_nan = _unary(ops.is_nan, "IsNan")
is_inf = _unary(ops.is_inf, "IsInf")
is_finite = _unary(ops.is_finite, "IsFinite")
softsign = _unary(ops.softsign, "Softsign")
atan2 = _binary(ops.atan2, "Atan2")
floordiv = _binary(ops.floordiv, "FloorDiv")
floor_div = floordiv
floormod = _binary(ops.floormod, "FloorMod")
mod = floormod
truncatediv = _binary(ops.truncatediv, "TruncateDiv")
truncatemod = _binary(ops.truncatemod, "TruncateMod")


def div(x, y, name=None):
    """TF1's old ``tf.div``: Python 2's division, floor division for integers."""
    if not isinstance(x, Node) and not isinstance(y, Node):
        x = as_tensor(x)
    quotient = ops.divide(x, y)
    x, y = quotient.inputs
    if (x.dtype or "float32").startswith(("int", "uint")):
        return ops.floordiv(x, y, name=op_name(name, "FloorDiv"))
    return ops.identity(quotient, name=op_name(name, "div"))


def div_no_nan(x, y, name=None):
    """x / y, 0 where y is 0 (its gradient too)."""
    x, y = as_tensor(x), as_tensor(y)
    zero = ops.logic.equal(y, 0.0)
    safe = ops.logic.where(zero, ops.ones_like(y), y)
    return ops.logic.where(zero, ops.zeros_like(ops.divide(x, safe)), ops.divide(x, safe),
                           name=op_name(name, "div_no_nan"))


divide_no_nan = div_no_nan


def log_sigmoid(x, name=None):
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return ops.negative(ops.softplus(ops.negative(as_tensor(x))),
                        name=op_name(name, "LogSigmoid"))


def boolean_mask(tensor, mask, name="boolean_mask", axis=None):
    """The slices of ``tensor`` where ``mask`` (bool, the shape of the tensor's axes from
    ``axis``, 0 by default) holds, in one axis of run-time length. A plan with it cannot be
    compiled by JAX (the length is read on the host): there it runs op by op."""
    mask = as_tensor(mask)
    if mask.dtype != "bool":
        raise TypeError(f"tf.boolean_mask: the mask {mask.label} must be bool, got "
                        f"{mask.dtype}; compare it first (tf.cast(mask, tf.bool), mask > 0)")
    return ops.boolean_mask(as_tensor(tensor), mask, 0 if axis is None else int(axis),
                            name=op_name(name, "boolean_mask"))


def where_indices(condition, name=None):
    """``tf.where(condition)``: the indices (int64 rows) of the true entries, a run-time
    count of them."""
    return ops.where_indices(as_tensor(condition), name=op_name(name, "Where"))


def segment_sum(data, segment_ids, name=None):
    """TF1's ``segment_sum``: ``out[j]`` sums the slices of ``data`` whose (sorted) segment
    id is j, for j up to the largest id: the output's length is read at run time."""
    return ops.segment_sum(as_tensor(data), as_tensor(segment_ids),
                           name=op_name(name, "SegmentSum"))


__all__ = ["sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "asinh",
           "acosh", "atanh", "log1p", "expm1", "erf", "is_nan", "is_inf", "is_finite",
           "softsign", "floordiv", "floor_div", "floormod", "mod", "truncatediv",
           "truncatemod", "boolean_mask", "segment_sum", "div", "div_no_nan", "divide_no_nan",
           "log_sigmoid"]
