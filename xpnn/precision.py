"""Mixed precision: ``Session(precision="mixed_float16" | "mixed_bfloat16")``, Keras's policy
names. Variables stay float32 (the master weights); the forward and backward pass compute
in the half dtype; the losses, softmax and the reductions (means and sums: BatchNorm's
statistics, a variance) compute in float32, and so does everything after the gradients
(clipping, the optimizer's update). It is one plan rewrite (``rewrite``), run when the
Session compiles a plan and before the device compiles it: a cast step in front of each op
whose inputs are not in the dtype its rule says, so every device's passes see ordinary
steps. The graph is not changed: a float32 Session of it runs as before.

``LossScaleOptimizer`` (Keras's, dynamic) keeps small float16 gradients from vanishing: the
loss is multiplied by a scale (2**15 at first), the gradients divided by it in float32; a
step whose gradients hold inf or NaN changes no weight and no slot and halves the scale,
and every ``growth_interval`` finite steps double it.

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(shape=(None, 2), name="x")
...     w = xn.Variable(np.ones((2, 1), np.float32), name="w")
...     y = xn.matmul(x, w)
...     loss = xn.reduce_mean(y)
...     sess = xn.Session(precision="mixed_float16")
...     out = sess.run([y, loss, w], {x: [[1.0, 2.0]]})
>>> [str(v.dtype) for v in out]  # computed in half, the loss reduced in float32
['float16', 'float32', 'float32']
"""

from __future__ import annotations

import warnings

from . import ops
from .graph import NewValue, Node, Update, Variable
from .ops.activations import Softmax
from .ops.arithmetic import Cast, Multiply
from .ops.losses import (
    BinaryCrossEntropy,
    BinaryCrossEntropyGrad,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
    SparseSoftmaxCrossEntropy,
    SparseSoftmaxCrossEntropyGrad,
)
from .ops.outputs import MultiOutput
from .ops.reductions import LogSumExp, ReduceMean, ReduceProd, ReduceSum
from .optimizers import ApplyGradients, Optimizer


class ScaleLoss(Multiply):
    """loss * scale, in float32 under mixed precision (2**15 times a loss of 2 is beyond
    float16's 65504)."""


POLICIES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}

# Ops that need float32's range: Keras's rule (the loss and the softmax in float32) and the
# sums and means (a float16 sum of a batch overflows at 65504). Softmax's subclasses too.
WIDE = (ScaleLoss, Softmax, SoftmaxCrossEntropy, SparseSoftmaxCrossEntropy,
        SparseSoftmaxCrossEntropyGrad, BinaryCrossEntropy, BinaryCrossEntropyGrad,
        SigmoidBinaryCrossEntropy, ReduceSum, ReduceMean, ReduceProd, LogSumExp)


def half_dtype(precision, device) -> str | None:
    """The dtype a Session of ``precision`` computes in on ``device`` (None: no policy);
    a clear error for an unknown name or a backend without that dtype."""
    if precision is None:
        return None
    if precision not in POLICIES:
        raise ValueError(f"Session(precision={precision!r}): use one of "
                         f"{sorted(POLICIES)} (Keras's policy names) or None")
    half = POLICIES[precision]
    try:
        device.dtype(half)
    except TypeError:
        raise TypeError(f"Session(precision={precision!r}): backend {device.backend!r} has no "
                        f"{half}; {_where(half)}") from None
    return half


def _where(half) -> str:
    if half == "bfloat16":
        return "NumPy has none: pick a backend that has it, or precision='mixed_float16'"
    return "the array API standard has none: pick a backend that has it"


class ToDtype(Cast):
    """A cast step the rewrite puts in a plan: a floating value in ``target`` (any other
    value, and one already in it, as it is). Not a node of the graph."""

    def __init__(self, source, target):  # no Operation.__init__: the graph gets no node
        self.graph, self.inputs, self.target = source.graph, (source,), target
        self.name, self.index, self.scope = None, -1, ""
        self.shape, self.dtype = source.shape, None

    @property
    def label(self) -> str:
        return f"ToDtype({self.inputs[0].label}, {self.target})"

    def forward(self, xp, x):
        if x.dtype == getattr(xp, self.target) or not xp.isdtype(x.dtype, "real floating"):
            return x
        return xp.astype(x, getattr(xp, self.target))


def _rule(op, half, after_gradients) -> str | None:
    """The dtype ``op``'s floating inputs are cast to: None for an op left as it is (an
    explicit cast, or the sum of a Variable's gradients)."""
    if isinstance(op, Cast):
        return None
    if isinstance(op, (Update, NewValue)) or op.runs_bodies or after_gradients:
        return "float32"
    forward = op.gradient_of if op.gradient_of is not None else op
    if not hasattr(forward, "forward") or isinstance(forward, Cast):
        return None  # a gradient of a Variable, a placeholder or a cast: as it comes
    return "float32" if isinstance(forward, WIDE) else half


def rewrite(plan, session) -> None:
    """Put a cast step in ``plan`` in front of every op whose floating inputs are not in the
    dtype its rule says (``_rule``); a forward op whose inputs are float32 results (and
    Variables, constants, feeds) stays float32, as BatchNorm's ``1 / sqrt(variance + eps)``
    and a check of the loss. A slot's dtype is tracked where it is known; where it is not
    (a value made from a shape), the cast step checks it when it runs."""
    from .plan import Step, bind  # plan imports optimizers, which this module imports

    half = session.compute_dtype
    known = {f.slot: (str(f.dtype) if f.dtype is not None else "?") for f in plan.feeds}
    known.update((s, v.dtype) for s, v in plan.variables.items())
    known.update((s, c.dtype) for s, c in plan.constants.items())
    gradient, wide, casts, steps = set(), set(), {}, []

    def cast(s, node, target):
        if known.get(s) in (target, "tuple") or (known.get(s) not in ("?", None, half)
                                                 and not known[s].startswith("float")):
            return s
        if (s, target) not in casts:
            step = Step(ToDtype(node, target), (s,), plan.n_slots)
            plan.n_slots += 1
            bind(step, session.device, session.draw, session)
            steps.append(step)
            casts[s, target] = step.out
            known[step.out] = target
        return casts[s, target]

    for step in plan.steps:
        op = step.op
        if step.kind != "value":  # a description: no value to cast
            steps.append(step)
            continue
        after = op.gradient_of is None and any(s in gradient for s in step.inputs)
        if op.gradient_of is not None or after:
            gradient.add(step.out)
        target = _rule(op, half, after)
        values = [s for k, s in enumerate(step.inputs) if k not in op.shape_only]
        if (target == half and op.gradient_of is None and any(s in wide for s in values)
                and all(known.get(s) != half for s in values)):
            target = "float32"  # what a float32 op made stays float32 (a loss's check)
        if target is not None:
            step.inputs = tuple(s if k in op.shape_only else cast(s, op.inputs[k], target)
                                for k, s in enumerate(step.inputs))
        steps.append(step)
        known[step.out] = _out_dtype(op, target, step, known)
        if known[step.out] == "float32":
            wide.add(step.out)
    for update in plan.updates:  # gradients in float32; each Variable as it is held
        update.inputs = tuple(s if s in plan.variables else cast(s, node, "float32")
                              for s, node in zip(update.inputs, update.op.inputs))
    plan.steps = steps
    plan.template = plan.template + [None] * (plan.n_slots - len(plan.template))
    _warn_unscaled(plan, half)


def _out_dtype(op, target, step, known) -> str:
    """The dtype ``op``'s result has, where the rewrite can tell ("?" where not)."""
    if isinstance(op, MultiOutput):
        return "tuple"
    if isinstance(op, Cast):
        return op.target
    if op.dtype is not None and not op.dtype.startswith("float"):
        return op.dtype
    values = [known.get(s) for k, s in enumerate(step.inputs) if k not in op.shape_only]
    if target is not None and values and target in values:
        return target
    return "?"


def _warn_unscaled(plan, half) -> None:
    if half != "float16":
        return
    for update in plan.updates:
        if isinstance(update.op, ApplyGradients) and not isinstance(update.op, LossScaled):
            warnings.warn(
                f"{update.op.label} ({update.op.type}) runs in a mixed_float16 Session without "
                "loss scaling: gradients below float16's 6e-8 become 0; wrap the optimizer in "
                "xn.train.LossScaleOptimizer", stacklevel=4)


class LossScaleOptimizer(Optimizer):
    """Keras's ``LossScaleOptimizer`` (dynamic): ``minimize`` multiplies the loss by
    ``loss_scale`` (a float32 Variable, ``initial_scale`` at first), divides the gradients
    by it in float32 and then steps ``optimizer`` (clipping the unscaled gradients where it
    clips). A run whose gradients hold inf or NaN changes no weight and no slot and halves
    the scale (not below 1); every ``growth_interval`` finite runs in a row double it.

    >>> import xpnn as xn
    >>> w = xn.Variable([1.0])
    >>> opt = xn.train.LossScaleOptimizer(xn.train.GradientDescentOptimizer(0.5))
    >>> step = opt.minimize(xn.reduce_sum(w * w))
    >>> sess = xn.Session(); _ = sess.run(step)
    >>> sess.run(w).tolist(), sess.run(opt.loss_scale).item()
    ([0.0], 32768.0)
    """

    def __init__(self, optimizer, initial_scale=2.0 ** 15, growth_interval=2000):
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, LossScaleOptimizer):
            raise TypeError(f"LossScaleOptimizer wraps an xn.train optimizer, got {optimizer!r}")
        if optimizer.accumulate > 1:
            raise ValueError("LossScaleOptimizer: the wrapped optimizer accumulates "
                             f"(accumulate={optimizer.accumulate}), which loss scaling does not "
                             "follow over its runs; use accumulate=1")
        if not initial_scale >= 1 or int(growth_interval) < 1:
            raise ValueError(f"LossScaleOptimizer: initial_scale must be >= 1 and "
                             f"growth_interval >= 1, got {initial_scale}, {growth_interval}")
        self.optimizer, self.initial_scale = optimizer, float(initial_scale)
        self.growth_interval = int(growth_interval)
        self.loss_scale = self.good_steps = None

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self.optimizer.learning_rate = value

    def compute_gradients(self, loss, var_list=None):
        """The gradients of the scaled loss (divide by ``loss_scale`` to unscale them)."""
        if self.loss_scale is None or self.loss_scale.graph is not loss.graph:
            with loss.graph.name_scope(None):
                self.loss_scale = Variable(self.initial_scale, dtype="float32", trainable=False,
                                           name=loss.graph.unique_name("loss_scale"),
                                           graph=loss.graph)
                self.good_steps = Variable(0, dtype="int32", trainable=False, graph=loss.graph,
                                           name=loss.graph.unique_name("loss_scale_good_steps"))
        return self.optimizer.compute_gradients(ScaleLoss(loss, self.loss_scale), var_list)

    def apply_gradients(self, grads_and_vars, name=None):
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if self.loss_scale is None:
            raise ValueError("LossScaleOptimizer.apply_gradients takes the gradients of "
                             "its compute_gradients (of the scaled loss): call that first")
        inner, variables = self.optimizer, [v for _, v in pairs]
        grads = inner._clip([ops.divide(g, self.loss_scale) for g, _ in pairs])
        slots = []
        for v in variables:
            with v.graph.name_scope(None):
                slots.append(inner._slots(v))
        rate = inner.learning_rate if isinstance(inner.learning_rate, Node) else None
        return LossScaled(inner, grads, variables, slots, self, name=name, rate=rate)


class LossScaled(ApplyGradients):
    """The update of ``LossScaleOptimizer``: ApplyGradients' inputs, then the scale and the
    count of finite runs. Every run computes the update; where a gradient is not finite the
    old values are kept (``where``, not a host branch: a compiled JAX plan runs it as is)."""

    def __init__(self, optimizer, grads, variables, slots, scaler, name=None, rate=None):
        self.interval = scaler.growth_interval
        super().__init__(optimizer, grads, variables, slots, name=name, rate=rate,
                         more=[scaler.loss_scale, scaler.good_steps],
                         more_targets=[scaler.loss_scale, scaler.good_steps])

    @property
    def portable_only(self) -> bool:
        return True

    def new_value(self, xp, values, position):
        return self.forward(xp, *values)[position]

    def forward(self, xp, *values):
        pairs, scale, good = self.pairs, values[-2], values[-1]
        finite = xp.all(xp.stack([xp.all(xp.isfinite(values[p.gradient])) for p in pairs]))
        old = [values[p.variable] for p in pairs] + [values[k] for p in pairs for k in p.slots]
        new = super().forward(xp, *values)
        count = good + 1
        grow = count >= self.interval
        scale_up = xp.where(grow, scale * 2.0, scale)
        scale_down = xp.maximum(scale * 0.5, xp.ones_like(scale))
        return ([xp.where(finite, n, o) for n, o in zip(new, old)]
                + [xp.where(finite, scale_up, scale_down),
                   xp.where(xp.logical_and(finite, xp.logical_not(grow)), count,
                            xp.zeros_like(count))])
