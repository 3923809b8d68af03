"""Optimizer updates as one kernel per Variable, written into the Session's own arrays
(Adam: one more, over its two 0-d beta powers, which every element of the first reads).
Each kernel is the rule of ``optimizers.py`` term by term (``formulas.sgd``, ``momentum``,
``nesterov``, ``adam``: TF1's Adam with epsilon added to sqrt(v), the beta powers as slots,
``beta_coefficients`` and ``adam_step_size``), so a GPU computes what the portable update
does, rounding for rounding. Hyper-parameters are passed at every run (a schedule that
changes them between runs is followed); the Adam step size is computed on the device from
the powers, and nothing is read back: no host synchronisation.

Only the updates the plan allows go in place (``UpdateTable.choose``, as in the torch and
NumPy passes): optimizer steps with a kernel here, whose gradients are no (view of a)
Variable, whose learning rate is a number (a rate that is a graph node takes the portable
update), and none under ``Session(check_numerics=True)``, whose new values must be checked
before any is written. Variables of another dtype than float32 or float64 are updated by the
portable rule, written into their arrays.

>>> import xpnn as xn
>>> from xpnn.devices.cupy import updates
>>> updates.UPDATES.has_fast_update(xn.train.AdamOptimizer().minimize(xn.Variable(1.0) ** 2))
True
"""

from __future__ import annotations

import functools

from ... import optimizers, passes
from ...dtypes import dtype_name
from . import formulas
from .softmax import floating


def _sgd(opt, fuser, param, grad, slots):
    fuser.elementwise(formulas.sgd, (param, grad, opt.learning_rate), writes=1)


def _momentum(opt, fuser, param, grad, slots):
    rule = formulas.nesterov if opt.use_nesterov else formulas.momentum
    fuser.elementwise(rule, (param, slots[0], grad, opt.learning_rate, opt.momentum), writes=2)


def _adam(opt, fuser, param, grad, slots):
    m, v, beta1_power, beta2_power = slots
    b1, c1, b2, c2 = optimizers.beta_coefficients(opt.beta1, opt.beta2,
                                                  dtype_name(param.dtype))
    fuser.elementwise(formulas.adam, (param, m, v, grad, beta1_power, beta2_power,
                                      opt.learning_rate, b1, c1, b2, c2, opt.epsilon), writes=3)
    fuser.elementwise(formulas.adam_powers, (beta1_power, beta2_power, b1, b2), writes=2)


UPDATES = passes.UpdateTable({  # optimizer class -> fn(optimizer, fuser, param, grad, slots)
    optimizers.GradientDescentOptimizer: _sgd,
    optimizers.MomentumOptimizer: _momentum,
    optimizers.AdamOptimizer: _adam,
})


def commit_in_place(chosen, xp, fuser):
    """A commit that applies the ``chosen`` updates in place (``UpdateTable.commit``)."""
    return UPDATES.commit(chosen, functools.partial(_apply, xp, fuser))


def _apply(xp, fuser, optimizer, values, groups) -> None:
    """One kernel per Variable of one optimizer step (the portable rule, written into the
    arrays, for a Variable that is not float32 or float64)."""
    fn = UPDATES[type(optimizer)]
    for group in groups:
        grad, param = values[group.gradient], values[group.variable]
        slots = [values[k] for k in group.slots]
        if grad.dtype != param.dtype:
            grad = xp.astype(grad, param.dtype)
        if floating(param):
            fn(optimizer, fuser, param, grad, slots)
        else:
            _portable(optimizer, xp, param, grad, slots)


def _portable(optimizer, xp, param, grad, slots) -> None:
    for buffer, new in zip((param, *slots), optimizer.update(xp, param, grad, *slots)):
        buffer[...] = new
