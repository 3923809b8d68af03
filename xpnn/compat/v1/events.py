"""TensorBoard event files for ``tf.summary``: TF1's FileWriter over tensorboardX's event
writer and protobufs (``pip install xpnn[summary]``), the GraphDef of an xpnn graph for
TensorBoard's graph tab, and ``tf.train.summary_iterator`` over TensorBoard's own reader.
"""

from __future__ import annotations

import functools
import os
import time
import types

from ...graph import Constant, Graph, Operation, Placeholder, Variable

EXTRA = "pip install xpnn[summary]"


@functools.cache
def protos():
    """tensorboardX's protobuf modules, imported at first use (a summary or a FileWriter)."""
    try:
        from tensorboardX.proto import (
            event_pb2,
            graph_pb2,
            summary_pb2,
            tensor_pb2,
            tensor_shape_pb2,
            types_pb2,
        )
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"tf.summary needs tensorboardX, which is not installed ({error}): {EXTRA}",
            name=error.name) from error
    return types.SimpleNamespace(event=event_pb2, graph=graph_pb2, summary=summary_pb2,
                                 tensor=tensor_pb2, shape=tensor_shape_pb2, types=types_pb2)


class _Proto:
    """A protobuf class of tensorboardX's (``tf.Summary``...), looked up at first use so
    that importing xpnn.compat.v1 imports no protobuf."""

    def __init__(self, module: str, name: str):
        self._module, self._name = module, name

    def _cls(self):
        return getattr(getattr(protos(), self._module), self._name)

    def __call__(self, *args, **kwargs):
        return self._cls()(*args, **kwargs)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._cls(), attr)

    def __repr__(self):
        return f"<protobuf class {self._name}>"


Summary = _Proto("summary", "Summary")
Event = _Proto("event", "Event")
SessionLog = _Proto("event", "SessionLog")


def _as(cls, message, what):
    """``message`` as tensorboardX's ``cls``: bytes (a fetched summary) are parsed, another
    library's protobuf (TF's, TensorBoard's) is converted."""
    if isinstance(message, cls):
        return message
    if isinstance(message, bytes):
        return cls.FromString(message)
    if hasattr(message, "SerializeToString"):
        return cls.FromString(message.SerializeToString())
    raise TypeError(f"{what} takes a {cls.__name__} protobuf or its serialized bytes (a "
                    f"fetched summary op), not {type(message).__name__}")


class FileWriter:
    """TF1's ``tf.summary.FileWriter``: a new event file in ``logdir`` (made if missing),
    with the graph's GraphDef first when ``graph`` is given. Events go to the file at once;
    they are flushed every ``max_queue`` events, every ``flush_secs`` and at ``flush()``,
    ``close()`` and the end of a ``with`` block."""

    def __init__(self, logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None,
                 filename_suffix=None, session=None):
        protos()
        self._logdir, self._suffix = str(logdir), filename_suffix or ""
        self._max_queue, self._flush_secs = max_queue, flush_secs
        self._writer = None
        self.reopen()
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def get_logdir(self) -> str:
        return self._logdir

    def reopen(self) -> None:
        """After ``close()``, a new event file in the same logdir (else nothing)."""
        if self._writer is not None:
            return
        from tensorboardX.event_file_writer import EventsWriter

        os.makedirs(self._logdir, exist_ok=True)
        self._writer = EventsWriter(os.path.join(self._logdir, "events"), self._suffix)
        self._pending, self._flushed_at = 0, time.time()

    def add_event(self, event) -> None:
        """Write an Event protobuf (dropped after ``close()``, as TF1's)."""
        if self._writer is None:
            return
        self._writer.write_event(_as(protos().event.Event, event, "add_event"))
        self._pending += 1
        if self._pending >= self._max_queue or time.time() - self._flushed_at >= self._flush_secs:
            self.flush()

    def add_summary(self, summary, global_step=None) -> None:
        """Write a Summary: a fetched summary op's bytes, or a ``tf.Summary`` protobuf."""
        event = protos().event.Event(
            wall_time=time.time(), summary=_as(protos().summary.Summary, summary, "add_summary"))
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def add_session_log(self, session_log, global_step=None) -> None:
        event = protos().event.Event(wall_time=time.time(), session_log=_as(
            protos().event.SessionLog, session_log, "add_session_log"))
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def add_graph(self, graph, global_step=None, graph_def=None) -> None:
        """Write ``graph``'s GraphDef (or ``graph_def``, a GraphDef protobuf, which ``graph``
        may also be, as TF1 accepts) for TensorBoard's graph tab."""
        if graph_def is None and hasattr(graph, "SerializeToString"):
            graph_def = graph
        if graph_def is None:
            if not isinstance(graph, Graph):
                raise TypeError(f"add_graph takes an xpnn graph (tf.get_default_graph(), "
                                f"sess.graph), not {type(graph).__name__}")
            graph_def = graph_to_graph_def(graph)
        event = protos().event.Event(wall_time=time.time(), graph_def=_as(
            protos().graph.GraphDef, graph_def, "add_graph").SerializeToString())
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._pending, self._flushed_at = 0, time.time()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FileWriterCache:
    """TF1's: one FileWriter per logdir, made at the first ``get`` (with the default graph)."""

    _writers: dict = {}

    @staticmethod
    def get(logdir) -> FileWriter:
        from .graphs import get_default_graph

        key = str(logdir)
        if key not in FileWriterCache._writers:
            FileWriterCache._writers[key] = FileWriter(key, graph=get_default_graph())
        return FileWriterCache._writers[key]

    @staticmethod
    def clear() -> None:
        """Close every cached writer and forget them."""
        for writer in FileWriterCache._writers.values():
            writer.close()
        FileWriterCache._writers.clear()


# --------------------------------------------------------------------------- the graph tab

_DATA_TYPES = {"float16": "DT_HALF", "float32": "DT_FLOAT", "float64": "DT_DOUBLE",
               "bool": "DT_BOOL", "string": "DT_STRING"}


def _op_type(node) -> str:
    for kind, tf_name in ((Placeholder, "Placeholder"), (Variable, "VariableV2"),
                          (Constant, "Const")):
        if isinstance(node, kind):
            return tf_name
    return node.type if isinstance(node, Operation) else type(node).__name__


def graph_to_graph_def(graph: Graph):
    """The GraphDef of ``graph``'s nodes: each with a unique name, its op type (TF1's for
    placeholders, Variables and constants, else xpnn's op class), its inputs, its dtype
    and static shape (``_output_shapes``, which the graph tab shows on edges)."""
    p = protos()
    names, taken = {}, set()
    for node in graph.nodes:
        name = node.name or _op_type(node)
        unique, k = name, 0
        while unique in taken:
            k += 1
            unique = f"{name}_{k}"
        names[node], taken = unique, taken | {unique}
    graph_def = p.graph.GraphDef()
    for node in graph.nodes:
        node_def = graph_def.node.add(name=names[node], op=_op_type(node),
                                      input=[names[i] for i in node.inputs if i in names])
        if node.dtype is not None:
            data_type = _DATA_TYPES.get(node.dtype, "DT_" + node.dtype.upper())
            node_def.attr["dtype"].type = p.types.DataType.Value(data_type)
        if node.shape is not None:
            node_def.attr["_output_shapes"].list.shape.add(dim=[
                p.shape.TensorShapeProto.Dim(size=-1 if n is None else n) for n in node.shape])
    return graph_def


def summary_iterator(path):
    """TF1's ``tf.train.summary_iterator``: the Event protobufs of the event file ``path``,
    read with TensorBoard's own reader (``pip install tensorboard``)."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import (
            LegacyEventFileLoader,
        )
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"tf.train.summary_iterator reads event files with "
                                  f"TensorBoard's reader: pip install tensorboard ({error})",
                                  name=error.name) from error
    for event in LegacyEventFileLoader(str(path)).Load():
        yield _as(protos().event.Event, event, "summary_iterator")
