"""Keras's ``Dense(units, activation)``: the input size is read from the first input the
layer is called on, so a stack is written by its output sizes alone.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     model = xn.nn.Model([xn.nn.Dense(16, activation="relu"), xn.nn.Dense(3)],
...                         input_shape=(4,))
>>> [layer.weight.shape for layer in model.net.layers]
[(4, 16), (16, 3)]
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import init as initializers
from .. import ops
from ..graph import Node, Variable, get_default_graph
from .layers import _Weighted

# Keras's activation names (None and "linear": the affine output itself)
ACTIVATIONS = {None: None, "linear": None, "relu": ops.relu, "sigmoid": ops.sigmoid,
               "tanh": ops.tanh, "softmax": ops.softmax}


class Dense(_Weighted):
    """``activation(x @ W + b)`` with W of shape (input size, ``units``), made when the layer
    first sees its input (or at once when ``input_dim`` is given), as Keras's Dense.

    >>> import xpnn as xn
    >>> xn.nn.Dense(8, activation="relu", input_dim=3, seed=0).weight.shape
    (3, 8)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 input_dim=None, seed=None, dtype="float32", name=None):
        if isinstance(activation, numbers.Integral):
            raise TypeError(f"Dense({units}, {activation}) reads as (n_in, n_out), but Dense "
                            f"takes Keras's (units, activation=...): write Dense({activation}) "
                            f"(the input size comes from the input) or "
                            f"Linear({units}, {activation})")
        if activation not in ACTIVATIONS and not callable(activation):
            raise ValueError(f"Dense: activation must be a function or one of "
                             f"{sorted(k for k in ACTIVATIONS if k)} or None, got {activation!r}")
        if not isinstance(units, numbers.Integral) or units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units, self.activation, self.use_bias = int(units), activation, bool(use_bias)
        self.kernel_initializer, self.dtype, self.name = kernel_initializer, dtype, name
        self._rng = initializers.generator(seed)
        self.weight = self.bias = self.input_dim = None
        if input_dim is not None:
            self._build(int(input_dim), None)

    def _build(self, input_dim, graph):
        graph = graph or get_default_graph()
        with graph.as_default():
            self.name = self.name or graph.layer_name("dense")
            make = initializers.get(self.kernel_initializer)
            self.input_dim = input_dim
            self.weight = Variable(make((input_dim, self.units), self._rng, self.dtype),
                                   name=f"{self.name}/W")
            if self.use_bias:
                self.bias = Variable(np.zeros(self.units, dtype=self.dtype), name=f"{self.name}/b")

    def __call__(self, x: Node, training=None) -> Node:
        if self.weight is None:
            size = (getattr(x, "shape", None) or (None,))[-1]
            if size is None:
                raise ValueError(f"Dense({self.units}) cannot tell its input size from "
                                 f"{getattr(x, 'label', x)!r} (shape {getattr(x, 'shape', None)})"
                                 f": give the input a known last axis or Dense(input_dim=)")
            self._build(int(size), x.graph)
        self._check_input(x, self.input_dim, "features")
        y = ops.matmul(x, self.weight)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        act = ACTIVATIONS.get(self.activation, self.activation)
        return y if act is None else act(y)

    def parameters(self):
        return [p for p in (self.weight, self.bias) if p is not None]

    def state(self):
        return {k: v for k, v in (("W", self.weight), ("b", self.bias)) if v is not None}

    def config(self):
        if self.weight is None:
            raise ValueError(f"Dense({self.units}) is not built yet: call it on an input (or "
                             f"put it in a Model) before saving")
        if callable(self.activation):
            raise ValueError(f"layer {self.name!r}: a Dense with a function as activation "
                             f"cannot be saved; use one of {sorted(k for k in ACTIVATIONS if k)}")
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "input_dim": self.input_dim, "dtype": self.dtype, "name": self.name}

    @classmethod
    def state_shapes(cls, units, input_dim, use_bias=True, **_):
        shapes = {"W": (input_dim, units)}
        if use_bias:
            shapes["b"] = (units,)
        return shapes

    def __repr__(self) -> str:
        act = "" if self.activation is None else f", activation={self.activation!r}"
        return f"Dense({self.units}{act})"
