"""NumPy kernels for ops: the same arithmetic as the portable ``forward`` in the same order
(wide bias sums excepted: BLAS adds them in its own order), minus the array-API wrapper
layers; an ``inplace`` kernel may also write its result into its first input when the plan
proved that buffer dead and unshared (``ownership``).
``tests/devices/numpy/test_fastpath.py`` checks each against the portable path on the same
inputs.

>>> import xpnn as xn
>>> from xpnn.devices.numpy import kernels
>>> kernels.has_fast_forward(xn.ops.MatMul)
True
"""

from __future__ import annotations

import math

import numpy as np

from ... import ops
from ...ops import random
from ...passes import KernelTable
from ...plan import Description
from . import threads

FORWARD = KernelTable()  # op class -> make(op, portable) -> fn(*values)
INPLACE = KernelTable()  # op class -> make(op, portable) -> fn(*values) overwriting values[0]
# Op classes whose fast forward returns a buffer no other slot shares (so a later step may
# overwrite it). Views (reshape, transpose, broadcast) and identity returns are left out.
FRESH: set = set()


def _constants(value) -> dict:
    """dtype -> ``value`` as a read-only 0-d array of that floating dtype. A kernel passes
    it where a Python float would do: the same number in the array's dtype (a Python float
    is cast to it), so the same result, without the ufunc converting a Python scalar at
    every call (which a small array's ufunc call takes longer for than its loop)."""
    kept = {}
    for name in ("float16", "float32", "float64"):
        kept[np.dtype(name)] = array = np.array(value, name)
        array.flags.writeable = False
    return kept


_ONE, _ZERO, _TINY = _constants(1.0), _constants(0.0), _constants(1e-12)
_MINUS_ONE = _constants(-1.0)


def has_fast_forward(op_class) -> bool:
    return op_class in FORWARD


def forward_fn(op, donate: bool, portable, **options):
    """The callable a NumPy plan runs for ``op``; ``portable`` is ``fn(*values)`` fallback."""
    table = INPLACE if donate and type(op) in INPLACE else FORWARD
    return table.kernel(op, portable, **options)


def swap_in(plan, facts, skip=(), options=None) -> None:
    """Give each value step its NumPy kernel, one that writes into its first input where
    that input dies here and the plan owns it (``facts.owned``); ``options``: more keyword
    arguments of a slot's kernel maker."""
    options = options or {}
    for index, step in enumerate(plan.steps):
        if step.kind == "describe" and step.fn == Description.of:
            step.fn = described
        if step.kind != "value" or step.out in skip:
            continue
        ins = step.inputs
        donate = bool(ins) and ins.count(ins[0]) == 1 and facts.owned(ins[0], index)
        step.fn = forward_fn(step.op, donate, step.fn, **options.get(step.out, {}))


def fast(*classes, inplace=False, fresh=True):
    def register(make):
        (INPLACE if inplace else FORWARD).fast(*classes)(make)
        if fresh:
            FRESH.update(classes)
        return make

    return register


# ----------------------------------------------------------------------------- elementwise


def _binary(ufunc):
    def make(op, portable):
        def forward(a, b):
            same = a.dtype == b.dtype and (a.dtype.kind == "f" or ufunc is not np.divide)
            return ufunc(a, b) if same else portable(a, b)  # integer division: TF1's dtype

        return forward

    def make_inplace(op, portable):
        def forward(a, b):
            if (type(a) is np.ndarray and a.dtype == b.dtype and a.dtype.kind == "f"
                    and a.ndim >= b.ndim):
                try:
                    return ufunc(a, b, out=a)
                except ValueError:  # b broadcasts a to a bigger shape: cannot write into a
                    return ufunc(a, b)
            return portable(a, b)

        return forward

    return make, make_inplace


for _cls, _ufunc in [(ops.Add, np.add), (ops.Subtract, np.subtract),
                     (ops.Multiply, np.multiply), (ops.Divide, np.divide)]:
    _make, _make_inplace = _binary(_ufunc)
    fast(_cls)(_make)
    fast(_cls, inplace=True)(_make_inplace)


@fast(ops.Rsqrt)
def _rsqrt(op, portable):
    def forward(x):
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            return portable(x)
        out = np.sqrt(x)
        return np.divide(1.0, out, out=out)  # one temporary instead of two

    return forward


class _Kept:
    """Arrays made once per key by ``make(key)`` and kept for later runs (a few keys: a last,
    smaller batch is a second shape)."""

    def __init__(self, make, keep=4):
        self.make, self.keep, self.arrays = make, keep, {}

    def get(self, key):
        array = self.arrays.get(key)
        if array is None:
            if len(self.arrays) >= self.keep:  # keys keep changing: keep only the newest
                self.arrays.clear()
            array = self.arrays[key] = self.make(key)
        return array


def _filled(value):
    """A _Kept of read-only arrays of ``value``, keyed by (shape, dtype)."""

    def make(key):
        shape, dtype = key
        array = np.full(shape, value, dtype)
        array.flags.writeable = False
        return array

    return _Kept(make)


_ROW = 1 << 15  # entries of a broadcast operand's row at most (the per-row loop's length)


def _row_axes(shape) -> int:
    """How many trailing axes, never the first, a row of at most ``_ROW`` entries spans
    (at least one): a whole image of a conv activation, a row of a dense one."""
    k, size = 1, shape[-1]
    while k < len(shape) - 1 and size * shape[-k - 1] <= _ROW:
        k, size = k + 1, size * shape[-k - 1]
    return k


def _rowwise(ufunc, x, row, out=None):
    """ufunc(x, row) for a C-ordered x of rank >= 2, ``row`` broadcast along its first axis:
    split over that axis on every core where x is large (``threads``)."""
    if x.size < threads.MIN_ELEMENTS:
        return ufunc(x, row, out=out)
    if out is None:
        out = np.empty(x.shape, np.result_type(x, row))
    threads.over_batch(lambda a, b: ufunc(x[a:b], row, out=out[a:b]), x.shape[0], x.size)
    return out


def _relu_with(zeros, x, out):
    """max(x, 0) against zeros laid along x's contiguous trailing axes (a whole image of a
    conv activation): NumPy's maximum runs each row of that as vector code, but not a scalar
    0, and pays per row (timed in benchmarks/README.md; a whole zero array of a dense
    activation's shape costs more cache than it saves). Split over threads when large."""
    if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim == 0:
        return np.maximum(x, 0.0)  # an integer x gives floats: not writable into x
    if x.ndim == 1:  # the zero "row" would be as large as x
        return np.maximum(x, 0.0, out=out)
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        return np.maximum(x, 0.0, out=out)
    if x.flags.c_contiguous:
        work, out_work = x, out
    else:  # F-ordered: its transpose is C-ordered, and the result's transpose is the result
        work, out_work = x.T, None if out is None else out.T
    k = _row_axes(work.shape)
    zero = zeros.get(((1,) * (work.ndim - k) + work.shape[-k:], x.dtype))
    result = _rowwise(np.maximum, work, zero, out_work)
    return result if work is x else result.T


@fast(ops.Relu)
def _relu(op, portable):
    zeros = _filled(0.0)
    return lambda x: _relu_with(zeros, x, None)


@fast(ops.Relu, inplace=True)
def _relu_inplace(op, portable):
    zeros = _filled(0.0)

    def forward(x):
        return _relu_with(zeros, x, x if type(x) is np.ndarray else None)

    return forward


@fast(ops.ReluGrad)
def _relu_grad(op, portable):
    def forward(g, y):
        if g.dtype.kind != "f":
            return portable(g, y)
        return np.multiply(g, y > 0)  # a bool operand multiplies as 0/1 in g's dtype

    return forward


@fast(ops.ReluGrad, inplace=True)
def _relu_grad_inplace(op, portable):
    def forward(g, y):
        if type(g) is not np.ndarray or g.shape != y.shape or g.dtype.kind != "f":
            return portable(g, y)
        return np.multiply(g, y > 0, out=g)

    return forward


@fast(ops.LeakyRelu)
def _leaky_relu(op, portable):
    def forward(x):  # max(x, alpha x) is the portable select for 0 < alpha <= 1, bit for bit
        if not 0.0 < op.alpha <= 1.0 or type(x) is not np.ndarray or x.dtype.kind != "f":
            return portable(x)
        t = np.multiply(x, op.alpha)
        return np.maximum(x, t, out=t)

    return forward


@fast(ops.LeakyReluGrad)
def _leaky_relu_grad(op, portable):
    def forward(g, x):
        if type(g) is not np.ndarray or g.shape != x.shape or g.dtype.kind != "f":
            return portable(g, x)
        t = np.multiply(g, op.alpha)
        np.copyto(t, g, where=x > 0)
        return t

    return forward


@fast(ops.Sigmoid)
def _sigmoid(op, portable):
    def forward(x):  # the portable formula, in two buffers
        if x.ndim == 0 or x.dtype.kind != "f":
            return portable(x)
        e = np.copysign(x, _MINUS_ONE.get(x.dtype, -1.0))  # -|x|, NaN's sign set as -|x|'s
        np.exp(e, out=e)
        d = np.add(_ONE.get(x.dtype, 1.0), e)
        # The portable 1 / d where x >= 0 and e / d below, as one division without a select:
        # max(e, x >= 0) is 1 where x >= 0 (there e <= 1) and e below or where x is NaN.
        np.maximum(e, x >= _ZERO.get(x.dtype, 0.0), out=e)
        return np.divide(e, d, out=e)

    return forward


@fast(ops.SigmoidGrad)
def _sigmoid_grad(op, portable):
    def forward(g, y):
        if y.ndim == 0 or g.dtype != y.dtype:  # no out= into a scalar or a narrower dtype
            return portable(g, y)
        t = np.subtract(_ONE.get(y.dtype, 1.0), y)
        np.multiply(y, t, out=t)
        return np.multiply(g, t, out=t) if g.shape == t.shape else np.multiply(g, t)

    return forward


# ----------------------------------------------------------------------------- matmul


# A 2-D product a @ b is computed as (b^T a^T)^T, a view of a C-ordered (b^T a^T): its
# rows (the batch, in a network) then lie along contiguous memory. OpenBLAS runs these
# shapes faster that way round (the eight GEMMs of an MNIST MLP step, benchmarks/README.md),
# and per-row reductions (softmax over classes) become vector operations across the batch.


# An N-D @ 2-D product (a sequence of rows times a weight matrix: x (batch, time, n) @ W)
# is one GEMM over the rows flattened, not a loop of GEMMs over the batch (NumPy's matmul
# for 3-D @ 2-D), and W's gradient is one GEMM, not a batch of them summed.


def _rows(x):
    """x (..., n) as a 2-D (rows, n) view, or None where that would copy."""
    if x.ndim > 2 and x.flags.c_contiguous and x.size:
        return x.reshape(-1, x.shape[-1])
    return None


def _rows_product(a, g):
    """a^T g over every row of a (..., k) and g (..., n), as one GEMM: both as 2-D views
    where they are C-ordered; g as (n, rows) where its last axis is outermost in memory (a
    stack of the F-ordered results the 2-D product kernel returns) or g is F-ordered (a
    copied into g's row order then); None where none holds."""
    rows_a, rows_g = _rows(a), _rows(g)
    if rows_a is not None and rows_g is not None:
        return np.matmul(rows_a.T, rows_g)
    last_first = np.moveaxis(g, -1, 0)  # (n, ...): C-ordered where g was stacked from
    if rows_a is not None and last_first.flags.c_contiguous:  # F-ordered 2-D pieces
        return np.matmul(last_first.reshape(g.shape[-1], -1), rows_a).T
    if g.flags.f_contiguous and not g.flags.c_contiguous:
        reversed_rows = tuple(range(a.ndim - 2, -1, -1)) + (a.ndim - 1,)
        rows_in_g_order = np.ascontiguousarray(a.transpose(reversed_rows))
        g_t = g.T.reshape(g.shape[-1], -1)  # (n, rows), rows in reversed-axes order
        return np.matmul(g_t, rows_in_g_order.reshape(-1, a.shape[-1])).T
    return None


@fast(ops.MatMul)
def _matmul(op, portable):
    def forward(a, b):
        if a.ndim == 2 and b.ndim == 2:
            return np.matmul(b.T, a.T).T
        rows = _rows(a) if b.ndim == 2 else None
        if rows is not None:
            return np.matmul(rows, b).reshape(a.shape[:-1] + (b.shape[1],))
        return np.matmul(a, b)

    return forward


def described(array):
    """``plan.Description.of`` for the NumPy plan's shape-only inputs, which also tells
    whether a matrix was C-ordered (``LaidOut``)."""
    return LaidOut(array.shape, array.dtype, array.ndim == 2 and array.flags.c_contiguous
                   and not array.flags.f_contiguous)


class LaidOut(Description):
    """A description with ``c_order``: the array was a C-ordered (not F-ordered) matrix."""

    __slots__ = ("c_order",)

    def __init__(self, shape, dtype, c_order):
        super().__init__(shape, dtype)
        self.c_order = c_order


@fast(ops.MatMulGradA)
def _matmul_grad_a(op, portable):
    """The 2-D gradient g @ b^T laid out as ``a`` was: C-ordered where ``a`` was (a dropout
    or ReLU gradient then multiplies like-ordered masks), else as (b g^T)^T, F-ordered,
    like the 2-D products' results (``_matmul``)."""

    def forward(g, a, b):
        if a.ndim == 2 and b.ndim == 2:
            if getattr(a, "c_order", False) or (type(a) is np.ndarray and a.flags.c_contiguous
                                                 and not a.flags.f_contiguous):
                return np.matmul(g, b.T)
            return np.matmul(b, g.T).T
        rows = _rows(g) if b.ndim == 2 and a.ndim == g.ndim else None
        if rows is not None:  # g (..., m) @ b^T: a's shape
            return np.matmul(rows, b.T).reshape(a.shape)
        if a.ndim == 2 and b.ndim == 1:  # W @ x: the gradient of W is outer(g, x)
            return np.multiply(g[:, None], b)  # the outer product, with less to set up
        if a.ndim == 1 and b.ndim == 2:  # x @ W: the gradient of x is W @ g
            return np.matmul(b, g)
        return portable(g, a, b)

    return forward


@fast(ops.MatMulGradB)
def _matmul_grad_b(op, portable):
    def forward(g, a, b):
        if a.ndim == 2 and b.ndim == 2:
            return np.matmul(a.T, g)
        if b.ndim == 2 and g.ndim == a.ndim > 2:  # the sum over every row of a^T g
            product = _rows_product(a, g)
            if product is not None:
                return product
        if a.ndim == 2 and b.ndim == 1:  # W @ x: the gradient of x is W^T g
            return np.matmul(g, a)
        if a.ndim == 1 and b.ndim == 2:  # x @ W: the gradient of W is outer(x, g)
            return np.multiply(a[:, None], g)
        return portable(g, a, b)

    return forward


# ----------------------------------------------------------------------------- reductions


@fast(ops.SumTo, fresh=False)
def _sum_to(op, portable):
    ones = _filled(1.0)

    def forward(g, like):
        shape = like.shape
        if g.shape == shape:
            return g
        if g.ndim == 2 and g.shape[1:] == shape and g.shape[1] >= 64 and g.dtype.kind == "f":
            # A wide bias gradient: the column sums as ones @ g, a BLAS matrix-vector
            # product. On the F-ordered gradients the transposed products leave, add.reduce
            # sums each column on its own: slower on wide gradients, faster on narrow ones
            # (where the two cross, timed in benchmarks/README.md, sets the 64).
            return np.matmul(ones.get((g.shape[:1], g.dtype)), g)
        if g.ndim == len(shape) + 1 and g.shape[1:] == shape:
            return np.add.reduce(g, axis=0)
        return portable(g, like)

    return forward


@fast(ops.BroadcastBack)
def _broadcast_back(op, portable):
    def forward(grad, like):
        if op.axis is None:  # a full reduction: one value fills the input's shape
            fill = np.divide(grad, math.prod(like.shape)) if op.mean else np.asarray(grad)
            out = np.empty(like.shape, dtype=fill.dtype)
            np.copyto(out, fill)  # fill is 0-d, or all ones (keepdims)
            return out
        axes = [a % like.ndim for a in op.axis]
        if not op.keepdims:
            grad = np.reshape(grad, tuple(1 if i in axes else d for i, d in enumerate(like.shape)))
        if op.mean:
            grad = grad / float(math.prod(like.shape[i] for i in axes))
        out = np.empty(like.shape, dtype=np.result_type(grad))
        np.copyto(out, grad)
        return out

    return forward


@fast(ops.ReduceSum)
def _reduce_sum(op, portable):
    axis, keepdims = op.axis, op.keepdims

    def forward(x):  # integers in their own dtype, as the portable op (int32 stays int32)
        if x.dtype.kind in "iu":
            return np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=x.dtype)
        return np.add.reduce(x, axis, None, None, keepdims)

    return forward


@fast(ops.OnesLike)
def _ones_like(op, portable):
    return lambda x: np.ones(np.shape(x), dtype=np.result_type(x))


# ----------------------------------------------------------------------------- losses


def _shifted_logits(labels, logits):
    """logits - rowmax, or None when the portable path must handle it (not 2-D integer
    labels, or a non-finite row max)."""
    if (logits.ndim != 2 or labels.dtype.kind not in "iu" or logits.dtype.kind != "f"
            or labels.shape != logits.shape[:1] or not labels.size  # the portable path
            or labels.min() < 0 or labels.max() >= logits.shape[1]):  # explains bad labels
        return None
    m = np.maximum.reduce(logits, axis=-1, keepdims=True)
    if not math.isfinite(m.sum()):
        return None
    return np.subtract(logits, m)


@fast(ops.SparseSoftmaxCrossEntropy)
def _sparse_ce(op, portable):
    def forward(labels, logits):
        shifted = _shifted_logits(labels, logits)
        if shifted is None:
            return portable(labels, logits)
        picked = shifted[np.arange(shifted.shape[0]), labels]
        np.exp(shifted, out=shifted)
        lse = np.log(np.add.reduce(shifted, axis=-1))
        return np.subtract(lse, picked, out=lse)

    return forward


@fast(ops.SparseSoftmaxCrossEntropyGrad)
def _sparse_ce_grad(op, portable):
    rows = _Kept(np.arange)  # batch size -> arange(batch size), to index each row's label

    def forward(grad, labels, logits):
        ok = grad.dtype == logits.dtype and grad.ndim == 1
        probs = _shifted_logits(labels, logits) if ok else None
        if probs is None:
            return portable(grad, labels, logits)
        np.exp(probs, out=probs)
        probs /= np.add.reduce(probs, axis=-1, keepdims=True)
        probs[rows.get(probs.shape[0]), labels] -= 1.0
        probs *= grad[:, None]
        return probs

    return forward


# As a decorator errstate sets the state at each call without making and entering a new
# context manager (thread-safe in NumPy 2: the state is a context variable).
@np.errstate(divide="ignore")
def _logs(p):
    """log(p) and log(1 - p), log(0) = -inf without a warning (BCE floors it)."""
    log_q = np.subtract(_ONE.get(p.dtype, 1.0), p)
    return np.log(p), np.log(log_q, out=log_q)


@fast(ops.BinaryCrossEntropy)
def _bce(op, portable):
    floors = _constants(ops.BCE_LOG_FLOOR)

    def forward(p, y):
        if p.ndim == 0:  # 0-d ufunc results are scalars: no out=
            return portable(p, y)
        log_p, log_q = _logs(p)
        floor = floors.get(log_p.dtype, ops.BCE_LOG_FLOOR)
        np.maximum(log_p, floor, out=log_p)
        np.maximum(log_q, floor, out=log_q)
        total = np.multiply(y, log_p)
        total += np.multiply(np.subtract(_ONE.get(y.dtype, 1.0), y), log_q)
        return np.negative(total, out=total)

    return forward


@fast(ops.BinaryCrossEntropyGrad)
def _bce_grad(op, portable, sigmoid_grad=None):
    """Given ``sigmoid_grad`` (the portable SigmoidGrad, ``fusion``), the result is also
    multiplied by p (1 - p), the sigmoid's gradient, as ``_sigmoid_grad`` would."""

    def forward(grad, p, y):
        if p.ndim == 0:  # 0-d ufunc results are scalars: no out=
            d = portable(grad, p, y)
            return d if sigmoid_grad is None else sigmoid_grad(d, p)
        d = np.multiply(grad, np.subtract(p, y))
        t = np.subtract(_ONE.get(p.dtype, 1.0), p)
        np.multiply(p, t, out=t)
        # the sigmoid's gradient needs p (1 - p) unfloored: floor into a new array then
        floored = np.maximum(t, _TINY.get(t.dtype, 1e-12), out=None if sigmoid_grad else t)
        d = np.divide(d, floored, out=d) if d.shape == floored.shape else np.divide(d, floored)
        if sigmoid_grad is None:
            return d
        if d.dtype != p.dtype:  # where _sigmoid_grad takes the portable path
            return sigmoid_grad(d, p)
        return np.multiply(d, t, out=d) if d.shape == t.shape else np.multiply(d, t)

    return forward


@fast(random.DropoutMask)
def _dropout_mask(op, portable):
    """DropoutMask drawing with the portable function's ``draw`` (the Session's): the mask
    in one product, (u >= rate) * (1 / (1 - rate)) in u's dtype, the portable op's values
    (a quotient by 1 - rate, of 1 or 0) bit for bit, without its indicator array, quotient
    and select against an array of ones; all ones where ``training`` is false, as portably
    (after the draw either way, so the stream moves on alike)."""
    draw = getattr(portable, "keywords", {}).get("draw")
    rate = op.rate

    def forward(x, training):
        if draw is None or type(training) is not np.ndarray or training.shape != () \
                or training.dtype != np.bool_:
            return portable(x, training)
        dtype = np.dtype(x.dtype)
        if dtype.kind != "f":
            dtype = np.dtype(np.float32)
        u = draw(op, x.shape, dtype)
        if not training:
            return np.ones(x.shape, dtype)
        return np.multiply(u >= rate, np.divide(dtype.type(1), dtype.type(1.0 - rate)))

    return forward
