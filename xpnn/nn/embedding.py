"""Layers that turn token ids and positions into vectors: ``Embedding`` (a lookup table),
``PositionalEncoding`` (the fixed sinusoids of "Attention is all you need", added) and
``PositionEmbedding`` (a learned table of positions, added).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     embed = xn.nn.Embedding(10, 4, seed=0)
...     y = xn.nn.PositionalEncoding(16, 4)(embed(xn.constant(np.array([[1, 2, 3]]))))
...     xn.Session().run(y).shape
(1, 3, 4)
"""

from __future__ import annotations

import numpy as np

from .. import init as initializers
from .. import ops
from ..dtypes import dtype_name
from ..graph import Node, Variable, as_node, get_default_graph
from .layers import Layer


def held(attr: str, doc: str) -> property:
    """A property reading and writing the value of Variable ``self.<attr>`` in the model's
    Session (as Linear's ``W``)."""

    def session(self):
        if self.session is None:
            raise RuntimeError(f"layer {self.name!r} is not part of a model: read its values "
                               f"with session.run(layer.{attr}) or add it to an NNClassifier")
        return self.session

    return property(lambda self: session(self).get_value(getattr(self, attr)),
                    lambda self, value: session(self).set_value(getattr(self, attr), value),
                    doc=doc)


def static_length(layer, x: Node, axis: int = 1) -> int:
    """The static length of ``x`` along ``axis`` (positions and masks are built from it)."""
    shape = x.shape
    if shape is None or len(shape) <= axis or shape[axis] is None:
        raise ValueError(
            f"layer {layer.name!r} ({layer!r}) needs inputs (batch, length, ...) whose length is "
            f"known when the graph is built, got shape {None if shape is None else tuple(shape)}"
            f": give the placeholder a fixed length, e.g. (None, 8, ...), padding shorter "
            f"sequences")
    return int(shape[axis])


class _Table(Layer):
    """A layer whose state is one learned (rows, dim) table, ``weight``; ``rows`` names the
    setting that counts its rows (``vocab_size``, ``max_len``)."""

    rows = ""

    W = held("weight", "The table's value in the model's Session.")

    def parameters(self):
        return [self.weight]

    def state(self):
        return {"W": self.weight}

    def config(self):
        return {self.rows: getattr(self, self.rows), "dim": self.dim,
                "dtype": self.weight.dtype, "name": self.name}

    @classmethod
    def state_shapes(cls, dim, **config):
        return {"W": (config[cls.rows], dim)}


class Embedding(_Table):
    """Integer ids of any shape -> vectors of ``dim``: row ``id`` of the table ``weight``
    (``vocab_size``, ``dim``), drawn from N(0, 1) as ``torch.nn.Embedding``'s. Float ids
    (an NNClassifier's input) are cast to int32. Ids must lie in [0, vocab_size).

    >>> import xpnn as xn
    >>> xn.nn.Embedding(100, 16).weight.shape
    (100, 16)
    """

    rows = "vocab_size"

    def __init__(self, vocab_size, dim, seed=None, dtype="float32", name=None):
        self.vocab_size, self.dim = int(vocab_size), int(dim)
        if self.vocab_size < 1 or self.dim < 1:
            raise ValueError(f"Embedding: vocab_size and dim must be >= 1, got {vocab_size} "
                             f"and {dim}")
        self.name = name or get_default_graph().layer_name("embedding")
        table = initializers.generator(seed).standard_normal((self.vocab_size, self.dim))
        self.weight = Variable(table.astype(dtype), name=f"{self.name}/W")

    def __call__(self, ids: Node, training=None) -> Node:
        ids = as_node(ids)
        if ids.dtype is not None and ids.dtype.startswith(("float", "bfloat")):
            ids = ops.cast(ids, "int32")
        elif ids.dtype is not None and not ids.dtype.startswith(("int", "uint")):
            raise TypeError(f"layer {self.name!r} ({self!r}) takes integer token ids, got "
                            f"{ids.dtype} input {ids.label}")
        return ops.gather(self.weight, ids)

    def __repr__(self) -> str:
        return f"Embedding({self.vocab_size}, {self.dim})"


def sinusoids(max_len: int, dim: int) -> np.ndarray:
    """The (max_len, dim) table: sin(pos / 10000^(2i/dim)) in even columns, cos in odd."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    rate = np.exp(np.arange(0, dim, 2, dtype=np.float64) * (-np.log(10000.0) / dim))
    table = np.zeros((max_len, dim))
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate[: dim // 2])
    return table


class _Positions(Layer):
    """Adds row ``p`` of a (max_len, dim) table to position ``p`` of (batch, length, dim)."""

    def _check(self, x):
        length = static_length(self, x)
        if length > self.max_len or (x.shape[-1] is not None and x.shape[-1] != self.dim):
            raise ValueError(f"layer {self.name!r} ({self!r}) takes (batch, length <= "
                             f"{self.max_len}, {self.dim}) inputs, got shape {tuple(x.shape)}")
        return length

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.max_len}, {self.dim})"


class PositionalEncoding(_Positions):
    """x + the sinusoidal encoding of each position (no weights): inputs (batch, length,
    dim) with length <= ``max_len``, known when the graph is built.

    >>> import xpnn as xn
    >>> xn.nn.PositionalEncoding(64, 8)
    PositionalEncoding(64, 8)
    """

    def __init__(self, max_len, dim, dtype="float32", name=None):
        self.max_len, self.dim, self.dtype = int(max_len), int(dim), dtype_name(dtype)
        if self.max_len < 1 or self.dim < 1:
            raise ValueError(f"PositionalEncoding: max_len and dim must be >= 1, got "
                             f"{max_len} and {dim}")
        self.name = name or get_default_graph().layer_name("positional_encoding")
        self.table = sinusoids(self.max_len, self.dim).astype(self.dtype)

    def __call__(self, x, training=None):
        return ops.add(x, self.table[: self._check(x)])

    def config(self):
        return {"max_len": self.max_len, "dim": self.dim, "dtype": self.dtype,
                "name": self.name}


class PositionEmbedding(_Table, _Positions):
    """x + a learned vector per position (``weight``: (max_len, dim), N(0, 0.02^2) as
    GPT-2's): inputs (batch, length, dim) with length <= ``max_len``."""

    rows = "max_len"

    def __init__(self, max_len, dim, seed=None, dtype="float32", name=None):
        self.max_len, self.dim = int(max_len), int(dim)
        if self.max_len < 1 or self.dim < 1:
            raise ValueError(f"PositionEmbedding: max_len and dim must be >= 1, got "
                             f"{max_len} and {dim}")
        self.name = name or get_default_graph().layer_name("position_embedding")
        table = 0.02 * initializers.generator(seed).standard_normal((self.max_len, self.dim))
        self.weight = Variable(table.astype(dtype), name=f"{self.name}/W")

    def __call__(self, x, training=None):
        return ops.add(x, self.weight[: self._check(x)])
