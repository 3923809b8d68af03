"""``compare_backends``: run one graph on several devices (or with and without a device's
passes), node by node, and name the first node whose value differs.

Every node's value comes from one ordinary run that fetches them all: the Session, its
plan and the device's passes are the ones a user runs, nothing is hooked into the hot path.
Holding every value keeps the passes from fusing or overwriting intermediates, so the
fetches are then also run alone (the plan a training step runs), and a difference that
shows only there is reported at the fetch.

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(shape=(None, 3), name="x")
...     w = xn.Variable(np.ones((3, 2), np.float32), name="w")
...     loss = xn.reduce_mean(xn.square(xn.relu(x @ w)))
...     report = xn.debug.compare_backends(loss, {x: np.ones((4, 3), np.float32)},
...                                        devices=["cpu", "device1"])
>>> report.ok, report.first is None, report.compared, report.backward
(True, True, 9, 5)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from array_api_compat import is_array_api_obj

from ..autodiff import gradients as _gradients
from ..autodiff import topological_order
from ..devices import COMPARED, Device, named
from ..dtypes import dtype_name
from ..graph import Node, Operation, Placeholder, Update, Variable
from ..host import to_numpy
from ..ops.outputs import MultiOutput
from ..session import Session

# dtype -> (rtol, atol): entries agree where |value - reference| <= atol * m + rtol *
# |reference|, m the node's largest magnitude (so atol is relative too: a sum's rounding
# scales with its terms, not with one small result). Integers and bools must be equal.
TOLERANCES = {"float64": (1e-10, 1e-10), "float32": (1e-5, 1e-5),
              "float16": (1e-2, 1e-2), "bfloat16": (5e-2, 5e-2)}
WORST = 3  # entries shown per disagreement


@dataclass
class Entry:
    """One of a node's worst entries: its index, each device's value, and the largest
    absolute and relative difference from the reference."""

    index: tuple
    values: dict  # device -> value
    abs_diff: float
    rel_diff: float


@dataclass
class Disagreement:
    """The node where the devices first differ, and what differs."""

    node: Node
    name: str
    op_type: str
    backward: bool  # a node of the gradients' graph
    gradient_of: str | None  # the forward node whose gradient it computes
    inputs: list  # (name, shape, dtype) of each input, on the first device
    devices: list  # the devices that disagree (outside the largest agreeing group)
    agree: list  # the devices of the largest agreeing group
    reason: str  # "values", "shape", "dtype"
    detail: str  # one line saying what differs
    worst: list  # Entry
    path: list  # node names from a fed placeholder (or a Variable) to this node
    tolerance: tuple  # (rtol, atol) of its dtype
    fetches_only: bool = False  # seen only in the run of the fetches alone
    majority: bool = True  # ``agree`` outnumbers every other group (else a tie: who is right?)


@dataclass
class Report:
    """What ``compare_backends`` found: ``ok`` when every compared node agrees, else
    ``first``, the first disagreeing node in execution order, and ``disagreements``,
    every one in that order."""

    devices: list
    compared: int
    backward: int  # how many of the compared nodes belong to the gradients' graph
    disagreements: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # names of nodes not compared, and why

    @property
    def ok(self) -> bool:
        return not self.disagreements

    @property
    def first(self) -> Disagreement | None:
        return self.disagreements[0] if self.disagreements else None

    def __str__(self) -> str:
        head = (f"compare_backends over {', '.join(self.devices)}: {self.compared} nodes "
                f"compared ({self.backward} of the backward pass)")
        if self.skipped:
            head += f"; {len(self.skipped)} not compared (not arrays)"
        if self.ok:
            return f"{head}: all agree within their dtype's tolerance"
        more = len(self.disagreements) - 1
        tail = f"\n  ({more} later node(s) differ too)" if more else ""
        return f"{head}: they disagree\n{_describe(self.first)}{tail}"


def _describe(d: Disagreement) -> str:
    phase = f"backward, gradient of {d.gradient_of}" if d.gradient_of else (
        "backward" if d.backward else "forward")
    lines = [f"  first differing node: {d.name} ({d.op_type}, {phase})"
             + (" in the run of the fetches alone" if d.fetches_only else ""),
             "  inputs: " + ("; ".join(f"{n} {s} {t}" for n, s, t in d.inputs) or "none"),
             f"  {', '.join(d.devices)} {'disagrees' if len(d.devices) == 1 else 'disagree'} "
             f"with {', '.join(d.agree)}"
             + ("" if d.majority else " (no majority tells which is right)") + f": {d.detail}"]
    if d.worst:
        rtol, atol = d.tolerance
        lines.append(f"  worst entries (rtol {rtol:g}, atol {atol:g} x the largest magnitude):")
        for e in d.worst:
            values = ", ".join(f"{k} {v:.9g}" for k, v in e.values.items())
            lines.append(f"    {list(e.index)}: {values}; abs diff {e.abs_diff:.3g}, "
                         f"rel diff {e.rel_diff:.3g}")
    lines.append("  path: " + " -> ".join(d.path))
    return "\n".join(lines)


def compare_backends(fetches, feed_dict=None, devices=COMPARED,
                     graph=None, session=None, passes=True, gradients=True, rtol=None,
                     atol=None) -> Report:
    """Run ``fetches`` fed ``feed_dict`` on each of ``devices`` with the same Variable
    values (``session``'s, else the first device's initial ones) and the same random draws,
    and compare every node's value in execution order: the forward nodes and, where a
    fetch is a scalar loss and ``gradients`` is on, the backward nodes of its gradients
    w.r.t. the trainable Variables (an optimizer step among the fetches is not run: its
    gradients are compared instead, and no Variable changes).

    The graph is ``graph``, else ``session``'s, else the fetches'. ``devices``: device
    strings, ``"backend:device"`` pairs or Devices
    (``xn.devices.named``); by default ``xn.devices.COMPARED``, NumPy, PyTorch and JAX on
    the CPU. ``passes``: True (each device's passes), False (its portable plan) or
    ``"both"`` (each device both ways, the portable plan first: ``devices=["cpu"],
    passes="both"`` checks the NumPy passes). Entries agree within their dtype's
    ``TOLERANCES`` (``rtol``/``atol`` replace every float dtype's; integers must be
    equal). Returns a :class:`Report`; its ``first`` is the first node that differs."""
    flat = list(_flatten(fetches))
    feed_dict = {node: _on_host(value) for node, value in (feed_dict or {}).items()}
    graph = _graph_of(flat, feed_dict, graph, session)
    columns = _columns(devices, passes)
    fetched, forward = _fetch_nodes(flat, gradients)
    nodes = _comparable(fetched, feed_dict)
    sessions = _sessions(columns, graph, session)
    try:
        everything = {name: _values(sess, nodes, feed_dict) for name, sess in sessions.items()}
        report = Report(list(sessions), 0, 0)
        _compare_all(report, nodes, everything, forward, feed_dict, (rtol, atol))
        if report.ok:  # the plan a training step runs, its intermediates free to fuse
            alone = {name: _values(sess, fetched, feed_dict) for name, sess in sessions.items()}
            for d in _compare_nodes(fetched, alone, forward, feed_dict, (rtol, atol)):
                d.fetches_only = True
                report.disagreements.append(d)
    finally:
        for sess in sessions.values():
            sess.close()
    return report


def _columns(devices, passes) -> list:
    """(name, Device, passes on) for each device, both ways where ``passes="both"``."""
    if passes not in (True, False, "both"):
        raise ValueError(f"compare_backends: passes must be True, False or 'both', got "
                         f"{passes!r}")
    if isinstance(devices, (str, Device)):
        devices = [devices]
    columns = []
    seen = set()
    for spec in devices:
        name, device = named(spec)
        if name in seen:
            raise ValueError(f"compare_backends: device {name!r} is given twice; give each "
                             f"once (passes='both' runs one both ways)")
        seen.add(name)
        if passes in (False, "both"):
            columns.append((f"{name}/portable", device, False))
        if passes in (True, "both"):
            columns.append((name, device, True))
    if len(columns) < 2:
        raise ValueError(f"compare_backends: {len(columns)} run to compare; give two devices "
                         f"or more, or passes='both' to compare a device's passes with its "
                         f"portable plan")
    return columns


def _graph_of(flat, feed_dict, graph, session):
    """The graph to run: ``graph``, else ``session``'s, else the fetches'; every fetch and
    fed placeholder must be in it."""
    if not flat:
        raise ValueError("compare_backends: nothing to fetch; give the loss (or the nodes) "
                         "whose values to compare")
    source = "graph=" if graph is not None else (
        "the session's graph" if session is not None else "the first fetch's graph")
    graph = graph or (session.graph if session is not None else flat[0].graph)
    if session is not None and session.graph is not graph:
        raise ValueError("compare_backends: session runs another graph than graph=; give "
                         "one of them")
    for node in [*flat, *feed_dict]:
        if not isinstance(node, Node) or node.graph is not graph:
            what = node.label if isinstance(node, Node) else f"feed_dict key {node!r}"
            raise ValueError(f"compare_backends: {what} is not in the graph compared "
                             f"({source}): pass graph= the graph the fetches and "
                             f"placeholders were built in")
    return graph


def _on_host(value):
    """A fed array of any library as NumPy: every device is fed the same host data."""
    if isinstance(value, np.ndarray) or not is_array_api_obj(value):
        return value
    return to_numpy(value)


def _fetch_nodes(flat, gradients) -> tuple[list, set]:
    """The nodes to compare at the end (the fetches, an optimizer step's gradients in its
    place, a scalar loss's gradients) and the forward nodes among everything they need."""
    values = [n for n in flat if not isinstance(n, Update)]
    forward = set(topological_order(values))
    steps = [n for n in flat if isinstance(n, Update)]
    extra = [i for u in steps for i in u.inputs if not isinstance(i, Variable)]
    loss = next((n for n in values if n.shape == () and (n.dtype is None or _floating(n.dtype))),
                None)  # a dtype unknown until run (an untyped placeholder's) is float
    if gradients and loss is not None and not steps:
        xs = tuple(v for v in loss.graph.trainable_variables() if v in forward)
        extra += [g for g in _gradients_of(loss, xs) if g is not None]
    fetched = list(dict.fromkeys(values + extra))
    return fetched, forward


def _gradients_of(loss, xs) -> list:
    """``loss``'s gradients w.r.t. ``xs``, made once: comparing again adds no nodes."""
    made = loss.__dict__.setdefault("_compared_gradients", {})
    if xs and xs not in made:
        made[xs] = _gradients(loss, list(xs))
    return made.get(xs, [])


def _flatten(fetches):
    if isinstance(fetches, Node):
        yield fetches
    elif isinstance(fetches, dict):
        for value in fetches.values():
            yield from _flatten(value)
    elif isinstance(fetches, (list, tuple)):
        for value in fetches:
            yield from _flatten(value)
    else:
        raise TypeError(f"compare_backends: cannot fetch a {type(fetches).__name__}; fetch "
                        f"graph nodes, or a list, tuple or dict of them")


def _floating(dtype) -> bool:
    return dtype is not None and dtype_name(dtype) in ("float16", "bfloat16", "float32",
                                                      "float64")


def _comparable(fetched, feed_dict) -> list:
    """Every op the fetches need, in execution order, but updates and ops of several
    outputs (their outputs are compared instead)."""
    return [n for n in topological_order(fetched, stop=set(feed_dict))
            if isinstance(n, Operation) and n not in feed_dict
            and not isinstance(n, (Update, MultiOutput))]


def _sessions(columns, graph, session) -> dict:
    """A Session per column, each with the same Variable values and random seed."""
    dtype = session.dtype if session is not None else None
    made = {}
    for name, device, passes in columns:
        made[name] = Session(graph=graph, device=device, passes=passes, dtype=dtype, seed=0)
    source = session if session is not None else made[columns[0][0]]
    for variable in graph.variables:
        value = to_numpy(source.get_value(variable))
        for sess in made.values():
            if sess is not source:
                sess.set_value(variable, value)
    return made


def _values(sess, nodes, feed_dict) -> dict:
    """node -> its value on the host, from one run fetching them all."""
    return dict(zip(nodes, sess.run(list(nodes), feed_dict, to_numpy=True)))


def _compare_all(report, nodes, everything, forward, feed_dict, tolerance) -> None:
    report.compared = sum(1 for n in nodes if _all_arrays(n, everything))
    report.backward = sum(1 for n in nodes if n not in forward and _all_arrays(n, everything))
    report.skipped = [(n.label, "not an array") for n in nodes if not _all_arrays(n, everything)]
    report.disagreements.extend(_compare_nodes(nodes, everything, forward, feed_dict,
                                               tolerance))


def _all_arrays(node, columns) -> bool:
    return all(isinstance(values[node], np.ndarray) for values in columns.values())


def _compare_nodes(nodes, columns, forward, feed_dict, tolerance) -> list:
    """The disagreements among ``nodes`` (values per column), in order."""
    found = []
    for node in nodes:
        if not _all_arrays(node, columns):
            continue
        values = {name: column[node] for name, column in columns.items()}
        d = _compare_node(node, values, tolerance)
        if d is not None:
            d.backward = node not in forward
            d.path = path_to(node, feed_dict)
            d.inputs = [(i.label, *_shape_dtype(columns, i, feed_dict)) for i in node.inputs]
            found.append(d)
    return found


def _shape_dtype(columns, node, feed_dict) -> tuple:
    """``node``'s shape and dtype on the first device (where fed, the fed data's shape)."""
    value = next(iter(columns.values())).get(node)
    if isinstance(value, np.ndarray):
        return tuple(value.shape), dtype_name(value.dtype)
    shape = np.shape(feed_dict[node]) if node in feed_dict else node.shape
    return ("?" if shape is None else tuple(shape)), node.dtype


def _compare_node(node, values, tolerance) -> Disagreement | None:
    """The disagreement among one node's ``values`` (column -> host array), or None."""
    names = list(values)
    groups = []  # columns that agree with each group's first
    for name in names:
        home = next((g for g in groups if _differs(values[g[0]], values[name],
                                                   tolerance) is None), None)
        if home is None:
            groups.append([name])
        else:
            home.append(name)
    if len(groups) == 1:
        return None
    agree = max(groups, key=len)  # ties: the group of the first column
    odd = [n for n in names if n not in agree]
    reference = values[agree[0]]
    reason, detail, worst = _differs(reference, values[odd[0]], tolerance)
    if reason == "values":
        worst = _worst(values, agree[0], odd, tolerance)
    return Disagreement(node, node.label, node.type, False,
                        getattr(node.gradient_of, "label", None), [], odd, agree, reason,
                        detail, worst, [], _tolerance(reference.dtype, tolerance),
                        majority=all(len(g) < len(agree) for g in groups if g is not agree))


def _tolerance(dtype, given) -> tuple:
    name = dtype_name(dtype)
    if name not in TOLERANCES:
        return (0.0, 0.0)
    rtol, atol = TOLERANCES[name]
    return (rtol if given[0] is None else given[0], atol if given[1] is None else given[1])


def _differs(reference, value, tolerance):
    """None where ``value`` agrees with ``reference``, else (reason, detail, excess): the
    ratio of each entry's difference to what its tolerance allows, for a value mismatch."""
    if reference.shape != value.shape:
        return "shape", f"shape {value.shape}, not {reference.shape}", None
    if dtype_name(reference.dtype) != dtype_name(value.dtype):
        return "dtype", f"dtype {dtype_name(value.dtype)}, not {dtype_name(reference.dtype)}", None
    excess = _excess(reference, value, _tolerance(reference.dtype, tolerance))
    bad = int(np.count_nonzero(excess > 1))
    if not bad:
        return None
    return "values", f"{bad} of {excess.size} entries differ beyond the tolerance", excess


def _excess(reference, value, tolerance) -> np.ndarray:
    """Each entry's difference over what the tolerance allows (> 1: it differs); equal
    entries (infinities, and NaN against NaN, included) 0."""
    rtol, atol = tolerance
    if reference.dtype.kind != "f":
        return (reference != value).astype(np.float64) * 2
    r, v = reference.astype(np.float64), value.astype(np.float64)
    same = (r == v) | (np.isnan(r) & np.isnan(v))
    scale = max(_magnitude(r), _magnitude(v))
    allowed = atol * scale + rtol * np.abs(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.abs(v - r) / allowed
    excess = np.where(np.isnan(excess), np.inf, excess)  # a NaN or an inf on one side only
    return np.where(same, 0.0, excess)


def _magnitude(a) -> float:
    finite = a[np.isfinite(a)]
    return float(np.max(np.abs(finite))) if finite.size else 0.0


def _worst(values, reference, odd, tolerance) -> list:
    """The ``WORST`` entries whose difference most exceeds the tolerance, over ``odd``."""
    ref = values[reference]
    excess = np.max([_excess(ref, values[n], _tolerance(ref.dtype, tolerance))
                     for n in odd], axis=0)
    order = np.argsort(-excess, axis=None, kind="stable")[:WORST]
    entries = []
    for flat in order:
        if excess.flat[flat] <= 1:
            break
        index = np.unravel_index(flat, ref.shape) if ref.ndim else ()
        at = {name: values[name][index].item() for name in values}
        diffs = [abs(float(at[n]) - float(at[reference])) for n in odd]
        base = abs(float(at[reference]))
        entries.append(Entry(tuple(int(i) for i in index), at, max(diffs),
                             max(diffs) / base if base else float("inf")))
    return entries


def path_to(node, feed_dict=()) -> list:
    """Names of the nodes on a shortest path from a fed placeholder to ``node`` (from a
    Variable or a constant where no placeholder leads to it)."""
    came = {node: None}
    queue, leaf = deque([node]), None
    while queue:
        current = queue.popleft()
        if isinstance(current, Placeholder) or current in feed_dict:
            leaf = current
            break
        if leaf is None and not current.inputs:
            leaf = current  # the nearest leaf, in case no placeholder is reached
        for i in current.inputs:
            if i not in came:
                came[i] = current
                queue.append(i)
    path = []
    while leaf is not None:
        path.append(leaf.label)
        leaf = came[leaf]
    return path
