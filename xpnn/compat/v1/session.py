"""TF1's Session: ``run(fetches, feed_dict)`` with fetches and feeds by node or by name
(``"x:0"``, ``"train"``), results as NumPy values (scalars as NumPy scalars), an ``assign``
fetched as the new value, control dependencies and placeholder defaults honoured; the
default session (``with tf.Session() as sess``, ``InteractiveSession``) behind
``Tensor.eval()`` and ``Operation.run()``.

It is an ``xn.Session``: it runs on xpnn's default device (``xn.set_default_device``), or
the one :func:`use_device` sets, or its own ``device=``/``backend=`` (xpnn's extensions);
``target`` and ``config`` are accepted and ignored (xpnn places and threads work itself).

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.placeholder(tf.float32, [None], name="x")
>>> y = tf.multiply(x, 2.0, name="y")
>>> with tf.Session() as sess:
...     print(sess.run("y:0", {"x:0": [1.0, 2.0]}), y.eval({x: [3.0]}))
[2. 4.] [6.]
"""

from __future__ import annotations

import contextlib

import numpy as np

from ... import session as _session
from ...autodiff import topological_order
from ...graph import Node, Update, default_sessions
from .data import feed_iterators
from .graphs import control_closure, get_default_graph, state
from .indexed_slices import IndexedSlices, IndexedSlicesValue
from .tensors import PlaceholderWithDefault

_defaults = {"device": None, "backend": None}
_stack = default_sessions  # the graph's: Node.eval() and Node.run() read it


def use_device(device=None, backend=None) -> None:
    """xpnn's extension: the device and backend new ``tf.Session``s run on (None: xpnn's
    default device, NumPy on the CPU).

    >>> import xpnn.compat.v1 as tf
    >>> tf.use_device("cpu", backend="numpy"); tf.use_device()  # back to the default
    """
    _defaults.update(device=device, backend=backend)


class Session(_session.Session):
    """TF1's ``tf.Session(target='', graph=None, config=None)``."""

    def __init__(self, target="", graph=None, config=None, *, device=None, backend=None):
        graph = graph if graph is not None else get_default_graph()
        super().__init__(graph=graph, device=device or _defaults["device"],
                         backend=backend or _defaults["backend"], seed=state(graph).seed)
        self._fetch_plans: dict = {}

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        """The values of ``fetches`` (a node or name, or lists, tuples, dicts of them) with
        ``feed_dict`` fed; an op (a training step) gives None, an ``assign`` its new value."""
        leaves, rebuild = _flatten(fetches, self.graph)
        feeds = {self._node(k, "feed_dict"): v for key, value in (feed_dict or {}).items()
                 for k, v in _feed_items(key, value)}
        nodes, defaults = self._needs(tuple(leaves))
        for placeholder in defaults:
            feeds.setdefault(placeholder, placeholder.default)
        feeds = feed_iterators(self, nodes, feeds)  # tf.data: each iterator's next element
        values = dict(zip(nodes, super().run(nodes, feeds, to_numpy=True)))
        return rebuild([_result(leaf, values) for leaf in leaves])

    def _needs(self, leaves):
        """(nodes to run, placeholders with defaults among their inputs), per fetch."""
        found = self._fetch_plans.get(leaves)
        if found is None:
            nodes = list(dict.fromkeys(n for leaf in leaves for n in _computes(leaf)))
            nodes += [leaf.value for leaf in leaves if _is_assign(leaf)]
            nodes += control_closure(nodes)
            nodes = list(dict.fromkeys(nodes))
            defaults = [n for n in topological_order(nodes)
                        if isinstance(n, PlaceholderWithDefault)]
            found = self._fetch_plans[leaves] = (nodes, defaults)
        return found

    def _node(self, key, what):
        if isinstance(key, str):
            return by_name(self.graph, key)
        if isinstance(key, Node):
            return key
        raise TypeError(f"{what}: {key!r} is neither a node nor a node's name")

    def as_default(self):
        """A ``with`` block in which this is the default session."""
        return _as_default(self)

    def __enter__(self):
        _stack.append(self)
        return self

    def __exit__(self, *exc):
        if self in _stack:
            _stack.remove(self)
        self.close()


def _feed_items(key, value):
    """TF1's feed keys may be nested tuples of tensors (an LSTMStateTuple, a MultiRNNCell's
    state), fed the parts of a value of the same structure."""
    if not isinstance(key, tuple):
        yield key, value
        return
    if not isinstance(value, (tuple, list)) or len(value) != len(key):
        raise ValueError(f"feed_dict: the key is a tuple of {len(key)} tensors, the value "
                         f"{type(value).__name__} {value!r:.80} is not a tuple of as many")
    for k, v in zip(key, value):
        yield from _feed_items(k, v)


class InteractiveSession(Session):
    """A Session that makes itself the default at once (for ``x.eval()`` in a shell)."""

    def __init__(self, target="", graph=None, config=None, **kwargs):
        super().__init__(target, graph, config, **kwargs)
        _stack.append(self)

    def close(self):
        if self in _stack:
            _stack.remove(self)
        super().close()


@contextlib.contextmanager
def _as_default(session):
    _stack.append(session)
    try:
        yield session
    finally:
        _stack.remove(session)


def by_name(graph, name: str) -> Node:
    """``"x:0"``: the tensor; ``"train"``: the op."""
    if ":" in name:
        return graph.get_tensor_by_name(name)
    return graph.get_operation_by_name(name)


def _is_assign(node) -> bool:
    return isinstance(getattr(node, "value", None), Node) and isinstance(node, Update)


def _computes(leaf) -> tuple:
    """The nodes a fetch has computed: a summary op (summary.py) its tensors, whose values
    it serializes on the host."""
    return getattr(leaf, "host_inputs", (leaf,))


def _result(leaf, values):
    if hasattr(leaf, "host_inputs"):
        return leaf.from_host([values[n] for n in leaf.host_inputs])
    if _is_assign(leaf):
        return _numpy(values[leaf.value])
    return _numpy(values[leaf])


def _numpy(value):
    """TF1 hands out NumPy arrays, and NumPy scalars for 0-d values."""
    if value is None:
        return None
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _flatten(fetches, graph):
    """(the fetched nodes in order, a function rebuilding the fetch structure)."""
    if isinstance(fetches, str):
        fetches = by_name(graph, fetches)
    if isinstance(fetches, Node):
        return [fetches], lambda values: values[0]
    if isinstance(fetches, IndexedSlices):  # TF1 gives its three parts (dense_shape or None)
        parts = [p for p in (fetches.values, fetches.indices, fetches.dense_shape) if p is not None]
        return parts, lambda values: IndexedSlicesValue(*values, *[None] * (3 - len(values)))
    if isinstance(fetches, dict):
        keys = list(fetches)
        leaves, build = _flatten([fetches[k] for k in keys], graph)
        return leaves, lambda values: dict(zip(keys, build(values)))
    if isinstance(fetches, (list, tuple)):
        parts = [_flatten(f, graph) for f in fetches]
        kind = type(fetches)

        def rebuild(values):
            out, start = [], 0
            for leaves, build in parts:
                out.append(build(values[start:start + len(leaves)]))
                start += len(leaves)
            if kind in (list, tuple):
                return kind(out)
            return kind(*out)  # a namedtuple

        return [leaf for leaves, _ in parts for leaf in leaves], rebuild
    raise TypeError(f"Fetch argument {fetches!r} has invalid type {type(fetches).__name__}: "
                    "fetch nodes, their names, or lists, tuples and dicts of them")
