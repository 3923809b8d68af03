"""Regressions from the code review: each case failed (or differed across backends) once."""

import os
import stat

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close


def _run_both(build, feed_values, fetch):
    """The same graph on NumPy (fast path) and array-api-strict (portable), host results."""
    out = []
    for device, name in (("cpu", "numpy"), ("device1", "array_api_strict")):
        with xn.Graph().as_default():
            nodes = build()
            sess = xn.Session(device=device, backend=name)
            out.append(fetch(sess, nodes, feed_values))
    return out


def test_sgd_on_a_batched_matmul_matches_strict():
    x0 = np.random.default_rng(0).standard_normal((4, 5, 3))

    def build():
        x = xn.placeholder(name="x")
        w = xn.Variable(np.linspace(-1, 1, 6).reshape(3, 2), name="w")
        step = xn.train.GradientDescentOptimizer(0.01).minimize(xn.reduce_sum(xn.square(x @ w)))
        return x, w, step

    def fetch(sess, nodes, x0):
        x, w, step = nodes
        for _ in range(3):
            sess.run(step, {x: x0})
        return sess.run(w, to_numpy=True)

    fast, portable = _run_both(build, x0, fetch)
    np.testing.assert_allclose(fast, portable, rtol=1e-5)


def test_a_gradient_of_the_wrong_shape_changes_nothing(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, 2.0, 3.0], name="w")
        g = xn.placeholder(name="g")
        step = xn.train.GradientDescentOptimizer(0.1).apply_gradients([(g, w)])
        sess = xn.Session(device=dev)
        with pytest.raises(ValueError, match=r"gradient for Variable w has shape \(2, 3\)"):
            sess.run(step, {g: np.ones((2, 3))})
        assert_close(sess.run(w), [1.0, 2.0, 3.0])


def test_fetched_constants_and_torch_host_copies_are_not_live():
    with xn.Graph().as_default():
        c = xn.constant([1.0, 2.0])
        sess = xn.Session()
        first = sess.run(c)
        first += 10.0
        assert sess.run(c).tolist() == [1.0, 2.0]
    torch = pytest.importorskip("torch")
    t = torch.ones(2)
    host = xn.to_numpy(t)
    host[0] = 5.0
    assert t.tolist() == [1.0, 1.0]


def test_sparse_cross_entropy_gradient_with_a_scalar_seed():
    logits0 = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]])

    def build():
        z = xn.placeholder(name="z")
        loss = xn.losses.sparse_softmax_cross_entropy([0, 1], z, reduction="none")
        (g,) = xn.gradients(loss, [z], grad_ys=xn.constant(2.0))
        return z, g

    fast, portable = _run_both(build, logits0, lambda s, n, v: s.run(n[1], {n[0]: v},
                                                                     to_numpy=True))
    p = np.exp(logits0) / np.exp(logits0).sum(1, keepdims=True)
    expected = 2.0 * (p - np.eye(3)[[0, 1]])
    np.testing.assert_allclose(fast, expected, rtol=1e-5)
    np.testing.assert_allclose(portable, expected, rtol=1e-5)


def test_numpy_scalars_feed_every_backend(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        assert_close(xn.Session(device=dev).run(x * 2.0, {x: np.float64(3.0)}), 6.0)


def test_softmax_cross_entropy_integer_labels_and_minus_inf_logits(dev):
    with xn.Graph().as_default():
        loss = xn.losses.softmax_cross_entropy(
            np.array([[1, 0, 0]]), xn.constant([[0.0, -np.inf, 1.0]]), reduction="none")
        value = xn.to_numpy(xn.Session(device=dev).run(loss))
    np.testing.assert_allclose(value, [np.log(1 + np.e)], rtol=1e-6)


def test_fractional_data_for_an_integer_placeholder_is_refused(dev):
    with xn.Graph().as_default():
        t = xn.placeholder("int64", name="t")
        with pytest.raises(TypeError, match=r"placeholder t holds int64 but was fed fractional"):
            xn.Session(device=dev).run(t, {t: [1.7, -0.5]})
        assert xn.to_numpy(xn.Session(device=dev).run(t, {t: [1.0, 2.0]})).tolist() == [1, 2]


def test_integer_division_with_a_donated_buffer():
    with xn.Graph().as_default():
        x = xn.placeholder("int64", name="x")
        y = xn.reduce_sum(x, axis=1) / xn.reduce_sum(x, axis=1)
        out = xn.Session().run(y, {x: np.array([[1, 2], [3, 4]])})
    np.testing.assert_array_equal(out, [1.0, 1.0])


def test_argmax_needs_one_axis_and_clip_takes_numpy_bounds(dev):
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match="argmax takes one integer axis"):
            xn.argmax(xn.constant([1.0]), axis=None)
        clipped = xn.clip(xn.constant([-2.0, 0.5, 3.0]), np.float64(0.0), np.float32(1.0))
        assert_close(xn.Session(device=dev).run(clipped), [0.0, 0.5, 1.0])


def test_fit_refuses_empty_data_and_refits_with_a_new_learning_rate(tmp_path, dev):
    X, y = xn.data.make_blobs(n_per_class=10, seed=0)
    model = xn.nn.NNClassifier([2, 4, 2], device=dev)
    with pytest.raises(ValueError, match="X has no samples"):
        model.fit(X[:0], y[:0], verbose=0)
    for lr in (0.1, 0.05):  # one optimizer: its momentum carries on at the new lr
        model.fit(X, y, epochs=1, batch_size=5, optimizer="momentum", learning_rate=lr, verbose=0)
    model.session.save(tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz") as f:
        assert "layers.0/W/momentum" in f.files and "layers.0/W/momentum_1" not in f.files
    with model.graph.as_default():  # a second momentum optimizer: slot names stay unique
        xn.train.MomentumOptimizer(0.1).apply_gradients(zip(model.grad_nodes, model.params))
    model.session.save(tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz") as f:
        assert "layers.0/W/momentum" in f.files and "layers.0/W/momentum_1" in f.files


def test_checkpoints_have_a_normal_mode_and_corrupt_files_name_the_path(tmp_path):
    path = tmp_path / "w.npz"
    xn.io.save_arrays(path, {"w": np.ones(2)})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz: not a plain \.npz"):
        xn.io.load_arrays(bad)
