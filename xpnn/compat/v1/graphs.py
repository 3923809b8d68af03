"""Graph-level TF1: the default graph, TF1's unique node names, collections, the graph seed,
``control_dependencies``, ``group``, ``no_op`` and the eager switches (graphs are all xpnn
has, so ``disable_eager_execution`` does nothing).

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> a = tf.constant(1.0); b = tf.constant(2.0)
>>> a.name, b.name, tf.get_default_graph().get_tensor_by_name("Const_1:0") is b
('Const', 'Const_1', True)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ... import assignment as _assign
from ... import graph as _graph
from ...autodiff import topological_order
from ...graph import Graph, Node

DEFAULT_GRAPH_SEED = 87654321  # TF1's, where only an op seed is given


@dataclass
class State:
    """What TF1 keeps per graph and xpnn's Graph does not: collections, the seed, the
    variable scopes and their store, the global step."""

    collections: dict = field(default_factory=dict)
    seed: int | None = None
    random_ops: int = 0
    scopes: list = field(default_factory=list)  # the open VariableScopes (variables.py)
    store: dict = field(default_factory=dict)  # full name -> Variable of get_variable
    scope_names: dict = field(default_factory=dict)  # default_name -> times used
    global_step: object = None


def state(graph: Graph | None = None) -> State:
    graph = graph if graph is not None else _graph.get_default_graph()
    found = getattr(graph, "_tf1", None)
    if found is None:
        found = graph._tf1 = State()
    return found


def get_default_graph() -> Graph:
    """The graph new nodes go into."""
    return _graph.get_default_graph()


def reset_default_graph() -> None:
    """A new, empty default graph (TF1 returns None)."""
    _graph.reset_default_graph()


def op_name(name, default: str, graph: Graph | None = None) -> str:
    """TF1's name for a new node: ``name`` (else ``default``), made unique in its scope as
    TF1 does (``Const``, ``Const_1``...). Inside a name scope xpnn's graph does it."""
    graph = graph if graph is not None else _graph.get_default_graph()
    name = name or default
    if graph._name_stack:
        return name
    return graph._unique(name)


def name_scope(name, default_name=None, values=None):
    """TF1's ``tf.name_scope`` (``xn.name_scope``)."""
    return _graph.name_scope(name, default_name, values)


class GraphKeys:
    """TF1's collection names."""

    GLOBAL_VARIABLES = "variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    LOCAL_VARIABLES = "local_variables"
    UPDATE_OPS = "update_ops"
    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"
    GLOBAL_STEP = "global_step"
    SUMMARIES = "summaries"
    TRAIN_OP = "train_op"
    MOVING_AVERAGE_VARIABLES = "moving_average_variables"
    METRIC_VARIABLES = "metric_variables"


def get_collection(key, scope=None) -> list:
    """The values added under ``key`` (Variables: the graph's own lists), those whose name
    starts with ``scope`` when given."""
    graph = _graph.get_default_graph()
    if key == GraphKeys.GLOBAL_VARIABLES:
        items = [v for v in graph.variables if not getattr(v, "_tf1_local", False)]
    elif key == GraphKeys.TRAINABLE_VARIABLES:
        items = graph.trainable_variables()
    else:
        items = list(state(graph).collections.get(key, ()))
    if scope is None:
        return items
    return [i for i in items if str(getattr(i, "name", "") or "").startswith(scope)]


def get_collection_ref(key) -> list:
    """The list behind a collection (Variables' collections are the graph's own)."""
    if key in (GraphKeys.GLOBAL_VARIABLES, GraphKeys.TRAINABLE_VARIABLES):
        raise NotImplementedError(f"get_collection_ref({key!r}): xpnn's graph keeps its "
                                  "Variables itself; read them with get_collection")
    return state().collections.setdefault(key, [])


def add_to_collection(name, value) -> None:
    get_collection_ref(name).append(value)


def add_to_collections(names, value) -> None:
    for name in [names] if isinstance(names, str) else names:
        add_to_collection(name, value)


def set_random_seed(seed) -> None:
    """The default graph's seed: random ops and initializers without a seed of their own
    then draw the same sequence every time the program runs, in every Session, on every
    backend."""
    state().seed = None if seed is None else int(seed)


def op_seeds(op_seed=None) -> tuple | None:
    """The (graph seed, op seed) pair a new random op or initializer draws from, as TF1
    combines them: TF1's default graph seed where only the op's is set, an op seed from a
    count of the graph's random ops where only the graph's is; None where neither is set
    (the op then draws from the Session's generator: other values in every Session)."""
    st = state()
    if st.seed is None and op_seed is None:
        return None
    st.random_ops += 1
    graph_seed = DEFAULT_GRAPH_SEED if st.seed is None else st.seed
    return graph_seed, st.random_ops if op_seed is None else int(op_seed)


def flatten(values) -> list:
    """Nested lists and tuples of nodes as one flat list."""
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in flatten(item)]
    return [] if values is None else [values]


@contextlib.contextmanager
def control_dependencies(control_inputs):
    """Nodes made in the block also run ``control_inputs`` whenever they run, and read the
    Variables those write as written (TF1's reads after writes): a node here that reads a
    Variable an update among ``control_inputs`` writes (through ``group``s and their own
    control inputs too) reads that update's new value. The Variable itself is written at the
    end of the run. A gradient made here reads what its forward read.

    >>> import xpnn.compat.v1 as tf
    >>> tf.reset_default_graph()
    >>> v = tf.Variable(0.0)
    >>> with tf.control_dependencies([tf.assign_add(v, 1.0)]):
    ...     y = tf.identity(v)
    >>> sess = tf.Session(); _ = sess.run(tf.global_variables_initializer())
    >>> float(sess.run(y)), float(sess.run(y)), float(sess.run(v))
    (1.0, 2.0, 2.0)
    """
    graph = _graph.get_default_graph()
    deps = tuple(d for d in flatten(control_inputs) if isinstance(d, Node))
    start = len(graph.nodes)
    try:
        yield
    finally:
        made, written = graph.nodes[start:], _written(deps)
        here = set(made)
        for node in made:
            # Variables made here (an optimizer's slots) are not: TF1 lifts them and their
            # initializers out (init_scope), so the initializer runs without the deps.
            if isinstance(node, _graph.Variable):
                continue
            node._tf1_control = getattr(node, "_tf1_control", ()) + deps
            # A gradient reads what its forward read: the new value if the forward is here.
            forward = node.gradient_of
            if (forward is None or forward in here) and not written.keys().isdisjoint(
                    node.inputs):
                node.inputs = tuple(_graph.new_value(written[i], i) if i in written else i
                                    for i in node.inputs)
                if isinstance(node, _assign.Assign):  # what fetching it gives
                    node.value = node.inputs[0]


def _written(deps) -> dict:
    """Variable -> the update that writes it last when ``deps`` run (the later of two
    reads the earlier's new value)."""
    updates = [n for n in topological_order([*deps, *control_closure(deps)])
               if isinstance(n, _graph.Update)]
    writers = {}
    for update in updates:
        for variable in update.targets:
            writers.setdefault(variable, []).append(update)
    last = {}
    for variable, found in writers.items():
        read = {n.update for u in found for n in topological_order([u])
                if isinstance(n, _graph.NewValue) and n.variable is variable}
        last[variable] = ([u for u in found if u not in read] or found)[-1]
    return last


def control_closure(nodes) -> list:
    """The control inputs that running ``nodes`` also runs, and theirs, in order."""
    found, seen, frontier = [], set(nodes), list(nodes)
    while frontier:
        new = []
        for node in topological_order(frontier):
            for dep in getattr(node, "_tf1_control", ()):
                if dep not in seen:
                    seen.add(dep)
                    found.append(dep)
                    new.append(dep)
        frontier = new
    return found


def group(*inputs, name=None):
    """One op that runs every input (nested lists too) when fetched; fetching it gives None."""
    nodes = flatten(inputs)
    if not nodes:
        return no_op(name=name)
    return _assign.group(*nodes, name=op_name(name, "group_deps"))


def no_op(name=None):
    """An op that does nothing when run."""
    return _assign.Group([], name=op_name(name, "NoOp"))


def tensor_tuple(tensors, name=None, control_inputs=None):
    """TF1's ``tf.tuple``: the tensors themselves (xpnn runs whatever a fetch needs in one
    run)."""
    return list(tensors)


def disable_eager_execution() -> None:
    """Nothing to do: xpnn has graphs only."""


def disable_v2_behavior() -> None:
    """Nothing to do: this module is TF1's behaviour."""


def enable_resource_variables() -> None:
    """Nothing to do: xpnn's Variables behave as TF1's resource variables."""


def executing_eagerly() -> bool:
    return False


def enable_eager_execution(*args, **kwargs):
    raise NotImplementedError("tf.enable_eager_execution: xpnn.compat.v1 has graphs only; "
                              "build the graph and run it with tf.Session")
