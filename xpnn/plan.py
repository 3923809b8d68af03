"""Plans: what ``Session.run`` executes for one (fetches, fed placeholders) pair, compiled
once. A plan is a flat list of steps over numbered slots: a topological order pruned to what
the fetches need, with each intermediate freed after its last reader. Inputs an op reads only
for their shape get a small description instead, so the array can die early; a node read
only that way (the loss under a mean, when only the training step is fetched) is not
computed at all when its op can tell its output shape from its inputs'.

This is the portable compiler. The device then compiles the plan into an executor
(``Device.compile``, ``executor.py``), which holds what it makes of it: the NumPy device's
passes in ``devices/numpy/`` swap in kernels that reuse buffers, fold values that depend on
shapes alone, and apply optimizer updates in place at its commit; the JAX device's
(``devices/jax/``) runs the whole plan, updates included, as one ``jax.jit`` call. The plan
itself keeps no device state (only its steps' functions are a device's to swap).

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(name="x")
...     y = xn.square(x) * 2.0
...     sess = xn.Session()
...     _ = sess.run(y, {x: [3.0]})
>>> [step.op.type for step in next(iter(sess._plans.values())).steps]
['Square', 'Multiply']
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .autodiff import topological_order
from .graph import DEFAULT_FLOAT, Constant, NewValue, Node, Operation, Placeholder, Update, Variable
from .optimizers import Pair


@dataclass(eq=False)
class Step:
    """``values[out] = fn(*values[i] for i in inputs)``. ``kind`` is "value" (the op's
    result), "describe" (the shape of ``inputs[0]``'s value) or "infer" (the op's output
    shape, told from its inputs' without running it)."""

    op: Operation
    inputs: tuple[int, ...]
    out: int
    kind: str = "value"
    fn: Callable | None = None


@dataclass(eq=False)
class UpdateStep:
    """An Update op, run by the Session's commit after every step has succeeded."""

    op: Update
    inputs: tuple[int, ...]
    check_shapes: bool = True  # False when the static shapes already prove them right

    def gather(self, values) -> list:
        return [values[s] for s in self.inputs]

    def groups(self) -> list[Pair]:
        """Each Variable's ``Pair`` of an optimizer's update (``ApplyGradients.pairs``) with
        the plan's slots in place of the op's input positions: what a device's in-place
        update writes and reads."""
        inputs = self.inputs
        return [Pair(inputs[pair.gradient], inputs[pair.variable],
                     tuple(inputs[k] for k in pair.slots)) for pair in self.op.pairs]


@dataclass(eq=False)
class Feed:
    slot: int
    placeholder: Placeholder  # or an op, in a loop body's plan fed what the forward saved
    dtype: np.dtype | None  # host data of this dtype is used (NumPy) or moved as it is


@dataclass(eq=False)
class Plan:
    """What one (fetches, fed placeholders) pair needs, in order, with slots precomputed."""

    rebuild: Callable  # fetched values -> the user's fetch structure
    fetch_slots: list = field(default_factory=list)  # slot per fetch, None for an Update
    steps: list = field(default_factory=list)  # Step
    feeds: list = field(default_factory=list)  # Feed
    variables: dict = field(default_factory=dict)  # slot -> Variable
    constants: dict = field(default_factory=dict)  # slot -> Constant
    updates: list = field(default_factory=list)  # UpdateStep
    static: dict = field(default_factory=dict)  # description slot -> Description
    n_slots: int = 0
    late_reads: set = field(default_factory=set)  # slots read after the last step
    accepted_shapes: dict = field(default_factory=dict)  # fed slot -> last shape accepted
    template: list = field(default_factory=list)  # constants, static descriptions

    def with_views(self, slots, kernels=frozenset()) -> set:
        """``slots`` plus the value of every step that may return (a view of) one of them
        (not ``fresh``, with a device's fresh ``kernels``), in step order."""
        slots = set(slots)
        for step in self.steps:
            if (step.kind == "value" and not fresh(step.op, kernels)
                    and not slots.isdisjoint(step.inputs)):
                slots.add(step.out)
        return slots

    def readers(self) -> dict:
        """slot -> the steps that read it, each once, in step order."""
        readers = {}
        for step in self.steps:
            for s in set(step.inputs):
                readers.setdefault(s, []).append(step)
        return readers

    def held_slots(self) -> set:
        """Slots read after the last step: fetched, read late (``late_reads``) or read by
        an update. A pass may not hand their steps' results on in another form."""
        held = {s for s in self.fetch_slots if s is not None} | set(self.late_reads)
        return held | {s for update in self.updates for s in update.inputs}


def fresh(op, kernels=frozenset()) -> bool:
    """Whether ``op``'s result is a new array, sharing no memory with its inputs: the op
    says so of its portable forward (``Operation.fresh``), or the kernel a device runs in
    its place does (``kernels``: the op classes whose kernels make new arrays)."""
    return op.fresh or type(op) in kernels


class StepFailed(Exception):
    """A step raised ``error``; the Session turns this into an OpError naming the op."""

    def __init__(self, step, error):
        super().__init__(str(error))
        self.step, self.error = step, error


class Description:
    """What a shape-only input passes: shape, ndim and dtype, not the array."""

    __slots__ = ("shape", "ndim", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.ndim, self.dtype = tuple(shape), len(shape), dtype

    @classmethod
    def of(cls, array):
        return cls(array.shape, array.dtype)


def _static(node) -> bool:
    return node.shape is not None and None not in node.shape and bool(node.dtype)


def _inferred_description(op, forward, dtype):
    """fn(*inputs) -> the description of op's output, from its inputs' shapes and its static
    ``dtype`` where the op can tell; otherwise the op runs, so any error is its own."""
    known = {}  # input shapes -> description: a training step asks the same every run

    def describe(*inputs):
        if any(type(i) is tuple for i in inputs):  # an Output of an op of several outputs
            return Description.of(forward(*inputs))
        shapes = tuple(tuple(i.shape) for i in inputs)
        description = known.get(shapes)
        if description is None:
            shape = op.infer_shape(*shapes)
            if shape is None or None in shape or dtype is None:
                return Description.of(forward(*inputs))
            if len(known) >= 2:  # a last, smaller batch is a second shape
                known.clear()
            description = known[shapes] = Description(shape, dtype)
        return description

    return describe


def _read_only_for_shape(order, needs_meta, fetched) -> set:
    """Operations whose every reader wants only their shape (and that are not fetched):
    their values need not be computed."""
    readers = {}
    for node in order:
        if isinstance(node, Operation):
            for k, i in enumerate(node.inputs):
                readers.setdefault(i, []).append((node, k))
    fetched = set(fetched)
    return {
        node for node in needs_meta
        if isinstance(node, Operation) and not isinstance(node, Update) and node not in fetched
        and all(k in reader.shape_only and not isinstance(reader, Update)
                for reader, k in readers.get(node, ()))
    }


def flatten(fetches):
    """Fetches as a flat node list and a function that rebuilds the user's structure."""
    if isinstance(fetches, Node):
        return [fetches], lambda values: values[0]
    if type(fetches) is list and all(isinstance(f, Node) for f in fetches):
        return fetches, list
    if isinstance(fetches, (list, tuple)):
        parts = [flatten(f) for f in fetches]
        sizes = [len(p[0]) for p in parts]
        kind = type(fetches)

        def rebuild(values):
            out, start = [], 0
            for (_, build), n in zip(parts, sizes):
                out.append(build(values[start : start + n]))
                start += n
            return kind(out) if kind in (list, tuple) else kind(*out)

        return [n for p in parts for n in p[0]], rebuild
    if isinstance(fetches, dict):
        keys = list(fetches)
        nodes, build = flatten([fetches[k] for k in keys])
        return nodes, lambda values: dict(zip(keys, build(values)))
    raise TypeError(
        f"cannot fetch a {type(fetches).__name__}: fetch graph nodes, or a list, tuple or dict "
        "of them"
    )


def _order(nodes, fed) -> list:
    """The nodes the fetches need, inputs first. An update's gradients are visited
    last-first: backprop then runs layer by layer from the output, each activation dies as
    soon as its gradient is made, and the first layer's (largest) gradient is the newest in
    cache when the update reads it."""
    roots = []
    for node in nodes:
        if isinstance(node, Update):
            roots.extend(reversed(node.inputs))
        roots.append(node)
    order = topological_order(roots, stop=fed)
    missing = [n for n in order if isinstance(n, Placeholder) and n not in fed]
    if missing:
        names = ", ".join(repr(n.label) for n in missing)
        raise ValueError(
            f"placeholder {names} must be fed to compute "
            f"{', '.join(repr(n.label) for n in nodes)}: pass feed_dict={{{missing[0].label}"
            ": value}"
        )
    targets = [v for node in order if isinstance(node, Update) for v in node.targets]
    if len(set(targets)) < len(targets):
        order = _chain_updates(order)
    return order


def _chain_updates(order) -> list:
    """``order`` with its updates in commit order, where two write one Variable and the
    later reads the earlier's ``NewValue`` of it (TF1's assign under control_dependencies
    of another): the later's value is written last. Any other two writes of one Variable
    in a run are refused."""
    updates = [n for n in order if isinstance(n, Update)]
    reads = {u: {n.update for n in topological_order([u])
                 if isinstance(n, NewValue) and n.update in updates} for u in updates}
    twice = set()
    for k, u in enumerate(updates):
        for other in updates[k + 1:]:
            for v in set(u.targets) & set(other.targets):
                if u not in reads[other] and other not in reads[u]:
                    twice.add(v.label)
    if twice:
        raise ValueError(
            f"Variables {sorted(twice)} would be updated by two steps in one run; fetch "
            "the steps in separate runs (or build one optimizer step over all Variables)"
        )
    after = {u: reads[u] | {i for i in u.inputs if isinstance(i, Update)} for u in updates}
    ranked = []
    while len(ranked) < len(updates):
        left = [u for u in updates if u not in ranked]
        ranked.append(next((u for u in left if after[u] <= set(ranked)), left[0]))
    sequence = iter(ranked)
    return [next(sequence) if isinstance(n, Update) else n for n in order]


def _lay_out(order, nodes, rebuild, session, fed=()) -> Plan:
    """Slots and steps for ``order``: a value slot per node, a description slot per node
    read for its shape only (filled when compiling where the shape is static). A fed op
    (a loop body's gradient is fed what the forward saved) is a feed, not a step."""
    needs_meta = {op.inputs[i] for op in order if isinstance(op, Operation)
                  for i in op.shape_only}
    shape_read_only = _read_only_for_shape(order, needs_meta, [*nodes, *fed])
    slot, meta = {}, {}
    plan = Plan(rebuild)

    def new_slot():
        plan.n_slots += 1
        return plan.n_slots - 1

    def input_slots(op):
        return tuple(meta[i] if k in op.shape_only else slot[i] for k, i in enumerate(op.inputs))

    def describe(node, op, ins, kind):
        meta[node] = new_slot()
        if _static(node):
            plan.static[meta[node]] = Description(node.shape, session.device.dtype(node.dtype))
        else:
            plan.steps.append(Step(op, ins, meta[node], kind))

    for node in order:
        if node in shape_read_only:  # its description only; the value is never made
            describe(node, node, input_slots(node), "infer")
            continue
        slot[node] = new_slot()
        if isinstance(node, Update):
            plan.updates.append(UpdateStep(node, tuple(slot[i] for i in node.inputs),
                                           not _shapes_match(node)))
        elif isinstance(node, Operation) and node in fed:
            plan.feeds.append(Feed(slot[node], node, None))
        elif isinstance(node, Operation):
            if node.holds_dtype and node.dtype is not None:
                _held(node.dtype, session, f"{node.type} {node.label}")
            plan.steps.append(Step(node, input_slots(node), slot[node]))
        elif isinstance(node, Placeholder):
            plan.feeds.append(Feed(slot[node], node, _feed_dtype(node, session)))
        elif isinstance(node, Variable):
            plan.variables[slot[node]] = node
        elif isinstance(node, Constant):
            plan.constants[slot[node]] = node
        else:
            raise TypeError(f"cannot run {node!r}: unknown node kind")
        if node in needs_meta:
            describe(node, None, (slot[node],), "describe")
    plan.fetch_slots = [None if isinstance(n, Update) else slot[n] for n in nodes]
    return plan


def _feed_dtype(placeholder, session) -> np.dtype:
    """The dtype host data fed to ``placeholder`` runs in (such data is then passed on
    unchecked), refused here, naming it, where the device cannot hold it (int64 or float64
    on JAX without x64)."""
    dtype = placeholder.run_dtype(DEFAULT_FLOAT, session.dtype)
    _held(dtype, session, f"placeholder {placeholder.label}")
    return np.dtype(dtype)


def _held(dtype, session, who) -> None:
    """Refuse ``dtype`` where the device cannot hold it, naming ``who``."""
    try:
        session.device.dtype(dtype)
    except (RuntimeError, TypeError) as exc:
        raise type(exc)(f"{who}: {exc}") from None


def _shapes_match(update) -> bool:
    """Whether static shapes prove each gradient the shape of its Variable."""
    pairs = getattr(update, "pairs", None)
    if pairs is None:
        return False
    for pair in pairs:
        g, v = update.inputs[pair.gradient], update.inputs[pair.variable]
        if g.shape is None or None in g.shape or g.shape != v.shape:
            return False
    return True


def _bind(plan, session) -> None:
    """Each step's portable function."""
    for step in plan.steps:
        bind(step, session.device, session.draw, session)


def bind(step, device, draw, session=None) -> None:
    """Give ``step`` its portable function; a random op draws from ``draw`` (the
    Session's, or what a device's compiled program passes instead); a control-flow op
    runs its bodies in ``session``."""
    forward = functools.partial(step.op.forward, device.xp) if step.op else None
    if step.op is not None and step.op.random:
        forward = functools.partial(forward, draw=draw)
    if step.op is not None and step.op.runs_bodies:
        forward = functools.partial(forward, session=session)
    if step.kind == "describe":
        step.fn = Description.of
    elif step.kind == "infer":
        dtype = device.dtype(step.op.dtype) if step.op.dtype else None
        step.fn = _inferred_description(step.op, forward, dtype)
    else:
        step.fn = forward


def shared_fetches(plan) -> frozenset:
    """Fetched slots whose value may be a buffer the Session keeps between runs (a
    Variable's or a constant's) or a view of one. A device with mutable arrays hands these
    out as copies: writing into a fetched array then changes no later run, and no later run
    changes a fetched array. An op's result is its own buffer only where the op says so
    (``Operation.fresh``); any other result of a kept value counts as shared."""
    shared = plan.with_views(set(plan.variables) | set(plan.constants))
    return frozenset(s for s in plan.fetch_slots if s in shared)


def last_uses(plan) -> dict:
    """slot -> the index of the last step that reads it (len(steps): read at the commit)."""
    last = {}
    for index, step in enumerate(plan.steps):
        for s in step.inputs:
            last[s] = index
    for update in plan.updates:
        for s in update.inputs:
            last[s] = len(plan.steps)
    for s in plan.late_reads:
        last[s] = len(plan.steps)
    return last


def _template(plan) -> list:
    """What every run's values start from: the static descriptions (the Session adds the
    constants' values)."""
    template = [None] * plan.n_slots
    for s, description in plan.static.items():
        template[s] = description
    return template


def compile_plan(session, nodes, rebuild, fed) -> Plan:
    """The portable plan for one (fetches, fed placeholders) pair of ``session``: order,
    slots, portable step functions, the template of a run's values. Compiled once, then
    handed to the device (``Device.compile``) for its executor."""
    plan = _lay_out(_order(nodes, fed), nodes, rebuild, session, fed)
    _bind(plan, session)
    plan.template = _template(plan)
    return plan
