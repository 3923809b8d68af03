"""TF1's control flow over ``xpnn.control_flow``: ``tf.cond``, ``tf.while_loop``, ``tf.scan``,
``tf.foldl``, ``tf.foldr``, ``tf.map_fn`` and ``tf.TensorArray``, with TF1's argument names
and its habits: ``while_loop`` hands back a lone loop variable unwrapped (unless
``return_same_structure``), ``cond`` takes ``fn1``/``fn2`` too. ``parallel_iterations``,
``back_prop`` and ``swap_memory`` are accepted and change nothing.

>>> import xpnn.compat.v1 as tf
>>> i = tf.while_loop(lambda i: i < 10, lambda i: [i + 3], [tf.constant(0)])
>>> with tf.Session() as sess:
...     print(sess.run(i))
12
"""

from __future__ import annotations

from ... import control_flow
from .dtypes import as_dtype


def cond(pred, true_fn=None, false_fn=None, strict=False, name=None, fn1=None, fn2=None):
    true_fn, false_fn = true_fn or fn1, false_fn or fn2
    if true_fn is None or false_fn is None:
        raise TypeError("tf.cond needs true_fn and false_fn")
    result = control_flow.cond(pred, true_fn, false_fn, name=name)
    if strict or not isinstance(result, list) or len(result) != 1:
        return result
    return result[0]  # TF1 unpacks a branch's list of one


def while_loop(cond, body, loop_vars, shape_invariants=None, parallel_iterations=10,
               back_prop=True, swap_memory=False, name=None, maximum_iterations=None,
               return_same_structure=False):
    del parallel_iterations, back_prop, swap_memory  # one loop, on the Session's device
    structured = isinstance(loop_vars, (list, tuple))
    result = control_flow.while_loop(cond, _listed(body), loop_vars, shape_invariants,
                                     maximum_iterations, name)
    if structured and len(result) == 1 and not return_same_structure:
        return result[0]  # TF1: a lone loop variable comes back unwrapped
    return type(loop_vars)(result) if structured else result


def _listed(body):
    """``body`` whose tuple result is a list (TF1 bodies return tuples and lists)."""

    def wrapped(*args):
        out = body(*args)
        return list(out) if isinstance(out, tuple) else out

    return wrapped


def scan(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
         swap_memory=False, infer_shape=True, reverse=False, name=None):
    return control_flow.scan(fn, elems, initializer, reverse=reverse, name=name)


def foldl(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
          swap_memory=False, name=None):
    return control_flow.foldl(fn, elems, initializer, name=name)


def foldr(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
          swap_memory=False, name=None):
    return control_flow.foldr(fn, elems, initializer, name=name)


def map_fn(fn, elems, dtype=None, parallel_iterations=None, back_prop=True,
           swap_memory=False, infer_shape=True, name=None):
    """``fn`` over the first axis of ``elems`` (a node or a list of nodes), the results
    stacked: a scan with no carry."""
    from ...graph import constant

    _, stacked = control_flow.scan_loop(lambda carry, x: (carry, fn(x)),
                                        constant(0.0), elems, name=name)
    return stacked


class TensorArray(control_flow.TensorArray):
    """TF1's ``tf.TensorArray`` of a fixed ``size`` with a known ``element_shape``."""

    def __init__(self, dtype, size=None, dynamic_size=None, clear_after_read=None,
                 tensor_array_name=None, handle=None, flow=None, infer_shape=True,
                 element_shape=None, colocate_with_first_write_call=True, name=None,
                 buffer=None):
        if dynamic_size:
            raise NotImplementedError(
                "tf.TensorArray(dynamic_size=True) is not in xpnn.compat.v1: give a fixed "
                "size (the array of all elements is made at once)")
        if buffer is None and hasattr(size, "graph"):
            raise NotImplementedError(
                "tf.TensorArray: size must be a Python int in xpnn.compat.v1 (the array of "
                "all elements is made at once), got a tensor")
        shape = None if element_shape is None else _shape(element_shape)
        super().__init__(as_dtype(dtype).name if buffer is None else None, size, shape,
                         buffer)

    def write(self, index, value, name=None):
        return TensorArray(None, buffer=super().write(index, value, name).buffer)

    def unstack(self, value, name=None):
        return TensorArray(None, buffer=super().unstack(value, name).buffer)


def _shape(element_shape):
    dims = element_shape.as_list() if hasattr(element_shape, "as_list") else element_shape
    return tuple(dims)
