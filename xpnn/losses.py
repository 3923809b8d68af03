"""Losses from maximum likelihood. ``cross_entropy`` is composed from primitives exactly as
the series writes it; the softmax and sigmoid versions are fused ops (in ``ops``) that stay
finite for any logits. Every loss takes ``reduction="mean" | "sum" | "none"``.

>>> import xpnn as xn
>>> logits = xn.constant([[2.0, 0.0], [0.0, 2.0]])
>>> loss = xn.losses.sparse_softmax_cross_entropy([0, 1], logits)
>>> round(xn.Session().run(loss).item(), 4)
0.1269
"""

from __future__ import annotations

from . import ops
from .graph import Constant, Node
from .host import to_numpy

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_sample, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "sum":
        return ops.reduce_sum(per_sample)
    if reduction == "mean":
        return ops.reduce_mean(per_sample)
    return per_sample


def cross_entropy(c, p, reduction="sum"):
    """The series' criterion for probabilities ``p`` and one-hot targets ``c``:
    ``negative(reduce_sum(reduce_sum(multiply(c, log(p)), axis=1)))`` (reduction="sum").

    >>> import xpnn as xn
    >>> J = xn.losses.cross_entropy([[1.0, 0.0]], [[0.5, 0.5]])
    >>> round(xn.Session().run(J).item(), 4)
    0.6931
    """
    log_likelihood = ops.reduce_sum(ops.multiply(c, ops.log(p)), axis=1)
    if reduction == "sum":
        return ops.negative(ops.reduce_sum(log_likelihood))
    return _reduce(ops.negative(log_likelihood), reduction)


def softmax_cross_entropy(labels, logits, reduction="mean"):
    """Cross-entropy of softmax(logits) against probability rows ``labels`` (one-hot or
    soft), fused and stable: finite for logits of any size.

    >>> import xpnn as xn
    >>> loss = xn.losses.softmax_cross_entropy([[0.0, 1.0]], [[1e4, -1e4]])
    >>> xn.Session().run(loss).item()
    20000.0
    """
    return _reduce(ops.SoftmaxCrossEntropy(labels, logits), reduction)


def sparse_softmax_cross_entropy(labels, logits, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class ``labels`` (shape (n,)): a
    placeholder, or a list or array of any backend (made a constant, kept as integers).

    Labels must lie in [0, n_classes). Where the Session can read them without stalling its
    device (NumPy, array-api-strict, and PyTorch or JAX on the CPU) a label outside raises
    ValueError. Elsewhere (CuPy, CUDA tensors) they are not read: a row with a bad label
    gets a NaN loss and a NaN gradient row, so a mean over the batch is NaN too. Validate
    labels on the host to get the error there (``xn.data.one_hot`` does)."""
    if not isinstance(labels, Node):
        labels = Constant(to_numpy(labels))  # the backend's own transfer; keeps integers
    return _reduce(ops.SparseSoftmaxCrossEntropy(labels, logits), reduction)


def binary_cross_entropy(p, y, reduction="mean"):
    """BCE for probabilities ``p`` and targets ``y`` in [0, 1]; each log is floored at -100
    like PyTorch's BCELoss, so p = 0 or 1 gives 100 per wrong entry and a finite gradient.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.losses.binary_cross_entropy([0.0, 1.0], [1.0, 0.0], "none")).tolist()
    [100.0, 100.0]
    """
    return _reduce(ops.BinaryCrossEntropy(p, y), reduction)


def sigmoid_binary_cross_entropy(logits, y, reduction="mean"):
    """BCE of sigmoid(logits) against ``y``, computed from the logits (stable)."""
    return _reduce(ops.SigmoidBinaryCrossEntropy(logits, y), reduction)


def mean_squared_error(predictions, targets, reduction="mean"):
    """(predictions - targets)^2, reduced over all entries."""
    return _reduce(ops.square(ops.subtract(predictions, targets)), reduction)
