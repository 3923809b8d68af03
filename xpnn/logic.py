"""Comparisons and logic, TensorFlow 1's: ``equal``, ``greater``... return **bool** arrays
(``ops.equal`` stays the series' float32 count), ``logical_and/or/not/xor``, ``where``
(select, broadcasting), ``reduce_all`` and ``reduce_any``; and the operators ``< <= > >=
& | ^ ~`` on nodes (``==`` stays identity: nodes are dictionary keys, as in TF1).

>>> import xpnn as xn
>>> from xpnn import logic
>>> x = xn.constant([1.0, 5.0, 3.0])
>>> xn.Session().run([x > 2.0, logic.where(x > 2.0, x, 0.0)], to_numpy=True)
[array([False,  True,  True]), array([0., 5., 3.], dtype=float32)]
"""

from __future__ import annotations

from .graph import Node
from .ops import (
    Binary,
    Elementwise,
    Reduction,
    Unary,
    ZerosLike,
    _match,
    as_node,
    sum_to,
)


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


class IsEqual(Comparison):
    function = "equal"


class IsNotEqual(Comparison):
    function = "not_equal"


class IsGreater(Comparison):
    function = "greater"


class IsGreaterEqual(Comparison):
    function = "greater_equal"


class IsLess(Comparison):
    function = "less"


class IsLessEqual(Comparison):
    function = "less_equal"


class LogicalAnd(Comparison):
    function = "logical_and"


class LogicalOr(Comparison):
    function = "logical_or"


class LogicalXor(Comparison):
    function = "logical_xor"


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


class ReduceAll(Reduction):
    def forward(self, xp, x):
        return xp.all(x, axis=self.axis, keepdims=self.keepdims)

    def infer_dtype(self, dtype):
        return "bool"

    def backward(self, grad):
        return [None]


class ReduceAny(ReduceAll):
    def forward(self, xp, x):
        return xp.any(x, axis=self.axis, keepdims=self.keepdims)


def equal(a, b, name=None):
    """a == b elementwise, as bool (``xn.equal`` gives float32 instead)."""
    return IsEqual(a, b, name=name)


def not_equal(a, b, name=None):
    """a != b elementwise, as bool."""
    return IsNotEqual(a, b, name=name)


def greater(a, b, name=None):
    """a > b elementwise, as bool (also ``a > b`` on nodes).

    >>> import xpnn as xn
    >>> from xpnn import logic
    >>> xn.Session().run(logic.greater([1, 3], 2)).tolist()
    [False, True]
    """
    return IsGreater(a, b, name=name)


def greater_equal(a, b, name=None):
    """a >= b elementwise, as bool."""
    return IsGreaterEqual(a, b, name=name)


def less(a, b, name=None):
    """a < b elementwise, as bool."""
    return IsLess(a, b, name=name)


def less_equal(a, b, name=None):
    """a <= b elementwise, as bool."""
    return IsLessEqual(a, b, name=name)


def logical_and(a, b, name=None):
    return LogicalAnd(a, b, name=name)


def logical_or(a, b, name=None):
    return LogicalOr(a, b, name=name)


def logical_xor(a, b, name=None):
    return LogicalXor(a, b, name=name)


def logical_not(x, name=None):
    return LogicalNot(x, name=name)


def where(condition, x, y, name=None):
    """x where ``condition`` else y (all three broadcast together).

    >>> import xpnn as xn
    >>> from xpnn import logic
    >>> xn.Session().run(logic.where([True, False], [1.0, 2.0], [3.0, 4.0])).tolist()
    [1.0, 4.0]
    """
    return Where(condition, x, y, name=name)


def reduce_all(x, axis=None, keepdims=False, name=None):
    """Whether every entry over ``axis`` is true."""
    return ReduceAll(x, axis, keepdims, name=name)


def reduce_any(x, axis=None, keepdims=False, name=None):
    """Whether any entry over ``axis`` is true."""
    return ReduceAny(x, axis, keepdims, name=name)


def _attach_operators():
    """``a < b`` is ``less(a, b)``, ``a & b`` is ``logical_and(a, b)`` and so on (``==``
    and ``!=`` stay identity comparisons: nodes are dictionary keys)."""
    for name, cls in [("lt", IsLess), ("le", IsLessEqual), ("gt", IsGreater),
                      ("ge", IsGreaterEqual)]:
        setattr(Node, f"__{name}__", lambda self, other, cls=cls: cls(self, other))
    for name, cls in [("and", LogicalAnd), ("or", LogicalOr), ("xor", LogicalXor)]:
        setattr(Node, f"__{name}__", lambda self, other, cls=cls: cls(self, other))
        setattr(Node, f"__r{name}__",
                lambda self, other, cls=cls: cls(as_node(other, self.graph), self))
    Node.__invert__ = lambda self: LogicalNot(self)


_attach_operators()

__all__ = ["equal", "not_equal", "greater", "greater_equal", "less", "less_equal",
           "logical_and", "logical_or", "logical_xor", "logical_not", "where", "reduce_all",
           "reduce_any", "Comparison", "IsEqual", "IsNotEqual", "IsGreater", "IsGreaterEqual",
           "IsLess", "IsLessEqual", "LogicalAnd", "LogicalOr", "LogicalXor", "LogicalNot",
           "Where", "ReduceAll", "ReduceAny"]
