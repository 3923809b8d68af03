"""TF1's candidate sampling and the losses over sampled classes: ``tf.nn.nce_loss`` and
``tf.nn.sampled_softmax_loss`` computed as TF1 computes them (the true and sampled classes'
logits, less the log of their expected counts; accidental hits removed for the softmax),
and ``tf.nn.log_uniform_candidate_sampler`` / ``uniform_candidate_sampler``.

The samplers draw on the host from xpnn's generator (NumPy's PCG64 with the graph's and op's
seeds, anew at every run), not TF's: the same distributions (log-uniform / Zipfian,
uniform; without repeats where ``unique``), other classes than TF's for a seed. Give
``sampled_values=`` to fix the sample.

>>> import numpy as np
>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> w, b = tf.ones([5, 2]), tf.zeros([5])
>>> fixed = (tf.constant([3, 4], tf.int64), tf.ones([1, 1]), tf.ones([2]))
>>> loss = tf.nn.nce_loss(w, b, labels=[[0]], inputs=[[1.0, 0.0]], num_sampled=2,
...                       num_classes=5, sampled_values=fixed)
>>> round(float(tf.Session().run(loss)[0]), 6)
2.939785
"""

from __future__ import annotations

import math

import numpy as np

from ... import ops
from ...ops.random import RandomDraw
from .graphs import op_name, op_seeds
from .tensors import as_tensor

_FLOAT32_LOWEST = -3.4028234663852886e38  # TF1's weight of an accidental hit


class CandidateDraw(RandomDraw):
    """``num_sampled`` classes in [0, range_max) and, last, the number of draws it took (more
    than num_sampled where ``unique`` rejected repeats), drawn anew at every run."""

    def __init__(self, num_sampled, range_max, unique, log_uniform, seed, name=None):
        self.num_sampled, self.range_max = int(num_sampled), int(range_max)
        self.unique, self.log_uniform = bool(unique), bool(log_uniform)
        if self.unique and self.num_sampled > self.range_max:
            raise ValueError(f"candidate sampler: {self.num_sampled} unique classes asked "
                             f"for out of range_max={self.range_max}; lower num_sampled")
        super().__init__((self.num_sampled + 1,), "int64", seed, name=name)

    def _one(self, generator, count):
        if self.log_uniform:  # TF1's: exp(u log(range + 1)) - 1, floored
            drawn = np.exp(generator.random(count) * math.log(self.range_max + 1.0))
            return np.minimum(drawn.astype(np.int64) - 1, self.range_max - 1)
        return generator.integers(0, self.range_max, count)

    def sample(self, generator, shape):
        if not self.unique:
            return np.append(self._one(generator, self.num_sampled), self.num_sampled)
        picked, tries = [], 0
        while len(picked) < self.num_sampled:
            for value in self._one(generator, self.num_sampled - len(picked)).tolist():
                tries += 1
                if value not in picked:
                    picked.append(value)
                    if len(picked) == self.num_sampled:
                        break
        return np.array(picked + [tries], dtype=np.int64)


def _probability(classes, range_max, log_uniform):
    classes = ops.cast(classes, "float32")
    if not log_uniform:
        return ops.add(ops.multiply(classes, 0.0), 1.0 / range_max)
    spread = ops.subtract(ops.log(ops.add(classes, 2.0)), ops.log(ops.add(classes, 1.0)))
    return ops.divide(spread, math.log(range_max + 1.0))


def _expected_count(p, num_sampled, tries, unique):
    """TF1's: p * num_sampled, or where unique took more tries, 1 - (1 - p) ** tries."""
    plain = ops.multiply(p, float(num_sampled))
    if not unique:
        return plain
    repeated = ops.negative(ops.expm1(ops.multiply(tries, ops.log1p(ops.negative(p)))))
    return ops.logic.where(ops.logic.equal(tries, float(num_sampled)), plain, repeated)


def _sampler(true_classes, num_sampled, unique, range_max, seed, name, log_uniform):
    draw = CandidateDraw(num_sampled, range_max, unique, log_uniform, op_seeds(seed),
                         name=op_name(name, "CandidateSampler"))
    sampled = ops.identity(draw[:num_sampled])
    tries = ops.cast(draw[num_sampled], "float32")
    true_classes = as_tensor(true_classes)
    true_p = _probability(true_classes, range_max, log_uniform)
    sampled_p = _probability(sampled, range_max, log_uniform)
    return (sampled, _expected_count(true_p, num_sampled, tries, unique),
            _expected_count(sampled_p, num_sampled, tries, unique))


def log_uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                                  seed=None, name=None):
    """(sampled classes int64, true classes' expected counts, sampled ones') with
    P(class) = log((class + 2) / (class + 1)) / log(range_max + 1) (Zipfian)."""
    return _sampler(true_classes, num_sampled, unique, range_max, seed, name, True)


def uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                              seed=None, name=None):
    """As ``log_uniform_candidate_sampler``, every class equally likely."""
    return _sampler(true_classes, num_sampled, unique, range_max, seed, name, False)


def _one_table(weights, what):
    if isinstance(weights, (list, tuple)):
        if len(weights) != 1:
            raise NotImplementedError(f"tf.nn.{what} over {len(weights)} partitioned weights: "
                                      "concatenate them in class order (tf.concat) first")
        weights = weights[0]
    return as_tensor(weights)


def _sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                    sampled_values, remove_accidental_hits, seed, what):
    """(logits, labels) of the true classes then the sampled ones, as TF1 computes them."""
    weights, biases, inputs = _one_table(weights, what), as_tensor(biases), as_tensor(inputs)
    labels = ops.cast(as_tensor(labels), "int64")
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(labels, num_true, num_sampled, True,
                                                       num_classes, seed)
    sampled, true_count, sampled_count = (ops.stop_gradient(as_tensor(v))
                                          for v in sampled_values)
    sampled = ops.cast(sampled, "int64")
    true_w = ops.gather(weights, labels)  # (batch, num_true, dim)
    true_logits = ops.reduce_sum(ops.multiply(ops.ExpandDims(inputs, 1), true_w), axis=2)
    true_logits = ops.add(true_logits, ops.gather(biases, labels))
    sampled_logits = ops.matmul(inputs, ops.transpose(ops.gather(weights, sampled)))
    sampled_logits = ops.add(sampled_logits, ops.gather(biases, sampled))
    if remove_accidental_hits:
        hits = ops.reduce_any(ops.logic.equal(ops.ExpandDims(labels, 2),
                                              ops.reshape(sampled, (1, 1, -1))), axis=1)
        sampled_logits = ops.add(sampled_logits, ops.logic.where(hits, _FLOAT32_LOWEST, 0.0))
    true_logits = ops.subtract(true_logits, ops.log(true_count))
    sampled_logits = ops.subtract(sampled_logits, ops.log(sampled_count))
    logits = ops.concat([true_logits, sampled_logits], 1)
    targets = ops.concat([ops.divide(ops.ones_like(true_logits), float(num_true)),
                          ops.zeros_like(sampled_logits)], 1)
    return logits, targets


def nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
             sampled_values=None, remove_accidental_hits=False, partition_strategy="mod",
             name="nce_loss", seed=None):
    """Noise-contrastive estimation, per example: the sigmoid cross-entropies of the true
    classes (labels 1 / num_true) and the sampled ones (labels 0), summed over classes.
    ``weights`` (num_classes, dim), ``biases`` (num_classes,), ``labels`` (batch,
    num_true) ints, ``inputs`` (batch, dim)."""
    logits, targets = _sampled_logits(weights, biases, labels, inputs, num_sampled,
                                      num_classes, num_true, sampled_values,
                                      remove_accidental_hits, seed, "nce_loss")
    losses = ops.SigmoidBinaryCrossEntropy(logits, targets)
    return ops.reduce_sum(losses, axis=1, name=op_name(name, "nce_loss"))


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes,
                         num_true=1, sampled_values=None, remove_accidental_hits=True,
                         partition_strategy="mod", name="sampled_softmax_loss", seed=None):
    """The softmax cross-entropy over the true classes and the sampled ones, per example
    (sampled classes that are also true ones dropped, as TF1's default)."""
    logits, targets = _sampled_logits(weights, biases, labels, inputs, num_sampled,
                                      num_classes, num_true, sampled_values,
                                      remove_accidental_hits, seed, "sampled_softmax_loss")
    return ops.identity(ops.SoftmaxCrossEntropy(ops.stop_gradient(targets), logits),
                        name=op_name(name, "sampled_softmax_loss"))


__all__ = ["nce_loss", "sampled_softmax_loss", "log_uniform_candidate_sampler",
           "uniform_candidate_sampler"]
