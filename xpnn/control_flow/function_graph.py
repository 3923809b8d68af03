"""Body graphs: the graph a cond branch or a loop body is built in, and what runs it.

A ``FunctionGraph`` is a graph inside another: ops built while it is the default graph land
in it, and a node of an outer graph used there is *captured*: replaced by a placeholder of
the body graph, which the control-flow op feeds from one of its own inputs (as TF2's
function graphs do). ``trace(fn, args, name)`` calls ``fn`` on placeholders standing for
``args`` and gives a ``Body``: its graph, its inputs (the arguments' placeholders, then the
captures') and its outputs. A Session runs a body through ``Body.function(session)``: the
body's portable plan, compiled by the Session's device as any plan is.

>>> import xpnn as xn
>>> from xpnn.control_flow.function_graph import trace
>>> w = xn.Variable(3.0)
>>> body = trace(lambda x: x * w, [xn.constant(2.0)], "double")
>>> len(body.params), body.captured == [w]
(1, True)
"""

from __future__ import annotations

import weakref

from .. import ops
from ..graph import Graph, Node, Operation, Placeholder, as_node, get_default_graph
from ..ops.outputs import MultiOutput
from ..plan import StepFailed, compile_plan


class FunctionGraph(Graph):
    """A graph built inside ``outer`` (a cond branch, a loop body). It may read any node of
    its outer graphs (captured), holds no Variable and no update."""

    def __init__(self, outer: Graph, name: str):
        super().__init__()
        self.outer, self.name = outer, name
        self.captures: dict[Node, Placeholder] = {}  # outer node -> its placeholder here
        self.captured: list[Node] = []  # what each capture reads, as a node of ``outer``

    def encloses(self, graph) -> bool:
        outer = self.outer
        while outer is not None:
            if outer is graph:
                return True
            outer = getattr(outer, "outer", None)
        return False

    def take(self, node):
        if node.graph is self or not self.encloses(node.graph):
            return node
        placeholder = self.captures.get(node)
        if placeholder is None:
            outer_node = self.outer.take(node)  # captured by the outer body first, if nested
            placeholder = Placeholder(self, f"captured/{node.name or node.kind}",
                                      node.shape, node.dtype)
            self.captures[node] = placeholder
            self.captured.append(outer_node)
        return placeholder

    def _add(self, node) -> int:
        if node.kind in ("variable", "update"):
            raise ValueError(  # before the node has a name: added first, named after
                f"{type(node).__name__} made inside {self.name}: a "
                "cond branch or loop body may read Variables and compute with them, but not "
                "create or update them; create the Variable outside and use it inside"
            )
        return super()._add(node)


class Body:
    """A traced body: its ``graph``; ``params`` (placeholders the op feeds from its
    operands: a loop's variables, a gradient's seeds), ``saved`` (nodes of the graph fed
    instead of computed: what a loop's forward kept for its gradient), ``captures``
    (placeholders fed from ``captured``, the nodes of the op's graph they stand for) and
    ``outputs``."""

    def __init__(self, graph, params, outputs, captures=None, captured=None, saved=()):
        self.graph, self.params, self.outputs = graph, list(params), list(outputs)
        self.captures = list(graph.captures.values()) if captures is None else list(captures)
        self.captured = list(graph.captured) if captured is None else list(captured)
        self.saved = list(saved)
        self._functions = weakref.WeakKeyDictionary()  # Session -> {check_numerics: fn}

    @property
    def inputs(self) -> list:
        """What ``function`` takes, in order: params, saved values, captures."""
        return self.params + self.saved + self.captures

    def function(self, session):
        """``f(*arrays) -> tuple``: the body run in ``session`` on arrays of its device,
        ``inputs`` in order; compiled once per Session by its device (``body_executor``)."""
        functions = self._functions.setdefault(session, {})
        key = session.check_numerics
        if key not in functions:
            with session.device.compiling():
                functions[key] = _compile(self, session)
        return functions[key]

    def saving(self, nodes) -> Body:
        """This body with ``nodes`` (of its graph) as outputs after its own: what a loop's
        forward runs when its gradient is built, to keep them for it."""
        return Body(self.graph, self.params, self.outputs + list(nodes), self.captures,
                    self.captured)

    def gradient(self, wrt=(), save=False) -> Body:
        """The body's vector-Jacobian product: a Body fed this body's inputs and one seed per
        floating output (params: the old ones, then the seeds), whose outputs are the
        gradient of each floating param, then of each node of ``wrt`` (nodes of the op's
        graph: a capture's gradient, or zeros where this body does not read it). With
        ``save``, the forward values the gradient reads are its ``saved`` inputs (a loop
        keeps them per iteration, as TF1's stacks do) instead of being computed again."""
        graph = self.graph
        from ..autodiff import gradients, topological_order

        with graph.as_default():
            ys = [y for y in self.outputs if floating(y.dtype)]
            seeds = [Placeholder(graph, None, y.shape, y.dtype) for y in ys]
            stand_in = dict(zip(self.captured, self.captures))
            xs = [p for p in self.params if floating(p.dtype)]
            xs += [stand_in[node] if node in stand_in else graph.take(node) for node in wrt]
            found = gradients(ys, xs, grad_ys=seeds) if ys else [None] * len(xs)
            grads = [ops.zeros_like(x) if g is None else g for x, g in zip(xs, found)]
        saved = ()
        if save:
            forward = set(topological_order(self.outputs))
            # an op of several outputs: only the outputs the gradient reads, not its tuple
            forward.update(o for n in list(forward) if isinstance(n, MultiOutput)
                           for o in n.outputs)
            saved = [n for n in topological_order(grads, stop=forward)
                     if n in forward and isinstance(n, Operation)]
        return Body(graph, self.params + seeds, grads, saved=saved)


def differentiable(nodes) -> list:
    """The floating nodes of ``nodes``, each once, in order: what a body's gradient is
    taken with respect to."""
    return [n for n in dict.fromkeys(nodes) if floating(n.dtype)]


def once_each(nodes, gradients) -> list:
    """One gradient per node of ``nodes`` (an op's captured inputs): ``gradients[node]``
    the first time a node comes, None after (an input listed twice adds its gradient once)."""
    result, seen = [], set()
    for node in nodes:
        result.append(gradients.get(node) if node not in seen else None)
        seen.add(node)
    return result


def keep_for_gradient(loop, targets) -> None:
    """Once per loop op: its body's gradient with respect to ``targets`` (``loop.vjp``) and
    the body that also returns what that gradient reads (``loop.saving_body``), which the
    loop runs from then on, keeping each iteration's values (TF1's stacks). Every gradient
    of the loop reads that one history."""
    if not loop.keeps_history:
        loop.vjp = loop.body.gradient(targets, save=True)
        loop.saving_body = loop.body.saving(loop.vjp.saved)
        loop.keeps_history = True


def floating(dtype) -> bool:
    """Whether values of ``dtype`` get gradients (unknown dtypes are taken to be floats)."""
    return dtype is None or "float" in dtype


def trace(fn, args, name, shapes=None) -> Body:
    """Call ``fn(*placeholders)`` in a new FunctionGraph of the default graph, one
    placeholder per node of ``args`` (its shape, or ``shapes[i]`` where given, and dtype);
    ``fn`` returns a node or a list/tuple of nodes (numbers become constants)."""
    outer = get_default_graph()
    graph = FunctionGraph(outer, name)
    with graph.as_default():
        placeholders = [
            Placeholder(graph, f"{name}/arg{k}", (shapes[k] if shapes else a.shape), a.dtype)
            for k, a in enumerate(args)
        ]
        result = fn(*placeholders)
        outputs = _as_outputs(result, graph, name)
    body = Body(graph, placeholders, outputs)
    body.single = not isinstance(result, (list, tuple))  # fn returned one node, not a list
    return body


def _as_outputs(result, graph, name) -> list:
    """``fn``'s result as nodes of ``graph``: numbers become constants, an outer node or an
    argument returned as it is passes through an identity op."""
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    if not items:
        raise ValueError(f"{name} returned nothing: return a node or a list of nodes")
    outputs = []
    for item in items:
        node = graph.take(as_node(item, graph))
        outputs.append(node if node.graph is graph and not isinstance(node, Placeholder)
                       else ops.identity(node))
    return outputs


def _compile(body: Body, session):
    """The function that runs ``body`` in ``session`` (see ``Body.function``)."""
    fed = dict.fromkeys(body.inputs)
    plan = compile_plan(session, body.outputs, list, fed)
    for s, constant in plan.constants.items():
        plan.template[s] = session._leaf_value(constant)
    executor = session.device.body_executor(plan, session)
    slots = [f.slot for f in plan.feeds]
    position = {p: k for k, p in enumerate(body.inputs)}
    order = [position[f.placeholder] for f in plan.feeds]
    fetch = plan.fetch_slots
    copies = getattr(executor, "copies", frozenset())
    copy = session.device.copy
    template = plan.template

    def run(*arrays):
        values = template.copy()
        for s, k in zip(slots, order):
            values[s] = arrays[k]
        try:
            executor.run(values)
        except StepFailed as failure:
            raise _named(failure, body.graph.name) from failure.error
        return tuple(copy(values[s]) if s in copies else values[s] for s in fetch)

    return run


def _named(failure, where):
    """The step's error, its message naming the op in the body that raised it."""
    op, error = failure.step.op, failure.error
    message = f"{op.label} ({op.type}) in {where} failed: {error}"
    try:
        return type(error)(message)
    except Exception:
        return RuntimeError(message)
