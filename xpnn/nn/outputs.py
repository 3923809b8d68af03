"""``compile`` for a graph ``Model`` of several outputs, as Keras's functional API: a loss
per output (one name for all, a list in the outputs' order, or a dict by output name),
``loss_weights`` (a list or a dict; ones by default), metrics for each output (a list for
all, or a dict by name). The training loss is the weighted sum of the outputs' losses;
``fit`` and ``evaluate`` report it as ``loss``, each output's as ``<name>_loss`` and its
metrics as ``<name>_<metric>``; the labels ``y`` are a list (or dict by name) of arrays."""

from __future__ import annotations

import numpy as np

from .. import ops
from . import losses_metrics as lm


def _per_output(value, names, what, default=None):
    """``value`` for each output: one for all, a list in order, or a dict by name."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile: {what} names outputs {unknown}; the outputs are {names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)) and what != "metrics":
        if len(value) != len(names):
            raise ValueError(f"compile: {what} has {len(value)} entries for {len(names)} "
                             f"outputs {names}: give one per output, or a dict by name")
        return list(value)
    return [value] * len(names)


class Outputs:
    """What ``compile`` built for several outputs (``Spec``'s interface): a labels and a
    weights placeholder per output, the weighted ``loss``, ``plain``, and the ``sums``."""

    name = "several outputs"

    def __init__(self, outputs, loss, metrics, loss_weights, from_logits):
        self.names = [o.name for o in outputs]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"Model: the outputs need distinct names (name= when made), got "
                             f"{self.names}")
        losses = _per_output(loss, self.names, "loss")
        if any(lo is None for lo in losses):
            raise ValueError(f"compile: every output needs a loss; the outputs are {self.names}")
        weights = _per_output(1.0 if loss_weights is None else loss_weights, self.names,
                              "loss_weights", 0.0)
        metrics = _per_output(metrics or [], self.names, "metrics", [])
        self.specs = [lm.build(o, lo, m, from_logits, None)
                      for o, lo, m in zip(outputs, losses, metrics)]
        if any(s.labels is None or s.weights is None for s in self.specs):
            raise ValueError("compile: with several outputs each loss must be a name or a "
                             "function loss(y_true, y_pred) (not a node)")
        self.labels = tuple(s.labels for s in self.specs)
        self.weights = tuple(s.weights for s in self.specs)
        self.loss = ops.add_n([ops.multiply(s.loss, float(w)) for s, w in zip(self.specs, weights)])
        self.plain = ops.add_n([ops.multiply(s.plain, float(w))
                                for s, w in zip(self.specs, weights)])
        self.sums = {}
        for name, spec in zip(self.names, self.specs):
            rows = ops.reduce_sum(ops.ones_like(spec.weights))
            self.sums[f"{name}_loss"] = ops.multiply(spec.loss, rows)  # the loop divides
        for name, spec in zip(self.names, self.specs):
            self.sums.update({f"{name}_{m}": node for m, node in spec.sums.items()})
        self.n_classes = None

    def targets(self, y, n):
        """Each output's labels checked by its loss: a tuple."""
        if isinstance(y, dict):
            if set(y) != set(self.names):
                raise ValueError(f"y must give each output's labels by name, {self.names}, "
                                 f"got {sorted(y)}")
            y = [y[name] for name in self.names]
        if not isinstance(y, (list, tuple)) or len(y) != len(self.names):
            raise ValueError(f"this model has {len(self.names)} outputs {self.names}: pass y as "
                             f"a list of {len(self.names)} label arrays or a dict by name, got "
                             f"{type(y).__name__}")
        return tuple(spec.targets(np.asarray(t) if isinstance(t, list) else t, n)
                     for spec, t in zip(self.specs, y))
