"""``tf.train``: TF1's optimizers (xpnn's ``xn.train`` ones, which compute TF1's rules) with
TF1's signatures, ``minimize(global_step=...)``, ``compute_gradients`` /
``apply_gradients``; the global step; learning-rate schedules as graph nodes; ``Saver`` on
xpnn's file format (``.npz``, no pickle) with a ``checkpoint`` file as TF1's.

Its names: Optimizer, GradientDescentOptimizer, MomentumOptimizer, AdamOptimizer,
RMSPropOptimizer, AdagradOptimizer, get_global_step, create_global_step,
get_or_create_global_step, global_step, exponential_decay, inverse_time_decay,
natural_exp_decay, polynomial_decay, piecewise_constant, Saver, CheckpointState,
get_checkpoint_state, latest_checkpoint, checkpoint_exists, summary_iterator,
ExponentialMovingAverage.

Optimizers have ``get_slot`` and ``get_slot_names``; ``ExponentialMovingAverage`` is in
``moving_averages.py``.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> w = tf.Variable(1.0)
>>> step = tf.train.get_or_create_global_step()
>>> rate = tf.train.exponential_decay(0.5, step, decay_steps=1, decay_rate=0.5)
>>> train = tf.train.GradientDescentOptimizer(rate).minimize(w * w, global_step=step)
>>> sess = tf.Session(); sess.run(tf.global_variables_initializer())
>>> for _ in range(2):
...     _ = sess.run(train)
>>> float(sess.run(w)), int(sess.run(step))  # w * (1 - 2 * 0.5) * (1 - 2 * 0.25)
(0.0, 2)
"""

from __future__ import annotations

import os
import re
import sys

from ... import io, ops
from ... import optimizers as _core
from ...autodiff import gradients
from ...dtypes import is_floating
from ...graph import Node
from ...ops import logic
from . import graphs, slots
from .dtypes import int64
from .events import summary_iterator
from .graphs import GraphKeys, add_to_collection, op_name, state
from .indexed_slices import from_gradient, to_dense
from .moving_averages import ExponentialMovingAverage
from .tensors import as_tensor, constant
from .unsupported import module_getattr
from .variables import Variable, assign_add, global_variables, trainable_variables


class Optimizer:
    """TF1's Optimizer over one of xpnn's (``self.optimizer``, which computes TF1's rule:
    its update node is xpnn's own, NumPy's in-place kernels included)."""

    def __init__(self, optimizer, name):
        self.optimizer, self._name = optimizer, name
        self._slots = {}  # TF1's slot name -> {Variable: slot Variable}

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    def get_name(self):
        return self._name

    def compute_gradients(self, loss, var_list=None, gate_gradients=1, aggregation_method=None,
                          colocate_gradients_with_ops=False, grad_loss=None):
        """[(gradient, Variable)] for ``var_list`` (the trainable Variables): None for those
        the loss does not depend on, and for integer ones."""
        var_list = list(trainable_variables() if var_list is None else var_list)
        floating = [v for v in var_list if is_floating(v.dtype)]
        found = dict(zip(floating, gradients(loss, floating, grad_loss))) if floating else {}
        return [(from_gradient(found.get(v)), v) for v in var_list]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """The update op; with ``global_step`` it also adds 1 to that Variable. An
        IndexedSlices gradient updates only its rows where TF1's sparse rule does so."""
        grads_and_vars = list(grads_and_vars)
        pairs = [(to_dense(g, v), v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable: "
                             f"{[v.name for _, v in grads_and_vars]}")
        if global_step is None:
            update = self.optimizer.apply_gradients(pairs, name=op_name(name, self._name))
            return slots.named(self, update)
        update = slots.named(self, self.optimizer.apply_gradients(pairs))
        return graphs.group(update, assign_add(global_step, 1), name=name or self._name)

    def get_slot(self, var, name):
        """The slot Variable ``name`` (``get_slot_names``) the optimizer keeps for ``var``,
        or None."""
        return self._slots.get(name, {}).get(var)

    def get_slot_names(self):
        """The names of the slots made so far, sorted (Momentum's "momentum", Adam's "m"
        and "v", RMSProp's "rms" and "momentum", Adagrad's "accumulator")."""
        return sorted(self._slots)

    def minimize(self, loss, global_step=None, var_list=None, gate_gradients=1,
                 aggregation_method=None, colocate_gradients_with_ops=False, name=None,
                 grad_loss=None):
        """compute_gradients then apply_gradients: the training op."""
        return self.apply_gradients(self.compute_gradients(loss, var_list, grad_loss=grad_loss),
                                    global_step, name)


class GradientDescentOptimizer(Optimizer):
    """w -= learning_rate * g."""

    def __init__(self, learning_rate, use_locking=False, name="GradientDescent"):
        super().__init__(_core.GradientDescentOptimizer(learning_rate), name)


class MomentumOptimizer(Optimizer):
    """a = momentum a + g; w -= lr a (Nesterov: w -= lr (g + momentum a))."""

    def __init__(self, learning_rate, momentum, use_locking=False, name="Momentum",
                 use_nesterov=False):
        super().__init__(_core.MomentumOptimizer(learning_rate, momentum, use_nesterov,
                                                 sparse=True), name)


class AdamOptimizer(Optimizer):
    """TF1's Adam: epsilon added to sqrt(v), the bias correction in the step size."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08,
                 use_locking=False, name="Adam"):
        super().__init__(_core.AdamOptimizer(learning_rate, beta1, beta2, epsilon), name)


class RMSPropOptimizer(Optimizer):
    """TF1's RMSProp: the mean square starts at 1."""

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10,
                 use_locking=False, centered=False, name="RMSProp"):
        super().__init__(_core.RMSPropOptimizer(learning_rate, decay, momentum, epsilon,
                                                centered, sparse=True), name)


class AdagradOptimizer(Optimizer):
    """acc += g^2; w -= lr g / sqrt(acc), acc from initial_accumulator_value."""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, use_locking=False,
                 name="Adagrad"):
        super().__init__(_core.AdagradOptimizer(learning_rate, initial_accumulator_value),
                         name)


# --------------------------------------------------------------------------- the global step


def get_global_step(graph=None):
    """The graph's global step Variable, or None."""
    return state(graph).global_step


def create_global_step(graph=None):
    """A new int64 Variable ``global_step`` starting at 0, not trainable."""
    st = state(graph)
    if st.global_step is not None:
        raise ValueError('"global_step" already exists.')
    graph = graph if graph is not None else graphs.get_default_graph()
    with graph.as_default(), graph.name_scope(None):
        st.global_step = Variable(0, name="global_step", dtype=int64, trainable=False)
    add_to_collection(GraphKeys.GLOBAL_STEP, st.global_step)
    return st.global_step


def get_or_create_global_step(graph=None):
    return get_global_step(graph) or create_global_step(graph)


def global_step(sess, global_step_tensor):
    """The step's value, as a Python int."""
    return int(sess.run(global_step_tensor))


# --------------------------------------------------------------------------- schedules


def _progress(learning_rate, global_step, decay_steps, staircase, what):
    if global_step is None:
        raise ValueError(f"global_step is required for {what}.")
    rate = as_tensor(learning_rate)
    dtype = rate.dtype or "float32"
    p = ops.divide(ops.cast(as_tensor(global_step), dtype),
                   constant(float(decay_steps), dtype))
    return rate, dtype, (ops.floor(p) if staircase else p)


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False,
                      name=None):
    """learning_rate * decay_rate ** (global_step / decay_steps) (the exponent floored
    with ``staircase``), computed in the rate's dtype as TF1 does."""
    rate, dtype, p = _progress(learning_rate, global_step, decay_steps, staircase,
                               "exponential_decay")
    return ops.multiply(rate, ops.pow(constant(float(decay_rate), dtype), p),
                        name=op_name(name, "ExponentialDecay"))


def inverse_time_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False,
                       name=None):
    """learning_rate / (1 + decay_rate * global_step / decay_steps)."""
    rate, dtype, p = _progress(learning_rate, global_step, decay_steps, staircase,
                               "inverse_time_decay")
    denominator = ops.add(constant(1.0, dtype), ops.multiply(constant(decay_rate, dtype), p))
    return ops.divide(rate, denominator, name=op_name(name, "InverseTimeDecay"))


def natural_exp_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False,
                      name=None):
    """learning_rate * exp(-decay_rate * global_step / decay_steps)."""
    rate, dtype, p = _progress(learning_rate, global_step, decay_steps, staircase,
                               "natural_exp_decay")
    exponent = ops.exp(ops.multiply(ops.negative(constant(decay_rate, dtype)), p))
    return ops.multiply(rate, exponent, name=op_name(name, "NaturalExpDecay"))


def polynomial_decay(learning_rate, global_step, decay_steps, end_learning_rate=0.0001,
                     power=1.0, cycle=False, name=None):
    """(lr - end) (1 - min(step, decay_steps) / decay_steps) ** power + end; with ``cycle``,
    decay_steps times ceil(step / decay_steps) (1 at step 0) in place of the min, as TF1's."""
    rate = as_tensor(learning_rate)
    dtype = rate.dtype or "float32"
    steps = constant(float(decay_steps), dtype)
    step = ops.cast(as_tensor(global_step), dtype)
    if cycle:
        cycles = ops.ceil(ops.divide(step, steps))
        one = constant(1.0, dtype)
        steps = ops.multiply(steps, logic.where(logic.equal(step, 0.0), one, cycles))
        p = ops.divide(step, steps)
    else:
        p = ops.divide(ops.minimum(step, steps), steps)
    end = constant(end_learning_rate, dtype)
    scaled = ops.multiply(ops.subtract(rate, end),
                          ops.pow(ops.subtract(constant(1.0, dtype), p),
                                       constant(power, dtype)))
    return ops.add(scaled, end, name=op_name(name, "PolynomialDecay"))


def piecewise_constant(x, boundaries, values, name=None):
    """values[0] while x <= boundaries[0], values[i] while x <= boundaries[i], values[-1]
    after the last boundary."""
    if len(values) != len(boundaries) + 1:
        raise ValueError("The length of boundaries should be 1 less than the length of values")
    x = as_tensor(x)
    result = as_tensor(values[-1])
    for boundary, value in zip(reversed(boundaries), reversed(values[:-1])):
        result = logic.where(x <= boundary, as_tensor(value), result)
    return ops.identity(result, name=op_name(name, "PiecewiseConstant"))


# --------------------------------------------------------------------------- checkpoints


class Saver:
    """Save and restore Variables (``var_list``: a list or a {name: Variable} dict; all of
    the graph's when None, optimizer slots and the global step too). ``save`` writes
    ``<save_path>[-<step>].npz`` and a ``checkpoint`` file beside it naming the latest,
    keeping the ``max_to_keep`` newest (None or 0: all)."""

    def __init__(self, var_list=None, reshape=False, sharded=False, max_to_keep=5,
                 keep_checkpoint_every_n_hours=10000.0, name=None, restore_sequentially=False,
                 saver_def=None, builder=None, defer_build=False, allow_empty=False,
                 write_version=2, pad_step_number=False, save_relative_paths=False,
                 filename=None):
        self._var_list = var_list if var_list is not None else global_variables()
        if isinstance(self._var_list, (list, tuple)):
            self._var_list = list(self._var_list)
        self.max_to_keep = max_to_keep
        self._last: list[str] = []

    @property
    def last_checkpoints(self) -> list[str]:
        return list(self._last)

    def save(self, sess, save_path, global_step=None, latest_filename=None,
             meta_graph_suffix="meta", write_meta_graph=True, write_state=True,
             strip_default_attrs=False, save_debug_info=False):
        """Write the Variables; the path prefix written (give it to ``restore``)."""
        prefix = os.fspath(save_path)
        if global_step is not None:
            step = sess.run(global_step) if isinstance(global_step, Node) else global_step
            prefix = f"{prefix}-{int(step)}"
        sess.save(prefix + ".npz", var_list=self._var_list)
        if prefix in self._last:
            self._last.remove(prefix)
        self._last.append(prefix)
        while self.max_to_keep and len(self._last) > self.max_to_keep:
            old = self._last.pop(0)
            if os.path.exists(old + ".npz"):
                os.remove(old + ".npz")
        if write_state:
            _write_state(os.path.dirname(prefix) or ".", self._last,
                         latest_filename or "checkpoint")
        return prefix

    def restore(self, sess, save_path):
        """Load the Variables saved at ``save_path`` (the prefix ``save`` returned)."""
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        path = os.fspath(save_path)
        path = path if path.endswith(".npz") else path + ".npz"
        if not os.path.exists(path):
            raise ValueError(f"The passed save_path is not a valid checkpoint: {save_path}")
        sess.restore(path, var_list=self._var_list)


def _write_state(directory, paths, filename):
    lines = [f'model_checkpoint_path: "{os.path.basename(paths[-1])}"']
    lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in paths]
    text = ("\n".join(lines) + "\n").encode()
    io.write_atomic(os.path.join(directory, filename), lambda f: f.write(text))


class CheckpointState:
    def __init__(self, model_checkpoint_path, all_model_checkpoint_paths):
        self.model_checkpoint_path = model_checkpoint_path
        self.all_model_checkpoint_paths = all_model_checkpoint_paths


def get_checkpoint_state(checkpoint_dir, latest_filename=None):
    """What the ``checkpoint`` file in ``checkpoint_dir`` names, or None."""
    path = os.path.join(os.fspath(checkpoint_dir), latest_filename or "checkpoint")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        found = re.findall(r'^(\w+): "(.*)"$', f.read(), flags=re.M)

    def full(p):
        return p if os.path.isabs(p) else os.path.join(os.fspath(checkpoint_dir), p)

    latest = [full(p) for key, p in found if key == "model_checkpoint_path"]
    every = [full(p) for key, p in found if key == "all_model_checkpoint_paths"]
    return CheckpointState(latest[-1], every) if latest else None


def latest_checkpoint(checkpoint_dir, latest_filename=None):
    """The newest checkpoint's prefix in ``checkpoint_dir``, or None."""
    found = get_checkpoint_state(checkpoint_dir, latest_filename)
    if found is None or not os.path.exists(found.model_checkpoint_path + ".npz"):
        return None
    return found.model_checkpoint_path


def checkpoint_exists(checkpoint_prefix) -> bool:
    return os.path.exists(os.fspath(checkpoint_prefix) + ".npz")


__all__ = ["Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer",
           "RMSPropOptimizer", "AdagradOptimizer", "get_global_step", "create_global_step",
           "get_or_create_global_step", "global_step", "exponential_decay",
           "inverse_time_decay", "natural_exp_decay", "polynomial_decay", "piecewise_constant",
           "Saver", "CheckpointState", "get_checkpoint_state", "latest_checkpoint",
           "checkpoint_exists", "summary_iterator",
           "ExponentialMovingAverage"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.train")
