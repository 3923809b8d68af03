"""``tf.summary``: TF1's summary ops and FileWriter, writing real TensorBoard event files.

A summary op is a graph node whose fetched value is the serialized ``Summary`` protobuf
(bytes), as TF1's: ``writer.add_summary(sess.run(merged), step)``. Fetching it computes
its tensors in the same Session run as everything else fetched; the protobuf is made on
the host from their values. Tags, op names, ``family=``, histogram buckets, image
normalization and WAV encoding are TF1's. The protobufs and the event-file writer are
tensorboardX's (``pip install xpnn[summary]``: tensorboardX and Pillow); without it, a
summary op or a FileWriter raises ModuleNotFoundError naming that extra.

Its names: scalar, histogram, image, audio, text, merge, merge_all, FileWriter,
FileWriterCache, Summary, Event, SessionLog.

``tf.Summary`` is ``tf.summary.Summary``; ``tf.train.summary_iterator`` reads event files
back with TensorBoard's reader (``pip install tensorboard``).

Where it differs from TF1: a string tensor is only ``tf.constant`` of strings (held on the
host: xpnn computes no strings), for ``text``, which also takes a Python string; ``merge``
refuses two inputs with one tag when it is built (TF1 when it runs); a FileWriter writes
the GraphDef of xpnn's nodes (op types, inputs, dtypes, shapes), no MetaGraphDef, and has
no ``add_run_metadata``; events are written at once (flushed every ``max_queue`` events or
``flush_secs``), with no writer thread.

A training loop as TF1 tutorials write it (tests/compat/tf1_programs/summaries.py runs one)::

    with tf.name_scope("train"):
        tf.summary.scalar("loss", loss)          # tag and op name "train/loss"
    merged = tf.summary.merge_all()
    with tf.Session() as sess, tf.summary.FileWriter(logdir, sess.graph) as writer:
        for step in range(steps):
            summary, _ = sess.run([merged, train], feed)
            writer.add_summary(summary, step)
"""

from __future__ import annotations

import io
import re
import sys
import wave

import numpy as np

from ... import graph as _graph
from ...graph import Node
from ...summary import histogram as _histogram
from .events import (
    EXTRA,
    Event,
    FileWriter,
    FileWriterCache,
    SessionLog,
    Summary,
    protos,
)
from .graphs import GraphKeys, add_to_collections, get_collection
from .strings import TextConstant
from .tensors import convert_to_tensor
from .unsupported import module_getattr


class SummaryOp(Node):
    """A summary op: a string tensor (its value, the serialized Summary) made on the host.
    ``parts`` are (base tag, encode, number of inputs); ``encode(*values)`` gives the part's
    Summary.Value protos."""

    kind = "summary"

    def __init__(self, name, tensors, parts, graph):
        super().__init__(graph, name)
        self.inputs, self.parts = tuple(tensors), list(parts)
        self.shape, self.dtype = (), "string"

    @property
    def host_inputs(self) -> tuple:
        """The tensors a Session computes for it (session.py serializes on the host)."""
        return self.inputs

    def from_host(self, values) -> bytes:
        """The serialized Summary, from its inputs' values (NumPy)."""
        summary, start = protos().summary.Summary(), 0
        for _, encode, count in self.parts:
            summary.value.extend(encode(*values[start:start + count]))
            start += count
        return summary.SerializeToString()


# --------------------------------------------------------------------------- naming

_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w.]")


def _clean_tag(name):
    """TF1's: characters other than letters, digits, ``_ - . /`` become ``_``."""
    return None if name is None else _INVALID_TAG_CHARACTERS.sub("_", str(name)).lstrip("/")


def _summary_op(name, family, tensors, encoder, collections):
    """A summary op named as TF1 names it (a unique scope ``family/name``, the op named so,
    the tag the scope, with ``family/`` again in front), added to ``collections``."""
    protos()  # the missing library is named when the op is built
    graph = _graph.get_default_graph()
    name, family = _clean_tag(name), _clean_tag(family)
    with graph.name_scope(name if family is None else f"{family}/{name}") as scope:
        pass
    op_name = scope.rstrip("/")
    tag = op_name if family is None else f"{family}/{op_name}"
    nodes = [convert_to_tensor(t) for t in tensors]
    with graph.name_scope(None):  # the op's name is the scope's exactly
        op = SummaryOp(op_name, nodes, [(tag, encoder(tag), len(nodes))], graph)
    add_to_collections(list(collections or [GraphKeys.SUMMARIES]), op)
    return op


def _static_check(node, what, ok):
    if node.shape is not None and not ok(node.shape):
        raise ValueError(f"{what}; {node.label} has shape {node.shape}")


# --------------------------------------------------------------------------- summary ops


def scalar(name, tensor, collections=None, family=None):
    """A Summary with one ``simple_value``: the value of the scalar ``tensor``."""
    tensor = convert_to_tensor(tensor)
    _static_check(tensor, f"tf.summary.scalar({name!r}) takes a scalar", lambda s: s == ())

    def encoder(tag):
        def encode(value):
            if np.ndim(value) != 0:
                raise ValueError(f"tf.summary.scalar {tag!r}: tags and values are not the "
                                 f"same shape: [] != {list(np.shape(value))}")
            return [protos().summary.Summary.Value(tag=tag, simple_value=float(value))]
        return encode

    return _summary_op(name, family, [tensor], encoder, collections)


def histogram(name, values, collections=None, family=None):
    """A Summary with a histogram of ``values`` in TF1's buckets (limits ±1e-12 growing
    by 10% up to ±1e20, and 0; runs of empty buckets merged as TF1 writes them)."""

    def encoder(tag):
        return lambda array: [protos().summary.Summary.Value(tag=tag, histo=_histogram(tag, array))]

    return _summary_op(name, family, [values], encoder, collections)


def image(name, tensor, max_outputs=3, collections=None, family=None):
    """A Summary with up to ``max_outputs`` PNG images of the ``[batch, height, width,
    channels]`` tensor (1, 3 or 4 channels): uint8 as is, floats scaled per image as TF1's
    (to 255 at the largest where none is negative, else 0 at 128 and 127 for the largest
    magnitude; NaN and infinity red). Tags ``name/image/<i>``, or ``name/image`` for one."""
    tensor = convert_to_tensor(tensor)
    _static_check(tensor, f"tf.summary.image({name!r}) takes a 4-D tensor with 1, 3 or 4 "
                  "channels", lambda s: len(s) == 4 and s[3] in (1, 3, 4, None))
    if tensor.dtype not in (None, "uint8", "float16", "float32", "float64"):
        raise TypeError(f"tf.summary.image({name!r}) takes uint8, float16, float32 or "
                        f"float64 images; {tensor.label} is {tensor.dtype}: cast it")

    def encoder(tag):
        def encode(batch):
            if batch.ndim != 4 or batch.shape[3] not in (1, 3, 4):
                raise ValueError(f"tf.summary.image {tag!r}: the tensor must be 4-D with last "
                                 f"dim 1, 3, or 4, not {list(batch.shape)}")
            return [_image_value(_numbered(tag, "image", i, max_outputs), picture)
                    for i, picture in enumerate(batch[:max_outputs])]
        return encode

    return _summary_op(name, family, [tensor], encoder, collections)


def _numbered(tag, kind, i, max_outputs):
    """TF1's tag of output ``i``: it depends on the number asked for, not the number made."""
    return f"{tag}/{kind}/{i}" if max_outputs > 1 else f"{tag}/{kind}"


def _image_value(tag, picture):
    try:
        from PIL import Image
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"tf.summary.image encodes PNG with Pillow: {EXTRA}",
                                  name=error.name) from error
    height, width, depth = picture.shape
    if picture.dtype != np.uint8:
        picture = _normalized(picture)
    buffer = io.BytesIO()
    Image.fromarray(picture[..., 0] if depth == 1 else picture).save(buffer, format="PNG")
    return protos().summary.Summary.Value(tag=tag, image=protos().summary.Summary.Image(
        height=height, width=width, colorspace=depth, encoded_image_string=buffer.getvalue()))


def _normalized(picture):
    """TF1's float image to uint8 (summary_image_op.cc), in the image's own precision."""
    finite = np.isfinite(picture).all(axis=-1)
    seen = picture[finite]
    low = float(seen.min()) if seen.size else np.inf
    high = float(seen.max()) if seen.size else -np.inf
    dtype = picture.dtype.type
    if low < 0:
        largest = max(abs(low), abs(high))
        scale, offset = (0.0 if largest < 1e-6 else np.float32(127.0) / np.float32(largest)), 128
    else:
        scale, offset = (0.0 if high < 1e-6 else np.float32(255.0) / np.float32(high)), 0
    with np.errstate(invalid="ignore"):
        out = (picture * dtype(scale) + dtype(offset)).astype(np.uint8)
    out[~finite] = np.array([255, 0, 0, 255], np.uint8)[:picture.shape[-1]]
    return out


def audio(name, tensor, sample_rate, max_outputs=3, collections=None, family=None):
    """A Summary with up to ``max_outputs`` 16-bit WAV clips of the ``[batch, frames,
    channels]`` (or ``[batch, frames]``) float tensor, values in [-1, 1]."""

    def encoder(tag):
        def encode(clips, rate):
            if clips.ndim not in (2, 3):
                raise ValueError(f"tf.summary.audio {tag!r}: the tensor must be 3-D or 2-D, "
                                 f"got {list(clips.shape)}")
            clips = clips[..., None] if clips.ndim == 2 else clips
            return [_audio_value(_numbered(tag, "audio", i, max_outputs), clip, float(rate))
                    for i, clip in enumerate(clips[:max_outputs])]
        return encode

    return _summary_op(name, family, [tensor, sample_rate], encoder, collections)


def _audio_value(tag, clip, rate):
    if rate <= 0:
        raise ValueError(f"tf.summary.audio {tag!r}: sample_rate must be > 0, not {rate}")
    scaled = np.asarray(clip, np.float32) * np.float32(32768)
    samples = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -32768, 32767)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(clip.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(max(1, round(rate)))
        wav.writeframes(samples.astype("<i2").tobytes())
    return protos().summary.Summary.Value(tag=tag, audio=protos().summary.Summary.Audio(
        sample_rate=rate, num_channels=clip.shape[1], length_frames=clip.shape[0],
        encoded_audio_string=buffer.getvalue(), content_type="audio/wav"))


def text(name, tensor, collections=None):
    """A Summary for TensorBoard's text tab: ``tensor`` is ``tf.constant`` of a string (or
    of a list of them), or the Python string itself."""
    if not isinstance(tensor, TextConstant):
        if isinstance(tensor, Node):
            raise TypeError(f"tf.summary.text({name!r}) takes a string tensor; "
                            f"{tensor.label} is {tensor.dtype} (xpnn computes no strings: "
                            "give tf.constant of the text)")
        tensor = TextConstant(tensor)
    strings = tensor.strings

    def encoder(tag):
        def encode():
            p = protos()
            shape = p.shape.TensorShapeProto(
                dim=[p.shape.TensorShapeProto.Dim(size=n) for n in strings.shape])
            plugin = p.summary.SummaryMetadata.PluginData(plugin_name="text")
            return [p.summary.Summary.Value(
                tag=tag, metadata=p.summary.SummaryMetadata(plugin_data=plugin),
                tensor=p.tensor.TensorProto(dtype="DT_STRING", tensor_shape=shape,
                                            string_val=strings.reshape(-1).tolist()))]
        return encode

    return _summary_op(name, None, [], encoder, collections)


def merge(inputs, collections=None, name=None):
    """One summary op holding the values of every summary op in ``inputs``."""
    inputs = list(inputs)
    for summary in inputs:
        if not isinstance(summary, SummaryOp):
            raise TypeError(f"tf.summary.merge takes summary ops (tf.summary.scalar...), not "
                            f"{getattr(summary, 'label', summary)!r}")
    parts = [part for summary in inputs for part in summary.parts]
    tags = [tag for tag, _, _ in parts]
    if len(set(tags)) < len(tags):
        twice = next(tag for tag in tags if tags.count(tag) > 1)
        raise ValueError(f"tf.summary.merge: duplicate tag {twice!r} in its inputs; merge "
                         "each summary once")
    graph = inputs[0].graph if inputs else _graph.get_default_graph()
    with graph.name_scope(name or "Merge"):
        op = SummaryOp(name or "MergeSummary", [t for s in inputs for t in s.inputs], parts,
                       graph)
    add_to_collections(list(collections or []), op)
    return op


def merge_all(key=GraphKeys.SUMMARIES, scope=None, name=None):
    """``merge`` of the summary ops in collection ``key`` (under ``scope``), or None when
    there are none."""
    found = get_collection(key, scope=scope)
    return merge(found, name=name) if found else None


__all__ = ["scalar", "histogram", "image", "audio", "text", "merge", "merge_all",
           "FileWriter", "FileWriterCache", "Summary", "Event", "SessionLog"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.summary")
