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


_COMPARISONS = {  # xp's function, also the public function's name -> (op class, docstring)
    "equal": ("IsEqual", "a == b elementwise, as bool (``xn.equal`` gives float32 instead)."),
    "not_equal": ("IsNotEqual", "a != b elementwise, as bool."),
    "greater": ("IsGreater", """a > b elementwise, as bool (also ``a > b`` on nodes).

    >>> import xpnn as xn
    >>> from xpnn import logic
    >>> xn.Session().run(logic.greater([1, 3], 2)).tolist()
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


class ReduceAll(Reduction):
    """Whether every entry over ``axis`` is true (``reduce_all(x, axis=None, keepdims=False,
    name=None)``)."""

    def forward(self, xp, x):
        return xp.all(x, axis=self.axis, keepdims=self.keepdims)

    def infer_dtype(self, dtype):
        return "bool"

    def backward(self, grad):
        return [None]


class ReduceAny(ReduceAll):
    """Whether any entry over ``axis`` is true (``reduce_any``)."""

    def forward(self, xp, x):
        return xp.any(x, axis=self.axis, keepdims=self.keepdims)


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


reduce_all = ReduceAll  # TF1's functions are these ops' constructors: (x, axis, keepdims, name)
reduce_any = ReduceAny


def _attach_operators():
    """``a < b`` is ``less(a, b)``, ``a & b`` is ``logical_and(a, b)`` and so on (``==``
    and ``!=`` stay identity comparisons: nodes are dictionary keys)."""
    for name, function in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                           ("ge", "greater_equal")]:
        setattr(Node, f"__{name}__", lambda self, other, cls=OPS[function]: cls(self, other))
    for name in ["and", "or", "xor"]:
        cls = OPS[f"logical_{name}"]
        setattr(Node, f"__{name}__", lambda self, other, cls=cls: cls(self, other))
        setattr(Node, f"__r{name}__",
                lambda self, other, cls=cls: cls(as_node(other, self.graph), self))
    Node.__invert__ = lambda self: LogicalNot(self)


_attach_operators()

__all__ = [*_COMPARISONS, *(class_name for class_name, _ in _COMPARISONS.values()),
           "logical_not", "where", "reduce_all", "reduce_any", "Comparison", "LogicalNot",
           "Where", "ReduceAll", "ReduceAny", "OPS"]
