"""Weight gradients left to the update: a gradient ``x^T g`` that only an SGD or momentum
update reads is not computed as a buffer; the update accumulates it straight into the
weights (SGD: ``w -= lr x^T g``) or the velocity (momentum: ``v = m v + x^T g``) with one
BLAS GEMM (``blas.accumulate_product``). No gradient buffer is made, zeroed, read back and
added: about a tenth of an MLP training step on the CPU.

>>> import numpy as np
>>> from xpnn.devices.numpy import deferred
>>> pending = deferred.PendingProduct(np.ones((2, 3)), np.ones((3, 4)))
>>> pending.shape, deferred.materialize(pending)[0, 0].item()
((2, 4), 3.0)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ... import ops, optimizers
from . import blas, kernels


class PendingProduct:
    """A weight gradient ``a @ b`` not computed yet (see the module's docstring)."""

    __slots__ = ("a", "b", "shape", "dtype")

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.shape, self.dtype = (a.shape[0], b.shape[1]), a.dtype


def materialize(grad):
    """The gradient as an array (a pending product computed)."""
    return np.matmul(grad.a, grad.b) if type(grad) is PendingProduct else grad


def _defers(optimizer) -> bool:
    """SGD, always (lr can be folded even without BLAS); momentum (not Nesterov, which needs
    the gradient itself) when NumPy's BLAS is reachable."""
    kind = type(optimizer)
    if kind is optimizers.GradientDescentOptimizer:
        return True
    return (kind is optimizers.MomentumOptimizer and not optimizer.use_nesterov
            and blas.available())


def weight_gradient(step, producer, producer_portable):
    """The replacement forward of a weight gradient x^T g (``MatMulGradB``) that only the
    update ``step`` reads, or None where this does not apply. With NumPy's BLAS reachable it
    returns a ``PendingProduct``; otherwise SGD gets lr * x^T g (scaling whichever of g and
    the result is smaller) and momentum the gradient itself. The plan must keep x and g
    unchanged until the update."""
    optimizer = getattr(step, "optimizer", None)
    if type(producer) is not ops.MatMulGradB or not _defers(optimizer):
        return None
    sgd = type(optimizer) is optimizers.GradientDescentOptimizer
    portable = kernels.FORWARD[ops.MatMulGradB](producer, producer_portable)
    accumulate = blas.available()

    def forward(g, a, b):
        lr = optimizer.learning_rate  # read per run: it may be changed between runs
        if a.ndim == 2 and b.ndim == 2 and g.dtype == a.dtype:
            if accumulate and g.dtype.kind == "f" and g.ndim == 2 and a.shape[0] == g.shape[0]:
                return PendingProduct(a.T, g)  # any other shape fails here, as x^T g would
            if sgd and g.size < math.prod(b.shape):
                return np.matmul(a.T, np.multiply(g, lr))
        result = np.asarray(portable(g, a, b))
        return np.multiply(result, lr) if sgd else result

    return forward


def apply(optimizer, param, grad, slots) -> bool:
    """Apply the update for a gradient from ``weight_gradient``; False when the optimizer's
    usual update must take it (momentum whose Nesterov flag was switched on since)."""
    if type(grad) is PendingProduct and _defers(optimizer):
        if type(optimizer) is optimizers.MomentumOptimizer:  # v = m v + x^T g, w -= lr v
            (velocity,) = slots
            blas.accumulate_product(velocity, grad.a, grad.b, 1.0, beta=optimizer.momentum)
            blas.scale_add(param, velocity, -optimizer.learning_rate)
        else:  # SGD: w -= lr x^T g in one GEMM
            blas.accumulate_product(param, grad.a, grad.b, -optimizer.learning_rate)
        return True
    if type(optimizer) is optimizers.GradientDescentOptimizer:  # already lr * gradient
        np.subtract(param, materialize(grad), out=param, casting="unsafe")
        return True
    return False


def defer(plan, facts, chosen, xp) -> set:
    """Give each weight gradient that only one of the ``chosen`` (in-place) updates reads,
    and that it may own, the forward of ``weight_gradient``; its operands then live until
    the commit. The gradients' slots."""
    read_by_steps = {s for step in plan.steps for s in step.inputs}
    steps = {step.out: step for step in plan.steps if step.kind == "value"}
    pending = set()
    for update in chosen:
        for group in update.groups():
            s = group.gradient
            if (not facts.sole_owner(s) or s in read_by_steps
                    or facts.live.intersection(facts.inputs_of[s])):
                continue
            maker = facts.producer[s]
            forward = weight_gradient(update.op, maker, functools.partial(maker.forward, xp))
            if forward is not None:
                steps[s].fn = forward
                pending.add(s)
                facts.pending_operands.update(facts.inputs_of[s])
    for operand in facts.pending_operands:
        facts.last_use[operand] = facts.n
        plan.late_reads.add(operand)
    return pending
