"""TF1's methods on every node, given to xpnn's Node when this module is imported (as
``ops`` gives it its operators): ``eval(feed_dict)``, ``run(feed_dict)``, ``get_shape()``,
``op``, ``set_shape`` and ``consumers()``.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.placeholder(tf.float32, [None, 3])
>>> x.get_shape().as_list(), x.op is x
([None, 3], True)
"""

from __future__ import annotations

from ...graph import Node


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


def _session(session):
    from .session import get_default_session

    session = session or get_default_session()
    if session is None:
        raise ValueError("Cannot evaluate tensor using `eval()`: No default session is "
                         "registered. Use `with sess.as_default()` or pass an explicit "
                         "session to `eval(session=sess)`")
    return session


def eval(self, feed_dict=None, session=None):  # noqa: A001 - TF1's name
    """This node's value in the default session (or ``session``)."""
    return _session(session).run(self, feed_dict)


def run(self, feed_dict=None, session=None):
    """Run this op in the default session (or ``session``); gives None."""
    _session(session).run(self, feed_dict)


def get_shape(self) -> TensorShape:
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
    return [n for n in self.graph.nodes if self in n.inputs]


Node.eval = eval
Node.run = run
Node.get_shape = get_shape
Node.set_shape = set_shape
Node.consumers = consumers
Node.op = property(lambda self: self)
