"""Weight gradients left to the update: a gradient ``x^T g`` that only an SGD or momentum
update reads is not computed as a tensor; the update accumulates it straight into the
weights (SGD: ``W.addmm_(x^T, g, alpha=-lr)``) or the velocity (momentum:
``v.addmm_(x^T, g, beta=momentum)``), one GEMM with no gradient buffer written, read back
and added. The gradient's step hands the update a ``PendingProduct`` after checking its
operands, so a mismatch fails there, naming the op. Its operands then live until the
commit, and none may be (a view of) a Variable, which an earlier update could change.

>>> import xpnn as xn
>>> from xpnn.devices.torch import deferred
>>> deferred.defers(xn.train.MomentumOptimizer(0.1, use_nesterov=True))
False
"""

from __future__ import annotations

from collections import Counter

from ... import ops, optimizers
from . import kernels
from .addmm import PendingProduct


def defers(optimizer) -> bool:
    """SGD, and momentum without Nesterov (which needs the gradient itself)."""
    kind = type(optimizer)
    return kind is optimizers.GradientDescentOptimizer or (
        kind is optimizers.MomentumOptimizer and not optimizer.use_nesterov)


def weight_gradient(gradient):
    """The forward of a weight gradient ``a^T g`` (``MatMulGradB``, ``gradient`` its kernel)
    that the update accumulates: a PendingProduct for 2-D floating operands that match."""

    def forward(g, a, b):  # b: the weights' description
        if (a.ndim == 2 and b.ndim == 2 and g.ndim == 2 and a.dtype == g.dtype
                and g.is_floating_point() and a.shape[0] == g.shape[0]):
            return PendingProduct(a.mT, g)
        return gradient(g, a, b)

    return forward


def apply(optimizer, param, grad, slots) -> bool:
    """Apply the update of a pending gradient in place; False when the optimizer's usual
    update must take it (momentum whose Nesterov flag was switched on since, or a gradient
    of another dtype than the weights')."""
    if not defers(optimizer) or grad.dtype != param.dtype:
        return False
    if type(optimizer) is optimizers.GradientDescentOptimizer:
        param.addmm_(grad.a, grad.b, alpha=-optimizer.learning_rate)
        return True
    (velocity,) = slots
    if optimizer.momentum == 0.0:  # addmm_ ignores its input at beta 0; 0 * inf is NaN
        velocity.mul_(0.0)
    velocity.addmm_(grad.a, grad.b, beta=optimizer.momentum or 1.0)
    param.add_(velocity, alpha=-optimizer.learning_rate)
    return True


def defer(plan, live, chosen, device) -> set:
    """Give each weight gradient that only one of the ``chosen`` (in-place) updates reads the
    forward of ``weight_gradient``; keep its operands until the commit. The gradients'
    slots."""
    reads = Counter(s for step in plan.steps for s in step.inputs)
    reads.update(s for update in plan.updates for s in update.inputs)
    fetched = {s for s in plan.fetch_slots if s is not None}
    steps = {step.out: step for step in plan.steps if step.kind == "value"}
    pending = set()
    for update in chosen:
        if not defers(update.op.optimizer):
            continue
        for group in update.groups():
            s = group.gradient
            step = steps.get(s)
            if (step is None or type(step.op) is not ops.MatMulGradB or reads[s] != 1
                    or s in fetched or s in plan.late_reads
                    or live.intersection(step.inputs[:2])):
                continue
            gradient = kernels.kernel(step.op, step.fn, device)
            step.fn = weight_gradient(gradient)
            pending.add(s)
            plan.late_reads.update(step.inputs[:2])
    return pending
