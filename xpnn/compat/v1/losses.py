"""``tf.losses`` (TF1's ``tf.compat.v1.losses``): ``labels`` first, ``weights`` (a number or
per-example), and TF1's default reduction ``SUM_BY_NONZERO_WEIGHTS``: the weighted sum
divided by the number of nonzero weights (broadcast to the losses' shape). Each loss is
added to the graph's ``LOSSES`` collection, as in TF1.

Its names: Reduction, compute_weighted_loss, mean_squared_error, absolute_difference,
log_loss, huber_loss, hinge_loss, sigmoid_cross_entropy, softmax_cross_entropy,
sparse_softmax_cross_entropy, add_loss, get_losses, get_regularization_losses,
get_regularization_loss, get_total_loss.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> logits = [[2.0, 0.0], [0.0, 2.0]]
>>> loss = tf.losses.sparse_softmax_cross_entropy([1, 1], logits)
>>> round(float(tf.Session().run(loss)), 4)  # the mean of 2.1269 and 0.1269
1.1269
"""

from __future__ import annotations

import sys

from ... import ops
from ...ops import logic
from . import nn
from .graphs import GraphKeys, add_to_collection, get_collection, op_name
from .tensors import as_tensor
from .unsupported import module_getattr


class Reduction:
    """How a weighted loss is reduced to one value."""

    NONE = "none"
    SUM = "weighted_sum"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    MEAN = "weighted_mean"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_BY_NONZERO_WEIGHTS)


def _div_no_nan(total, count):
    """total / count, 0 where count is 0 (TF1's div_no_nan)."""
    safe = logic.where(logic.equal(count, 0.0), ops.ones_like(count), count)
    return logic.where(logic.equal(count, 0.0), ops.zeros_like(total), ops.divide(total, safe))


def compute_weighted_loss(losses, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``losses * weights`` reduced by ``reduction``, in float32 (TF1's)."""
    if reduction not in Reduction.all():
        raise ValueError(f"Invalid Reduction Key {reduction}.")
    losses = as_tensor(losses)
    dtype = losses.dtype
    if dtype != "float32":
        losses = ops.cast(losses, "float32")
    weights = ops.cast(as_tensor(weights), "float32")
    weighted = ops.multiply(losses, weights)
    if reduction == Reduction.NONE:
        loss = weighted
    else:
        loss = ops.reduce_sum(weighted)
        ones = ops.ones_like(losses)
        if reduction == Reduction.MEAN:
            loss = _div_no_nan(loss, ops.reduce_sum(ops.multiply(ones, weights)))
        elif reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
            present = ops.cast(logic.not_equal(weights, 0.0), "float32")
            loss = _div_no_nan(loss, ops.reduce_sum(ops.multiply(ones, present)))
        elif reduction == Reduction.SUM_OVER_BATCH_SIZE:
            loss = _div_no_nan(loss, ops.reduce_sum(ones))
    if dtype is not None and dtype != "float32":
        loss = ops.cast(loss, dtype)
    loss = ops.identity(loss, name=op_name(scope, "value"))
    if loss_collection is not None:
        add_to_collection(loss_collection, loss)
    return loss


def _weighted(losses, weights, scope, loss_collection, reduction):
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


DEFAULT = Reduction.SUM_BY_NONZERO_WEIGHTS


def mean_squared_error(labels, predictions, weights=1.0, scope=None,
                       loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    losses = ops.square(ops.subtract(as_tensor(predictions), as_tensor(labels)))
    return _weighted(losses, weights, scope, loss_collection, reduction)


def absolute_difference(labels, predictions, weights=1.0, scope=None,
                        loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    losses = ops.abs(ops.subtract(as_tensor(predictions), as_tensor(labels)))
    return _weighted(losses, weights, scope, loss_collection, reduction)


def log_loss(labels, predictions, weights=1.0, epsilon=1e-7, scope=None,
             loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    """-y log(p + eps) - (1 - y) log(1 - p + eps) per entry."""
    y, p = as_tensor(labels), as_tensor(predictions)
    losses = ops.subtract(
        ops.negative(ops.multiply(y, ops.log(ops.add(p, epsilon)))),
        ops.multiply(ops.subtract(1.0, y), ops.log(ops.add(ops.subtract(1.0, p), epsilon))))
    return _weighted(losses, weights, scope, loss_collection, reduction)


def huber_loss(labels, predictions, weights=1.0, delta=1.0, scope=None,
               loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    """0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta), for e = predictions - labels."""
    error = ops.abs(ops.subtract(as_tensor(predictions), as_tensor(labels)))
    quadratic = ops.minimum(error, delta)
    linear = ops.subtract(error, quadratic)
    losses = ops.add(ops.multiply(0.5, ops.multiply(quadratic, quadratic)),
                     ops.multiply(delta, linear))
    return _weighted(losses, weights, scope, loss_collection, reduction)


def hinge_loss(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=DEFAULT):
    """max(0, 1 - (2 y - 1) logits) for labels y in {0, 1}."""
    signs = ops.subtract(ops.multiply(2.0, as_tensor(labels)), 1.0)
    losses = ops.relu(ops.subtract(1.0, ops.multiply(signs, as_tensor(logits))))
    return _weighted(losses, weights, scope, loss_collection, reduction)


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing=0,
                          scope=None, loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    labels, logits = as_tensor(multi_class_labels), as_tensor(logits)
    labels = ops.cast(labels, logits.dtype or "float32")
    if label_smoothing > 0:
        labels = ops.add(ops.multiply(labels, 1.0 - label_smoothing), 0.5 * label_smoothing)
    losses = nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return _weighted(losses, weights, scope, loss_collection, reduction)


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    labels, logits = as_tensor(onehot_labels), as_tensor(logits)
    labels = ops.cast(labels, logits.dtype or "float32")
    if label_smoothing > 0:
        classes = labels.shape[-1] if labels.shape else None
        if classes is None:
            raise NotImplementedError("softmax_cross_entropy(label_smoothing=...) needs the "
                                      "number of classes in the labels' static shape")
        labels = ops.add(ops.multiply(labels, 1.0 - label_smoothing),
                         label_smoothing / classes)
    losses = nn.softmax_cross_entropy_with_logits_v2(ops.stop_gradient(labels), logits)
    return _weighted(losses, weights, scope, loss_collection, reduction)


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None,
                                 loss_collection=GraphKeys.LOSSES, reduction=DEFAULT):
    labels, logits = as_tensor(labels), as_tensor(logits)
    if labels.shape is not None and logits.shape is not None and \
            len(labels.shape) == len(logits.shape) and labels.shape[-1] == 1:
        labels = ops.reshape(labels, tuple(-1 if d is None else d for d in labels.shape[:-1]))
    losses = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return _weighted(losses, weights, scope, loss_collection, reduction)


def add_loss(loss, loss_collection=GraphKeys.LOSSES):
    if loss_collection is not None:
        add_to_collection(loss_collection, loss)


def get_losses(scope=None, loss_collection=GraphKeys.LOSSES):
    return get_collection(loss_collection, scope)


def get_regularization_losses(scope=None):
    return get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)


def get_regularization_loss(scope=None, name="total_regularization_loss"):
    losses = get_regularization_losses(scope)
    if not losses:
        return as_tensor(0.0)
    total = losses[0]
    for loss in losses[1:]:
        total = ops.add(total, loss)
    return ops.identity(total, name=op_name(name, "total_regularization_loss"))


def get_total_loss(add_regularization_losses=True, name="total_loss", scope=None):
    losses = get_losses(scope) + (get_regularization_losses(scope)
                                  if add_regularization_losses else [])
    if not losses:
        raise ValueError("No losses found in the LOSSES collection")
    total = losses[0]
    for loss in losses[1:]:
        total = ops.add(total, loss)
    return ops.identity(total, name=op_name(name, "total_loss"))


__all__ = ["Reduction", "compute_weighted_loss", "mean_squared_error", "absolute_difference",
           "log_loss", "huber_loss", "hinge_loss", "sigmoid_cross_entropy",
           "softmax_cross_entropy", "sparse_softmax_cross_entropy", "add_loss", "get_losses",
           "get_regularization_losses", "get_regularization_loss", "get_total_loss"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.losses")
