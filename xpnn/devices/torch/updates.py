"""Optimizer updates written into the Session's own tensors, under ``torch.no_grad()``. Each
is the rule of ``optimizers.py`` with its arithmetic in the same order, applied to all of a
step's Variables of one dtype at once with ``torch._foreach_*`` (one call per operation,
not one per Variable). SGD and momentum round as the rule does (to the bit); Adam's
multiply-adds are fused (``add_`` with ``alpha``, ``addcmul_``, ``addcdiv_``), so it agrees
with the rule to rounding, as do the ``deferred`` products. Hyper-parameters are read at
every run, so a schedule that changes them between runs is followed. Adam's step sizes are
read as numbers only where that costs no synchronisation (the CPU), for one fused last
pass; on CUDA they stay on the device.

They run after the Session has checked every update's shapes, and compute nothing that can
fail once the first Variable is written: a failed step changes no Variable. Under
``Session(check_numerics=True)`` new values must be checked before they are written, so
updates stay portable there.

>>> import xpnn as xn
>>> from xpnn.devices.torch import updates
>>> updates.UPDATES.has_fast_update(xn.train.AdamOptimizer().minimize(xn.Variable(1.0) ** 2))
True
"""

from __future__ import annotations

import functools

import torch

from ... import optimizers, passes
from ...dtypes import dtype_name
from . import deferred, kernels
from .addmm import PendingProduct, materialize


def _sgd(opt, params, grads, slots, const, host_reads):
    # param - lr * grad as the rule writes it: add_(alpha=) would fuse it into one rounding
    torch._foreach_sub_(params, torch._foreach_mul(grads, const(opt.learning_rate)))


def _momentum(opt, params, grads, slots, const, host_reads):
    (velocities,) = slots
    torch._foreach_mul_(velocities, const(opt.momentum))
    torch._foreach_add_(velocities, grads)
    steps = velocities
    if opt.use_nesterov:
        steps = torch._foreach_add(grads, torch._foreach_mul(velocities, const(opt.momentum)))
    torch._foreach_sub_(params, torch._foreach_mul(steps, const(opt.learning_rate)))


def _adam(opt, params, grads, slots, const, host_reads):
    m, v, beta1_power, beta2_power = slots
    b1, c1, b2, c2 = optimizers.beta_coefficients(opt.beta1, opt.beta2,
                                                  dtype_name(params[0].dtype))
    step = _adam_step_sizes(opt, beta1_power, beta2_power, const)
    torch._foreach_mul_(m, const(b1))
    torch._foreach_add_(m, grads, alpha=c1)
    torch._foreach_mul_(v, const(b2))
    torch._foreach_addcmul_(v, grads, grads, value=c2)
    denominator = torch._foreach_sqrt(v)
    torch._foreach_add_(denominator, [const(opt.epsilon)] * len(params))
    if host_reads:  # the step sizes read as numbers (no sync on the CPU): one fused pass
        torch._foreach_addcdiv_(params, m, denominator, [-s for s in step.tolist()])
    else:  # each step size stays on the device and scales its Variable's ratio there
        ratio = torch._foreach_div(m, denominator)
        torch._foreach_mul_(ratio, step.unbind())
        torch._foreach_sub_(params, ratio)
    torch._foreach_mul_(beta1_power, const(b1))
    torch._foreach_mul_(beta2_power, const(b2))


def _adam_step_sizes(opt, beta1_power, beta2_power, const):
    """TF1's ``lr sqrt(1 - beta2^t) / (1 - beta1^t)`` of each Variable (its own powers), in
    the powers' dtype, as one vector: a few operations for all of them."""
    one = const(1.0)
    step = torch.sub(one, torch.stack(beta2_power)).sqrt_().mul_(const(opt.learning_rate))
    return step.div_(torch.sub(one, torch.stack(beta1_power)))


# optimizer class -> fn(optimizer, params, grads, slots: a list per slot, const, host_reads):
# const(x) is a 0-d tensor of the params' dtype (arithmetic with a Python number would make
# one per call), host_reads whether device values are read without a synchronisation.
UPDATES = passes.UpdateTable({
    optimizers.GradientDescentOptimizer: _sgd,
    optimizers.MomentumOptimizer: _momentum,
    optimizers.AdamOptimizer: _adam,
})


def commit_in_place(chosen, device):
    """A commit that applies the ``chosen`` updates in place, under ``torch.no_grad()``
    (``UpdateTable.commit``)."""
    constants = kernels.Constants(device.device)
    apply = functools.partial(_apply, constants, device.reads_without_sync)
    return UPDATES.commit(chosen, apply, around=torch.no_grad)


def _apply(constants, host_reads, optimizer, values, groups) -> None:
    """The update of each ``Pair`` of the plan's slots, in one call of the optimizer's
    kernel per dtype of the Variables; a ``deferred`` gradient accumulated where it can be."""
    by_dtype = {}
    for group in groups:
        grad, param = values[group.gradient], values[group.variable]
        slots = [values[k] for k in group.slots]
        if type(grad) is PendingProduct:
            if deferred.apply(optimizer, param, grad, slots):
                continue
            grad = materialize(grad)
        if grad.dtype != param.dtype:
            grad = grad.to(param.dtype)
        params, grads, columns = by_dtype.setdefault(
            param.dtype, ([], [], [[] for _ in group.slots]))
        params.append(param)
        grads.append(grad)
        for column, slot in zip(columns, slots):
            column.append(slot)
    fn = UPDATES[type(optimizer)]
    for dtype, (params, grads, columns) in by_dtype.items():
        fn(optimizer, params, grads, columns, lambda x, d=dtype: constants.get(x, (), d),
           host_reads)
