"""Issue 13's "CuPy: correct before it is fast" list: each fix with a test that catches it on
a GPU machine (``pytest --xp cupy``, run by benchmarks/gpu_check.sh) and, where a stand-in
exists, here: the backend fixture's array-api-strict on Device("device1") or PyTorch's
mutable tensors, a monkeypatched device that skips the label check, a fake CuPy under
unified memory. The tests that need CuPy itself (no host synchronisation in a training
step, a second GPU, unified memory) skip with the reason elsewhere."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import _unavailable, skip_or_fail
from xpnn import data, io, ops
from xpnn import plan as plans
from xpnn.devices.cupy import CupyDevice
from xpnn.host import to_numpy
from xpnn.nn import classifier, loop

F32 = np.float32
LOGITS = np.array([[2.0, -1.0, 0.5], [0.3, 0.1, -2.0], [-1.0, 1.5, 1.0]], F32)


def _cupy(gpus=1):
    """CuPy, or a skip saying why it cannot run here (a failure with XPNN_REQUIRE_CUPY=1,
    except for want of a second GPU)."""
    reason = _unavailable("cupy")
    if reason:
        skip_or_fail(f"cupy: {reason}", cupy=True)
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    if count < gpus:
        pytest.skip(f"needs {gpus} CUDA devices, this machine has {count}")
    return cupy


def _log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------------- 1. device labels


def test_sparse_ce_takes_labels_of_any_backend(dev):
    """labels given as an array of the Session's backend (a CuPy array on a GPU) become an
    integer constant through the backend's own host transfer: np.asarray refuses CuPy
    arrays (and array-api-strict's on device1)."""
    labels = np.array([0, 2, 1])
    with xn.Graph().as_default():
        loss = xn.losses.sparse_softmax_cross_entropy(dev.from_host(labels, "int64"),
                                                      LOGITS, "none")
        got = xn.Session(device=dev).run(loss, to_numpy=True)
    expected = -_log_softmax(LOGITS.astype(np.float64))[np.arange(3), labels]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# --------------------------------------------------------------- 2. out-of-range labels, NaN


def _ce_graph():
    y = xn.placeholder("int64", shape=(None,), name="y")
    z = xn.Variable(LOGITS, name="z")
    per_row = xn.losses.sparse_softmax_cross_entropy(y, z, "none")
    (grad,) = xn.gradients(xn.reduce_sum(per_row), [z])
    return y, z, per_row, grad


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_unchecked_out_of_range_label_gives_nan_loss_and_gradient(dev, monkeypatch, bad):
    """Where reading labels would synchronise the device (CuPy, CUDA tensors) they are not
    checked; CuPy's gather wraps the index, so the loss would pick logits[bad % 3] while the
    gradient's one-hot row is zero. Instead that row's loss and gradient are NaN, and the
    good rows are untouched. Here every backend is made to skip the check."""
    monkeypatch.setattr(type(dev), "reads_without_sync", False)

    def read(*args):
        raise AssertionError("the labels were read on the host")

    monkeypatch.setattr(ops, "check_label_values", read)
    with xn.Graph().as_default():
        y, _, per_row, grad = _ce_graph()
        sess = xn.Session(device=dev)
        labels = dev.from_host(np.array([0, bad, 1]), "int64")
        loss, g = sess.run([per_row, grad], {y: labels}, to_numpy=True)
        g_alone = sess.run(grad, {y: labels}, to_numpy=True)  # a training step's plan
    p = np.exp(_log_softmax(LOGITS.astype(np.float64)))
    good = [0, 2]
    assert np.isnan(loss[1]) and np.all(np.isnan(g[1])) and np.all(np.isnan(g_alone[1]))
    np.testing.assert_allclose(loss[good], -np.log(p[good, [0, 1]]), rtol=1e-5)
    expected = p[good] - np.eye(3)[[0, 1]]
    np.testing.assert_allclose(g[good], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_alone[good], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 3])
def test_checked_out_of_range_label_still_raises(dev, bad):
    """Where the labels read for free (on the CPU or device1) a bad label keeps its clear
    error, for the loss and for a training step. Where they are not read (CuPy, its
    stand-in) the loss's row is NaN, and the step writes NaN into that row of the logits
    only: the other rows' gradients do not read it."""
    with xn.Graph().as_default():
        y, z, per_row, _ = _ce_graph()
        step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_mean(per_row))
        sess = xn.Session(device=dev)
        feed = {y: dev.from_host(np.array([0, bad, 1]), "int64")}
        if not dev.reads_without_sync:
            loss = sess.run(per_row, feed, to_numpy=True)
            sess.run(step, feed)
            after = sess.run(z, to_numpy=True)
            assert np.isnan(loss[1]) and np.isfinite(loss[[0, 2]]).all()
            assert np.isnan(after[1]).all() and np.isfinite(after[[0, 2]]).all()
            return
        for fetch in (per_row, step):
            with pytest.raises(ValueError, match=rf"class indices in \[0, 3\), got {bad}"):
                sess.run(fetch, feed)
        np.testing.assert_array_equal(sess.run(z, to_numpy=True), LOGITS)


# ------------------------------------------------------------- 3. no live buffer handed out


def test_fetched_constants_and_variables_are_never_live(dev):
    """A fetched constant, Variable, or view of one is the caller's own array: writing into
    it changes no later run, and a training step changes no array fetched before it. The
    NumPy session copied such fetches; CuPy and PyTorch returned the cached constant and
    the live Variable (array-api-strict arrays are mutable too). On JAX ``+=`` rebinds."""
    with xn.Graph().as_default():
        c = xn.constant(np.arange(3, dtype=F32))
        w = xn.Variable(np.ones((2, 3), F32), name="w")
        view = ops.Reshape(w, (6,))
        step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * c))
        sess = xn.Session(device=dev)
        first_c, first_w, first_view = sess.run([c, w, view])
        got = sess.get_value(w)
        for fetched in (first_c, first_w, first_view, got):
            fetched += 10.0
        np.testing.assert_array_equal(sess.run(c, to_numpy=True), np.arange(3))
        np.testing.assert_array_equal(sess.run(w, to_numpy=True), np.ones((2, 3)))
        before, before_view = sess.run(w), sess.run(view)
        sess.run(step)
        np.testing.assert_array_equal(to_numpy(before), np.ones((2, 3)))
        np.testing.assert_array_equal(to_numpy(before_view), np.ones(6))
        np.testing.assert_array_equal(sess.run(w, to_numpy=True),
                                      np.ones((2, 3)) - 0.5 * np.arange(3))


def test_only_results_that_may_share_a_kept_buffer_are_copied(dev):
    """The copies cost nothing for an op's fresh result (a loss, logits): only a fetch that
    is (a view of) a Variable or a constant is copied on a device with mutable arrays."""
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3), name="x")
        w = xn.Variable(np.ones((3, 2), F32), name="w")
        logits = xn.matmul(x, w)
        sess = xn.Session(device=dev)
        sess.run([logits, w, ops.Transpose(w)], {x: np.ones((1, 3), F32)})
        executor = next(iter(sess._executors.values()))
    plan, copies = executor.plan, executor.copies
    assert plans.shared_fetches(plan) == set(plan.fetch_slots[1:])
    assert plan.fetch_slots[0] not in copies
    assert set(plan.fetch_slots[1:]) <= copies if dev.mutable else not copies


# ------------------------------------------------------------- 4. batches on the array's GPU


def test_batches_and_one_hot_run_under_the_arrays_device_context(dev, monkeypatch):
    """CuPy makes new arrays and runs kernels on the current GPU, whatever device the
    inputs live on: data.batches and one_hot enter the array's device (context_of) for
    their take and arange. Stand-in: a recording context and a take/arange that checks."""
    inside = []

    class Recording:  # reusable, as CuPy's Device and nullcontext are
        def __enter__(self):
            inside.append(True)

        def __exit__(self, *exc):
            inside.pop()

    monkeypatch.setattr(data, "context_of", lambda array: Recording())
    calls = []
    for name in ("take", "arange"):
        original = getattr(dev.xp, name)

        def checked(*args, _original=original, _name=name, **kw):
            calls.append((_name, bool(inside)))
            return _original(*args, **kw)

        monkeypatch.setattr(dev.xp, name, checked)
    X = dev.from_host(np.arange(12, dtype=F32).reshape(6, 2))
    y = dev.from_host(np.arange(6) % 3, "int64")
    got = [(to_numpy(a), to_numpy(b)) for a, b in data.batches(X, y, 4, seed=0)]
    hot = to_numpy(data.one_hot(y, 3))
    order = np.random.default_rng(0).permutation(6)
    np.testing.assert_array_equal(np.concatenate([a for a, _ in got]),
                                  np.arange(12).reshape(6, 2)[order])
    np.testing.assert_array_equal(hot, np.eye(3)[np.arange(6) % 3])
    assert "take" in {name for name, _ in calls}  # arange too, where y is not NumPy's
    assert all(ok for _, ok in calls), calls


def test_batches_one_hot_and_training_on_a_second_gpu():
    """cuda:1 beside a current cuda:0: every batch and one-hot stays on device 1, and a
    model trained there keeps its Variables there."""
    cupy = _cupy(gpus=2)
    X, y = xn.data.make_blobs(n_per_class=40, seed=0)
    with cupy.cuda.Device(1):
        Xd, yd = cupy.asarray(X), cupy.asarray(y)
    with cupy.cuda.Device(0):
        batches = list(data.batches(Xd, yd, 16, seed=0))
        hot = data.one_hot(yd, 2)
        assert all(a.device.id == 1 and b.device.id == 1 for a, b in batches)
        assert hot.device.id == 1
        order = np.random.default_rng(0).permutation(len(X))
        np.testing.assert_array_equal(np.concatenate([a.get() for a, _ in batches]), X[order])
        model = xn.nn.NNClassifier([2, 8, 2], device="cuda:1", seed=0)
        history = model.fit(Xd, yd, epochs=5, batch_size=16, learning_rate=0.3, verbose=0)
        assert history["accuracy"][-1] > 0.9
        assert all(layer.W.device.id == 1 for layer in model.layers)


# ------------------------------------------------------------ 5. from_host(copy=True) copies


class _MappedHost:
    """A fake CuPy namespace under unified memory (CUPY_ENABLE_UMP=1): asarray maps the
    host array itself, as CuPy's zero-copy path does even for cupy.array(copy=True)."""

    @staticmethod
    def asarray(host):
        return np.asarray(host)


def test_cupy_from_host_copy_shares_no_memory_under_unified_memory():
    device = CupyDevice("cuda:0", _MappedHost(), contextlib.nullcontext())
    host = np.arange(4, dtype=F32)
    kept = device.from_host(host, "float32", copy=True)
    assert not np.shares_memory(kept, host)
    host += 1.0
    np.testing.assert_array_equal(kept, np.arange(4))


def test_cupy_from_host_copies_fed_arrays_under_unified_memory(monkeypatch):
    """A fed array (``copy=False``) too: CuPy's kernels may still read it after ``run``
    returns, when the user writes the next batch into it."""
    device = CupyDevice("cuda:0", _MappedHost(), contextlib.nullcontext())
    host = np.arange(4, dtype=F32)
    monkeypatch.setenv("CUPY_ENABLE_UMP", "1")
    fed = device.from_host(host, "float32")
    monkeypatch.setenv("CUPY_ENABLE_UMP", "0")
    assert not np.shares_memory(fed, host)
    assert np.shares_memory(device.from_host(host, "float32"), host)  # no copy without UMP


def test_from_host_copy_shares_no_memory(dev):
    host = np.arange(4, dtype=F32)
    kept = dev.from_host(host, "float32", copy=True)
    host += 1.0
    np.testing.assert_array_equal(to_numpy(kept), np.arange(4))


def test_variables_do_not_share_memory_with_the_host_under_unified_memory(tmp_path):
    """The real thing, in a fresh interpreter with CUPY_ENABLE_UMP=1 (CuPy reads it at
    import): a Variable and set_value never see later writes to the user's array."""
    _cupy()
    script = textwrap.dedent("""
        import numpy as np, xpnn as xn
        host = np.arange(4, dtype=np.float32)
        with xn.Graph().as_default():
            w = xn.Variable(host, name="w")
            sess = xn.Session(device="cuda")
            sess.run(w)
            fed = np.full(4, 5.0, np.float32)
            v = xn.Variable(np.zeros(4, np.float32), name="v")
            sess.set_value(v, fed)
            host += 1.0; fed += 1.0
            assert sess.run(w, to_numpy=True).tolist() == [0, 1, 2, 3]
            assert sess.run(v, to_numpy=True).tolist() == [5] * 4
        batch = np.zeros(3, np.float32)  # a fed array: copied too
        on_gpu = xn.devices.resolve("cuda").from_host(batch)
        batch += 1.0
        assert on_gpu.get().tolist() == [0, 0, 0]
    """)
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "CUPY_ENABLE_UMP": "1", "PYTHONPATH": root}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# ---------------------------------------------------------------- 6. saving device arrays


def test_save_arrays_takes_arrays_of_any_backend(dev, tmp_path):
    w = np.arange(6, dtype=F32).reshape(2, 3)
    io.save_arrays(tmp_path / "w.npz", {"w": dev.from_host(w), "n": dev.from_host(np.int64(3))})
    loaded = io.load_arrays(tmp_path / "w.npz")
    np.testing.assert_array_equal(loaded["w"], w)
    assert loaded["w"].dtype == F32 and loaded["n"].tolist() == 3


# ------------------------------------------------------------------- 7. host syncs in a step


def test_clip_and_bce_use_maximum_and_minimum(dev, monkeypatch):
    """array-api-compat's clip selects with boolean masks on CuPy (each one a GPU sync):
    xpnn clips with maximum/minimum. Same values, NaN kept."""

    def refuse(*args, **kw):
        raise AssertionError("xp.clip called")

    monkeypatch.setattr(dev.xp, "clip", refuse)
    x0 = np.array([-2.0, 0.25, 3.0, np.nan], F32)
    p0 = np.array([0.0, 0.3, 1.0], F32)
    y0 = np.array([1.0, 0.0, 0.0], F32)
    with xn.Graph().as_default():
        x, p = xn.Variable(x0, name="x"), xn.Variable(p0, name="p")
        clipped = xn.clip(x, -1.0, 1.0)
        bce = xn.losses.binary_cross_entropy(p, y0, "none")
        gx, gp = xn.gradients([xn.reduce_sum(clipped), xn.reduce_sum(bce)], [x, p])
        values = xn.Session(device=dev).run([clipped, xn.clip(x, None, 0.0), bce, gx, gp],
                                            to_numpy=True)
    c, low_only, loss, dx, dp = values
    np.testing.assert_array_equal(c[:3], [-1.0, 0.25, 1.0])
    np.testing.assert_array_equal(low_only[:3], [-2.0, 0.0, 0.0])
    assert np.isnan(c[3]) and np.isnan(low_only[3])
    np.testing.assert_allclose(loss, [100.0, -np.log(0.7), 100.0], rtol=1e-5)
    np.testing.assert_array_equal(dx[:3], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(dp, (p0 - y0) / np.maximum(p0 * (1 - p0), 1e-12), rtol=1e-5)


def test_epoch_sums_match_the_per_batch_sums(dev):
    """fit's epoch totals, stacked on the device and brought over once, equal the sums of
    the per-batch host values they replace."""
    rng = np.random.default_rng(0)
    values, counts = rng.random(5).astype(F32), rng.integers(0, 32, 5).astype(F32)
    sizes = [32, 32, 32, 32, 7]
    batches = [[dev.from_host(v), dev.from_host(c)] for v, c in zip(values, counts)]
    sess = xn.Session(device=dev)
    loss, hits = loop._epoch_means(sess, batches, sizes)
    rows = sum(sizes)
    np.testing.assert_allclose(loss, sum(float(v) * m for v, m in zip(values, sizes)) / rows,
                               rtol=1e-12)
    np.testing.assert_allclose(hits, sum(float(c) for c in counts) / rows, rtol=1e-12)


def test_fit_brings_epoch_values_to_the_host_once_per_epoch(dev, monkeypatch):
    calls = []
    to_host = type(dev).to_host
    monkeypatch.setattr(type(dev), "to_host", lambda self, a: calls.append(1) or to_host(self, a))
    monkeypatch.setattr(classifier, "to_numpy", lambda a: calls.append(1) or to_numpy(a))
    X, y = xn.data.make_blobs(n_per_class=32, seed=0)
    model = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    calls.clear()
    history = model.fit(X, y, epochs=3, batch_size=8, learning_rate=0.3, verbose=0)
    assert len(calls) <= 1 + 3, f"{len(calls)} host transfers for 3 epochs of 8 batches"
    assert len(history["loss"]) == 3 and all(math.isfinite(v) for v in history["loss"])
    assert history["accuracy"][-1] > 0.9


# ------------------------------------------------ 8. on a GPU: no host sync in a training step


@contextlib.contextmanager
def _no_host_syncs(cupy):
    """A block in which reading a CuPy array on the host fails: cupyx.allow_synchronize
    where CuPy still has it (deprecated since v10), and the host reads by name."""

    def refuse(*args, **kw):
        raise AssertionError("a host synchronisation in a training step")

    import cupyx

    allow = getattr(cupyx, "allow_synchronize", None)
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        for name in ("get", "item", "tolist", "__bool__", "__float__", "__int__",
                     "__index__", "__array__"):
            with contextlib.suppress(AttributeError, TypeError):  # a C type's slot
                mp.setattr(cupy.ndarray, name, refuse)
        mp.setattr(cupy, "asnumpy", refuse)
        warnings.simplefilter("ignore", DeprecationWarning)
        with allow(False) if allow is not None else contextlib.nullcontext():
            yield


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_a_training_step_makes_no_host_synchronisation(optimizer):
    """An MLP step with sparse cross-entropy, a clipped BCE and dropout: no value is read
    on the host (no label check, no clip by boolean masks, no Python scalar)."""
    cupy = _cupy()
    rng = np.random.default_rng(0)
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (None, 4), name="x")
        t = xn.placeholder("int64", (None,), name="t")
        w = xn.Variable(rng.standard_normal((4, 3)).astype(F32), name="w")
        h = xn.dropout(xn.relu(xn.matmul(x, w)), 0.2, True)
        loss = (xn.losses.sparse_softmax_cross_entropy(t, h)
                + xn.losses.binary_cross_entropy(xn.clip(xn.sigmoid(h), 0.0, 1.0), 0.5))
        opt = {"sgd": xn.train.GradientDescentOptimizer(0.1),
               "momentum": xn.train.MomentumOptimizer(0.1, 0.9),
               "adam": xn.train.AdamOptimizer(0.01)}[optimizer]
        step = opt.minimize(loss)
        sess = xn.Session(device="cuda", seed=0)
        feed = {x: cupy.asarray(rng.standard_normal((8, 4)).astype(F32)),
                t: cupy.asarray(rng.integers(0, 3, 8))}
        sess.run([step, loss], feed)  # compiles the plan, makes the Variables
        with _no_host_syncs(cupy):
            for _ in range(3):
                _, value = sess.run([step, loss], feed)
        assert math.isfinite(float(value))
