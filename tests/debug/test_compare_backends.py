"""xn.debug.compare_backends: the built-in models agree across the backends under test,
and a kernel, a gradient or an integer op planted wrong is named, node and devices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn
from xpnn import ops
from xpnn.debug import __main__ as cli
from xpnn.debug import models
from xpnn.devices.numpy import fusion
from xpnn.devices.numpy import kernels as numpy_kernels


def devices_for(dev) -> list:
    """The CPU's NumPy and ``dev`` (``dev`` alone where it is NumPy)."""
    return [dev] if dev.backend == "numpy" else ["cpu", dev]


def first_of(graph, op_type, backward=False):
    """The first node of ``op_type`` in ``graph`` (of the gradients' graph: ``backward``)."""
    return next(n for n in graph.nodes if getattr(n, "type", None) == op_type
                and (n.gradient_of is not None) == backward)


def off_by(factor, fn):
    """``fn``, its (floating) results times ``factor``."""
    def wrong(*args, **kwargs):
        return fn(*args, **kwargs) * factor

    return wrong


@pytest.mark.parametrize("model", models.MODELS)
def test_the_models_agree_across_devices_both_ways(dev, model):
    graph, loss, feed = models.build(model)
    report = xn.debug.compare_backends(loss, feed, devices=devices_for(dev), graph=graph,
                                       passes="both")
    assert report.ok, str(report)
    assert report.first is None and report.backward > 0 and report.compared > report.backward
    assert "all agree" in str(report)


def test_a_wrong_kernel_in_a_pass_is_named(monkeypatch):
    make = numpy_kernels.FORWARD[ops.MatMul]
    monkeypatch.setitem(numpy_kernels.FORWARD, ops.MatMul,
                        lambda op, portable: off_by(np.float32(1.001), make(op, portable)))
    graph, loss, feed = models.build("mlp")
    report = xn.debug.compare_backends(loss, feed, devices=["cpu"], graph=graph,
                                       passes="both")
    first = report.first
    assert not report.ok and first.node is first_of(graph, "MatMul")
    assert (first.op_type, first.backward, first.reason) == ("MatMul", False, "values")
    assert first.devices == ["cpu"] and first.agree == ["cpu/portable"] and not first.majority
    assert "cpu disagrees with cpu/portable (no majority tells which is right)" in str(report)
    assert first.path == ["x", first.name]
    assert [i[1:] for i in first.inputs] == [((8, 20), "float32"), ((20, 32), "float32")]
    entry = first.worst[0]
    portable, passes = entry.values["cpu/portable"], entry.values["cpu"]
    assert passes == pytest.approx(portable * 1.001, rel=1e-5)
    assert entry.abs_diff == pytest.approx(abs(passes - portable))
    assert f"first differing node: {first.name} (MatMul, forward)" in str(report)


def test_a_wrong_fused_kernel_shows_in_the_run_of_the_fetches_alone(monkeypatch):
    """The ReLU's gradient folded into the max-pool's (a fusion of the NumPy pass) happens
    only where the intermediates are not fetched: it is caught there, at the fetch."""
    monkeypatch.setattr(fusion, "_passed_on", lambda g, y: g * np.float32(1.01))
    graph, loss, feed = models.build("cnn")
    report = xn.debug.compare_backends(loss, feed, devices=["cpu"], graph=graph,
                                       passes="both")
    assert not report.ok and report.first.fetches_only
    assert report.first.node.gradient_of is first_of(graph, "Conv2D")  # the filters' gradient
    assert "in the run of the fetches alone" in str(report)


@pytest.mark.backends("array_api_strict", "torch", "jax")
def test_a_wrong_gradient_on_one_backend_is_named(dev, monkeypatch):
    forward = ops.ReluGrad.forward
    monkeypatch.setattr(ops.ReluGrad, "forward", lambda op, xp, *values: (
        off_by(1.01, forward)(op, xp, *values) if xp is dev.xp else forward(op, xp, *values)))
    graph, loss, feed = models.build("mlp")
    report = xn.debug.compare_backends(loss, feed, devices=["cpu", dev, "cupy_standin"],
                                       graph=graph, passes=False)
    first = report.first
    assert first.node is first_of(graph, "ReluGrad", backward=True)
    assert first.backward and first.gradient_of == first_of(graph, "Relu").label
    assert first.devices == [f"{dev.backend}:{dev.name}/portable"]
    assert first.agree == ["cpu/portable", "cupy_standin/portable"] and first.majority
    assert first.path[0] == "x" and first_of(graph, "Relu").label in first.path
    assert f"gradient of {first.gradient_of}" in str(report)


@pytest.mark.backends("array_api_strict", "torch", "jax")
def test_an_integer_mismatch_is_named_exactly(dev, monkeypatch):
    forward = ops.Add.forward

    def add(op, xp, a, b):
        out = forward(op, xp, a, b)
        return out + 1 if xp is dev.xp and not xp.isdtype(out.dtype, "real floating") else out

    monkeypatch.setattr(ops.Add, "forward", add)
    with xn.Graph().as_default() as graph:
        x = xn.placeholder("float32", (None, 3), name="x")
        k = xn.placeholder("int32", (None,), name="k")
        picked = xn.argmax(x * 2.0, axis=1) + k
    feed = {x: np.arange(12, dtype=np.float32).reshape(4, 3), k: np.arange(4, dtype=np.int32)}
    report = xn.debug.compare_backends(picked, feed, devices=["cpu", dev], graph=graph,
                                       passes=False)
    first = report.first
    assert first.node is picked and first.tolerance == (0.0, 0.0)
    assert len(report.disagreements) == 1  # the float product before it agrees
    assert [e.abs_diff for e in first.worst] == [1.0, 1.0, 1.0]


def test_an_optimizer_step_is_compared_by_its_gradients_and_changes_nothing():
    graph, loss, feed = models.build("mlp")
    with graph.as_default():
        step = xn.train.AdamOptimizer(0.1).minimize(loss)
        sess = xn.Session(graph=graph)
    before = {v: sess.run(v, to_numpy=True) for v in graph.variables}
    report = xn.debug.compare_backends([loss, step], feed, devices=["cpu", "device1"],
                                       session=sess)
    assert report.ok and report.backward > 0
    assert all(np.array_equal(sess.run(v), value) for v, value in before.items())


def test_the_cli_exits_1_on_a_disagreement(monkeypatch, capsys):
    assert cli.main(["compare", "--model", "cnn", "--devices", "cpu,device1"]) == 0
    assert "all agree" in capsys.readouterr().out
    make = numpy_kernels.FORWARD[ops.MatMul]
    monkeypatch.setitem(numpy_kernels.FORWARD, ops.MatMul,
                        lambda op, portable: off_by(np.float32(1.001), make(op, portable)))
    assert cli.main(["compare", "--model", "mlp", "--devices", "cpu", "--passes", "both"]) == 1
    assert "first differing node: MatMul" in capsys.readouterr().out
    assert cli.main(["compare", "--devices", "cpu,nowhere"]) == 2
    assert "unknown device 'nowhere'" in capsys.readouterr().err


def test_python_m_xpnn_debug_compare_runs():
    done = subprocess.run([sys.executable, "-m", "xpnn.debug", "compare", "--model", "lstm",
                           "--devices", "cpu,cupy_standin", "--passes", "both"],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])  # this checkout's xpnn
    assert done.returncode == 0, done.stderr
    assert "model lstm, batch 8: compare_backends over cpu/portable, cpu," in done.stdout


@pytest.mark.parametrize("example", ["mnist_mlp", "mnist_cnn"])
def test_the_mnist_examples_compare_one_batch_before_training(dev, example, capsys):
    from tests.test_examples import load

    devices = f"cpu,{dev.backend}:{dev.name}"
    result = load(example).main(["--synthetic", "--limit", "32", "--epochs", "1",
                                 "--batch-size", "16", "--quiet", "--compare", devices])
    report = result["compare"]
    assert report.ok and report.devices == devices.split(",") and report.backward > 0
    out = capsys.readouterr().out
    assert out.index(str(report)) < out.index("epoch 1/1")


def test_bad_arguments_are_refused_naming_what_to_give():
    graph, loss, feed = models.build("mlp")
    before = len(graph.nodes)
    with pytest.raises(ValueError, match="passes must be True, False or 'both', got 'yes'"):
        xn.debug.compare_backends(loss, feed, devices=["cpu", "device1"], passes="yes")
    with pytest.raises(ValueError, match="1 run to compare; give two devices or more, or "
                                         "passes='both'"):
        xn.debug.compare_backends(loss, feed, devices=["cpu"])
    with pytest.raises(ValueError, match="device 'cpu' is given twice"):
        xn.debug.compare_backends(loss, feed, devices=["cpu", "device1", "cpu"])
    with pytest.raises(ValueError, match="unknown device 'gpu7'.*'backend:device'"):
        xn.debug.compare_backends(loss, feed, devices=["cpu", "gpu7"])
    with xn.Graph().as_default():
        stray = xn.placeholder(name="stray")
    with pytest.raises(ValueError, match="stray is not in the graph compared .the first "
                                         "fetch's graph.: pass graph="):
        xn.debug.compare_backends(loss, {**feed, stray: 1.0}, devices=["cpu", "device1"])
    with pytest.raises(TypeError, match="cannot fetch a str"):
        xn.debug.compare_backends("loss", feed, devices=["cpu", "device1"])
    assert len(graph.nodes) == before  # refused before the gradients were built


def test_device_arrays_are_fed_to_every_device_as_host_data(dev):
    graph, loss, feed = models.build("mlp")
    on_dev = {p: dev.from_host(v) for p, v in feed.items()}
    report = xn.debug.compare_backends(loss, on_dev, devices=["cpu", "device1"])
    assert report.ok and report.compared > report.backward > 0
