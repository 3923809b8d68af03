"""Found by review of bae150b..eac62aa (kept-per-shape values, ReLU zero row, wide SumTo,
sparse CE label check); each failed on the reviewed code."""

import numpy as np
import pytest

import xpnn as xn
from xpnn import ops

F32 = np.float32


def _grad_of_sum_plus_constant():
    """gx = SumTo(BroadcastBack(seed, x + c), x): the BroadcastBack has only a constant and a
    shape description as inputs (so it is kept per shape), and SumTo hands it on unchanged."""
    x = xn.placeholder(shape=(None, 3), name="x")
    loss = xn.reduce_sum(x + xn.constant(np.ones(3, F32)))
    (gx,) = xn.gradients(loss, [x])
    return x, gx


@pytest.mark.parametrize("wrap", ["sum_to", "transpose", "reshape"])
def test_value_passed_on_from_a_kept_value_is_fetched_writable_and_fresh(wrap):
    with xn.Graph().as_default():
        x, gx = _grad_of_sum_plus_constant()
        assert isinstance(gx, ops.SumTo)
        fetch = {"sum_to": gx, "transpose": ops.Transpose(gx),
                 "reshape": ops.Reshape(gx, (-1,))}[wrap]
        sess = xn.Session()
        X = np.ones((4, 3), F32)
        first = sess.run(fetch, {x: X})
        second = sess.run(fetch, {x: X}, to_numpy=True)
        assert first is not second and not np.shares_memory(first, second)
        assert first.flags.writeable and second.flags.writeable
        first += 1.0  # the caller's array
        np.testing.assert_array_equal(sess.run(fetch, {x: X}), np.ones_like(first))


class _Assign(xn.Update):
    """w <- value (a user's own Update: the portable commit stores the array it returns)."""

    def forward(self, xp, value, _unused):
        return [value]


def test_variable_assigned_a_kept_value_can_still_be_trained():
    with xn.Graph().as_default():
        w = xn.Variable(np.zeros(3, F32), name="w")
        v = xn.Variable(np.ones(3, F32), name="v")
        c = xn.constant(np.zeros(3, F32))
        assign = _Assign([w], ops.OnesLike(c), c)  # OnesLike of a constant: kept per shape
        loss = xn.reduce_sum(w * w) + xn.reduce_sum(v * v)
        step = xn.train.GradientDescentOptimizer(0.5).minimize(loss, var_list=[w, v])
        sess = xn.Session()
        sess.run(assign)
        sess.run(step)  # reviewed code: ValueError "output array is read-only", v updated, w not
        np.testing.assert_array_equal(sess.run(w), np.zeros(3, F32))
        np.testing.assert_array_equal(sess.run(v), np.zeros(3, F32))
        sess.run(assign)  # and the kept OnesLike value was not changed by the step
        np.testing.assert_array_equal(sess.run(w), np.ones(3, F32))


def test_sparse_ce_refuses_broadcast_labels_when_built_and_when_run():
    """labels of shape (1,) for 3 rows: refused alike whether the shape is known when the
    graph is built or only when it runs (TensorFlow and PyTorch refuse them too)."""
    logits = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 3.0]], F32)
    message = r"labels of shape \(1,\) do not match logits of shape \(3, 3\)"
    for backend in ("numpy", "array_api_strict"):
        with xn.Graph().as_default():
            y = xn.placeholder("int64", name="y")
            loss = xn.losses.sparse_softmax_cross_entropy(y, logits, "none")
            with pytest.raises(ValueError, match=message):
                xn.Session(backend=backend).run(loss, {y: np.array([1])})
    with xn.Graph().as_default(), pytest.raises(ValueError, match=message):
        xn.losses.sparse_softmax_cross_entropy(np.array([1]), logits, "none")


def test_numpy_sparse_ce_gradient_refuses_column_labels_like_the_portable_path():
    """Pre-existing (not introduced by the change, and not caught by its new check): labels
    of shape (n, 1) through a placeholder of unknown rank. The portable gradient fails; the
    NumPy fast path's probs[arange(n), labels] broadcasts to (n, n) and trains on garbage."""
    logits = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 3.0]], F32)
    with xn.Graph().as_default():
        y = xn.placeholder("int64", name="y")
        w = xn.Variable(logits, name="w")
        loss = xn.losses.sparse_softmax_cross_entropy(y, w * 1.0)
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        labels = np.array([[0], [1], [2]])
        with pytest.raises(ValueError):
            xn.Session(backend="array_api_strict").run(step, {y: labels})
        sess = xn.Session()
        with pytest.raises(ValueError):
            sess.run(step, {y: labels})
        np.testing.assert_array_equal(sess.run(w), logits)


class _Set(xn.Update):
    """w <- value, an Update with a single input."""

    def forward(self, xp, value):
        return [value]


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_update_with_one_input_and_fed_values_are_not_aliased(backend):
    with xn.Graph().as_default():
        w = xn.Variable(np.zeros(3, F32), name="w")
        x = xn.placeholder(shape=(3,), name="x")
        assign = _Set([w], x)
        step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
        sess = xn.Session(backend=backend, device="device1" if backend != "numpy" else "cpu")
        fed = np.array([1.0, 2.0, 3.0], F32)
        sess.run(assign, {x: fed})
        sess.run(step)  # w <- w - 0.5 * 2w = 0, written in place on NumPy
        np.testing.assert_array_equal(fed, [1.0, 2.0, 3.0])  # the caller's array is untouched
        np.testing.assert_array_equal(sess.run(w, to_numpy=True), np.zeros(3, F32))


def test_a_fetched_view_of_a_constant_is_a_copy():
    with xn.Graph().as_default():
        c = xn.constant(np.arange(6, dtype=F32))
        view = ops.Reshape(c, (2, 3))
        sess = xn.Session()
        got = sess.run(view)
        got += 100.0  # the caller's array
        np.testing.assert_array_equal(sess.run(view), np.arange(6, dtype=F32).reshape(2, 3))


class _SetView(xn.Update):
    """w <- a view of value (made by the update itself)."""

    def forward(self, xp, value):
        return [xp.permute_dims(value, (1, 0))]


def test_update_storing_a_view_of_a_fed_array_does_not_alias_it():
    with xn.Graph().as_default():
        w = xn.Variable(np.zeros((3, 2), F32), name="w")
        x = xn.placeholder(shape=(2, 3), name="x")
        assign = _SetView([w], x)
        step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
        sess = xn.Session()
        fed = np.arange(6, dtype=F32).reshape(2, 3)
        sess.run(assign, {x: fed})
        sess.run(step)  # w <- w - 0.5 * 2w = 0, in place
        np.testing.assert_array_equal(fed, np.arange(6, dtype=F32).reshape(2, 3))
        np.testing.assert_array_equal(sess.run(w), np.zeros((3, 2), F32))


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "torch"])
@pytest.mark.parametrize("bad", [-1, 3])
def test_sparse_ce_refuses_labels_out_of_range(backend, bad):
    """NumPy, array-api-strict and PyTorch gather index -1 from the last class: the loss and
    its gradient check label values wherever that costs no device synchronisation."""
    if backend == "torch":
        pytest.importorskip("torch")
    logits = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]], F32)
    with xn.Graph().as_default():
        y = xn.placeholder("int64", shape=(None,), name="y")
        z = xn.Variable(logits, name="z")
        loss = xn.losses.sparse_softmax_cross_entropy(y, z)
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        device = "device1" if backend == "array_api_strict" else "cpu"
        sess = xn.Session(backend=backend, device=device)
        message = rf"class indices in \[0, 3\), got {bad}"
        for fetch in (loss, step):
            with pytest.raises(ValueError, match=message):
                sess.run(fetch, {y: np.array([0, bad])})
        np.testing.assert_array_equal(sess.run(z, to_numpy=True), logits)
        sess.run(step, {y: np.array([0, 2])})  # good labels still train
        assert not np.array_equal(sess.run(z, to_numpy=True), logits)
