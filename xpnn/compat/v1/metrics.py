"""``tf.metrics``: streaming metrics as TF1 computes them. Each returns ``(value,
update_op)``: ``update_op`` adds a batch to the metric's local Variables (TF1's
``LOCAL_VARIABLES`` and ``METRIC_VARIABLES``, named ``accuracy/total``, ``auc/true_positives``
...) and gives the metric with that batch counted (a read after the write); ``value`` reads
them as they are. ``tf.local_variables_initializer()`` sets them back to zero.

Its names: accuracy, mean, mean_squared_error, mean_absolute_error, precision, recall, auc,
true_positives, false_positives, false_negatives.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> labels = tf.placeholder(tf.int64, [None]); predicted = tf.placeholder(tf.int64, [None])
>>> accuracy, update = tf.metrics.accuracy(labels, predicted)
>>> sess = tf.Session(); sess.run(tf.local_variables_initializer())
>>> float(sess.run(update, {labels: [1, 0], predicted: [1, 1]}))
0.5
>>> float(sess.run(update, {labels: [1, 1], predicted: [1, 1]})), float(sess.run(accuracy))
(0.75, 0.75)
"""

from __future__ import annotations

import sys

from . import array_ops as _a
from . import math as _m
from . import tensors as _t
from .graphs import GraphKeys, add_to_collections, control_dependencies
from .unsupported import module_getattr
from .variables import Variable, assign_add, variable_scope


def metric_variable(shape, name):
    """A float32 local Variable of zeros, in TF1's LOCAL_VARIABLES and METRIC_VARIABLES."""
    return Variable(_t.zeros(shape), trainable=False, name=name,
                    collections=[GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES])


def _squeezed(predictions, labels=None, weights=None):
    """TF1's ``_remove_squeezable_dimensions``: a last dimension of 1 dropped from the one
    of labels and predictions with a rank more; weights brought to the predictions' rank."""
    predictions = _t.as_tensor(predictions)
    if labels is not None:
        labels = _t.as_tensor(labels)
        p, lab = predictions.shape, labels.shape
        if p is not None and lab is not None:
            if len(p) == len(lab) + 1 and p[-1] == 1:
                predictions = _a.squeeze(predictions, [-1])
            elif len(lab) == len(p) + 1 and lab[-1] == 1:
                labels = _a.squeeze(labels, [-1])
        _compatible(predictions, labels)
    if weights is None:
        return predictions, labels, None
    weights = _t.as_tensor(weights)
    if weights.shape is not None and predictions.shape is not None and weights.shape != ():
        if len(weights.shape) == len(predictions.shape) + 1:
            weights = _a.squeeze(weights, [-1])
        elif len(predictions.shape) == len(weights.shape) + 1:
            weights = _a.expand_dims(weights, -1)
    return predictions, labels, weights


def _compatible(predictions, labels):
    p, lab = predictions.shape, labels.shape
    if p is None or lab is None:
        return
    if len(p) != len(lab) or any(a is not None and b is not None and a != b
                                 for a, b in zip(p, lab)):
        raise ValueError(f"Shapes {list(p)} (predictions) and {list(lab)} (labels) are "
                         "incompatible: give the metric labels and predictions of one shape")


def _weighted(values, weights):
    """(values * weights, the weights broadcast to the values' shape), in float32."""
    weights = _m.multiply(_t.to_float(weights), _t.ones_like(values))
    return _m.multiply(values, weights), weights


def _div_no_nan(x, y, name=None):
    """x / y, and 0 where y is 0."""
    positive = _m.greater(y, 0.0)
    safe = _a.where(positive, y, _t.ones_like(y))
    return _a.where(positive, _m.divide(x, safe), _t.zeros_like(x), name=name)


def _collect(value, update_op, metrics_collections, updates_collections):
    if metrics_collections:
        add_to_collections(metrics_collections, value)
    if updates_collections:
        add_to_collections(updates_collections, update_op)
    return value, update_op


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """The (weighted) mean of every value seen: ``total / count``."""
    with variable_scope(name, "mean", (values, weights)):
        values = _t.to_float(_t.as_tensor(values))
        total = metric_variable([], "total")
        count = metric_variable([], "count")
        if weights is None:
            count_added = _t.to_float(_a.size(values))
        else:
            values, _, weights = _squeezed(values, None, weights)
            values, weights = _weighted(values, weights)
            count_added = _m.reduce_sum(weights)
        updates = [assign_add(total, _m.reduce_sum(values)), assign_add(count, count_added)]
        value = _div_no_nan(total, _m.maximum(count, 0.0), name="value")
        with control_dependencies(updates):
            update_op = _div_no_nan(total, _m.maximum(count, 0.0), name="update_op")
    return _collect(value, update_op, metrics_collections, updates_collections)


def accuracy(labels, predictions, weights=None, metrics_collections=None,
             updates_collections=None, name=None):
    """The (weighted) fraction of predictions equal to the labels."""
    predictions, labels, weights = _squeezed(predictions, labels, weights)
    if labels.dtype != predictions.dtype:
        predictions = _t.cast(predictions, labels.dtype)
    correct = _t.to_float(_m.equal(predictions, labels))
    return mean(correct, weights, metrics_collections, updates_collections,
                name or "accuracy")


def mean_squared_error(labels, predictions, weights=None, metrics_collections=None,
                       updates_collections=None, name=None):
    predictions, labels, weights = _squeezed(predictions, labels, weights)
    squared = _m.squared_difference(labels, predictions)
    return mean(squared, weights, metrics_collections, updates_collections,
                name or "mean_squared_error")


def mean_absolute_error(labels, predictions, weights=None, metrics_collections=None,
                        updates_collections=None, name=None):
    predictions, labels, weights = _squeezed(predictions, labels, weights)
    absolute = _m.abs(_m.subtract(predictions, labels))
    return mean(absolute, weights, metrics_collections, updates_collections,
                name or "mean_absolute_error")


def _count(condition, weights, name, default):
    """(count, update_op) of the (weighted) cases where ``condition`` holds."""
    with variable_scope(name, default):
        count = metric_variable([], "count")
        values = _t.to_float(condition)
        if weights is not None:
            values = _weighted(values, weights)[0]
        update = assign_add(count, _m.reduce_sum(values))
        return _t.identity(count), update


def _as_bools(labels, predictions, weights):
    return _squeezed(_t.cast(_t.as_tensor(predictions), "bool"),
                     _t.cast(_t.as_tensor(labels), "bool"), weights)


def _cases(kind, labels, predictions, weights, metrics_collections, updates_collections,
           name):
    predictions, labels, weights = _as_bools(labels, predictions, weights)
    want_label, want_prediction = {"true_positives": (True, True),
                                   "false_positives": (False, True),
                                   "false_negatives": (True, False)}[kind]
    condition = _m.logical_and(_m.equal(labels, want_label),
                               _m.equal(predictions, want_prediction))
    value, update = _count(condition, weights, name, kind)
    return _collect(value, _alias(update), metrics_collections, updates_collections)


def _alias(update):
    """The update's new value as what fetching it gives (TF1's ``assign_add`` tensor)."""
    with control_dependencies([update]):
        return _t.identity(update.targets[0])


def true_positives(labels, predictions, weights=None, metrics_collections=None,
                   updates_collections=None, name=None):
    return _cases("true_positives", labels, predictions, weights, metrics_collections,
                  updates_collections, name)


def false_positives(labels, predictions, weights=None, metrics_collections=None,
                    updates_collections=None, name=None):
    return _cases("false_positives", labels, predictions, weights, metrics_collections,
                  updates_collections, name)


def false_negatives(labels, predictions, weights=None, metrics_collections=None,
                    updates_collections=None, name=None):
    return _cases("false_negatives", labels, predictions, weights, metrics_collections,
                  updates_collections, name)


def _ratio(kind, labels, predictions, weights, metrics_collections, updates_collections,
           name):
    """precision tp / (tp + fp) or recall tp / (tp + fn), 0 before any case."""
    with variable_scope(name, kind, (predictions, labels, weights)):
        predictions, labels, weights = _as_bools(labels, predictions, weights)
        other = "false_positives" if kind == "precision" else "false_negatives"
        counted = [_cases(k, labels, predictions, weights, None, None, None)
                   for k in ("true_positives", other)]

        def ratio(tp, wrong, name):
            return _div_no_nan(tp, _m.add(tp, wrong), name=name)

        value = ratio(counted[0][0], counted[1][0], "value")
        update_op = ratio(counted[0][1], counted[1][1], "update_op")
    return _collect(value, update_op, metrics_collections, updates_collections)


def precision(labels, predictions, weights=None, metrics_collections=None,
              updates_collections=None, name=None):
    """true positives / (true positives + false positives), of bool (or 0/1) values."""
    return _ratio("precision", labels, predictions, weights, metrics_collections,
                  updates_collections, name)


def recall(labels, predictions, weights=None, metrics_collections=None,
           updates_collections=None, name=None):
    """true positives / (true positives + false negatives), of bool (or 0/1) values."""
    return _ratio("recall", labels, predictions, weights, metrics_collections,
                  updates_collections, name)


def auc(labels, predictions, weights=None, num_thresholds=200, metrics_collections=None,
        updates_collections=None, curve="ROC", name=None, summation_method="trapezoidal",
        thresholds=None):
    """The area under the ROC (or ``curve="PR"``) curve, from counts at ``num_thresholds``
    thresholds spread over [0, 1] (or ``thresholds``) of predictions in [0, 1], summed as
    TF1 does (``"trapezoidal"``, ``"minoring"``, ``"majoring"``)."""
    if curve not in ("ROC", "PR"):
        raise ValueError(f'auc: curve must be "ROC" or "PR", got {curve!r}')
    if summation_method not in ("trapezoidal", "minoring", "majoring"):
        raise NotImplementedError(f"auc(summation_method={summation_method!r}) is not in "
                                  'xpnn.compat.v1: use "trapezoidal", "minoring" or "majoring"')
    if thresholds is None:
        inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        thresholds = [0.0 - 1e-7] + inner + [1.0 + 1e-7]
    else:
        thresholds = [0.0 - 1e-7] + sorted(thresholds) + [1.0 + 1e-7]
    with variable_scope(name, "auc", (labels, predictions, weights)):
        counts, updates = _confusion_at_thresholds(labels, predictions, thresholds, weights)
        value = _area(counts, curve, summation_method, "value")
        with control_dependencies(updates):
            update_op = _area(counts, curve, summation_method, "update_op")
    return _collect(value, update_op, metrics_collections, updates_collections)


def _confusion_at_thresholds(labels, predictions, thresholds, weights):
    """({kind: count Variable per threshold}, their updates) for tp, fn, tn, fp: a
    prediction is positive above a threshold."""
    predictions, labels, weights = _squeezed(_t.to_float(_t.as_tensor(predictions)),
                                             _t.cast(_t.as_tensor(labels), "bool"), weights)
    above = _m.greater(_a.reshape(predictions, [1, -1]),
                       _a.reshape(_t.constant(thresholds, "float32"), [-1, 1]))
    positive = _a.reshape(labels, [1, -1])
    if weights is not None:
        weights = _a.reshape(_weighted(_t.ones_like(predictions), weights)[1], [1, -1])
    cases = {"tp": (positive, above), "fn": (positive, _m.logical_not(above)),
             "tn": (_m.logical_not(positive), _m.logical_not(above)),
             "fp": (_m.logical_not(positive), above)}
    names = {"tp": "true_positives", "fn": "false_negatives", "tn": "true_negatives",
             "fp": "false_positives"}
    counts, updates = {}, []
    for kind, (label_is, prediction_is) in cases.items():
        counts[kind] = metric_variable([len(thresholds)], names[kind])
        hits = _t.to_float(_m.logical_and(label_is, prediction_is))
        if weights is not None:
            hits = _m.multiply(weights, hits)
        updates.append(assign_add(counts[kind], _m.reduce_sum(hits, 1)))
    return counts, updates


def _area(counts, curve, summation_method, name):
    tp, fn, tn, fp = (counts[k] for k in ("tp", "fn", "tn", "fp"))
    epsilon = 1.0e-6
    rec = _m.divide(tp + epsilon, tp + fn + epsilon)
    if curve == "ROC":
        x, y = _m.divide(fp, fp + tn + epsilon), rec
    else:
        x, y = rec, _m.divide(tp + epsilon, tp + fp + epsilon)
    width = x[:-1] - x[1:]
    if summation_method == "trapezoidal":
        height = _m.divide(y[:-1] + y[1:], 2.0)
    elif summation_method == "minoring":
        height = _m.minimum(y[:-1], y[1:])
    else:
        height = _m.maximum(y[:-1], y[1:])
    return _m.reduce_sum(_m.multiply(width, height), name=name)


__all__ = ["accuracy", "mean", "mean_squared_error", "mean_absolute_error", "precision",
           "recall", "auc", "true_positives", "false_positives", "false_negatives"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.metrics")
