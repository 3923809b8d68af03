"""Losses from maximum likelihood. The fused ops (``SoftmaxCrossEntropy``,
``SparseSoftmaxCrossEntropy`` and its gradient, with their label checks, and the binary
cross-entropies) stay finite for any logits and cost less than their compositions;
``cross_entropy`` is composed from primitives exactly as the series writes it. Every loss
function takes ``reduction="mean" | "sum" | "none"`` (``xn.losses.*``).

>>> import xpnn as xn
>>> logits = xn.constant([[2.0, 0.0], [0.0, 2.0]])
>>> loss = xn.losses.sparse_softmax_cross_entropy([0, 1], logits)
>>> round(xn.Session().run(loss).item(), 4)
0.1269
"""

from __future__ import annotations

import math

import array_api_compat

from ..graph import Constant, Node, Operation, as_node
from ..host import to_numpy
from .activations import _log_softmax, log_softmax, sigmoid, softmax
from .arithmetic import divide, log, multiply, negative, ones_like, square, subtract
from .core import _index_dtype, _match, broadcast_shapes, run_context, sum_to
from .logic import equal, where  # bool equal, which where needs
from .reductions import _logsumexp, reduce_mean, reduce_sum
from .shape import ExpandDims

BCE_LOG_FLOOR = -100.0  # PyTorch's BCELoss clamps each log at -100


class SoftmaxCrossEntropy(Operation):
    """Per-row -sum(labels * log_softmax(logits)) via log-sum-exp."""

    fresh = True

    def forward(self, xp, labels, logits):
        if labels.dtype != logits.dtype:
            labels, logits = _match(xp, labels, logits)
        # 0 * log(0) counts as 0: a class with no target mass and a -inf logit adds nothing.
        log_p = xp.where(labels != 0, _log_softmax(xp, logits), 0.0)
        return -xp.sum(labels * log_p, axis=-1)

    def infer_shape(self, labels, logits):
        shape = broadcast_shapes(self, labels, logits)
        return None if shape is None else shape[:-1]

    def backward(self, grad):
        labels, logits = self.inputs
        g = ExpandDims(grad, -1)
        total = reduce_sum(labels, axis=-1, keepdims=True)
        d_logits = multiply(g, subtract(multiply(softmax(logits), total), labels))
        d_labels = multiply(g, negative(log_softmax(logits)))
        return [sum_to(d_labels, labels), sum_to(d_logits, logits)]


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


def check_label_values(xp, labels, classes: int) -> None:
    """Class indices must lie in [0, classes): NumPy, array-api-strict and PyTorch would
    gather a negative index from the end instead of failing. Called only where reading the
    labels costs no device synchronisation (``run_context.reads_without_sync``)."""
    if 0 in labels.shape:
        return
    low, high = xp.min(labels), xp.max(labels)
    if bool(low < 0) or bool(high >= classes):
        raise label_range_error(int(low) if bool(low < 0) else int(high), classes)


def label_range_error(bad: int, classes: int) -> ValueError:
    """The error for a class index ``bad`` outside [0, classes)."""
    return ValueError(
        f"sparse_softmax_cross_entropy: labels must be class indices in [0, {classes}), "
        f"got {bad}"
    )


def _valid_labels(xp, labels, classes: int):
    """The mask of labels in [0, classes), made on the device without reading it: where the
    labels cannot be checked on the host, a row with a bad label gets a NaN loss and a NaN
    gradient (CuPy's gather would wrap the index, PyTorch's on CUDA would abort)."""
    return xp.logical_and(labels >= 0, labels < classes)


class SparseSoftmaxCrossEntropy(Operation):
    """Per-row logsumexp(logits) - logits[label]."""

    fresh = True
    reads_values = True
    labels_input = 0  # the labels' position among the inputs; the logits' is the next

    def forward(self, xp, labels, logits):
        reads = run_context.reads_without_sync
        check_labels(labels.shape, logits.shape)
        k = logits.shape[-1]
        if reads:
            check_label_values(xp, labels, k)
            return self._loss(xp, labels, logits)
        valid = _valid_labels(xp, labels, k)
        # Gather at label 0 for the bad rows, never out of bounds; their loss is NaN.
        return xp.where(valid, self._loss(xp, xp.where(valid, labels, 0), logits), math.nan)

    @staticmethod
    def _loss(xp, labels, logits):
        index = _index_dtype(xp)  # PyTorch gathers with int64 only; 32-bit JAX has no int64
        if labels.dtype != index:
            labels = xp.astype(labels, index)
        picked = xp.take_along_axis(logits, labels[..., None], axis=-1)
        return (_logsumexp(xp, logits) - picked)[..., 0]

    def infer_shape(self, labels, logits):
        check_labels(labels, logits)
        return None if logits is None else logits[:-1]

    def infer_dtype(self, labels, logits):
        return logits

    def backward(self, grad):
        labels, logits = self.inputs
        return [None, SparseSoftmaxCrossEntropyGrad(grad, labels, logits)]


class SparseSoftmaxCrossEntropyGrad(Operation):
    """grad[:, None] * (softmax(logits) - one_hot(labels)), fused; NaN rows for bad labels
    where they are not checked (see SparseSoftmaxCrossEntropy)."""

    fresh = True
    reads_values = True
    labels_input = 1

    def forward(self, xp, grad, labels, logits):
        reads = run_context.reads_without_sync
        check_labels(labels.shape, logits.shape)
        k = logits.shape[-1]
        if reads:  # a training step skips the loss's forward: check here too
            check_label_values(xp, labels, k)
        probs = self.probabilities(xp, logits)
        classes = xp.arange(k, dtype=labels.dtype, device=array_api_compat.device(labels))
        hot = xp.astype(labels[..., None] == classes, probs.dtype)
        d_logits = grad[..., None] * (probs - hot)
        if reads:
            return d_logits
        return xp.where(_valid_labels(xp, labels, k)[..., None], d_logits, math.nan)

    @staticmethod
    def probabilities(xp, logits):
        """softmax(logits) over the last axis, as the gradient computes it."""
        return xp.exp(_log_softmax(xp, logits))

    def infer_shape(self, grad, labels, logits):
        return logits

    def infer_dtype(self, grad, labels, logits):
        return logits

    def backward(self, grad):
        raise NotImplementedError(
            "second derivatives of sparse_softmax_cross_entropy are not implemented; "
            "compose log_softmax with a one-hot product instead"
        )


class BinaryCrossEntropy(Operation):
    """-(y log p + (1-y) log(1-p)) with each log floored at -100, as PyTorch's BCELoss."""

    fresh = True

    def forward(self, xp, p, y):
        log_p = xp.maximum(xp.log(p), BCE_LOG_FLOOR)
        log_q = xp.maximum(xp.log(1.0 - p), BCE_LOG_FLOOR)
        return -(y * log_p + (1.0 - y) * log_q)

    def infer_shape(self, p, y):
        return broadcast_shapes(self, p, y)

    def backward(self, grad):
        p, y = self.inputs
        return [sum_to(BinaryCrossEntropyGrad(grad, p, y), p), None]


class BinaryCrossEntropyGrad(Operation):
    """grad * (p - y) / max(p (1 - p), 1e-12): PyTorch's finite gradient at p = 0 or 1."""

    fresh = True

    def forward(self, xp, grad, p, y):
        return grad * (p - y) / xp.maximum(p * (1.0 - p), 1e-12)

    def infer_shape(self, grad, p, y):
        return broadcast_shapes(self, grad, p, y)


class SigmoidBinaryCrossEntropy(Operation):
    """BCE of sigmoid(logits): max(x, 0) - x y + log(1 + exp(-|x|)), finite for any x."""

    fresh = True

    def forward(self, xp, x, y):
        return xp.maximum(x, 0.0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))

    def infer_shape(self, x, y):
        return broadcast_shapes(self, x, y)

    def backward(self, grad):
        x, y = self.inputs
        d_x = multiply(grad, subtract(sigmoid(x), y))
        return [sum_to(d_x, x), sum_to(multiply(grad, negative(x)), y)]


REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_sample, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "sum":
        return reduce_sum(per_sample)
    if reduction == "mean":
        return reduce_mean(per_sample)
    return per_sample


def cross_entropy(c, p, reduction="sum"):
    """The series' criterion for probabilities ``p`` and one-hot targets ``c``:
    ``negative(reduce_sum(reduce_sum(multiply(c, log(p)), axis=1)))`` (reduction="sum").

    >>> import xpnn as xn
    >>> J = xn.losses.cross_entropy([[1.0, 0.0]], [[0.5, 0.5]])
    >>> round(xn.Session().run(J).item(), 4)
    0.6931
    """
    log_likelihood = reduce_sum(multiply(c, log(p)), axis=1)
    if reduction == "sum":
        return negative(reduce_sum(log_likelihood))
    return _reduce(negative(log_likelihood), reduction)


def softmax_cross_entropy(labels, logits, reduction="mean"):
    """Cross-entropy of softmax(logits) against probability rows ``labels`` (one-hot or
    soft), fused and stable: finite for logits of any size.

    >>> import xpnn as xn
    >>> loss = xn.losses.softmax_cross_entropy([[0.0, 1.0]], [[1e4, -1e4]])
    >>> xn.Session().run(loss).item()
    20000.0
    """
    return _reduce(SoftmaxCrossEntropy(labels, logits), reduction)


def sparse_softmax_cross_entropy(labels, logits, reduction="mean", weights=None):
    """Cross-entropy of softmax(logits) against integer class ``labels`` (the logits' shape
    without the class axis: (n,), or (batch, time) for per-step labels): a placeholder, or
    a list or array of any backend (made a constant, kept as integers).

    ``weights`` (TF1's ``weights``, broadcast to the labels' shape: e.g. a (batch, time)
    mask of the real steps) scales each entry's loss; ``"mean"`` is then the weighted mean
    sum(weights * loss) / sum(weights), as ``tf.contrib.seq2seq.sequence_loss``, and 0 when
    every weight is 0; ``"sum"`` and ``"none"`` give the weighted sum and entries. A label
    under a zero weight must still be a class index (0 will do): it is not read.

    Labels must lie in [0, n_classes). Where the Session can read them without stalling its
    device (NumPy, array-api-strict, and PyTorch or JAX on the CPU) a label outside raises
    ValueError. Elsewhere (CuPy, CUDA tensors) they are not read: a row with a bad label
    gets a NaN loss and a NaN gradient row, so a mean over the batch is NaN too. Validate
    labels on the host to get the error there (``xn.data.one_hot`` does).

    >>> import xpnn as xn
    >>> logits = xn.constant([[[2.0, 0.0], [0.0, 2.0], [9.0, 0.0]]])  # 1 sequence, 3 steps
    >>> loss = xn.losses.sparse_softmax_cross_entropy([[0, 1, 1]], logits,
    ...                                               weights=[[1.0, 1.0, 0.0]])
    >>> round(xn.Session().run(loss).item(), 4)  # the padded third step counts for nothing
    0.1269
    """
    if not isinstance(labels, Node):
        labels = Constant(to_numpy(labels))  # the backend's own transfer; keeps integers
    per_entry = SparseSoftmaxCrossEntropy(labels, logits)
    if weights is None:
        return _reduce(per_entry, reduction)
    return _weighted(per_entry, as_node(weights), reduction)


def _weighted(per_entry, weights, reduction):
    """``per_entry * weights`` reduced; "mean" divides by the sum of the weights."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    shape, given = per_entry.shape, weights.shape
    if shape is not None and given is not None and (len(given) > len(shape) or any(
            w not in (1, None) and s is not None and w != s
            for w, s in zip(given[::-1], shape[::-1]))):
        raise ValueError(
            f"sparse_softmax_cross_entropy: weights of shape {tuple(given)} do not broadcast "
            f"to the labels' shape {tuple(shape)}: give one weight per label (e.g. a "
            f"(batch, time) mask of the real steps), or a shape that broadcasts to it"
        )
    weighted = multiply(per_entry, weights)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return reduce_sum(weighted)
    total = reduce_sum(multiply(ones_like(per_entry), weights))  # the weights, broadcast
    # Every weight 0 (a batch of padding only) gives 0, as TF1's losses, not 0 / 0.
    return divide(reduce_sum(weighted), where(equal(total, 0.0), ones_like(total), total))


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
    return _reduce(square(subtract(predictions, targets)), reduction)


__all__ = ["BCE_LOG_FLOOR", "SoftmaxCrossEntropy", "check_labels", "check_label_values",
           "label_range_error", "SparseSoftmaxCrossEntropy", "SparseSoftmaxCrossEntropyGrad",
           "BinaryCrossEntropy", "BinaryCrossEntropyGrad", "SigmoidBinaryCrossEntropy",
           "REDUCTIONS", "cross_entropy", "softmax_cross_entropy", "sparse_softmax_cross_entropy",
           "binary_cross_entropy", "sigmoid_binary_cross_entropy", "mean_squared_error"]
