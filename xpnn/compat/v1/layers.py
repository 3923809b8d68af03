"""``tf.layers``: TF1's ``dense``, ``conv2d``, ``max_pooling2d``, ``average_pooling2d``,
``flatten``, ``dropout`` and ``batch_normalization``, with TF1's arguments and defaults, and
the classes behind them (``tf.layers.Dense(units)(x)``; calling one again shares its
Variables). They are xpnn's ops over this module's ``variable_scope`` and ``get_variable``,
so the Variables are TF1's: ``dense/kernel``, ``dense/bias``, ``dense_1/...`` for the next
unnamed layer, in ``tf.trainable_variables()``; ``name=`` and ``reuse=`` work as in TF1.

TF1's defaults: kernels from ``get_variable``'s default initializer (the scope's, else
glorot_uniform, drawn from the graph's seed), biases zeros, no activation; conv2d kernels
(kh, kw, in, filters), ``padding="valid"`` (either case), strides 1,
``data_format="channels_last"``; dense on a rank > 2 input maps the last axis. dropout and
batch_normalization run in inference unless ``training`` is True or a bool placeholder fed
True. batch_normalization puts its moving-average updates in ``tf.GraphKeys.UPDATE_OPS``;
as TF1's fused kernel does on 4-D and 5-D inputs normalised along their channels, those
update the moving variance with the batch variance times n / (n - 1) (elsewhere without).

Its names: Layer, Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dropout,
BatchNormalization, dense, conv2d, max_pooling2d, average_pooling2d, flatten, dropout,
batch_normalization.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> images = tf.placeholder(tf.float32, [None, 28, 28, 1])
>>> conv = tf.layers.conv2d(images, 8, 5, padding="same", activation=tf.nn.relu)
>>> pool = tf.layers.max_pooling2d(conv, pool_size=2, strides=2)
>>> logits = tf.layers.dense(tf.layers.flatten(pool), 10)
>>> logits.shape, [v.name for v in tf.trainable_variables()]
((None, 10), ['conv2d/kernel', 'conv2d/bias', 'dense/kernel', 'dense/bias'])
"""

from __future__ import annotations

import math
import operator
import sys
import weakref

from ... import normalization, ops
from ...graph import Node, TensorShape
from ...ops import conv, logic
from . import array_ops
from .dtypes import as_dtype, float32
from .graphs import GraphKeys, add_to_collection, name_scope
from .initializers import ones_initializer, zeros_initializer
from .tensors import as_tensor
from .unsupported import module_getattr
from .variables import assign_sub, get_variable, get_variable_scope, variable_scope

# Each VariableScope -> the layer scopes opened in it. TF1 counts them per scope and forgets
# the counts when a named scope closes, so a reopened ``variable_scope("model", reuse=True)``
# finds ``model/dense`` again; here a reopened scope is a new VariableScope and starts afresh.
_OPENED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Layer:
    """TF1's ``tf.layers.Layer``: the first call opens variable scope ``name`` (unnamed: the
    class's name, made unique in the current scope), makes the Variables there (``build``)
    and the ops (``call``); later calls make new ops on the same Variables.

    >>> import xpnn.compat.v1 as tf
    >>> tf.reset_default_graph()
    >>> head = tf.layers.Dense(2, name="head")
    >>> a, b = head(tf.ones([1, 3])), head(tf.zeros([1, 3]))
    >>> [v.name for v in head.trainable_variables], a.name, b.name
    (['head/kernel', 'head/bias'], 'head/BiasAdd', 'head/BiasAdd_1')
    """

    base_name = "layer"

    def __init__(self, trainable=True, name=None, dtype=None, activity_regularizer=None,
                 _reuse=None, **kwargs):
        if kwargs:
            raise TypeError(f"tf.layers.{type(self).__name__}: unexpected arguments "
                            f"{sorted(kwargs)}")
        self.trainable, self.name, self.dtype = bool(trainable), name, dtype
        self.activity_regularizer, self._reuse = activity_regularizer, _reuse
        self.scope, self.built, self.variables, self.updates = None, False, [], []

    def __call__(self, inputs, *args, **kwargs):
        inputs = as_tensor(inputs)
        if self.built:  # the same Variables; the ops in this layer's name scope again
            with name_scope(self.scope.original_name_scope):
                return self._output(inputs, args, kwargs)
        with variable_scope(self._scope_name(), reuse=self._reuse or None) as scope:
            self.scope = scope
            if self.dtype is None:
                dtype = as_dtype(inputs.dtype or float32)
                self.dtype = dtype if dtype.is_floating else float32
            self.build(TensorShape(inputs.shape))
            self.built = True
            return self._output(inputs, args, kwargs)

    apply = __call__

    def _scope_name(self) -> str:
        opened = _OPENED.setdefault(get_variable_scope(), set())
        name = self.name or self.base_name
        if not self.name and not self._reuse:  # TF1: reuse finds the layer by its plain name
            k = 0
            while name in opened:
                k += 1
                name = f"{self.base_name}_{k}"
        opened.add(name)
        self.name = name
        return name

    def _output(self, inputs, args, kwargs):
        outputs = self.call(inputs, *args, **kwargs)
        if self.activity_regularizer is not None:
            with name_scope("ActivityRegularizer"):
                loss = as_tensor(self.activity_regularizer(outputs))
                # Keras's: the regularizer's value per example of the batch
                batch = ops.cast(array_ops.shape(outputs)[0], loss.dtype)
                add_to_collection(GraphKeys.REGULARIZATION_LOSSES,
                                  ops.divide(loss, batch, name="truediv"))
        return outputs

    def build(self, input_shape) -> None:
        """Make the Variables for inputs of ``input_shape`` (a TensorShape; none here)."""

    def call(self, inputs):
        return inputs

    def add_weight(self, name, shape, dtype=None, initializer=None, regularizer=None,
                   trainable=True, constraint=None):
        """``get_variable(name, ...)`` in the layer's scope, kept in ``variables``."""
        _no_constraints(type(self).__name__, constraint)
        variable = get_variable(name, shape, dtype or self.dtype, initializer, regularizer,
                                trainable=self.trainable and bool(trainable))
        self.variables.append(variable)
        return variable

    add_variable = add_weight

    @property
    def weights(self) -> list:
        return list(self.variables)

    @property
    def trainable_variables(self) -> list:
        return [v for v in self.variables if v.trainable]

    @property
    def non_trainable_variables(self) -> list:
        return [v for v in self.variables if not v.trainable]

    trainable_weights = trainable_variables
    non_trainable_weights = non_trainable_variables


def _no_constraints(what, *constraints):
    if any(c is not None for c in constraints):
        raise NotImplementedError(f"tf.layers.{what}: constraints are not in xpnn.compat.v1; "
                                  "after each training step run tf.assign(var, constraint(var))")


def _pair(value, what) -> tuple[int, int]:
    items = (value, value) if isinstance(value, int) else tuple(value)
    if len(items) != 2:
        raise ValueError(f"tf.layers: {what} must be an int or a pair, got {value!r}")
    return tuple(operator.index(i) for i in items)


def _padding(padding) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f'The `padding` argument must be one of "valid", "same". Received: '
                         f"{padding!r}")
    return padding.upper()


def _data_format(data_format) -> str:
    formats = {"channels_last": "NHWC", "channels_first": "NCHW"}
    if data_format not in formats:
        raise ValueError(f"The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: {data_format!r}")
    return formats[data_format]


def _known(input_shape, axis, what):
    """The size of the inputs' axis ``axis``, which must be known when the layer is built."""
    if not -len(input_shape) <= axis < len(input_shape) or input_shape[axis] is None:
        shape = tuple(input_shape) if input_shape.known else None
        raise ValueError(f"tf.layers.{what}: the inputs' axis {axis} must be known, got "
                         f"inputs of shape {shape}")
    return int(input_shape[axis])


class _Weighted(Layer):
    """A kernel, a bias and an activation: Dense's and Conv2D's shared arguments."""

    def __init__(self, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 trainable=True, name=None, **kwargs):
        super().__init__(trainable, name, activity_regularizer=activity_regularizer, **kwargs)
        _no_constraints(type(self).__name__, kernel_constraint, bias_constraint)
        self.activation, self.use_bias = activation, bool(use_bias)
        self.kernel_initializer = kernel_initializer  # None: get_variable's (glorot_uniform)
        self.bias_initializer = bias_initializer or zeros_initializer()
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel = self.bias = None

    def _make(self, kernel_shape, units):
        self.kernel = self.add_weight("kernel", kernel_shape, initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", [units], initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer)

    def _finish(self, outputs, data_format="NHWC"):
        if self.bias is not None:
            outputs = conv.bias_add(outputs, self.bias, data_format, name="BiasAdd")
        return outputs if self.activation is None else self.activation(outputs)


class Dense(_Weighted):
    """TF1's ``tf.layers.Dense``: ``activation(inputs @ kernel + bias)``, kernel
    (last axis of the inputs, units); on a rank > 2 input, along its last axis."""

    base_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 trainable=True, name=None, **kwargs):
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, trainable, name, **kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self._make([_known(input_shape, -1, "Dense"), self.units], self.units)

    def call(self, inputs):
        return self._finish(ops.matmul(inputs, self.kernel, name="MatMul"))


class Conv2D(_Weighted):
    """TF1's ``tf.layers.Conv2D``: ``filters`` maps of a ``kernel_size`` window, kernel
    (kh, kw, in, filters), ``padding`` "valid" or "same" (either case)."""

    base_name = "conv2d"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format="channels_last", dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer=None, bias_initializer=None,
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, trainable=True, name=None,
                 **kwargs):
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, trainable, name, **kwargs)
        self.filters, self.kernel_size = int(filters), _pair(kernel_size, "kernel_size")
        self.strides, self.dilation_rate = _pair(strides, "strides"), _pair(dilation_rate,
                                                                            "dilation_rate")
        self.padding, self.data_format = _padding(padding), _data_format(data_format)

    def build(self, input_shape):
        channels = _known(input_shape, -1 if self.data_format == "NHWC" else 1, "Conv2D")
        self._make([*self.kernel_size, channels, self.filters], self.filters)

    def call(self, inputs):
        outputs = conv.conv2d(inputs, self.kernel, self.strides, self.padding,
                              self.data_format, self.dilation_rate, name="Conv2D")
        return self._finish(outputs, self.data_format)


class MaxPooling2D(Layer):
    """TF1's ``tf.layers.MaxPooling2D``: the max of each ``pool_size`` window."""

    base_name, op, pool = "max_pooling2d", "MaxPool", staticmethod(conv.max_pool2d)

    def __init__(self, pool_size, strides, padding="valid", data_format="channels_last",
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size, self.strides = _pair(pool_size, "pool_size"), _pair(strides, "strides")
        self.padding, self.data_format = _padding(padding), _data_format(data_format)

    def call(self, inputs):
        return self.pool(inputs, self.pool_size, self.strides, self.padding, self.data_format,
                         name=self.op)


class AveragePooling2D(MaxPooling2D):
    """TF1's ``tf.layers.AveragePooling2D``: the mean of each window ("same": of its real
    entries)."""

    base_name, op, pool = "average_pooling2d", "AvgPool", staticmethod(conv.avg_pool2d)


class Flatten(Layer):
    """TF1's ``tf.layers.Flatten``: (N, ...) -> (N, the product of the rest); channels_first
    inputs are put channels-last first, as TF1 does."""

    base_name = "flatten"

    def __init__(self, data_format="channels_last", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.data_format = _data_format(data_format)

    def call(self, inputs):
        if self.data_format == "NCHW" and inputs.shape is not None and len(inputs.shape) > 2:
            rank = len(inputs.shape)
            inputs = ops.transpose(inputs, (0, *range(2, rank), 1))
        return conv.flatten(inputs, name="Reshape")


def _training(flag, what):
    if isinstance(flag, Node):
        if flag.dtype != "bool":
            raise TypeError(f"tf.layers.{what}: training must be a bool or a bool placeholder, "
                            f"got {flag.label} of dtype {flag.dtype}")
        # A scalar, as TF1's cond takes: a flag of unknown shape (tf.placeholder(tf.bool))
        # would leave the layer's output shape unknown.
        return flag if flag.shape == () else ops.reshape(flag, ())
    return bool(flag)


class Dropout(Layer):
    """TF1's ``tf.layers.Dropout``: while ``training``, each entry zeroed with probability
    ``rate`` and the rest divided by 1 - rate; the identity otherwise. The masks come from
    the Session's generator (``seed`` is not used), as ``tf.nn.dropout``'s."""

    base_name = "dropout"

    def __init__(self, rate=0.5, noise_shape=None, seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if noise_shape is not None:
            raise NotImplementedError("tf.layers.dropout(noise_shape=...): xpnn draws one mask "
                                      "entry per element")
        self.rate = rate

    def call(self, inputs, training=False):
        training, rate = _training(training, "dropout"), self.rate
        if training is False:
            return ops.identity(inputs, name="Identity")
        if isinstance(rate, Node) and training is not True:  # no dropping while not training
            rate, training = logic.where(training, rate, ops.ZerosLike(rate)), True
        return ops.dropout(inputs, rate, training, name="dropout")


class BatchNormalization(Layer):
    """TF1's ``tf.layers.BatchNormalization`` along ``axis``: while ``training``, by the
    batch's mean and variance, adding to ``tf.GraphKeys.UPDATE_OPS`` the ops that move the
    moving mean and variance towards them (``m -= (m - batch) * (1 - momentum)``); in
    inference, by the moving mean and variance."""

    base_name = "batch_normalization"

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer=None, gamma_initializer=None, moving_mean_initializer=None,
                 moving_variance_initializer=None, beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 renorm=False, renorm_clipping=None, renorm_momentum=0.99, fused=None,
                 trainable=True, virtual_batch_size=None, adjustment=None, name=None,
                 **kwargs):
        super().__init__(trainable, name, **kwargs)
        _no_constraints("BatchNormalization", beta_constraint, gamma_constraint)
        if renorm or virtual_batch_size is not None or adjustment is not None:
            raise NotImplementedError("tf.layers.batch_normalization: renorm, virtual_batch_size"
                                      " and adjustment are not in xpnn.compat.v1")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise NotImplementedError("tf.layers.batch_normalization over several axes: "
                                          "reshape them into one")
            axis = axis[0]
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale, self.fused = bool(center), bool(scale), fused
        self.initializers = [gamma_initializer or ones_initializer(),
                             beta_initializer or zeros_initializer(),
                             moving_mean_initializer or zeros_initializer(),
                             moving_variance_initializer or ones_initializer()]
        self.gamma_regularizer, self.beta_regularizer = gamma_regularizer, beta_regularizer
        self.gamma = self.beta = None

    def build(self, input_shape):
        channels = [_known(input_shape, self.axis, "batch_normalization")]
        self.axis %= len(input_shape)
        gamma, beta, mean, variance = self.initializers
        if self.scale:
            self.gamma = self.add_weight("gamma", channels, initializer=gamma,
                                         regularizer=self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight("beta", channels, initializer=beta,
                                        regularizer=self.beta_regularizer)
        self.moving_mean = self.add_weight("moving_mean", channels, initializer=mean,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", channels,
                                               initializer=variance, trainable=False)

    def call(self, inputs, training=False):
        training = _training(training, "batch_normalization")
        rank = len(inputs.shape)
        if training is False:
            mean, variance = self.moving_mean, self.moving_variance
        else:
            mean, variance = normalization.moments(
                inputs, [a for a in range(rank) if a != self.axis])
            self._add_updates(inputs, mean, variance, training)
            if training is not True:
                mean = logic.where(training, mean, self.moving_mean)
                variance = logic.where(training, variance, self.moving_variance)
        along = (-1,) + (1,) * (rank - 1 - self.axis)  # the channel axis, broadcast

        def shaped(v):
            return v if v is None or self.axis == rank - 1 else ops.reshape(v, along)

        return normalization.batch_normalization(
            inputs, shaped(mean), shaped(variance), shaped(self.beta), shaped(self.gamma),
            self.epsilon, name="batchnorm")

    def _add_updates(self, inputs, mean, variance, training):
        rank = len(inputs.shape)
        if self.fused is not False and rank in (4, 5) and self.axis in (1, rank - 1):
            variance = ops.multiply(variance, _bessel(inputs, self.moving_mean.shape[0]))
        pairs = [(self.moving_mean, mean), (self.moving_variance, variance)]
        for k, (moving, value) in enumerate(pairs):
            if training is not True:  # as TF1's cond: a run not training leaves them as they are
                value = logic.where(training, value, moving)
            delta = ops.multiply(ops.subtract(moving, value), 1.0 - self.momentum)
            update = assign_sub(moving, delta, name="AssignMovingAvg" + ("_1" if k else ""))
            add_to_collection(GraphKeys.UPDATE_OPS, update)
            self.updates.append(update)


def _bessel(inputs, channels):
    """n / (n - 1) for the n entries per channel (TF1's fused kernel: n / max(n - 1, 1))."""
    known = [d for d in inputs.shape if d is not None]
    if len(known) == len(inputs.shape):
        n = math.prod(known) / channels
        return n / max(n - 1.0, 1.0)
    n = ops.divide(ops.cast(array_ops.size(inputs), inputs.dtype), float(channels))
    return ops.divide(n, ops.maximum(ops.subtract(n, 1.0), 1.0))


# --------------------------------------------------------------------------- functions


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None,
          bias_initializer=None, kernel_regularizer=None, bias_regularizer=None,
          activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
          trainable=True, name=None, reuse=None):
    """``activation(inputs @ kernel + bias)`` (see :class:`Dense`)."""
    return Dense(units, activation, use_bias, kernel_initializer, bias_initializer,
                 kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
                 bias_constraint, trainable, name, _reuse=reuse)(inputs)


def conv2d(inputs, filters, kernel_size, strides=(1, 1), padding="valid",
           data_format="channels_last", dilation_rate=(1, 1), activation=None, use_bias=True,
           kernel_initializer=None, bias_initializer=None, kernel_regularizer=None,
           bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None, trainable=True, name=None, reuse=None):
    """A 2-D convolution layer (see :class:`Conv2D`)."""
    return Conv2D(filters, kernel_size, strides, padding, data_format, dilation_rate,
                  activation, use_bias, kernel_initializer, bias_initializer,
                  kernel_regularizer, bias_regularizer, activity_regularizer,
                  kernel_constraint, bias_constraint, trainable, name, _reuse=reuse)(inputs)


def max_pooling2d(inputs, pool_size, strides, padding="valid", data_format="channels_last",
                  name=None):
    return MaxPooling2D(pool_size, strides, padding, data_format, name)(inputs)


def average_pooling2d(inputs, pool_size, strides, padding="valid",
                      data_format="channels_last", name=None):
    return AveragePooling2D(pool_size, strides, padding, data_format, name)(inputs)


def flatten(inputs, name=None, data_format="channels_last"):
    return Flatten(data_format, name)(inputs)


def dropout(inputs, rate=0.5, noise_shape=None, seed=None, training=False, name=None):
    """``inputs`` with dropout where ``training`` (a bool or a bool placeholder; default
    False, as TF1's), the identity otherwise (see :class:`Dropout`).

    >>> import xpnn.compat.v1 as tf
    >>> tf.reset_default_graph()
    >>> training = tf.placeholder(tf.bool, [])
    >>> y = tf.layers.dropout(tf.ones([1000]), rate=0.5, training=training)
    >>> sess = tf.Session()
    >>> sorted(set(sess.run(y, {training: True}).tolist())), sess.run(y, {training: False})[:3]
    ([0.0, 2.0], array([1., 1., 1.], dtype=float32))
    """
    return Dropout(rate, noise_shape, seed, name)(inputs, training=training)


def batch_normalization(inputs, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                        beta_initializer=None, gamma_initializer=None,
                        moving_mean_initializer=None, moving_variance_initializer=None,
                        beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                        gamma_constraint=None, training=False, trainable=True, name=None,
                        reuse=None, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
                        fused=None, virtual_batch_size=None, adjustment=None):
    """Batch normalisation (see :class:`BatchNormalization`); run
    ``tf.get_collection(tf.GraphKeys.UPDATE_OPS)`` with the training step.

    >>> import xpnn.compat.v1 as tf
    >>> tf.reset_default_graph()
    >>> x = tf.constant([[1.0], [3.0]])
    >>> y = tf.layers.batch_normalization(x, momentum=0.5, epsilon=0.0, training=True)
    >>> update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    >>> sess = tf.Session(); sess.run(tf.global_variables_initializer())
    >>> sess.run([y] + update_ops)[0].ravel().tolist(), sess.run(tf.global_variables()[2])
    ([-1.0, 1.0], array([1.], dtype=float32))
    """
    layer = BatchNormalization(axis, momentum, epsilon, center, scale, beta_initializer,
                               gamma_initializer, moving_mean_initializer,
                               moving_variance_initializer, beta_regularizer,
                               gamma_regularizer, beta_constraint, gamma_constraint, renorm,
                               renorm_clipping, renorm_momentum, fused, trainable,
                               virtual_batch_size, adjustment, name, _reuse=reuse)
    return layer(inputs, training=training)


__all__ = ["Layer", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten",
           "Dropout", "BatchNormalization", "dense", "conv2d", "max_pooling2d",
           "average_pooling2d", "flatten", "dropout", "batch_normalization"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.layers")
