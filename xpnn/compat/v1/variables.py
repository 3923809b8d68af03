"""TF1's Variables: ``tf.Variable`` (an ``xn.Variable`` with TF1's dtypes and methods), the
initializers as real update ops, ``assign``/``assign_add``/``assign_sub``, and
``variable_scope`` + ``get_variable`` with reuse.

An initial value is known when the Variable is made: a tensor given as one (a constant,
``tf.random_normal(...)``, ``tf.zeros(...)``, or an expression of them and of other
Variables' initial values) is computed then, on the host. A random one that reads no
Variable is also what the initializer computes: each run of it draws anew (as TF1's), the
first run in a Session the values the Variable was made with where a seed is set.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> with tf.variable_scope("layer"):
...     w = tf.get_variable("w", [2], initializer=tf.ones_initializer())
>>> with tf.variable_scope("layer", reuse=True):
...     same = tf.get_variable("w")
>>> same is w, w.name
(True, 'layer/w')
"""

from __future__ import annotations

import numpy as np

from ... import assignment as _assign
from ... import graph as _graph
from ... import ops as _ops
from ...autodiff import topological_order
from ...graph import Node, get_default_session
from ...session import Session as _CoreSession
from .dtypes import as_dtype, float32, name_of
from .graphs import GraphKeys, add_to_collection, op_name, state
from .initializers import Initializer, glorot_uniform_initializer, zeros_initializer
from .tensors import host_array

AUTO_REUSE = "AUTO_REUSE"


def host_value_of(node: Node) -> np.ndarray:
    """A node's value computed now on the host (Variables at their initial values)."""
    try:
        return _CoreSession(graph=node.graph, device="cpu").run(node, to_numpy=True)
    except ValueError as exc:
        if "must be fed" not in str(exc):
            raise
        raise NotImplementedError(
            f"an initial value computed from a placeholder ({node.label}): xpnn.compat.v1 "
            "computes initial values when the Variable is made; make it from constants, "
            "random tensors or other Variables") from exc


def initial_host(value, dtype=None) -> np.ndarray:
    if isinstance(value, Node):
        array = value.value if type(value) is _graph.Constant else host_value_of(value)
        return array if dtype is None else array.astype(name_of(dtype))
    return host_array(value, dtype)


class Variable(_graph.Variable):
    """TF1's ``tf.Variable``: ``initial_value`` a value or a tensor (computed now), TF1's
    dtypes, default name ``Variable``; ``initializer``, ``assign``... as TF1's."""

    def __init__(self, initial_value=None, trainable=None, collections=None,
                 validate_shape=True, caching_device=None, name=None, variable_def=None,
                 dtype=None, expected_shape=None, import_scope=None, constraint=None,
                 use_resource=None, synchronization=None, aggregation=None, shape=None):
        if initial_value is None:
            raise ValueError("tf.Variable: initial_value must be given")
        if callable(initial_value) and not isinstance(initial_value, Node):
            initial_value = initial_value()
        value = initial_host(initial_value, dtype)
        super().__init__(value, name=op_name(name, "Variable"), dtype=value.dtype,
                         trainable=True if trainable is None else bool(trainable))
        self._initializer = None
        self.initial_draw = drawn_anew(initial_value)
        if collections is not None:
            in_collections(self, collections)

    @property
    def initializer(self):
        """The op that sets this Variable to its initial value."""
        if self._initializer is None:
            self._initializer = initializer_of([self], name=op_name(None, "Assign"))
        return self._initializer

    def initialized_value(self):
        return initial_tensor(self)

    def value(self):
        return self

    def read_value(self):
        """A read of the Variable made here: under ``control_dependencies`` it reads what
        the block's updates wrote."""
        return _ops.identity(self, name=op_name(None, "read"))

    def assign(self, value, use_locking=None, name=None, read_value=True):
        return assign(self, value, name=name)

    def assign_add(self, delta, use_locking=None, name=None, read_value=True):
        return assign_add(self, delta, name=name)

    def assign_sub(self, delta, use_locking=None, name=None, read_value=True):
        return assign_sub(self, delta, name=name)

    def load(self, value, session=None):
        (session or get_default_session()).set_value(self, value)


def in_collections(variable, collections) -> None:
    """Put ``variable`` in TF1's ``collections``: one that names no GLOBAL_VARIABLES is
    local (``tf.local_variables``, left out of ``global_variables`` and its initializer)."""
    collections = list(collections)
    variable._tf1_local = GraphKeys.GLOBAL_VARIABLES not in collections
    for key in collections:
        if key not in (GraphKeys.GLOBAL_VARIABLES, GraphKeys.TRAINABLE_VARIABLES):
            add_to_collection(key, variable)


def drawn_anew(value):
    """``value`` where the initializer computes it at each run: a tensor that draws random
    values and reads no Variable and no placeholder (one that does keeps the value computed
    when the Variable was made)."""
    if not isinstance(value, Node):
        return None
    order = topological_order([value])
    if any(isinstance(n, (_graph.Variable, _graph.Placeholder)) for n in order):
        return None
    return value if any(getattr(n, "random", False) for n in order) else None


def initializer_of(variables, name):
    """The op that sets each of ``variables`` to its initial value: the random ones drawn
    anew, the others as they were made."""
    drawn = [v for v in variables if getattr(v, "initial_draw", None) is not None]
    if not drawn:
        return _assign.initializer(variables, name=name)
    resets = [_assign.Assign(v, v.initial_draw) for v in drawn]
    kept = [v for v in variables if getattr(v, "initial_draw", None) is None]
    if kept:
        resets.append(_assign.initializer(kept))
    return _assign.Group([], *resets, name=name)


def initial_tensor(variable):
    """A constant holding the Variable's initial value."""
    return _graph.Constant(variable.initial_value, dtype=variable.initial_value.dtype,
                           graph=variable.graph)


def _assignable(ref):
    if not isinstance(ref, _graph.Variable):
        raise TypeError(f"assign: {ref!r} is not a Variable")
    return ref


def assign(ref, value, validate_shape=None, use_locking=None, name=None):
    """The op ``ref <- value``; fetching it gives the new value."""
    return _assign.Assign(_assignable(ref), _as_value(value, ref),
                          name=op_name(name, "Assign"))


def assign_add(ref, value, use_locking=None, name=None):
    return _assign.Assign(_assignable(ref), ref + _as_value(value, ref),
                          name=op_name(name, "AssignAdd"))


def assign_sub(ref, value, use_locking=None, name=None):
    return _assign.Assign(_assignable(ref), ref - _as_value(value, ref),
                          name=op_name(name, "AssignSub"))


def _as_value(value, ref):
    """Data checked against ``ref``'s dtype as ``xn.assign`` checks it (3.7 into an int32
    Variable is refused, not truncated)."""
    return _assign.value_node(ref, value)


def global_variables(scope=None):
    """Every Variable of the default graph (optimizer slots too, as in TF1) but the local
    ones."""
    variables = _graph.get_default_graph().variables
    return _scoped([v for v in variables if not getattr(v, "_tf1_local", False)], scope)


def trainable_variables(scope=None):
    return _scoped(_graph.get_default_graph().trainable_variables(), scope)


def local_variables(scope=None):
    """The Variables made in TF1's ``LOCAL_VARIABLES`` collection (metrics' counts)."""
    variables = _graph.get_default_graph().variables
    return _scoped([v for v in variables if getattr(v, "_tf1_local", False)], scope)


def model_variables(scope=None):
    return trainable_variables(scope)


def _scoped(variables, scope):
    return [v for v in variables if scope is None or (v.name or "").startswith(scope)]


def variables_initializer(var_list, name="init"):
    """The op that sets each Variable of ``var_list`` to its initial value."""
    return initializer_of(list(var_list), name=op_name(name, "init"))


def global_variables_initializer():
    """The op that sets every Variable made so far to its initial value; running it again
    starts training over."""
    return variables_initializer(global_variables(), name="init")


def initialize_all_variables():
    return global_variables_initializer()


def local_variables_initializer():
    """The op that sets every local Variable (metrics' counts) back to its initial value."""
    return variables_initializer(local_variables(), name="init")


def tables_initializer(name="init_all_tables"):
    return variables_initializer([], name=name)


def is_variable_initialized(variable):
    return _graph.Constant(True, graph=variable.graph)


# --------------------------------------------------------------------------- variable scopes


class VariableScope:
    """A variable scope: its ``name``, whether it ``reuse``s, its default initializer and
    dtype."""

    def __init__(self, reuse, name="", initializer=None, regularizer=None, dtype=float32):
        self.name, self.reuse = name, reuse
        self.initializer, self.regularizer, self.dtype = initializer, regularizer, dtype
        self.original_name_scope = name + "/" if name else ""

    def reuse_variables(self):
        """Reuse the Variables of this scope from now on."""
        self.reuse = True

    def set_initializer(self, initializer):
        self.initializer = initializer

    def __repr__(self):
        return f"<VariableScope {self.name!r} reuse={self.reuse}>"


def _stack():
    scopes = state().scopes
    if not scopes:
        scopes.append(VariableScope(False))
    return scopes


def get_variable_scope() -> VariableScope:
    return _stack()[-1]


class variable_scope:  # noqa: N801 - TF1's name
    """A ``with`` block whose ``get_variable`` names start with the scope's name, reusing
    them where ``reuse`` is True (or AUTO_REUSE: reuse or create); it opens a name scope
    of that name too. Reuse is inherited by inner scopes."""

    def __init__(self, name_or_scope, default_name=None, values=None, initializer=None,
                 regularizer=None, caching_device=None, partitioner=None,
                 custom_getter=None, reuse=None, dtype=None, use_resource=None,
                 constraint=None, auxiliary_name_scope=True):
        if name_or_scope is None and default_name is None:
            raise TypeError("variable_scope: give name_or_scope or default_name")
        self.name_or_scope, self.default_name = name_or_scope, default_name
        self.initializer, self.regularizer = initializer, regularizer
        self.reuse, self.dtype = reuse, dtype
        self.auxiliary_name_scope = auxiliary_name_scope

    def __enter__(self) -> VariableScope:
        parent = get_variable_scope()
        given = self.name_or_scope
        if isinstance(given, VariableScope):
            name, name_scope = given.name, given.original_name_scope
            reuse = True if self.reuse is True or parent.reuse is True else given.reuse
        else:
            last = given if given is not None else self._default_name(parent)
            name = f"{parent.name}/{last}" if parent.name else last
            name_scope = last
            reuse = True if parent.reuse is True else (
                parent.reuse if self.reuse is None else self.reuse)
        base = given if isinstance(given, VariableScope) else parent
        scope = VariableScope(reuse, name, self.initializer or base.initializer,
                              self.regularizer or base.regularizer,
                              self.dtype or base.dtype)
        self._names = _graph.get_default_graph().name_scope(
            name_scope if self.auxiliary_name_scope else None)
        opened = self._names.__enter__()
        if not isinstance(given, VariableScope):
            scope.original_name_scope = opened
        _stack().append(scope)
        return scope

    def _default_name(self, parent):
        used = state().scope_names
        full = f"{parent.name}/{self.default_name}" if parent.name else self.default_name
        count = used.get(full, 0)
        used[full] = count + 1
        return self.default_name if count == 0 else f"{self.default_name}_{count}"

    def __exit__(self, *exc):
        _stack().pop()
        return self._names.__exit__(*exc)


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable=None, collections=None, caching_device=None, partitioner=None,
                 validate_shape=True, use_resource=None, custom_getter=None, constraint=None,
                 synchronization=None, aggregation=None):
    """The Variable ``<scope>/<name>``: made here (``initializer``: the scope's, else TF1's
    glorot_uniform for floats and zeros for integers; or a value, an array, list, number or
    tensor, whose shape and dtype it takes), or the existing one where the scope reuses.
    Name scopes do not prefix it, as in TF1."""
    scope = get_variable_scope()
    full = f"{scope.name}/{name}" if scope.name else name
    store = state().store
    if full in store:
        if scope.reuse not in (True, AUTO_REUSE):
            raise ValueError(f"Variable {full} already exists, disallowed. Did you mean to set "
                             "reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
        return _shared(store[full], shape, dtype if dtype is not None else scope.dtype)
    if scope.reuse is True:
        raise ValueError(f"Variable {full} does not exist, or was not created with "
                         "tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in VarScope?")
    if initializer is None:
        initializer = scope.initializer
    if _is_constant(initializer):
        initial, value = initializer, _constant_value(full, shape, dtype, initializer)
    else:
        initial, value = _first_value(full, shape, dtype or scope.dtype, initializer)
    graph = _graph.get_default_graph()
    with graph.name_scope(None):  # a variable scope names it, not the name scope
        variable = Variable(value, name=full, dtype=value.dtype, trainable=trainable)
    variable.initial_draw = drawn_anew(initial)
    store[full] = variable
    regularizer = regularizer or scope.regularizer
    if regularizer is not None:
        loss = regularizer(variable)
        if loss is not None:
            add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return variable


def _shared(found, shape, dtype):
    """The existing Variable ``found``, where ``shape`` and ``dtype`` (the scope's where none
    is given, as TF1's) agree with it; TF1's ValueError where they do not."""
    if shape is not None and tuple(shape) != found.shape:
        raise ValueError(f"Trying to share variable {found.name}, but specified shape "
                         f"{tuple(shape)} and found shape {found.shape}.")
    if as_dtype(dtype).name != found.dtype:
        raise ValueError(f"Trying to share variable {found.name}, but specified dtype "
                         f"{as_dtype(dtype).name} and found dtype {found.dtype}_ref.")
    return found


def _is_constant(initializer) -> bool:
    """Whether ``initializer`` is a value (an array, a list, a number or a tensor), not an
    initializer to call."""
    return initializer is not None and (isinstance(initializer, Node) or not callable(
        initializer))


def _constant_value(full, shape, dtype, initializer):
    """The host value of a constant ``initializer`` (its own dtype, as TF1's): TF1 refuses a
    ``shape`` beside it, and an explicit ``dtype`` other than its own."""
    if shape is not None:
        raise ValueError(f"get_variable {full}: If initializer is a constant, do not specify "
                         f"shape (got shape={list(shape)}); the shape is the initializer's")
    value = initial_host(initializer)
    if dtype is not None and as_dtype(dtype).name != value.dtype.name:
        raise ValueError(f"get_variable {full}: Initializer type '{value.dtype.name}' and "
                         f"explicit dtype '{as_dtype(dtype).name}' don't match; leave dtype out"
                         " or give the initializer in that dtype")
    return value


def _first_value(full, shape, dtype, initializer) -> tuple:
    """(the initial value as given: a tensor or a value, its host value)."""
    dtype = as_dtype(dtype or float32)
    if initializer is None:
        initializer = glorot_uniform_initializer() if dtype.is_floating else zeros_initializer()
    if isinstance(initializer, type) and issubclass(initializer, Initializer):
        initializer = initializer()  # TF1 allows the class itself
    if isinstance(initializer, Initializer):
        if shape is None:
            raise ValueError(f"get_variable {full}: the shape must be given for an initializer")
        initializer = initializer(tuple(int(d) for d in shape), dtype)
    elif callable(initializer) and not isinstance(initializer, Node):
        initializer = initializer(shape, dtype=dtype)
    value = initial_host(initializer, dtype)
    if shape is not None and tuple(shape) != value.shape:
        raise ValueError(f"get_variable {full}: the initial value has shape {value.shape}, "
                         f"not {tuple(shape)}")
    return initializer, value
