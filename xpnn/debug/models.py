"""Small models built from ``xn.nn`` layers, for ``python -m xpnn.debug compare``: each a
fresh graph, its loss and one batch of random data to feed.

>>> import xpnn as xn
>>> from xpnn.debug import models
>>> graph, loss, feed = models.build("mlp")
>>> loss.shape, sorted(p.label for p in feed)
((), ['labels', 'x'])
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, placeholder
from ..nn.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential, Tanh
from ..nn.recurrent import LSTM
from ..ops.losses import sparse_softmax_cross_entropy

MODELS = ("mlp", "cnn", "lstm")
CLASSES = 5


def layers_loss(layers, input_shape, x, y, graph=None):
    """(graph, loss, feed_dict) of ``layers`` (applied in turn) under softmax
    cross-entropy, fed the batch ``x`` and integer labels ``y``: what a classifier's
    training step computes, in a new graph (or ``graph``) where the layers were made."""
    with (graph or Graph()).as_default() as graph:
        inputs = placeholder("float32", (None, *input_shape), name="x")
        labels = placeholder("int32", (None,), name="labels")
        logits = Sequential(*layers)(inputs, training=True)
        loss = sparse_softmax_cross_entropy(labels, logits)
    return graph, loss, {inputs: np.asarray(x, np.float32), labels: np.asarray(y, np.int32)}


def build(model, batch=8, seed=0):
    """(graph, loss, feed_dict) of the built-in ``model`` ("mlp", "cnn" or "lstm")."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    rng = np.random.default_rng(seed)
    with Graph().as_default() as graph:
        if model == "mlp":
            shape = (20,)
            layers = [Linear(20, 32, seed=seed), ReLU(), Linear(32, 16, seed=seed + 1),
                      Tanh(), Linear(16, CLASSES, seed=seed + 2)]
        elif model == "cnn":
            shape = (8, 8, 1)
            layers = [Conv2D(1, 4, 3, padding="SAME", seed=seed), ReLU(),
                      MaxPool2D(2), Flatten(), Linear(64, CLASSES, seed=seed + 1)]
        else:
            shape = (6, 4)
            layers = [LSTM(4, 8, seed=seed), Linear(8, CLASSES, seed=seed + 1)]
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = rng.integers(0, CLASSES, batch)
    return layers_loss(layers, shape, x, y, graph)
