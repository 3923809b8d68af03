"""TF1's names for the slots xpnn's optimizers keep (``Optimizer.get_slot``): each slot
Variable of an optimizer step, named ``<var>/<optimizer name>``, ``<var>/<name>_1``... in
the order TF1 makes them (``w/Adam`` for "m", ``w/Adam_1`` for "v")."""

from __future__ import annotations

from ... import optimizers as _core

# xpnn's slots of each optimizer in order -> TF1's slot name (None: not a slot in TF1,
# Adam's powers, which TF1 keeps once per graph as beta1_power and beta2_power)
SLOT_NAMES = {
    _core.MomentumOptimizer: ("momentum",),
    _core.AdamOptimizer: ("m", "v", None, None),
    _core.RMSPropOptimizer: ("rms", "momentum", "mg"),
    _core.AdagradOptimizer: ("accumulator",),
}
# The order TF1 makes them in, which numbers their Variables' names
MADE_FIRST = {"rms": 0, "mg": 1, "momentum": 2}


def named(optimizer, update):
    """Record ``update``'s slots in ``optimizer`` (a compat Optimizer) under TF1's slot
    names and rename their Variables as TF1 names them; ``update`` itself."""
    names = SLOT_NAMES.get(type(optimizer.optimizer), ())
    graph = update.graph
    for pair in update.pairs:
        variable = update.inputs[pair.variable]
        held = [(name, update.inputs[k]) for name, k in zip(names, pair.slots) if name]
        held.sort(key=lambda item: MADE_FIRST.get(item[0], 0))
        for name, slot in held:
            with graph.name_scope(None):
                slot.name = graph.unique_name(f"{variable.name}/{optimizer.get_name()}")
            optimizer._slots.setdefault(name, {})[variable] = slot
    return update
