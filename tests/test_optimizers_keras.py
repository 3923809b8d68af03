"""Optimizers for the Keras user (issue #28): ``xn.train.get`` by Keras's names and default
rates, AdamW against PyTorch's, ``clipnorm``/``clipvalue``/``global_clipnorm`` against
NumPy and PyTorch (and the devices' in-place updates kept), and ``accumulate=k`` against
one batch of k times the rows; on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance

RNG = np.random.default_rng(7)
X0 = RNG.standard_normal((12, 3))
Y0 = RNG.standard_normal((12, 2))
W0 = RNG.standard_normal((3, 2))
B0 = RNG.standard_normal(2)

# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name, cls, rate", [
    ("sgd", "GradientDescentOptimizer", 0.01),
    ("momentum", "MomentumOptimizer", 0.01),
    ("nesterov", "MomentumOptimizer", 0.01),
    ("adam", "AdamOptimizer", 0.001),
    ("adamw", "AdamWOptimizer", 0.001),
    ("rmsprop", "RMSPropOptimizer", 0.001),
    ("adagrad", "AdagradOptimizer", 0.001),
])
def test_get_gives_each_name_with_keras_default_rate(name, cls, rate):
    for spelling in (name, name.upper(), name.capitalize()):
        opt = xn.train.get(spelling)
        assert type(opt).__name__ == cls and opt.learning_rate == rate
    assert xn.train.get(name, 0.5).learning_rate == 0.5
    assert xn.optimizers.get(name, learning_rate=0.25, clipnorm=2.0).clipnorm == 2.0


def test_get_reads_keras_spellings_and_sgd_with_momentum():
    assert xn.train.get("nesterov").use_nesterov and not xn.train.get("momentum").use_nesterov
    assert xn.train.get("momentum").momentum == 0.9
    opt = xn.train.get("sgd", momentum=0.5, nesterov=True)
    assert type(opt) is xn.train.MomentumOptimizer and opt.momentum == 0.5 and opt.use_nesterov
    assert type(xn.train.get("sgd", momentum=0.0)) is xn.train.GradientDescentOptimizer
    adam = xn.train.get("adam", beta_1=0.8, beta_2=0.99)
    assert (adam.beta1, adam.beta2, adam.epsilon) == (0.8, 0.99, 1e-7)  # Keras's epsilon
    assert xn.train.get("rmsprop", rho=0.5).decay == 0.5
    assert xn.train.get("adamw").weight_decay == 0.004  # Keras's; the class's is PyTorch's
    assert xn.train.AdamWOptimizer().weight_decay == 0.01


def test_get_passes_an_optimizer_through():
    opt = xn.train.MomentumOptimizer(0.1)
    assert xn.train.get(opt) is opt and opt.learning_rate == 0.1
    assert xn.train.get(opt, learning_rate=0.2) is opt and opt.learning_rate == 0.2
    with pytest.raises(ValueError, match=r"options \['clipnorm'\].*give them to its constructor"):
        xn.train.get(opt, clipnorm=1.0)


def test_get_names_the_choices_for_an_unknown_optimizer_or_option():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamax': use one of 'sgd', "
                                         r"'momentum', 'nesterov', 'adam', 'adamw', 'rmsprop', "
                                         r"'adagrad'"):
        xn.train.get("adamax")
    with pytest.raises(ValueError, match="unknown optimizer 3"):
        xn.train.get(3)
    with pytest.raises(ValueError, match=r"AdagradOptimizer takes no option beta1; its "
                                         r"options: learning_rate, initial_accumulator_value"):
        xn.train.get("adagrad", beta_1=0.9)


def _quadratic(opt, dtype="float64"):
    """A least-squares fit of x @ w + b to y, minimized by ``opt``: (x, y, w, b, step)."""
    x = xn.placeholder(shape=(None, 3), name="x", dtype=dtype)
    y = xn.placeholder(shape=(None, 2), name="y", dtype=dtype)
    w = xn.Variable(W0.astype(dtype), name="w")
    b = xn.Variable(B0.astype(dtype), name="b")
    loss = xn.reduce_mean(xn.square(x @ w + b - y))
    return x, y, w, b, opt.minimize(loss), loss


def _numpy_gradients(w, b, X, Y):
    r = 2.0 * (X @ w + b - Y) / Y.size
    return X.T @ r, r.sum(0)


def test_rmsprop_by_name_is_keras_rmsprop(dev):
    """Keras's RMSprop: the mean square starts at 0 (TF1's at 1), epsilon 1e-7 inside the
    root: ms = rho ms + (1 - rho) g^2, w -= lr g / sqrt(ms + eps)."""
    with xn.Graph().as_default():
        x, y, w, b, step, _ = _quadratic(xn.train.get("rmsprop", 0.01))
        sess = xn.Session(device=dev)
        params, ms = [W0, B0], [np.zeros_like(W0), np.zeros_like(B0)]
        for _ in range(3):
            sess.run(step, {x: X0, y: Y0})
            for i, g in enumerate(_numpy_gradients(*params, X0, Y0)):
                ms[i] = 0.9 * ms[i] + 0.1 * g * g
                params[i] = params[i] - 0.01 * g / np.sqrt(ms[i] + 1e-7)
        np.testing.assert_allclose(sess.run(w, to_numpy=True), params[0], **tolerance("float64"))
        np.testing.assert_allclose(sess.run(b, to_numpy=True), params[1], **tolerance("float64"))


def test_adamw_matches_torch(dev):
    torch = pytest.importorskip("torch", reason="AdamW is checked against torch.optim.AdamW")
    # epsilon 0: xpnn adds it to sqrt(v), PyTorch to the bias-corrected sqrt(v_hat)
    with xn.Graph().as_default():
        opt = xn.train.AdamWOptimizer(0.05, weight_decay=0.3, epsilon=0.0)
        x, y, w, b, step, _ = _quadratic(opt)
        sess = xn.Session(device=dev)
        tw, tb = (torch.tensor(a, requires_grad=True) for a in (W0, B0))
        reference = torch.optim.AdamW([tw, tb], lr=0.05, weight_decay=0.3, eps=0.0)
        for _ in range(5):
            sess.run(step, {x: X0, y: Y0})
            reference.zero_grad()
            ((torch.tensor(X0) @ tw + tb - torch.tensor(Y0)) ** 2).mean().backward()
            reference.step()
        for ours, theirs in ((w, tw), (b, tb)):
            np.testing.assert_allclose(sess.run(ours, to_numpy=True), theirs.detach().numpy(),
                                       **tolerance("float64"))


# --------------------------------------------------------------------------- clipping

CLIPS = [("clipnorm", 0.3), ("clipvalue", 0.05), ("global_clipnorm", 0.3)]


def _clipped(grads, option, limit):
    """Keras's clipping in NumPy."""
    if option == "clipvalue":
        return [np.clip(g, -limit, limit) for g in grads]
    if option == "clipnorm":
        return [g * limit / max(np.linalg.norm(g), limit) for g in grads]
    if option == "global_clipnorm":
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        return [g * limit / max(norm, limit) for g in grads]
    return grads


@pytest.mark.parametrize("option, limit", CLIPS)
def test_clipping_matches_numpy_with_and_without_the_devices_passes(dev, option, limit):
    raw = _numpy_gradients(W0, B0, X0, Y0)
    assert not np.allclose(_clipped(raw, option, limit)[0], raw[0])  # the limit bites
    for clip in (None, option):  # unclipped, then clipped
        options = {} if clip is None else {clip: limit}
        for passes in (True, False):  # False: the portable executor, no in-place kernel
            with xn.Graph().as_default():
                opt = xn.train.GradientDescentOptimizer(0.5, **options)
                x, y, w, b, step, _ = _quadratic(opt)
                sess = xn.Session(device=dev, passes=passes)
                sess.run(step, {x: X0, y: Y0})
                for v, start, g in zip((w, b), (W0, B0), _clipped(raw, clip, limit)):
                    np.testing.assert_allclose(sess.run(v, to_numpy=True), start - 0.5 * g,
                                               **tolerance("float64"))


@pytest.mark.parametrize("option", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_clipping_matches_torch(dev, option):
    torch = pytest.importorskip("torch", reason="clipping is checked against torch's")
    from torch.nn.utils import clip_grad_norm_, clip_grad_value_

    limit = 0.05 if option == "clipvalue" else 0.3
    with xn.Graph().as_default():
        opt = xn.train.MomentumOptimizer(0.5, 0.9, **{option: limit})
        x, y, w, b, step, _ = _quadratic(opt)
        sess = xn.Session(device=dev)
        tw, tb = (torch.tensor(a, requires_grad=True) for a in (W0, B0))
        reference = torch.optim.SGD([tw, tb], lr=0.5, momentum=0.9)
        for _ in range(3):
            sess.run(step, {x: X0, y: Y0})
            reference.zero_grad()
            ((torch.tensor(X0) @ tw + tb - torch.tensor(Y0)) ** 2).mean().backward()
            if option == "clipvalue":
                clip_grad_value_([tw, tb], limit)
            elif option == "clipnorm":  # each gradient by its own norm
                clip_grad_norm_([tw], limit)
                clip_grad_norm_([tb], limit)
            else:
                clip_grad_norm_([tw, tb], limit)
            reference.step()
        for ours, theirs in ((w, tw), (b, tb)):  # torch divides by the norm + 1e-6: 1e-5
            np.testing.assert_allclose(sess.run(ours, to_numpy=True), theirs.detach().numpy(),
                                       rtol=1e-5, atol=1e-8)


def _in_place(sess) -> list:
    executor = next(e for e in sess._executors.values() if e.plan.updates)
    return [u in executor.in_place for u in executor.plan.updates]


@pytest.mark.backends("numpy", "torch", "cupy", "cupy_standin")
@pytest.mark.parametrize("make", ["GradientDescentOptimizer", "MomentumOptimizer",
                                  "AdamOptimizer"])
@pytest.mark.parametrize("option, limit", CLIPS)
def test_clipped_steps_keep_the_in_place_update_kernels(dev, make, option, limit):
    """The clipping is graph ops before the update: the update itself is the optimizer's
    own, which the devices with in-place kernels still write in place, as without it."""
    for options in ({}, {option: limit}):
        with xn.Graph().as_default():
            opt = getattr(xn.train, make)(0.1, **options)
            x, y, w, b, step, _ = _quadratic(opt, dtype="float32")
            sess = xn.Session(device=dev)
            sess.run(step, {x: X0, y: Y0})
            assert _in_place(sess) == [True], options


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_clipping_lets_a_nonfinite_gradient_through(dev):
    """A gradient with an infinity is not scaled to zeros: the step gives NaN, which fit's
    NaN check (and check_numerics) can see."""
    with xn.Graph().as_default():
        w = xn.Variable(np.array([1.0, 2.0]), name="w")
        scale = xn.placeholder(shape=(), name="scale", dtype="float64")
        step = xn.train.GradientDescentOptimizer(0.1, global_clipnorm=1.0).minimize(
            xn.reduce_sum(w * scale))
        sess = xn.Session(device=dev)
        sess.run(step, {scale: np.inf})
        assert np.isnan(sess.run(w, to_numpy=True)).all()


@pytest.mark.parametrize("option", ["clipnorm", "global_clipnorm"])
def test_a_float16_gradient_norm_does_not_overflow(dev, option):
    """Gradients 600 and 800: their squares overflow float16 (max 65504), so the norm is
    summed in float32 and the clip gives 0.6 and 0.8, not NaN."""
    if not hasattr(dev.xp, "float16"):
        pytest.skip(f"{dev.backend} has no float16 (the array API standard has none)")
    with xn.Graph().as_default():
        start = np.array([3.0, 4.0], dtype=np.float16)
        w = xn.Variable(start, name="w")
        opt = xn.train.GradientDescentOptimizer(0.5, **{option: 1.0})
        step = opt.minimize(xn.reduce_sum(w * w * 100.0))
        sess = xn.Session(device=dev)
        sess.run(step)
        got = sess.run(w, to_numpy=True)
    assert got.dtype == np.float16
    g = 200.0 * start.astype(np.float64)
    np.testing.assert_allclose(got, start - 0.5 * g / np.linalg.norm(g), **tolerance("float16"))


@pytest.mark.parametrize("options, message", [
    ({"clipnorm": 1.0, "clipvalue": 1.0}, r"at most one of clipnorm, clipvalue and "
                                          r"global_clipnorm \(as in Keras\), got"),
    ({"clipnorm": 1.0, "global_clipnorm": 1.0}, "at most one of"),
    ({"clipnorm": -1.0}, "clipnorm must be a finite number > 0, got -1.0"),
    ({"global_clipnorm": float("inf")}, "global_clipnorm must be a finite number > 0"),
    ({"accumulate": 0}, r"accumulate must be a whole number >= 1 \(the runs whose gradients "
                        r"make one update\), got 0"),
    ({"accumulate": 2.5}, "accumulate must be a whole number >= 1"),
    ({"accumulate": True}, "accumulate must be a whole number >= 1"),
])
def test_bad_options_are_refused_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        xn.train.AdamOptimizer(**options)


# --------------------------------------------------------------------------- accumulation


@pytest.mark.parametrize("name, options", [
    ("sgd", {}), ("nesterov", {}), ("adam", {}), ("adamw", {}), ("rmsprop", {}),
    ("adagrad", {}), ("adam", {"global_clipnorm": 0.2}), ("momentum", {"clipnorm": 0.2}),
])
def test_accumulate_k_runs_step_as_one_batch_of_k_times_the_rows(dev, name, options):
    """k = 3 runs of 4 rows: the first two change no Variable (slots neither), the third
    takes the step one run of all 12 rows takes (the clip applied to the mean gradient);
    twice over."""
    k, rows = 3, 4
    with xn.Graph().as_default():
        x, y, w, b, step, _ = _quadratic(xn.train.get(name, 0.05, accumulate=k, **options))
        sess = xn.Session(device=dev)
    with xn.Graph().as_default():
        bx, by, bw, bb, big_step, _ = _quadratic(xn.train.get(name, 0.05, **options))
        big = xn.Session(device=dev)
    slots = step.targets[2:-3]  # the optimizer's; then 2 accumulators and the counter
    for _ in range(2):
        before = [sess.run(v, to_numpy=True) for v in [w, b, *slots]]
        for i in range(k):
            part = slice(i * rows, (i + 1) * rows)
            if i == k - 1:
                assert not np.array_equal(sess.run(step.targets[-3], to_numpy=True), 0)
            sess.run(step, {x: X0[part], y: Y0[part]})
            if i < k - 1:
                for v, old in zip([w, b, *slots], before):
                    assert np.array_equal(sess.run(v, to_numpy=True), old), v.label
        big.run(big_step, {bx: X0, by: Y0})
        for ours, theirs in ((w, bw), (b, bb)):
            np.testing.assert_allclose(sess.run(ours, to_numpy=True),
                                       big.run(theirs, to_numpy=True), **tolerance("float64"))


def test_accumulating_steps_are_not_written_in_place(dev):
    with xn.Graph().as_default():
        x, y, w, b, step, _ = _quadratic(xn.train.AdamOptimizer(0.1, accumulate=2), "float32")
        sess = xn.Session(device=dev)
        sess.run(step, {x: X0, y: Y0})
        assert _in_place(sess) == [False]


def test_a_failed_accumulating_run_changes_nothing(dev):
    """A run that fails (a batch whose x and y rows differ) leaves the Variables,
    accumulators and counter as they were: the next good run completes the same mean."""
    with xn.Graph().as_default():
        x, y, w, b, step, loss = _quadratic(xn.train.GradientDescentOptimizer(0.5, accumulate=2))
        sess = xn.Session(device=dev)
        sess.run(step, {x: X0[:6], y: Y0[:6]})
        state = [v for v in step.targets if v not in (w, b)]
        before = [sess.run(v, to_numpy=True) for v in state]
        with pytest.raises(xn.OpError, match="no Variable was changed by this run"):
            sess.run(step, {x: X0[6:], y: Y0[8:]})
        for v, old in zip(state, before):
            assert np.array_equal(sess.run(v, to_numpy=True), old), v.label
        assert np.array_equal(sess.run(w, to_numpy=True), W0)
        sess.run(step, {x: X0[6:], y: Y0[6:]})
        gw, gb = _numpy_gradients(W0, B0, X0, Y0)
        np.testing.assert_allclose(sess.run(w, to_numpy=True), W0 - 0.5 * gw,
                                   **tolerance("float64"))
        np.testing.assert_allclose(sess.run(b, to_numpy=True), B0 - 0.5 * gb,
                                   **tolerance("float64"))


def test_the_new_value_of_an_accumulating_step_is_what_it_writes(dev):
    """A read after the step (``graph.new_value``, TF1's control_dependencies) sees the
    Variable unchanged on a run that only accumulates, and updated on the k-th."""
    with xn.Graph().as_default():
        x, y, w, b, step, _ = _quadratic(xn.train.GradientDescentOptimizer(0.5, accumulate=2))
        after = xn.graph.new_value(step, w)
        sess = xn.Session(device=dev)
        first, _ = sess.run([after, step], {x: X0[:6], y: Y0[:6]}, to_numpy=True)
        np.testing.assert_array_equal(first, W0)
        second, _ = sess.run([after, step], {x: X0[6:], y: Y0[6:]}, to_numpy=True)
        np.testing.assert_array_equal(second, sess.run(w, to_numpy=True))
        gw, _ = _numpy_gradients(W0, B0, X0, Y0)
        np.testing.assert_allclose(second, W0 - 0.5 * gw, **tolerance("float64"))


def test_accumulate_with_a_learning_rate_node(dev):
    with xn.Graph().as_default():
        rate = xn.placeholder(shape=(), name="rate", dtype="float64")
        x, y, w, b, step, _ = _quadratic(xn.train.GradientDescentOptimizer(rate, accumulate=2))
        sess = xn.Session(device=dev)
        sess.run(step, {x: X0[:6], y: Y0[:6], rate: 9.0})  # the rate of the k-th run counts
        sess.run(step, {x: X0[6:], y: Y0[6:], rate: 0.5})
        gw, _ = _numpy_gradients(W0, B0, X0, Y0)
        np.testing.assert_allclose(sess.run(w, to_numpy=True), W0 - 0.5 * gw,
                                   **tolerance("float64"))


def test_accumulate_refuses_a_sparse_update():
    with xn.Graph().as_default():
        table = xn.Variable(np.ones((4, 2)), name="table")
        opt = xn.train.MomentumOptimizer(0.1, sparse=True, accumulate=2)
        with pytest.raises(ValueError, match=r"MomentumOptimizer\(sparse=True\) updates only "
                                             r"the rows.*use sparse=False with accumulate"):
            opt.minimize(xn.reduce_sum(xn.embedding_lookup(table, [0, 2])))
