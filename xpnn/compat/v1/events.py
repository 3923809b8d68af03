"""``tf.summary``'s event files: TF1's FileWriter (xpnn's ``xn.summary.FileWriter`` with
TF1's arguments), FileWriterCache, the protobuf classes ``tf.Summary``, ``tf.summary.Event``
and ``SessionLog``, and ``tf.train.summary_iterator``.
"""

from __future__ import annotations

from ... import summary as _summary
from ...summary import EXTRA, graph_to_graph_def, protos, summary_iterator
from .graphs import get_default_graph

__all__ = ["EXTRA", "Event", "FileWriter", "FileWriterCache", "SessionLog", "Summary",
           "graph_to_graph_def", "protos", "summary_iterator"]


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


class FileWriter(_summary.FileWriter):
    """TF1's ``tf.summary.FileWriter(logdir, graph=None, max_queue=10, flush_secs=120,
    graph_def=None, filename_suffix=None, session=None)``; ``session`` is accepted and
    ignored."""

    def __init__(self, logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None,
                 filename_suffix=None, session=None):
        super().__init__(logdir, graph, max_queue, flush_secs, graph_def, filename_suffix)


class FileWriterCache:
    """TF1's: one FileWriter per logdir, made at the first ``get`` (with the default graph)."""

    _writers: dict = {}

    @staticmethod
    def get(logdir) -> FileWriter:
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
