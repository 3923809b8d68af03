"""Plans: what ``Session.run`` executes for one (fetches, fed placeholders) pair, compiled
once. A plan is a flat list of steps over numbered slots: a topological order pruned to what
the fetches need, with each intermediate freed after its last reader. Inputs an op reads only
for their shape get a small description instead, so the array can die early; a node read
only that way (the loss under a mean, when only the training step is fetched) is not
computed at all when its op can tell its output shape from its inputs'. On NumPy the
plan also decides, by proof, which buffers a step may overwrite and whether optimizer updates
can be applied in place (see ``fastpath``), and keeps per shape the values that depend on
shapes alone (the gradient of a mean is 1 / batch size everywhere).

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(name="x")
...     y = xn.square(x) * 2.0
...     sess = xn.Session()
...     _ = sess.run(y, {x: [3.0]})
>>> [step[-1].type for step in next(iter(sess._plans.values())).steps]
['Square', 'Multiply']
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field

import numpy as np

from . import fastpath, ops
from .autodiff import topological_order
from .graph import Constant, Node, Operation, Placeholder, Update, Variable


@dataclass
class Plan:
    """What one (fetches, fed placeholders) pair needs, in order, with slots precomputed."""

    template: list  # the value list a run starts from: constants and static shapes filled in
    variables: list  # (slot, Variable)
    feeds: list  # (slot, Placeholder, the dtype host data needs to be used as it is)
    steps: list  # (fn, gather inputs, one input?, output slot, slots to free after, ins, op)
    updates: list  # (Update op, input slots, which gradients it may overwrite, gather inputs,
    #                which gradients come from fastpath.defer_weight_gradient)
    inplace_updates: bool  # NumPy: apply the updates in place (proved safe at compile time)
    fetch_slots: list  # slot per fetch, None for an Update
    copies: set  # fetched slots holding a Variable that NumPy updates in place
    rebuild: object  # values -> the user's fetch structure
    accepted_shapes: dict = field(default_factory=dict)  # fed slot -> last shape checked


class _Meta:
    """What a shape-only input passes: shape, ndim and dtype, not the array."""

    __slots__ = ("shape", "ndim", "dtype")

    def __init__(self, array):
        self.shape, self.ndim, self.dtype = tuple(array.shape), array.ndim, array.dtype

    @classmethod
    def static(cls, shape, dtype):
        meta = cls.__new__(cls)
        meta.shape, meta.ndim, meta.dtype = tuple(shape), len(shape), dtype
        return meta


def _describe(array):
    return _Meta(array)


def _static(node) -> bool:
    return node.shape is not None and None not in node.shape and bool(node.dtype)


def _inferred_description(op, forward, dtype):
    """fn(*inputs) -> the description of op's output, from its inputs' shapes and its static
    ``dtype`` where the op can tell; otherwise the op runs, so any error is its own."""

    known = {}  # input shapes -> description: a training step asks the same every run

    def describe(*inputs):
        shapes = tuple(tuple(i.shape) for i in inputs)
        description = known.get(shapes)
        if description is None:
            shape = op.infer_shape(*shapes)
            if shape is None or None in shape or dtype is None:
                return _Meta(forward(*inputs))
            if len(known) >= _KEEP:
                known.clear()
            description = known[shapes] = _Meta.static(shape, dtype)
        return description

    return describe


_KEEP = 2  # results kept per memoized step (a last, smaller batch is a second shape)


def _memoized_by_shape(fn, described):
    """fn(*inputs) for an op whose other inputs are constants: its result depends only on
    the shapes and dtypes at positions ``described``, so it is computed once per shape and
    kept, read-only (the gradient of a mean, scaled by 1 / batch size, in every step)."""
    kept = {}

    def memoized(*inputs):
        key = tuple((tuple(inputs[k].shape), inputs[k].dtype) for k in described)
        value = kept.get(key)
        if value is None:
            if len(kept) >= _KEEP:
                kept.clear()
            value = kept[key] = fn(*inputs)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        return value

    return memoized


def _checked(fn, xp):
    """fn, failing on a result that holds NaN or infinity (``Session(check_numerics=True)``);
    the Session names the op and its inputs."""

    def checked(*inputs):
        value = fn(*inputs)
        problem = ops.nonfinite(xp, value)
        if problem is not None:
            raise FloatingPointError(f"its result has {problem} (check_numerics is on)")
        return value

    return checked


def _with_views(slots, steps) -> set:
    """``slots`` plus every value an op that may return (a view of) its input makes from
    them, in step order."""
    slots = set(slots)
    for node, ins, out, kind in steps:
        if kind == "value" and type(node) not in fastpath.FRESH and slots.intersection(ins):
            slots.add(out)
    return slots


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


def _flatten(fetches):
    """Fetches as a flat node list and a function that rebuilds the user's structure."""
    if isinstance(fetches, Node):
        return [fetches], lambda values: values[0]
    if type(fetches) is list and all(isinstance(f, Node) for f in fetches):
        return fetches, list
    if isinstance(fetches, (list, tuple)):
        parts = [_flatten(f) for f in fetches]
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
        nodes, build = _flatten([fetches[k] for k in keys])
        return nodes, lambda values: dict(zip(keys, build(values)))
    raise TypeError(
        f"cannot fetch a {type(fetches).__name__}: fetch graph nodes, or a list, tuple or dict "
        "of them"
    )


def compile_plan(session, nodes, rebuild, fed) -> Plan:
    """Order, slots, shape descriptions, buffer reuse and update strategy for one
    (fetches, fed placeholders) pair of ``session``; run by ``Session.run`` on first use."""
    for node in nodes:
        session._check_graph(node, "Session.run")
    # Visit an update's gradients last-first: backprop then runs layer by layer from the
    # output, each activation dies as soon as its gradient is made, and the first layer's
    # (largest) gradient is the newest in cache when the update reads it.
    roots = []
    for node in nodes:
        if isinstance(node, Update):
            roots.extend(reversed(node.inputs))
        roots.append(node)
    order = topological_order(roots)
    missing = [n for n in order if isinstance(n, Placeholder) and n not in fed]
    if missing:
        names = ", ".join(repr(n.label) for n in missing)
        raise ValueError(
            f"placeholder {names} must be fed to compute "
            f"{', '.join(repr(n.label) for n in nodes)}: pass feed_dict={{{missing[0].label}"
            ": value}"
        )
    needs_meta = {op.inputs[i] for op in order if isinstance(op, Operation)
                  for i in op.shape_only}
    shape_read_only = _read_only_for_shape(order, needs_meta, nodes)
    slot, meta, producer, static = {}, {}, {}, {}
    leaves, feeds, steps, updates = [], [], [], []

    def new_slot():
        return len(slot) + len(meta)

    def input_slots(op):
        return tuple(meta[i] if k in op.shape_only else slot[i] for k, i in enumerate(op.inputs))

    def describe(node, op, ins, kind):
        """Give node a description slot: filled in the template when its shape is static,
        else by a step of ``kind`` running ``op`` (or none) on ``ins``."""
        meta[node] = new_slot()
        if _static(node):
            static[meta[node]] = _Meta.static(node.shape, session.device.dtype(node.dtype))
        else:
            steps.append([op, ins, meta[node], kind])

    for node in order:
        if node in shape_read_only:  # its description only; the value is never made
            describe(node, node, input_slots(node), "infer")
            continue
        slot[node] = new_slot()
        if isinstance(node, Update):
            updates.append((node, tuple(slot[i] for i in node.inputs)))
        elif isinstance(node, Operation):
            producer[slot[node]] = node
            steps.append([node, input_slots(node), slot[node], "value"])
        elif isinstance(node, Placeholder):
            feeds.append((slot[node], node, np.dtype(session._feed_dtype(node))))
        elif isinstance(node, (Variable, Constant)):
            leaves.append((slot[node], node))
        else:
            raise TypeError(f"cannot run {node!r}: unknown node kind")
        if node in needs_meta:
            describe(node, None, (slot[node],), "describe")

    fetch_slots = [None if isinstance(n, Update) else slot[n] for n in nodes]
    keep = {s for s in fetch_slots if s is not None}
    last_use = {}
    for index, (_, ins, _, _) in enumerate(steps):
        for s in ins:
            last_use[s] = index
    update_reads = [s for _, ins in updates for s in ins]
    for s in update_reads:
        last_use[s] = len(steps)

    fast = session.device.backend == "numpy"
    # A buffer may be overwritten only if an op made it fresh and nothing else can see it:
    # not fetched, not aliased through an op that may return (a view of) its input.
    aliased = set()
    for node, ins, _, kind in steps:
        if kind == "value" and type(node) not in fastpath.FRESH:
            aliased.update(s for k, s in enumerate(ins) if k not in node.shape_only)

    # Constant folding by shape: one of xpnn's ops (all pure: fastpath knows them) whose
    # inputs are constants or shape descriptions gives the same value for the same shapes.
    # NumPy only, where the kept value can be made read-only and a fetch of it is copied.
    constants = {s for s, leaf in leaves if isinstance(leaf, Constant)}
    described = set(meta.values())
    by_shape = {
        out: tuple(k for k, s in enumerate(ins) if s in described)
        for node, ins, out, kind in steps
        if fast and kind == "value" and ins and fastpath.has_fast_forward(type(node))
        and all(s in constants or s in described for s in ins)
    }

    def owned(s, index):
        return (fast and s in producer and type(producer[s]) in fastpath.FRESH
                and s not in aliased and s not in keep and s not in by_shape
                and last_use.get(s) == index)

    # NumPy updates Variables in place: a fetch that is (or may view) one is copied out.
    live = _with_views({s for s, leaf in leaves if isinstance(leaf, Variable)}, steps)
    # Constants and kept values are shared between runs (and read-only when kept): a fetch of
    # one, or of a view an op passed on from one, is copied for the caller.
    shared = _with_views(constants | set(by_shape), steps)
    copies = {s for s in fetch_slots if fast and (s in live or s in shared)}
    # In-place updates are safe when no gradient is (a view of) a Variable being written
    # and no Variable is written twice; otherwise the portable update computes new arrays.
    targets = [v for op, _ in updates for v in op.targets]
    twice = {v.label for v in targets if targets.count(v) > 1}
    if twice:
        raise ValueError(
            f"Variables {sorted(twice)} would be updated by two steps in one run; fetch "
            "the steps in separate runs (or build one optimizer step over all Variables)"
        )
    inplace = (fast and bool(updates) and len(set(targets)) == len(targets)
               and not session.check_numerics  # new values are checked before any is written
               and all(fastpath.has_fast_update(op) for op, _ in updates)
               and not any(s in live for op, ins in updates for s in ins[: op.n]))

    def sole_owner(s):  # the update may overwrite gradient s
        return owned(s, len(steps)) and update_reads.count(s) == 1

    # SGD or momentum on x^T g: the update itself computes it, into the weights or the
    # velocity (fastpath). x and g are then read at the update, so nothing may free or
    # overwrite them before it.
    folded, pending_operands = {}, set()
    inputs_of = {out: ins for _, ins, out, kind in steps if kind == "value"}
    read_by_steps = {s for _, ins, _, _ in steps for s in ins}
    for op, ins in updates:
        for s in ins[: getattr(op, "n", 0)] if inplace else ():
            maker = producer.get(s)
            fold = (sole_owner(s) and s not in read_by_steps
                    and not live.intersection(inputs_of[s])
                    and fastpath.defer_weight_gradient(
                        op, maker, functools.partial(maker.forward, session.xp)))
            if fold:
                folded[s] = fold
                pending_operands.update(inputs_of[s])
    for operand in pending_operands:
        last_use[operand] = len(steps)
    update_plan = []
    for op, ins in updates:
        grads = ins[: getattr(op, "n", 0)]
        grads_owned = tuple(sole_owner(s) and s not in pending_operands for s in grads)
        gather = operator.itemgetter(*ins) if len(ins) > 1 else lambda v, s=ins[0]: (v[s],)
        update_plan.append((op, ins, grads_owned, gather, tuple(s in folded for s in grads)))

    frees = {}
    loaded = {s for s, _ in leaves} | {f[0] for f in feeds} | set(static)
    for s, index in last_use.items():
        if s not in keep and s not in loaded and index < len(steps):
            frees.setdefault(index, []).append(s)

    compiled = []
    for index, (node, ins, out, kind) in enumerate(steps):
        if kind == "describe":
            fn = _describe
        elif kind == "infer":
            dtype = session.device.dtype(node.dtype) if node.dtype else None
            fn = _inferred_description(node, functools.partial(node.forward, session.xp), dtype)
        elif out in folded:
            fn = folded[out]
        else:
            fn = functools.partial(node.forward, session.xp)
            if fast:
                donate = bool(ins) and ins.count(ins[0]) == 1 and owned(ins[0], index)
                fn = fastpath.forward_fn(node, donate, fn)
            if out in by_shape:
                fn = _memoized_by_shape(fn, by_shape[out])
            if session.check_numerics:
                fn = _checked(fn, session.xp)
        # itemgetter gathers the inputs in C; with one index it returns the bare value.
        compiled.append((fn, operator.itemgetter(*ins), len(ins) == 1, out,
                         tuple(frees.get(index, ())), ins, node))
    # Constants and static shape descriptions never change: they live in the template
    # every run's value list starts from; only Variables are looked up per run.
    template = [None] * new_slot()
    for s, leaf in leaves:
        if isinstance(leaf, Constant):
            template[s] = session._leaf_value(leaf)
    for s, description in static.items():
        template[s] = description
    variables = [(s, leaf) for s, leaf in leaves if isinstance(leaf, Variable)]
    return Plan(template, variables, feeds, compiled, update_plan, inplace, fetch_slots,
                copies, rebuild)
