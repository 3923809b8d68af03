"""The NumPy fast path against array-api-strict on adversarial graphs: weight gradients
read by other ops, failed runs, Variables on both sides of a product, fed arrays in every
layout, the full-reduction gradient, descriptions of skipped nodes, out-of-range labels."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.devices.numpy.test_fastpath import _both, numpy_session, strict_session
from xpnn.session import OpError

F32 = np.float32
RNG = np.random.default_rng(123)
X = RNG.standard_normal((6, 4)).astype(F32)
W0 = RNG.standard_normal((4, 3)).astype(F32)
B0 = RNG.standard_normal(3).astype(F32)


def _snapshot(sess, variables):
    return [xn.to_numpy(sess.get_value(v)).copy() for v in variables]


# --------------------------------------------------------------------------- 1. a folded
# gradient that another (FRESH) step also reads


def test_weight_gradient_also_read_by_another_op():
    """grad W is read by the SGD update AND by reduce_sum(square(gW)) (a gradient norm)."""

    def build():
        x = xn.placeholder(shape=(None, 4), name="x")
        w = xn.Variable(W0, name="w")
        loss = xn.reduce_sum(xn.square(x @ w))
        (gw,) = xn.gradients(loss, [w])
        norm = xn.reduce_sum(gw * gw)  # Multiply is FRESH (Square is not)
        step = xn.train.GradientDescentOptimizer(0.01).apply_gradients([(gw, w)])
        return x, w, step, norm

    def run(sess, nodes):
        x, w, step, norm = nodes
        _, n = sess.run([step, norm], {x: X}, to_numpy=True)
        return [np.asarray(n), sess.run(w, to_numpy=True)]

    fast, portable = _both(build, run)
    for f, p in zip(fast, portable):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- 2. a failed run
# (seed gradient of the wrong batch size) must raise an OpError and change no Variable


def test_mismatched_seed_fails_before_any_write():
    def build():
        x = xn.placeholder(shape=(None, 4), name="x")
        gy = xn.placeholder(shape=(None, 3), name="gy")
        w, b = xn.Variable(W0, name="w"), xn.Variable(B0, name="b")
        y = x @ w + b
        gw, gb = xn.gradients(y, [w, b], grad_ys=[gy])
        step = xn.train.GradientDescentOptimizer(0.1).apply_gradients([(gw, w), (gb, b)])
        return x, gy, w, b, step

    def run(sess, nodes):
        x, gy, w, b, step = nodes
        before = _snapshot(sess, [w, b])
        err = None
        try:
            sess.run(step, {x: X, gy: np.ones((5, 3), F32)})  # batch 5 vs x's 6
        except Exception as exc:  # noqa: BLE001
            err = exc
        after = _snapshot(sess, [w, b])
        return err, before, after

    for (err, before, after), name in zip(_both(build, run), ["numpy", "strict"]):
        assert err is not None, name
        assert isinstance(err, OpError), (name, type(err), err)
        for bf, af in zip(before, after):
            np.testing.assert_array_equal(bf, af, err_msg=name)


# --------------------------------------------------------------------------- 3. adversarial
# graphs against array_api_strict

GRAPHS = {}
U_INIT = RNG.standard_normal((4, 2)).astype(F32)
SQ_INIT = (RNG.standard_normal((4, 4)) * 0.3).astype(F32)


def graph(fn):
    GRAPHS[fn.__name__] = fn
    return fn


@graph
def same_placeholder_two_matmuls(x, w, v):
    u = xn.Variable(U_INIT, name="u")
    return xn.reduce_sum(xn.square(x @ w)) + xn.reduce_sum(xn.relu(x @ u))


@graph
def variable_as_both_operands(x, w, v):
    sq = xn.Variable(SQ_INIT, name="sq")
    return xn.reduce_sum(xn.square((x @ sq) @ sq @ w))


@graph
def variable_as_left_operand(x, w, v):
    return xn.reduce_sum(xn.square((xn.transpose(x) @ (x @ w)) @ v)) * 0.01


@graph
def w_feeds_next_layer_gradient(x, w, v):
    h = xn.relu(x @ w)
    return xn.reduce_mean(xn.square(h @ v)) + xn.reduce_sum(h * 0.1)


@graph
def transposed_product(x, w, v):
    return xn.reduce_sum(xn.square(xn.transpose(xn.transpose(w) @ xn.transpose(x)) @ v))


@graph
def reshape_after_matmul(x, w, v):
    h = xn.reshape(x @ w, (-1,))
    return xn.reduce_sum(xn.square(h)) + xn.reduce_sum(xn.square(xn.reshape(h, (-1, 3)) @ v))


@graph
def sigmoid_softmax_mse(x, w, v):
    h = xn.sigmoid(x @ w)
    return xn.reduce_mean(xn.square(xn.softmax(h @ v) - 0.25))


def _vars():
    return (RNG.standard_normal((4, 3)).astype(F32), RNG.standard_normal((3, 2)).astype(F32))


W_INIT, V_INIT = _vars()


def _feeds():
    base = RNG.standard_normal((6, 8)).astype(F32)
    return {
        "C": base[:, :4].copy(),
        "F": np.asfortranarray(base[:, :4]),
        "strided": base[:, ::2],
        "T": np.ascontiguousarray(base[:, :4].T).T,
        "batch1": base[:1, :4].copy(),
        "batch1_strided": base[:1, ::2],
        "rowstrided": base[::2, :4],
        "int": np.round(base[:, :4] * 3).astype(np.int64),
    }


FEEDS = _feeds()


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("feed", list(FEEDS))
@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_graph_training_matches_strict(name, feed, opt, dtype):
    value = FEEDS[feed]
    original = value.copy()

    def build():
        x = xn.placeholder(shape=(None, 4), name="x",
                           dtype="int64" if feed == "int" else None)
        xf = x * 1.0 if feed == "int" else x
        w, v = xn.Variable(W_INIT, name="w"), xn.Variable(V_INIT, name="v")
        loss = GRAPHS[name](xf, w, v)
        maker = {"sgd": lambda: xn.train.GradientDescentOptimizer(0.05),
                 "momentum": lambda: xn.train.MomentumOptimizer(0.05, 0.9),
                 "adam": lambda: xn.train.AdamOptimizer(0.01)}[opt]
        step = maker().minimize(loss)
        gvars = [n for n in loss.graph.trainable_variables()]
        grads = [g for g in xn.gradients(loss, gvars) if g is not None]
        return x, loss, step, gvars, grads

    def run(sess, nodes):
        x, loss, step, gvars, grads = nodes
        out = []
        for i in range(3):
            if i == 1:  # fetch gradients and loss together with the step
                res = sess.run([step, loss] + grads, {x: value}, to_numpy=True)
                out.extend(np.asarray(r) for r in res[1:])
            else:
                sess.run(step, {x: value})
        out.extend(sess.run(gvars, to_numpy=True))
        out.append(np.asarray(sess.run(loss, {x: value}, to_numpy=True)))
        return out

    kw = {"dtype": dtype} if dtype else {}

    results = []
    for make in (numpy_session, strict_session):
        with xn.Graph().as_default():
            nodes = build()
            results.append(run(make(**kw), nodes))
    fast, portable = results
    tol = 1e-4 if dtype is None else 1e-10
    for f, p in zip(fast, portable):
        assert f.shape == p.shape
        np.testing.assert_allclose(f, p, rtol=tol, atol=tol)
    np.testing.assert_array_equal(value, original)


def test_two_sessions_share_nothing():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 4), name="x")
        w = xn.Variable(W0, name="w")
        step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(xn.square(x @ w)))
        s1, s2 = numpy_session(), numpy_session()
        s1.run(step, {x: X})
        s1.run(step, {x: X})
        s2.run(step, {x: X})
        w2 = s2.run(w, to_numpy=True)
        w_ref = W0.astype(np.float64)
        w_ref = w_ref - 0.1 * X.T.astype(np.float64) @ (2 * X.astype(np.float64) @ w_ref)
        np.testing.assert_allclose(w2, w_ref, rtol=1e-4, atol=1e-4)


def test_fetch_matmul_result_is_correct_and_usable():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 4), name="x")
        w = xn.Variable(W0, name="w")
        y = x @ w
        sess = numpy_session()
        out = sess.run(y, {x: X})
        np.testing.assert_allclose(out, X @ W0, rtol=1e-5, atol=1e-5)
        out[...] = 0  # writing the fetched result must not change anything else
        np.testing.assert_allclose(sess.run(y, {x: X}), X @ W0, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(sess.run(w), W0)


def test_feed_shape_check_after_accepted_shape():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 4), name="x")
        w = xn.Variable(W0, name="w")
        step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(x @ w))
        sess = numpy_session()
        sess.run(step, {x: np.ones((5, 4), F32)})
        sess.run(step, {x: np.ones((5, 4), F32)})
        for bad in (np.ones((5, 3), F32), np.ones((4,), F32), np.ones((5, 4, 1), F32)):
            before = sess.run(w, to_numpy=True).copy()
            with pytest.raises(ValueError):
                sess.run(step, {x: bad})
            np.testing.assert_array_equal(sess.run(w, to_numpy=True), before)


@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("keepdims", [True, False])
@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 3), (0, 3)])
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_full_reduction_gradient(mean, keepdims, shape, dtype):
    def build():
        x = xn.placeholder(shape=shape, name="x")
        y = (xn.reduce_mean if mean else xn.reduce_sum)(xn.square(x), keepdims=keepdims)
        (g,) = xn.gradients(y * 3.0, [x])
        return x, g

    value = RNG.standard_normal(shape).astype(F32)

    def run(sess, nodes):
        x, g = nodes
        with np.errstate(all="ignore"):
            return np.asarray(sess.run(g, {x: value}, to_numpy=True))

    kw = {"dtype": dtype} if dtype else {}
    res = []
    for make in (numpy_session, strict_session):
        with xn.Graph().as_default():
            res.append(run(make(**kw), build()))
    assert res[0].shape == res[1].shape
    assert res[0].dtype == res[1].dtype, (res[0].dtype, res[1].dtype)
    np.testing.assert_allclose(res[0], res[1], rtol=1e-6)


# --------------------------------------------------------------------------- 4. the description
# of a node that is not computed carries the node's own dtype


class ZerosShaped(xn.Operation):
    """Reads its input for shape and dtype only (the documented shape_only contract)."""

    shape_only = (0,)

    def forward(self, xp, like):
        return xp.zeros(like.shape, dtype=like.dtype)

    def infer_shape(self, shape):
        return shape


@pytest.mark.parametrize("make", [numpy_session, strict_session])
def test_shape_only_description_has_the_nodes_dtype(make):
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3), name="x")
        out = ZerosShaped(xn.argmax(x, axis=-1))  # argmax: int64, its input float32
        got = xn.to_numpy(make().run(out, {x: np.ones((2, 3), F32)}))
    assert got.dtype == np.int64, got.dtype


# --------------------------------------------------------------------------- 5. a training step
# with out-of-range labels fails and changes nothing, though it skips the loss forward


@pytest.mark.parametrize("make", [numpy_session, strict_session])
@pytest.mark.parametrize("nd", [2, 3])
def test_out_of_range_labels_still_fail_the_step(make, nd):
    shape = (None, 3) if nd == 2 else (None, 2, 3)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=shape, name="x")
        t = xn.placeholder(dtype="int64", shape=shape[:-1], name="t")
        w = xn.Variable(np.eye(3, dtype=F32), name="w")
        loss = xn.losses.sparse_softmax_cross_entropy(t, xn.matmul(x, w))
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = make()
        xs = np.ones((4,) + shape[1:], F32)
        with pytest.raises(OpError):
            sess.run(step, {x: xs, t: np.full(xs.shape[:-1], 7)})
        np.testing.assert_array_equal(xn.to_numpy(sess.get_value(w)), np.eye(3))


def _count_kernel_runs(monkeypatch, op_class):
    from xpnn.devices.numpy import kernels

    runs = []
    for table in (kernels.FORWARD, kernels.INPLACE):
        make = table.get(op_class)
        if make is None:
            continue

        def counted(op, portable, make=make, **options):
            fn = make(op, portable, **options)
            return lambda *v: runs.append(1) or fn(*v)

        monkeypatch.setitem(table, op_class, counted)
    return runs


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log")  # strict's log(0)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("also_fetched", [False, True], ids=["fused", "bce-grad-fetched"])
def test_sigmoid_grad_folded_into_bce_grad_matches_portable(reduction, dtype, also_fetched,
                                                             monkeypatch):
    """SigmoidGrad(BinaryCrossEntropyGrad(g, p, y), p) as one kernel (``fusion``): equal to
    the portable ops bit for bit, with saturated probabilities (p = 0 and 1 in float32) and
    hard labels, for the gradients and the trained Variables; not fused where the BCE's
    gradient is also fetched."""
    runs = _count_kernel_runs(monkeypatch, xn.ops.SigmoidGrad)
    rng = np.random.default_rng(21)
    x0 = (rng.standard_normal((6, 2)) * 4).astype(dtype)
    x0[0] = [60.0, -60.0]  # with w[0] = (-1, -0.82): p about 9e-27, and exactly 1 in float32
    x0[2, 0] = 0.0
    y0 = rng.integers(0, 2, (6, 2)).astype(dtype)
    y0[1] = [0.3, 0.9]  # soft labels too

    def build():
        x = xn.placeholder(dtype, shape=(6, 2), name="x")
        y = xn.placeholder(dtype, shape=(6, 2), name="y")
        w = xn.Variable(np.linspace(-1, 1, 12).reshape(6, 2).astype(dtype), name="w")
        p = xn.sigmoid(x * w)  # elementwise: no BLAS product, whose rounding varies by kernel
        loss = xn.losses.binary_cross_entropy(p, y, reduction=reduction)
        (dz,) = xn.gradients(loss, [p.inputs[0]])
        assert isinstance(dz, xn.ops.SigmoidGrad)
        assert isinstance(dz.inputs[0], xn.ops.BinaryCrossEntropyGrad)
        step = xn.train.GradientDescentOptimizer(0.5).minimize(loss)
        fetches = [dz, step, loss] + ([dz.inputs[0]] if also_fetched else [])
        return x, y, w, fetches

    def run(sess, nodes):
        x, y, w, fetches = nodes
        out = []
        for _ in range(3):
            got = sess.run(fetches, {x: x0, y: y0})
            out += [xn.to_numpy(v) for v in got if v is not None]
        return out + [xn.to_numpy(sess.run(w))]

    fast, portable = _both(build, run)  # NumPy first: its kernels alone are counted
    for got, want in zip(fast, portable, strict=True):
        np.testing.assert_array_equal(got, want, strict=True)
    assert len(runs) == (3 if also_fetched else 0)  # fused: no SigmoidGrad kernel ran


def test_small_value_is_its_own_description():
    """A small array read for its shape by memoized steps alone (a loss, for its gradient)
    is passed as it is, a large one as a Description (``shape_folding._own_description``);
    either way the gradient of a mean follows the batch size run to run."""
    from xpnn.devices.numpy import shape_folding
    from xpnn.plan import Description

    small, large = np.ones(4, F32), np.ones(shape_folding._OWN_DESCRIPTION + 1, F32)
    assert shape_folding._own_description(small) is small
    described = shape_folding._own_description(large)
    assert isinstance(described, Description) and described.shape == large.shape
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None,), name="x")
        (g,) = xn.gradients(xn.reduce_mean(x * x), [x])
        sess = numpy_session()
        for n in (3, 5, 3, 5000):
            v = np.arange(n, dtype=F32)
            np.testing.assert_allclose(sess.run(g, {x: v}), 2 * v / n, rtol=1e-6)
