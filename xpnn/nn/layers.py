"""Layers built on the graph: a layer turns an input node into an output node and owns
Variables; ``Sequential`` applies layers in order, ``MLP`` is Linear layers with an
activation between them.

>>> import xpnn as xn
>>> xn.nn.Sequential(xn.nn.Linear(4, 8), xn.nn.ReLU(), xn.nn.Linear(8, 3))
Sequential(Linear(4, 8), ReLU(), Linear(8, 3))
"""

from __future__ import annotations

import numpy as np

from .. import init as initializers
from .. import ops
from ..graph import Constant, Node, Update, Variable, get_default_graph
from ..normalization import batch_normalization, moments
from ..ops.conv import avg_pool2d, bias_add, conv2d, flatten, max_pool2d
from ..session import Session


class Layer:
    """Callable on a graph node. Parameters are Variables; when the layer belongs to a
    model, ``layer.W`` / ``layer.b`` read and write their values in the model's Session.
    ``training`` (a bool or a bool placeholder) switches layers such as Dropout."""

    session: Session | None = None

    def __call__(self, x: Node, training=None) -> Node:
        raise NotImplementedError

    def parameters(self) -> list[Variable]:
        return []

    def state(self) -> dict:
        """The Variables a checkpoint holds, by name (trainable or not)."""
        return {}

    def updates(self) -> list:
        """Update nodes to run with a training step (BatchNorm's moving statistics)."""
        return []

    def config(self) -> dict:
        """The constructor's settings that rebuild this layer (JSON data), as Keras's
        ``get_config``; ``NNClassifier.save`` stores them.

        >>> import xpnn as xn
        >>> xn.nn.MaxPool2D(2).config()
        {'pool_size': 2, 'strides': 2, 'padding': 'VALID'}
        """
        return {}

    @classmethod
    def state_shapes(cls, **config) -> dict:
        """The shapes :meth:`state` has for a layer built with ``config``, known before it
        is built (``NNClassifier.load`` checks a file's weights against them).

        >>> import xpnn as xn
        >>> xn.nn.Linear.state_shapes(**xn.nn.Linear(4, 2).config())
        {'W': (4, 2), 'b': (2,)}
        """
        return {}


class _Weighted(Layer):
    """A layer with a ``weight`` and a ``bias`` Variable; in a model, ``W`` and ``b`` are
    their values in the model's Session."""

    def parameters(self):
        return [self.weight, self.bias]

    def state(self):
        return {"W": self.weight, "b": self.bias}

    def _session(self) -> Session:
        if self.session is None:
            raise RuntimeError(
                "this layer is not part of a model: read its values with "
                "session.run(layer.weight) or add it to an NNClassifier"
            )
        return self.session

    def _check_input(self, x, size, what):
        """Refuse an input whose static last axis is known and is not ``size``, naming
        the layer (the graph op's own message would name only a MatMul or Conv2D node)."""
        shape = getattr(x, "shape", None)
        if shape and shape[-1] is not None and shape[-1] != size:
            raise ValueError(f"layer {self.name!r} ({self!r}) takes inputs with {size} {what} "
                             f"in the last axis, got an input of shape {tuple(shape)}: build "
                             f"the layer for {shape[-1]} {what} or fix the layer before it")

    W = property(lambda self: self._session().get_value(self.weight),
                 lambda self, value: self._session().set_value(self.weight, value),
                 doc="The weights' value in the model's Session (an array of its device).")
    b = property(lambda self: self._session().get_value(self.bias),
                 lambda self, value: self._session().set_value(self.bias, value),
                 doc="The bias's value in the model's Session.")


class Linear(_Weighted):
    """y = x @ W + b with W of shape (n_in, n_out): rows are samples.

    >>> import xpnn as xn
    >>> layer = xn.nn.Linear(3, 2, seed=0)
    >>> layer.weight.shape, layer.bias.shape
    ((3, 2), (2,))
    """

    def __init__(self, n_in, n_out, init="he_normal", seed=None, dtype="float32", name=None):
        rng = initializers.generator(seed)
        make = initializers.get(init)
        name = name or get_default_graph().layer_name("linear")
        self.n_in, self.n_out, self.name = int(n_in), int(n_out), name
        self.weight = Variable(make((self.n_in, self.n_out), rng, dtype), name=f"{name}/W")
        self.bias = Variable(np.zeros(self.n_out, dtype=dtype), name=f"{name}/b")
        self.dW = self.db = None

    def __call__(self, x: Node, training=None) -> Node:
        self._check_input(x, self.n_in, "features (n_in)")
        return ops.add(ops.matmul(x, self.weight), self.bias)

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "dtype": self.weight.dtype,
                "name": self.name}

    @classmethod
    def state_shapes(cls, n_in, n_out, **_):
        return {"W": (n_in, n_out), "b": (n_out,)}

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out})"


class _Activation(Layer):
    op = None

    def __call__(self, x, training=None):
        return type(self).op(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    op = staticmethod(ops.relu)


class Sigmoid(_Activation):
    op = staticmethod(ops.sigmoid)


class Tanh(_Activation):
    op = staticmethod(ops.tanh)


class Softmax(_Activation):
    op = staticmethod(ops.softmax)


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class Conv2D(_Weighted):
    """conv2d with HWIO filters of shape (kernel, kernel, in_channels, filters), then the
    bias: NHWC in, NHWC out (TF1's layout). He-initialised from the host RNG.

    >>> import xpnn as xn
    >>> conv = xn.nn.Conv2D(1, 8, 3, padding="SAME", seed=0)
    >>> conv.weight.shape, conv.bias.shape
    ((3, 3, 1, 8), (8,))
    """

    def __init__(self, in_channels, filters, kernel_size, strides=1, padding="VALID",
                 init="he_normal", seed=None, dtype="float32", name=None):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        name = name or get_default_graph().layer_name("conv")
        self.strides, self.padding, self.name = strides, padding, name
        shape = (int(kh), int(kw), int(in_channels), int(filters))
        rng = initializers.generator(seed)
        self.weight = Variable(initializers.get(init)(shape, rng, dtype), name=f"{name}/W")
        self.bias = Variable(np.zeros(shape[-1], dtype=dtype), name=f"{name}/b")

    def __call__(self, x, training=None):
        self._check_input(x, self.weight.shape[2], "channels (in_channels)")
        y = conv2d(x, self.weight, strides=self.strides, padding=self.padding)
        return bias_add(y, self.bias)

    def config(self):
        kh, kw, c, f = self.weight.shape
        return {"in_channels": c, "filters": f, "kernel_size": [kh, kw],
                "strides": self.strides, "padding": self.padding, "dtype": self.weight.dtype,
                "name": self.name}

    @classmethod
    def state_shapes(cls, in_channels, filters, kernel_size, **_):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        return {"W": (kh, kw, in_channels, filters), "b": (filters,)}

    def __repr__(self) -> str:
        kh, kw, c, f = self.weight.shape
        return f"Conv2D({c}, {f}, ({kh}, {kw}), padding={self.padding!r})"


class MaxPool2D(Layer):
    """max_pool2d over ``pool_size`` windows (strides default to the window)."""

    op = staticmethod(max_pool2d)

    def __init__(self, pool_size=2, strides=None, padding="VALID"):
        self.pool_size, self.padding = pool_size, padding
        self.strides = pool_size if strides is None else strides

    def __call__(self, x, training=None):
        return type(self).op(x, self.pool_size, self.strides, self.padding)

    def config(self):
        return {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pool_size})"


class AvgPool2D(MaxPool2D):
    """avg_pool2d over ``pool_size`` windows (strides default to the window)."""

    op = staticmethod(avg_pool2d)


class Flatten(Layer):
    """(N, ...) -> (N, everything else)."""

    def __call__(self, x, training=None):
        return flatten(x)

    def __repr__(self) -> str:
        return "Flatten()"


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last (channels, NHWC), as Keras's
    BatchNormalization: while training, the batch's moments, and the moving mean and
    variance move towards them (``m <- momentum m + (1 - momentum) batch``, run with the
    training step); in inference, the moving statistics.

    >>> import xpnn as xn
    >>> bn = xn.nn.BatchNorm(3)
    >>> sorted(bn.state())
    ['beta', 'gamma', 'moving_mean', 'moving_variance']
    """

    def __init__(self, channels, momentum=0.99, epsilon=1e-3, dtype="float32",
                 name=None):
        if not 0.0 <= momentum < 1.0 or not epsilon >= 0:
            raise ValueError(f"BatchNorm: momentum must lie in [0, 1) and epsilon be >= 0, "
                             f"got {momentum} and {epsilon}")
        name = name or get_default_graph().layer_name("batch_norm")
        self.momentum, self.epsilon, self.name = float(momentum), float(epsilon), name
        n = int(channels)
        self.gamma = Variable(np.ones(n, dtype), name=f"{name}/gamma")
        self.beta = Variable(np.zeros(n, dtype), name=f"{name}/beta")
        self.moving_mean = Variable(np.zeros(n, dtype), name=f"{name}/moving_mean",
                                    trainable=False)
        self.moving_variance = Variable(np.ones(n, dtype), name=f"{name}/moving_variance",
                                        trainable=False)
        self._updates = []

    def __call__(self, x, training=None):
        if x.shape is None:
            raise ValueError(f"BatchNorm needs an input of known rank, got {x.label}")
        training = True if training is None else training
        mean, variance = self.moments(x)
        if training is not True:  # a placeholder (or False): blend by the flag
            on = ops.equal(training, True)
            off = ops.subtract(1.0, on)
            mean = ops.add(ops.multiply(on, mean), ops.multiply(off, self.moving_mean))
            variance = ops.add(ops.multiply(on, variance),
                               ops.multiply(off, self.moving_variance))
        if training is not False:
            self._updates.append(_MovingAverages(self, mean, variance, training))
        return batch_normalization(x, mean, variance, self.beta, self.gamma, self.epsilon)

    def moments(self, x):
        """The batch's (mean, variance) per channel (``SyncBatchNorm``: over every rank's)."""
        return moments(x, axes=list(range(len(x.shape) - 1)))

    def parameters(self):
        return [self.gamma, self.beta]

    def state(self):
        return {"gamma": self.gamma, "beta": self.beta, "moving_mean": self.moving_mean,
                "moving_variance": self.moving_variance}

    def updates(self):
        return list(self._updates)

    def config(self):
        return {"channels": self.gamma.shape[0], "momentum": self.momentum,
                "epsilon": self.epsilon, "dtype": self.gamma.dtype, "name": self.name}

    @classmethod
    def state_shapes(cls, channels, **_):
        return dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), (channels,))

    def __repr__(self) -> str:
        return f"BatchNorm({self.gamma.shape[0]})"


class _MovingAverages(Update):
    """BatchNorm's moving mean and variance moved towards the batch's (where training)."""

    def __init__(self, layer, mean, variance, training):
        self.momentum = layer.momentum
        flag = training if isinstance(training, Node) else Constant(bool(training))
        super().__init__([layer.moving_mean, layer.moving_variance], mean, variance,
                         layer.moving_mean, layer.moving_variance, flag)

    def forward(self, xp, mean, variance, moving_mean, moving_variance, training):
        m = self.momentum
        new = [m * moving_mean + (1.0 - m) * mean, m * moving_variance + (1.0 - m) * variance]
        return [xp.where(training, n, old) for n, old in zip(new, (moving_mean, moving_variance))]


class Dropout(Layer):
    """dropout with ``rate`` while ``training`` (the model's flag), the identity otherwise."""

    def __init__(self, rate):
        self.rate = float(rate)

    def __call__(self, x, training=None):
        return ops.dropout(x, self.rate, True if training is None else training)

    def config(self):
        return {"rate": self.rate}

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"



class Sequential(Layer):
    """Layers applied in order."""

    def __init__(self, *layers):
        self.layers = list(layers[0] if len(layers) == 1 and isinstance(layers[0], list)
                           else layers)

    def __call__(self, x, training=None):
        for layer in self.layers:
            x = layer(x, training)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def updates(self):
        return [u for layer in self.layers for u in layer.updates()]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.layers))})"


class MLP(Sequential):
    """Linear layers of sizes ``units`` with an activation between them; the output is the
    last layer's logits (no activation).

    >>> import xpnn as xn
    >>> xn.nn.MLP([4, 8, 3])
    MLP(Linear(4, 8), ReLU(), Linear(8, 3))
    """

    def __init__(self, units, activation="relu", seed=None, dtype="float32", init="he_normal"):
        if len(units) < 2:
            raise ValueError(f"units needs an input and an output size, got {units}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        rng = initializers.generator(seed)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(units[:-1], units[1:])):
            layers.append(Linear(n_in, n_out, init=init, seed=rng, dtype=dtype, name=f"layers.{i}"))
            if i < len(units) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(layers)
