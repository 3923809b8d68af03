"""The Transformer's layers: ``LayerNorm``, ``MultiHeadAttention`` and ``TransformerBlock``
(torch's ``nn.TransformerEncoderLayer``), batch-major: inputs are (batch, length, dim),
with the length known when the graph is built (masks are built from it).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder("float32", (None, 5, 8))
...     y = xn.nn.TransformerBlock(8, 2, 16, causal=True, seed=0)(x)
...     xn.Session().run(y, {x: np.ones((3, 5, 8), np.float32)}).shape
(3, 5, 8)
"""

from __future__ import annotations

import math

import numpy as np

from .. import init as initializers
from .. import ops
from ..graph import Variable, as_node, get_default_graph
from .embedding import held, static_length
from .layers import Layer, Linear


def _check_dim(layer, x, dim, what="input"):
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 3 or (shape[-1] is not None and shape[-1] != dim):
        article = "an" if what[0] in "aeiou" else "a"
        raise ValueError(f"layer {layer.name!r} ({layer!r}) takes {article} {what} of shape "
                         f"(batch, length, {dim}), got {what} {x.label} of shape "
                         f"{None if shape is None else tuple(shape)}")


class LayerNorm(Layer):
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last axis, with the biased
    variance and eps inside the square root (``torch.nn.LayerNorm``'s); gamma starts at 1,
    beta at 0.

    >>> import xpnn as xn
    >>> sorted(xn.nn.LayerNorm(4).state())
    ['beta', 'gamma']
    """

    def __init__(self, dim, eps=1e-5, dtype="float32", name=None):
        if not int(dim) >= 1 or not eps >= 0:
            raise ValueError(f"LayerNorm: dim must be >= 1 and eps >= 0, got {dim} and {eps}")
        self.dim, self.eps = int(dim), float(eps)
        self.name = name or get_default_graph().layer_name("layer_norm")
        self.gamma = Variable(np.ones(self.dim, dtype), name=f"{self.name}/gamma")
        self.beta = Variable(np.zeros(self.dim, dtype), name=f"{self.name}/beta")

    def __call__(self, x, training=None):
        shape = x.shape
        if not shape or (shape[-1] is not None and shape[-1] != self.dim):
            raise ValueError(f"layer {self.name!r} ({self!r}) normalises a last axis of "
                             f"{self.dim}, got input {x.label} of shape {shape}")
        mean = ops.reduce_mean(x, axis=-1, keepdims=True)
        centred = ops.subtract(x, mean)
        variance = ops.reduce_mean(ops.square(centred), axis=-1, keepdims=True)
        scale = ops.multiply(ops.rsqrt(ops.add(variance, self.eps)), self.gamma)
        return ops.add(ops.multiply(centred, scale), self.beta)

    gain = held("gamma", "gamma's value in the model's Session.")
    bias = held("beta", "beta's value in the model's Session.")

    def parameters(self):
        return [self.gamma, self.beta]

    def state(self):
        return {"gamma": self.gamma, "beta": self.beta}

    def config(self):
        return {"dim": self.dim, "eps": self.eps, "dtype": self.gamma.dtype, "name": self.name}

    @classmethod
    def state_shapes(cls, dim, **_):
        return {"gamma": (dim,), "beta": (dim,)}

    def __repr__(self) -> str:
        return f"LayerNorm({self.dim})"


def _keep_mask(query_length, key_length, causal, key_mask, lengths):
    """The bool mask of the keys each query attends to, broadcasting against (batch, heads,
    query, key) scores; None where every key is kept."""
    keep = None
    if causal:
        keep = as_node(np.tril(np.ones((query_length, key_length), bool)))
    if lengths is not None:
        lengths = as_node(lengths)
        by_length = ops.sequence_mask(lengths, key_length)
        key_mask = by_length if key_mask is None else ops.logical_and(key_mask, by_length)
    if key_mask is not None:
        key_mask = as_node(key_mask)[:, None, None, :]
        keep = key_mask if keep is None else ops.logical_and(keep, key_mask)
    return keep


class MultiHeadAttention(Layer):
    """Scaled dot-product attention over ``num_heads`` heads of ``dim // num_heads``, with
    query, key, value and output projections (``x @ W + b``, glorot-uniform, zero bias).

    ``mha(x)`` is self-attention; ``mha.attend(query, key, value)`` the general form. Masks:
    ``causal`` (query i sees keys <= i), ``key_mask`` ((batch, key length) bool, True where
    a key is real: the negation of torch's ``key_padding_mask``) and ``lengths`` ((batch,)
    ints: the first ``lengths[b]`` keys are real). Masked keys get exactly zero weight; a
    query must keep at least one key. Torch's ``nn.MultiheadAttention`` has
    ``in_proj_weight = concat([Wq, Wk, Wv], axis=1).T`` and ``out_proj.weight = Wo.T``.

    >>> import xpnn as xn
    >>> sorted(xn.nn.MultiHeadAttention(8, 2).state())
    ['Wk', 'Wo', 'Wq', 'Wv', 'bk', 'bo', 'bq', 'bv']
    """

    PARTS = ("q", "k", "v", "o")

    def __init__(self, dim, num_heads, causal=False, dropout=0.0, seed=None, dtype="float32",
                 name=None):
        self.dim, self.num_heads = int(dim), int(num_heads)
        if self.num_heads < 1 or self.dim < 1 or self.dim % self.num_heads:
            raise ValueError(f"MultiHeadAttention: num_heads ({num_heads}) must divide dim "
                             f"({dim}): each head takes dim // num_heads features")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must lie in [0, 1), got {dropout}")
        self.causal, self.dropout = bool(causal), float(dropout)
        self.name = name or get_default_graph().layer_name("attention")
        rng = initializers.generator(seed)
        for part in self.PARTS:  # the Variables w_q, b_q, ... (values: Wq, bq, ...)
            w = initializers.glorot_uniform((self.dim, self.dim), rng, dtype)
            setattr(self, f"w_{part}", Variable(w, name=f"{self.name}/W{part}"))
            setattr(self, f"b_{part}", Variable(np.zeros(self.dim, dtype),
                                                name=f"{self.name}/b{part}"))

    def __call__(self, x, training=None, *, key_mask=None, lengths=None,
                 return_weights=False):
        return self.attend(x, x, x, training, key_mask=key_mask, lengths=lengths,
                           return_weights=return_weights)

    def attend(self, query, key, value, training=None, *, key_mask=None, lengths=None,
               return_weights=False):
        """softmax(q k^T / sqrt(head dim) + mask) v per head, projected: (batch, query
        length, dim), and the (batch, heads, query, key) weights with ``return_weights``."""
        for what, node in (("query", query), ("key", key), ("value", value)):
            _check_dim(self, node, self.dim, what)
        length, key_length = static_length(self, query), static_length(self, key)
        if static_length(self, value) != key_length:
            raise ValueError(f"layer {self.name!r}: key and value must have one length, got "
                             f"{key.shape} and {value.shape}")
        if self.causal and length != key_length:
            raise ValueError(f"layer {self.name!r}: a causal mask needs queries and keys of "
                             f"one length, got {length} and {key_length}")
        q = self._heads(self._project(query, "q"), length)
        k = self._heads(self._project(key, "k"), key_length)
        v = self._heads(self._project(value, "v"), key_length)
        scores = ops.matmul(ops.multiply(q, 1.0 / math.sqrt(self.dim // self.num_heads)),
                            ops.transpose(k, (0, 1, 3, 2)))
        keep = _keep_mask(length, key_length, self.causal, key_mask, lengths)
        # A query with every key masked gets all-zero weights (not NaN).
        weights = (ops.softmax(scores, axis=-1) if keep is None
                   else ops.masked_softmax(scores, keep, axis=-1))
        attended = weights
        if self.dropout:
            attended = ops.dropout(weights, self.dropout, True if training is None else training)
        out = ops.transpose(ops.matmul(attended, v), (0, 2, 1, 3))
        out = self._project(ops.reshape(out, (-1, length, self.dim)), "o")
        return (out, weights) if return_weights else out

    def _project(self, x, part):
        return ops.add(ops.matmul(x, getattr(self, f"w_{part}")), getattr(self, f"b_{part}"))

    def _heads(self, x, length):
        """(batch, length, dim) -> (batch, heads, length, dim // heads)."""
        split = ops.reshape(x, (-1, length, self.num_heads, self.dim // self.num_heads))
        return ops.transpose(split, (0, 2, 1, 3))

    def parameters(self):
        return list(self.state().values())

    def state(self):
        return {f"{kind}{p}": getattr(self, f"{kind.lower()}_{p}")
                for kind in "Wb" for p in self.PARTS}

    def config(self):
        return {"dim": self.dim, "num_heads": self.num_heads, "causal": self.causal,
                "dropout": self.dropout, "dtype": self.w_q.dtype, "name": self.name}

    @classmethod
    def state_shapes(cls, dim, **_):
        return {**{f"W{p}": (dim, dim) for p in cls.PARTS},
                **{f"b{p}": (dim,) for p in cls.PARTS}}

    def __repr__(self) -> str:
        causal = ", causal=True" if self.causal else ""
        return f"MultiHeadAttention({self.dim}, {self.num_heads}{causal})"


for _part in MultiHeadAttention.PARTS:
    setattr(MultiHeadAttention, f"W{_part}", held(f"w_{_part}", f"W{_part}'s value in the "
                                                                  f"model's Session."))
    setattr(MultiHeadAttention, f"b{_part}", held(f"b_{_part}", f"b{_part}'s value in the "
                                                                  f"model's Session."))


def gelu_tanh(x):
    """GELU's tanh approximation (torch's ``gelu(x, approximate="tanh")``)."""
    inner = ops.multiply(math.sqrt(2.0 / math.pi),
                         ops.add(x, ops.multiply(0.044715, ops.multiply(x, ops.square(x)))))
    return ops.multiply(ops.multiply(0.5, x), ops.add(1.0, ops.tanh(inner)))


FEED_FORWARD = {"relu": ops.relu, "gelu_tanh": gelu_tanh}


class TransformerBlock(Layer):
    """An encoder layer, as ``torch.nn.TransformerEncoderLayer(batch_first=True)``: self-
    attention and a feed-forward net (``dim -> ff_dim -> dim``, ReLU or ``"gelu_tanh"``),
    each with a residual and a LayerNorm: post-LN (``norm_first=False``, torch's default:
    ``x = norm1(x + attention(x))``) or pre-LN (``x = x + attention(norm1(x))``), then the
    same with ``norm2`` and the feed-forward net. ``dropout`` (while ``training``) is
    torch's: on the attention weights, after each sub-layer and after the activation.

    >>> import xpnn as xn
    >>> xn.nn.TransformerBlock(16, 4, 32, norm_first=True)
    TransformerBlock(16, 4, 32, norm_first=True)
    """

    def __init__(self, dim, num_heads, ff_dim, causal=False, dropout=0.0, norm_first=False,
                 activation="relu", eps=1e-5, seed=None, dtype="float32", name=None):
        if activation not in FEED_FORWARD:
            raise ValueError(f"TransformerBlock: activation must be one of "
                             f"{sorted(FEED_FORWARD)}, got {activation!r}")
        if not int(ff_dim) >= 1:
            raise ValueError(f"TransformerBlock: ff_dim must be >= 1, got {ff_dim}")
        self.name = name = name or get_default_graph().layer_name("transformer_block")
        self.ff_dim, self.norm_first, self.activation = int(ff_dim), bool(norm_first), activation
        rng = initializers.generator(seed)
        self.attention = MultiHeadAttention(dim, num_heads, causal, dropout, seed=rng,
                                            dtype=dtype, name=f"{name}/attention")
        self.norm1 = LayerNorm(dim, eps, dtype, name=f"{name}/norm1")
        self.norm2 = LayerNorm(dim, eps, dtype, name=f"{name}/norm2")
        self.ff1 = Linear(dim, ff_dim, "glorot_uniform", rng, dtype, name=f"{name}/ff1")
        self.ff2 = Linear(ff_dim, dim, "glorot_uniform", rng, dtype, name=f"{name}/ff2")

    PARTS = ("attention", "norm1", "norm2", "ff1", "ff2")

    def __call__(self, x, training=None, *, key_mask=None, lengths=None):
        dim = self.attention.dim
        _check_dim(self, x, dim)
        length = static_length(self, x)
        training = True if training is None else training

        def attend(h):
            return self._drop(self.attention(h, training, key_mask=key_mask, lengths=lengths),
                              training)

        def feed_forward(h):
            # On (batch * length, dim) rows: one GEMM per product. NumPy multiplies a 3-D h
            # by a matrix batch by batch, and W's gradient is then a batched product summed
            # over the batch (benchmarks/transformer_block.py). The attention's projections
            # stay 3-D: a 2-D product's column-major result would make the head split copy.
            h = ops.reshape(h, (-1, dim))
            h = self._drop(FEED_FORWARD[self.activation](self.ff1(h)), training)
            return ops.reshape(self._drop(self.ff2(h), training), (-1, length, dim))

        if self.norm_first:
            x = ops.add(x, attend(self.norm1(x)))
            return ops.add(x, feed_forward(self.norm2(x)))
        x = self.norm1(ops.add(x, attend(x)))
        return self.norm2(ops.add(x, feed_forward(x)))

    def _drop(self, x, training):
        rate = self.attention.dropout
        return ops.dropout(x, rate, training) if rate else x

    @property
    def session(self):
        return self.attention.session

    @session.setter
    def session(self, session):  # the model's Session reaches the sub-layers' properties
        for part in self.PARTS:
            getattr(self, part).session = session

    def parameters(self):
        return list(self.state().values())

    def state(self):
        return {f"{part}.{k}": v for part in self.PARTS
                for k, v in getattr(self, part).state().items()}

    def config(self):
        a = self.attention
        return {"dim": a.dim, "num_heads": a.num_heads, "ff_dim": self.ff_dim,
                "causal": a.causal, "dropout": a.dropout, "norm_first": self.norm_first,
                "activation": self.activation, "eps": self.norm1.eps, "dtype": a.w_q.dtype,
                "name": self.name}

    @classmethod
    def state_shapes(cls, dim, ff_dim, **_):
        parts = {"attention": MultiHeadAttention.state_shapes(dim),
                 "norm1": LayerNorm.state_shapes(dim), "norm2": LayerNorm.state_shapes(dim),
                 "ff1": Linear.state_shapes(dim, ff_dim), "ff2": Linear.state_shapes(ff_dim, dim)}
        return {f"{part}.{k}": shape for part, shapes in parts.items()
                for k, shape in shapes.items()}

    def __repr__(self) -> str:
        a = self.attention
        extra = "".join(f", {k}={v!r}" for k, v in (("causal", a.causal),
                                                     ("norm_first", self.norm_first))
                        if v)
        return f"TransformerBlock({a.dim}, {a.num_heads}, {self.ff_dim}{extra})"
