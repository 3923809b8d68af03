"""Random graph programs on the NumPy fast path against array-api-strict (the portable path).

Hypothesis draws a small program: one to three placeholders (batch dimension None, fixed, or
the whole shape unknown), up to four Variables (matrices, bias vectors, scalars, whole-batch
ones; some float64) and Constants, a DAG of public ops (matmul, elementwise and broadcasting
arithmetic, relu/sigmoid/tanh/exp/log, reshape, transpose, reductions over axes, softmax),
with shapes that stress the fast paths (views beside in-place readers, tied and factorized
weights, two Variables sharing one gradient, 64-column bias sums, 3-D products), a loss of one
to four terms (squares, MSE, sparse/dense/composed softmax cross-entropy, BCE, sigmoid BCE;
maybe a gradient penalty, so second-order gradients), and one or two optimizer steps (SGD,
momentum, Nesterov, Adam, a user's optimizer, a user's assign step; from minimize or from
gradient nodes that are fetched too, transformed, or another Variable). Then two to four runs
with fresh feeds in varying layouts (C, Fortran, strided, reversed, read-only, float64,
lists, one array fed twice) and batch sizes (0 too), each fetching one of a few fetch lists
(steps, loss, gradients, intermediates, Variables, optimizer slots), sometimes after changing
the learning rate, momentum, Nesterov or a Variable's value; now and then a run feeds a wrong
shape or an out-of-range label and must fail alike on both.

After every run each fetched value and every Variable (optimizer slots too) must agree between
the two backends (shape, dtype, values to float32 / float64 tolerance); arrays handed out
earlier must not have changed since; fed arrays must never change; and results the test
scribbles over (fetched values, get_value copies) must not leak into later runs.

A third as many programs run the same way through PyTorch with its plan passes
(``xpnn/devices/torch``) against array-api-strict, and as many through the CuPy pass
(``xpnn/devices/cupy``) on its NumPy stand-in against array-api-strict. On a machine with a
GPU and CuPy the CuPy pass also runs them on the GPU against CuPy's portable plan (the
pass off; ``XPNN_RANDOM_CUPY_EXAMPLES``, default 30): there a label out of range gives NaN
on both instead of an error.

CI runs a fixed sequence (derandomized). To explore: ``XPNN_RANDOM_EXAMPLES=3000`` for a longer
run (a third of it through PyTorch), ``XPNN_RANDOM_SEED=<n>`` for other programs.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import array_api_compat
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import xpnn as xn
from tests.conftest import _unavailable, skip_or_fail
from tests.devices.numpy.test_fastpath import numpy_session, strict_session
from xpnn.devices.cupy_standin import stand_in

MAX_EXAMPLES = int(os.environ.get("XPNN_RANDOM_EXAMPLES", "300"))
TORCH_EXAMPLES = max(1, MAX_EXAMPLES // 3)  # the torch passes against strict
CUPY_EXAMPLES = max(1, MAX_EXAMPLES // 3)  # the CuPy pass on its stand-in against strict
# on a GPU (each new kernel compiles, a few tenths of a second)
CUPY_GPU_EXAMPLES = int(os.environ.get("XPNN_RANDOM_CUPY_EXAMPLES", "30"))
SEED = os.environ.get("XPNN_RANDOM_SEED")  # set: other programs than CI's fixed sequence
MAX_VARIABLES, MAX_PLACEHOLDERS = 4, 3

# --------------------------------------------------------------------------- programs
# A shape is a tuple of ints; a negative entry -m stands for m times the batch size B.
# A program is plain data (it prints as the falsifying example) built by _build.


@dataclass
class Run:
    batch: int  # B for this run (the fixed one when the placeholders fix it)
    seed: int  # fed values
    layouts: tuple  # one per placeholder: index into _FLOAT_LAYOUTS / _INT_LAYOUTS
    fetch: int  # which fetch list
    to_numpy: bool
    change: tuple | None  # applied to both graphs before the run
    scribble: bool  # overwrite the NumPy results after checking them
    alias: bool  # feed one array to every placeholder of its shape
    bad: str | None  # "shape": feed x a wrong shape; "label": a label out of range


@dataclass
class Program:
    dtype: str | None  # Session(dtype=...)
    batch: object  # None: shape (None, d); int: fixed; "unknown": placeholder(shape=None)
    insts: list  # one node each
    terms: list  # loss terms
    penalty: tuple | None  # (node, weight): + weight * sum(d loss/d node ** 2)
    classes: int | None  # labels are drawn from range(classes)
    train: tuple  # how the optimizer steps are built
    extra: tuple  # node indices whose gradients are fetchable too
    fetches: list  # (structure, items)
    runs: list


def _dim(d):
    return d if d > 0 else 4 * -d  # a size to estimate magnitudes with


def _concrete(shape, batch):
    return tuple(d if d > 0 else -d * batch for d in shape)


def _broadcast(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


def _reduced(shape, axis, keepdims):
    axes = range(len(shape)) if axis is None else [a % len(shape) for a in axis]
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reshapes(shape):
    """New shapes (with one -1) that ``shape`` can take for every batch size."""
    batched = [d for d in shape if d < 0]
    if len(batched) > 1 or not shape:
        return []
    m = math.prod(abs(d) for d in shape)
    sign = -1 if batched else 1
    options = [((-1,), (sign * m,))]
    for c in (1, 2, 3, 4):
        if m % c == 0:
            options.append(((-1, c), (sign * (m // c), c)))
            options.append(((c, -1), (c, sign * (m // c))))
    for c, e in ((1, 2), (2, 2), (2, 3), (3, 1)):
        if m % (c * e) == 0:
            options.append(((-1, c, e), (sign * (m // (c * e)), c, e)))
    return options


def _matmul_shape(a, b):
    """The shape of a @ b (NumPy's rules), or None where they do not match."""
    if not a or not b or a[-1] != (b[0] if len(b) == 1 else b[-2]):
        return None
    batch = _broadcast(a[:-2], b[:-2])
    return None if batch is None else batch + a[-2:-1] + b[-1:] * (len(b) > 1)


def _operands(inst):
    """The node indices an op instruction reads."""
    kind = inst[0]
    if kind == "binary":
        return inst[2:4]
    if kind in ("unary", "scalar", "reduce", "softmax"):
        return inst[2:3]
    if kind == "matmul":
        return inst[1:3]
    return inst[1:2]  # transpose, reshape, clip


class _Gen:
    """Draws a program, tracking each node's shape and a rough magnitude so that values stay
    in a range where float32 comparisons mean something."""

    def __init__(self, draw, batch, mixed):
        self.draw, self.batch, self.mixed = draw, batch, mixed
        self.insts, self.shapes, self.scales, self.kinds, self.deps = [], [], [], [], []
        self.n_vars = self.n_phs = 0
        self.labels = self.label_classes = None

    def add(self, inst, shape, scale, kind="op", dep=None):
        if dep is None:
            dep = any(self.deps[i] for i in _operands(inst))
        self.insts.append(inst)
        self.shapes.append(tuple(shape))
        self.scales.append(scale)
        self.kinds.append(kind)
        self.deps.append(dep)
        i = len(self.insts) - 1
        if scale > 2:  # keep magnitudes near 1
            return self.add(("scalar", "multiply", i, round(1.0 / scale, 4), False), shape, 1.0)
        return i

    def pick(self, candidates):
        """One of ``candidates`` (node indices): the newest half the time (deep chains), else
        any (a DAG)."""
        candidates = sorted(candidates, reverse=True)
        if self.draw(st.booleans()):
            return candidates[0]
        return candidates[self.draw(st.integers(0, len(candidates) - 1))]

    def floats(self):
        return [i for i, k in enumerate(self.kinds) if k != "labels"]

    def placeholder(self, role, shape):
        self.n_phs += 1
        return self.add(("ph", role, shape), shape, 1.0, role, dep=False)

    def param(self, shape, variable=False):
        """A new Variable, or a Constant (always once there are MAX_VARIABLES). Under a fixed
        batch size, a batched ``shape`` is made concrete (a Variable of a whole layer's
        output shape)."""
        seed = self.draw(st.integers(0, 2**16))
        concrete = _concrete(shape, self.batch) if isinstance(self.batch, int) else shape
        if variable or (self.n_vars < MAX_VARIABLES and self.draw(st.integers(0, 4)) < 4):
            self.n_vars += 1
            dtype = self.draw(st.sampled_from([None, "float64"])) if self.mixed else None
            return self.add(("var", concrete, seed, dtype), shape, _std(concrete), "var", dep=True)
        return self.add(("const", concrete, seed), shape, _std(concrete), "const", dep=False)

    # ------------------------------------------------------------------ ops

    def op(self):
        kind = self.draw(
            st.sampled_from(
                [
                    "unary",
                    "unary",
                    "binary",
                    "binary",
                    "scalar",
                    "matmul",
                    "matmul",
                    "transpose",
                    "reshape",
                    "reduce",
                    "softmax",
                    "clip",
                    "fanout",
                    "tied",
                    "shared",
                    "lowrank",
                ]
            )
        )
        i = self.pick(self.floats())
        shape, s = self.shapes[i], self.scales[i]
        if kind == "tied":  # a Variable's transpose as an operand (tied weights)
            pool = [
                (j, v)
                for j in self.floats()
                for v in self.floats()
                if self.kinds[v] == "var"
                and len(self.shapes[v]) == 2
                and self.shapes[j]
                and self.shapes[j][-1] == self.shapes[v][1]
            ]
            if not pool:
                return None
            j, v = pool[self.draw(st.integers(0, len(pool) - 1))]
            t = self.add(("transpose", v, None), self.shapes[v][::-1], self.scales[v])
            out = _matmul_shape(self.shapes[j], self.shapes[t])
            k = self.shapes[v][1]
            return self.add(("matmul", j, t), out, self.scales[j] * self.scales[v] * k)
        if kind == "lowrank":  # x @ (V @ W), W made before V (factorized weights): W's
            # gradient V^T g reads V, which the same step updates, and updates first
            if len(shape) != 2 or shape[-1] < 0:
                return None
            w = self.param((self.draw(st.integers(1, 4)), self.draw(st.integers(1, 5))))
            v = self.param((shape[-1], self.shapes[w][0]))
            vw = self.add(("matmul", v, w), (shape[-1], self.shapes[w][1]), self.shapes[w][0])
            out = (shape[0], self.shapes[w][1])
            return self.add(("matmul", i, vw), out, s * self.scales[vw] * shape[-1])
        if kind == "shared":  # two Variables whose gradients are one node: x @ (A + B)
            if not shape or shape[-1] < 0:
                return None
            new = (shape[-1], self.draw(st.integers(1, 5)))
            a, b = self.param(new), self.param(new)
            total = self.add(("binary", "add", a, b), new, 1.0)
            return self.add(("matmul", i, total), _matmul_shape(shape, new), s * shape[-1])
        if kind == "fanout":  # views of a node and, after them, ops that could overwrite it
            if len(shape) == 2:
                self.add(("transpose", i, None), shape[::-1], s)
            if _reshapes(shape):
                new, out = _reshapes(shape)[0]
                self.add(("reshape", i, new), out, s)
            self.add(("unary", "relu", i), shape, s)
            return self.add(("scalar", "add", i, 1.0, False), shape, s + 1)
        if kind == "unary":
            name = self.draw(
                st.sampled_from(  # the ops with fast paths more often
                    [
                        "relu",
                        "sigmoid",
                        "relu",
                        "tanh",
                        "square",
                        "relu",
                        "negative",
                        "sigmoid",
                        "abs",
                        "exp",
                        "log1psq",
                        "logsig",
                    ]
                )
            )
            if name == "exp" and s > 1:
                i = self.add(("scalar", "multiply", i, round(1.0 / s, 4), False), shape, 1.0)
                s = 1.0
            scale = {
                "relu": s,
                "sigmoid": 1.0,
                "tanh": 1.0,
                "square": s * s,
                "negative": s,
                "abs": s,
                "exp": 3.0,
                "log1psq": 1 + math.log1p(s * s),
                "logsig": s + 1,
            }[name]
            return self.add(("unary", name, i), shape, scale)
        if kind == "scalar":
            name = self.draw(st.sampled_from(["add", "subtract", "multiply", "divide"]))
            c = self.draw(st.sampled_from([0.5, -1.5, 2.0, 3.0]))
            reflected = name != "divide" and self.draw(st.booleans())
            scale = s * abs(c) if name in ("multiply", "divide") else s + abs(c)
            return self.add(("scalar", name, i, c, reflected), shape, scale)
        if kind == "binary":
            name = self.draw(
                st.sampled_from(["add", "subtract", "multiply", "maximum", "minimum", "divide"])
            )
            pool = [j for j in self.floats() if _broadcast(shape, self.shapes[j]) is not None]
            if self.draw(st.booleans()):
                j = self.pick(pool)
            else:
                options = [()] + (
                    [shape[-1:], (1,) + shape[-1:]] if shape and shape[-1] > 0 else []
                )
                if shape and (isinstance(self.batch, int) or all(d > 0 for d in shape)):
                    options.append(shape)
                j = self.param(self.draw(st.sampled_from(options)))
            out = _broadcast(shape, self.shapes[j])
            if self.draw(st.booleans()):
                i, j = j, i
            a, b = self.scales[i], self.scales[j]
            scale = a * b if name == "multiply" else a + b if name != "divide" else a
            return self.add(("binary", name, i, j), out, scale)
        if kind == "matmul":
            if not shape:
                return None
            variables = [j for j, kind in enumerate(self.kinds) if kind == "var" and self.shapes[j]]
            if self.draw(st.integers(0, 3)) == 0:  # a product of Variables (the first is one)
                i = self.pick(variables)
                shape, s = self.shapes[i], self.scales[i]
            left = self.draw(st.integers(0, 2)) == 0  # the other operand on the left
            pool = [
                j
                for j in self.floats()
                if _matmul_shape(*((self.shapes[j], shape) if left else (shape, self.shapes[j])))
                is not None
            ]
            k = shape[0] if left and len(shape) < 2 else shape[-2] if left else shape[-1]
            if k > 0 and (not pool or self.draw(st.booleans())):
                c = self.draw(st.integers(1, 5))
                j = self.param(
                    self.draw(st.sampled_from([(c, k), (k,)] if left else [(k, c), (k,)]))
                )
            elif pool:
                j = self.pick(pool)
            else:
                return None
            a, b = (j, i) if left else (i, j)
            out = _matmul_shape(self.shapes[a], self.shapes[b])
            scale = s * self.scales[j] * _dim(k)  # correlated operands (x^T x) add up
            return self.add(("matmul", a, b), out, scale)
        if kind == "transpose":
            if len(shape) < 2:
                return None
            axes = None
            if len(shape) == 3:
                axes = self.draw(st.sampled_from([None, (0, 2, 1), (1, 0, 2)]))
            out = shape[::-1] if axes is None else tuple(shape[a] for a in axes)
            return self.add(("transpose", i, axes), out, s)
        if kind == "reshape":
            options = _reshapes(shape)
            if not options:
                return None
            new, out = self.draw(st.sampled_from(options))
            return self.add(("reshape", i, new), out, s)
        if kind == "reduce":
            name = self.draw(st.sampled_from(["sum", "mean", "max", "logsumexp"]))
            axes = [None] + {
                1: [(0,)],
                2: [(0,), (-1,), (0, 1)],
                3: [(0,), (-1,), (1,), (0, 2), (1, 2)],
            }.get(len(shape), [])
            axis = self.draw(st.sampled_from(axes))
            keepdims = self.draw(st.booleans())
            n = math.prod(
                _dim(d)
                for k, d in enumerate(shape)
                if axis is None or k in [a % len(shape) for a in axis]
            )
            scale = {"sum": s * n, "mean": s, "max": 2 * s, "logsumexp": s + math.log(n + 1)}[name]
            return self.add(
                ("reduce", name, i, axis, keepdims), _reduced(shape, axis, keepdims), scale
            )
        if kind == "softmax":
            if not shape:
                return None
            name = self.draw(st.sampled_from(["softmax", "log_softmax"]))
            axis = self.draw(st.sampled_from([-1, 0, 1][: len(shape)]))
            return self.add(("softmax", name, i, axis), shape, 1.0 if name == "softmax" else s + 2)
        low, high = self.draw(st.sampled_from([(-1.0, 1.0), (0.0, None), (None, 0.5)]))
        return self.add(("clip", i, low, high), shape, min(s, 1.0))

    # ------------------------------------------------------------------ loss terms

    def rows(self, dep=False):
        """Nodes of shape (B, k)."""
        return [
            i
            for i in self.floats()
            if len(self.shapes[i]) == 2
            and self.shapes[i][0] == -1
            and self.shapes[i][1] > 0
            and (self.deps[i] or not dep)
        ]

    def target(self, role, k):
        for i, kind in enumerate(self.kinds):
            if kind == role and self.shapes[i] == (-1, k):
                return i
        if self.n_phs < MAX_PLACEHOLDERS:
            return self.placeholder(role, (-1, k))
        return None

    def term(self, dep):
        name = self.draw(
            st.sampled_from(["sq", "mse", "sparse_ce", "softmax_ce", "ce", "bce", "sigmoid_bce"])
        )
        reduction = self.draw(st.sampled_from(["mean", "sum", "none"]))
        rows = self.rows(dep)
        if name != "sq" and rows:
            i = self.pick(rows)
            k = self.shapes[i][1]
            if self.scales[i] > 1:  # logits: log(softmax) and log(1 - sigmoid) stay finite
                i = self.add(
                    ("scalar", "multiply", i, round(1.0 / self.scales[i], 4), False),
                    self.shapes[i],
                    1.0,
                )
            if name == "sparse_ce":
                if self.labels is None and self.n_phs < MAX_PLACEHOLDERS:
                    self.labels = self.placeholder("labels", (-1,))
                    self.label_classes = k
                if self.labels is not None:
                    self.label_classes = min(self.label_classes, k)
                    return (name, self.labels, i, reduction)
            else:
                role = {"mse": "normal", "softmax_ce": "probs", "ce": "probs"}.get(name, "unit")
                t = self.target(role, k)
                if t is not None:
                    return (name, t, i, reduction)
        pool = [i for i in self.floats() if self.deps[i] or not dep]
        i = self.pick(pool)
        if self.scales[i] > 3:
            i = self.add(
                ("scalar", "multiply", i, round(1.0 / self.scales[i], 4), False),
                self.shapes[i],
                1.0,
            )
        return ("sq", None, i, reduction)


def _optimizer(draw):
    kind = draw(
        st.sampled_from(
            ["sgd", "momentum", "adam", "nesterov", "sgd", "momentum", "adam", "custom", "assign"]
        )
    )
    lr = draw(st.sampled_from([0.01, 0.05, 0.1]))
    if kind == "sgd":
        return ("sgd", lr)
    if kind == "custom":
        return ("custom", lr, draw(st.sampled_from([0.0, 0.9])))
    if kind == "assign":
        return ("assign", lr)
    if kind in ("momentum", "nesterov"):
        return ("momentum", lr, draw(st.sampled_from([0.9, 0.5, 0.0])), kind == "nesterov")
    # epsilon well above rounding noise: Adam scales a gradient that is 0 in exact arithmetic
    # (a shift of every logit under a softmax) up to lr whatever its rounding
    return (
        "adam",
        lr,
        draw(st.sampled_from([0.9, 0.5])),
        draw(st.sampled_from([0.999, 0.9])),
        1e-3,
    )


_FLOAT_LAYOUTS = ["C", "F", "cols", "rows", "reversed", "float64", "readonly", "list", "T"]
_INT_LAYOUTS = ["C", "strided", "int32", "list", "float", "readonly"]
_CHANGES = ["lr", "momentum", "nesterov", "set_value"]


@st.composite
def programs(draw):
    dtype = draw(st.sampled_from([None, None, None, "float64"]))
    batch = draw(st.sampled_from([None, None, "fixed", "unknown"]))
    if batch == "fixed":
        batch = draw(st.integers(1, 5))
    mode = draw(
        st.sampled_from(
            ["apply", "minimize", "apply", "transformed", "split", "split_apply", "two"]
        )
    )
    opts = (_optimizer(draw),) + (
        (_optimizer(draw),) if mode in ("split", "split_apply", "two") else ()
    )
    gen = _Gen(draw, batch, mixed=dtype is None and draw(st.integers(0, 4)) == 0)
    x = gen.placeholder("x", (-1, draw(st.integers(1, 5))))
    if draw(st.integers(0, 3)) == 0:
        gen.placeholder("x", (-1, draw(st.integers(1, 5))))
    # a wide layer sometimes: bias gradients of 64 columns or more are summed by BLAS
    width = (
        draw(st.sampled_from([64, 70])) if draw(st.integers(0, 7)) == 0 else draw(st.integers(1, 5))
    )
    w = gen.param((gen.shapes[x][1], width), variable=True)
    h = gen.add(("matmul", x, w), (-1, width), gen.scales[w] * gen.shapes[x][1])
    if draw(st.booleans()):  # a bias; under a fixed batch size maybe one per entry
        shapes = [(width,), (1, width)] + [(-1, width)] * isinstance(batch, int)
        gen.add(
            ("binary", "add", h, gen.param(draw(st.sampled_from(shapes)))),
            (-1, width),
            gen.scales[h] + 0.7,
        )
    for _ in range(draw(st.integers(0, 8))):
        gen.op()
    terms = [gen.term(dep=True)]
    for _ in range(draw(st.integers(0, 2))):
        terms.append(gen.term(dep=False))
    read = {
        j for inst in gen.insts if inst[0] not in ("ph", "var", "const") for j in _operands(inst)
    } | {t[2] for t in terms}
    sinks = tuple(i for i, k in enumerate(gen.kinds) if k == "op" and i not in read)
    if sinks and draw(st.booleans()):  # put (nearly) every op on the loss's path
        terms.append(("sinks", None, sinks, "mean"))
    weights = tuple(draw(st.sampled_from([1.0, 0.5, 2.0])) for _ in terms)
    terms = [t + (w,) for t, w in zip(terms, weights)]
    penalty = None  # a gradient penalty (second-order gradients; not through fused CE grads)
    if all(t[0] not in ("sparse_ce", "bce") for t in terms) and draw(st.integers(0, 4)) == 0:
        penalty = (gen.pick(gen.floats()), draw(st.sampled_from([0.1, 0.5])))

    split = tuple(draw(st.booleans()) for _ in range(MAX_VARIABLES))
    # "self": a Variable as its own gradient (weight decay), "other": another Variable of its
    # shape as its gradient (else itself); NumPy updates these steps portably
    transform = tuple(
        draw(st.sampled_from(["none", "scale", "clip", "self", "other"]))
        for _ in range(MAX_VARIABLES)
    )
    train = (mode, opts, split, transform)
    extra = tuple(draw(st.lists(st.sampled_from(gen.floats()), max_size=2, unique=True)))

    vars_ = [i for i, k in enumerate(gen.kinds) if k == "var"]
    item = st.one_of(
        st.tuples(st.just("step"), st.integers(0, 1)),
        st.tuples(st.just("loss"), st.just(0)),
        st.tuples(st.just("node"), st.sampled_from(range(len(gen.insts)))),
        st.tuples(st.just("grad"), st.integers(0, MAX_VARIABLES - 1)),
        st.tuples(st.just("extra"), st.integers(0, 1)),
        st.tuples(st.just("var"), st.sampled_from(vars_)),
        st.tuples(st.just("gnorm"), st.just(0)),
        st.tuples(st.just("slot"), st.integers(0, 3)),
    )
    fetches = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["list", "tuple", "dict", "nested", "single", "subset"]),
                st.lists(item, min_size=1, max_size=6),
            ),
            min_size=1,
            max_size=3,
        )
    )
    n = len(gen.insts)
    fetches = [("list", [("step", 0)])] + [  # a plain training step first
        # "subset": the step and about half the nodes: views, their bases, Variables...
        (
            "list",
            [("step", 0)]
            + [
                ("node", k)
                for k, keep in enumerate(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
                if keep
            ],
        )
        if structure == "subset"
        else (structure, items)
        for structure, items in fetches
    ]

    runs = []
    for r in range(draw(st.integers(2, 4))):
        change = None
        if r and draw(st.booleans()):
            change = (draw(st.sampled_from(_CHANGES)), draw(st.integers(0, 2**16)))
        runs.append(
            Run(
                batch=batch
                if isinstance(batch, int)
                else draw(st.sampled_from([1, 2, 3, 4, 5, 6] * 2 + [0])),
                seed=draw(st.integers(0, 2**16)),
                layouts=tuple(
                    draw(st.integers(0, len(_FLOAT_LAYOUTS) - 1)) for _ in range(MAX_PLACEHOLDERS)
                ),
                fetch=draw(st.integers(0, len(fetches) - 1)),
                to_numpy=draw(st.booleans()),
                change=change,
                scribble=draw(st.booleans()),
                alias=draw(st.integers(0, 3)) == 0,
                bad=draw(st.sampled_from([None] * 10 + ["shape", "label"])),
            )
        )
    return Program(
        dtype, batch, gen.insts, terms, penalty, gen.label_classes, train, extra, fetches, runs
    )


# --------------------------------------------------------------------------- building


def _std(shape):
    """Initial values' size: 0.7 / sqrt(fan in) for matrices, so products stay near 1."""
    return 0.7 / math.sqrt(abs(shape[0])) if len(shape) == 2 else 0.7


def _initial(shape, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * _std(shape)).astype(dtype)


_UNARY = {
    "relu": xn.relu,
    "sigmoid": xn.sigmoid,
    "tanh": xn.tanh,
    "square": xn.square,
    "negative": xn.negative,
    "abs": xn.abs,
    "exp": xn.exp,
    "log1psq": lambda a: xn.log(xn.square(a) + 1.0),
    "logsig": lambda a: xn.log(xn.sigmoid(a)),
}
_BINARY = {
    "add": xn.add,
    "subtract": xn.subtract,
    "multiply": xn.multiply,
    "maximum": xn.maximum,
    "minimum": xn.minimum,
    "divide": lambda a, b: xn.divide(a, xn.square(b) + 1.0),
}
_REDUCE = {
    "sum": xn.reduce_sum,
    "mean": xn.reduce_mean,
    "max": xn.reduce_max,
    "logsumexp": xn.logsumexp,
}


def _node(inst, nodes, prog):
    kind = inst[0]
    if kind == "ph":
        _, role, shape = inst
        if prog.batch == "unknown":
            shape = None
        elif prog.batch is not None:
            shape = _concrete(shape, prog.batch)
        else:
            shape = tuple(None if d < 0 else d for d in shape)
        return xn.placeholder(
            dtype="int64" if role == "labels" else None, shape=shape, name=f"{role}{len(nodes)}"
        )
    if kind == "var":
        _, shape, seed, dtype = inst
        return xn.Variable(_initial(shape, seed, dtype or np.float32), name=f"v{len(nodes)}")
    if kind == "const":
        return xn.constant(_initial(inst[1], inst[2]))
    if kind == "unary":
        return _UNARY[inst[1]](nodes[inst[2]])
    if kind == "scalar":
        _, name, i, c, reflected = inst
        return _BINARY[name](c, nodes[i]) if reflected else getattr(xn, name)(nodes[i], c)
    if kind == "binary":
        return _BINARY[inst[1]](nodes[inst[2]], nodes[inst[3]])
    if kind == "matmul":
        return xn.matmul(nodes[inst[1]], nodes[inst[2]])
    if kind == "transpose":
        return xn.transpose(nodes[inst[1]], inst[2])
    if kind == "reshape":
        return xn.reshape(nodes[inst[1]], inst[2])
    if kind == "reduce":
        _, name, i, axis, keepdims = inst
        return _REDUCE[name](nodes[i], axis=axis, keepdims=keepdims)
    if kind == "softmax":
        _, name, i, axis = inst
        return getattr(xn, name)(nodes[i], axis=axis)
    if kind == "clip":
        return xn.clip(nodes[inst[1]], inst[2], inst[3])
    raise AssertionError(inst)


def _term(term, nodes):
    name, t, i, reduction, weight = term
    losses = xn.losses
    if name == "sinks":
        value = xn.add_n([xn.reduce_mean(xn.square(nodes[k])) for k in i])
    elif name == "sq":
        value = xn.square(nodes[i])
        value = {"mean": xn.reduce_mean, "sum": xn.reduce_sum}.get(reduction, lambda v: v)(value)
    elif name == "mse":
        value = losses.mean_squared_error(nodes[i], nodes[t], reduction)
    elif name == "sparse_ce":
        value = losses.sparse_softmax_cross_entropy(nodes[t], nodes[i], reduction)
    elif name == "softmax_ce":
        value = losses.softmax_cross_entropy(nodes[t], nodes[i], reduction)
    elif name == "ce":
        value = losses.cross_entropy(nodes[t], xn.softmax(nodes[i]), reduction)
    elif name == "bce":
        value = losses.binary_cross_entropy(xn.sigmoid(nodes[i]), nodes[t], reduction)
    else:
        value = losses.sigmoid_binary_cross_entropy(nodes[i], nodes[t], reduction)
    if reduction == "none":
        value = xn.reduce_mean(value)
    return value if weight == 1.0 else value * weight


class _UserMomentum(xn.train.Optimizer):
    """A user's optimizer (momentum 0: plain SGD): no NumPy fast path, so NumPy sessions
    apply its portable update."""

    def __init__(self, learning_rate, momentum):
        super().__init__(learning_rate)
        self.momentum = momentum

    def _slots(self, variable):
        return [self._zeros(variable, "velocity")] if self.momentum else []

    def update(self, xp, param, grad, *velocity):
        if not velocity:
            return (param - self.learning_rate * grad,)
        v = self.momentum * velocity[0] + grad
        return param - self.learning_rate * v, v


class _Assign(xn.train.Optimizer):
    """A user's step that sets each Variable to its "gradient" (a target network copying the
    online one's weights): the new value is one of the update's inputs."""

    def update(self, xp, param, grad):
        return (grad,)


def _make_optimizer(spec):
    if spec[0] == "custom":
        return _UserMomentum(spec[1], spec[2])
    if spec[0] == "assign":
        return _Assign(spec[1])
    if spec[0] == "sgd":
        return xn.train.GradientDescentOptimizer(spec[1])
    if spec[0] == "momentum":
        return xn.train.MomentumOptimizer(spec[1], spec[2], use_nesterov=spec[3])
    return xn.train.AdamOptimizer(spec[1], spec[2], spec[3], spec[4])


@dataclass
class Built:
    nodes: list
    loss: object
    variables: list  # every Variable of the graph, optimizer slots too
    optimizers: list
    fetch_lists: list


def _build(prog):
    nodes = []
    for inst in prog.insts:
        nodes.append(_node(inst, nodes, prog))
    terms = [_term(t, nodes) for t in prog.terms]
    loss = terms[0] if len(terms) == 1 else xn.add_n(terms)
    if prog.penalty:
        i, weight = prog.penalty
        (g,) = xn.gradients(loss, [nodes[i]])
        if g is not None:
            loss = loss + weight * xn.reduce_sum(xn.square(g))
    trainable = [n for n in nodes if isinstance(n, xn.Variable)]
    grads = xn.gradients(loss, trainable)
    pairs = [(g, v) for g, v in zip(grads, trainable) if g is not None]
    mode, specs, split, transform = prog.train
    optimizers = [_make_optimizer(s) for s in specs]
    if mode == "transformed":
        shaped = []
        for k, (g, v) in enumerate(pairs):
            how = transform[k]
            if how == "other":
                g = next((u for _, u in pairs if u is not v and u.shape == v.shape), v)
            shaped.append(
                (
                    g * 0.5
                    if how == "scale"
                    else xn.clip(g, -0.5, 0.5)
                    if how == "clip"
                    else v
                    if how == "self"
                    else g,
                    v,
                )
            )
        steps = [optimizers[0].apply_gradients(shaped)]
    elif mode in ("split", "split_apply"):
        groups = [
            [(g, v) for k, (g, v) in enumerate(pairs) if split[k] == side] for side in (True, False)
        ]
        steps = [
            opt.apply_gradients(group)
            if mode == "split_apply"
            else opt.minimize(loss, var_list=[v for _, v in group])
            for opt, group in zip(optimizers, groups)
            if group
        ]
    elif mode == "apply":  # the gradients fetched below are the ones the step reads
        steps = [optimizers[0].apply_gradients(pairs)]
    elif mode == "two":  # two steps over the same Variables, fetched in different runs
        steps = [optimizers[0].apply_gradients(pairs), optimizers[1].minimize(loss)]
    else:  # minimize: gradient nodes of its own
        steps = [optimizers[0].minimize(loss)]
    grads = [g for g, _ in pairs]
    extra = [g for g in xn.gradients(loss, [nodes[i] for i in prog.extra]) if g is not None]
    gnorm = xn.reduce_sum(grads[0] * grads[0])

    def item(spec):
        kind, k = spec
        if kind == "step":
            return steps[k % len(steps)]
        if kind == "loss":
            return loss
        if kind == "node":
            return nodes[k]
        if kind == "grad":
            return grads[k % len(grads)]
        if kind == "extra":
            return extra[k % len(extra)] if extra else loss
        if kind == "var":
            return nodes[k]
        if kind == "slot":
            slots = [v for v in loss.graph.variables if not v.trainable]
            return slots[k % len(slots)] if slots else loss
        return gnorm

    fetch_lists = []
    for structure, items in prog.fetches:
        chosen = []
        for spec in items:  # one step per Variable: a Variable is updated once per run
            node = item(spec)
            if not (
                isinstance(node, xn.Update)
                and any(node is c or mode == "two" and isinstance(c, xn.Update) for c in chosen)
            ):
                chosen.append(node)
        if structure == "single" or len(chosen) == 1:
            fetch_lists.append(chosen[0])
        elif structure == "tuple":
            fetch_lists.append(tuple(chosen))
        elif structure == "dict":
            fetch_lists.append({f"f{k}": n for k, n in enumerate(chosen)})
        elif structure == "nested":
            fetch_lists.append([chosen[0], chosen[1:]])
        else:
            fetch_lists.append(chosen)
    graph = loss.graph
    return Built(nodes, loss, list(graph.variables), optimizers, fetch_lists)


# --------------------------------------------------------------------------- feeds


def _float_feed(rng, role, shape):
    if role == "probs":
        p = rng.uniform(0.0, 1.0, shape)
        if shape[0]:
            p[0] = 0.0
            p[0, rng.integers(shape[1])] = 1.0  # a one-hot row
        return p / p.sum(axis=1, keepdims=True)
    if role == "unit":
        p = rng.uniform(0.0, 1.0, shape)
        p.reshape(-1)[: min(2, p.size)] = [0.0, 1.0][: min(2, p.size)]
        return p
    return rng.standard_normal(shape)


def _layout(value, layout, session_dtype):
    """``value`` (float64, C-ordered) in ``layout``, with the values kept."""
    dtype = np.float64 if (layout == "float64") != (session_dtype == "float64") else np.float32
    if layout == "list":
        return value.astype(dtype).tolist()
    if layout == "F":
        return np.asfortranarray(value, dtype)
    if layout == "T":
        return np.ascontiguousarray(value.T, dtype).T
    if layout == "cols":
        wide = np.zeros((value.shape[0], 2 * value.shape[1]), dtype)
        wide[:, ::2] = value
        return wide[:, ::2]
    if layout == "rows":
        tall = np.zeros((2 * value.shape[0], value.shape[1]), dtype)
        tall[::2] = value
        return tall[::2]
    if layout == "reversed":
        return np.ascontiguousarray(value[::-1], dtype)[::-1]
    out = np.ascontiguousarray(value, dtype)
    if layout == "readonly":
        out.flags.writeable = False
    return out


def _int_layout(labels, layout):
    if layout == "list":
        return labels.tolist()
    if layout == "int32":
        return labels.astype(np.int32)
    if layout == "float":  # whole numbers as floats: accepted for an integer placeholder
        return labels.astype(np.float64)
    if layout == "strided":
        wide = np.zeros(2 * labels.size, np.int64)
        wide[::2] = labels
        return wide[::2]
    labels = labels.copy()
    labels.flags.writeable = layout != "readonly"
    return labels


def _feeds(prog, run):
    """{instruction index: fed value}."""
    rng = np.random.default_rng(run.seed)
    feeds, by_shape = {}, {}
    placeholders = [(i, inst) for i, inst in enumerate(prog.insts) if inst[0] == "ph"]
    for (i, (_, role, shape)), layout in zip(placeholders, run.layouts):
        shape = _concrete(shape, run.batch)
        if role == "labels":
            labels = rng.integers(0, prog.classes, shape)
            if run.bad == "label" and labels.size:
                labels[-1] = -1 if run.seed % 2 else prog.classes
            feeds[i] = _int_layout(labels, _INT_LAYOUTS[layout % len(_INT_LAYOUTS)])
            continue
        if run.bad == "shape" and i == 0:
            shape = shape[:-1] + (shape[-1] + 1,)
        if run.alias and role == "x" and shape in by_shape:
            feeds[i] = by_shape[shape]
            continue
        feeds[i] = _layout(_float_feed(rng, role, shape), _FLOAT_LAYOUTS[layout], prog.dtype)
        by_shape.setdefault(shape, feeds[i])
    return feeds


# --------------------------------------------------------------------------- checking


def _flat(out):
    if isinstance(out, dict):
        return [v for k in sorted(out) for v in _flat(out[k])]
    if isinstance(out, (list, tuple)):
        return [v for o in out for v in _flat(o)]
    return [out]


def _assert_close(got, want, f64, what):
    got, want = xn.to_numpy(got), xn.to_numpy(want)
    got_a, want_a = np.asarray(got), np.asarray(want)
    assert got_a.shape == want_a.shape, (what, got_a.shape, want_a.shape)
    assert got_a.dtype == want_a.dtype, (what, got_a.dtype, want_a.dtype)
    finite = want_a[np.isfinite(want_a)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    tol = 1e-9 if f64 else 1e-4
    np.testing.assert_allclose(got_a, want_a, rtol=tol, atol=tol * scale, err_msg=what)


def _apply_change(change, built):
    """Change the optimizers between runs; or the index of a Variable to set."""
    what, seed = change
    rng = np.random.default_rng(seed)
    if what in ("lr", "momentum", "nesterov"):
        for opt in built.optimizers:
            if what == "lr":
                opt.learning_rate = float(rng.choice([0.02, 0.2]))
            elif isinstance(opt, xn.train.MomentumOptimizer):
                if what == "momentum":
                    opt.momentum = float(rng.choice([0.0, 0.3, 0.95]))
                else:
                    opt.use_nesterov = not opt.use_nesterov
        return None
    return seed % len(built.variables)


def torch_session(**kw):
    return xn.Session(backend="torch", device="cpu", **kw)


def _writable(value):
    """A NumPy array through which ``value`` (a fetched array) can be read and written: itself,
    or a CPU tensor's NumPy view; None for anything else."""
    if isinstance(value, np.ndarray):
        return value
    if array_api_compat.is_torch_array(value) and value.device.type == "cpu":
        return value.numpy()
    return None


def check_program(prog, makers=(numpy_session, strict_session)):
    """Run ``prog`` in two Sessions (the fast path's, the portable path's: by default NumPy's
    and array-api-strict's) and compare after every run."""
    kw = {"dtype": prog.dtype} if prog.dtype else {}
    f64 = prog.dtype == "float64"
    sides = []
    for make in makers:
        with xn.Graph().as_default():
            built = _build(prog)
            sides.append((built, make(**kw)))
    handed = []  # (NumPy result, its value when handed out, what)
    for r, run in enumerate(prog.runs):
        if run.change:
            for built, _ in sides:
                k = _apply_change(run.change, built)
            if k is not None:  # a new array for a Variable: random, or an optimizer slot's own
                (built_f, sess_f), (built_p, sess_p) = sides
                value = _initial(built_f.variables[k].shape, run.change[1])
                if not built_f.variables[k].trainable:
                    value = xn.to_numpy(sess_p.get_value(built_p.variables[k]))
                sess_f.set_value(built_f.variables[k], value)
                sess_p.set_value(built_p.variables[k], value)
        host = _feeds(prog, run)
        originals = {i: np.array(v, copy=True) for i, v in host.items()}
        results, errors = [], []
        for built, sess in sides:
            feed = {built.nodes[i]: v for i, v in host.items()}
            fetches = built.fetch_lists[run.fetch]
            try:
                with warnings.catch_warnings():
                    if not run.batch:  # means of empty batches: NaN, as on both backends
                        warnings.simplefilter("ignore", RuntimeWarning)
                    with np.errstate(all="ignore" if not run.batch else "warn", under="ignore"):
                        out = sess.run(fetches, feed, to_numpy=run.to_numpy)
                results.append(_flat(out))
                errors.append(None)
            except (ValueError, TypeError) as exc:
                if not run.bad and run.batch:  # (an empty batch has no max)
                    raise
                results.append([])
                errors.append(exc)
            for i, v in host.items():
                np.testing.assert_array_equal(
                    np.asarray(v), originals[i], err_msg=f"run {r}: fed array {i} changed"
                )
        assert type(errors[0]) is type(errors[1]), (r, errors)
        fast, portable = results
        assert len(fast) == len(portable)
        for k, (f, p) in enumerate(zip(fast, portable)):
            what = f"run {r}: fetch {k}"
            if p is None:
                assert f is None, what
                continue
            _assert_close(f, p, f64, what)
        (built_f, sess_f), (built_p, sess_p) = sides
        for vf, vp in zip(built_f.variables, built_p.variables):
            value = sess_f.get_value(vf)
            _assert_close(value, sess_p.get_value(vp), f64, f"run {r}: Variable {vf.label}")
            if run.scribble and isinstance(value, np.ndarray):  # get_value hands out a copy
                value[...] = -7.0  # too, 0-d ones included
            elif not isinstance(value, np.ndarray):  # immutable (JAX): it must stay valid
                handed.append((value, xn.to_numpy(value), f"run {r}: {vf.label} got"))
        for array, value, what in handed:  # (a JAX array a later step donated: deleted)
            np.testing.assert_array_equal(xn.to_numpy(array), value,
                                          err_msg=f"after run {r}: {what} changed")
        fed = [np.asarray(v) for v in host.values()]
        for k, f in enumerate(fast):
            w = _writable(f)
            if f is not None and w is None:  # immutable (JAX): it must stay valid
                handed.append((f, xn.to_numpy(f), f"run {r}: fetch {k}"))
            if w is None or any(np.shares_memory(w, v) for v in fed):
                continue
            f = w
            if run.scribble and f.flags.writeable:
                f[...] = -7.0  # the caller owns it: nothing the session keeps may change
            else:
                handed.append((f, f.copy(), f"run {r}: fetch {k}"))


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _seeded(test):
    return test if SEED is None else seed(int(SEED))(test)


@_seeded
@settings(
    derandomize=SEED is None,
    deadline=None,
    max_examples=MAX_EXAMPLES,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(programs())
def test_random_program_matches_strict(prog):
    check_program(prog)


# --------------------------------------------------------------------------- the JAX pass
# The same programs on JAX, compiled (one jax.jit call a run) against JAX's eager portable
# path: each run of a new shape compiles, so fewer of them (XPNN_RANDOM_JAX_EXAMPLES). The
# reference is JAX's own eager path, not array-api-strict: on JAX a label out of range is
# not checked (a device array) and gives NaN, on both of JAX's paths alike.
JAX_EXAMPLES = int(os.environ.get("XPNN_RANDOM_JAX_EXAMPLES", "30"))


def _no_jax_x64():
    try:
        import jax
    except ImportError:
        return "jax is not installed"
    if not jax.config.jax_enable_x64:
        return "JAX's x64 mode is off: run with --xp jax (which turns it on) to test the JAX pass"
    return None


def jax_jit_session(**kw):
    return xn.Session(backend="jax", **kw)


def jax_eager_session(**kw):
    return xn.Session(backend="jax", passes=False, **kw)


@pytest.mark.skipif(_no_jax_x64() is not None, reason=str(_no_jax_x64()))
@_seeded
@settings(
    derandomize=SEED is None,
    deadline=None,
    max_examples=JAX_EXAMPLES,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(programs())
def test_random_program_on_jax_compiled_matches_jax_eager(prog):
    check_program(prog, (jax_jit_session, jax_eager_session))


@pytest.mark.skipif(not _torch_installed(), reason="torch is not installed")
@_seeded
@settings(
    derandomize=SEED is None,
    deadline=None,
    max_examples=TORCH_EXAMPLES,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(programs())
def test_random_program_through_the_torch_passes_matches_strict(prog):
    check_program(prog, (torch_session, strict_session))


# --------------------------------------------------------------------------- the CuPy pass
# On the stand-in (NumPy arrays, the kernels' traced statements run by the reference fuser)
# against strict; the stand-in reads labels on the host, so a bad label raises on both.


def cupy_stand_in_session(**kw):
    return xn.Session(device=stand_in(reads_labels=True), **kw)


_CUPY_SETTINGS = settings(
    derandomize=SEED is None,
    deadline=None,
    max_examples=CUPY_EXAMPLES,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@_seeded
@_CUPY_SETTINGS
@given(programs())
def test_random_program_through_the_cupy_pass_stand_in_matches_strict(prog):
    check_program(prog, (cupy_stand_in_session, strict_session))


def _cupy_sessions():
    """(a Session with the CuPy pass, one on the same GPU with the portable plan)."""
    from xpnn import devices
    from xpnn.devices.cupy import CupyDevice

    class Portable(CupyDevice):
        def compile(self, plan, session):
            return session.portable(plan)

    gpu = devices.resolve("cuda")
    portable = Portable(gpu.name, gpu.xp, gpu.device)
    return (lambda **kw: xn.Session(device=gpu, **kw),
            lambda **kw: xn.Session(device=portable, **kw))


@_seeded
@settings(_CUPY_SETTINGS, max_examples=CUPY_GPU_EXAMPLES)
@given(programs())
def _cupy_pass_matches_cupy_portable(prog):
    check_program(prog, _cupy_sessions())


def test_random_program_through_the_cupy_pass_on_a_gpu_matches_cupy_portable():
    reason = _unavailable("cupy")
    if reason:
        skip_or_fail(f"cupy: {reason}", cupy=True)
    _cupy_pass_matches_cupy_portable()


# --------------------------------------------------------------------------- regressions
# Bugs the random programs found, shrunk. A portable (not in-place) update left a 0-d
# Variable holding a NumPy scalar on NumPy (NumPy arithmetic gives 0-d results as scalars):
# get_value returned a read-only scalar, and a later in-place update raised TypeError after
# writing the Variables it updated first. Session._commit now stores a 0-d array.


def _scalar_after_portable_update(make):
    with xn.Graph().as_default():
        w = xn.Variable(1.0, name="w")  # a scalar Variable
        v = xn.Variable([1.0, 2.0], name="v")
        loss = xn.square(w - 3.0) + xn.reduce_sum(xn.square(v))
        user = _UserMomentum(0.1, 0.0).minimize(loss, [w])  # portable on NumPy
        sgd = xn.train.GradientDescentOptimizer(0.1).minimize(loss, [w, v])  # in place
        sess = make()
        sess.run(user)  # w = 1 + 0.1 * 4 = 1.4
        held = sess.get_value(w)
        error = None
        try:
            sess.run(sgd)  # w = 1.4 + 0.1 * 3.2 = 1.72; v = 0.8 * [1, 2]
        except Exception as exc:  # noqa: BLE001 - compared below
            error = exc
        return held, error, [xn.to_numpy(sess.get_value(u)) for u in (w, v)]


def test_scalar_variable_updated_in_place_after_a_portable_update():
    _, fast_error, fast = _scalar_after_portable_update(numpy_session)
    _, strict_error, portable = _scalar_after_portable_update(strict_session)
    assert strict_error is None
    assert fast_error is None, repr(fast_error)  # TypeError: 'numpy.float32' object does not...
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-6)
    np.testing.assert_allclose(fast[0], 1.72, rtol=1e-6)


def test_get_value_of_a_scalar_variable_after_a_portable_update_is_an_array():
    held, _, _ = _scalar_after_portable_update(numpy_session)
    assert isinstance(held, np.ndarray), type(held)  # numpy.float32
    held[...] = 0.0  # a copy the caller owns
