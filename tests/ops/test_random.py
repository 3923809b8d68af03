"""Random ops (``xpnn/ops/random.py``): new values at every run, the host draw of their seed on
every backend (so every backend gives the same sequence), each Session starting a seeded
op's sequence over, the distributions' shapes, dtypes and ranges, no gradient through them;
and under the device passes (JAX's compiled call, PyTorch's kernels) the portable path's
values, new at every run."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import to_numpy


def host(seed):
    """The generator a seeded op's first run draws from."""
    return np.random.Generator(np.random.PCG64(seed))


def reference_truncated(rng, shape):
    values = rng.standard_normal(shape)
    while (np.abs(values) > 2.0).any():
        outside = np.abs(values) > 2.0
        values[outside] = rng.standard_normal(int(outside.sum()))
    return values


def _ops():
    """Each kind of random op, seeded, and its first draw computed on the host."""
    pairs = []
    pairs.append((xn.random_normal((3, 4), mean=1.0, stddev=2.0, seed=(7, 1)),
                  (host((7, 1)).standard_normal((3, 4)) * 2.0 + 1.0).astype(np.float32)))
    pairs.append((xn.truncated_normal((50,), stddev=0.5, seed=(7, 2)),
                  (reference_truncated(host((7, 2)), (50,)) * 0.5).astype(np.float32)))
    pairs.append((xn.random_uniform((6,), -2.0, 3.0, seed=(7, 3)),
                  (host((7, 3)).random((6,)) * 5.0 - 2.0).astype(np.float32)))
    pairs.append((xn.random_uniform((20,), 0, 4, dtype="int32", seed=(7, 4)),
                  host((7, 4)).integers(0, 4, (20,)).astype(np.int32)))
    rows = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    pairs.append((xn.random_shuffle(xn.constant(rows), seed=5), rows[host(5).permutation(6)]))
    return pairs


def test_the_first_run_draws_the_seeds_host_values_on_every_backend(dev):
    with xn.Graph().as_default():
        nodes, want = zip(*_ops())
        got = xn.Session(device=dev).run(list(nodes), to_numpy=True)
    for g, w, node in zip(got, want, nodes):
        assert g.dtype == w.dtype and g.shape == node.shape, node.type
        np.testing.assert_array_equal(g, w, err_msg=node.type)  # host draws: bit for bit


def test_every_run_draws_anew_and_every_session_starts_over(dev):
    with xn.Graph().as_default():
        nodes = [n for n, _ in _ops()] + [xn.random_normal((4,))]  # the last: no seed
        first, second = xn.Session(device=dev, seed=1), xn.Session(device=dev, seed=1)
        runs = [first.run(nodes, to_numpy=True) for _ in range(3)]
        again = [second.run(nodes, to_numpy=True) for _ in range(3)]
        other = xn.Session(device=dev, seed=2).run(nodes, to_numpy=True)
    for k, node in enumerate(nodes):
        assert not np.array_equal(runs[0][k], runs[1][k]), node.type
        assert not np.array_equal(runs[1][k], runs[2][k]), node.type
        for a, b in zip(runs, again):
            np.testing.assert_array_equal(a[k], b[k], err_msg=node.type)
    for k in range(len(nodes) - 1):  # a seeded op ignores the Session's seed
        np.testing.assert_array_equal(other[k], runs[0][k])
    assert not np.array_equal(other[-1], runs[0][-1])  # an unseeded one draws from it


def test_the_distributions(dev):
    with xn.Graph().as_default():
        normal = xn.random_normal((20000,), mean=3.0, stddev=0.5, seed=0)
        truncated = xn.truncated_normal((20000,), mean=-1.0, stddev=2.0, seed=1)
        uniform = xn.random_uniform((20000,), -1.0, 1.0, seed=2)
        dice = xn.random_uniform((20000,), 1, 7, dtype="int64", seed=3)
        wide = xn.random_normal((100,), dtype="float64", seed=4)
        n, t, u, d, w = xn.Session(device=dev).run([normal, truncated, uniform, dice, wide],
                                                   to_numpy=True)
    assert (n.dtype, t.dtype, u.dtype, d.dtype, w.dtype) == (
        "float32", "float32", "float32", "int64", "float64")
    assert abs(n.mean() - 3.0) < 0.02 and abs(n.std() - 0.5) < 0.02  # 4 standard errors
    assert t.min() >= -5.0 and t.max() <= 3.0  # within two stddev of the mean
    assert abs(t.mean() + 1.0) < 0.06 and abs(t.std() - 2.0 * 0.8796) < 0.06  # truncation's
    assert u.min() >= -1.0 and u.max() < 1.0 and abs(u.mean()) < 0.02
    assert set(np.unique(d).tolist()) == {1, 2, 3, 4, 5, 6}
    assert abs((d == 6).mean() - 1 / 6) < 0.015


def test_uniform_floats_stay_below_maxval_after_rounding():
    op = xn.random.RandomUniform((4,), 0.0, 1.0)

    class Top:  # a generator whose draws round to 1.0 in float32
        def random(self, shape):
            return np.full(shape, 1.0 - 2.0**-30)

    values = op.sample(Top(), (4,))
    assert values.dtype == np.float32 and (values < 1.0).all()


def test_a_shuffle_keeps_the_rows_and_draws_a_new_order_every_run(dev):
    rows = np.arange(40.0, dtype=np.float32).reshape(20, 2)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 2), name="x")
        shuffled = xn.random_shuffle(x)
        sess = xn.Session(device=dev, seed=0)
        a, b = (sess.run(shuffled, {x: rows}, to_numpy=True) for _ in range(2))
        short = sess.run(shuffled, {x: rows[:5]}, to_numpy=True)
    for out in (a, b):
        np.testing.assert_array_equal(out[np.argsort(out[:, 0])], rows)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(np.sort(short[:, 0]), rows[:5, 0])


def test_no_gradient_flows_into_a_random_op_and_a_run_draws_it_once(dev):
    with xn.Graph().as_default():
        w = xn.Variable(np.ones(5, np.float32), name="w")
        noise = xn.random_normal((5,), seed=1)
        loss = xn.reduce_sum(w * noise + noise)
        grad_w, grad_noise = xn.gradients(loss, [w, noise])
        assert xn.gradients(loss, [xn.random_shuffle(w)]) == [None]
        sess = xn.Session(device=dev)
        drawn, g, gn = sess.run([noise, grad_w, grad_noise], to_numpy=True)
    np.testing.assert_array_equal(g, drawn)  # the same draw in the loss and the fetch
    np.testing.assert_array_equal(gn, w.initial_value + 1.0)  # a leaf: autodiff's input


def test_a_training_step_with_noise_in_its_loss(dev):
    X = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    Y = X @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    with xn.Graph().as_default():
        x, y = xn.placeholder(shape=(None, 3), name="x"), xn.placeholder(name="y")
        w = xn.Variable(np.zeros((3, 1), np.float32), name="w")
        noisy = x + xn.random_normal((32, 3), stddev=0.01, seed=3)
        loss = xn.reduce_mean(xn.square(xn.matmul(noisy, w) - y))
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev)
        losses = [float(to_numpy(sess.run([step, loss], {x: X, y: Y})[1])) for _ in range(60)]
        got = to_numpy(sess.get_value(w))
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(got.ravel(), [1.0, -2.0, 0.5], atol=0.05)


def test_bad_arguments_are_named():
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match="minval 2 must be below maxval 1"):
            xn.random_uniform((2,), 2, 1, dtype="int32")
        with pytest.raises(TypeError, match="not a number type"):
            xn.random_uniform((2,), dtype="bool")
        with pytest.raises(ValueError, match="is a scalar"):
            xn.random_shuffle(xn.constant(1.0))


# --------------------------------------------------------------------------- device passes


def _noisy_step(seed=None):
    """A graph with every kind of random op in a training step: (its input, fetches)."""
    x = xn.placeholder(shape=(None, 4), name="x")
    w = xn.Variable(np.full((4, 2), 0.5, np.float32), name="w")
    noise = xn.random_normal((4, 2), stddev=0.1, seed=seed)
    kept = xn.cast(xn.random_uniform((4, 2), 0, 2, dtype="int32", seed=seed), "float32")
    h = xn.matmul(xn.random_shuffle(x, seed=seed), w + noise * kept)
    loss = xn.reduce_mean(xn.square(h - xn.truncated_normal((2,), seed=seed)))
    return x, [xn.train.GradientDescentOptimizer(0.1).minimize(loss), loss, noise, h, w]


def _runs(sess, graph, n=4):
    x, fetches = graph
    x0 = np.arange(24.0, dtype=np.float32).reshape(6, 4) / 10
    return [[to_numpy(v) for v in sess.run(fetches, {x: x0})[1:]] for _ in range(n)]


def _assert_fresh_and_equal(fast, portable):
    """The noise new every run and the portable path's bit for bit; what is computed from
    it the portable path's to rounding (a compiled call sums in its own order)."""
    assert not np.array_equal(fast[0][1], fast[1][1])
    for a, b in zip(fast, portable):
        np.testing.assert_array_equal(a[1], b[1])
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [None, 9])
def test_the_jax_compiled_call_draws_the_portable_values_anew_every_run(seed):
    pytest.importorskip("jax", reason="jax is not installed")
    sides = []
    for jit in (True, False):
        with xn.Graph().as_default():
            graph = _noisy_step(seed)
            sess = xn.Session(backend="jax", seed=4, passes=jit)
            sides.append(_runs(sess, graph))
            if jit:  # compiled (not fallen back), its draws passed in as arguments
                runner = next(e for e in sess._executors.values() if e.plan.updates)
                assert not runner.eager, runner.reason
                (entry,) = runner.entries.values()
                assert len(entry.draws) == 4 and runner.traces[0] == 2
    _assert_fresh_and_equal(*sides)


def test_the_torch_passes_draw_the_portable_values_anew_every_run():
    pytest.importorskip("torch", reason="torch is not installed")
    sides = []
    for passes in (True, False):
        with xn.Graph().as_default():
            graph = _noisy_step(9)
            sides.append(_runs(xn.Session(backend="torch", seed=4, passes=passes), graph))
    _assert_fresh_and_equal(*sides)


def test_the_numpy_passes_draw_what_the_portable_path_draws():
    pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    sides = []
    for device, backend in (("cpu", "numpy"), ("device1", "array_api_strict")):
        with xn.Graph().as_default():
            graph = _noisy_step(None)
            sides.append(_runs(xn.Session(device=device, backend=backend, seed=4), graph))
    _assert_fresh_and_equal(*sides)
