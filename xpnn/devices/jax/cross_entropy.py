"""A JAX kernel for the sparse softmax cross-entropy's gradient, traced into a compiled plan:
``grad * softmax(logits)`` with ``grad`` taken off at each row's label by a scatter, in place
of the portable one-hot product (the labels compared with every class). XLA on the CPU ran
the MNIST MLP's whole training step slower with the one-hot form (``benchmarks/README.md``).
The same softmax as the portable op, rows with a label outside [0, classes) NaN as there;
the label's entry is rounded once less (``g * p - g`` for ``g * (p - 1)``).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     z = xn.Variable(np.zeros((2, 2), np.float32))
...     loss = xn.losses.sparse_softmax_cross_entropy(np.array([0, 1]), z)  # the mean
...     xn.Session(backend="jax").run(xn.gradients(loss, [z])[0]).tolist()
[[-0.25, 0.25], [0.25, -0.25]]
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ... import ops
from .kernels import fast


def _case(grad, labels, logits) -> bool:
    """Rows of float logits with one integer label and one gradient each."""
    return (logits.ndim == 2 and labels.ndim == 1 and grad.ndim == 1
            and jnp.issubdtype(logits.dtype, jnp.floating) and grad.dtype == logits.dtype
            and jnp.issubdtype(labels.dtype, jnp.integer) and logits.shape[0] > 0)


@fast(ops.SparseSoftmaxCrossEntropyGrad)
def _sparse_ce_grad(op, portable):
    def forward(grad, labels, logits):
        if not _case(grad, labels, logits):
            return portable(grad, labels, logits)
        ops.check_labels(labels.shape, logits.shape)  # the op's own error where they clash
        classes = logits.shape[-1]
        valid = jnp.logical_and(labels >= 0, labels < classes)
        probs = op.probabilities(jnp, logits)
        rows = jnp.arange(logits.shape[0])
        d_logits = (grad[:, None] * probs).at[rows, jnp.where(valid, labels, 0)].add(-grad)
        return jnp.where(valid[:, None], d_logits, math.nan)

    return forward
