"""``tf.nn``: activations, the cross-entropies with logits (keyword ``labels=``/``logits=``,
one value per example, no reduction), ``l2_loss``, ``bias_add``, ``moments``, dropout with
``keep_prob`` or ``rate`` (a number or a placeholder), and conv/pool with TF1's arguments.

Its names: relu, relu6, elu, leaky_relu, softplus, sigmoid, tanh, softmax, log_softmax,
l2_loss, l2_normalize, softmax_cross_entropy_with_logits,
softmax_cross_entropy_with_logits_v2, sparse_softmax_cross_entropy_with_logits,
sigmoid_cross_entropy_with_logits, bias_add, xw_plus_b, moments, batch_normalization,
dropout, conv2d, max_pool, max_pool2d, avg_pool, avg_pool2d, embedding_lookup, top_k,
selu, softsign, swish, crelu, weighted_cross_entropy_with_logits, in_top_k, nce_loss,
sampled_softmax_loss, log_uniform_candidate_sampler, uniform_candidate_sampler,
rnn_cell, dynamic_rnn, static_rnn, bidirectional_dynamic_rnn.

The candidate samplers (and nce_loss, sampled_softmax_loss without ``sampled_values=``)
draw from xpnn's generator, not TF's: see ``xpnn.compat.v1.sampled``.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> loss = tf.nn.softmax_cross_entropy_with_logits_v2(labels=[[0.0, 1.0]], logits=[[1.0, 2.0]])
>>> [round(float(v), 6) for v in tf.Session().run(loss)]
[0.313262]
"""

from __future__ import annotations

import sys

from ... import normalization, ops
from ...graph import Node
from ...ops import conv
from . import math as _math
from . import rnn_cell
from .graphs import op_name
from .nn_extra import *  # noqa: F403 - selu ... sampled_softmax_loss
from .nn_extra import __all__ as _more
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn, static_rnn
from .tensors import as_tensor
from .unsupported import module_getattr

relu = _math.relu
relu6 = _math.relu6
elu = _math.elu
softplus = _math.softplus
sigmoid = _math.sigmoid
tanh = _math.tanh
l2_loss = _math.l2_loss


def leaky_relu(features, alpha=0.2, name=None):
    return ops.leaky_relu(as_tensor(features), alpha, name=op_name(name, "LeakyRelu"))


def softmax(logits, axis=None, name=None, dim=None):
    axis = dim if axis is None else axis
    return ops.softmax(as_tensor(logits), -1 if axis is None else int(axis),
                       name=op_name(name, "Softmax"))


def log_softmax(logits, axis=None, name=None, dim=None):
    axis = dim if axis is None else axis
    return ops.log_softmax(as_tensor(logits), -1 if axis is None else int(axis),
                           name=op_name(name, "LogSoftmax"))


def _keywords(what, sentinel, labels, logits):
    if sentinel is not None or labels is None or logits is None:
        raise ValueError(f"Only call `{what}` with named arguments (labels=..., logits=..., "
                         "...)")
    return as_tensor(labels), as_tensor(logits)


def _last_axis(what, axis):
    if axis not in (None, -1):
        raise NotImplementedError(f"{what}(axis={axis}): xpnn's cross-entropy takes the "
                                  "classes on the last axis; transpose the logits there")


def softmax_cross_entropy_with_logits_v2(labels, logits, axis=None, name=None, dim=None):
    """-sum(labels * log_softmax(logits)) per example (labels: probability rows); the
    gradient flows into the labels too."""
    _last_axis("softmax_cross_entropy_with_logits_v2", dim if axis is None else axis)
    labels, logits = as_tensor(labels), as_tensor(logits)
    return ops.identity(ops.SoftmaxCrossEntropy(labels, logits),
                             name=op_name(name, "softmax_cross_entropy_with_logits"))


def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, dim=-1,
                                      name=None, axis=None):
    """As the _v2 function, keyword arguments only, no gradient into the labels."""
    labels, logits = _keywords("softmax_cross_entropy_with_logits", _sentinel, labels, logits)
    return softmax_cross_entropy_with_logits_v2(ops.stop_gradient(labels), logits,
                                                axis if axis is not None else dim, name)


def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None,
                                             name=None):
    """The cross-entropy of each example against its class index (labels: integers of the
    logits' shape without the last axis)."""
    labels, logits = _keywords("sparse_softmax_cross_entropy_with_logits", _sentinel, labels,
                               logits)
    return ops.identity(ops.SparseSoftmaxCrossEntropy(labels, logits),
                             name=op_name(name, "SparseSoftmaxCrossEntropyWithLogits"))


def sigmoid_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """max(x, 0) - x z + log(1 + exp(-|x|)) per entry, for logits x and targets z."""
    labels, logits = _keywords("sigmoid_cross_entropy_with_logits", _sentinel, labels, logits)
    return ops.identity(ops.SigmoidBinaryCrossEntropy(logits, labels),
                             name=op_name(name, "logistic_loss"))


def bias_add(value, bias, data_format=None, name=None):
    return conv.bias_add(as_tensor(value), as_tensor(bias), data_format or "NHWC",
                         name=op_name(name, "BiasAdd"))


def xw_plus_b(x, weights, biases, name=None):
    return bias_add(_math.matmul(x, weights), biases, name=name or "xw_plus_b")


def moments(x, axes, shift=None, name=None, keep_dims=None, keepdims=None):
    """(mean, variance) over ``axes`` (the biased variance, as TF1's)."""
    keep = bool(keepdims if keep_dims is None else keep_dims)
    return normalization.moments(as_tensor(x), list(axes), keepdims=keep)


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None):
    return normalization.batch_normalization(x, mean, variance, offset, scale,
                                             variance_epsilon, name=op_name(name, "batchnorm"))


def l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    """x / sqrt(max(sum(x ** 2), epsilon)) over ``axis``, as TF1's."""
    axis = dim if axis is None else axis
    x = as_tensor(x)
    square_sum = ops.reduce_sum(ops.square(x), axis=axis, keepdims=True)
    inverse = _math.rsqrt(ops.maximum(square_sum, epsilon))
    return ops.multiply(x, inverse, name=op_name(name, "l2_normalize"))


def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None):
    """Each entry kept with probability ``keep_prob`` (or dropped with ``rate``), the kept
    ones divided by it; either may be a number or a placeholder (fed 1.0, resp. 0.0, to
    switch it off). The masks come from the Session's generator, seeded by the graph's
    seed (``tf.set_random_seed``): ``seed`` is not used."""
    if noise_shape is not None:
        raise NotImplementedError("tf.nn.dropout(noise_shape=...): xpnn draws one mask entry "
                                  "per element")
    if (keep_prob is None) == (rate is None):
        raise ValueError("tf.nn.dropout: give keep_prob or rate (exactly one)")
    x = as_tensor(x)
    if isinstance(keep_prob, Node):  # its own mask, which checks keep_prob in (0, 1]
        mask = ops.random.DropoutKeepMaskOf(x, keep_prob)
        return ops.multiply(x, mask, name=op_name(name, "dropout"))
    if rate is None:
        rate = 1.0 - keep_prob
    if not isinstance(rate, Node) and rate == 0:
        return ops.identity(x, name=op_name(name, "dropout"))
    return ops.dropout(x, rate, name=op_name(name, "dropout"))


def conv2d(input, filter=None, strides=None, padding=None, use_cudnn_on_gpu=True,  # noqa: A002
           data_format="NHWC", dilations=(1, 1, 1, 1), name=None, filters=None):
    """TF1's ``tf.nn.conv2d``: NHWC input, HWIO filter, ``strides=[1, s, s, 1]``,
    ``padding="SAME"`` or ``"VALID"``."""
    filters = filter if filters is None else filters
    if filters is None or strides is None or padding is None:
        raise ValueError("tf.nn.conv2d needs filter, strides and padding")
    return conv.conv2d(as_tensor(input), as_tensor(filters), strides, padding,
                       data_format or "NHWC", dilations, name=op_name(name, "Conv2D"))


def max_pool(value, ksize, strides, padding, data_format="NHWC", name=None, input=None):  # noqa: A002
    """TF1's ``tf.nn.max_pool``: ``ksize``/``strides`` as ``[1, k, k, 1]``."""
    value = input if value is None else value
    return conv.max_pool2d(as_tensor(value), ksize, strides, padding, data_format or "NHWC",
                           name=op_name(name, "MaxPool"))


def avg_pool(value, ksize, strides, padding, data_format="NHWC", name=None, input=None):  # noqa: A002
    """TF1's ``tf.nn.avg_pool``: SAME windows divided by their real entries."""
    value = input if value is None else value
    return conv.avg_pool2d(as_tensor(value), ksize, strides, padding, data_format or "NHWC",
                           name=op_name(name, "AvgPool"))


max_pool2d = max_pool
avg_pool2d = avg_pool


def embedding_lookup(params, ids, partition_strategy="mod", name=None, validate_indices=True,
                     max_norm=None):
    """The rows of ``params`` at ``ids``."""
    params = [as_tensor(p) for p in params] if isinstance(params, (list, tuple)) else (
        as_tensor(params))
    return ops.embedding_lookup(params, as_tensor(ids), max_norm,
                                name=op_name(name, "embedding_lookup"))


def top_k(input, k=1, sorted=True, name=None):  # noqa: A002 - TF1's argument names
    """(values, indices) of the k largest entries along the last axis, largest first."""
    return ops.top_k(as_tensor(input), int(k), sorted, name=op_name(name, "TopKV2"))


__all__ = ["avg_pool", "avg_pool2d", "batch_normalization", "bias_add", "conv2d", "dropout",
           "elu", "embedding_lookup", "l2_loss", "l2_normalize", "leaky_relu", "log_softmax",
           "max_pool", "max_pool2d", "moments", "relu", "relu6", "sigmoid",
           "sigmoid_cross_entropy_with_logits", "softmax", "softmax_cross_entropy_with_logits",
           "softmax_cross_entropy_with_logits_v2", "softplus",
           "sparse_softmax_cross_entropy_with_logits", "tanh", "xw_plus_b", "top_k", *_more]
__all__ += ["bidirectional_dynamic_rnn", "dynamic_rnn", "rnn_cell", "static_rnn"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.nn")
