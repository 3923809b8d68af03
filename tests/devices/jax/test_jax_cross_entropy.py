"""The JAX kernel of the sparse cross-entropy's gradient (``xpnn/devices/jax/cross_entropy.py``)
against the portable op on JAX, traced by ``jax.jit`` as in a compiled plan: ordinary and
extreme logits, rows of infinities, labels outside [0, classes) (NaN rows), other cases
sent to the portable op; a compiled training step through it against the eager path, with
the host label check still made."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

jax = pytest.importorskip("jax", reason="jax is not installed: the JAX kernels are not tested")

from tests.devices.jax.test_jax_kernels import kernel_runs  # noqa: E402
from xpnn import ops  # noqa: E402
from xpnn.devices.jax import cross_entropy, kernels  # noqa: E402, F401  (registers the kernel)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

XP = xn.devices.resolve("cpu", backend="jax").xp


def _op():
    with xn.Graph().as_default():
        return ops.SparseSoftmaxCrossEntropyGrad(xn.placeholder(), xn.placeholder(),
                                                 xn.placeholder())


def _inputs(kind, dtype=np.float32, rows=6, classes=5):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((rows, classes)).astype(dtype)
    labels = rng.integers(0, classes, rows).astype(np.int32)
    grad = rng.standard_normal(rows).astype(dtype)
    if kind == "extreme":
        logits *= dtype(1e4)
        logits[1] = [np.inf, 0, 0, 0, 0][:classes]
        logits[2] = -np.inf
    if kind == "bad-labels":
        labels[[0, 3]] = [-1, classes]
    return tuple(jax.numpy.asarray(v) for v in (grad, labels, logits))


@pytest.mark.parametrize("kind", ["normal", "extreme", "bad-labels"])
def test_kernel_matches_the_portable_gradient(kind):
    op = _op()
    grad, labels, logits = _inputs(kind)
    called = []

    def portable(*v):
        called.append(1)
        with ops.run_context.reading(False):
            return op.forward(XP, *v)

    got = np.asarray(jax.jit(kernels.kernel(op, portable))(grad, labels, logits))
    assert not called  # traced the kernel
    with ops.run_context.reading(False):
        want = np.asarray(op.forward(XP, grad, labels, logits))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    # one rounding apart: g * p - g against g * (p - 1)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=1e-7)
    if kind == "bad-labels":
        assert np.isnan(got[[0, 3]]).all() and not np.isnan(got[[1, 2, 4, 5]]).any()


@pytest.mark.parametrize("case", ["3-d logits", "no rows", "integer logits"])
def test_other_cases_take_the_portable_op(case):
    op = _op()
    grad, labels, logits = _inputs("normal")
    if case == "3-d logits":
        grad, labels, logits = grad[None], labels[None], logits[None]
    elif case == "no rows":
        grad, labels, logits = grad[:0], labels[:0], logits[:0]
    else:
        logits = logits.astype(jax.numpy.int32)
    called = []
    kernels.kernel(op, lambda *v: called.append(1) or v[2])(grad, labels, logits)
    assert called


def _mlp(jit):
    graph = xn.Graph()
    with graph.as_default():
        x = xn.placeholder("float32", (None, 4), name="x")
        t = xn.placeholder("int64", (None,), name="t")
        init = np.random.default_rng(1)
        w = xn.Variable(init.standard_normal((4, 3)).astype(np.float32), name="w")
        b = xn.Variable(np.zeros(3, np.float32), name="b")
        loss = xn.losses.sparse_softmax_cross_entropy(t, x @ w + b)
        step = xn.train.GradientDescentOptimizer(0.5).minimize(loss)
        sess = xn.Session(backend="jax", passes=jit)
    return graph, sess, (x, t), (step, loss)


def test_training_through_the_kernel_matches_the_eager_path(monkeypatch):
    runs = kernel_runs(monkeypatch, ops.SparseSoftmaxCrossEntropyGrad)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((12, 4)).astype(np.float32), rng.integers(0, 3, 12)
    results = []
    for jit in (True, False):
        graph, sess, (x, t), (step, loss) = _mlp(jit)
        losses = [float(sess.run([step, loss], {x: X, t: y})[1]) for _ in range(5)]
        results.append((losses, [xn.to_numpy(sess.get_value(v)) for v in graph.variables]))
        if jit:  # a bad host label is refused before the call, naming the op
            with pytest.raises(xn.OpError, match=r"class indices in \[0, 3\), got 3"):
                sess.run(step, {x: X[:2], t: np.array([0, 3])})
            np.testing.assert_array_equal(xn.to_numpy(sess.get_value(graph.variables[0])),
                                          results[-1][1][0])  # the failed step changed nothing
    (got, got_state), (want, want_state) = results
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(got_state, want_state):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert got[-1] < got[0]
    assert runs  # the compiled step traced the kernel
