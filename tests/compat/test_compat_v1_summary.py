"""``tf.summary`` and ``tf.summary.FileWriter`` of ``xpnn.compat.v1``: the event files read
back with TensorBoard's own reader (scalars, histograms, images, audio, text, the graph), TF1's
tags and op names, one Session run per fetch, the clear errors; and, where TensorFlow is
installed, each summary's protobuf against TF1's own. (tests/compat/tf1_programs/summaries.py
holds a training loop's logging to real TensorFlow.)
"""

from __future__ import annotations

import glob
import importlib.util
import io
import sys
import wave

import numpy as np
import pytest

import xpnn as xn
import xpnn.compat.v1 as tf
from xpnn.compat.v1.unsupported import TF1NameError

needs_writer = pytest.mark.skipif(
    importlib.util.find_spec("tensorboardX") is None,
    reason="tensorboardX is not installed (pip install xpnn[summary])")
needs_reader = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None,
    reason="tensorboard is not installed (pip install tensorboard): no event-file reader")

RNG = np.random.default_rng(27)
PIXELS = RNG.integers(0, 256, (2, 3, 4, 3)).astype(np.uint8)
RGBA = RNG.random((1, 2, 3, 4)) * 7.0
CLIP = np.sin(np.linspace(0, 20, 50, dtype=np.float32)).reshape(1, 50, 1) * 0.9


def _logged_model():
    """A regression with every kind of summary; the fetches of one training step."""
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    with tf.name_scope("model"):
        w = tf.Variable(RNG.standard_normal((3, 1)).astype(np.float32), name="w")
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 1.0))
    with tf.name_scope("train"):
        tf.summary.scalar("loss", loss)
    tf.summary.histogram("w", w)
    tf.summary.image("pixels", tf.constant(PIXELS), max_outputs=2)
    tf.summary.audio("clip", tf.constant(CLIP), 8000)
    tf.summary.text("note", tf.constant("hello **TensorBoard**"))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, w, loss, train, tf.summary.merge_all()


@needs_writer
@needs_reader
def test_event_file_reads_back_in_tensorboard(on, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    x, w, loss, train, merged = _logged_model()
    data = RNG.standard_normal((8, 3)).astype(np.float32)
    losses, weights = [], []
    with tf.Session() as sess, tf.summary.FileWriter(str(tmp_path), sess.graph) as writer:
        sess.run(tf.global_variables_initializer())
        for step in range(3):
            summary, _, value, now = sess.run([merged, train, loss, w], {x: data})
            writer.add_summary(summary, step)
            losses.append(value)
            weights.append(now)
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) == 1
    every = {"histograms": 0, "images": 0, "audio": 0, "tensors": 0}  # 0: keep all
    found = EventAccumulator(str(tmp_path), size_guidance=every).Reload()
    tags = found.Tags()
    assert tags["scalars"] == ["train/loss"] and tags["histograms"] == ["w"]
    assert tags["images"] == ["pixels/image/0", "pixels/image/1"]
    assert tags["audio"] == ["clip/audio/0"] and tags["tensors"] == ["note"]
    assert tags["graph"]
    scalars = found.Scalars("train/loss")
    assert [e.step for e in scalars] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in scalars], losses, rtol=1e-6)
    for event, now in zip(found.Histograms("w"), weights):  # read in the run, before the step
        h = event.histogram_value
        assert (h.num, h.min, h.max) == (3, float(now.min()), float(now.max()))
        assert sum(h.bucket) == 3
    for i in range(2):
        (image,) = found.Images(f"pixels/image/{i}")[:1]
        assert (image.height, image.width) == (3, 4)
        from PIL import Image
        decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
        np.testing.assert_array_equal(decoded, PIXELS[i])  # uint8: as is
    with wave.open(io.BytesIO(found.Audio("clip/audio/0")[0].encoded_audio_string)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (8000, 1, 50)
        samples = np.frombuffer(wav.readframes(50), "<i2")
    np.testing.assert_allclose(samples / 32768.0, CLIP.reshape(-1), atol=1 / 32768)
    text = found.Tensors("note")[0].tensor_proto
    assert make_ndarray(text).tolist() == b"hello **TensorBoard**"
    graph = {node.name: node for node in found.Graph().node}
    assert graph["x"].op == "Placeholder" and graph["model/w"].op == "VariableV2"
    (matmul,) = [n for n in graph.values() if n.op == "MatMul"]
    assert list(matmul.input) == ["x", "model/w"]
    assert [d.size for d in graph["x"].attr["_output_shapes"].list.shape[0].dim] == [-1, 3]


@needs_writer
def test_a_summary_is_computed_in_the_same_session_run(on, monkeypatch):
    x, w, loss, train, merged = _logged_model()
    runs = []
    engine_run = xn.Session.run
    monkeypatch.setattr(xn.Session, "run", lambda self, *a, **k: runs.append(1) or engine_run(
        self, *a, **k))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        runs.clear()
        summary, _, value = sess.run([merged, train, loss], {x: np.ones((2, 3), np.float32)})
    assert len(runs) == 1 and isinstance(summary, bytes)
    assert tf.Summary.FromString(summary).value[0].simple_value == pytest.approx(value)


@needs_writer
def test_tags_op_names_and_collections_are_tf1s(on):
    x = tf.placeholder(tf.float32, [], name="x")
    with tf.name_scope("train"):
        first = tf.summary.scalar("loss", x)
        again = tf.summary.scalar("loss", x)
        family = tf.summary.scalar("loss", x, family="fam")
    odd = tf.summary.scalar("a b:c", x)
    with tf.variable_scope("vs"):
        scoped = tf.summary.scalar("x", x)
    mine = tf.summary.scalar("own", x, collections=["mine"])
    assert [s.name for s in (first, again, family, odd, scoped, mine)] == [
        "train/loss", "train/loss_1", "train/fam/loss", "a_b_c", "vs/x", "own"]
    assert tf.get_collection(tf.GraphKeys.SUMMARIES) == [first, again, family, odd, scoped]
    merged, merged_again = tf.summary.merge_all(), tf.summary.merge([mine])
    named = tf.summary.merge([mine], name="both")
    assert (merged.name, merged_again.name, named.name) == (
        "Merge/MergeSummary", "Merge_1/MergeSummary", "both/both")
    assert tf.summary.merge_all("nothing") is None
    assert tf.summary.merge_all(scope="train").parts[2][0] == "fam/train/fam/loss"
    with tf.Session() as sess:
        values = tf.Summary.FromString(sess.run(merged, {x: 2.5})).value
    assert [v.tag for v in values] == ["train/loss", "train/loss_1", "fam/train/fam/loss",
                                       "a_b_c", "vs/x"]
    assert {v.simple_value for v in values} == {2.5}


@needs_writer
def test_histogram_buckets_hold_every_value(on):
    values = np.concatenate([RNG.standard_normal(200) * 10.0 ** RNG.integers(-13, 6, 200),
                             [0.0, 1e-12, -1e-12, 1e19]])
    node = tf.summary.histogram("h", tf.constant(values))
    with tf.Session() as sess:
        h = tf.Summary.FromString(sess.run(node)).value[0].histo
    limits, counts = np.array(h.bucket_limit), np.array(h.bucket)
    assert (h.num, h.min, h.max, sum(counts)) == (204, values.min(), values.max(), 204)
    assert np.all(np.diff(limits) > 0) and limits[-1] == sys.float_info.max
    lower = np.concatenate([[-np.inf], limits[:-1]])
    for value in values:  # a bucket holds [its lower limit, its upper limit)
        (where,) = np.nonzero((lower <= value) & (value < limits))
        assert counts[where[0]] >= 1, value
    np.testing.assert_allclose(h.sum_squares, np.sum(values * values), rtol=1e-12)


@needs_writer
def test_file_writer_flush_close_reopen_and_cache(on, tmp_path):
    from xpnn.compat.v1 import events
    from xpnn.compat.v1.events import protos

    acc = tf.Summary(value=[tf.Summary.Value(tag="accuracy", simple_value=0.5)])
    writer = tf.summary.FileWriter(tmp_path / "a", max_queue=100, flush_secs=1000)
    writer.add_summary(acc, global_step=7)
    writer.add_summary(acc.SerializeToString(), 8)
    x = tf.placeholder(tf.float32, [2], name="x")
    graph_def = events.graph_to_graph_def(tf.get_default_graph())
    writer.add_graph(graph_def)  # a GraphDef where TF1 takes a Graph, as TF1 allows
    writer.flush()
    (path,) = glob.glob(str(tmp_path / "a" / "events.out.tfevents.*"))
    if importlib.util.find_spec("tensorboard") is not None:
        read = list(tf.train.summary_iterator(path))
        assert read[0].file_version == "brain.Event:2"
        assert [(e.step, e.summary.value[0].simple_value) for e in read[1:3]] == [(7, .5), (8, .5)]
        graph = protos().graph.GraphDef.FromString(read[3].graph_def)
        assert [(n.name, n.op) for n in graph.node] == [(x.name, "Placeholder")]
    writer.close()
    writer.add_summary(acc, 9)  # after close: dropped, as TF1's
    writer.reopen()  # a new event file (named by the second: this one may replace the first)
    writer.add_summary(acc, 10)
    writer.close()
    if importlib.util.find_spec("tensorboard") is not None:
        steps = {e.step for path in glob.glob(str(tmp_path / "a" / "events.out.tfevents.*"))
                 for e in tf.train.summary_iterator(path)}
        assert 10 in steps and 9 not in steps
    assert writer.get_logdir() == str(tmp_path / "a")
    cached = tf.summary.FileWriterCache.get(str(tmp_path / "b"))
    assert tf.summary.FileWriterCache.get(str(tmp_path / "b")) is cached
    tf.summary.FileWriterCache.clear()
    assert cached._writer is None  # closed


def test_string_constants_fetch_as_bytes(on):
    with tf.Session() as sess:
        one, many = sess.run([tf.constant("hi"), tf.constant(["a", "bc"])])
    assert one == b"hi" and many.tolist() == [b"a", b"bc"]


@needs_writer
def test_bad_summaries_say_what_is_wrong(on, tmp_path):
    with pytest.raises(ValueError, match=r"scalar\('v'\) takes a scalar.*shape \(2,\)"):
        tf.summary.scalar("v", tf.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match="4-D tensor with 1, 3 or 4 channels"):
        tf.summary.image("i", tf.zeros([2, 2, 3]))
    with pytest.raises(TypeError, match="int32: cast it"):
        tf.summary.image("i", tf.zeros([1, 2, 2, 1], tf.int32))
    with pytest.raises(TypeError, match="string tensor.*float32"):
        tf.summary.text("t", tf.zeros([1]))
    p = tf.placeholder(tf.float32, None, name="p")
    scalar, histogram = tf.summary.scalar("p", p), tf.summary.histogram("h", p)
    with pytest.raises(ValueError, match="duplicate tag 'p_1'"):
        tf.summary.merge([scalar, tf.summary.merge([scalar])])
    with pytest.raises(TypeError, match="takes summary ops"):
        tf.summary.merge([p])
    with tf.Session() as sess:
        with pytest.raises(ValueError, match=r"not the same shape: \[\] != \[2\]"):
            sess.run(scalar, {p: [1.0, 2.0]})
        with pytest.raises(ValueError, match="Nan in summary histogram for: h"):
            sess.run(histogram, {p: [1.0, np.nan]})
    with tf.summary.FileWriter(str(tmp_path)) as writer:
        with pytest.raises(TypeError, match="add_summary takes a Summary protobuf"):
            writer.add_summary(3.0)
        with pytest.raises(TypeError, match="add_graph takes an xpnn graph"):
            writer.add_graph("graph")


def test_without_tensorboardx_the_error_names_the_extra(on, monkeypatch):
    from xpnn.compat.v1 import events

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if absent
    monkeypatch.setitem(sys.modules, "tensorboardX.proto", None)
    events.protos.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match=r"pip install xpnn\[summary\]"):
            tf.summary.scalar("loss", tf.constant(1.0))
        with pytest.raises(ModuleNotFoundError, match=r"pip install xpnn\[summary\]"):
            tf.summary.FileWriter("never-made")
        with pytest.raises(ModuleNotFoundError, match=r"pip install xpnn\[summary\]"):
            tf.Summary(value=[])
    finally:
        events.protos.cache_clear()


def test_the_docstring_lists_every_name():
    from tests.compat.test_compat_v1 import _listed

    assert _listed(tf.summary.__doc__, "Its names:") == set(tf.summary.__all__)
    for name in tf.summary.__all__:
        getattr(tf.summary, name)


def test_unsupported_summary_names_raise_tf1_name_errors():
    with pytest.raises(TF1NameError, match="tf.summary.tensor_summary is not in.*scalar"):
        tf.summary.tensor_summary  # noqa: B018
    with pytest.raises(TF1NameError, match="tf.summary.nonsense is not in xpnn.compat.v1"):
        tf.summary.nonsense  # noqa: B018
    assert hasattr(tf.summary, "FileWriter") and hasattr(tf.train, "summary_iterator")


# --------------------------------------------------------------------------- against TF1


def _protos_of(module):
    """Each kind of summary's value, from ``module`` as ``tf``."""
    module.reset_default_graph()
    floats = np.float32([[[[-0.5], [2.0]], [[np.nan], [0.25]]],
                         [[[0.0], [3.0]], [[1.0], [np.inf]]]])
    nodes = [
        module.summary.histogram("ints", module.constant([1, 2, 2, 5, 0, -3])),
        module.summary.histogram("empty", module.zeros([0])),
        module.summary.histogram("wide", module.constant(np.float32([1e-13, -4e3, 7e18, 0.5]))),
        module.summary.image("floats", module.constant(floats)),
        module.summary.image("rgba", module.constant(RGBA), max_outputs=1),
        module.summary.image("bytes", module.constant(PIXELS[:, :, :, :1])),
        module.summary.image("zeros", module.zeros([1, 2, 2, 3])),
        module.summary.audio("clip", module.constant(np.concatenate([CLIP, -CLIP * 1.5])),
                             16000.0, max_outputs=2),
        module.summary.text("notes", module.constant([["a", "b"], ["c", "d"]])),
    ]
    with module.Session() as sess:
        return [module.Summary.FromString(s) for s in sess.run(nodes)]


def test_each_summary_is_tf1s():
    tf1 = pytest.importorskip("tensorflow.compat.v1",
                              reason="TensorFlow is not installed: no TF1 to compare with")
    if importlib.util.find_spec("tensorboardX") is None:
        pytest.skip("tensorboardX is not installed (pip install xpnn[summary])")
    from PIL import Image

    tf1.disable_eager_execution()
    tf.use_device("cpu", backend="numpy")
    try:
        got = _protos_of(tf)
    finally:
        tf.use_device()
    for want, have in zip(_protos_of(tf1), got):
        for a, b in zip(want.value, have.value, strict=True):
            assert a.tag == b.tag
            if a.HasField("image"):  # PNG bytes differ by encoder: compare pixels
                pixels = [np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string)))
                          for v in (a, b)]
                np.testing.assert_array_equal(pixels[1], pixels[0], err_msg=a.tag)
                a.image.ClearField("encoded_image_string")
                b.image.ClearField("encoded_image_string")
            assert a.SerializeToString() == b.SerializeToString(), a.tag
