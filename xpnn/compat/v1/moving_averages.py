"""TF1's ``tf.train.ExponentialMovingAverage``: a shadow Variable per Variable (or tensor)
named ``<name>/ExponentialMovingAverage``, moved toward it by ``apply``'s op as
``shadow -= (1 - decay) * (shadow - value)``, with TF1's ``decay = min(decay, (1 + n) /
(10 + n))`` where ``num_updates`` is given. Run under ``control_dependencies([train_op])``
it averages the weights the step wrote. ``variables_to_restore()`` maps the shadows' names
to the model's Variables, for ``tf.train.Saver`` to load the averages into the model.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> w = tf.Variable(0.0, name="w")
>>> ema = tf.train.ExponentialMovingAverage(0.5)
>>> with tf.control_dependencies([tf.assign(w, 4.0)]):
...     average = ema.apply([w])
>>> sess = tf.Session(); sess.run(tf.global_variables_initializer())
>>> sess.run(average); ema.average_name(w), float(sess.run(ema.average(w)))
('w/ExponentialMovingAverage', 2.0)
"""

from __future__ import annotations

import numpy as np

from ... import graph as _graph
from ... import ops
from . import graphs
from .graphs import GraphKeys, add_to_collection, op_name
from .tensors import as_tensor, constant
from .variables import Variable, assign_sub, global_variables, trainable_variables


class ExponentialMovingAverage:
    """Moving averages of Variables and tensors (``zero_debias`` is TF1's for tensors
    only: not in xpnn.compat.v1)."""

    def __init__(self, decay, num_updates=None, zero_debias=False,
                 name="ExponentialMovingAverage"):
        self._decay, self._num_updates = decay, num_updates
        self._zero_debias, self._name = zero_debias, name
        self._averages = {}  # Variable or tensor -> its shadow Variable

    @property
    def name(self):
        return self._name

    def apply(self, var_list=None):
        """The op that moves each shadow toward its Variable's (or tensor's) value; makes
        the shadows (in the global Variables) the first time."""
        var_list = trainable_variables() if var_list is None else list(var_list)
        for var in var_list:  # every one checked before any shadow is made
            _check(var, self)
        for var in var_list:
            self._averages[var] = self._shadow(var)
            if isinstance(var, _graph.Variable):
                add_to_collection(GraphKeys.MOVING_AVERAGE_VARIABLES, var)
        with _graph.name_scope(self._name):
            decay = self._decay_tensor()
            updates = [_moved(self._averages[var], var, decay) for var in var_list]
        return graphs.group(*updates, name=op_name(None, self._name))

    def _shadow(self, var):
        if isinstance(var, _graph.Variable):
            start = var.initial_value
        else:
            start = np.zeros(var.shape, dtype=var.dtype)
        graph = _graph.get_default_graph()
        with graph.name_scope(None):
            return Variable(start, name=self.average_name(var), trainable=False,
                            dtype=var.dtype)

    def _decay_tensor(self):
        decay = constant(self._decay, "float32")
        if self._num_updates is None:
            return decay
        n = ops.cast(as_tensor(self._num_updates), "float32")
        return ops.minimum(decay, ops.divide(1.0 + n, 10.0 + n))

    def average(self, var):
        """The shadow Variable of ``var``, or None where ``apply`` has not made one."""
        return self._averages.get(var)

    def average_name(self, var):
        """``<var's name>/ExponentialMovingAverage``: its shadow's name."""
        return f"{var.name}/{self._name}"

    def variables_to_restore(self, moving_avg_variables=None):
        """{name: Variable} for ``tf.train.Saver``: each averaged Variable under its
        shadow's name (restoring loads the average into the model), every other global
        Variable under its own."""
        if moving_avg_variables is None:
            moving_avg_variables = trainable_variables() + graphs.get_collection(
                GraphKeys.MOVING_AVERAGE_VARIABLES)
        found = {self.average_name(v): v for v in moving_avg_variables}
        averaged = {v.name for v in moving_avg_variables}
        for v in global_variables():
            if v.name not in averaged and v.name not in found:
                found[v.name] = v
        return found


def _check(var, ema):
    if not isinstance(var, _graph.Node):
        raise TypeError(f"ExponentialMovingAverage.apply: {var!r} is not a Variable or a "
                        "tensor")
    if not (var.dtype or "").startswith("float"):
        raise TypeError(f"ExponentialMovingAverage.apply: {var.name} has dtype {var.dtype}; "
                        "only floating Variables and tensors have moving averages")
    if var in ema._averages:
        raise ValueError(f"Moving average already computed for: {var.name}")
    if isinstance(var, _graph.Variable):
        return
    if ema._zero_debias:
        raise NotImplementedError(
            f"ExponentialMovingAverage(zero_debias=True).apply of tensor {var.name}: not in "
            "xpnn.compat.v1; average a Variable, or pass zero_debias=False")
    if var.shape is None or None in var.shape:
        raise ValueError(f"ExponentialMovingAverage.apply: tensor {var.name} has shape "
                         f"{var.shape}; its average needs a fully known shape")


def _moved(shadow, value, decay):
    """TF1's ``assign_moving_average``: shadow -= (shadow - value) * (1 - decay)."""
    one_minus = ops.subtract(constant(1.0, "float32"), decay)
    delta = ops.multiply(ops.subtract(shadow, value), ops.cast(one_minus, shadow.dtype))
    return assign_sub(shadow, delta)


def moving_average_variables(scope=None):
    """The Variables an ExponentialMovingAverage averages (TF1's collection)."""
    return graphs.get_collection(GraphKeys.MOVING_AVERAGE_VARIABLES, scope)
