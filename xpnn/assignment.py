"""Writing Variables from the graph, TensorFlow 1's ``assign``, ``assign_add``,
``assign_sub``, ``group`` and the initializer of a list of Variables. Each is an
:class:`~xpnn.graph.Update`: the Session writes after every other step of the run has
succeeded, so values fetched in the same run are those from before the write.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     v = xn.Variable(1.0)
...     step = xn.group(xn.assign_add(v, 2.0), name="step")
...     sess = xn.Session()
...     sess.run(step); sess.run(v).item()
3.0
"""

from __future__ import annotations

from .graph import Constant, Node, Update, Variable
from .ops import add, as_node, subtract


class Assign(Update):
    """``ref`` <- ``value`` (of ``ref``'s shape; cast to its dtype). ``value`` is the new
    value as a node, to fetch it."""

    def __init__(self, ref, value, name=None):
        if not isinstance(ref, Variable):
            raise TypeError(f"assign: {ref!r} is not a Variable; only Variables can be "
                            "assigned to")
        value = as_node(value, ref.graph, ref.dtype)
        if value.shape is not None and None not in value.shape and value.shape != ref.shape:
            raise ValueError(f"assign: Variable {ref.label} has shape {ref.shape}, the value "
                             f"{value.label} has shape {value.shape}")
        self.value = value
        super().__init__([ref], value, ref, name=name)

    def forward(self, xp, value, current):
        if value.dtype != current.dtype:
            value = xp.astype(value, current.dtype)
        return [value]

    def shape_problem(self, values) -> str | None:
        value, current = values
        if tuple(value.shape) != tuple(current.shape):
            return (f"the value for Variable {self.targets[0].label} has shape "
                    f"{tuple(value.shape)} but the Variable has shape {tuple(current.shape)}")
        return None

    def infer_shape(self, value, current):
        return current

    def infer_dtype(self, value, current):
        return current


class Group(Update):
    """Runs its inputs (updates and values) in one run, and writes nothing itself."""

    def forward(self, xp, *values):
        return []

    def infer_shape(self, *shapes):
        return None

    def infer_dtype(self, *dtypes):
        return None


def assign(ref, value, name=None):
    """The update ``ref`` <- ``value``.

    >>> import xpnn as xn
    >>> v = xn.Variable([1.0, 2.0]); sess = xn.Session()
    >>> sess.run(xn.assign(v, [5.0, 6.0])); sess.run(v).tolist()
    [5.0, 6.0]
    """
    return Assign(ref, value, name=name)


def assign_add(ref, value, name=None):
    """The update ``ref`` <- ``ref + value``."""
    return Assign(ref, add(ref, value), name=name)


def assign_sub(ref, value, name=None):
    """The update ``ref`` <- ``ref - value``."""
    return Assign(ref, subtract(ref, value), name=name)


def group(*inputs, name=None):
    """TF1's ``tf.group``: one node that runs every input (nested lists too) when fetched;
    fetching it gives None. With no input it runs nothing (TF1's ``no_op``).

    >>> import xpnn as xn
    >>> a, b = xn.Variable(0.0), xn.Variable(0.0); sess = xn.Session()
    >>> step = xn.group([xn.assign_add(a, 1.0)], xn.assign(b, 2.0))
    >>> sess.run(step) is None, sess.run([a, b], to_numpy=True)
    (True, [array(1., dtype=float32), array(2., dtype=float32)])
    """
    nodes = _flat(inputs)
    for position, node in enumerate(nodes):
        if not isinstance(node, Node):  # TF1's group takes ops and tensors, not values
            kind = type(node).__name__
            raise TypeError(f"group: input {position} ({node!r:.40}, of type {kind}) is not "
                            f"an operation or tensor: pass the ops to run")
    return Group([], *nodes, name=name)


def _flat(values) -> list:
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in _flat(item)]
    return [] if values is None else [values]


def initializer(variables, name=None):
    """An update setting each Variable back to its initial value (TF1's
    ``variables_initializer``).

    >>> import xpnn as xn
    >>> from xpnn import assignment
    >>> v = xn.Variable([1.0]); sess = xn.Session()
    >>> sess.set_value(v, [7.0]); sess.run(assignment.initializer([v])); sess.run(v).tolist()
    [1.0]
    """
    variables = list(variables)
    for v in variables:
        if not isinstance(v, Variable):
            raise TypeError(f"initializer: {v!r} is not a Variable")
    if not variables:
        return Group([], Constant(0.0), name=name)  # TF1's no_op for an empty list
    resets = [Assign(v, Constant(v.initial_value, graph=v.graph)) for v in variables]
    return Group([], *resets, name=name)
