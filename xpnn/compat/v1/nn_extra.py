"""More of ``tf.nn``: the activations ``selu``, ``softsign``, ``swish``, ``crelu``;
``weighted_cross_entropy_with_logits``; ``in_top_k``; and (from ``sampled``) ``nce_loss``,
``sampled_softmax_loss`` and the candidate samplers.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> hit = tf.nn.in_top_k([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4]], [2, 0], k=1)
>>> tf.Session().run(hit).tolist()
[False, False]
"""

from __future__ import annotations

from ... import ops
from .elementary import softsign
from .graphs import op_name
from .sampled import (
    log_uniform_candidate_sampler,
    nce_loss,
    sampled_softmax_loss,
    uniform_candidate_sampler,
)
from .tensors import as_tensor


def selu(features, name=None):
    return ops.selu(as_tensor(features), name=op_name(name, "Selu"))


def swish(features, name=None):
    """features * sigmoid(features)."""
    return ops.swish(as_tensor(features), name=op_name(name, "swish_f32"))


def crelu(features, name=None, axis=-1):
    """relu(x) and relu(-x) side by side along ``axis``."""
    return ops.crelu(as_tensor(features), int(axis), name=op_name(name, "CRelu"))


def weighted_cross_entropy_with_logits(labels=None, logits=None, pos_weight=None, name=None,
                                       targets=None):
    """The sigmoid cross-entropy with the positive term weighted by ``pos_weight``, per
    entry, as TF1 computes it: (1 - z) x + (1 + (pos_weight - 1) z) (log1p(exp(-|x|)) +
    max(-x, 0)). TF1.x's ``targets=`` is the older name of ``labels=``."""
    if targets is not None:
        if labels is not None:
            raise ValueError("weighted_cross_entropy_with_logits: give labels or targets, "
                             "not both")
        labels = targets
    if labels is None or logits is None or pos_weight is None:
        raise ValueError("weighted_cross_entropy_with_logits needs labels (or targets), "
                         "logits and pos_weight")
    z, x = as_tensor(labels), as_tensor(logits)
    log_weight = ops.add(ops.multiply(ops.subtract(pos_weight, 1.0), z), 1.0)
    softplus = ops.add(ops.log1p(ops.exp(ops.negative(ops.abs(x)))), ops.relu(ops.negative(x)))
    loss = ops.add(ops.multiply(ops.subtract(1.0, z), x), ops.multiply(log_weight, softplus))
    return ops.identity(loss, name=op_name(name, "logistic_loss"))


def in_top_k(predictions, targets, k, name=None):
    """Whether each ``targets[i]`` is among the k largest of ``predictions[i]`` (bool; ties
    at the boundary are in, as TF1's)."""
    return ops.in_top_k(as_tensor(predictions), as_tensor(targets), int(k),
                        name=op_name(name, "in_top_k"))


__all__ = ["selu", "softsign", "swish", "crelu", "weighted_cross_entropy_with_logits",
           "in_top_k", "nce_loss", "sampled_softmax_loss", "log_uniform_candidate_sampler",
           "uniform_candidate_sampler"]
