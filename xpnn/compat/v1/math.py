"""TF1's math with TF1's defaults: ``argmax``/``argmin`` along axis 0, comparisons giving
bool, ``reduce_*`` with ``axis``/``keepdims`` or the old ``reduction_indices``/``keep_dims``,
``matmul`` with transposes, the clipping functions as TF1 computes them, ``gradients``.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.constant([[1.0, 5.0], [3.0, 2.0]])
>>> sess = tf.Session()
>>> sess.run([tf.argmax(x), tf.reduce_sum(x, reduction_indices=[1], keep_dims=True)])
[array([1, 0]), array([[6.],
       [5.]], dtype=float32)]
"""

from __future__ import annotations

import sys

from ... import autodiff, ops
from ...graph import Node, as_node
from ...ops import logic
from .array_ops import cumsum, unsorted_segment_sum  # noqa: F401 - tf.math's too
from .dtypes import int64, name_of
from .elementary import *  # noqa: F403 - tf.math.sin ... tf.math.segment_sum
from .graphs import op_name
from .indexed_slices import IndexedSlices, from_gradient, map_values
from .nn_extra import in_top_k  # noqa: F401 - tf.math's too
from .tensors import as_tensor
from .unsupported import module_getattr


def _binary(fn, default):
    def binary(x, y, name=None):
        if not isinstance(x, Node) and not isinstance(y, Node):
            x = as_tensor(x)  # TF1's dtype for plain values; y then takes x's
        return fn(x, y, name=op_name(name, default))

    binary.__name__ = default.lower()
    binary.__doc__ = f"TF1's ``tf.{default.lower()}``, elementwise with broadcasting."
    return binary


def _unary(fn, default):
    def unary(x, name=None):
        return fn(as_tensor(x), name=op_name(name, default))

    unary.__doc__ = f"TF1's elementwise ``{default}``."
    return unary


_BINARY = {  # TF1's name -> (xpnn's op, the default op name, as TF1's op type)
    "add": (ops.add, "Add"),
    "subtract": (ops.subtract, "Sub"),
    "multiply": (ops.multiply, "Mul"),
    "divide": (ops.divide, "truediv"),
    "truediv": (ops.divide, "truediv"),
    "realdiv": (ops.divide, "RealDiv"),
    "maximum": (ops.maximum, "Maximum"),
    "minimum": (ops.minimum, "Minimum"),
    "pow": (ops.pow, "Pow"),
    "equal": (logic.equal, "Equal"),
    "not_equal": (logic.not_equal, "NotEqual"),
    "greater": (logic.greater, "Greater"),
    "greater_equal": (logic.greater_equal, "GreaterEqual"),
    "less": (logic.less, "Less"),
    "less_equal": (logic.less_equal, "LessEqual"),
    "logical_and": (logic.logical_and, "LogicalAnd"),
    "logical_or": (logic.logical_or, "LogicalOr"),
    "logical_xor": (logic.logical_xor, "LogicalXor"),
}
_UNARY = {  # the same, for one operand
    "negative": (ops.negative, "Neg"),
    "abs": (ops.abs, "Abs"),
    "sign": (ops.Sign, "Sign"),
    "square": (ops.square, "Square"),
    "sqrt": (ops.sqrt, "Sqrt"),
    "exp": (ops.exp, "Exp"),
    "log": (ops.log, "Log"),
    "sigmoid": (ops.sigmoid, "Sigmoid"),
    "tanh": (ops.tanh, "Tanh"),
    "floor": (ops.floor, "Floor"),
    "ceil": (ops.ceil, "Ceil"),
    "round": (ops.round, "Round"),
    "logical_not": (logic.logical_not, "LogicalNot"),
    "relu": (ops.relu, "Relu"),
    "relu6": (ops.relu6, "Relu6"),
    "elu": (ops.elu, "Elu"),
    "softplus": (ops.softplus, "Softplus"),
}
globals().update({name: _binary(fn, default) for name, (fn, default) in _BINARY.items()})
globals().update({name: _unary(fn, default) for name, (fn, default) in _UNARY.items()})


def rsqrt(x, name=None):
    return ops.divide(1.0, ops.sqrt(as_tensor(x)), name=op_name(name, "Rsqrt"))


def reciprocal(x, name=None):
    return ops.divide(1.0, as_tensor(x), name=op_name(name, "Reciprocal"))


def squared_difference(x, y, name=None):
    return ops.square(ops.subtract(x, y), name=op_name(name, "SquaredDifference"))


def scalar_mul(scalar, x, name=None):
    return ops.multiply(scalar, x, name=op_name(name, "Mul"))


def add_n(inputs, name=None):
    """The sum of a list of tensors."""
    total = as_tensor(inputs[0])
    for node in inputs[1:]:
        total = ops.add(total, node)
    return ops.identity(total, name=op_name(name, "AddN"))


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           a_is_sparse=False, b_is_sparse=False, name=None):
    """a @ b, either (or both) transposed first (adjoint: the same for real values)."""
    a, b = as_tensor(a), as_tensor(b)
    if transpose_a or adjoint_a:
        a = _swap_last(a)
    if transpose_b or adjoint_b:
        b = _swap_last(b)
    return ops.matmul(a, b, name=op_name(name, "MatMul"))


def _swap_last(x):
    if x.shape is None:
        raise ValueError(f"matmul(transpose_...): {x.label} needs a known rank")
    axes = list(range(len(x.shape)))
    axes[-2:] = axes[-1:-3:-1]
    return ops.transpose(x, axes)


# --------------------------------------------------------------------------- reductions


def reduction_args(what, axis, keepdims, reduction_indices, keep_dims):
    """(axis, keepdims) from TF1's two spellings of each."""
    if reduction_indices is not None:
        if axis is not None:
            raise ValueError(f"{what}: give axis or reduction_indices, not both")
        axis = reduction_indices
    if keep_dims is not None:
        if keepdims is not None:
            raise ValueError(f"{what}: give keepdims or keep_dims, not both")
        keepdims = keep_dims
    if isinstance(axis, (list, tuple)):
        axis = tuple(int(a) for a in axis)
    elif axis is not None:
        axis = int(axis)
    return axis, bool(keepdims)


def _reduction(fn, default):
    def reduce(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None,
               keep_dims=None):
        axis, keep = reduction_args(default, axis, keepdims, reduction_indices, keep_dims)
        return fn(as_tensor(input_tensor), axis=axis, keepdims=keep,
                  name=op_name(name, default))

    reduce.__doc__ = (f"TF1's ``{default}`` over ``axis`` (or ``reduction_indices``), all "
                      "axes by default; ``keepdims`` (or ``keep_dims``) keeps them as 1.")
    return reduce


reduce_sum = _reduction(ops.reduce_sum, "Sum")
reduce_mean = _reduction(ops.reduce_mean, "Mean")
reduce_max = _reduction(ops.reduce_max, "Max")
reduce_min = _reduction(ops.reduce_min, "Min")
reduce_prod = _reduction(ops.reduce_prod, "Prod")
reduce_all = _reduction(ops.reduce_all, "All")
reduce_any = _reduction(ops.reduce_any, "Any")
reduce_logsumexp = _reduction(ops.logsumexp, "ReduceLogSumExp")


def argmax(input, axis=None, name=None, dimension=None, output_type=int64):  # noqa: A002
    """The index of the largest entry along ``axis`` (TF1's default: **0**), int64."""
    return _arg(ops.argmax, input, axis, dimension, output_type, name, "ArgMax")


def argmin(input, axis=None, name=None, dimension=None, output_type=int64):  # noqa: A002
    """The index of the smallest entry along ``axis`` (TF1's default: **0**), int64."""
    return _arg(ops.argmin, input, axis, dimension, output_type, name, "ArgMin")


def _arg(fn, x, axis, dimension, output_type, name, default):
    if dimension is not None:
        if axis is not None:
            raise ValueError(f"{default}: give axis or dimension, not both")
        axis = dimension
    node = fn(as_tensor(x), axis=0 if axis is None else int(axis))
    if name_of(output_type) != "int64":
        node = ops.cast(node, name_of(output_type))
    return ops.identity(node, name=op_name(name, default))


# --------------------------------------------------------------------------- clipping


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """t limited to [min, max] (bounds numbers or tensors); the gradient passes where t
    lies within them, bounds included. An IndexedSlices' values are clipped."""
    if isinstance(t, IndexedSlices):
        return map_values(lambda v: clip_by_value(v, clip_value_min, clip_value_max, name), t)
    t = as_tensor(t)
    name = op_name(name, "clip_by_value")
    if isinstance(clip_value_min, (int, float)) and isinstance(clip_value_max, (int, float)):
        return ops.clip(t, clip_value_min, clip_value_max, name=name)
    return ops.maximum(ops.minimum(t, clip_value_max), clip_value_min, name=name)


def clip_by_norm(t, clip_norm, axes=None, name=None):
    """t scaled down where its L2 norm (over ``axes``) exceeds ``clip_norm``, as TF1's (an
    IndexedSlices: the norm of its values, repeated indices apart)."""
    if isinstance(t, IndexedSlices):
        return map_values(lambda v: clip_by_norm(v, clip_norm, axes, name), t)
    t = as_tensor(t)
    l2sum = ops.reduce_sum(ops.multiply(t, t), axis=axes, keepdims=True)
    positive = l2sum > 0.0
    safe = logic.where(positive, l2sum, ops.ones_like(l2sum))
    l2norm = logic.where(positive, ops.sqrt(safe), l2sum)
    clipped = ops.divide(ops.multiply(t, clip_norm), ops.maximum(l2norm, clip_norm))
    return ops.identity(clipped, name=op_name(name, "clip_by_norm"))


def global_norm(t_list, name=None):
    """sqrt of the sum of every tensor's squared entries (None entries skipped; an
    IndexedSlices' values, repeated indices apart, as TF1)."""
    halves = [l2_loss(t.values if isinstance(t, IndexedSlices) else t)
              for t in t_list if t is not None]
    total = ops.stack(halves) if len(halves) > 1 else ops.reshape(halves[0], (1,))
    return ops.sqrt(ops.multiply(ops.reduce_sum(total), 2.0),
                    name=op_name(name, "global_norm"))


def clip_by_global_norm(t_list, clip_norm, use_norm=None, name=None):
    """(the tensors scaled by clip_norm / max(global norm, clip_norm), the global norm);
    a non-finite norm makes every result NaN, as in TF1."""
    t_list = list(t_list)
    norm = global_norm(t_list) if use_norm is None else as_tensor(use_norm)
    clip_norm = as_node(float(clip_norm)) if not isinstance(clip_norm, Node) else clip_norm
    scale = ops.multiply(clip_norm, ops.minimum(ops.divide(1.0, norm), ops.divide(1.0, clip_norm)))
    scale = ops.add(scale, ops.subtract(norm, norm))  # NaN where the norm is not finite
    clipped = [None if t is None else map_values(
        lambda v: ops.multiply(v, scale, name=op_name(name, "clip")), t) for t in t_list]
    return clipped, norm


def l2_loss(t, name=None):
    """sum(t ** 2) / 2, as TF1's kernel: sum(t * t * 0.5)."""
    t = as_tensor(t)
    return ops.reduce_sum(ops.multiply(ops.square(t), 0.5), name=op_name(name, "L2Loss"))


def gradients(ys, xs, grad_ys=None, name="gradients", colocate_gradients_with_ops=False,
              gate_gradients=False, aggregation_method=None, stop_gradients=None,
              unconnected_gradients=None):
    """d(sum of ys)/dx for each x, as nodes (None where x does not affect ys); gradients of
    gradients too. ``grad_ys`` (one per y, None for ones) weights the ys; no gradient goes
    through the tensors of ``stop_gradients`` (as TF1's)."""
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    if grad_ys is not None:
        grad_ys = list(grad_ys) if isinstance(grad_ys, (list, tuple)) else [grad_ys]
        if len(grad_ys) != len(ys):
            raise ValueError(f"tf.gradients: Length mismatch. Passed {len(grad_ys)} grad_ys "
                             f"for {len(ys)} ys")
        grad_ys = [_seed(y, g) for y, g in zip(ys, grad_ys)]
    if stop_gradients is not None and not isinstance(stop_gradients, (list, tuple)):
        stop_gradients = [stop_gradients]
    return [from_gradient(g) for g in
            autodiff.gradients(ys, xs, grad_ys, stop_gradients or ())]


def _seed(y, g):
    """``g`` as a tensor of y's dtype, refused where its static shape is not y's."""
    if g is None:
        return None
    g = g if isinstance(g, Node) else as_tensor(g, y.dtype)
    a, b = g.shape, y.shape
    if a is not None and b is not None and (len(a) != len(b) or any(
            m is not None and n is not None and m != n for m, n in zip(a, b))):
        raise ValueError(f"tf.gradients: a grad_ys entry of shape {a} for {y.label} of shape "
                         f"{b}; give each y a seed of its shape")
    return g


__getattr__ = module_getattr(sys.modules[__name__], "tf.math")
