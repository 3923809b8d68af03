"""TensorBoard event files: ``FileWriter`` writes scalars, histograms, any ``Summary``
protobuf and a graph's GraphDef (the graph tab: nodes, op types, inputs, dtypes, shapes) to
a real event file, with tensorboardX's event writer and protobufs (``pip install
xpnn[summary]``); ``summary_iterator`` reads one back with TensorBoard's own reader. Host
code: values are NumPy (``xn.to_numpy`` of anything fetched). ``xpnn.compat.v1``'s
``tf.summary`` is built on it.

A training loop of xpnn's own::

    with xn.summary.FileWriter("logs", graph=xn.get_default_graph()) as writer:
        for step in range(steps):
            value, _ = session.run([loss, train], feed)
            writer.add_scalar("loss", value, step)
"""

from __future__ import annotations

import functools
import os
import sys
import time
import types

import numpy as np

from .graph import Constant, Graph, Operation, Placeholder, Variable
from .host import to_numpy

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
            f"xpnn.summary (and tf.summary) needs tensorboardX, which is not installed "
            f"({error}): {EXTRA}",
            name=error.name) from error
    return types.SimpleNamespace(event=event_pb2, graph=graph_pb2, summary=summary_pb2,
                                 tensor=tensor_pb2, shape=tensor_shape_pb2, types=types_pb2)


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
    """A new event file in ``logdir`` (made if missing), with the graph's GraphDef first when
    ``graph`` is given. Events go to the file at once; they are flushed every ``max_queue``
    events, every ``flush_secs`` and at ``flush()``, ``close()`` and the end of a ``with``
    block. (``tf.summary.FileWriter`` is this, with TF1's arguments.)"""

    def __init__(self, logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None,
                 filename_suffix=None):
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

    def add_scalar(self, tag, value, global_step=None) -> None:
        """Write one number (a Python or NumPy scalar: a value fetched from a Session)."""
        value = protos().summary.Summary.Value(tag=tag, simple_value=float(value))
        self.add_summary(protos().summary.Summary(value=[value]), global_step)

    def add_histogram(self, tag, values, global_step=None) -> None:
        """Write a histogram of ``values`` (any array) in TF1's buckets."""
        histo = histogram(tag, to_numpy(values))
        value = protos().summary.Summary.Value(tag=tag, histo=histo)
        self.add_summary(protos().summary.Summary(value=[value]), global_step)

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
                raise TypeError(f"add_graph takes an xpnn graph (xn.get_default_graph(), "
                                f"session.graph), not {type(graph).__name__}")
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


# --------------------------------------------------------------------------- histograms


@functools.cache
def _bucket_limits() -> np.ndarray:
    limit, positive = 1e-12, []
    while limit < 1e20:  # TF1's histogram.cc: the same float64 products, in the same order
        positive.append(limit)
        limit *= 1.1
    positive.append(sys.float_info.max)
    return np.array([-x for x in reversed(positive)] + [0.0] + positive)


def histogram(tag, array):
    """A HistogramProto of ``array`` as TF1's (summary ops' histogram.cc): limits ±1e-12
    growing by 10% up to ±1e20, and 0; a run of empty buckets written as its last."""
    values = np.asarray(array, np.float64).reshape(-1)
    if not np.isfinite(values).all():
        bad = "Nan" if np.isnan(values).any() else "Infinity"
        raise ValueError(f"{bad} in summary histogram for: {tag}")
    limits = _bucket_limits()
    bucket = np.minimum(np.searchsorted(limits, values, side="right"), len(limits) - 1)
    counts = np.bincount(bucket, minlength=len(limits))
    histo = protos().summary.HistogramProto(
        min=values.min() if values.size else limits[-1],
        max=values.max() if values.size else -limits[-1], num=values.size,
        sum=np.cumsum(values)[-1] if values.size else 0.0,  # TF1 adds in order
        sum_squares=np.cumsum(values * values)[-1] if values.size else 0.0)
    i = 0
    while i < len(counts):  # an empty bucket absorbs the empty ones after it
        j = i + 1
        if counts[i] == 0:
            while j < len(counts) and counts[j] == 0:
                j += 1
        histo.bucket_limit.append(limits[j - 1])
        histo.bucket.append(float(counts[j - 1]))
        i = j
    return histo


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
    """The Event protobufs of the event file ``path`` (TF1's ``tf.train.summary_iterator``),
    read with TensorBoard's own reader (``pip install tensorboard``)."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import (
            LegacyEventFileLoader,
        )
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"summary_iterator reads event files with TensorBoard's "
                                  f"reader: pip install tensorboard ({error})",
                                  name=error.name) from error
    for event in LegacyEventFileLoader(str(path)).Load():
        yield _as(protos().event.Event, event, "summary_iterator")
