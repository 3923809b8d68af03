"""Gradient-descent optimizers: ``minimize(loss)`` adds gradient nodes and one update node.
Their state (velocities, moments) are non-trainable Variables, so it lives in each Session
on its device.

>>> import xpnn as xn
>>> w = xn.Variable([3.0], name="w")
>>> step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(xn.square(w)))
>>> sess = xn.Session()
>>> for _ in range(200):
...     _ = sess.run(step)
>>> abs(sess.run(w).item()) < 0.05
True
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from dataclasses import dataclass

import numpy as np

from . import ops
from .autodiff import gradients
from .clipping import clip_gradients
from .dtypes import dtype_name, is_floating
from .graph import Node, Update, Variable
from .ops.arithmetic import Add
from .ops.indexing import GatherGrad, RowsPresent, UnsortedSegmentSum


class Optimizer:
    """Base: ``compute_gradients`` + ``apply_gradients`` = ``minimize``. ``sparse``: whether
    a row-sparse gradient (``sparse_rows``) updates only its rows (see ``MomentumOptimizer``).

    Every optimizer takes Keras's options, fixed when its step is built:

    - ``clipnorm``, ``clipvalue``, ``global_clipnorm`` (at most one): the gradients are
      clipped before the update, as graph ops (``xpnn.clipping.clip_gradients``);
    - ``accumulate=k``: each run adds the gradients to accumulators, and every k-th run
      applies the update with their **mean** (clipped), as Keras's
      ``gradient_accumulation_steps``: k runs of b rows step as one run of k b rows would
      for a mean loss. The other runs change no Variable but the accumulators.

    >>> import xpnn as xn
    >>> w = xn.Variable([0.0])
    >>> opt = xn.train.GradientDescentOptimizer(1.0, clipvalue=0.5, accumulate=2)
    >>> step = opt.minimize(xn.reduce_sum(w * -3.0))
    >>> sess = xn.Session(); _ = sess.run(step); sess.run(w).tolist()
    [0.0]
    >>> _ = sess.run(step); sess.run(w).tolist()  # mean gradient -3, clipped to -0.5
    [0.5]
    """

    sparse = False
    # Class defaults too: a user's subclass may not call this __init__.
    clipnorm = clipvalue = global_clipnorm = None
    accumulate = 1

    def __init__(self, learning_rate: float, *, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, accumulate=1):
        self.learning_rate = learning_rate
        clips = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(clips) > 1:
            raise ValueError(f"{type(self).__name__}: set at most one of clipnorm, clipvalue "
                             f"and global_clipnorm (as in Keras), got {clips}")
        for key, value in clips.items():
            value = float(value)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{type(self).__name__}: {key} must be a finite number > 0, "
                                 f"got {value}")
            setattr(self, key, value)
        if (not isinstance(accumulate, numbers.Integral) or isinstance(accumulate, bool)
                or accumulate < 1):
            raise ValueError(f"{type(self).__name__}: accumulate must be a whole number >= 1 "
                             f"(the runs whose gradients make one update), got {accumulate!r}")
        self.accumulate = int(accumulate)

    @property
    def learning_rate(self) -> float | Node:
        """A number, read at every run, so it may be changed between runs (a schedule); or
        a scalar graph node (a placeholder, ``exponential_decay`` of a step counter), whose
        value the update step computes in the same run, before any Variable changes. Set
        it before ``minimize``: the update node reads a node rate as one of its inputs.

        >>> import xpnn as xn
        >>> rate = xn.placeholder(shape=(), name="rate")
        >>> w = xn.Variable([1.0])
        >>> step = xn.train.GradientDescentOptimizer(rate).minimize(xn.reduce_sum(w))
        >>> sess = xn.Session(); sess.run(step, {rate: 0.25}); sess.run(w).tolist()
        [0.75]
        """
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(value, Node):
            if value.shape not in (None, ()):
                raise ValueError(f"learning_rate {value.label} must be a scalar, got shape "
                                 f"{value.shape}")
            self._learning_rate = value
            return
        value = float(value)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"learning_rate must be a finite number > 0, got {value}")
        self._learning_rate = value

    def compute_gradients(self, loss: Node, var_list=None):
        """[(gradient node, Variable)] for ``var_list`` (default: the graph's trainable ones)."""
        if var_list is None:
            var_list = loss.graph.trainable_variables()
        var_list = list(var_list)
        if not var_list:
            raise ValueError("no Variables to optimize: the graph has no trainable Variable")
        for v in var_list:
            if not isinstance(v, Variable):
                raise TypeError(f"{type(self).__name__}: {v!r} is not a Variable")
            if not is_floating(v.dtype):
                raise TypeError(
                    f"{type(self).__name__}: Variable {v.label} has dtype {v.dtype}; only "
                    "floating Variables can be trained (create it with dtype='float32' or "
                    "trainable=False)"
                )
        grads = gradients(loss, var_list)
        missing = [v.label for v, g in zip(var_list, grads) if g is None]
        if len(missing) == len(var_list):
            raise ValueError(
                f"no gradient: loss {loss.label} does not depend on any of {missing}"
            )
        return list(zip(grads, var_list))

    def apply_gradients(self, grads_and_vars, name=None) -> Update:
        """One node that, when run, updates every Variable from its gradient."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        variables = [v for _, v in pairs]
        slots = []
        for v in variables:  # named after their Variable, whatever name scope is open here
            with v.graph.name_scope(None):
                slots.append(self._slots(v))
        rate = self.learning_rate if isinstance(self.learning_rate, Node) else None
        masks = [None] * len(pairs)
        if self.sparse:  # from the gradients as made: clipping keeps their zero rows
            masks = [_rows_mask(g, v) for g, v in pairs]
        grads = [g for g, _ in pairs]
        if self.accumulate > 1:
            return _accumulating(self, grads, variables, slots, masks, name, rate)
        return ApplyGradients(self, self._clip(grads), variables, slots, name=name,
                              rate=rate, masks=masks)

    def minimize(self, loss: Node, var_list=None, name=None) -> Update:
        """The training step: fetch it with ``Session.run`` to update the Variables."""
        return self.apply_gradients(self.compute_gradients(loss, var_list), name=name)

    def _clip(self, grads):
        return clip_gradients(grads, self.clipnorm, self.clipvalue, self.global_clipnorm)

    # Subclasses: the slot Variables each parameter needs, and the portable update.
    def _slots(self, variable: Variable) -> list[Variable]:
        return []

    def _zeros(self, variable: Variable, what: str) -> Variable:
        return Variable(
            np.zeros(variable.shape, dtype=slot_dtype(variable.dtype)),
            name=variable.graph.unique_name(f"{variable.label}/{what}"),
            trainable=False,
            graph=variable.graph,
        )

    def update(self, xp, param, grad, *slots, lr=None):
        """New values (param, *slots) for one Variable; ``lr``: the rate's value this run
        where it is a node (else None: the number ``learning_rate``)."""
        raise NotImplementedError

    def _rate(self, lr):
        return self.learning_rate if lr is None else lr


def sparse_rows(grad: Node) -> list[Node] | None:
    """The indices of the rows a row-sparse gradient touches: the gradient of gathers along
    axis 0 (``embedding_lookup``), or an ``unsorted_segment_sum`` marked ``row_sparse``
    (TF1's ``IndexedSlices`` made dense), one or a sum of several; None for any other
    gradient (a user's own ``unsorted_segment_sum`` is dense to TF1's optimizers too)."""
    parts, found = [grad], []
    while parts:
        node = parts.pop()
        if type(node) is Add:  # ops.add_n's sum of the gathers' gradients
            parts.extend(node.inputs)
            continue
        if type(node) is UnsortedSegmentSum and getattr(node, "row_sparse", False):
            found.append(node.inputs[1])
            continue
        params = node.inputs[2] if isinstance(node, GatherGrad) else None
        if params is None or node.dropping or params.shape is None or (
                node.axis % max(len(params.shape), 1)) != 0:
            return None
        found.append(node.inputs[1])
    return found


def _rows_mask(grad, variable):
    rows = sparse_rows(grad)
    if rows is None or not variable.shape:
        return None
    with variable.graph.name_scope(None):
        return RowsPresent(variable, *rows)


@dataclass(frozen=True)
class Pair:
    """Where one Variable's gradient, value and slots sit: among an ApplyGradients' inputs
    (its ``pairs``), or among a plan's slots (``plan.UpdateStep.groups``)."""

    gradient: int
    variable: int
    slots: tuple[int, ...]


class ApplyGradients(Update):
    """The update node of ``Optimizer.apply_gradients``. Inputs: the gradients, then the
    Variables, then every Variable's slots (flattened), then the learning rate where it is
    a node (``rate``: its position, else None), then the row masks of the Variables updated
    sparsely (``masks``: each pair's position, else None); ``pairs`` says which is whose."""

    def __init__(self, optimizer, grads, variables, slots, name=None, rate=None, masks=None,
                 more=(), more_targets=()):
        self.optimizer = optimizer
        n, flat_slots, pairs = len(variables), [], []
        for i, group in enumerate(slots):
            start = 2 * n + len(flat_slots)
            pairs.append(Pair(i, n + i, tuple(range(start, start + len(group)))))
            flat_slots.extend(group)
        self.pairs = pairs
        self.rate = None if rate is None else 2 * n + len(flat_slots)
        extra = [] if rate is None else [rate]
        self.masks = []
        for mask in masks or [None] * n:
            self.masks.append(None if mask is None else 2 * n + len(flat_slots) + len(extra))
            extra += [] if mask is None else [mask]
        # ``more``: a subclass's own inputs, last; ``more_targets`` the Variables among them
        # that it writes too (``AccumulatedGradients``).
        super().__init__(variables + flat_slots + list(more_targets), *grads, *variables,
                         *flat_slots, *extra, *more, name=name)

    @property
    def sparse(self) -> bool:
        """Whether some Variable here is updated only in the rows its gradient touches (the
        portable update does that; the devices' in-place kernels do not)."""
        return any(m is not None for m in self.masks)

    @property
    def portable_only(self) -> bool:
        """Whether only ``forward`` computes this step, not a device's in-place kernel: a
        sparse step (``sparse``), or one that accumulates (``AccumulatedGradients``)."""
        return self.sparse

    @property
    def type(self) -> str:
        return f"{type(self.optimizer).__name__} step"

    @property
    def reads_targets(self) -> bool:
        """Whether it reads the Variables and slots it writes (not the new values of an
        update it runs after, ``graph.NewValue``): only then may a device update in place."""
        n = len(self.pairs)
        return all(self.inputs[n + k] is t for k, t in enumerate(self.targets))

    def shape_problem(self, values) -> str | None:
        """Why these gradients cannot update these Variables (checked before any write)."""
        for pair in self.pairs:
            grad, param = values[pair.gradient], values[pair.variable]
            if tuple(grad.shape) != tuple(param.shape):
                return (
                    f"the gradient for Variable {self.inputs[pair.variable].label} has shape "
                    f"{tuple(grad.shape)} but the Variable has shape "
                    f"{tuple(param.shape)}: feed or compute a gradient of the Variable's shape"
                )
        return None

    def widened(self, session_dtype=None) -> bool:
        """Whether a Variable of this step is updated in a wider dtype than it holds (float16,
        see ``slot_dtype``) in a Session of ``session_dtype``: the devices' in-place kernels
        do not do that, so such a step takes the portable update."""
        held = [session_dtype if session_dtype and is_floating(v.dtype) else v.dtype
                for v in self.targets]
        return any(slot_dtype(d) != dtype_name(d) for d in held)

    def forward(self, xp, *values):
        updated = [self.pair_values(xp, values, k) for k in range(len(self.pairs))]
        return [new[0] for new in updated] + [s for new in updated for s in new[1:]]

    def pair_values(self, xp, values, k) -> list:
        """Variable k's new value, then its slots', from the step's input ``values``."""
        pair = self.pairs[k]
        rate = None if self.rate is None else values[self.rate]
        param = values[pair.variable]
        slots = [values[s] for s in pair.slots]
        work = _work(xp, param.dtype)
        grad = _cast(xp, values[pair.gradient], work)
        wide = [_cast(xp, x, _work(xp, x.dtype)) for x in (param, *slots)]
        if rate is None:  # an optimizer of a user's own may not take lr=
            updated = self.optimizer.update(xp, wide[0], grad, *wide[1:])
        else:
            updated = self.optimizer.update(xp, wide[0], grad, *wide[1:],
                                            lr=_cast(xp, rate, work))
        if self.masks[k] is not None:
            updated = _keep_rows(xp, values[self.masks[k]], updated, wide)
        return [_cast(xp, updated[0], param.dtype),
                *(_cast(xp, new, old.dtype) for new, old in zip(updated[1:], slots))]

    def new_value(self, xp, values, position):
        """The new value of ``targets[position]`` alone (``graph.NewValue``'s): only its
        Variable's update is computed."""
        if position < len(self.pairs):
            return self.pair_values(xp, values, position)[0]
        offset = position - len(self.pairs)
        for k, pair in enumerate(self.pairs):
            if offset < len(pair.slots):
                return self.pair_values(xp, values, k)[1 + offset]
            offset -= len(pair.slots)
        raise IndexError(f"{self.label} writes {len(self.targets)} Variables, not {position + 1}")


class AccumulatedGradients(ApplyGradients):
    """The update node of an optimizer with ``accumulate=k``: ApplyGradients' inputs (its
    gradients: the mean of the accumulated ones, clipped), then each Variable's
    accumulator plus this run's gradient, the accumulators, and the run counter. Every run
    computes the update; on the k-th it is kept and the accumulators and counter reset,
    on the others only the sums and the counter are kept (``where``, not a branch on the
    host: a compiled JAX plan runs it as it is)."""

    def __init__(self, optimizer, means, variables, slots, sums, accumulators, counter,
                 name=None, rate=None):
        self.every = optimizer.accumulate
        super().__init__(optimizer, means, variables, slots, name=name, rate=rate,
                         more=[*sums, *accumulators, counter],
                         more_targets=[*accumulators, counter])
        self.sums = len(self.inputs) - 2 * len(variables) - 1

    @property
    def portable_only(self) -> bool:
        return True

    def new_value(self, xp, values, position):
        """The value ``targets[position]`` is written (``graph.NewValue``): the whole step,
        as whether this run updates depends on the count."""
        return self.forward(xp, *values)[position]

    def forward(self, xp, *values):
        n, pairs = len(self.pairs), self.pairs
        old = [values[p.variable] for p in pairs] + [values[k] for p in pairs for k in p.slots]
        count = values[-1] + 1
        full = count >= self.every
        new = super().forward(xp, *values)
        sums = [_cast(xp, s, a.dtype) for s, a in
                zip(values[self.sums:self.sums + n], values[self.sums + n:self.sums + 2 * n])]
        return ([xp.where(full, x, o) for x, o in zip(new, old)]
                + [xp.where(full, xp.zeros_like(s), s) for s in sums]
                + [xp.where(full, xp.zeros_like(count), count)])


def _accumulating(optimizer, grads, variables, slots, masks, name, rate):
    """The step of an optimizer with ``accumulate`` > 1 (``AccumulatedGradients``)."""
    if any(m is not None for m in masks):
        raise ValueError(
            f"{type(optimizer).__name__}(sparse=True) updates only the rows a batch looked "
            f"up, which accumulate={optimizer.accumulate} does not follow over its runs: "
            "use sparse=False with accumulate")
    graph = variables[0].graph
    with graph.name_scope(None):
        accumulators = [optimizer._zeros(v, "accumulator") for v in variables]
        counter = Variable(np.asarray(0, dtype=np.int32), trainable=False, graph=graph,
                           name=graph.unique_name("accumulate_count"))
    sums = [ops.add(a, g) for a, g in zip(accumulators, grads)]
    means = optimizer._clip([ops.divide(s, float(optimizer.accumulate)) for s in sums])
    return AccumulatedGradients(optimizer, means, variables, slots, sums, accumulators,
                                counter, name=name, rate=rate)


def _keep_rows(xp, mask, new, old):
    """The new values in the rows of ``mask``, the old ones elsewhere: TF1's sparse update
    (a row no index names keeps its value and its slots)."""
    return [xp.where(xp.reshape(mask, (-1,) + (1,) * (n.ndim - 1)), n, o)
            for n, o in zip(new, old)]


def slot_dtype(dtype) -> str:
    """The dtype an optimizer keeps a Variable's slots in and computes its update in:
    float32 for a float16 Variable, as mixed-precision training does (in float16 Adam's
    epsilon 1e-8 is 0, so a weight with no gradient became 0/0 = NaN, and the squares of
    small gradients vanish); the Variable's own dtype otherwise. Only the new weights are
    rounded to float16."""
    name = dtype_name(dtype)
    return "float32" if name == "float16" else name


def _work(xp, dtype):
    """The namespace's dtype an update of a ``dtype`` value is computed in (``slot_dtype``)."""
    if xp.isdtype(dtype, "real floating") and xp.finfo(dtype).bits < 32:
        return xp.float32
    return dtype


def _cast(xp, x, dtype):
    return x if x.dtype == dtype else xp.astype(x, dtype)


class GradientDescentOptimizer(Optimizer):
    """w <- w - learning_rate * grad."""

    def update(self, xp, param, grad, lr=None):
        return (param - self._rate(lr) * grad,)


class MomentumOptimizer(Optimizer):
    """v <- momentum v + grad; w <- w - lr v (Nesterov: w <- w - lr (grad + momentum v)),
    the TensorFlow / PyTorch form.

    ``sparse=True``: a Variable whose gradient is row-sparse (that of ``embedding_lookup``
    or ``gather`` along axis 0, ``sparse_rows``) is updated only in the rows the batch looked
    up, its slots too: a row not looked up keeps its value and its velocity, as TF1's
    sparse update (and RMSProp's) does; repeated ids add up first. (Adagrad, Adam and
    gradient descent need no option: their rule already gives TF1's sparse numbers.)

    >>> import xpnn as xn
    >>> table = xn.Variable([[1.0], [1.0]])
    >>> loss = xn.reduce_sum(xn.embedding_lookup(table, [0]))
    >>> step = xn.train.MomentumOptimizer(0.5, 0.9, sparse=True).minimize(loss)
    >>> sess = xn.Session(); _ = sess.run(step)
    >>> sess.run(table).ravel().tolist()  # row 1 keeps its value (and velocity)
    [0.5, 1.0]
    """

    def __init__(self, learning_rate: float, momentum: float = 0.9, use_nesterov: bool = False,
                 sparse: bool = False, **options):
        super().__init__(learning_rate, **options)
        self.momentum, self.use_nesterov = float(momentum), use_nesterov
        self.sparse = bool(sparse)

    def _slots(self, variable):
        return [self._zeros(variable, "momentum")]

    def update(self, xp, param, grad, velocity, lr=None):
        velocity = self.momentum * velocity + grad
        step = grad + self.momentum * velocity if self.use_nesterov else velocity
        return param - self._rate(lr) * step, velocity


class AdamOptimizer(Optimizer):
    """Adam (Kingma & Ba) as TensorFlow 1 computes it, with its defaults:
    ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)``, ``w <- w - lr_t m / (sqrt(v) + epsilon)``,
    the powers kept as accumulators in the Variable's dtype (TF1's ``beta1_power``). A
    float16 Variable's moments and powers are float32 and its update is computed in float32
    (``slot_dtype``): in float16 epsilon 1e-8 is 0.

    PyTorch's ``Adam`` adds epsilon to the bias-corrected ``sqrt(v_hat)`` instead, so the two
    differ where gradients are as small as ``epsilon / sqrt(1 - beta2^t)``: xpnn's Adam with
    ``epsilon = e`` is PyTorch's with ``eps = e / sqrt(1 - beta2^t)`` at step ``t``.

    >>> import xpnn as xn
    >>> w = xn.Variable([1.0, 1.0], dtype="float32")
    >>> step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(w * [1e-6, 1.0]))
    >>> sess = xn.Session(); _ = sess.run(step)
    >>> [f"{x:.7f}" for x in sess.run(w).tolist()]  # as TF1: [0.9240254, 0.90000004]
    ['0.9240254', '0.9000000']
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, **options):
        super().__init__(learning_rate, **options)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def _slots(self, variable):
        powers = [Variable(np.asarray(beta, dtype=slot_dtype(variable.dtype)),
                           name=variable.graph.unique_name(f"{variable.label}/{name}"),
                           trainable=False, graph=variable.graph)
                  for beta, name in ((self.beta1, "adam_beta1_power"),
                                     (self.beta2, "adam_beta2_power"))]
        return [self._zeros(variable, "adam_m"), self._zeros(variable, "adam_v"), *powers]

    def update(self, xp, param, grad, m, v, beta1_power, beta2_power, lr=None):
        b1, c1, b2, c2 = beta_coefficients(self.beta1, self.beta2, dtype_name(param.dtype))
        step = adam_step_size(self._rate(lr), xp, beta1_power, beta2_power)
        m = b1 * m + c1 * grad
        v = b2 * v + c2 * (grad * grad)
        new = param - step * (m / (xp.sqrt(v) + self.epsilon))
        return new, m, v, beta1_power * b1, beta2_power * b2


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's ``AdamW`` and
    Keras's: each step first shrinks every weight, ``w <- w (1 - lr weight_decay)``, then
    takes ``AdamOptimizer``'s step from the gradient (which holds no decay term). Defaults
    are PyTorch's (``get("adamw")`` gives Keras's: weight_decay 0.004, epsilon 1e-7);
    epsilon is added as in ``AdamOptimizer`` (TF1's place).

    >>> import xpnn as xn
    >>> w = xn.Variable([2.0])
    >>> step = xn.train.AdamWOptimizer(0.1, weight_decay=0.5).minimize(xn.reduce_sum(w * 0.0))
    >>> sess = xn.Session(); _ = sess.run(step)
    >>> round(sess.run(w).item(), 6)  # a zero gradient: only the decay, 2 (1 - 0.1 * 0.5)
    1.9
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.01, beta1=0.9, beta2=0.999,
                 epsilon=1e-8, **options):
        super().__init__(learning_rate, beta1, beta2, epsilon, **options)
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            raise ValueError(f"AdamWOptimizer: weight_decay must be a finite number >= 0, "
                             f"got {weight_decay}")
        self.weight_decay = float(weight_decay)

    def update(self, xp, param, grad, *slots, lr=None):
        decayed = param * (1.0 - self._rate(lr) * self.weight_decay)
        return super().update(xp, decayed, grad, *slots, lr=lr)


class RMSPropOptimizer(Optimizer):
    """RMSProp as TensorFlow 1 computes it, with its defaults: the mean square ``ms`` starts
    at **1**, ``ms <- ms + (g^2 - ms)(1 - decay)``, ``mom <- momentum mom + lr g /
    sqrt(ms + epsilon)``, ``w <- w - mom``. ``centered=True`` also keeps the mean gradient
    ``mg`` and divides by ``sqrt(ms - mg^2 + epsilon)``. ``sparse``: as ``MomentumOptimizer``'s.
    ``initial_mean_square=0`` starts ``ms`` at 0 as Keras's ``RMSprop`` does (``get("rmsprop")``).

    >>> import xpnn as xn
    >>> w = xn.Variable([1.0])
    >>> step = xn.train.RMSPropOptimizer(0.1).minimize(xn.reduce_sum(w * 2.0))
    >>> sess = xn.Session(); _ = sess.run(step)
    >>> round(sess.run(w).item(), 6)  # 1 - 0.1 * 2 / sqrt(1 + 0.1 * (4 - 1))
    0.824588
    """

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False,
                 sparse=False, initial_mean_square=1.0, **options):
        super().__init__(learning_rate, **options)
        self.decay, self.momentum = float(decay), float(momentum)
        self.epsilon, self.centered = float(epsilon), bool(centered)
        self.sparse = bool(sparse)
        if not initial_mean_square >= 0:
            raise ValueError(f"initial_mean_square must be >= 0, got {initial_mean_square}")
        self.initial_mean_square = float(initial_mean_square)

    def _slots(self, variable):
        ms = Variable(np.full(variable.shape, self.initial_mean_square,
                              dtype=slot_dtype(variable.dtype)),
                      name=variable.graph.unique_name(f"{variable.label}/rms"),
                      trainable=False, graph=variable.graph)
        slots = [ms, self._zeros(variable, "momentum")]
        return slots + [self._zeros(variable, "mg")] if self.centered else slots

    def update(self, xp, param, grad, ms, mom, *mg, lr=None):
        one_minus = beta_coefficients(self.decay, self.decay, dtype_name(param.dtype))[1]
        ms = ms + (grad * grad - ms) * one_minus
        if mg:
            mg = (mg[0] + (grad - mg[0]) * one_minus,)
            denominator = xp.sqrt(ms - mg[0] * mg[0] + self.epsilon)
        else:
            denominator = xp.sqrt(ms + self.epsilon)
        mom = mom * self.momentum + (grad * self._rate(lr)) / denominator
        return (param - mom, ms, mom, *mg)


class AdagradOptimizer(Optimizer):
    """Adagrad as TensorFlow 1 computes it: ``acc <- acc + g^2`` (``acc`` starting at
    ``initial_accumulator_value``), ``w <- w - lr g / sqrt(acc)``. A row whose gradient is
    0 (not looked up) keeps its value and accumulator: TF1's sparse update as it is.

    >>> import xpnn as xn
    >>> w = xn.Variable([1.0])
    >>> step = xn.train.AdagradOptimizer(0.5).minimize(xn.reduce_sum(w * 2.0))
    >>> sess = xn.Session(); _ = sess.run(step)
    >>> round(sess.run(w).item(), 6)  # 1 - 0.5 * 2 / sqrt(0.1 + 4)
    0.506135
    """

    def __init__(self, learning_rate, initial_accumulator_value=0.1, **options):
        super().__init__(learning_rate, **options)
        if not initial_accumulator_value > 0:
            raise ValueError(f"initial_accumulator_value must be > 0, got "
                             f"{initial_accumulator_value}")
        self.initial_accumulator_value = float(initial_accumulator_value)

    def _slots(self, variable):
        start = np.full(variable.shape, self.initial_accumulator_value,
                        dtype=slot_dtype(variable.dtype))
        return [Variable(start, name=variable.graph.unique_name(f"{variable.label}/adagrad"),
                         trainable=False, graph=variable.graph)]

    def update(self, xp, param, grad, acc, lr=None):
        acc = acc + grad * grad
        return param - (grad * self._rate(lr)) * (1.0 / xp.sqrt(acc)), acc


# Keras's names, and Keras's defaults for them where xpnn's rule is the same ("momentum" and
# "nesterov" are Keras's SGD(momentum=0.9) and SGD(momentum=0.9, nesterov=True)).
NAMES = {
    "sgd": (GradientDescentOptimizer, {"learning_rate": 0.01}),
    "momentum": (MomentumOptimizer, {"learning_rate": 0.01, "momentum": 0.9}),
    "nesterov": (MomentumOptimizer, {"learning_rate": 0.01, "momentum": 0.9,
                                     "use_nesterov": True}),
    "adam": (AdamOptimizer, {"learning_rate": 0.001, "epsilon": 1e-7}),
    "adamw": (AdamWOptimizer, {"learning_rate": 0.001, "weight_decay": 0.004,
                               "epsilon": 1e-7}),
    "rmsprop": (RMSPropOptimizer, {"learning_rate": 0.001, "epsilon": 1e-7,
                                   "initial_mean_square": 0.0}),
    "adagrad": (AdagradOptimizer, {"learning_rate": 0.001}),
}
_KERAS_SPELLINGS = {"beta_1": "beta1", "beta_2": "beta2", "rho": "decay",
                    "nesterov": "use_nesterov"}
_OPTIONS = ("clipnorm", "clipvalue", "global_clipnorm", "accumulate")


def get(identifier, learning_rate=None, **kwargs) -> Optimizer:
    """The optimizer ``identifier`` names, as Keras's ``optimizers.get``: ``"sgd"``,
    ``"momentum"``, ``"nesterov"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``
    (any case) with Keras's default learning rate for that name unless ``learning_rate``
    is given; ``kwargs`` go to its constructor (Keras's spellings ``beta_1``, ``rho``,
    ``nesterov`` too, and ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``accumulate``);
    ``"sgd"`` with ``momentum`` > 0 is ``"momentum"``. An optimizer object is returned as
    it is (with ``learning_rate``, its rate set to it).

    >>> import xpnn as xn
    >>> opt = xn.train.get("Adam", clipnorm=1.0)
    >>> type(opt).__name__, opt.learning_rate, opt.clipnorm
    ('AdamOptimizer', 0.001, 1.0)
    >>> xn.train.get("sgd", 0.1, momentum=0.9, nesterov=True).use_nesterov
    True
    """
    if isinstance(identifier, Optimizer):
        if kwargs:
            raise ValueError(f"optimizers.get: options {sorted(kwargs)} apply to an optimizer "
                             f"named by a string; {identifier!r} is already made: give them "
                             "to its constructor")
        if learning_rate is not None:
            identifier.learning_rate = learning_rate
        return identifier
    key = identifier.lower() if isinstance(identifier, str) else None
    if key not in NAMES:
        raise ValueError(f"unknown optimizer {identifier!r}: use one of "
                         f"{', '.join(map(repr, NAMES))} (any case), or an xn.train optimizer "
                         "object such as xn.train.AdamOptimizer(1e-3)")
    kwargs = {_KERAS_SPELLINGS.get(k, k): v for k, v in kwargs.items()}
    if key == "sgd" and kwargs.get("momentum"):
        key = "nesterov" if kwargs.get("use_nesterov") else "momentum"
    elif key == "sgd":
        kwargs = {k: v for k, v in kwargs.items() if k not in ("momentum", "use_nesterov")}
    cls, defaults = NAMES[key]
    accepted = [p for p in inspect.signature(cls).parameters if p != "options"] + list(_OPTIONS)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"optimizers.get({identifier!r}): {cls.__name__} takes no option "
                         f"{', '.join(unknown)}; its options: {', '.join(accepted)}")
    given = {"learning_rate": learning_rate} if learning_rate is not None else {}
    return cls(**{**defaults, **given, **kwargs})


def adam_step_size(lr, xp, beta1_power, beta2_power):
    """TF1's ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)``, in the powers' dtype; ``lr``
    the rate's value (a number, or an array this run)."""
    return lr * xp.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)


@functools.cache
def beta_coefficients(beta1, beta2, dtype) -> tuple[float, float, float, float]:
    """``beta1, 1 - beta1, beta2, 1 - beta2`` computed in ``dtype``, as TF1's kernel does:
    float32's ``1 - 0.999`` is 0.00099998713, and ``v`` and ``1 - beta2^t`` must round alike
    for the bias correction to cancel as it does in TensorFlow."""
    one, b1, b2 = (np.asarray(x, dtype=dtype) for x in (1.0, beta1, beta2))
    return float(b1), float(one - b1), float(b2), float(one - b2)
