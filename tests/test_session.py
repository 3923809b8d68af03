"""Session.run: fetch structures, plans, dtypes, Variable state, defaults, and errors that
name what went wrong and change no Variable."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

import xpnn as xn
from xpnn import devices
from xpnn.devices.numpy import kernels


def snapshot(sess):
    """Host copies of every Variable of the session's graph (optimizer slots included)."""
    return {v: xn.to_numpy(sess.get_value(v)).copy() for v in sess.graph.variables}


def assert_unchanged(sess, before):
    after = snapshot(sess)
    assert after.keys() == before.keys()
    for v, value in before.items():
        np.testing.assert_array_equal(after[v], value, err_msg=f"Variable {v.label} changed")


def op_steps(sess):
    """The ops of each cached plan (a Plan's steps end with their op)."""
    return [[step.op for step in plan.steps] for plan in sess._plans.values()]


# --------------------------------------------------------------------------- fetches


def test_fetch_structures(dev):
    Point = collections.namedtuple("Point", "a b")
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0, 2.0], name="w")
        y, z = x * w, x + w
        m = xn.reduce_sum(y)
        sess = xn.Session(device=dev)
        feed = {x: [3.0, 4.0]}
        single = sess.run(y, feed)
        assert dev.owns(single)
        np.testing.assert_array_equal(xn.to_numpy(single), [3.0, 8.0])
        as_list = sess.run([y, z, m], feed, to_numpy=True)
        assert isinstance(as_list, list) and len(as_list) == 3
        assert all(isinstance(a, np.ndarray) for a in as_list)
        np.testing.assert_array_equal(as_list[1], [4.0, 6.0])
        assert as_list[2] == 11.0 and as_list[2].shape == ()
        as_tuple = sess.run((m, y), feed, to_numpy=True)
        assert isinstance(as_tuple, tuple) and as_tuple[0] == 11.0
        nested = sess.run({"loss": m, "parts": [y, (z, w)], "empty": []}, feed, to_numpy=True)
        assert set(nested) == {"loss", "parts", "empty"} and nested["empty"] == []
        assert nested["loss"] == 11.0
        np.testing.assert_array_equal(nested["parts"][1][0], [4.0, 6.0])
        np.testing.assert_array_equal(nested["parts"][1][1], [1.0, 2.0])
        assert isinstance(nested["parts"][1], tuple)
        point = sess.run(Point(m, y), feed, to_numpy=True)
        assert isinstance(point, Point) and point.a == 11.0
        twice = sess.run([y, y], feed, to_numpy=True)
        np.testing.assert_array_equal(twice[0], twice[1])
        np.testing.assert_array_equal(sess.run(x, feed, to_numpy=True), [3.0, 4.0])
        on_device = sess.run([y, {"m": m}], feed)
        assert dev.owns(on_device[0]) and dev.owns(on_device[1]["m"])
        with pytest.raises(TypeError, match="cannot fetch a str"):
            sess.run("y", feed)


def test_plan_is_cached_per_fetches_and_fed_placeholders(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        u = xn.placeholder(name="u")
        w = xn.Variable([1.0, 2.0], name="w")
        y = xn.reduce_sum(xn.square(x * w))
        unused = xn.exp(x) + xn.log(w)  # in the graph, never needed for y
        sess = xn.Session(device=dev)
        results = [sess.run(y, {x: [float(i), 1.0]}, to_numpy=True) for i in range(5)]
        assert [float(r) for r in results] == [(i * 1.0) ** 2 + 4.0 for i in range(5)]
        assert len(sess._plans) == 1
        (plan,) = sess._plans.values()
        sess.run(y, {x: [1.0, 1.0]})
        assert len(sess._plans) == 1 and next(iter(sess._plans.values())) is plan
        steps = [step.op for step in plan.steps]
        assert [type(op).__name__ for op in steps] == ["Multiply", "Square", "ReduceSum"]
        assert unused not in steps and unused.inputs[0] not in steps
        # other fed placeholders or other fetches are other plans
        sess.run(y, {x: [1.0, 1.0], u: 0.0})
        sess.run([y, unused], {x: [1.0, 1.0]})
        assert len(sess._plans) == 3
        assert [len(s) for s in op_steps(sess)] == [3, 3, 6]


def count_lookups(sess, monkeypatch) -> list:
    """A list that grows by one each time ``sess`` looks a run's plan up by its key (a run
    with the last run's fetches and fed placeholders takes the last executor instead)."""
    calls, lookup = [], sess._executor
    monkeypatch.setattr(sess, "_executor", lambda *args: calls.append(args) or lookup(*args))
    return calls


def test_a_repeated_run_skips_the_lookup_and_still_checks_its_feeds(dev, monkeypatch):
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(3,), name="x")
        n = xn.placeholder(dtype="int32", shape=(3,), name="n")
        w = xn.Variable([1.0, 2.0, 3.0], name="w")
        loss = xn.reduce_sum(w * x * xn.cast(n, "float32"))
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev)
    fetches, ones, counts = [step, loss], np.ones(3, np.float32), np.ones(3, np.int32)
    lookups = count_lookups(sess, monkeypatch)
    sess.run(fetches, {x: ones, n: counts})
    sess.run(fetches, {x: ones, n: counts})
    assert len(lookups) == 1  # the second run took the first's executor
    before = snapshot(sess)
    for feed, error, message in [
        ({x: np.ones(4, np.float32), n: counts}, ValueError,
         "placeholder x expects shape (3,) but was fed shape (4,)"),
        ({x: np.ones((1, 3), np.float32), n: counts}, ValueError,
         "placeholder x expects shape (3,) but was fed shape (1, 3)"),
        ({x: ones, n: np.array([0.5, 1.0, 1.0])}, TypeError,
         "placeholder n holds int32 but was fed fractional float64 data"),
        ({x: ones, n: np.array([1, 2**40, 1])}, ValueError,
         "placeholder n holds int32 but was fed the value 1099511627776"),
        ({x: ones, n: np.ones(3, np.complex64)}, TypeError,
         "cannot feed data of dtype complex64"),
    ]:
        with pytest.raises(error, match=re.escape(message)):
            sess.run(fetches, feed)
    assert_unchanged(sess, before)
    # another dtype (float64, a list) is converted as on the first run
    _, value = sess.run(fetches, {x: np.ones(3), n: [1, 1, 1]})
    assert value.dtype == dev.dtype("float32")
    assert len(lookups) == 1


def test_a_changed_fetch_list_or_feed_is_looked_up_anew(dev, monkeypatch):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        u = xn.placeholder(name="u")
        a, b = x * 2.0, x + 10.0
        sess = xn.Session(device=dev)
    lookups = count_lookups(sess, monkeypatch)

    def run(fetches, feed=None):
        out = sess.run(fetches, feed or {x: [1.0]}, to_numpy=True)
        return [float(v[0]) for v in (out.values() if isinstance(out, dict) else out)]

    fetches = [a]
    assert run(fetches) == run(fetches) == [2.0] and len(lookups) == 1
    fetches[0] = b  # the same list, holding another node
    assert run(fetches) == [11.0] and len(lookups) == 2
    fetches.append(a)
    assert run(fetches) == [11.0, 2.0] and len(lookups) == 3
    assert run(fetches, {x: [1.0], u: 0.0}) == [11.0, 2.0] and len(lookups) == 4
    named = {"out": a}
    assert run(named) == run(named) == [2.0] and len(lookups) == 5
    named["out"] = b
    assert run(named) == [11.0] and len(lookups) == 6
    nested = [[a]]  # not told unchanged cheaply: looked up every run, still right
    assert run(nested[0]) == [2.0]
    assert sess.run(nested, {x: [1.0]}, to_numpy=True)[0][0].tolist() == [2.0]
    nested[0][0] = b
    assert sess.run(nested, {x: [1.0]}, to_numpy=True)[0][0].tolist() == [11.0]
    sess.close()
    with pytest.raises(RuntimeError, match="this Session is closed"):
        sess.run(fetches, {x: [1.0]})


class ForwardCounted(xn.Operation):
    """x * 3, counting forward calls; infers its shape only when ``infers`` is set."""

    forwards = 0
    infers = True

    def forward(self, xp, x):
        ForwardCounted.forwards += 1
        return x * 3.0

    def infer_shape(self, shape):
        return shape if ForwardCounted.infers else None

    def backward(self, grad):
        return [grad * 3.0]


@pytest.mark.parametrize("case_", ["infers", "no-shape", "no-static-dtype"])
def test_a_node_read_only_for_its_shape_is_not_computed(dev, case_):
    """mean(f(x)): the gradient needs only f's shape, so a training run never computes f
    where f can tell its shape and its dtype is known before the run; fetching the loss
    computes it."""
    ForwardCounted.forwards, ForwardCounted.infers = 0, case_ != "no-shape"
    with xn.Graph().as_default():
        dtype = None if case_ == "no-static-dtype" else "float32"
        x = xn.placeholder(dtype=dtype, shape=(None, 2), name="x")
        w = xn.Variable([[1.0, 2.0]], name="w")
        loss = xn.reduce_mean(ForwardCounted(x * w))
        step = xn.train.GradientDescentOptimizer(0.5).minimize(loss)
        sess = xn.Session(device=dev)
        feed = {x: [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]}
        sess.run(step, feed)
        assert ForwardCounted.forwards == (0 if case_ == "infers" else 1)
        # d mean(3 x w) / dw_j = 3 * sum_i x_ij / 6 = 3, so w <- w - 0.5 * 3
        new_w = np.array([[1.0, 2.0]]) - 0.5 * 3.0
        np.testing.assert_allclose(xn.to_numpy(sess.get_value(w)), new_w)
        before = ForwardCounted.forwards
        value = sess.run(loss, feed, to_numpy=True)
        assert ForwardCounted.forwards == before + 1
        x0 = np.array(feed[x])
        np.testing.assert_allclose(value, np.mean(3.0 * x0 * new_w))


def test_sparse_cross_entropy_forward_is_skipped_in_a_training_step(dev, monkeypatch):
    def forward(*args):
        raise AssertionError("the loss forward ran")

    with xn.Graph().as_default():
        x = xn.placeholder(dtype="float32", shape=(None, 3), name="x")
        t = xn.placeholder(dtype="int64", shape=(None,), name="t")
        w = xn.Variable(np.eye(3, dtype=np.float32), name="w")
        loss = xn.losses.sparse_softmax_cross_entropy(t, xn.matmul(x, w))
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev)
        feed = {x: np.ones((4, 3)), t: [0, 1, 2, 0]}
        expected = sess.run(loss, feed, to_numpy=True)
        monkeypatch.setattr(xn.ops.SparseSoftmaxCrossEntropy, "forward", forward)
        monkeypatch.setitem(kernels.FORWARD, xn.ops.SparseSoftmaxCrossEntropy,
                            lambda op, portable: forward)
        sess.run(step, feed)  # the patched forward is never called
        plan = next(p for p in sess._plans.values() if p.updates)
        # an op whose output is only described runs a step made by _inferred_description
        computed = [step.op.type for step in plan.steps
                    if step.op is not None
                    and "_inferred_description" not in getattr(step.fn, "__qualname__", "")]
        assert "SparseSoftmaxCrossEntropyGrad" in computed
        assert "SparseSoftmaxCrossEntropy" not in computed
        assert not np.allclose(xn.to_numpy(sess.get_value(w)), np.eye(3))
        assert np.isclose(expected, np.log(3.0))  # equal logits: log(3) per row


def test_two_sessions_are_independent(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, 2.0], name="w")
        step = xn.train.GradientDescentOptimizer(0.25).minimize(xn.reduce_sum(w * w))
        a, b = xn.Session(device=dev), xn.Session(device=dev)
        a.run(step)
        np.testing.assert_array_equal(a.run(w, to_numpy=True), [0.5, 1.0])
        np.testing.assert_array_equal(b.run(w, to_numpy=True), [1.0, 2.0])
        b.set_value(w, [10.0, 20.0])
        np.testing.assert_array_equal(a.run(w, to_numpy=True), [0.5, 1.0])
        b.run(step)
        np.testing.assert_array_equal(b.run(w, to_numpy=True), [5.0, 10.0])
        np.testing.assert_array_equal(a.run(w, to_numpy=True), [0.5, 1.0])
        # initial values are never written
        np.testing.assert_array_equal(w.initial_value, [1.0, 2.0])


def test_session_as_context_manager_closes(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0], name="w")
        with xn.Session(device=dev) as sess:
            sess.set_value(w, [3.0])
            sess.run(w * 2.0)
            assert sess._plans
        assert not sess._plans and not sess._values
        # A closed Session refuses to run (it used to hand out the initial value silently).
        for use in (lambda: sess.run(w), lambda: sess.get_value(w),
                    lambda: sess.set_value(w, [2.0])):
            with pytest.raises(RuntimeError, match="this Session is closed"):
                use()


# --------------------------------------------------------------------------- dtypes


def test_variable_dtype_rules(dev):
    with xn.Graph().as_default():
        cases = {
            xn.Variable(np.array([1.0, 2.0])): "float64",
            xn.Variable(np.array([1.0], dtype=np.float32)): "float32",
            xn.Variable([1.0, 2.0]): "float32",
            xn.Variable([1, 2]): "float32",
            xn.Variable(3): "float32",
            xn.Variable(0.5): "float32",
            xn.Variable(1.0, dtype="float64"): "float64",
            xn.Variable([1, 2], dtype=np.int64, trainable=False): "int64",
            xn.constant([1, 2]): "float32",
            xn.constant(np.arange(3.0)): "float64",
        }
        sess = xn.Session(device=dev)
        for node, dtype in cases.items():
            assert node.dtype == dtype, node
            assert sess.run(node).dtype == dev.dtype(dtype), node
        sess64 = xn.Session(device=dev, dtype="float64")
        for node, dtype in cases.items():
            want = "float64" if dtype.startswith("float") else dtype
            assert sess64.run(node).dtype == dev.dtype(want), node


def test_feed_dtypes(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        i = xn.placeholder(dtype="int64", name="i")
        d = xn.placeholder(dtype="float64", name="d")
        sess = xn.Session(device=dev)
        assert sess.run(x, {x: np.ones(2)}).dtype == dev.dtype("float32")  # host float -> f32
        assert sess.run(x, {x: [1.0, 2.0]}).dtype == dev.dtype("float32")
        assert sess.run(x, {x: 2.5}).dtype == dev.dtype("float32")
        assert sess.run(x, {x: np.array([1, 2])}).dtype == dev.dtype("int64")  # ints kept
        assert sess.run(i, {i: [0, 2]}).dtype == dev.dtype("int64")
        assert sess.run(d, {d: [0.1]}).dtype == dev.dtype("float64")
        assert xn.to_numpy(sess.run(d, {d: [0.1]}))[0] == 0.1
        # float32 data mixed with integer data: the integers are cast
        np.testing.assert_array_equal(
            sess.run(x * i, {x: [0.5, 1.5], i: [2, 4]}, to_numpy=True), [1.0, 6.0]
        )
        # a device array of this session is used as is
        on_dev = dev.from_host(np.array([1.0, 2.0]), "float32")
        np.testing.assert_array_equal(sess.run(x * 2.0, {x: on_dev}, to_numpy=True), [2.0, 4.0])
        with pytest.raises(TypeError, match="placeholder x: cannot feed data of dtype <U1"):
            sess.run(x, {x: ["a"]})
        with pytest.raises(TypeError, match=r"feed for placeholder x is a graph node \(i\)"):
            sess.run(x, {x: i})


def test_session_float64(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([0.1, 0.2], name="w")  # float32, but a float64 Session starts exact
        y = x * x + w
        sess = xn.Session(device=dev, dtype="float64")
        out = sess.run([x, w, y], {x: np.array([0.1, 0.3])})
        assert all(o.dtype == dev.dtype("float64") for o in out)
        host = [xn.to_numpy(o) for o in out]
        np.testing.assert_array_equal(host[0], [0.1, 0.3])  # feeds are not rounded to f32
        np.testing.assert_array_equal(host[1], [0.1, 0.2])
        # to the last bit but one: a compiled JAX plan computes x * x + w as one FMA
        np.testing.assert_array_max_ulp(host[2], host[0] * host[0] + host[1], maxulp=1)
        # a float32 device array fed to a float64 session is converted
        f32 = dev.from_host(np.array([0.5]), "float32")
        assert sess.run(x, {x: f32}).dtype == dev.dtype("float64")


def test_session_float64_keeps_python_number_constants_exact(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        out = xn.Session(device=dev, dtype="float64").run(x * 0.1 + 1e-9, {x: [1.0, 3.0]},
                                                          to_numpy=True)
    # float64 to 1 ulp (float32 constants would be 1e8 ulp off): XLA fuses a multiply-add
    np.testing.assert_array_max_ulp(out, np.array([1.0, 3.0]) * 0.1 + 1e-9, maxulp=1)


def test_set_value_and_get_value(dev):
    with xn.Graph().as_default():
        w = xn.Variable(np.zeros((2, 2), dtype=np.float32), name="w")
        x = xn.placeholder(name="x")
        sess = xn.Session(device=dev)
        first = sess.get_value(w)
        assert dev.owns(first) and first.dtype == dev.dtype("float32")
        np.testing.assert_array_equal(xn.to_numpy(first), np.zeros((2, 2)))
        sess.set_value(w, np.array([[1.0, 2.0], [3.0, 4.0]]))  # float64 in: converted
        got = sess.get_value(w)
        assert got.dtype == dev.dtype("float32")
        np.testing.assert_array_equal(xn.to_numpy(got), [[1, 2], [3, 4]])
        np.testing.assert_array_equal(sess.run(xn.reduce_sum(w), to_numpy=True), 10.0)
        sess.set_value(w, dev.from_host(np.ones((2, 2)), "float32"))  # a device array
        np.testing.assert_array_equal(sess.run(w, to_numpy=True), np.ones((2, 2)))
        with pytest.raises(ValueError, match=r"Variable w has shape \(2, 2\), the new value "
                                             r"has shape \(3,\)"):
            sess.set_value(w, [1.0, 2.0, 3.0])
        with pytest.raises(TypeError, match="x is a placeholder, not a Variable"):
            sess.set_value(x, [1.0])
        np.testing.assert_array_equal(sess.run(w, to_numpy=True), np.ones((2, 2)))
    with xn.Graph().as_default():
        other = xn.Variable(1.0, name="other")
    with pytest.raises(ValueError, match="set_value: other belongs to another graph"):
        sess.set_value(other, 2.0)
    with pytest.raises(ValueError, match="get_value: other belongs to another graph"):
        sess.get_value(other)


def test_optimizer_step_fetches_as_none(dev):
    with xn.Graph().as_default():
        w = xn.Variable([2.0], name="w")
        loss = xn.reduce_sum(w * w)
        step = xn.train.GradientDescentOptimizer(0.25).minimize(loss)
        sess = xn.Session(device=dev)
        out = sess.run([step, loss], to_numpy=True)
        assert out[0] is None and out[1] == 4.0  # the loss is read before the update
        np.testing.assert_array_equal(sess.run(w, to_numpy=True), [1.0])


# --------------------------------------------------------------------------- defaults


def test_default_device_from_setter_and_environment(monkeypatch):
    monkeypatch.setattr(devices, "_default_device", None)
    monkeypatch.delenv("XPNN_DEVICE", raising=False)
    assert xn.get_default_device() == "cpu"
    with xn.Graph().as_default():
        assert xn.Session().device.backend == "numpy"
        monkeypatch.setenv("XPNN_DEVICE", "device1")
        assert xn.get_default_device() == "device1"
        sess = xn.Session()
        assert sess.device.backend == "array_api_strict" and sess.device.name == "device1"
        out = sess.run(xn.constant([1.0, 2.0]) * 2.0)
        assert sess.device.owns(out)
        xn.set_default_device("cpu")  # the setter wins over the environment
        assert xn.get_default_device() == "cpu"
        assert xn.Session().device.backend == "numpy"
        xn.set_default_device(None)
        assert xn.get_default_device() == "device1"
        assert xn.Session(device="cpu").device.backend == "numpy"  # explicit wins


def test_session_accepts_a_device_object_or_string(dev):
    with xn.Graph().as_default():
        assert xn.Session(device=dev).device is dev
        same = xn.Session(device=dev.name, backend=dev.backend).device
        assert same.backend == dev.backend and same.name == dev.name


# --------------------------------------------------------------------------- errors


def _trained_graph(dev, optimizer=None):
    """x @ W + b with a training step already run twice, so that optimizer slots are
    non-zero: a failed run must leave all of it as it was."""
    rng = np.random.default_rng(0)
    graph = xn.Graph()
    with graph.as_default():
        x = xn.placeholder(name="x")
        W = xn.Variable(rng.standard_normal((3, 2)), name="W")
        b = xn.Variable(np.zeros(2), name="b")
        scores = xn.matmul(x, W, name="scores")
        loss = xn.reduce_mean(xn.square(scores + b))
        opt = optimizer or xn.train.MomentumOptimizer(0.1, 0.9)
        step = opt.minimize(loss)
        sess = xn.Session(device=dev)
        for _ in range(2):
            sess.run(step, {x: rng.standard_normal((4, 3))})
    return graph, sess, x, step, loss


def test_unfed_placeholder_names_it(dev):
    graph, sess, x, step, loss = _trained_graph(dev)
    before = snapshot(sess)
    with graph.as_default():
        for fetch in (loss, step, [step, loss]):
            with pytest.raises(ValueError, match=r"placeholder 'x' must be fed.*feed_dict=\{x"):
                sess.run(fetch)
    assert_unchanged(sess, before)


def test_feed_for_a_node_that_is_not_a_placeholder(dev):
    graph, sess, x, step, loss = _trained_graph(dev)
    W = next(v for v in graph.variables if v.label == "W")
    scores = next(n for n in graph.nodes if n.label == "scores")
    before = snapshot(sess)
    feed = {x: np.ones((4, 3))}
    with pytest.raises(TypeError, match="feed_dict key W is a variable, not a placeholder.*"
                                        "set_value"):
        sess.run(step, {**feed, W: np.zeros((3, 2))})
    with pytest.raises(TypeError, match="feed_dict key scores is a op, not a placeholder"):
        sess.run(step, {**feed, scores: np.zeros((4, 2))})
    with pytest.raises(TypeError, match="feed_dict keys must be placeholders, got str"):
        sess.run(step, {**feed, "x": np.zeros((4, 3))})
    assert_unchanged(sess, before)


def test_matmul_shape_mismatch_at_construction():
    with xn.Graph().as_default():
        a = xn.Variable(np.ones((2, 3)), name="a")
        b = xn.Variable(np.ones((4, 2)), name="b")
        with pytest.raises(ValueError, match=r"logits: matmul shapes \(2, 3\) @ \(4, 2\) do "
                                             r"not match.*\(3\).*\(4\)"):
            xn.matmul(a, b, name="logits")
        with pytest.raises(ValueError, match=r"MatMul#\d+: matmul shapes \(2, 3\) @ \(2,\)"):
            a @ xn.Variable([1.0, 2.0])
        x = xn.placeholder(shape=(None, 5), name="x")
        with pytest.raises(ValueError, match=r"matmul shapes \(None, 5\) @ \(2, 3\)"):
            x @ a


def test_broadcast_shape_mismatch_at_construction():
    with xn.Graph().as_default():
        a = xn.Variable(np.ones((2, 3)), name="a")
        with pytest.raises(ValueError, match=r"sum: shapes \(2, 3\) and \(4,\) cannot be "
                                             r"broadcast together"):
            xn.add(a, xn.Variable(np.ones(4)), name="sum")
        with pytest.raises(ValueError, match=r"Multiply#\d+: shapes \(2, 3\) and \(2,\)"):
            a * xn.constant([1.0, 2.0])
        x = xn.placeholder(shape=(None, 4), name="x")
        with pytest.raises(ValueError, match=r"shapes \(None, 4\) and \(2, 3\) cannot"):
            x - a


def test_matmul_shape_mismatch_at_run_time(dev):
    graph, sess, x, step, loss = _trained_graph(dev)
    before = snapshot(sess)
    for fetch in (loss, step, [loss, step]):
        with pytest.raises(xn.OpError, match=r"(?s)scores \(MatMul\) failed: .*"
                                             r"input 0 x: shape \(4, 5\) float32 on .*"
                                             r"input 1 W: shape \(3, 2\) float64.*"
                                             r"no Variable was changed"):
            sess.run(fetch, {x: np.ones((4, 5))})
    assert_unchanged(sess, before)
    assert issubclass(xn.OpError, ValueError)


def test_broadcast_shape_mismatch_at_run_time(dev):
    with xn.Graph().as_default():
        x, b = xn.placeholder(name="x"), xn.placeholder(name="b")
        w = xn.Variable(np.ones(3), name="w")
        loss = xn.reduce_sum(xn.add(x, b, name="biased") * w)
        step = xn.train.AdamOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev)
        sess.run(step, {x: np.ones((2, 3)), b: np.ones(3)})
        before = snapshot(sess)
        with pytest.raises(xn.OpError, match=r"(?s)biased \(Add\) failed: .*"
                                             r"input 0 x: shape \(2, 3\).*"
                                             r"input 1 b: shape \(4,\)"):
            sess.run(step, {x: np.ones((2, 3)), b: np.ones(4)})
        assert_unchanged(sess, before)


def test_placeholder_shape_check(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3), name="batch")
        w = xn.Variable(np.ones((3, 1)), name="w")
        step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(x @ w))
        sess = xn.Session(device=dev)
        before = snapshot(sess)
        for bad in (np.ones((2, 4)), np.ones(3), np.ones((1, 2, 3))):
            with pytest.raises(ValueError, match=re.escape(
                f"placeholder batch expects shape ('?', 3) but was fed shape {bad.shape}"
            )):
                sess.run(step, {x: bad})
        with pytest.raises(ValueError, match="expects shape"):
            sess.run(step, {x: dev.from_host(np.ones((2, 2)), "float32")})
        assert_unchanged(sess, before)
        sess.run(step, {x: np.ones((5, 3))})  # any batch size
        np.testing.assert_allclose(sess.run(w, to_numpy=True), 1.0 - 0.1 * 5)
        after_good = snapshot(sess)
        for bad in (np.ones((5, 4)), np.ones((5, 3, 1))):  # checked after a good shape too
            with pytest.raises(ValueError, match="expects shape"):
                sess.run(step, {x: bad})
        assert_unchanged(sess, after_good)


def test_fetch_from_another_graph(dev):
    with xn.Graph().as_default():
        foreign = xn.Variable(1.0, name="foreign")
        foreign_op = foreign * 2.0
    with xn.Graph().as_default():
        w = xn.Variable(1.0, name="w")
        sess = xn.Session(device=dev)
        before = snapshot(sess)
        for fetch in (foreign, [w, foreign_op]):
            with pytest.raises(ValueError, match="belongs to another graph than this Session's"):
                sess.run(fetch)
        assert_unchanged(sess, before)
        with pytest.raises(ValueError, match="input 1 .* belongs to another graph"):
            w + foreign


def _foreign_arrays(dev):
    """Arrays that do not belong to ``dev``: array_api_strict arrays on other devices."""
    import array_api_strict as strict

    out = [strict.ones((4, 3), dtype=strict.float32, device=strict.Device("device2"))]
    if dev.backend != "array_api_strict":
        out.append(strict.ones((4, 3), dtype=strict.float32, device=strict.Device("device1")))
    else:
        out.append(strict.ones((4, 3), dtype=strict.float32))  # the default CPU_DEVICE
    return out


def test_feed_from_another_device_is_refused(dev):
    graph, sess, x, step, loss = _trained_graph(dev)
    before = snapshot(sess)
    for value in _foreign_arrays(dev):
        with pytest.raises(TypeError, match=(
            rf"placeholder x was fed an array_api_strict array on "
            rf"{re.escape(str(value.device))}, but this Session runs on {dev.backend} device "
            rf"{dev.name}"
        )):
            sess.run(step, {x: value})
    assert_unchanged(sess, before)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize(
    "session_device, session_backend",
    [("cpu", "numpy"), ("device1", "array_api_strict")],
    ids=["numpy-session", "strict-session"],
)
def test_torch_tensor_fed_to_a_non_torch_session_is_refused(session_device, session_backend):
    torch = _torch()
    dev = devices.resolve(session_device, backend=session_backend)
    graph, sess, x, step, loss = _trained_graph(dev)
    before = snapshot(sess)
    with pytest.raises(TypeError, match=r"placeholder x was fed a torch tensor on cpu, but this "
                                        rf"Session runs on {session_backend} device"):
        sess.run(step, {x: torch.ones((4, 3))})
    assert_unchanged(sess, before)


def test_foreign_array_fed_to_a_torch_session_is_refused():
    _torch()
    import array_api_strict as strict

    dev = devices.resolve("cpu", backend="torch")
    graph, sess, x, step, loss = _trained_graph(dev)
    before = snapshot(sess)
    value = strict.ones((4, 3), dtype=strict.float32, device=strict.Device("device1"))
    with pytest.raises(TypeError, match=r"placeholder x was fed an array_api_strict array on "
                                        r".*device1.*, but this Session runs on torch device cpu"):
        sess.run(step, {x: value})
    assert_unchanged(sess, before)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_failed_training_step_changes_nothing(dev, optimizer):
    make = {
        "sgd": lambda: xn.train.GradientDescentOptimizer(0.1),
        "momentum": lambda: xn.train.MomentumOptimizer(0.1, 0.9),
        "nesterov": lambda: xn.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
        "adam": lambda: xn.train.AdamOptimizer(0.1),
    }[optimizer]
    graph, sess, x, step, loss = _trained_graph(dev, make())
    before = snapshot(sess)
    if optimizer != "sgd":  # the slots hold state worth protecting
        slots = [v for v in graph.variables if not v.trainable]
        assert slots and any(np.any(before[s] != 0) for s in slots)
    with pytest.raises(xn.OpError, match="no Variable was changed"):
        sess.run(step, {x: np.ones((4, 2))})  # a batch of the wrong shape
    with xn.Graph().as_default():
        stray = xn.placeholder(name="stray")
    with pytest.raises(ValueError, match="feed_dict: stray belongs to another graph"):
        sess.run(step, {x: np.ones((4, 3)), stray: 1.0})
    assert_unchanged(sess, before)
    sess.run(step, {x: np.ones((4, 3))})  # and the session still trains afterwards
    assert any(np.any(snapshot(sess)[v] != before[v]) for v in graph.variables)
