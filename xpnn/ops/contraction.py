"""Contractions over named axes: ``einsum`` (TF1's and NumPy's subscripts, letters only) and
``tensordot`` on top of it. Not in the array API: each pair of operands becomes one batched
``matmul`` (shared kept axes the batch, shared summed axes the inner product), operands
folded left to right, so no broadcast product of all axes is ever made. The gradient of an
operand is the einsum of the output's gradient with the other operands.

>>> import xpnn as xn
>>> q, k = xn.Variable([[[1.0, 0.0]]]), xn.Variable([[[2.0, 1.0], [0.0, 3.0]]])
>>> xn.Session().run(xn.einsum("bqd,bkd->bqk", q, k)).tolist()
[[[2.0, 0.0]]]
"""

from __future__ import annotations

import math
import string

from ..dtypes import is_floating
from ..graph import Node, Operation, as_node
from .core import BroadcastLike, _match
from .shape import ExpandDims

_LETTERS = string.ascii_letters


def _parse(equation, count):
    """(input terms, output term) of ``equation`` for ``count`` operands."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {type(equation).__name__}")
    text = equation.replace(" ", "")
    if "." in text:
        raise NotImplementedError(f"einsum({equation!r}): '...' is not supported; name every "
                                  "axis with a letter")
    left, arrow, out = text.partition("->")
    terms = left.split(",")
    if len(terms) != count:
        raise ValueError(f"einsum({equation!r}) names {len(terms)} operands, {count} given")
    for term in terms + [out]:
        bad = [c for c in term if c not in _LETTERS]
        if bad:
            raise ValueError(f"einsum({equation!r}): subscripts are letters, got {bad[0]!r}")
        if len(set(term)) != len(term):
            raise NotImplementedError(f"einsum({equation!r}): a letter repeated in one term "
                                      f"({term!r}, a diagonal) is not supported")
    if not arrow:  # NumPy's implicit output: the letters used once, in alphabetical order
        used = "".join(terms)
        out = "".join(sorted(c for c in set(used) if used.count(c) == 1))
    missing = [c for c in out if c not in "".join(terms)]
    if missing:
        raise ValueError(f"einsum({equation!r}): output letter {missing[0]!r} is in no input")
    return terms, out


def _sizes(equation, terms, shapes):
    """letter -> size (None where unknown), checking ranks and agreeing sizes."""
    sizes = {}
    for term, shape in zip(terms, shapes):
        if shape is None:
            continue
        if len(shape) != len(term):
            raise ValueError(f"einsum({equation!r}): operand {term!r} has rank {len(term)}, "
                             f"got shape {tuple(shape)}")
        for letter, size in zip(term, shape):
            known = sizes.get(letter)
            if known is not None and size is not None and known != size:
                raise ValueError(f"einsum({equation!r}): axis {letter!r} is {known} in one "
                                 f"operand and {size} in another (shapes {list(shapes)})")
            if known is None:
                sizes[letter] = size
    return sizes


def _sum_out(xp, term, x, keep):
    """x (axes ``term``) summed over the axes whose letters are not in ``keep``."""
    gone = tuple(i for i, c in enumerate(term) if c not in keep)
    if not gone:
        return term, x
    return "".join(c for c in term if c in keep), xp.sum(x, axis=gone)


def _pair(xp, ta, a, tb, b, keep):
    """The product of a and b summed over their shared letters not in ``keep``: one
    batched matmul. Returns (term, array)."""
    ta, a = _sum_out(xp, ta, a, keep | set(tb))
    tb, b = _sum_out(xp, tb, b, keep | set(ta))
    batch = [c for c in ta if c in tb and c in keep]
    inner = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    size = dict(zip(ta, a.shape)) | dict(zip(tb, b.shape))

    def count(letters):
        return math.prod(size[c] for c in letters)

    a = xp.permute_dims(a, tuple(ta.index(c) for c in batch + left + inner))
    b = xp.permute_dims(b, tuple(tb.index(c) for c in batch + inner + right))
    a = xp.reshape(a, (count(batch), count(left), count(inner)))
    b = xp.reshape(b, (count(batch), count(inner), count(right)))
    if a.dtype != b.dtype:
        a, b = _match(xp, a, b)
    product = xp.matmul(a, b)
    term = batch + left + right
    return "".join(term), xp.reshape(product, tuple(size[c] for c in term))


class Einsum(Operation):
    """``einsum(equation, *operands)``: letters name axes; a letter in two operands and not
    in the output is summed over (see ``einsum``)."""

    fresh = True

    def __init__(self, equation, *operands, name=None):
        self.equation = equation
        self.terms, self.out = _parse(equation, len(operands))
        super().__init__(*operands, name=name)

    def forward(self, xp, *arrays):
        _sizes(self.equation, self.terms, [tuple(a.shape) for a in arrays])
        term, value = self.terms[0], arrays[0]
        for i in range(1, len(arrays)):
            keep = set(self.out).union(*self.terms[i + 1 :])
            term, value = _pair(xp, term, value, self.terms[i], arrays[i], keep)
        term, value = _sum_out(xp, term, value, set(self.out))
        order = tuple(term.index(c) for c in self.out)
        return value if order == tuple(range(len(order))) else xp.permute_dims(value, order)

    def infer_shape(self, *shapes):
        sizes = _sizes(self.equation, self.terms, shapes)
        if any(s is None for s in shapes):
            return None
        return tuple(sizes[c] for c in self.out)

    def backward(self, grad):
        return [self._gradient(grad, i) for i in range(len(self.inputs))]

    def _gradient(self, grad, i):
        """The einsum of ``grad`` with the other operands into operand i's axes; axes of
        operand i found nowhere else (summed in the forward) are broadcast back."""
        operand = self.inputs[i]
        if operand.dtype is not None and not is_floating(operand.dtype):
            return None
        others = [t for j, t in enumerate(self.terms) if j != i]
        known = set(self.out).union(*others)
        kept = "".join(c for c in self.terms[i] if c in known)
        equation = ",".join([self.out] + others) + "->" + kept
        partial = Einsum(equation, grad, *(x for j, x in enumerate(self.inputs) if j != i))
        if kept == self.terms[i]:
            return partial
        for position, letter in enumerate(self.terms[i]):
            if letter not in known:
                partial = ExpandDims(partial, position)
        return BroadcastLike(partial, operand)


def einsum(equation, *inputs, name=None):
    """TF1's ``einsum``: the sum of products of ``inputs`` over the axes that ``equation``
    (e.g. ``"bhqd,bhkd->bhqk"``) leaves out of the output; without ``->`` the output is the
    letters used once, in alphabetical order. Any number of operands; letters only (no
    ``...``, no letter repeated within one operand).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.einsum("ij,jk->ik", [[1.0, 2.0]], [[3.0], [4.0]])).tolist()
    [[11.0]]
    """
    return Einsum(equation, *inputs, name=name)


def _tensordot_axes(axes, rank_a, rank_b):
    if isinstance(axes, int):
        if not 0 <= axes <= min(rank_a, rank_b):
            raise ValueError(f"tensordot: axes={axes} with operands of rank {rank_a} and "
                             f"{rank_b}; it is at most the smaller rank")
        return list(range(rank_a - axes, rank_a)), list(range(axes))
    try:
        a_axes, b_axes = axes
    except (TypeError, ValueError):
        raise ValueError(f"tensordot: axes must be an int or a pair of axis lists, got "
                         f"{axes!r}") from None
    a_axes = [a_axes] if isinstance(a_axes, int) else list(a_axes)
    b_axes = [b_axes] if isinstance(b_axes, int) else list(b_axes)
    if len(a_axes) != len(b_axes):
        raise ValueError(f"tensordot: axes {a_axes} and {b_axes} differ in length")
    for which, ax, rank in (("a", a_axes, rank_a), ("b", b_axes, rank_b)):
        if any(not -rank <= x < rank for x in ax):
            raise ValueError(f"tensordot: axes {ax} out of range for {which} of rank {rank}")
    return [x % rank_a for x in a_axes], [x % rank_b for x in b_axes]


class Tensordot(Operation):
    """``tensordot(a, b, axes)`` where a rank is unknown until run time (else ``tensordot``
    builds an ``Einsum``); ``axes`` as ``tensordot``'s, resolved against the ranks seen."""

    fresh = True

    def __init__(self, a, b, axes, name=None):
        self.axes = axes
        super().__init__(a, b, name=name)

    def forward(self, xp, a, b):
        if a.dtype != b.dtype:
            a, b = _match(xp, a, b)
        a_axes, b_axes = _tensordot_axes(self.axes, a.ndim, b.ndim)
        if [a.shape[i] for i in a_axes] != [b.shape[j] for j in b_axes]:
            raise ValueError(f"{self.label}: tensordot of {a.shape} and {b.shape} over axes "
                             f"{a_axes} and {b_axes}: those sizes must match")
        return xp.tensordot(a, b, axes=(tuple(a_axes), tuple(b_axes)))

    def backward(self, grad):
        a, b = self.inputs
        return [TensordotGrad(grad, b, self.axes, True), TensordotGrad(grad, a, self.axes, False)]


class TensordotGrad(Operation):
    """The gradient of ``Tensordot``'s a (``of_a``: grad against b's free axes) or b (a's
    free axes against grad's), its axes put back in the operand's order."""

    fresh = True

    def __init__(self, grad, other, axes, of_a):
        self.axes, self.of_a = axes, of_a
        super().__init__(grad, other)

    def forward(self, xp, grad, other):
        axes = self.axes
        n = axes if isinstance(axes, int) else 1 if isinstance(axes[0], int) else len(axes[0])
        rank = grad.ndim - other.ndim + 2 * n  # the differentiated operand's
        if self.of_a:
            a_axes, b_axes = _tensordot_axes(self.axes, rank, other.ndim)
            free = [j for j in range(other.ndim) if j not in b_axes]
            out = xp.tensordot(grad, other, axes=(tuple(range(rank - n, grad.ndim)), tuple(free)))
            mine, theirs, kept = a_axes, b_axes, [i for i in range(rank) if i not in a_axes]
            position = {p: kept.index(p) for p in kept} | {
                p: len(kept) + sorted(theirs).index(theirs[mine.index(p)]) for p in mine}
        else:
            a_axes, b_axes = _tensordot_axes(self.axes, other.ndim, rank)
            free = [i for i in range(other.ndim) if i not in a_axes]
            out = xp.tensordot(other, grad, axes=(tuple(free), tuple(range(len(free)))))
            mine, theirs, kept = b_axes, a_axes, [j for j in range(rank) if j not in b_axes]
            position = {p: n + kept.index(p) for p in kept} | {
                p: sorted(theirs).index(theirs[mine.index(p)]) for p in mine}
        order = tuple(position[p] for p in range(rank))
        return out if order == tuple(range(rank)) else xp.permute_dims(out, order)

    def backward(self, grad):
        raise NotImplementedError("second derivatives of tensordot of unknown ranks are not "
                                  "implemented; give the operands' ranks (einsum then has them)")


def tensordot(a, b, axes, name=None):
    """TF1's ``tensordot``: the sum over ``axes`` of a (its last ``axes`` when an int, else
    ``axes[0]``) paired with those of b (its first ``axes``, else ``axes[1]``); the result
    has a's other axes, then b's: an ``Einsum`` where the ranks are known (else, for an
    int ``axes`` only, a ``Tensordot``).

    >>> import xpnn as xn
    >>> xn.Session().run(xn.tensordot([[1.0, 2.0]], [[3.0], [4.0]], axes=1)).tolist()
    [[11.0]]
    """
    graph = next((x.graph for x in (a, b) if isinstance(x, Node)), None)
    a, b = as_node(a, graph), as_node(b, graph)
    if a.shape is None or b.shape is None:
        return Tensordot(a, b, axes, name=name)
    a_axes, b_axes = _tensordot_axes(axes, len(a.shape), len(b.shape))
    ta = _LETTERS[: len(a.shape)]
    fresh = iter(_LETTERS[len(a.shape) :])
    tb = "".join(ta[a_axes[b_axes.index(j)]] if j in b_axes else next(fresh)
                 for j in range(len(b.shape)))
    out = "".join(c for j, c in enumerate(ta) if j not in a_axes) + "".join(
        c for j, c in enumerate(tb) if j not in b_axes)
    return Einsum(f"{ta},{tb}->{out}", a, b, name=name)


__all__ = ["Einsum", "Tensordot", "TensordotGrad", "einsum", "tensordot"]
