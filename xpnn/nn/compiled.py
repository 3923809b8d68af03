"""What ``Model.save`` stores of ``compile`` so that ``Model.load`` gives a compiled model,
as Keras's ``load_model``: the loss and metrics by name, ``from_logits``, the optimizer's
class and settings (as JSON, ``__compile__``), and its slots (momentum, Adam's moments and
powers) once a step has run (``__slot__.<parameter>.<slot>``). Only xpnn's own optimizer
classes are rebuilt (no pickle). Not stored: a loss given as a function or a node, an
optimizer of your own class or with a node as its learning rate (``load`` then gives the
model uncompiled, or compiled with its loss and a fresh ``rmsprop``), and the partial sums
of ``accumulate=k`` (a loaded model starts a new group of k runs)."""

from __future__ import annotations

import inspect
import json

import numpy as np

from .. import optimizers
from ..graph import Node
from ..host import to_numpy
from . import losses_metrics as lm

CLASSES = {cls.__name__: cls for cls, _ in optimizers.NAMES.values()}


def record(model) -> dict:
    """The ``__compile__`` and ``__slot__.*`` arrays for ``model.save``: none where it was
    not compiled, or compiled with a loss that is not a name."""
    args = getattr(model, "_compile_args", None)
    if args is None or not isinstance(args["loss"], str):
        return {}
    saved, arrays = dict(args), {}
    config = _optimizer_config(model.optimizer)
    if config is not None:
        saved["optimizer"] = config
        arrays = _slots(model)
    return {"__compile__": np.asarray(json.dumps(saved)), **arrays}


def _optimizer_config(opt):
    cls = type(opt)
    if CLASSES.get(cls.__name__) is not cls or isinstance(opt.learning_rate, Node):
        return None
    names = [p for p in inspect.signature(cls).parameters if p != "options"]
    config = {p: getattr(opt, p) for p in [*names, *optimizers._OPTIONS] if hasattr(opt, p)}
    return {"class": cls.__name__, "config": config}


def _step(model):
    """The training step ``fit`` built for the model's optimizer on one process, if any."""
    return next((s for (_, comm), s in model._train_steps.items()
                 if comm is None and s.optimizer is model.optimizer), None)


def _slots(model) -> dict:
    step = _step(model)
    if step is None:
        return {}
    index = {id(p): i for i, p in enumerate(model.params)}
    get = model.session.get_value
    return {f"__slot__.{index[id(step.inputs[pair.variable])]}.{j}":
            to_numpy(get(step.inputs[s])) for pair in step.pairs for j, s in enumerate(pair.slots)}


def restore(model, arrays, path) -> None:
    """Compile ``model`` as ``arrays["__compile__"]`` says and set the optimizer's slots;
    a record that is not one raises ``ValueError`` naming the file."""
    if "__compile__" not in arrays:
        return
    try:
        saved = json.loads(str(arrays["__compile__"]))
        opt = saved.pop("optimizer", None)
        optimizer = "rmsprop" if opt is None else CLASSES[opt["class"]](**opt["config"])
        loss, metrics = saved["loss"], saved.get("metrics") or []
        if lm._ALIASES.get(loss, loss) not in lm.LOSSES or not set(metrics) <= set(lm.METRICS):
            raise ValueError(f"loss {loss!r}, metrics {metrics!r}")
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      from_logits=saved.get("from_logits"))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: __compile__ is not a compile record xpnn reads "
                         f"({type(exc).__name__}: {exc}): the file is corrupt; load it with "
                         f"a copy, or save the model again") from None
    stored = {k: v for k, v in arrays.items() if k.startswith("__slot__.")}
    if stored:
        _set_slots(model, stored, path)


def _set_slots(model, stored, path):
    step = model._train_step(model.optimizer, None)
    slots = {}
    index = {id(p): i for i, p in enumerate(model.params)}
    for pair in step.pairs:
        i = index[id(step.inputs[pair.variable])]
        slots.update({f"__slot__.{i}.{j}": step.inputs[s] for j, s in enumerate(pair.slots)})
    if set(slots) != set(stored) or any(tuple(stored[k].shape) != tuple(v.shape)
                                        for k, v in slots.items()):
        raise ValueError(f"{path}: the stored optimizer slots {sorted(stored)} do not match "
                         f"the optimizer's {sorted(slots)} (names and shapes): the file is "
                         f"corrupt; save the model again")
    for key, variable in slots.items():
        model.session.set_value(variable, stored[key])
