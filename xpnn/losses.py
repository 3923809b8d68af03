"""Losses from maximum likelihood. ``cross_entropy`` is composed from primitives exactly as
the series writes it; the softmax and sigmoid versions are fused ops that stay finite for
any logits. Every loss takes ``reduction="mean" | "sum" | "none"``.

>>> import xpnn as xn
>>> logits = xn.constant([[2.0, 0.0], [0.0, 2.0]])
>>> loss = xn.losses.sparse_softmax_cross_entropy([0, 1], logits)
>>> round(xn.Session().run(loss).item(), 4)
0.1269
"""

from __future__ import annotations

import array_api_compat
import numpy as np
from array_api_compat import device

from . import ops
from .graph import Constant, Node, Operation

REDUCTIONS = ("mean", "sum", "none")
BCE_LOG_FLOOR = -100.0  # PyTorch's BCELoss clamps each log at -100


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


class SoftmaxCrossEntropy(Operation):
    """Per-row -sum(labels * log_softmax(logits)) via log-sum-exp."""

    def forward(self, xp, labels, logits):
        if labels.dtype != logits.dtype:
            labels, logits = ops._match(xp, labels, logits)
        # 0 * log(0) counts as 0: a class with no target mass and a -inf logit adds nothing.
        log_p = xp.where(labels != 0, _log_softmax(xp, logits), 0.0)
        return -xp.sum(labels * log_p, axis=-1)

    def infer_shape(self, labels, logits):
        shape = ops.broadcast_shapes(self, labels, logits)
        return None if shape is None else shape[:-1]

    def backward(self, grad):
        labels, logits = self.inputs
        g = ExpandLast(grad)
        probs = ops.softmax(logits)
        total = ops.reduce_sum(labels, axis=-1, keepdims=True)
        d_logits = ops.multiply(g, ops.subtract(ops.multiply(probs, total), labels))
        d_labels = ops.multiply(g, ops.negative(ops.log_softmax(logits)))
        return [ops.sum_to(d_labels, labels), ops.sum_to(d_logits, logits)]


def check_labels(labels, logits) -> None:
    """Sparse labels hold one class index per row: their shape must be the logits' shape
    without its last axis (no broadcasting, as in TensorFlow and PyTorch). ``None`` (an
    unknown shape or dimension) matches anything."""
    if labels is None or logits is None:
        return
    if len(labels) != len(logits) - 1 or any(
            a is not None and b is not None and a != b for a, b in zip(labels, logits)):
        raise ValueError(
            f"sparse_softmax_cross_entropy: labels of shape {tuple(labels)} do not match "
            f"logits of shape {tuple(logits)}: give one class index per row, labels of "
            f"shape {tuple(logits[:-1])}"
        )


def _on_host(xp, array) -> bool:
    """Whether reading a value of ``array`` needs no device synchronisation."""
    if array_api_compat.is_numpy_array(array) or array_api_compat.is_array_api_strict_namespace(xp):
        return True
    return array_api_compat.is_torch_array(array) and array.device.type == "cpu"


def check_label_values(xp, labels, classes: int) -> None:
    """Class indices must lie in [0, classes): NumPy, array-api-strict and PyTorch gather a
    negative index from the end instead of failing. Checked where the labels are on the host;
    on a GPU the check would stall the step, and is left out."""
    if not _on_host(xp, labels) or 0 in labels.shape:
        return
    low, high = xp.min(labels), xp.max(labels)
    if bool(low < 0) or bool(high >= classes):
        bad = int(low) if bool(low < 0) else int(high)
        raise ValueError(
            f"sparse_softmax_cross_entropy: labels must be class indices in [0, {classes}), "
            f"got {bad}"
        )


class SparseSoftmaxCrossEntropy(Operation):
    """Per-row logsumexp(logits) - logits[label]."""

    def forward(self, xp, labels, logits):
        check_labels(labels.shape, logits.shape)
        check_label_values(xp, labels, logits.shape[-1])
        picked = xp.take_along_axis(logits, labels[..., None], axis=-1)
        return _logsumexp_last(xp, logits) - picked[..., 0]

    def infer_shape(self, labels, logits):
        check_labels(labels, logits)
        return None if logits is None else logits[:-1]

    def infer_dtype(self, labels, logits):
        return logits

    def backward(self, grad):
        labels, logits = self.inputs
        return [None, SparseSoftmaxCrossEntropyGrad(grad, labels, logits)]


class SparseSoftmaxCrossEntropyGrad(Operation):
    """grad[:, None] * (softmax(logits) - one_hot(labels)), fused."""

    def forward(self, xp, grad, labels, logits):
        check_labels(labels.shape, logits.shape)
        check_label_values(xp, labels, logits.shape[-1])
        # The gather fails on out-of-range labels where the backend checks indices, as the
        # loss's forward does: a training step skips that forward (it needs only its shape).
        xp.take_along_axis(logits, labels[..., None], axis=-1)
        probs = xp.exp(_log_softmax(xp, logits))
        k = logits.shape[-1]
        classes = xp.arange(k, dtype=labels.dtype, device=device(labels))
        hot = xp.astype(labels[..., None] == classes, probs.dtype)
        return grad[..., None] * (probs - hot)

    def infer_shape(self, grad, labels, logits):
        return logits

    def infer_dtype(self, grad, labels, logits):
        return logits

    def backward(self, grad):
        raise NotImplementedError(
            "second derivatives of sparse_softmax_cross_entropy are not implemented; "
            "compose log_softmax with a one-hot product instead"
        )


class ExpandLast(Operation):
    """x[..., None] (how a per-row gradient meets a per-class one)."""

    def forward(self, xp, x):
        return x[..., None]

    def infer_shape(self, shape):
        return None if shape is None else tuple(shape) + (1,)

    def backward(self, grad):
        return [ops.reduce_sum(grad, axis=-1)]


class BinaryCrossEntropy(Operation):
    """-(y log p + (1-y) log(1-p)) with each log floored at -100, as PyTorch's BCELoss."""

    def forward(self, xp, p, y):
        log_p = xp.clip(xp.log(p), BCE_LOG_FLOOR, None)
        log_q = xp.clip(xp.log(1.0 - p), BCE_LOG_FLOOR, None)
        return -(y * log_p + (1.0 - y) * log_q)

    def infer_shape(self, p, y):
        return ops.broadcast_shapes(self, p, y)

    def backward(self, grad):
        p, y = self.inputs
        return [ops.sum_to(BinaryCrossEntropyGrad(grad, p, y), p), None]


class BinaryCrossEntropyGrad(Operation):
    """grad * (p - y) / max(p (1 - p), 1e-12): PyTorch's finite gradient at p = 0 or 1."""

    def forward(self, xp, grad, p, y):
        return grad * (p - y) / xp.clip(p * (1.0 - p), 1e-12, None)

    def infer_shape(self, grad, p, y):
        return ops.broadcast_shapes(self, grad, p, y)


class SigmoidBinaryCrossEntropy(Operation):
    """BCE of sigmoid(logits): max(x, 0) - x y + log(1 + exp(-|x|)), finite for any x."""

    def forward(self, xp, x, y):
        return xp.maximum(x, 0.0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))

    def infer_shape(self, x, y):
        return ops.broadcast_shapes(self, x, y)

    def backward(self, grad):
        x, y = self.inputs
        d_x = ops.multiply(grad, ops.subtract(ops.sigmoid(x), y))
        return [ops.sum_to(d_x, x), ops.sum_to(ops.multiply(grad, ops.negative(x)), y)]


def _logsumexp_last(xp, x):
    m = xp.max(x, axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    return (xp.log(xp.sum(xp.exp(x - m), axis=-1, keepdims=True)) + m)[..., 0]


def _log_softmax(xp, x):
    m = xp.max(x, axis=-1, keepdims=True)
    shifted = x - xp.where(xp.isfinite(m), m, 0.0)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softmax_cross_entropy(labels, logits, reduction="mean"):
    """Cross-entropy of softmax(logits) against probability rows ``labels`` (one-hot or
    soft), fused and stable: finite for logits of any size.

    >>> import xpnn as xn
    >>> loss = xn.losses.softmax_cross_entropy([[0.0, 1.0]], [[1e4, -1e4]])
    >>> xn.Session().run(loss).item()
    20000.0
    """
    return _reduce(SoftmaxCrossEntropy(labels, logits), reduction)


def sparse_softmax_cross_entropy(labels, logits, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class ``labels`` (shape (n,)).
    Labels must lie in [0, n_classes): validate them on the host (``xn.data.one_hot`` does)."""
    if not isinstance(labels, Node):
        labels = Constant(np.asarray(labels))  # keep the integer dtype
    return _reduce(SparseSoftmaxCrossEntropy(labels, logits), reduction)


def binary_cross_entropy(p, y, reduction="mean"):
    """BCE for probabilities ``p`` and targets ``y`` in [0, 1]; each log is floored at -100
    like PyTorch's BCELoss, so p = 0 or 1 gives 100 per wrong entry and a finite gradient.

    >>> import xpnn as xn
    >>> xn.Session().run(xn.losses.binary_cross_entropy([0.0, 1.0], [1.0, 0.0], "none")).tolist()
    [100.0, 100.0]
    """
    return _reduce(BinaryCrossEntropy(p, y), reduction)


def sigmoid_binary_cross_entropy(logits, y, reduction="mean"):
    """BCE of sigmoid(logits) against ``y``, computed from the logits (stable)."""
    return _reduce(SigmoidBinaryCrossEntropy(logits, y), reduction)


def mean_squared_error(predictions, targets, reduction="mean"):
    """(predictions - targets)^2, reduced over all entries."""
    return _reduce(ops.square(ops.subtract(predictions, targets)), reduction)
