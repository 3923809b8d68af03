"""``Model.compile``'s losses and metrics by Keras's names, built on the graph: each loss is
a per-sample node weighted by a ``sample_weight`` placeholder and averaged over the batch
(Keras's reduction); each metric is a per-batch sum the loop divides by the rows. The
label checks here are the errors that teach (one-hot labels given to a sparse loss, one
output unit given two classes)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Node, placeholder
from ..host import to_numpy
from ..ops import losses

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy",
          "binary_crossentropy", "mse", "mae", "huber")
_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "huber_loss": "huber"}
METRICS = ("accuracy", "acc", "mae", "mse", "mean_absolute_error", "mean_squared_error")
_EPS = 1e-7  # Keras's epsilon: probabilities are clipped to [eps, 1 - eps] before the log


class Spec:
    """What ``compile`` built: ``labels`` and ``weights`` placeholders, the ``loss`` node,
    the metrics' per-batch ``sums``, and how to check ``y`` (``targets``)."""

    def __init__(self, name, labels, weights, loss, plain, sums, n_classes):
        self.name, self.labels, self.weights, self.loss = name, labels, weights, loss
        self.plain = plain
        self.sums, self.n_classes = sums, n_classes

    def targets(self, y, n):
        """``y`` checked against the loss, as the labels placeholder's dtype (host)."""
        if self.labels is None:
            if y is not None:
                raise ValueError("this model's loss takes no labels (compile(loss=<node>) "
                                 "without y_true=): call fit(x) without y")
            return None
        if y is None:
            raise ValueError(f"fit/evaluate need labels y for loss {self.name!r}")
        host = np.asarray(to_numpy(y))
        if self.name == "sparse_categorical_crossentropy":
            return sparse_labels(host, n, self.labels.shape, self.n_classes, self.name)
        want = tuple(self.labels.shape)
        if host.ndim == len(want) - 1 and want[-1] == 1:
            host = host[..., None]  # (n,) for one output unit, as Keras takes it
        if host.shape[0] != n or len(host.shape) != len(want) or any(
                w not in (None, d) for w, d in zip(want[1:], host.shape[1:])):
            raise ValueError(f"labels must have shape ({n}, {', '.join(map(str, want[1:]))}) "
                             f"to match X and the model's output for loss {self.name!r}, got "
                             f"{host.shape}")
        if self.name == "binary_crossentropy" and ((host < 0) | (host > 1)).any():
            raise ValueError("binary_crossentropy takes labels in [0, 1], got "
                             f"{host[(host < 0) | (host > 1)][0]}")
        return host.astype(self.labels.dtype, copy=False)


def sparse_labels(host, n, shape, k, loss="sparse_categorical_crossentropy"):
    """Integer class labels checked for a model of ``k`` outputs, with the hints."""
    want = (n, *shape[1:])
    if host.shape == (n, k) and len(want) == 1 and k > 1:
        raise ValueError(f"labels of shape {host.shape} look one-hot (a row per sample of "
                         f"{k} classes), but the loss {loss!r} takes one class index per "
                         f"sample: pass integer labels (y.argmax(1)) or use "
                         f"loss='categorical_crossentropy'")
    if host.dtype.kind not in "iu":
        whole = (np.isfinite(host) & (host == np.round(host)) if host.dtype.kind == "f"
                 else np.zeros(host.shape, bool))
        if not whole.all():
            raise ValueError(f"labels must be integers in [0, {k}), got {host[~whole][0]} "
                             f"(dtype {host.dtype})")
    if host.shape != want:
        raise ValueError(f"labels must have shape {want} to match X, got {host.shape}")
    one_unit(host, k)
    bad = (host < 0) | (host >= k)
    if bad.any():
        raise ValueError(f"label {host[bad][0]} is outside [0, {k}): this model has {k} "
                         f"classes")
    return host.astype(np.int32, copy=False)


def one_unit(labels, k):
    """One output unit cannot tell classes apart under a softmax: say what to do."""
    if k == 1 and (labels != 0).any():
        raise ValueError("the model has 1 output unit, but the labels hold classes 0 and 1: "
                         "a softmax over one unit is always 1; use 2 outputs (the last "
                         "layer Linear(..., 2)) or loss='binary_crossentropy' (xn.nn.Model)")


def class_weights(class_weight, y, n_classes):
    """Each sample's weight from ``{class: weight}``; one-hot labels count by their argmax."""
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class: weight}}, got {class_weight!r}")
    classes = np.asarray(y)
    if classes.ndim == 2 and classes.shape[1] > 1:
        classes = classes.argmax(1)
    classes = classes.reshape(len(classes), -1)
    if classes.shape[1] != 1:
        raise ValueError("class_weight takes one label per sample; for per-step labels use "
                         "sample_weight")
    classes = np.round(classes[:, 0]).astype(np.int64)
    missing = sorted(set(classes.tolist()) - set(class_weight))
    if missing:
        raise ValueError(f"class_weight has no weight for class {missing[0]} (it has "
                         f"{sorted(class_weight)}): give every class in y a weight")
    return np.asarray([class_weight[c] for c in classes], np.float32)


def _per_sample(node):
    """Mean over every axis but the first: (n,)."""
    rank = len(node.shape) if node.shape is not None else 1
    return ops.reduce_mean(node, axis=list(range(1, rank))) if rank > 1 else node


def _logits_of(out, from_logits, kind):
    """(the node the loss reads, whether it is logits): a softmax/sigmoid output with
    from_logits None or False is read through its input, the logits (stable, as Keras)."""
    if from_logits:
        return out, True
    if out.type == kind and out.inputs:
        return out.inputs[0], True
    if from_logits is None:
        return out, True
    return out, False


def _named_loss(name, out, from_logits):
    """(labels placeholder, per-entry loss node, whether the output is logits)."""
    shape = tuple(out.shape)
    if name == "sparse_categorical_crossentropy":
        labels = placeholder("int32", shape[:-1], name="y_true")
        x, logits = _logits_of(out, from_logits, "Softmax")
        if logits:
            return labels, losses.sparse_softmax_cross_entropy(labels, x, "none"), True
        picked = ops.reduce_sum(ops.multiply(ops.one_hot(labels, shape[-1], dtype=out.dtype),
                                             ops.log(ops.clip(x, _EPS, 1 - _EPS))), axis=-1)
        return labels, ops.negative(picked), False
    labels = placeholder(out.dtype, shape, name="y_true")
    if name == "categorical_crossentropy":
        x, logits = _logits_of(out, from_logits, "Softmax")
        log_p = ops.log_softmax(x) if logits else ops.log(ops.clip(x, _EPS, 1 - _EPS))
        return labels, ops.negative(ops.reduce_sum(ops.multiply(labels, log_p), axis=-1)), logits
    if name == "binary_crossentropy":
        x, logits = _logits_of(out, from_logits, "Sigmoid")
        if logits:
            return labels, losses.sigmoid_binary_cross_entropy(x, labels, "none"), True
        p = ops.clip(x, _EPS, 1 - _EPS)
        return labels, ops.negative(labels * ops.log(p) + (1.0 - labels) * ops.log(1.0 - p)), False
    diff = ops.subtract(out, labels)
    if name == "mse":
        return labels, ops.square(diff), None
    if name == "mae":
        return labels, ops.abs(diff), None
    small = ops.less_equal(ops.abs(diff), 1.0)  # huber, Keras's delta 1
    return labels, ops.where(small, 0.5 * ops.square(diff), ops.abs(diff) - 0.5), None


def _accuracy(loss, out, labels, logits):
    """Keras's rule: sparse for the sparse loss, binary for binary cross-entropy or one
    output unit, categorical otherwise. Binary thresholds probabilities at 0.5 (logits at
    0, the same decision)."""
    if loss == "sparse_categorical_crossentropy":
        hits = ops.equal(ops.cast(ops.argmax(out), "int32"), labels)
    elif loss == "binary_crossentropy" or out.shape[-1] == 1:
        cut = 0.0 if logits else 0.5
        hits = ops.equal(ops.cast(ops.greater(out, cut), out.dtype), labels)
    else:
        hits = ops.equal(ops.argmax(out), ops.argmax(labels))
    return ops.reduce_sum(_per_sample(ops.cast(hits, out.dtype)))


def _metric(name, loss, out, labels, logits):
    if name not in METRICS:
        raise ValueError(f"metrics takes names among {list(METRICS)}, got {name!r}")
    if labels is None:
        raise ValueError(f"metric {name!r} needs labels: compile(..., y_true=<placeholder>)")
    if name in ("accuracy", "acc"):
        return _accuracy(loss, out, labels, logits)
    diff = ops.subtract(out, ops.cast(labels, out.dtype))
    entries = ops.abs(diff) if name in ("mae", "mean_absolute_error") else ops.square(diff)
    return ops.reduce_sum(_per_sample(entries))


def build(out, loss, metrics, from_logits, y_true) -> Spec:
    """The loss and metric nodes for ``compile`` (see ``Model.compile``)."""
    if out.shape is None or len(out.shape) < 1:
        raise ValueError(f"the model's output must have a batch axis, got shape {out.shape}")
    name, logits = loss, from_logits
    if isinstance(loss, Node):
        labels, per, name = y_true, loss, "custom"
    elif callable(loss):
        labels = y_true if y_true is not None else placeholder(out.dtype, out.shape,
                                                               name="y_true")
        per, name = loss(labels, out), getattr(loss, "__name__", "custom")
    else:
        key = _ALIASES.get(loss, loss)
        if key not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, a function "
                             f"loss(y_true, y_pred) or a node, got {loss!r}")
        labels, per, _ = _named_loss(key, out, from_logits)
        name = key
    if logits is None:  # is the output itself logits (for binary accuracy's threshold)
        logits = out.type not in ("Softmax", "Sigmoid")
    weights = placeholder(out.dtype, (None,), name="sample_weight")
    if per.shape is not None and len(per.shape) == 0:
        node = plain = per  # a scalar loss of the user's: no per-sample weights
        weights = None
    else:
        plain = ops.reduce_mean(_per_sample(per))
        node = ops.reduce_mean(ops.multiply(_per_sample(per), weights))
    sums = {m: _metric(m, name, out, labels, logits) for m in metrics or []}
    k = out.shape[-1] if len(out.shape) > 1 else 1
    return Spec(name, labels, weights, node, plain, sums, k)
