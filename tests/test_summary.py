"""``xn.summary``: xpnn's own programs write TensorBoard event files (scalars, histograms,
the graph) that TensorBoard's reader reads back; without tensorboardX the error names the
extra. (``tf.summary`` of xpnn.compat.v1, built on it: tests/compat/test_compat_v1_summary.py.)
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import xpnn as xn


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None
                    or importlib.util.find_spec("tensorboard") is None,
                    reason="tensorboardX and tensorboard are not both installed "
                           "(pip install xpnn[summary] tensorboard)")
def test_a_training_loop_logs_scalars_histograms_and_the_graph(dev, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with xn.Graph().as_default() as graph:
        x = xn.placeholder(shape=(None, 2), name="x")
        w = xn.Variable(np.float32([[0.5], [-1.0]]), name="w")
        loss = xn.reduce_mean(xn.square(x @ w - 1.0))
        train = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
    session = xn.Session(graph=graph, device=dev)
    data = np.float32([[1.0, 2.0], [3.0, -1.0]])
    losses = []
    with xn.summary.FileWriter(tmp_path, graph=graph) as writer:
        for step in range(3):
            value, weights, _ = session.run([loss, w, train], {x: data})
            writer.add_scalar("loss", xn.to_numpy(value), step)
            writer.add_histogram("w", weights, step)  # a device array: brought to the host
            losses.append(float(xn.to_numpy(value)))
    found = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0}).Reload()
    scalars = found.Scalars("loss")
    assert [e.step for e in scalars] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in scalars], losses, rtol=1e-6)  # float32
    assert [e.histogram_value.num for e in found.Histograms("w")] == [2, 2, 2]
    nodes = {node.name: node for node in found.Graph().node}
    assert nodes["x"].op == "Placeholder" and nodes["w"].op == "VariableV2"
    (matmul,) = [n for n in nodes.values() if n.op == "MatMul"]
    assert list(matmul.input) == ["x", "w"]


def test_without_tensorboardx_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if absent
    monkeypatch.setitem(sys.modules, "tensorboardX.proto", None)
    xn.summary.protos.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match=r"pip install xpnn\[summary\]"):
            xn.summary.FileWriter(tmp_path / "never-made")
    finally:
        xn.summary.protos.cache_clear()
    assert not (tmp_path / "never-made").exists()
