"""Optimizer updates written into the Session's own buffers. Each kernel is the rule of
``optimizers.py`` with its arithmetic in the same order, the multiply-adds done by BLAS
(``blas.scale_add``: one pass on BLAS's threads, and fused, so
``tests/devices/numpy/test_fastpath.py`` checks them against the portable rule to rounding),
writing param and slots in place; ``grad`` may be overwritten only when the plan owns it
(``grad_owned``). Hyper-parameters are read at every run, so a schedule that changes them
between runs is followed.

>>> import xpnn as xn
>>> from xpnn.devices.numpy import updates
>>> updates.UPDATES.has_fast_update(xn.train.AdamOptimizer().minimize(xn.Variable(1.0) ** 2))
True
"""

from __future__ import annotations

import numpy as np

from ... import optimizers, passes
from . import blas, deferred, denormals


def _sgd(opt, param, grad, grad_owned):
    rate = -opt._learning_rate  # a number here (``UpdateTable.has_fast_update``)
    if param.size < blas.MIN_AXPBY:  # scale_add's own small case, without its checks
        param += grad * rate
    else:
        blas.scale_add(param, grad, rate)


def _momentum(opt, param, grad, velocity, grad_owned):
    blas.scale_add(velocity, grad, 1.0, beta=opt.momentum)
    if opt.use_nesterov:
        step = np.multiply(velocity, opt.momentum)
        np.add(grad, step, out=step)
        blas.scale_add(param, step, -opt.learning_rate)
    else:
        blas.scale_add(param, velocity, -opt.learning_rate)


def _adam(opt, param, grad, m, v, beta1_power, beta2_power, grad_owned):
    # Seven passes over the arrays, in one NumPy buffer: the gradient's own where the plan
    # owns it (it is read for the last time by the first two), else a scratch one. BLAS runs
    # the multiply-adds. One thread: right after the backward's GEMMs BLAS's threads still
    # hold the other cores (they spin before they sleep), so a second thread of ours only
    # waits for one, and splitting these passes over threads made the step slower.
    b1, c1, b2, c2 = optimizers.beta_coefficients(opt.beta1, opt.beta2, param.dtype.name)
    step = optimizers.adam_step_size(opt.learning_rate, np, beta1_power, beta2_power)
    blas.scale_add(m, grad, c1, beta=b1)
    own = grad_owned and type(grad) is np.ndarray and grad.shape == m.shape
    scratch = grad if own else np.empty_like(m)
    np.multiply(grad, grad, out=scratch)
    blas.scale_add(v, scratch, c2, beta=b2)
    np.sqrt(v, out=scratch)
    scratch += opt.epsilon
    np.divide(m, scratch, out=scratch)
    blas.scale_add(param, scratch, -step)
    beta1_power *= b1
    beta2_power *= b2


# optimizer class -> fn(optimizer, param, grad, *slots, grad_owned)
UPDATES = passes.UpdateTable({
    optimizers.GradientDescentOptimizer: _sgd,
    optimizers.MomentumOptimizer: _momentum,
    optimizers.AdamOptimizer: _adam,
})


def update_inplace(step, values, owned, pending=()) -> bool:
    """Apply an optimizer step in place; ``values`` are the step's inputs in order (after
    ``step.shape_problem`` found none), ``owned[i]`` whether pair i's gradient may be
    overwritten, ``pending[i]`` whether it may be a ``deferred.PendingProduct``. False when
    there is no kernel for this optimizer."""
    if not UPDATES.has_fast_update(step):
        return False
    pending = pending or (False,) * len(step.pairs)
    groups = _prepared(zip(step.pairs, owned, pending))
    _apply(step.optimizer, values, groups, _keeps_slots(groups))
    return True


def _prepared(groups) -> tuple:
    """(gradient, variable, slots, owned, pending) of each (Pair, owned, pending), in the
    order the commit applies them: newest gradients first, since the plan computed them
    last, so they are still in cache. Plain tuples: the commit reads them every run."""
    return tuple((group.gradient, group.variable, tuple(group.slots), own, late)
                 for group, own, late in reversed(list(groups)))


def _apply(optimizer, values, groups, flush: bool) -> None:
    """The update of each of the ``_prepared`` ``groups`` (where one Variable's gradient,
    value and slots sit in ``values``: of the step's inputs, or of the plan's slots). Slots
    decay toward zero, so updates that keep them run with subnormals flushed
    (``denormals``): ``flush``, ``_keeps_slots(groups)``."""
    if flush:
        with denormals.flushed():
            _apply_each(optimizer, values, groups)
    else:
        _apply_each(optimizer, values, groups)


def _keeps_slots(groups) -> bool:
    return any(slots for _, _, slots, _, _ in groups)


def _apply_each(optimizer, values, groups) -> None:
    fn = UPDATES[type(optimizer)]
    for gradient, variable, slots, own, late in groups:
        grad, param = values[gradient], values[variable]
        if slots:
            slots = [values[k] for k in slots]
        if late:
            if deferred.apply(optimizer, param, grad, slots):
                continue
            grad, own = deferred.materialize(grad), True
        if grad.dtype != param.dtype:
            grad, own = grad.astype(param.dtype), True
        if param.ndim == 0:  # ufuncs give 0-d results as scalars, which out= cannot take
            for buffer, new in zip((param, *slots), optimizer.update(np, param, grad, *slots)):
                buffer[...] = new
            continue
        if slots:
            fn(optimizer, param, grad, *slots, own)
        else:  # a call without * unpacking: a small step's commit is mostly calls
            fn(optimizer, param, grad, own)


def commit_in_place(facts, chosen, pending):
    """A commit that applies the ``chosen`` updates in place (``UpdateTable.commit``): each
    gradient overwritten where the update is its sole owner, a ``deferred`` one where it is
    ``pending``."""

    def arguments(update):
        groups = _prepared(
            (group, facts.sole_owner(group.gradient)
             and group.gradient not in facts.pending_operands, group.gradient in pending)
            for group in update.groups())
        return groups, _keeps_slots(groups)

    return UPDATES.commit(chosen, _apply, arguments)
