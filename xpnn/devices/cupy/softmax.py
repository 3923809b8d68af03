"""Softmax over rows and its cross-entropies in a few kernels each: the row maximum, a row
sum (``fuser.row_sum``), then one elementwise kernel, where the portable ops launch a dozen.
The label's logit is a row sum of a select (no gather), so a label outside [0, classes)
reads nothing out of bounds; where the labels are not read on the host (CuPy) such a row
is NaN in the loss and the gradient, as on the portable path, with no synchronisation.
Where they are read for free (the stand-in, on the CPU) they are checked as the portable
forward checks them. Softmax and log-softmax hand their last kernel to the chain that
reads them (``prepare_rows``): the dense cross-entropy's gradient
``g (softmax(z) sum(labels) - labels)`` is the two reductions and one kernel.

>>> import numpy as np
>>> from xpnn.devices.cupy import formulas
>>> z, m = np.array([[0.0, 0.0]]), np.array([[0.0]])
>>> formulas.softmax(np, z, m, formulas.shifted_exp(np, z, m).sum(-1, keepdims=True))
array([[0.5, 0.5]])
"""

from __future__ import annotations

import array_api_compat

from ... import ops
from . import formulas
from .kernels import fast


def floating(x) -> bool:
    """float32 or float64: the dtypes the kernels are compiled for."""
    return x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)


def _rows(z) -> bool:
    return z.ndim >= 1 and floating(z) and z.shape[-1] > 0 and z.size > 0


def row_stats(xp, fuser, z, formula=formulas.stable_shifted_exp):
    """(row maximum, row sum of ``formula(z, maximum)``), each with the last axis kept."""
    m = xp.max(z, axis=-1, keepdims=True)
    return m, fuser.row_sum(formula, (z, m))


def prepare_rows(op, device, fuser, formula):
    """Softmax's (``formula``: ``shifted_exp``) or log-softmax's row statistics: the operands
    (z, max, sum) of its last, elementwise kernel; None outside the kernels' case."""
    xp = device.xp

    def prepare(z):
        if not _rows(z) or op.axis not in (-1, z.ndim - 1):
            return None
        return (z, *row_stats(xp, fuser, z, formula))

    return prepare


class Columns:
    """The row of class indices 0..k-1 in the labels' dtype, made once per (k, dtype)."""

    def __init__(self, xp):
        self.xp, self.made = xp, {}

    def get(self, k, labels):
        key = (k, labels.dtype)
        row = self.made.get(key)
        if row is None:
            if len(self.made) >= 8:
                self.made.clear()
            row = self.xp.arange(k, dtype=labels.dtype, device=array_api_compat.device(labels))
            row = self.made[key] = self.xp.reshape(row, (1, k))
        return row


def _sparse_case(xp, labels, logits) -> bool:
    """Integer labels, one per row of 2-D floating logits, their class indices in the
    labels' dtype (the kernels take the last one, ``k - 1``, as a number of that dtype)."""
    if not (logits.ndim == 2 and _rows(logits) and labels.ndim == 1
            and labels.shape[0] == logits.shape[0] and labels.dtype.kind in "iu"):
        return False
    return logits.shape[1] - 1 <= xp.iinfo(labels.dtype).max


@fast(ops.SparseSoftmaxCrossEntropy)
def _sparse_ce(op, portable, device, fuser):
    xp, checked = device.xp, device.reads_without_sync
    columns = Columns(xp)

    def forward(labels, logits):
        if not _sparse_case(xp, labels, logits):
            return portable(labels, logits)
        k = logits.shape[1]
        if checked:
            ops.check_label_values(xp, labels, k)
        m, s = row_stats(xp, fuser, logits)
        label = xp.expand_dims(labels, axis=-1)
        z_label = fuser.row_sum(formulas.picked, (logits, label, columns.get(k, labels)))
        if checked:
            loss = fuser.elementwise(formulas.sparse_ce_loss, (s, m, z_label))
        else:
            loss = fuser.elementwise(formulas.sparse_ce_loss_unchecked,
                                     (s, m, z_label, label, k - 1))
        return loss[..., 0]

    return forward


@fast(ops.SparseSoftmaxCrossEntropyGrad)
def _sparse_ce_grad(op, portable, device, fuser):
    xp, checked = device.xp, device.reads_without_sync
    columns = Columns(xp)

    def forward(grad, labels, logits):
        if not (_sparse_case(xp, labels, logits) and grad.ndim == 1
                and grad.dtype == logits.dtype and grad.shape[0] == logits.shape[0]):
            return portable(grad, labels, logits)
        k = logits.shape[1]
        if checked:  # a training step skips the loss's forward: check here too
            ops.check_label_values(xp, labels, k)
        m, s = row_stats(xp, fuser, logits)
        args = (xp.expand_dims(grad, axis=-1), logits, m, s, xp.expand_dims(labels, axis=-1),
                columns.get(k, labels))
        if checked:
            return fuser.elementwise(formulas.sparse_ce_grad, args)
        return fuser.elementwise(formulas.sparse_ce_grad_unchecked, (*args, k - 1))

    return forward


@fast(ops.SoftmaxCrossEntropy)
def _dense_ce(op, portable, device, fuser):
    xp = device.xp

    def forward(labels, logits):
        if labels.shape != logits.shape or labels.dtype != logits.dtype or not _rows(logits):
            return portable(labels, logits)
        m, s = row_stats(xp, fuser, logits)
        return fuser.row_sum(formulas.dense_ce_term, (labels, logits, m, s), negate=True,
                             keepdims=False)

    return forward
