"""``tf.initializers`` and ``tf.keras.initializers``: TF1's initializer names over
``initializers``' classes, plus ``orthogonal``, ``identity`` and the LeCun/He variance
scalings. A name neither has raises TF1NameError. ``tf.keras`` holds only
``initializers`` here: its ``RandomNormal``/``RandomUniform``/``TruncatedNormal`` take
Keras's defaults (stddev 0.05, ±0.05), the others tf.initializers' own.

>>> import numpy as np
>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> q = tf.Session().run(tf.initializers.orthogonal(seed=1)([4, 3]))
>>> bool(np.allclose(q.T @ q, np.eye(3), atol=1e-6))
True
"""

from __future__ import annotations

import types

import numpy as np

from . import initializers as _init
from . import variables as _variables
from .dtypes import float32
from .unsupported import TF1NameError, module_getattr


class orthogonal_initializer(_init.RandomInitializer):  # noqa: N801 - TF1's names
    """A random orthogonal matrix (the Q of a normal matrix's QR, signs fixed by R's
    diagonal) times ``gain``: the last axis against the product of the others."""

    def __init__(self, gain=1.0, seed=None, dtype=float32):
        self.gain, self.seed, self.dtype = float(gain), seed, dtype

    def __call__(self, shape, dtype=None, partition_info=None):
        if len(shape) < 2:
            raise ValueError(f"orthogonal initializer: shape {list(shape)} has fewer than "
                             "two axes; it makes matrices (rows x columns)")
        return super().__call__(shape, dtype, partition_info)

    def sample(self, generator, shape):
        rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
        a = generator.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape)


class identity_initializer(_init.Initializer):  # noqa: N801
    """The identity matrix (ones on the diagonal of a 2-D shape) times ``gain``."""

    def __init__(self, gain=1.0, dtype=float32):
        self.gain, self.dtype = float(gain), dtype

    def draw(self, shape):
        if len(shape) != 2:
            raise ValueError(f"identity initializer: shape {list(shape)}; it makes 2-D "
                             "matrices only")
        return np.eye(*shape) * self.gain


def _scaling(scale, mode, distribution, doc):
    def make(seed=None, dtype=float32):
        return _init.variance_scaling_initializer(scale, mode, distribution, seed, dtype)

    make.__doc__ = doc
    return make


lecun_normal = _scaling(1.0, "fan_in", "truncated_normal", "Truncated normal, variance 1 / fan_in.")
lecun_uniform = _scaling(1.0, "fan_in", "uniform", "Uniform, variance 1 / fan_in.")
he_normal = _scaling(2.0, "fan_in", "truncated_normal", "Truncated normal, variance 2 / fan_in.")
he_uniform = _scaling(2.0, "fan_in", "uniform", "Uniform, variance 2 / fan_in.")

_TF1 = {
    "zeros": _init.zeros_initializer, "ones": _init.ones_initializer,
    "constant": _init.constant_initializer, "random_normal": _init.random_normal_initializer,
    "random_uniform": _init.random_uniform_initializer,
    "truncated_normal": _init.truncated_normal_initializer,
    "variance_scaling": _init.variance_scaling_initializer,
    "glorot_uniform": _init.glorot_uniform_initializer,
    "glorot_normal": _init.glorot_normal_initializer,
    "he_normal": he_normal, "he_uniform": he_uniform, "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform, "orthogonal": orthogonal_initializer,
    "identity": identity_initializer,
    "global_variables": _variables.global_variables_initializer,
    "local_variables": _variables.local_variables_initializer,
    "variables": _variables.variables_initializer,
    "tables_initializer": _variables.tables_initializer,
}


def _keras_normal(mean=0.0, stddev=0.05, seed=None, dtype=float32):
    """Normal values; Keras's default stddev 0.05."""
    return _init.random_normal_initializer(mean, stddev, seed, dtype)


def _keras_uniform(minval=-0.05, maxval=0.05, seed=None, dtype=float32):
    """Uniform values; Keras's default range ±0.05."""
    return _init.random_uniform_initializer(minval, maxval, seed, dtype)


def _keras_truncated(mean=0.0, stddev=0.05, seed=None, dtype=float32):
    """Truncated normal values; Keras's default stddev 0.05."""
    return _init.truncated_normal_initializer(mean, stddev, seed, dtype)


_KERAS_RANDOM = {"random_normal": _keras_normal, "random_uniform": _keras_uniform,
                 "truncated_normal": _keras_truncated}
_CAMEL = {"zeros": "Zeros", "ones": "Ones", "constant": "Constant",
          "random_normal": "RandomNormal", "random_uniform": "RandomUniform",
          "truncated_normal": "TruncatedNormal", "variance_scaling": "VarianceScaling",
          "glorot_uniform": "GlorotUniform", "glorot_normal": "GlorotNormal",
          "he_normal": "HeNormal", "he_uniform": "HeUniform", "lecun_normal": "LecunNormal",
          "lecun_uniform": "LecunUniform", "orthogonal": "Orthogonal", "identity": "Identity"}


def _namespace(name, names, doc):
    module = types.ModuleType(name, doc)
    module.__dict__.update(names)
    module.__all__ = sorted(names)
    module.__getattr__ = module_getattr(module, name)
    return module


initializers = _namespace("tf.initializers", _TF1, "TF1's initializers: " + ", ".join(_TF1))
_keras_names = {**{k: _TF1[k] for k in _CAMEL}, **_KERAS_RANDOM}
_keras_names.update({camel: _keras_names[k] for k, camel in _CAMEL.items()})
keras_initializers = _namespace("tf.keras.initializers", _keras_names,
                                "Keras's initializer names: " + ", ".join(_keras_names))


def _keras_getattr(name):
    if name.startswith("_"):
        raise AttributeError(f"module 'tf.keras' has no attribute {name!r}")
    raise TF1NameError(f"tf.keras.{name} is not in xpnn.compat.v1: only tf.keras.initializers "
                       "is; xpnn's models are xn.nn.Sequential and xn.nn.NNClassifier")


keras = types.ModuleType("tf.keras", "Only ``initializers``: the rest of tf.keras is not in "
                         "xpnn.compat.v1 (xpnn's models are xn.nn.Sequential).")
keras.initializers = keras_initializers
keras.__getattr__ = _keras_getattr
