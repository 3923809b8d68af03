"""Every primitive op, by family: ``core`` (the bases, broadcasting), ``arithmetic``,
``activations``, ``reductions``, ``shape``, ``logic``, ``losses``, ``random``, ``conv``,
``indexing``, ``contraction``, ``outputs`` (ops of several outputs), ``recurrent`` (an
LSTM cell's elementwise part as one op) and ``translation`` (images shifted by random
offsets: Keras's ``RandomTranslation``).
Each op is a small class with ``forward(xp, *values)`` (portable array-API code) and
``backward(grad)`` (graph nodes built from these same ops), plus the lowercase function
users call; this package re-exports them all (``xn.ops.Relu``, ``xn.ops.reduce_sum``), and
:func:`attach_to_node` gives Node its operators (``a + b``, ``x[1:]``, ``a < b``...).

Two names mean one thing here and another in their family: ``ops.equal`` is the float32
count (``arithmetic.equal``; ``logic.equal`` gives bool, as TF1's), and ``ops.shape`` is the
module of shape ops (its function ``shape(x)``, TF1's ``tf.shape``, is ``ops.shape.shape``).

>>> import xpnn as xn
>>> x = xn.Variable([1.0, 4.0])
>>> y = xn.reduce_sum(xn.sqrt(x) * 2.0)
>>> xn.Session().run([y, xn.gradients(y, [x])[0]], to_numpy=True)[1].tolist()
[1.0, 0.5]
"""

from ..graph import Node, as_node
from . import (
    activations,
    arithmetic,
    contraction,
    conv,
    core,
    dynamic,
    elementary,
    indexing,
    logic,
    losses,
    outputs,
    random,
    recurrent,
    reductions,
    selection,
    shape,
    translation,
)
from .activations import *
from .arithmetic import *
from .contraction import *
from .conv import *
from .core import *
from .dynamic import *
from .elementary import *
from .indexing import *
from .logic import *
from .losses import *
from .random import *
from .recurrent import *
from .reductions import *
from .reductions import _stable_max  # the device kernels call it
from .selection import *
from .shape import *
from .translation import *


def attach_to_node() -> None:
    """Give Node its operators, the one place anything is set on it: ``a + b`` is
    ``add(a, b)``, ``2.0 * a`` is ``multiply(2.0, a)``, ``x ** y`` is ``pow(x, y)``, ``a < b``
    is ``less(a, b)`` (bool), ``a & b`` is ``logical_and(a, b)``, ``x[key]`` slices
    (``GetItem``; ``x[i]`` with an integer node ``i`` gathers along the first axis), and a
    node is not iterable. ``==`` and ``!=`` stay identity comparisons:
    nodes are dictionary keys, as in TF1."""
    for name, fn in [("add", arithmetic.add), ("sub", arithmetic.subtract),
                     ("mul", arithmetic.multiply), ("truediv", arithmetic.divide),
                     ("matmul", arithmetic.matmul)]:
        setattr(Node, f"__{name}__", lambda self, other, fn=fn: fn(self, other))
        setattr(Node, f"__r{name}__", lambda self, other, fn=fn: fn(other, self))
    Node.__neg__ = lambda self: arithmetic.negative(self)
    Node.__pow__ = arithmetic._power
    Node.__rpow__ = lambda self, base: arithmetic.Pow(as_node(base, self.graph, self.dtype), self)
    for name, function in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                           ("ge", "greater_equal")]:
        setattr(Node, f"__{name}__", lambda self, other, cls=logic.OPS[function]: cls(self, other))
    for name in ["and", "or", "xor"]:
        cls = logic.OPS[f"logical_{name}"]
        setattr(Node, f"__{name}__", lambda self, other, cls=cls: cls(self, other))
        setattr(Node, f"__r{name}__",
                lambda self, other, cls=cls: cls(as_node(other, self.graph), self))
    Node.__invert__ = lambda self: logic.LogicalNot(self)
    Node.__getitem__ = _getitem
    Node.__iter__ = shape._not_iterable



def _getitem(self, key):
    """``x[key]``: a basic slice, or a gather where the key is one node of an integer dtype
    (TF1's ``x[t]`` inside a loop body); any other node is refused by GetItem."""
    if isinstance(key, Node) and (key.dtype or "").startswith(("int", "uint")):
        return indexing.gather(self, key)
    return shape.GetItem(self, key)


attach_to_node()
