"""Comparisons and logic, TensorFlow 1's: ``equal``, ``greater``... return **bool** arrays
(``xn.equal`` stays the series' float32 count, in ``arithmetic``), ``logical_and/or/not/xor``
and ``where`` (select, broadcasting); the operators ``< <= > >= & | ^ ~`` on nodes build
them (``==`` stays identity: nodes are dictionary keys, as in TF1).

>>> import xpnn as xn
>>> x = xn.constant([1.0, 5.0, 3.0])
>>> xn.Session().run([x > 2.0, xn.where(x > 2.0, x, 0.0)], to_numpy=True)
[array([False,  True,  True]), array([0., 5., 3.], dtype=float32)]
"""

from __future__ import annotations

import math

import array_api_compat

from ..dtypes import dtype_name
from ..graph import Node, as_node
from .arithmetic import ZerosLike
from .core import Binary, Elementwise, Unary, _match, sum_to, xp_dtype
from .shape import _as_indices


class Comparison(Binary):
    """``xp.<function>(a, b)``, a bool array (no gradient)."""

    def forward(self, xp, a, b):
        if a.dtype != b.dtype:
            a, b = _match(xp, a, b)
        return getattr(xp, self.function)(a, b)

    def infer_dtype(self, *dtypes):
        return "bool"

    def backward(self, grad):
        return [None, None]


_COMPARISONS = {  # xp's function, also the public function's name -> (op class, docstring)
    "equal": ("IsEqual", "a == b elementwise, as bool (``xn.equal`` gives float32 instead)."),
    "not_equal": ("IsNotEqual", "a != b elementwise, as bool."),
    "greater": ("IsGreater", """a > b elementwise, as bool (also ``a > b`` on nodes).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.greater([1, 3], 2)).tolist()
    [False, True]
    """),
    "greater_equal": ("IsGreaterEqual", "a >= b elementwise, as bool."),
    "less": ("IsLess", "a < b elementwise, as bool."),
    "less_equal": ("IsLessEqual", "a <= b elementwise, as bool."),
    "logical_and": ("LogicalAnd", "a and b elementwise (also ``a & b`` on nodes)."),
    "logical_or": ("LogicalOr", "a or b elementwise (also ``a | b``)."),
    "logical_xor": ("LogicalXor", "a xor b elementwise (also ``a ^ b``)."),
}


def _comparison(function: str, class_name: str, doc: str):
    """The op class ``class_name``, a ``Comparison`` calling ``xp.<function>``, and the
    public function ``function(a, b, name=None)`` that builds it."""
    op = type(class_name, (Comparison,), {"function": function, "__module__": __name__,
                                          "__doc__": f"``xp.{function}(a, b)``, as bool."})

    def compare(a, b, name=None):
        return op(a, b, name=name)

    compare.__name__ = compare.__qualname__ = function
    compare.__doc__ = doc
    return op, compare


OPS = {}  # the public function's name -> its op class


for _function, (_class_name, _doc) in _COMPARISONS.items():
    OPS[_function], _public = _comparison(_function, _class_name, _doc)
    globals()[_class_name], globals()[_function] = OPS[_function], _public


del _function, _class_name, _doc, _public


class LogicalNot(Unary):
    function = "logical_not"
    fresh = True

    def backward(self, grad):
        return [None]


class Where(Elementwise):
    """x where ``condition`` (bool) else y, broadcasting all three; each gradient goes to
    the side that was chosen."""

    def forward(self, xp, condition, x, y):
        if x.dtype != y.dtype:
            x, y = _match(xp, x, y)
        return xp.where(condition, x, y)

    def infer_dtype(self, condition, x, y):
        return super().infer_dtype(x, y)

    def backward(self, grad):
        condition, x, y = self.inputs
        zeros = ZerosLike(grad)
        return [None, sum_to(Where(condition, grad, zeros), x),
                sum_to(Where(condition, zeros, grad), y)]


def logical_not(x, name=None):
    return LogicalNot(x, name=name)


def where(condition, x, y, name=None):
    """x where ``condition`` else y (all three broadcast together).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.ops.where([True, False], [1.0, 2.0], [3.0, 4.0])).tolist()
    [1.0, 4.0]
    """
    return Where(condition, x, y, name=name)


class SequenceMask(Unary):
    """TF1's ``sequence_mask``: ``out[i..., j] = j < lengths[i...]`` for j in [0, maxlen),
    in ``dtype``; without ``maxlen``, the lengths' largest value (read at run time)."""

    fresh = True

    def __init__(self, lengths, maxlen=None, dtype="bool", name=None):
        if maxlen is not None and (not isinstance(maxlen, int) or isinstance(maxlen, bool)
                                   or maxlen < 0):
            raise TypeError(f"sequence_mask: maxlen must be a Python int >= 0 or None, got "
                            f"{maxlen!r}")
        self.maxlen, self.target = maxlen, dtype_name(dtype)
        super().__init__(lengths, name=name)

    def forward(self, xp, lengths):
        maxlen = self.maxlen
        if maxlen is None:  # the shape needs the value: read even where that synchronises
            maxlen = int(xp.max(lengths)) if math.prod(lengths.shape) else 0
        steps = xp.arange(max(maxlen, 0), dtype=lengths.dtype,
                          device=array_api_compat.device(lengths))
        mask = steps < lengths[..., None]
        return mask if self.target == "bool" else xp.astype(mask, xp_dtype(xp, self.target))

    def infer_shape(self, shape):
        return None if shape is None else tuple(shape) + (self.maxlen,)

    def infer_dtype(self, dtype):
        if dtype is not None and dtype_name(dtype) not in _INTEGER_NAMES:
            raise TypeError(f"{self.label}: lengths must be integers, got {dtype_name(dtype)}"
                            "; cast them with xn.cast(lengths, 'int32')")
        return self.target

    def backward(self, grad):
        return [None]


_INTEGER_NAMES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


def sequence_mask(lengths, maxlen=None, dtype="bool", name=None):
    """TF1's ``sequence_mask``: row i is True at its first ``lengths[i]`` steps, of
    ``maxlen`` (a Python int; None: the largest length, read on the host at run time: a
    synchronisation on a GPU, and a shape a JAX plan cannot compile: it then runs eagerly).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.sequence_mask([1, 3], 4)).tolist()
    [[True, False, False, False], [True, True, True, False]]
    """
    if not isinstance(lengths, Node):
        lengths = as_node(_as_indices(lengths))
    return SequenceMask(lengths, maxlen, dtype, name=name)


# ``equal`` (bool) is left out: ``xn.ops.equal`` is arithmetic's float32 count.
__all__ = [*(name for name in _COMPARISONS if name != "equal"),
           *(class_name for class_name, _ in _COMPARISONS.values()), "logical_not",
           "where", "Comparison", "LogicalNot", "Where", "OPS", "SequenceMask", "sequence_mask"]
