"""Saving and loading ``NNClassifier``: the weights, and the model's layer stack as data,
as Keras's ``get_config``: each layer's class and the constructor settings that rebuild it
(``layer.config()``), as JSON. ``NNClassifier.save`` writes it beside the weights;
``NNClassifier.load`` checks it, and checks it against the stored weights, before it
builds anything. No pickle: classes come from a fixed registry of xpnn's own layers, so
loading never runs code named by the file.

>>> import numpy as np, xpnn as xn
>>> from xpnn.nn import saving
>>> members = saving.describe([xn.nn.Linear(4, 3), xn.nn.ReLU()], (4,), "float32")
>>> members["__layers__"][:51]
'[{"class": "Linear", "module": "xpnn.nn", "config":'
>>> stack = saving.read({k: np.asarray(v) for k, v in members.items()}, "m.npz")
>>> stack.state_shapes()
{'layers.0.W': (4, 3), 'layers.0.b': (3,)}
>>> stack.build()
[Linear(4, 3), ReLU()]
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import operator
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io
from ..devices import resolve
from ..graph import Graph
from ..host import to_numpy
from .attention import FEED_FORWARD, LayerNorm, MultiHeadAttention, TransformerBlock
from .augmentation import FILL_MODES, INTERPOLATIONS, RandomTranslation
from .dense import ACTIVATIONS as DENSE_ACTIVATIONS
from .dense import Dense
from .embedding import Embedding, PositionalEncoding, PositionEmbedding
from .layers import (
    ACTIVATIONS,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dropout,
    Flatten,
    Linear,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .recurrent import LOOPS, RECURRENT, Bidirectional

# class name -> layer class: the only classes load builds (a user's own layers it does not)
LAYERS: dict[str, type] = {cls.__name__: cls for cls in (
    Linear, Dense, ReLU, Sigmoid, Tanh, Softmax, Conv2D, MaxPool2D, AvgPool2D, Flatten, BatchNorm,
    Dropout, Embedding, PositionalEncoding, PositionEmbedding, LayerNorm, MultiHeadAttention,
    TransformerBlock, *RECURRENT.values(), Bidirectional, RandomTranslation)}
# The module a file names for these layers: their public home (files written before the
# nn package split name it too).
MODULE = "xpnn.nn"
FLOATS = ("float16", "float32", "float64")
INPUT_DTYPES = (*FLOATS, "int32", "int64")  # a model's input: token ids too (Embedding)
MAX_COUNT = 2**31 - 1  # a layer size (the stored weights bound the real ones)
MAX_SAMPLE = 2**31  # elements in one sample
MAX_LAYERS = 10_000


def numbered(states) -> dict:
    """``{"layers.<i>.<name>": value}`` from each layer's state dict, numbering only the
    layers that hold state (a checkpoint's names, the same for a model and its record)."""
    stateful = [state for state in states if state]
    return {f"layers.{i}.{k}": v for i, state in enumerate(stateful) for k, v in state.items()}


def describe(layers, input_shape, dtype) -> dict:
    """The members that record a model: ``__layers__`` (JSON: per layer its class, module
    and config), ``__input_shape__`` and ``__dtype__``. A layer that is not one of xpnn's
    (a user's own) is written by name and module only: :func:`read` then says to rebuild
    the model and load its weights."""
    records = []
    for layer in layers:
        cls = type(layer)
        record = {"class": cls.__name__, "module": cls.__module__}
        if LAYERS.get(cls.__name__) is cls:
            record["module"], record["config"] = MODULE, layer.config()
        records.append(record)
    return {"__layers__": json.dumps(records, default=_plain),
            "__input_shape__": [int(d) for d in input_shape], "__dtype__": str(dtype)}


def _plain(value):
    """JSON for the NumPy numbers a user may pass a layer (``Conv2D(1, np.int64(8), 3)``)."""
    try:
        return operator.index(value)
    except TypeError:
        if isinstance(value, numbers.Real):
            return float(value)
    raise TypeError(f"a layer setting {value!r} ({type(value).__name__}) is not JSON data")


@dataclass
class Stack:
    """A checked record: ``specs`` (layer class, config) in order, the sample's shape and
    the model's dtype."""

    specs: list
    input_shape: tuple
    dtype: str
    where: str

    def state_shapes(self) -> dict:
        """The stored weights' names and the shapes these layers give them."""
        return numbered(cls.state_shapes(**config) for cls, config in self.specs)

    def check_weights(self, arrays) -> None:
        """Raise unless ``arrays`` holds exactly these layers' state, each of its shape and
        its layer's dtype; nothing has been built yet."""
        where = f"load({self.where})"
        try:
            io.check_shapes(self.state_shapes(), arrays, where)
        except ValueError as exc:
            raise ValueError(f"{exc}: the file's architecture and weights disagree, so it is "
                             f"corrupt; save the model again or use another copy") from None
        dtypes = numbered({k: _dtype(cls, config) for k in cls.state_shapes(**config)}
                          for cls, config in self.specs)
        for name, dtype in dtypes.items():
            if arrays[name].dtype.name != dtype:
                raise ValueError(f"{where}: parameter {name!r} is {arrays[name].dtype} in the "
                                 f"file but its layer says {dtype}: the file is corrupt")

    def build(self) -> list:
        """The layers, in a graph of their own (the default graph is left alone)."""
        with Graph().as_default():
            return [cls(**config) for cls, config in self.specs]


def _dtype(cls, config) -> str:
    if "layer" in config:  # a wrapper (Bidirectional): its layer's
        return _dtype(RECURRENT[config["layer"]["class"]], config["layer"]["config"])
    return config.get("dtype", inspect.signature(cls).parameters["dtype"].default)


def read(arrays, where) -> Stack:
    """The record :func:`describe` wrote, from a file's arrays, checked: JSON, known
    classes, every setting's type and range (windows and pads at most the largest input
    dimension). Raises ValueError naming ``where`` and what to do."""
    input_shape = _input_shape(arrays.get("__input_shape__"), where)
    dtype = _text(arrays, "__dtype__", where)
    if dtype not in INPUT_DTYPES:
        raise _corrupt(where, f"__dtype__ must be one of {INPUT_DTYPES}, got {dtype!r}")
    try:
        layers = json.loads(_text(arrays, "__layers__", where))
    except (ValueError, RecursionError) as exc:
        raise _corrupt(where, f"__layers__ is not JSON ({exc})") from None
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise _corrupt(where, f"__layers__ must be a list of 1 to {MAX_LAYERS} layers, got "
                              f"{_short(layers)}")
    limit = max(input_shape)
    specs = [_layer(i, item, where, limit) for i, item in enumerate(layers)]
    return Stack(specs, input_shape, dtype, str(where))


def _corrupt(where, what) -> ValueError:
    return ValueError(f"{where}: {what}: the file is corrupt or not written by "
                      f"NNClassifier.save; save the model again or use another copy")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(arrays, key, where) -> str:
    value = arrays.get(key)
    if value is None or value.shape != () or value.dtype.kind != "U":
        got = "nothing" if value is None else f"{value.dtype} of shape {value.shape}"
        raise _corrupt(where, f"{key} must be text, got {got}")
    return str(value)


def _input_shape(value, where) -> tuple:
    ok = (value is not None and value.ndim == 1 and value.size >= 1
          and value.dtype.kind in "iu")
    dims = value.tolist() if ok else []
    if not ok or min(dims) < 1 or math.prod(dims) > MAX_SAMPLE:
        got = "nothing" if value is None else f"{value.dtype} {_short(value.tolist())}"
        raise _corrupt(where, f"__input_shape__ must list positive sizes of at most "
                              f"{MAX_SAMPLE} elements in all, got {got}")
    return tuple(dims)


def _layer(i, item, where, limit):
    """(class, config) of the ``i``-th record, checked."""
    if not isinstance(item, dict) or not isinstance(item.get("class"), str):
        raise _corrupt(where, f"layer {i} is {_short(item)}, not {{'class': ..., 'config': ...}}")
    name, module = item["class"], item.get("module")
    cls = LAYERS.get(name)
    if cls is None or module != MODULE:
        raise ValueError(
            f"{where}: layer {i} is {name!r} from module {module!r}, which load cannot rebuild "
            f"(it rebuilds xpnn's own layers: {', '.join(sorted(LAYERS))}): build the model "
            f"with the code that made it and call model.load_weights({str(where)!r})")
    config = item.get("config")
    if not isinstance(config, dict):
        raise _corrupt(where, f"layer {i} ({name}) has config {_short(config)}, not a dict")
    for key, value in config.items():
        problem = _setting_problem(key, value, limit)
        if problem:
            raise _corrupt(where, f"layer {i} ({name}): {key}={_short(value)} {problem}")
    try:
        inspect.signature(cls).bind(**config)
    except TypeError as exc:
        raise _corrupt(where, f"layer {i} ({name}): {exc}") from None
    return cls, config


# Each setting's check: None when ``value`` is fine, else what is wrong with it.

def _setting_problem(key, value, limit):
    """What is wrong with the setting ``key=value``, or None (its class's signature is
    checked after)."""
    check = _CHECKS.get(key)
    return "is not a setting of an xpnn layer" if check is None else check(value, limit)


def _whole(value, low, high) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _count(value, limit):
    if not _whole(value, 1, MAX_COUNT):
        return f"must be a whole number from 1 to {MAX_COUNT}"


def _window(value, limit):
    items = value if isinstance(value, list) else [value]
    if len(items) not in (1, 2, 4) or not all(_whole(v, 1, limit) for v in items):
        return (f"must be a whole number from 1 to {limit} (the largest input dimension) or "
                f"a list of 2 (or TF1's 4) of them")


def _kernel(value, limit):
    items = value if isinstance(value, list) else [value, value]
    if len(items) != 2 or not all(_whole(v, 1, limit) for v in items):
        return (f"must be a whole number from 1 to {limit} (the largest input dimension) or "
                f"a list of 2 of them")


def _padding(value, limit):
    if isinstance(value, str):
        ok = value.upper() in ("SAME", "VALID")
    else:
        ok = isinstance(value, list) and len(value) in (2, 4) and all(
            isinstance(row, list) and len(row) == 2 and all(_whole(v, 0, limit) for v in row)
            for row in value)
    if not ok:
        return f"must be 'SAME', 'VALID' or pairs of pads from 0 to {limit}"


def _number(low, high, closed_high):
    def check(value, limit):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            low <= value <= high if closed_high else low <= value < high)
        if not ok:
            return f"must be a number in [{low}, {high}{']' if closed_high else ')'}"
    return check


def _dtype_check(value, limit):
    if value not in FLOATS:
        return f"must be one of {FLOATS}"


def _flag(value, limit):
    if not isinstance(value, bool):
        return "must be true or false"


def _choice(options):
    def check(value, limit):
        if value not in options:
            return f"must be one of {sorted(options, key=str)}"
    return check


def _name(value, limit):
    if not isinstance(value, str):
        return "must be text"


def _flag(value, limit):
    if not isinstance(value, bool):
        return "must be true or false"


def _factor(value, limit):
    pair = value if isinstance(value, list) else [-value, value] if _whole_or_float(value) else []
    if len(pair) != 2 or not all(_whole_or_float(v) and -1 <= v <= 1 for v in pair) or (
            pair[0] > pair[1]):
        return "must be a number in [0, 1] or a list of 2 in [-1, 1], the lower first"


def _whole_or_float(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seed(value, limit):
    if value is not None and not _whole(value, -2**63, 2**64 - 1):
        return "must be null or a whole number"


def _finite(value, limit):
    if _number(-3.4e38, 3.4e38, True)(value, limit):
        return "must be a finite number"


def _wrapped(value, limit):
    """A wrapper's layer: ``{"class": a recurrent layer, "config": its settings}``."""
    name = value.get("class") if isinstance(value, dict) else None
    cls = RECURRENT.get(name) if isinstance(name, str) else None
    config = value.get("config") if cls is not None else None
    if not isinstance(config, dict):
        return f"must be {{'class': one of {sorted(RECURRENT)}, 'config': {{...}}}}"
    for key, setting in config.items():
        problem = _setting_problem(key, setting, limit)
        if problem:
            return f"has {key}={_short(setting)}, which {problem}"
    try:
        inspect.signature(cls).bind(**config)
    except TypeError as exc:
        return f"does not fit {cls.__name__} ({exc})"


_CHECKS = {
    "n_in": _count, "n_out": _count, "in_channels": _count, "filters": _count,
    "channels": _count, "kernel_size": _kernel, "pool_size": _window, "strides": _window,
    "padding": _padding, "rate": _number(0.0, 1.0, False), "momentum": _number(0.0, 1.0, False),
    "epsilon": _number(0.0, 1e3, True), "dtype": _dtype_check, "name": _name,
    # the sequence layers' (attention.py, embedding.py, recurrent.py)
    "vocab_size": _count, "dim": _count, "num_heads": _count, "ff_dim": _count,
    "max_len": _count, "eps": _number(0.0, 1e3, True), "dropout": _number(0.0, 1.0, False),
    "causal": _flag, "norm_first": _flag,
    "activation": _choice({*FEED_FORWARD, *DENSE_ACTIVATIONS}),  # each class checks its own
    "units": _count, "return_sequences": _flag, "return_state": _flag, "layer": _wrapped,
    "loop": _choice(LOOPS), "use_bias": _flag, "input_dim": _count,  # Dense's
    # RandomTranslation's
    "height_factor": _factor, "width_factor": _factor, "fill_mode": _choice(FILL_MODES),
    "interpolation": _choice(INTERPOLATIONS), "seed": _seed, "fill_value": _finite,
}


# NNClassifier's save, load_weights and load (its methods say what each does).

def check_suffix(path, what="save") -> None:
    """Warn where ``path`` has another suffix than .npz (``model.keras``, ``model.h5``):
    say which file is written instead of adding .npz silently."""
    suffix = Path(os.fspath(path)).suffix
    if suffix and suffix.lower() != ".npz":
        warnings.warn(f"{what}({os.fspath(path)!r}) writes {io.npz_path(path)}: xpnn saves "
                      f".npz files (weights, and the architecture as JSON), not the {suffix} "
                      f"format; name it with .npz to silence this, and load it by either "
                      f"name", UserWarning, stacklevel=4)


def save_weights(model, path) -> None:
    """Write ``model``'s weights only to ``path``."""
    check_suffix(path, "save_weights")
    io.save_arrays(path, {name: to_numpy(model.session.get_value(v))
                          for name, v in model._param_names().items()})


def save(model, path, extra=None) -> None:
    """Write ``model``'s weights and its architecture to ``path`` (see NNClassifier.save),
    with the ``extra`` arrays (``__*`` names: Model.save's compile record)."""
    check_suffix(path)
    arrays = {name: to_numpy(model.session.get_value(v))
              for name, v in model._param_names().items()}
    if model.units is not None:
        arrays["__units__"] = np.asarray(model.units, dtype=np.int64)
        arrays["__activation__"] = np.asarray(model.activation)
    else:
        arrays.update(describe(model.net.layers, model.input_shape, model.dtype))
    io.save_arrays(path, {**arrays, **(extra or {})})


def load_weights(model, path) -> None:
    """Set ``model``'s weights from ``path`` (see NNClassifier.load_weights)."""
    arrays = io.load_arrays(path)
    names = model._param_names()
    from_session = not set(names) & set(arrays)
    if from_session:  # Variables under their own names, or a twin's (see _by_layer_order)
        names = _by_layer_order(names.values(), arrays, f"load_weights({path})")
    io.check_shapes({n: v.shape for n, v in names.items()}, arrays, f"load_weights({path})",
                    extra_ok=from_session)
    for name, variable in names.items():
        model.session.set_value(variable, arrays[name])


def load(cls, path, device=None, backend=None, arrays=None):
    """A new ``cls`` model from ``path`` (see NNClassifier.load); ``arrays``: its
    contents, where the caller has read them."""
    arrays = io.load_arrays(path) if arrays is None else arrays
    if "__layers__" in arrays:
        return _load_stack(cls, arrays, path, device, backend)
    units, activation = _stored_architecture(arrays, path)
    shapes = {}
    for i, (n_in, n_out) in enumerate(zip(units[:-1], units[1:])):
        shapes[f"layers.{i}.W"], shapes[f"layers.{i}.b"] = (n_in, n_out), (n_out,)
    io.check_shapes(shapes, arrays, f"load({path})")
    dtype = arrays["layers.0.W"].dtype
    if dtype.kind != "f":
        raise ValueError(f"{path}: the weights are {dtype}, not floating point: the file "
                         f"was not written by NNClassifier.save")
    model = cls(units, activation, device=device, backend=backend, dtype=dtype)
    for name, variable in model._param_names().items():
        model.session.set_value(variable, arrays[name])
    return model


def _load_stack(cls, arrays, path, device, backend):
    """A stack's model from its checked record: weights checked before the layers are
    built, the device's dtypes before the Session, nothing global touched."""
    stack = read(arrays, path)
    stack.check_weights(arrays)
    device = resolve(device, backend)
    for dtype in {stack.dtype, *(arrays[name].dtype.name for name in stack.state_shapes())}:
        device.dtype(dtype)  # fails now if the backend cannot hold it (JAX without x64)
    try:
        model = cls(stack.build(), input_shape=stack.input_shape, dtype=stack.dtype,
                    device=device)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: the stored layers do not fit inputs of shape "
                         f"{stack.input_shape} ({exc}): the file is corrupt; save the "
                         f"model again or use another copy") from exc
    for name, variable in model._param_names().items():
        model.session.set_value(variable, arrays[name])
    return model


def _stored_architecture(arrays, path):
    if "__units__" not in arrays:
        raise ValueError(f"{path}: no architecture stored (neither __layers__ nor "
                         "__units__: not written by NNClassifier.save): build the model "
                         "with the same layers and call load_weights")
    units, activation = arrays["__units__"], arrays.get("__activation__")
    if units.ndim != 1 or units.size < 2 or units.dtype.kind not in "iu" or (units < 1).any():
        raise ValueError(f"{path}: __units__ must list two or more positive integer layer "
                         f"sizes, got {units.dtype} {units.tolist()}: the file is corrupt")
    if (activation is None or activation.shape != () or activation.dtype.kind != "U"
            or str(activation) not in ACTIVATIONS):
        got = "nothing" if activation is None else repr(activation.tolist())
        raise ValueError(f"{path}: __activation__ must be one of {sorted(ACTIVATIONS)}, "
                         f"got {got}: the file is corrupt")
    return units.tolist(), str(activation)


def _layer_key(prefix) -> tuple[str, int]:
    """``("linear", 2)`` for ``linear_2``: a default layer name's base and count."""
    base, _, count = prefix.rpartition("_")
    return (base, int(count)) if base and count.isdigit() else (prefix, 0)


def _by_layer_order(variables, arrays, where) -> dict:
    """``{name in the file: Variable}`` for a ``session.save`` checkpoint: by the Variables'
    own names, or else, as the same stack built again in one graph takes new default layer
    names (``linear_2`` for the file's ``linear``), by each base name's layers in the order
    they were made, where those pair one to one with the same Variables and shapes."""
    variables = list(variables)
    if all(v.name in arrays for v in variables):
        return {v.name: v for v in variables}

    def layers(names):  # {(base, count): {last name part: name}}
        found = {}
        for name in names:
            prefix, _, part = name.rpartition("/")
            found.setdefault(_layer_key(prefix), {})[part] = name
        return found

    stored = {n.rpartition("/")[0] for n in arrays if "/" in n} - set(arrays)  # not slots
    ours = layers(v.name for v in variables)
    theirs = layers(n for n in arrays if n.rpartition("/")[0] in stored)
    by_name = {v.name: v for v in variables}
    pairs = {}
    if len(theirs) == len(ours):
        for base in {base for base, _ in ours}:
            ours_b, theirs_b = ([parts for key, parts in sorted(side.items()) if key[0] == base]
                                for side in (ours, theirs))
            for our, their in zip(ours_b, theirs_b):
                if our.keys() == their.keys():
                    pairs.update({their[part]: by_name[name] for part, name in our.items()})
    if len(pairs) == len(variables) and all(
            tuple(arrays[name].shape) == tuple(v.shape) for name, v in pairs.items()):
        return pairs
    raise ValueError(
        f"{where}: the file's layers {sorted(stored)} do not pair one to one, with the same "
        f"shapes, with this model's {sorted({v.name.rpartition('/')[0] for v in variables})}"
        f" (the same stack built again in one graph takes new layer names): build the model "
        f"in a fresh graph (with xn.Graph().as_default(): ...) or give its layers the "
        f"file's names (name=...)")
