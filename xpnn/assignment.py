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

import array_api_compat

from . import dtypes
from .graph import Constant, Node, Update, Variable, as_node
from .host import to_numpy
from .ops import add, run_context, subtract
from .session import _HOST, check_values


class Assign(Update):
    """``ref`` <- ``value`` (of ``ref``'s shape; cast to its dtype). ``value`` is the new
    value as a node, to fetch it. As TF1, a floating value into an integer Variable is
    refused (at graph build where its dtype is known, else by dtype at run time). Where the
    device reads values without a synchronisation, a value cast to a narrower dtype is
    checked to fit (an integer range; a finite float that would become inf), as feeds are;
    elsewhere (CuPy, a compiled JAX plan) such a cast wraps as the backend's does."""

    reads_values = True  # forward asks run_context.reads_without_sync

    def __init__(self, ref, value, name=None):
        if not isinstance(ref, Variable):
            raise TypeError(f"assign: {ref!r} is not a Variable; only Variables can be "
                            "assigned to")
        value = value_node(ref, value)
        if value.dtype is not None:
            _refuse_float_into_int(ref, value.dtype, value.label)
        if value.shape is not None and None not in value.shape and value.shape != ref.shape:
            raise ValueError(f"assign: Variable {ref.label} has shape {ref.shape}, the value "
                             f"{value.label} has shape {value.shape}")
        self.value = value
        super().__init__([ref], value, ref, name=name)

    def forward(self, xp, value, current):
        if value.dtype != current.dtype:
            ref = self.targets[0]
            source = dtypes.dtype_name(value.dtype)
            _refuse_float_into_int(ref, source, self.value.label)
            if run_context.reads_without_sync:
                check_values(f"assign: Variable {ref.label}", xp, value, source,
                             dtypes.dtype_name(current.dtype), fed="was assigned",
                             kind="Variable")
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


def _refuse_float_into_int(ref, dtype, label) -> None:
    if dtypes.is_floating(dtype) and not dtypes.is_floating(ref.dtype):
        raise TypeError(
            f"assign: Variable {ref.label} holds {ref.dtype} but the value {label} is "
            f"{dtypes.dtype_name(dtype)}: a floating value is not assigned to an integer "
            f"Variable (TF1 refuses it too); cast it yourself "
            f"(xn.cast(value, {str(ref.dtype)!r}) truncates toward zero)"
        )


def value_node(ref, value) -> Node:
    """``value`` as a node for ``ref``: data given (numbers, lists, arrays) is checked
    against ``ref``'s dtype here, as ``set_value`` checks it, and Python numbers and lists
    of whole numbers take an integer Variable's dtype."""
    if isinstance(value, Node):
        return value
    python = not (isinstance(value, _HOST.ndarray) or array_api_compat.is_array_api_obj(value))
    host = _HOST.asarray(value if python else to_numpy(value))
    if _HOST.isdtype(host.dtype, ("real floating", "integral", "bool")):
        source = dtypes.dtype_name(host.dtype)
        _refuse_float_into_int(ref, source, _shown(value) if python else f"array ({source})")
        check_values(f"assign: Variable {ref.label}", _HOST, host, source, ref.dtype,
                     fed="was given", kind="Variable")
        if python and not dtypes.is_floating(ref.dtype):
            return Constant(host, dtype=ref.dtype, graph=ref.graph)
    return as_node(value, ref.graph, ref.dtype)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    return Assign(ref, add(ref, value_node(ref, value)), name=name)


def assign_sub(ref, value, name=None):
    """The update ``ref`` <- ``ref - value``."""
    return Assign(ref, subtract(ref, value_node(ref, value)), name=name)


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
