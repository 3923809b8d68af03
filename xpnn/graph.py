"""The symbolic graph: nodes know their inputs, static shape and dtype, never arrays.

>>> import xpnn as xn
>>> with xn.Graph().as_default() as g:
...     x = xn.placeholder(shape=(None, 2), name="x")
...     y = x * 2.0 + 1.0
>>> y.graph is g, y.shape
(True, (None, 2))
"""

from __future__ import annotations

import contextlib
import re

import array_api_compat
import numpy as np

from .dtypes import dtype_name, is_floating
from .host import to_numpy

DEFAULT_FLOAT = "float32"


class Graph:
    """A container of nodes. ``Graph().as_default()`` makes it the default graph, as a
    ``with`` block or, seed style, as a plain statement that lasts until the next one."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.variables: list[Variable] = []
        self._name_stack = ""  # the open name scope, "a/b" (no trailing "/"), "" at the top
        self._names_in_use: dict[str, int] = {}  # lowercased, as TF1's (file-system safe)

    def as_default(self) -> _DefaultGraph:
        return _DefaultGraph(self)

    @contextlib.contextmanager
    def name_scope(self, name):
        """A ``with`` block whose new nodes are named ``scope/name`` (unnamed ones
        ``scope/<Type>``), as TF1's ``Graph.name_scope``: it yields the scope with its
        trailing "/"; nested scopes join with "/"; a name already used at this level becomes
        ``name_1``, ``name_2``...; a name ending in "/" re-enters that scope exactly; None or
        "" returns to the top level for the block.

        >>> import xpnn as xn
        >>> g = xn.Graph()
        >>> with g.name_scope("layer") as outer, g.name_scope("dense") as inner:
        ...     w = xn.Variable([1.0], name="w", graph=g)
        >>> with g.name_scope("layer") as again:
        ...     pass
        >>> outer, inner, w.name, again
        ('layer/', 'layer/dense/', 'layer/dense/w', 'layer_1/')
        """
        _check_scope_name(name, nested=bool(self._name_stack))
        previous = self._name_stack
        if not name:
            self._name_stack, scope = "", ""
        elif name.endswith("/"):
            self._name_stack, scope = name[:-1], name
        else:
            self._name_stack = self._unique(self._prefixed(name))
            scope = self._name_stack + "/"
        try:
            yield scope
        finally:
            self._name_stack = previous

    def _prefixed(self, name: str) -> str:
        return f"{self._name_stack}/{name}" if self._name_stack else name

    def _unique(self, name: str) -> str:
        """TF1's ``unique_name``: ``name``, else ``name_<k>`` for the first free k."""
        key = name.lower()
        k = self._names_in_use.get(key, 0)
        self._names_in_use[key] = k + 1
        if k == 0:
            return name
        while f"{key}_{k}" in self._names_in_use:
            k += 1
        self._names_in_use[f"{key}_{k}"] = 1
        return f"{name}_{k}"

    def _node_name(self, name: str | None, type_name: str) -> str | None:
        """A new node's name: outside every scope the name given, unchanged (None stays
        None), only noted so that a scope does not reuse it; inside one, the scope's prefix
        on the name or on ``type_name``, made unique."""
        if self._name_stack:
            return self._unique(self._prefixed(name or type_name))
        if name is not None:
            self._names_in_use.setdefault(name.lower(), 1)
        return name

    def unique_name(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``... if a Variable already has that name."""
        taken = {v.name for v in self.variables}
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        return name

    def layer_name(self, base: str) -> str:
        """A new layer's default name, as TF1's and Keras's: ``base``, then ``base_1``,
        ``base_2``... for later layers of this graph (per name scope); a name that prefixes a
        Variable's (``base_1/W`` of a layer named so by hand) is skipped.

        >>> import xpnn as xn
        >>> g = xn.Graph()
        >>> g.layer_name("linear"), g.layer_name("linear"), g.layer_name("conv")
        ('linear', 'linear_1', 'conv')
        """
        while True:
            full = self._unique(self._prefixed(base))
            prefix = full.lower() + "/"
            if not any(v.name and v.name.lower().startswith(prefix) for v in self.variables):
                return full[len(self._name_stack) + 1:] if self._name_stack else full

    def trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.trainable]

    def get_operation_by_name(self, name: str) -> Node:
        """The node named ``name`` (TF1's op name: ``"layer/w"``); KeyError where none is,
        ValueError where two are (names outside every scope may repeat: give them one)."""
        found = [n for n in self.nodes if n.name == name]
        if not found:
            raise KeyError(f"The name {name!r} refers to an Operation not in the graph")
        if len(found) > 1:
            raise ValueError(f"{len(found)} nodes are named {name!r}; give them distinct names "
                             "(or build them in name scopes) to look them up by name")
        return found[0]

    def get_tensor_by_name(self, name: str) -> Node:
        """The node whose value is TF1's tensor ``name``, ``"<op name>:0"`` (an xpnn node
        has one output, number 0).

        >>> import xpnn as xn
        >>> g = xn.Graph()
        >>> with g.as_default(), g.name_scope("layer"):
        ...     x = xn.placeholder(name="x")
        >>> g.get_tensor_by_name("layer/x:0") is x
        True
        """
        op, colon, output = name.rpartition(":") if isinstance(name, str) else ("", "", "")
        if not colon or not output.isdigit():
            raise ValueError(f"The name {name!r} looks like an (invalid) Operation name, not a "
                             "Tensor. Tensor names must be of the form "
                             "\"<op_name>:<output_index>\".")
        node = self.get_operation_by_name(op)
        if output != "0":
            raise KeyError(f"The name {name!r} refers to a Tensor which does not exist: "
                           f"{op!r} has one output, {op}:0")
        return node

    def _add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def encloses(self, graph: Graph) -> bool:
        """Whether ``graph`` is one this graph reads from (a cond branch's or a loop body's
        graph reads its outer graphs: ``xpnn.control_flow``); a plain graph reads none."""
        return False

    def take(self, node: Node) -> Node:
        """``node`` as an input of an op built in this graph (a body graph captures a node
        of an outer graph as one of its own inputs)."""
        return node

    def __repr__(self) -> str:
        return f"<Graph with {len(self.nodes)} nodes>"


class _DefaultGraph:
    def __init__(self, graph: Graph):
        global _default_graph
        self.graph, self.previous = graph, _default_graph
        _default_graph = graph

    def __enter__(self) -> Graph:
        return self.graph

    def __exit__(self, *exc) -> None:
        global _default_graph
        _default_graph = self.previous


_default_graph = Graph()

# TF1's rules: a top-level scope starts with a letter, digit or "."; inner ones may start with
# "_", "-", ">" too; "/" separates levels and a trailing "/" names an existing scope.
_TOP_SCOPE = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")
_INNER_SCOPE = re.compile(r"[A-Za-z0-9_.\\/>-]*")


def _check_scope_name(name, nested: bool) -> None:
    if name is None or name == "":
        return
    if not isinstance(name, str):
        raise TypeError(f"name_scope takes a string or None, got {type(name).__name__}")
    if not (_INNER_SCOPE if nested else _TOP_SCOPE).fullmatch(name):
        raise ValueError(
            f"name_scope({name!r}): a scope name is letters, digits and any of _ . - > / \\ "
            "(at the top level it starts with a letter, a digit or '.'); rename it"
        )


def name_scope(name, default_name=None, values=None):
    """TF1's ``tf.name_scope``: :meth:`Graph.name_scope` on the graph of ``values`` (nodes),
    else the default graph; ``default_name`` is used when ``name`` is None.

    >>> import xpnn as xn
    >>> with xn.Graph().as_default():
    ...     with xn.name_scope("layer1") as scope:
    ...         x = xn.placeholder(name="x")
    ...         y = x * 2.0
    >>> scope, x.name, y.name, y.scope
    ('layer1/', 'layer1/x', 'layer1/Multiply', 'layer1')
    """
    graph = next((v.graph for v in values or () if isinstance(v, Node)), None)
    graph = graph if graph is not None else get_default_graph()
    return graph.name_scope(default_name if name is None else name)


def get_default_graph() -> Graph:
    """The graph new nodes go into when none of their inputs names one."""
    return _default_graph


def reset_default_graph() -> Graph:
    """Replace the default graph by a new empty one and return it."""
    global _default_graph
    _default_graph = Graph()
    return _default_graph


# Sessions made the default (compat.v1's ``with tf.Session() as sess:``), innermost last:
# the session ``Node.eval()`` and ``Node.run()`` use when given none.
default_sessions: list = []


def get_default_session():
    """The innermost default session, or None."""
    return default_sessions[-1] if default_sessions else None


def _session(session):
    session = session or get_default_session()
    if session is None:
        raise ValueError("Cannot evaluate tensor using `eval()`: No default session is "
                         "registered. Use `with sess.as_default()` or pass an explicit "
                         "session to `eval(session=sess)`")
    return session


class TensorShape(tuple):
    """A static shape, a tuple with TF1's ``as_list()``, ``ndims`` and ``is_fully_defined``
    (None: an unknown rank)."""

    def __new__(cls, dims):
        self = super().__new__(cls, () if dims is None else tuple(dims))
        self.known = dims is not None
        return self

    def as_list(self):
        if not self.known:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self)

    @property
    def ndims(self):
        return len(self) if self.known else None

    @property
    def dims(self):
        return list(self) if self.known else None

    def is_fully_defined(self) -> bool:
        return self.known and None not in self

    def num_elements(self):
        if not self.is_fully_defined():
            return None
        count = 1
        for d in self:
            count *= d
        return count

    def __repr__(self):
        return f"TensorShape({list(self) if self.known else None})"


class Node:
    """A value in the graph. Ops build nodes from nodes; ``xpnn.ops`` gives it its operators
    (``+ - * / @ **``, ``< <= > >=``, ``& | ^ ~``, ``x[key]``). As TF1's Tensor it has ``op``
    (itself), ``get_shape()``, ``set_shape()``, ``consumers()``, and ``eval()``/``run()`` in
    the default session (compat.v1's ``with tf.Session() as sess:``) or the one given.

    >>> x = placeholder(shape=(None, 3))
    >>> x.get_shape().as_list(), x.op is x
    ([None, 3], True)
    """

    kind = "node"
    # The forward node whose gradient autodiff built this node for (None: not a gradient).
    gradient_of: Node | None = None

    def __init__(self, graph: Graph | None = None, name=None, shape=None, dtype=None):
        self.graph = graph if graph is not None else get_default_graph()
        self.index = self.graph._add(self)
        self.name = self.graph._node_name(name, type(self).__name__)
        self.scope = self.graph._name_stack  # the name scope it was made in ("" for none)
        self.inputs: tuple[Node, ...] = ()
        self.shape = None if shape is None else tuple(shape)
        self.dtype = None if dtype is None else dtype_name(dtype)

    @property
    def label(self) -> str:
        """The node's name, or ``<type>#<index>`` when it has none (for messages)."""
        return self.name or f"{self.kind}#{self.index}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.label}' shape={self.shape} dtype={self.dtype}>"

    # TF1's Tensor methods: every node is a tensor (one output) and its own operation.
    @property
    def op(self) -> Node:
        """The node itself (TF1's producing operation)."""
        return self

    def eval(self, feed_dict=None, session=None):
        """This node's value in the default session (or ``session``)."""
        return _session(session).run(self, feed_dict)

    def run(self, feed_dict=None, session=None) -> None:
        """Run this op in the default session (or ``session``); gives None."""
        _session(session).run(self, feed_dict)

    def get_shape(self) -> TensorShape:
        """The static shape as a TensorShape (``as_list()``, ``ndims``...)."""
        return TensorShape(self.shape)

    def set_shape(self, shape) -> None:
        """Narrow the static shape (None entries filled from ``shape``)."""
        new = tuple(shape)
        if self.shape is not None and (len(new) != len(self.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(self.shape, new))):
            raise ValueError(f"Shapes {self.shape} and {new} are incompatible")
        old = self.shape or (None,) * len(new)
        self.shape = tuple(a if a is not None else b for a, b in zip(old, new))

    def consumers(self) -> list:
        """The nodes of the graph that take this one as an input."""
        return [n for n in self.graph.nodes if self in n.inputs]

    # Operators (+ - * / @ ** < & ... and x[key]) build op nodes: ops/__init__.py attaches
    # them, in one function (graph.py knows no op).
    __array_priority__ = 1000  # NumPy arrays on the left defer to our operators
    __array_ufunc__ = None


def host_value(value, dtype=None) -> np.ndarray:
    """Initial values live on the host: NumPy floating arrays keep their dtype, Python numbers
    and lists become float32, ``dtype=`` asks explicitly."""
    if dtype is not None:
        return np.array(value, dtype=dtype_name(dtype))
    if isinstance(value, (np.ndarray, np.generic)):
        return np.array(value)
    if _is_device_array(value):
        return np.array(to_numpy(value))
    array = np.array(value)
    if array.dtype.kind in "fiub" and array.dtype.kind != "b":
        return array.astype(DEFAULT_FLOAT)
    return array


def exact_value(value, dtype=None):
    """Python numbers and lists at full (float64) precision, kept beside their float32 host
    value so that ``Session(dtype="float64")`` does not compute with rounded constants."""
    if dtype is not None or isinstance(value, (np.ndarray, np.generic)) or _is_device_array(value):
        return None
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def _is_device_array(value) -> bool:
    return array_api_compat.is_array_api_obj(value)


class Placeholder(Node):
    """A value fed at run time through ``feed_dict``."""

    kind = "placeholder"

    def run_dtype(self, source: str, session_dtype: str | None = None) -> str:
        """The dtype data of dtype ``source`` fed here runs in: this placeholder's (a
        floating one widened to a ``Session(dtype=...)``'s); untyped, integer data keeps
        its dtype and floating (or complex) data runs in the Session's floating dtype,
        float32 by default."""
        wanted = self.dtype
        if wanted is None:
            kind = np.dtype(source).kind if source != "complex" else "c"
            wanted = source if kind in "iub" else DEFAULT_FLOAT
        if session_dtype is not None and is_floating(wanted):
            return session_dtype
        return wanted


class Variable(Node):
    """A trainable value. Each Session keeps its own copy, initialised from
    ``initial_value`` on first use.

    >>> import xpnn as xn
    >>> w = xn.Variable([[1.0, 2.0]], name="w")
    >>> w.shape, w.dtype
    ((1, 2), 'float32')
    """

    kind = "variable"

    def __init__(self, initial_value, name=None, dtype=None, trainable=True, graph=None):
        value = _initial_value(initial_value, dtype, name)
        self.exact_value = exact_value(initial_value, dtype)
        super().__init__(graph, name, value.shape, value.dtype)
        self.initial_value = value
        self.trainable = trainable
        self.graph.variables.append(self)


def _initial_value(value, dtype, name) -> np.ndarray:
    """A Variable's host value, checked before the Variable joins the graph: numbers (or
    bools), else an error naming the Variable."""
    what = f"Variable {name!r}" if name is not None else "Variable (unnamed)"
    if value is None:
        raise ValueError(f"{what}: initial_value is None; give its starting value, an array "
                         "or a number (np.zeros(shape), xn.init.glorot_uniform(shape))")
    if isinstance(value, Constant):
        raise TypeError(f"{what}: initial_value is the constant node {value.label}; give its "
                        "array instead: xn.Variable(node.value, ...)")
    if isinstance(value, Node):
        raise TypeError(
            f"{what}: initial_value is the graph node {value.label} ({value.kind}), whose "
            "value exists only in a run; give the starting value as an array (np.zeros(shape), "
            "xn.init.glorot_uniform(shape)), and set it from the node in a run with "
            "xn.assign(variable, node)")
    try:
        array = host_value(value, dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{what}: initial_value {_short(value)} is not an array of numbers "
                        f"({exc})") from exc
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{what}: initial_value {_short(value)} has dtype {array.dtype}, not "
                        "a number type; give numbers (a float, int or bool array)")
    return array


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Constant(Node):
    """A fixed value (Python numbers and NumPy arrays become constants when used in ops)."""

    kind = "constant"

    def __init__(self, value, dtype=None, name=None, graph=None):
        self.exact_value = exact_value(value, dtype)
        value = host_value(value, dtype)
        super().__init__(graph, name, value.shape, value.dtype)
        self.value = value


class Operation(Node):
    """An op: subclass it with ``forward(self, xp, *values)`` and a gradient, either
    ``backward(self, grad)`` returning one graph node (or None) per input, or a function
    registered with ``@xn.RegisterGradient("<ClassName>")``.

    >>> import xpnn as xn
    >>> class Cube(xn.Operation):
    ...     def forward(self, xp, x):
    ...         return x * x * x
    ...     def backward(self, grad):
    ...         (x,) = self.inputs
    ...         return [grad * 3.0 * xn.square(x)]
    >>> x = xn.Variable(2.0)
    >>> xn.Session().run(xn.gradients(Cube(x), [x])[0]).item()
    12.0
    """

    kind = "op"
    # Positions of inputs read only for .shape/.ndim/.dtype: the plan passes a description
    # instead, so the array itself can be freed (or overwritten) early.
    shape_only: tuple = ()
    # Whether the static dtype is the one computed, never narrowed: the plan asks the device
    # for it, so JAX without x64 refuses an int64 or float64 result naming the op.
    holds_dtype = False
    # A random op's forward also takes ``draw=``, the Session's ``draw(op, shape, dtype)``:
    # ``op.sample(generator, shape)`` made on the host from the Session's generator, or from
    # the op's own stream where its ``seed`` is set; a new draw every run, never folded or
    # kept between runs.
    random = False
    seed = None
    # An op whose forward checks its inputs' values (label ranges) sets ``reads_values``: its
    # forward asks ``ops.run_context.reads_without_sync`` (set by whoever runs the plan).
    # Where that is False a read would stall the device, and the op must read nothing.
    reads_values = False
    # Whether forward always returns a new array, never an input or a view of one. Where it
    # may not, a fetched result computed from a Variable or a constant is handed out as a
    # copy on a device with mutable arrays (``plan.shared_fetches``).
    fresh = False
    # A control-flow op (``xpnn.control_flow``): its forward also takes ``session=``, in
    # which it runs its branches or its loop body.
    runs_bodies = False

    def __init__(self, *inputs, name=None):
        graph = next((i.graph for i in inputs if isinstance(i, Node)), None)
        default = get_default_graph()
        if graph is None or default.encloses(graph):  # built in a cond branch or loop body
            graph = default
        meets = _static_dtype([i.dtype for i in inputs if isinstance(i, Node)])
        nodes = tuple(graph.take(as_node(i, graph, meets)) for i in inputs)
        for position, node in enumerate(nodes):
            if node.graph is not graph:
                raise ValueError(
                    f"{type(self).__name__}: input {position} ({node.label}) belongs to another "
                    "graph than the op's other inputs; build them in one graph"
                )
        super().__init__(graph, name)
        self.inputs = nodes
        self.shape = self.infer_shape(*(n.shape for n in nodes))
        self.dtype = self.infer_dtype(*(n.dtype for n in nodes))

    @property
    def type(self) -> str:
        """The op type that ``RegisterGradient`` names: the class name."""
        return type(self).__name__

    @property
    def label(self) -> str:
        return self.name or f"{self.type}#{self.index}"

    def forward(self, xp, *values):
        raise NotImplementedError(f"{self.type} has no forward(self, xp, *values)")

    def backward(self, grad):
        raise NotImplementedError(
            f"{self.type} has no gradient: define backward(self, grad) or register one with "
            f"@xn.RegisterGradient({self.type!r})"
        )

    def infer_shape(self, *shapes):
        """Static output shape from the inputs' (None where unknown)."""
        return None

    def infer_dtype(self, *dtypes):
        """Static output dtype: by default NumPy's promotion of the floating inputs."""
        return _static_dtype(list(dtypes))


def _static_dtype(dtypes) -> str | None:
    """The dtype that inputs of these static dtypes promote to (None if one is unknown)."""
    if not dtypes or None in dtypes:
        return None
    floats = [d for d in dtypes if is_floating(d)]
    return np.result_type(*(floats or dtypes)).name


def _scalar_dtype(value, meets: str | None) -> str | None:
    """The dtype a Python number takes beside arrays of dtype ``meets``: that dtype, exactly
    (the array API's and TF1's promotion), so ``float64_var * 0.1`` stays float64. A float
    meeting integers, or a number meeting an unknown dtype, gets the default instead."""
    if meets is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    kind = np.dtype(meets).kind
    if kind == "f" or (kind in "iu" and isinstance(value, int)):
        try:
            np.array(value, dtype=meets)
        except OverflowError:
            return None
        return meets
    return None


def as_node(value, graph: Graph | None = None, meets: str | None = None) -> Node:
    """Nodes pass through; Python numbers, lists and arrays become constants. A Python
    number beside inputs of dtype ``meets`` takes that dtype (see ``_scalar_dtype``)."""
    if isinstance(value, Node):
        return value
    dtype = _scalar_dtype(value, meets)
    if dtype is None:
        return Constant(value, graph=graph)
    constant = Constant(value, dtype=dtype, graph=graph)
    if is_floating(dtype):  # a float64 Session widens from the exact number, not the rounding
        constant.exact_value = np.array(value, dtype=np.float64)
    return constant


def placeholder(dtype=None, shape=None, name=None) -> Placeholder:
    """A value to feed at run time. ``shape`` may hold None for any size; ``dtype`` None
    means host floating data is fed as float32 and integer data keeps its type.

    >>> import xpnn as xn
    >>> x = xn.placeholder(shape=(None, 3), name="x")
    >>> xn.Session().run(x * 2.0, {x: [[1, 2, 3]]}).tolist()
    [[2.0, 4.0, 6.0]]
    """
    return Placeholder(None, name, shape, dtype)


def constant(value, dtype=None, name=None) -> Constant:
    """A constant node; NumPy arrays keep their floating dtype, numbers become float32.

    >>> import xpnn as xn
    >>> xn.constant([1, 2]).dtype
    'float32'
    """
    return Constant(value, dtype=dtype, name=name)


class Update(Operation):
    """An op that writes Variables (an optimizer step). ``forward`` returns the new values of
    ``targets`` in order; the Session stores them only after every other step of the run has
    succeeded, so a failed run changes no Variable. Fetching it gives None."""

    kind = "update"

    def __init__(self, targets, *inputs, name=None):
        self.targets = list(targets)
        super().__init__(*inputs, name=name)

    def backward(self, grad):
        raise TypeError(f"{self.label} updates Variables and has no gradient")


class NewValue(Operation):
    """The value ``update`` writes into its target ``variable``, as a node: what a read made
    after the update sees (TF1's ``control_dependencies``). It runs the update's rule on the
    update's inputs as a step of its own; the Variable itself is still written at the
    commit. A plan may hold two updates of one Variable where the later reads the earlier's
    NewValue: it commits them in that order."""

    def __init__(self, update: Update, variable: Variable):
        self.update, self.variable = update, variable
        self.position = next(k for k, t in enumerate(update.targets) if t is variable)
        self.reads_values = update.reads_values
        super().__init__(*update.inputs, name=None)

    def forward(self, xp, *values):
        alone = getattr(self.update, "new_value", None)  # an optimizer step: one Variable's
        if alone is not None:
            return alone(xp, values, self.position)
        return self.update.forward(xp, *values)[self.position]

    def backward(self, grad):
        raise TypeError(f"{self.label} is the value {self.update.label} writes into "
                        f"{self.variable.label}: it has no gradient")

    def infer_shape(self, *shapes):
        return self.variable.shape

    def infer_dtype(self, *dtypes):
        return self.variable.dtype


def new_value(update: Update, variable: Variable) -> NewValue:
    """``update``'s new value of ``variable`` (one node per pair, made once)."""
    made = update.__dict__.setdefault("_new_values", {})
    if variable not in made:
        made[variable] = NewValue(update, variable)
    return made[variable]
