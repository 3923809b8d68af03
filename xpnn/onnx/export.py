"""``export``: walk the forward graph from the outputs back to the inputs and write it with
``onnx.helper``. Each node becomes either a known value (a Variable, a constant, or an op
whose inputs are all known, computed here with NumPy) or an ONNX tensor made by the op's
converter (``converters.py``)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..devices import resolve
from ..dtypes import is_floating
from ..graph import Constant, Node, Operation, Placeholder, Variable
from ..host import to_numpy
from ..session import Session
from . import converters
from .converters import Known, unsupported

MIN_OPSET = 13  # Squeeze, Unsqueeze and ReduceSum take their axes as inputs from 13 on


def export(session, inputs, outputs, path=None, opset=17, dynamic_batch=True,
           feed_dict=None):
    """Write the graph from ``inputs`` (placeholders, a list or one) to ``outputs`` (nodes)
    as an ONNX model at ``path`` with ``session``'s Variable values; returns ``path``, or
    the ``onnx.ModelProto`` when ``path`` is None. ``dynamic_batch``: an input whose first
    axis is None gets the symbolic size "batch" (else each None axis its own name).
    ``feed_dict`` gives the values of other placeholders the outputs read (inference
    settings); a scalar bool placeholder not given is False (a ``training`` flag). The
    model is checked with ``onnx.checker`` before it is written."""
    onnx = _onnx()
    inputs, outputs = _listed(inputs, "inputs"), _listed(outputs, "outputs")
    _check_arguments(session, inputs, outputs, opset)
    builder = Builder(session, opset, inputs, dict(feed_dict or {}))
    for node in _forward_nodes(inputs, outputs):
        builder.visit(node)
    model = builder.model(inputs, outputs, dynamic_batch)
    # With every output's rank known the check runs ONNX's shape inference too.
    onnx.checker.check_model(model, full_check=all(y.shape is not None for y in outputs))
    if path is None:
        return model
    onnx.save(model, str(path))
    return path


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("xn.onnx.export needs the onnx package: pip install onnx "
                          "(or pip install xpnn[onnx], which adds onnxruntime)") from exc
    return onnx


def _listed(given, what) -> list:
    items = list(given) if isinstance(given, (list, tuple)) else [given]
    for item in items:
        if not isinstance(item, Node):
            raise TypeError(f"xn.onnx.export: {what} must be graph nodes, got {item!r}")
    if not items:
        raise ValueError(f"xn.onnx.export: give at least one of the {what}")
    return items


def _check_arguments(session, inputs, outputs, opset) -> None:
    if not isinstance(session, Session):
        raise TypeError(f"xn.onnx.export: the first argument is the Session whose weights "
                        f"are exported, got {type(session).__name__} (a model exports with "
                        f"model.export_onnx(path))")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"xn.onnx.export: opset must be an int >= {MIN_OPSET}, got {opset!r}")
    for x in inputs:
        if not isinstance(x, Placeholder):
            raise TypeError(f"xn.onnx.export: input {x.label} is a {x.kind}, not a "
                            "placeholder; the model's inputs are the placeholders it is fed")
    for node in inputs + outputs:
        if node.graph is not session.graph:
            raise ValueError(f"xn.onnx.export: {node.label} belongs to another graph than "
                             "the Session's; export the Session that runs it")
    if len({id(x) for x in inputs}) != len(inputs):
        raise ValueError("xn.onnx.export: an input is listed twice")


def _forward_nodes(inputs, outputs) -> list:
    """The nodes the outputs are computed from, stopping at the inputs, in graph order."""
    seen, stack, stop = set(), list(outputs), {id(x) for x in inputs}
    found = []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        if id(node) not in stop:
            stack.extend(node.inputs)
            for argument in getattr(node, "arguments", ()):  # a Dynamic op's shape entries
                stack.extend(e for e in argument.entries if isinstance(e, Node))
    return sorted(found, key=lambda n: n.index)


class Builder:
    """The ONNX graph under construction: each visited node's known value (``known``) or
    ONNX tensor name (``names``), the ONNX nodes, initializers and tensor dtypes."""

    def __init__(self, session, opset, inputs, feed_dict):
        self.session, self.opset, self.inputs, self.feed = session, opset, inputs, feed_dict
        self.known, self.names, self.dtypes = {}, {}, {}
        self.nodes, self.initializers, self._used = [], [], set()
        self._host = resolve("cpu")  # the host: known values are computed with NumPy

    # ------------------------------------------------------------------ names and values

    def fresh(self, base) -> str:
        base = "".join(c if c.isalnum() or c in "_./:-" else "_" for c in base) or "t"
        name, k = base, 0
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def value(self, node):
        """The known (host) value of a visited node, or None where it is an ONNX tensor."""
        return self.known.get(node)

    def tensor(self, node) -> str:
        """The ONNX name of a visited node's value (a known value becomes an initializer);
        raises the node's error where it has no ONNX form and something needs it."""
        if node not in self.names:
            self.names[node] = self.initializer(self.known[node], node.label)
        if isinstance(self.names[node], Exception):
            raise self.names[node]
        return self.names[node]

    def dtype_of(self, node) -> str:
        """The dtype a node's value has in the Session (its floats widened to a
        ``Session(dtype=...)``'s)."""
        dtype = node.dtype or "float32"
        return self.session.dtype if self.session.dtype and is_floating(dtype) else dtype

    def initializer(self, array, base="const") -> str:
        from onnx import numpy_helper

        array = np.asarray(array)
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(array, name))
        self.dtypes[name] = array.dtype.name
        return name

    def emit(self, op_type, inputs, dtype, base="t", outputs=1, **attributes):
        """Add an ONNX node; its output name(s), each of ``dtype``."""
        from onnx import helper

        names = [self.fresh(f"{base}/{op_type}") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=self.fresh(f"{base}/{op_type}_node"),
                                           **attributes))
        for name in names:
            self.dtypes[name] = dtype
        return names[0] if outputs == 1 else names

    def cast(self, name, dtype) -> str:
        """``name`` in ``dtype`` (itself where it has it)."""
        if self.dtypes.get(name) == dtype:
            return name
        return self.emit("Cast", [name], dtype, base=name, to=onnx_type(dtype))

    def ints(self, values, base="ints") -> str:
        return self.initializer(np.asarray(values, np.int64), base)

    # ------------------------------------------------------------------ visiting

    def visit(self, node) -> None:
        if any(node is x for x in self.inputs):
            self.names[node] = self.fresh(node.label)
            self.dtypes[self.names[node]] = self.dtype_of(node)
        elif isinstance(node, Placeholder):
            try:
                self.known[node] = self.fixed_value(node)
            except ValueError as exc:  # an error only where something needs it
                self.names[node] = exc
        elif isinstance(node, (Variable, Constant)):
            self.known[node] = self.leaf_value(node)
        elif not isinstance(node, Operation):
            raise unsupported(node, f"a {type(node).__name__} node")
        elif all(i in self.known for i in node.inputs) and foldable(node):
            self.known[node] = self.fold(node)
        else:
            try:
                converted = converters.convert(self, node)
            except NotImplementedError as exc:  # an error only where something needs it
                converted = exc
            if isinstance(converted, Known):
                self.known[node] = converted.array
            else:
                self.names[node] = converted

    def fixed_value(self, x):
        if x in self.feed:
            return np.asarray(to_numpy(self.feed[x]), dtype=x.dtype)
        default = getattr(x, "default", None)  # compat.v1's placeholder_with_default
        if default is not None:
            return np.asarray(default)
        if x.dtype == "bool" and x.shape == ():
            return np.asarray(False)  # a training flag: inference
        raise ValueError(
            f"xn.onnx.export: the outputs read the placeholder {x.label} (shape {x.shape}, "
            f"dtype {x.dtype}), which is not one of the inputs: list it in inputs, or give "
            f"its value for inference in feed_dict={{{x.label}: value}}")

    def leaf_value(self, node):
        if isinstance(node, Variable):
            return np.asarray(to_numpy(self.session.get_value(node)))
        value = np.asarray(node.value)
        if self.session.dtype and is_floating(value.dtype.name):
            exact = node.exact_value if node.exact_value is not None else value
            value = np.asarray(exact, dtype=self.session.dtype)
        return value

    def fold(self, op):
        """The op's value from its inputs' known values, computed on the host."""
        args = [self.known[i] for i in op.inputs]
        with ops.run_context.reading(True):
            value = op.forward(self._host.xp, *args)
        return tuple(map(np.asarray, value)) if isinstance(value, tuple) else np.asarray(value)

    # ------------------------------------------------------------------ the model

    def model(self, inputs, outputs, dynamic_batch):
        from onnx import helper

        graph_inputs = [self.value_info(self.names[x], x.shape, dynamic_batch, k)
                        for k, x in enumerate(inputs)]
        graph_outputs = []
        for k, y in enumerate(outputs):
            name = self.tensor(y)
            out = self.fresh(_output_name(y, k))
            self.nodes.append(helper.make_node("Identity", [name], [out],
                                               name=self.fresh(f"{out}_node")))
            self.dtypes[out] = self.dtypes[name]
            graph_outputs.append(self.value_info(out, y.shape, dynamic_batch, k, "output"))
        nodes, initializers = self.needed([v.name for v in graph_outputs])
        graph = helper.make_graph(nodes, "xpnn", graph_inputs, graph_outputs, initializers)
        return helper.make_model(graph, producer_name="xpnn",
                                 opset_imports=[helper.make_opsetid("", self.opset)])

    def needed(self, outputs):
        """The ONNX nodes and initializers the outputs are computed from (the branches a
        folded flag left unused are dropped)."""
        wanted, nodes = set(outputs), []
        for node in reversed(self.nodes):
            if wanted.intersection(node.output):
                nodes.append(node)
                wanted.update(node.input)
        return nodes[::-1], [t for t in self.initializers if t.name in wanted]

    def value_info(self, name, shape, dynamic_batch, k, what="input"):
        from onnx import helper

        dims = None
        if shape is not None:
            dims = [d if d is not None else (
                "batch" if dynamic_batch and axis == 0 else f"{what}{k}_dim{axis}")
                for axis, d in enumerate(shape)]
        return helper.make_tensor_value_info(name, onnx_type(self.dtypes[name]), dims)


def _output_name(node, k) -> str:
    return node.name or f"output{k}"


def foldable(op) -> bool:
    """Whether a known op's value may be computed at export: not a random op (a dropout
    mask: its converter decides) nor a control-flow op (it runs bodies in a Session)."""
    return not op.runs_bodies and not op.random


def onnx_type(dtype) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
