"""The one op-case table: each case an op built on placeholders, its NumPy reference and
its inputs. tests/ops/test_ops.py runs every case on every backend: the forward against NumPy
(float32) and the gradient against central finite differences (float64, ``xn.gradcheck``).
A new op, TF1's included, adds its cases here."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest

import xpnn as xn
from xpnn import ops
from xpnn.ops import logic

# --------------------------------------------------------------------------- inputs


def normal(*shape):
    return lambda r: r.standard_normal(shape)


def positive(*shape):
    return lambda r: r.uniform(0.5, 2.0, shape)


def nonzero(*shape):
    """Values at least 0.2 away from 0 (the kink of abs/relu)."""
    return lambda r: r.uniform(0.2, 1.5, shape) * r.choice([-1.0, 1.0], shape)


def distinct(*shape):
    """Values at least 0.25 apart (no ties for reduce_max)."""
    return lambda r: r.permutation(int(np.prod(shape))).reshape(shape) * 0.25 - 1.0


def inside(*shape_and_bound):
    """Values in (-bound, bound), never within 0.1 of either end (asin's, atanh's domain)."""
    *shape, bound = shape_and_bound
    return lambda r: r.uniform(-bound + 0.1, bound - 0.1, shape)


def around_clip(*shape):
    """Values inside and outside [-0.5, 0.5], never within 0.05 of either bound."""
    return lambda r: r.choice([-1.3, -0.9, -0.2, 0.1, 0.3, 0.8, 1.2], shape) + r.uniform(
        -0.05, 0.05, shape
    )


def pair_apart(shape_a, shape_b):
    """(a, b) with |a - b| >= 0.2 everywhere after broadcasting (no ties for max/min)."""

    def make(r):
        b = r.standard_normal(shape_b)
        a = np.broadcast_to(b, np.broadcast_shapes(shape_a, shape_b))
        a = (a + r.uniform(0.2, 1.0, a.shape) * r.choice([-1.0, 1.0], a.shape))
        # a must have shape_a: only valid when shape_a is the broadcast shape
        assert a.shape == tuple(shape_a)
        return [a, b]

    return make


# --------------------------------------------------------------------------- NumPy references

ROWS = [[True, True, False, True], [False, False, False, False], [True, False, False, False]]
CAUSAL = np.tril(np.ones((3, 3), bool))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return np.log(np_softmax(x, axis))


def np_logsumexp(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def np_segment_sum(data, ids, n):
    out = np.zeros((n,) + data.shape[np.ndim(ids):])
    for i, j in zip(np.ndindex(np.shape(ids)), np.ravel(ids)):
        if j >= 0:
            out[j] += data[i]
    return out


def np_scatter_nd(indices, updates, shape):
    out = np.zeros(shape)
    indices = np.asarray(indices)
    for i in np.ndindex(indices.shape[:-1]):
        out[tuple(indices[i])] += updates[i]
    return out


def np_cumsum(x, axis=0, exclusive=False, reverse=False):
    x = np.flip(x, axis) if reverse else x
    out = np.cumsum(x, axis=axis) - (x if exclusive else 0)
    return np.flip(out, axis) if reverse else out


def np_erf(x):
    return np.vectorize(math.erf)(x)


def np_selu(x):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return scale * np.where(x < 0, alpha * np.expm1(x), x)


def np_masked_softmax(x, mask, axis=-1):
    mask = np.broadcast_to(mask, x.shape)
    top = np.max(np.where(mask, x, -np.inf), axis=axis, keepdims=True)
    e = np.where(mask, np.exp(x - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = e.sum(axis=axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softplus(x):
    return np.log1p(np.exp(x))


def np_lstm_cell(gates, c):
    """(h', c') of an LSTM cell side by side, gates in PyTorch's order i, f, g, o."""
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = np_sigmoid(f) * c + np_sigmoid(i) * np.tanh(g)
    return np.concatenate([np_sigmoid(o) * np.tanh(c), c], axis=-1)


class Case(NamedTuple):
    id: str
    build: object  # (*nodes) -> node
    ref: object  # (*float64 arrays) -> float64 array
    make: list  # per input: rng -> array, or one callable returning all inputs
    dtype: str = "float32"  # the result's, for float32 inputs


def case(id, build, ref, *makes, dtype="float32"):
    return pytest.param(Case(id, build, ref, list(makes), dtype), id=id)


CASES = [
    # arithmetic, with broadcasting and Python-number operands
    case("add", xn.add, np.add, normal(3, 4), normal(3, 4)),
    case("add-bias", xn.add, np.add, normal(5, 3), normal(3)),
    case("add-col+row", xn.add, np.add, normal(3, 1), normal(1, 4)),
    case("add-scalar", lambda x: x + 2.5, lambda x: x + 2.5, normal(3, 4)),
    case("radd-scalar", lambda x: 2.5 + x, lambda x: 2.5 + x, normal(3, 4)),
    case("subtract", xn.subtract, np.subtract, normal(3, 4), normal(3, 4)),
    case("subtract-bias", xn.subtract, np.subtract, normal(5, 3), normal(3)),
    case("subtract-into-batch", xn.subtract, np.subtract, normal(3), normal(2, 3)),
    case("rsub-scalar", lambda x: 1.5 - x, lambda x: 1.5 - x, normal(4)),
    case("multiply", xn.multiply, np.multiply, normal(3, 4), normal(3, 4)),
    case("multiply-row", xn.multiply, np.multiply, normal(1, 4), normal(3, 4)),
    case("multiply-col", xn.multiply, np.multiply, normal(3, 4), normal(3, 1)),
    case("multiply-scalar", lambda x: 3.0 * x, lambda x: 3.0 * x, normal(2, 3)),
    case("divide", xn.divide, np.divide, normal(3, 4), positive(3, 4)),
    case("divide-bias", xn.divide, np.divide, normal(3, 4), positive(4)),
    case("divide-by-batch", xn.divide, np.divide, normal(4), positive(3, 4)),
    case("rdiv-scalar", lambda x: 1.0 / x, lambda x: 1.0 / x, positive(5)),
    case("div-scalar", lambda x: x / 4.0, lambda x: x / 4.0, normal(5)),
    case("negative", xn.negative, np.negative, normal(3, 4)),
    # matmul in every rank combination NumPy allows
    case("matmul-2d@2d", xn.matmul, np.matmul, normal(2, 3), normal(3, 4)),
    case("matmul-1d@2d", xn.matmul, np.matmul, normal(3), normal(3, 4)),
    case("matmul-W@x", xn.matmul, np.matmul, normal(4, 3), normal(3)),
    case("matmul-1d@1d", xn.matmul, np.matmul, normal(3), normal(3)),
    case("matmul-3d@3d", xn.matmul, np.matmul, normal(2, 2, 3), normal(2, 3, 4)),
    case("matmul-3d@2d", xn.matmul, np.matmul, normal(2, 2, 3), normal(3, 4)),
    case("matmul-2d@3d", xn.matmul, np.matmul, normal(4, 3), normal(2, 3, 5)),
    case("matmul-1d@3d", xn.matmul, np.matmul, normal(3), normal(2, 3, 4)),
    case("matmul-3d@1d", xn.matmul, np.matmul, normal(2, 4, 3), normal(3)),
    case("matmul-batch-bcast", xn.matmul, np.matmul, normal(1, 2, 3), normal(2, 3, 4)),
    # elementwise functions
    case("exp", xn.exp, np.exp, normal(3, 4)),
    case("log", xn.log, np.log, positive(3, 4)),
    case("sqrt", xn.sqrt, np.sqrt, positive(3, 4)),
    case("rsqrt", xn.ops.rsqrt, lambda x: 1.0 / np.sqrt(x), positive(3, 4)),
    case("square", xn.square, np.square, normal(3, 4)),
    case("abs", xn.abs, np.abs, nonzero(3, 4)),
    case("maximum", xn.maximum, np.maximum, pair_apart((3, 4), (3, 4))),
    case("maximum-bias", xn.maximum, np.maximum, pair_apart((3, 4), (4,))),
    case("minimum", xn.minimum, np.minimum, pair_apart((3, 4), (3, 4))),
    case("minimum-bias", xn.minimum, np.minimum, pair_apart((3, 4), (4,))),
    case("clip", lambda x: xn.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
         around_clip(4, 5)),
    case("clip-low-only", lambda x: xn.clip(x, -0.5, None), lambda x: np.maximum(x, -0.5),
         around_clip(4, 5)),
    case("clip-high-only", lambda x: xn.clip(x, None, 0.5), lambda x: np.minimum(x, 0.5),
         around_clip(4, 5)),
    case("relu", xn.relu, lambda x: np.maximum(x, 0.0), nonzero(4, 5)),
    case("leaky_relu", xn.ops.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), nonzero(4, 5)),
    case("leaky_relu-steep", lambda x: xn.ops.leaky_relu(x, alpha=1.5),
         lambda x: np.where(x > 0, x, 1.5 * x), nonzero(4, 5)),
    case("sigmoid", xn.sigmoid, np_sigmoid, normal(3, 4)),
    case("tanh", xn.tanh, np.tanh, normal(3, 4)),
    # softmax family
    case("softmax", xn.softmax, np_softmax, normal(3, 4)),
    case("softmax-axis0", lambda x: xn.softmax(x, axis=0), lambda x: np_softmax(x, 0),
         normal(3, 4)),
    case("softmax-1d", xn.softmax, np_softmax, normal(5)),
    case("log_softmax", xn.log_softmax, np_log_softmax, normal(3, 4)),
    case("log_softmax-axis0", lambda x: xn.log_softmax(x, axis=0),
         lambda x: np_log_softmax(x, 0), normal(3, 4)),
    case("logsumexp", xn.logsumexp, np_logsumexp, normal(3, 4)),
    case("logsumexp-keepdims", lambda x: xn.logsumexp(x, keepdims=True),
         lambda x: np_logsumexp(x, keepdims=True), normal(3, 4)),
    case("logsumexp-axis1", lambda x: xn.logsumexp(x, axis=1),
         lambda x: np_logsumexp(x, axis=1), normal(3, 4)),
    case("logsumexp-axis0-keepdims", lambda x: xn.logsumexp(x, axis=0, keepdims=True),
         lambda x: np_logsumexp(x, axis=0, keepdims=True), normal(3, 4)),
    case("logsumexp-axes02", lambda x: xn.logsumexp(x, axis=(0, 2)),
         lambda x: np_logsumexp(x, axis=(0, 2)), normal(2, 3, 4)),
    # reductions
    case("reduce_sum", xn.reduce_sum, np.sum, normal(3, 4)),
    case("reduce_sum-axis1", lambda x: xn.reduce_sum(x, axis=1), lambda x: x.sum(axis=1),
         normal(3, 4)),
    case("reduce_sum-axis0-keepdims", lambda x: xn.reduce_sum(x, axis=0, keepdims=True),
         lambda x: x.sum(axis=0, keepdims=True), normal(3, 4)),
    case("reduce_sum-axes-neg", lambda x: xn.reduce_sum(x, axis=(0, -1)),
         lambda x: x.sum(axis=(0, -1)), normal(2, 3, 4)),
    case("reduce_mean", xn.reduce_mean, np.mean, normal(3, 4)),
    case("reduce_mean-axis-1", lambda x: xn.reduce_mean(x, axis=-1),
         lambda x: x.mean(axis=-1), normal(3, 4)),
    case("reduce_mean-axis0-keepdims", lambda x: xn.reduce_mean(x, axis=0, keepdims=True),
         lambda x: x.mean(axis=0, keepdims=True), normal(3, 4)),
    case("reduce_mean-axes12", lambda x: xn.reduce_mean(x, axis=(1, 2)),
         lambda x: x.mean(axis=(1, 2)), normal(2, 3, 4)),
    case("reduce_max", xn.reduce_max, np.max, distinct(3, 4)),
    case("reduce_max-axis1", lambda x: xn.reduce_max(x, axis=1), lambda x: x.max(axis=1),
         distinct(3, 4)),
    case("reduce_max-axis0-keepdims", lambda x: xn.reduce_max(x, axis=0, keepdims=True),
         lambda x: x.max(axis=0, keepdims=True), distinct(3, 4)),
    case("reduce_max-keepdims", lambda x: xn.reduce_max(x, keepdims=True),
         lambda x: x.max(keepdims=True), distinct(3, 4)),
    # shapes
    case("reshape", lambda x: xn.reshape(x, (4, 6)), lambda x: x.reshape(4, 6), normal(2, 3, 4)),
    case("reshape-minus1", lambda x: xn.reshape(x, (-1, 3)), lambda x: x.reshape(-1, 3),
         normal(2, 3, 2)),
    case("transpose", xn.transpose, np.transpose, normal(3, 4)),
    case("transpose-3d", xn.transpose, np.transpose, normal(2, 3, 4)),
    case("transpose-axes", lambda x: xn.transpose(x, (1, 2, 0)),
         lambda x: np.transpose(x, (1, 2, 0)), normal(2, 3, 4)),
    # operators compose the same ops (x ** 2 is square, x ** 0.5 is sqrt)
    case("operators", lambda a, b: -(a * b - a / b + 2.0) @ b ** 2 + a ** 0.5,
         lambda a, b: -(a * b - a / b + 2.0) @ b ** 2 + a ** 0.5, positive(3, 3), positive(3, 3)),
    # the core ops TF1 programs need beyond the above (math_ops, activations, logic,
    # structure)
    case("pow", ops.pow, np.power, positive(3, 4), normal(3, 4)),
    case("pow-bias", ops.pow, np.power, positive(3, 4), normal(4)),
    case("pow-operator", lambda x: x ** 3.0, lambda x: x ** 3.0, normal(3, 4)),
    case("rpow-operator", lambda x: 2.0 ** x, lambda x: 2.0 ** x, normal(3, 4)),
    case("reduce_min", lambda x: ops.reduce_min(x, axis=1), lambda x: x.min(axis=1),
         lambda r: r.permutation(12).reshape(3, 4) * 0.25),
    case("reduce_prod", lambda x: ops.reduce_prod(x, axis=0), lambda x: x.prod(axis=0),
         nonzero(3, 4)),
    case("reduce_prod-keepdims", lambda x: ops.reduce_prod(x, keepdims=True),
         lambda x: x.prod(keepdims=True), nonzero(2, 3)),
    case("identity", ops.identity, lambda x: x, normal(3)),
    case("cast-f64", lambda x: ops.cast(x, "float64") * 2.0, lambda x: x * 2.0, normal(3),
         dtype="float64"),
    case("relu6", ops.relu6, lambda x: np.clip(x, 0, 6),
         lambda r: r.choice([-1.0, 1.0, 3.0, 7.0], (3, 4)) + r.uniform(-0.3, 0.3, (3, 4))),
    case("elu", ops.elu, lambda x: np.where(x < 0, np.expm1(x), x), nonzero(3, 4)),
    case("softplus", ops.softplus, np_softplus, normal(3, 4)),
    case("where", lambda x, y: logic.where(x > 0.0, x, y), lambda x, y: np.where(x > 0, x, y),
         nonzero(3, 4), normal(3, 4)),
    case("where-broadcast", lambda x, y: logic.where(x > 0.0, x, y),
         lambda x, y: np.where(x > 0, x, y), nonzero(3, 4), normal(4)),
    case("getitem", lambda x: x[1:, ::2], lambda x: x[1:, ::2], normal(4, 5)),
    case("getitem-reverse", lambda x: x[::-2, 1], lambda x: x[::-2, 1], normal(5, 3)),
    case("getitem-ellipsis-newaxis", lambda x: x[..., None, -1],
         lambda x: x[..., None, -1], normal(2, 3, 4)),
    case("getitem-empty", lambda x: x[3:1], lambda x: x[3:1], normal(4, 2)),
    case("concat", lambda a, b: ops.concat([a, b, a], axis=1),
         lambda a, b: np.concatenate([a, b, a], axis=1), normal(2, 3), normal(2, 1)),
    case("concat-neg-axis", lambda a, b: ops.concat([a, b], axis=-2),
         lambda a, b: np.concatenate([a, b], axis=-2), normal(2, 3), normal(1, 3)),
    case("stack", lambda a, b: ops.stack([a, b], axis=1),
         lambda a, b: np.stack([a, b], axis=1), normal(2, 3), normal(2, 3)),
    case("stack-neg-axis", lambda a, b: ops.stack([a, b], axis=-1),
         lambda a, b: np.stack([a, b], axis=-1), normal(2, 3), normal(2, 3)),
    case("unstack", lambda x: ops.unstack(x, num=3, axis=1)[2] * 3.0, lambda x: x[:, 2] * 3.0,
         normal(2, 3)),
    case("split", lambda x: ops.split(x, [1, -1], axis=1)[1],
         lambda x: x[:, 1:], normal(2, 4)),
    case("gather", lambda x: ops.gather(x, [2, 0, 2]), lambda x: x[[2, 0, 2]],
         normal(3, 4)),
    case("gather-axis1-2d-indices", lambda x: ops.gather(x, [[1, 0], [1, 1]], axis=1),
         lambda x: x[:, [[1, 0], [1, 1]]], normal(3, 2)),
    # indexing: gathers and their scatter-add gradients, scatters (issue 26)
    case("gather-repeated-axis-neg", lambda x: ops.gather(x, [3, 3, 0], axis=-1),
         lambda x: x[..., [3, 3, 0]], normal(2, 3, 4)),
    case("embedding_lookup", lambda x: ops.embedding_lookup(x, [[0, 3], [3, 3]]),
         lambda x: x[[[0, 3], [3, 3]]], normal(5, 3)),
    case("rows_present-times", lambda x: x * ops.reshape(
        ops.cast(ops.rows_present(x, [2, 0, 2], [[2]]), "float32"), (4, 1)),
        lambda x: x * np.array([[1.0], [0.0], [1.0], [0.0]]), normal(4, 3)),
    case("unsorted_segment_sum", lambda x: ops.unsorted_segment_sum(x, [0, 2, 0, -1, 2], 4),
         lambda x: np_segment_sum(x, [0, 2, 0, -1, 2], 4), normal(5, 3)),
    case("unsorted_segment_sum-2d-ids",
         lambda x: ops.unsorted_segment_sum(x, [[0, 1], [1, 1]], 2),
         lambda x: np_segment_sum(x, [[0, 1], [1, 1]], 2), normal(2, 2, 3)),
    case("gather_nd", lambda x: ops.gather_nd(x, [[1, 0], [2, 1], [1, 0]]),
         lambda x: x[[1, 2, 1], [0, 1, 0]], normal(3, 2, 4)),
    case("gather_nd-scalars", lambda x: ops.gather_nd(x, [[[0, 1]], [[2, 3]]]),
         lambda x: x[[[0], [2]], [[1], [3]]], normal(3, 4)),
    case("scatter_nd", lambda u: ops.scatter_nd([[1], [3], [1]], u, [5, 2]),
         lambda u: np_scatter_nd([[1], [3], [1]], u, (5, 2)), normal(3, 2)),
    case("scatter_nd-depth2", lambda u: ops.scatter_nd([[0, 1], [1, 0], [0, 1]], u, [2, 2]),
         lambda u: np_scatter_nd([[0, 1], [1, 0], [0, 1]], u, (2, 2)), normal(3)),
    # scans and selections
    case("cumsum", ops.cumsum, np_cumsum, normal(4, 3)),
    case("cumsum-axis1-exclusive", lambda x: ops.cumsum(x, axis=1, exclusive=True),
         lambda x: np_cumsum(x, 1, exclusive=True), normal(3, 4)),
    case("cumsum-reverse", lambda x: ops.cumsum(x, axis=-1, reverse=True),
         lambda x: np_cumsum(x, -1, reverse=True), normal(3, 4)),
    case("cumsum-exclusive-reverse", lambda x: ops.cumsum(x, exclusive=True, reverse=True),
         lambda x: np_cumsum(x, 0, exclusive=True, reverse=True), normal(4, 2)),
    case("top_k-values", lambda x: ops.top_k(x, 2)[0], lambda x: -np.sort(-x)[..., :2],
         distinct(3, 5)),
    case("sequence_mask-times", lambda x: x * ops.sequence_mask([1, 3, 0], 4, "float32"),
         lambda x: x * (np.arange(4) < np.array([[1], [3], [0]])), normal(3, 4)),
    # contractions
    case("einsum-attention-scores", lambda q, k: ops.einsum("bhqd,bhkd->bhqk", q, k),
         lambda q, k: np.einsum("bhqd,bhkd->bhqk", q, k), normal(2, 2, 3, 4), normal(2, 2, 5, 4)),
    case("einsum-attention-values", lambda p, v: ops.einsum("bqk,bkd->bqd", p, v),
         lambda p, v: np.einsum("bqk,bkd->bqd", p, v), normal(2, 3, 4), normal(2, 4, 5)),
    case("einsum-matmul", lambda a, b: ops.einsum("ij,jk->ik", a, b),
         lambda a, b: a @ b, normal(2, 3), normal(3, 4)),
    case("einsum-3-operands", lambda a, b, c: ops.einsum("ij,jk,kl->li", a, b, c),
         lambda a, b, c: np.einsum("ij,jk,kl->li", a, b, c), normal(2, 3), normal(3, 4),
         normal(4, 2)),
    case("einsum-sum-and-outer", lambda a, b: ops.einsum("ij,k->ki", a, b),
         lambda a, b: np.einsum("ij,k->ki", a, b), normal(2, 3), normal(4)),
    case("einsum-implicit", lambda a, b: ops.einsum("ji,jk", a, b),
         lambda a, b: np.einsum("ji,jk", a, b), normal(3, 2), normal(3, 4)),
    case("tensordot", lambda a, b: ops.tensordot(a, b, [[1, 2], [1, 0]]),
         lambda a, b: np.tensordot(a, b, [[1, 2], [1, 0]]), normal(2, 3, 4), normal(4, 3, 5)),
    case("tensordot-int", lambda a, b: ops.tensordot(a, b, 1),
         lambda a, b: np.tensordot(a, b, 1), normal(2, 3), normal(3, 4)),
    # masked softmax: masked entries exactly 0, a row with nothing kept all 0
    case("masked_softmax", lambda x: ops.masked_softmax(x, ROWS),
         lambda x: np_masked_softmax(x, np.array(ROWS)), normal(3, 4)),
    case("masked_softmax-causal-broadcast", lambda x: ops.masked_softmax(x, CAUSAL),
         lambda x: np_masked_softmax(x, CAUSAL), normal(2, 3, 3)),
    case("masked_softmax-axis0", lambda x: ops.softmax(x, axis=0, mask=[[1.0], [0.0], [1.0]]),
         lambda x: np_masked_softmax(x, np.array([[1], [0], [1]]) != 0, 0), normal(3, 2)),
    case("squeeze", lambda x: ops.squeeze(x), lambda x: np.squeeze(x), normal(3, 1, 2, 1)),
    case("squeeze-axis", lambda x: ops.squeeze(x, [1]), lambda x: np.squeeze(x, 1),
         normal(3, 1, 1)),
    case("tile", lambda x: ops.tile(x, [2, 3]), lambda x: np.tile(x, (2, 3)), normal(2, 3)),
    case("pad", lambda x: ops.pad(x, [[1, 0], [2, 3]]),
         lambda x: np.pad(x, [[1, 0], [2, 3]]), normal(2, 3)),
    # elementary functions (ops.elementary) and the activations TF1 added (issue 27)
    case("sin", ops.sin, np.sin, normal(3, 4)),
    case("cos", ops.cos, np.cos, normal(3, 4)),
    case("tan", ops.tan, np.tan, inside(3, 4, 1.2)),
    case("asin", ops.asin, np.arcsin, inside(3, 4, 0.8)),
    case("acos", ops.acos, np.arccos, inside(3, 4, 0.8)),
    case("atan", ops.atan, np.arctan, normal(3, 4)),
    case("atan2", ops.atan2, np.arctan2, nonzero(3, 4), nonzero(3, 4)),
    case("atan2-bias", ops.atan2, np.arctan2, nonzero(3, 4), nonzero(4)),
    case("sinh", ops.sinh, np.sinh, normal(3, 4)),
    case("cosh", ops.cosh, np.cosh, normal(3, 4)),
    case("asinh", ops.asinh, np.arcsinh, normal(3, 4)),
    case("acosh", lambda x: ops.acosh(x + 1.0), lambda x: np.arccosh(x + 1.0), positive(3, 4)),
    case("atanh", ops.atanh, np.arctanh, inside(3, 4, 0.8)),
    case("log1p", ops.log1p, np.log1p, positive(3, 4)),
    case("expm1", ops.expm1, np.expm1, normal(3, 4)),
    case("erf", ops.erf, np_erf, lambda r: r.uniform(-3.0, 3.0, (4, 5))),
    case("floormod", ops.floormod, lambda a, b: np.mod(a, b), nonzero(3, 4),
         lambda r: r.choice([-0.7, 0.7], (3, 4)) * np.float64(np.float32(1.0))),
    case("selu", ops.selu, np_selu, nonzero(3, 4)),
    case("softsign", ops.softsign, lambda x: x / (1.0 + np.abs(x)), nonzero(3, 4)),
    case("swish", ops.swish, lambda x: x * np_sigmoid(x), normal(3, 4)),
    case("crelu", ops.crelu, lambda x: np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)],
                                                      -1), nonzero(3, 4)),
    # selections of run-time length (ops.selection)
    case("boolean_mask", lambda x: ops.boolean_mask(x, ROWS), lambda x: x[np.array(ROWS)],
         normal(3, 4)),
    case("boolean_mask-axis1", lambda x: ops.boolean_mask(x, [True, False, True], axis=1),
         lambda x: x[:, [0, 2]], normal(2, 3, 2)),
    case("segment_sum", lambda x: ops.segment_sum(x, [0, 0, 2, 2, 3]),
         lambda x: np_segment_sum(x, [0, 0, 2, 2, 3], 4), normal(5, 3)),
    # shapes known at run time (ops.dynamic): computed from shape(x), or read from a value
    case("reshape_to", lambda x: ops.reshape_to(x, [ops.shape.shape(x)[0], -1]),
         lambda x: x.reshape(2, -1), normal(2, 3, 4)),
    case("reshape_to-shape-of", lambda x, y: ops.reshape_to(x, ops.shape.shape(y)) * y,
         lambda x, y: x.reshape(3, 2) * y, normal(2, 3), normal(3, 2)),
    case("fill_to", lambda v, x: ops.fill_to(ops.shape.shape(x), v) * x,
         lambda v, x: np.full(x.shape, v) * x, normal(), normal(2, 3)),
    case("range_to", lambda x: x * ops.range_to(1, ops.shape.shape(x)[0] + 1, 1, "float32"),
         lambda x: x * np.arange(1, 4), normal(3)),
    case("tile_to", lambda x: ops.tile_to(x, [2, ops.shape.shape(x)[0]]),
         lambda x: np.tile(x, (2, 2)), normal(2, 3)),
    case("pad-reflect", lambda x: ops.pad(x, [[1, 2], [2, 0]], mode="reflect"),
         lambda x: np.pad(x, [[1, 2], [2, 0]], mode="reflect"), normal(3, 3)),
    case("pad-symmetric", lambda x: ops.pad(x, [[2, 1], [0, 3]], mode="symmetric"),
         lambda x: np.pad(x, [[2, 1], [0, 3]], mode="symmetric"), normal(2, 3)),
    # the LSTM cell's elementwise part (ops.recurrent): h' and c' side by side
    case("lstm_cell_elementwise",
         lambda g, c: ops.concat(list(ops.lstm_cell_elementwise(g, c)), axis=-1),
         np_lstm_cell, normal(3, 8), normal(3, 2)),
    case("lstm_cell_elementwise-3d",
         lambda g, c: ops.concat(list(ops.lstm_cell_elementwise(g, c)), axis=-1),
         np_lstm_cell, normal(2, 3, 12), normal(2, 3, 3)),
]


def inputs_for(c: Case, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for make in c.make:
        made = make(rng)
        arrays.extend(made if isinstance(made, list) else [made])
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def projected_loss(out, shape, seed=1):
    """sum(out * R) with fixed random R: a seed that catches errors a plain sum would not
    (the plain sum of a softmax has zero gradient)."""
    r = np.random.default_rng(seed).standard_normal(shape)
    return xn.reduce_sum(out * xn.constant(r))

