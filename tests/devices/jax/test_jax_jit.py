"""The JAX pass (``xpnn/devices/jax``): a plan compiled into one ``jax.jit`` call must give
what the portable eager path (``Session(jit=False)``) gives on the same inputs: training
steps with every optimizer, a CNN with dropout and batch normalisation, fetched
intermediates, batch sizes that hit the compilation cache, Variables set between runs,
failures that change nothing and name the op; and a step must be one compiled call.
(``tests/devices/test_fastpath_random.py`` runs random programs through both paths too.)"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

jax = pytest.importorskip("jax", reason="jax is not installed: the JAX pass is not tested")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OPTIMIZERS = {
    "sgd": lambda: xn.train.GradientDescentOptimizer(0.1),
    "momentum": lambda: xn.train.MomentumOptimizer(0.05, 0.9),
    "nesterov": lambda: xn.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
    "adam": lambda: xn.train.AdamOptimizer(0.01),
}


def _runner(sess, fetches=None):
    """The runner of ``sess``'s only plan, or of the plan that fetched ``fetches``."""
    if fetches is None:
        (executor,) = sess._executors.values()
        return executor

    def fetched(key):
        if isinstance(fetches, xn.Node):
            return key[0] is fetches
        nodes = key[0][1] if isinstance(key[0], tuple) else ()
        return len(nodes) == len(fetches) and all(a is b for a, b in zip(nodes, fetches))

    return next(executor for key, executor in sess._executors.items() if fetched(key))


def _close(got, want, rtol=2e-5, atol=1e-6, what=""):
    np.testing.assert_allclose(xn.to_numpy(got), xn.to_numpy(want), rtol=rtol, atol=atol,
                               err_msg=what)


def _data(n=40, d=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, classes, n)


class MLP:
    """A 12-16-8-3 ReLU MLP with softmax cross-entropy, one Session."""

    def __init__(self, optimizer, jit, seed=0, units=(12, 16, 8, 3)):
        self.graph = xn.Graph()
        with self.graph.as_default():
            self.x = xn.placeholder(shape=(None, units[0]), name="x")
            self.t = xn.placeholder("int64", (None,), name="t")
            rng = xn.init.generator(seed)
            h, self.hidden = self.x, []
            for k, (n_in, n_out) in enumerate(zip(units[:-1], units[1:])):
                w = xn.Variable(xn.init.he_normal((n_in, n_out), rng), name=f"w{k}")
                b = xn.Variable(np.zeros(n_out, np.float32), name=f"b{k}")
                h = h @ w + b
                if k < len(units) - 2:
                    h = xn.relu(h)
                    self.hidden.append(h)
            self.logits = h
            self.loss = xn.losses.sparse_softmax_cross_entropy(self.t, h)
            self.optimizer = OPTIMIZERS[optimizer]()
            self.step = self.optimizer.minimize(self.loss)
            self.sess = xn.Session(backend="jax", jit=jit)

    def feed(self, X, y):
        return {self.x: X, self.t: y}

    def state(self):
        return {v.label: xn.to_numpy(self.sess.get_value(v)) for v in self.graph.variables}


def _pair(optimizer="sgd", **kw):
    return MLP(optimizer, True, **kw), MLP(optimizer, False, **kw)


def _same_state(jit, eager, rtol=2e-5, atol=1e-6):
    got, want = jit.state(), eager.state()
    assert sorted(got) == sorted(want)
    for name in want:
        _close(got[name], want[name], rtol, atol, what=f"Variable {name}")


# --------------------------------------------------------------------------- equal to eager


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_mlp_training_steps_match_the_eager_path(optimizer):
    X, y = _data()
    jit, eager = _pair(optimizer)
    for start in range(0, 40, 8):
        feeds = [m.feed(X[start:start + 8], y[start:start + 8]) for m in (jit, eager)]
        got = jit.sess.run([jit.step, jit.loss, jit.hidden[0]], feeds[0])
        want = eager.sess.run([eager.step, eager.loss, eager.hidden[0]], feeds[1])
        assert got[0] is None and want[0] is None
        _close(got[1], want[1], what="loss")
        _close(got[2], want[2], what="fetched hidden activation")
    _same_state(jit, eager)  # weights, biases and every optimizer slot (Adam's t too)
    assert not _runner(jit.sess, [jit.step, jit.loss, jit.hidden[0]]).eager


def test_fetching_intermediates_gradients_and_variables_alone_matches_eager():
    X, y = _data()
    jit, eager = _pair("adam")
    for model in (jit, eager):
        model.sess.run(model.step, model.feed(X[:8], y[:8]))
    for make in (lambda m: [m.logits, m.hidden[1], xn.gradients(m.loss, [m.logits])[0]],
                 lambda m: m.graph.variables[0],
                 lambda m: {"probs": xn.softmax(m.logits), "loss": m.loss}):
        with jit.graph.as_default():
            got = jit.sess.run(make(jit), jit.feed(X[8:16], y[8:16]), to_numpy=True)
        with eager.graph.as_default():
            want = eager.sess.run(make(eager), eager.feed(X[8:16], y[8:16]), to_numpy=True)
        if isinstance(want, dict):
            got, want = [got[k] for k in sorted(want)], [want[k] for k in sorted(want)]
        for g, w in zip(np.atleast_1d(got) if not isinstance(got, list) else got,
                        np.atleast_1d(want) if not isinstance(want, list) else want):
            _close(g, w)


def _cnn_session(jit, seed=3):
    graph = xn.Graph()
    with graph.as_default():
        x = xn.placeholder(shape=(None, 8, 8, 1), name="x")
        t = xn.placeholder("int64", (None,), name="t")
        training = xn.placeholder("bool", (), name="training")
        net = xn.nn.Sequential(
            xn.nn.Conv2D(1, 4, 3, padding="SAME", seed=0), xn.nn.BatchNorm(4),
            xn.nn.ReLU(), xn.nn.MaxPool2D(2), xn.nn.Conv2D(4, 4, 3, seed=1),
            xn.nn.AvgPool2D(3, padding="SAME"), xn.nn.Flatten(), xn.nn.Dropout(0.3),
            xn.nn.Linear(4, 2, seed=2))
        logits = net(x, training)
        dropped = logits.inputs[0].inputs[0]  # the dropout's output, before the Linear
        loss = xn.losses.sparse_softmax_cross_entropy(t, logits)
        step = [xn.train.MomentumOptimizer(0.05, 0.9).minimize(loss), *net.updates()]
        sess = xn.Session(backend="jax", seed=seed, jit=jit)
    return graph, sess, (x, t, training), (step, loss, dropped)


def test_cnn_with_conv_pool_dropout_and_batch_norm_matches_eager():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, 12)
    results = []
    for jit in (True, False):
        graph, sess, (x, t, training), (step, loss, dropped) = _cnn_session(jit)
        out = []
        for k in range(4):
            batch = slice(0, 12 if k % 2 else 8)  # two batch sizes
            out.append(sess.run([*step, loss, dropped],
                                {x: X[batch], t: y[batch], training: True}, to_numpy=True))
        out.append(sess.run([loss, dropped], {x: X, t: y, training: False}, to_numpy=True))
        state = [xn.to_numpy(sess.get_value(v)) for v in graph.variables]
        results.append((out, state))
        if jit:
            runner = _runner(sess, [*step, loss, dropped])
            assert not runner.eager, runner.reason
            assert runner.traces[0] == 2 * 2  # per batch size: one trace to record, one to run
    (got, got_state), (want, want_state) = results
    for run_got, run_want in zip(got, want):
        dropped_got, dropped_want = run_got[-1], run_want[-1]
        # the same dropout masks: the Session's generator draws the same numbers in order
        np.testing.assert_array_equal(dropped_got == 0, dropped_want == 0)
        for g, w in zip(run_got, run_want):
            if w is not None:
                _close(g, w, rtol=1e-4, atol=1e-5)
    for g, w in zip(got_state, want_state):  # BatchNorm's moving averages too
        _close(g, w, rtol=1e-4, atol=1e-5)


def test_dropout_masks_are_the_portable_paths_bit_for_bit():
    x0 = np.arange(1.0, 61.0, dtype=np.float32).reshape(5, 12)
    outs = []
    for jit in (True, False):
        with xn.Graph().as_default():
            x = xn.placeholder(name="x")
            first = xn.dropout(x, rate=0.25)
            second = xn.dropout(xn.reshape(x, (-1, 6)), rate=0.5) * 2.0
            sess = xn.Session(backend="jax", seed=11, jit=jit)
            outs.append([xn.to_numpy(v) for k in (5, 5, 3, 5)
                         for v in sess.run([first, second], {x: x0[:k]})])
    for got, want in zip(*outs):  # each mask drawn in the portable path's order
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- the cache


def test_batch_sizes_hit_the_cache_and_match_eager():
    X, y = _data(n=64)
    jit, eager = _pair("momentum")
    sizes = [16, 16, 7, 16, 7, 3, 16]
    start = 0
    for n in sizes:
        for model in (jit, eager):
            got = model.sess.run([model.step, model.loss],
                                 model.feed(X[start:start + n], y[start:start + n]))
            model.last = got[1]
        _close(jit.last, eager.last, what=f"loss at batch size {n}")
        start = (start + n) % 40
    runner = _runner(jit.sess)
    assert runner.traces[0] == 3  # one trace per batch size (no random op: no second)
    assert len(runner.entries) == 3
    assert [e.jitted._cache_size() for e in runner.entries.values()] == [1, 1, 1]
    _same_state(jit, eager)


def test_a_training_step_is_one_compiled_call():
    X, y = _data()
    model = MLP("adam", True)
    feed = model.feed(X[:8], y[:8])
    model.sess.run([model.step, model.loss], feed)
    runner = _runner(model.sess)
    calls, program_runs = [0], [0]
    (entry,) = runner.entries.values()
    jitted, program = entry.jitted, runner.program

    def counted_jitted(*args):
        calls[0] += 1
        return jitted(*args)

    def counted_program(values):
        program_runs[0] += 1
        return program(values)

    entry.jitted, runner.program = counted_jitted, counted_program
    for _ in range(5):
        model.sess.run([model.step, model.loss], feed)
    assert calls[0] == 5  # one XLA call a run: forward, backward and every Adam update
    assert program_runs[0] == 0  # no op ran eagerly (the program runs only inside a trace)
    assert runner.traces[0] == 1 and jitted._cache_size() == 1


def test_a_repeated_step_calls_its_entry_again_and_other_feeds_are_still_checked(monkeypatch):
    """A run with the last run's fetches and fed placeholders, fed host arrays of the shapes
    and dtypes its entry was traced for, calls that entry again without the Session's feed
    loop or the runner's lookup (``Runner.repeat``); any other feed, a bad label or a
    changed optimizer attribute takes the checked path, with the eager path's errors."""
    X, y = _data()
    jit, eager = _pair("momentum")
    fetches = {model: [model.step, model.loss] for model in (jit, eager)}

    def step(X, y):
        losses = [model.sess.run(fetches[model], model.feed(X, y))[1] for model in (jit, eager)]
        _close(*losses, what="loss")
        _same_state(jit, eager)

    step(X[:8], y[:8])
    runner = _runner(jit.sess)
    checked, call = [], runner.call
    monkeypatch.setattr(runner, "call", lambda values: checked.append(1) or call(values))
    step(X[8:16], y[8:16])
    step(X[16:24], y[16:24])
    assert checked == []  # the entry called again: no Session feed loop, no lookup
    step(X[:8].astype(np.float64), y[:8])  # converted on the checked path
    step(X[:5], y[:5])  # another batch size: checked, a new entry
    assert len(checked) == 2
    step(X[5:10], y[5:10])
    assert len(checked) == 2 and runner.traces[0] == 2
    before = jit.state()
    with pytest.raises(ValueError, match=r"placeholder x expects shape \('\?', 12\)"):
        jit.sess.run(fetches[jit], jit.feed(np.ones((5, 11), np.float32), y[:5]))
    bad = y[:5].copy()
    bad[2] = 7
    with pytest.raises(xn.OpError, match=r"labels must be class indices in \[0, 3\), got 7"):
        jit.sess.run(fetches[jit], jit.feed(X[:5], bad))
    after = jit.state()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    for model in (jit, eager):  # an attribute the compiled call was traced with: checked
        model.optimizer.use_nesterov = True
    step(X[:5], y[:5])
    assert runner.traces[0] == 3


def test_a_new_learning_rate_is_followed_without_compiling_again():
    X, y = _data()
    jit, eager = _pair("momentum")
    for lr, momentum in ((0.1, 0.9), (0.01, 0.5), (0.3, 0.0)):
        for model in (jit, eager):
            model.optimizer.learning_rate, model.optimizer.momentum = lr, momentum
            model.sess.run(model.step, model.feed(X[:8], y[:8]))
        _same_state(jit, eager)
    assert _runner(jit.sess).traces[0] == 1
    for model in (jit, eager):  # Nesterov's flag decides the program: it compiles anew
        model.optimizer.use_nesterov = True
        model.sess.run(model.step, model.feed(X[:8], y[:8]))
    _same_state(jit, eager)
    assert _runner(jit.sess).traces[0] == 2


def _live_executables():
    """XLA's count of loaded executables (None where this jaxlib does not tell)."""
    client = getattr(jax.devices()[0], "client", None)
    live = getattr(client, "live_executables", None)
    return None if live is None else len(live())


def test_the_cache_keeps_the_last_32_batch_sizes_and_frees_the_others():
    import gc
    import weakref

    from xpnn.devices.jax.runner import CACHE_SIZE

    X, y = _data(n=48)
    jit = MLP("sgd", True, units=(12, 3))
    sizes = [*range(1, 41), 1]  # 40 sizes, then the first again (evicted by then)
    for n in sizes[:2]:
        jit.sess.run(jit.step, jit.feed(X[:n], y[:n]))
    runner = _runner(jit.sess)
    first = weakref.ref(runner.entries[next(iter(runner.entries))].jitted)
    before = _live_executables()
    for n in sizes[2:]:
        jit.sess.run(jit.step, jit.feed(X[:n], y[:n]))
        assert len(runner.entries) <= CACHE_SIZE == 32
    assert len(runner.entries) == CACHE_SIZE and runner.traces[0] == len(sizes)
    assert [key[0][0][0][0] for key in runner.entries][-3:] == [39, 40, 1]  # least recent first
    gc.collect()
    assert first() is None  # the evicted entry's function is gone, with JAX's caches of it
    if before is not None:
        assert _live_executables() - before <= CACHE_SIZE - 2


def test_xpnn_jit_cache_sets_the_bound_and_the_most_recent_sizes_stay(monkeypatch):
    monkeypatch.setenv("XPNN_JIT_CACHE", "2")
    X, y = _data()
    jit, eager = _pair("momentum", units=(12, 3))
    for n in (4, 5, 4, 6, 4, 5):  # 4 is used again before each new size: it stays cached
        for model in (jit, eager):
            model.sess.run(model.step, model.feed(X[:n], y[:n]))
    runner = _runner(jit.sess)
    assert [key[0][0][0][0] for key in runner.entries] == [4, 5]
    assert runner.traces[0] == 4  # 4, 5, 6, then 5 again (evicted by 6)
    _same_state(jit, eager)
    for bad in ("0", "-3", "lots"):
        monkeypatch.setenv("XPNN_JIT_CACHE", bad)
        model = MLP("sgd", True)
        with pytest.raises(ValueError, match="XPNN_JIT_CACHE=.*integer >= 1"):
            model.sess.run(model.step, model.feed(X[:4], y[:4]))


# --------------------------------------------------------------------------- Variables


def test_set_value_between_runs_is_used_by_the_next_step():
    X, y = _data()
    jit, eager = _pair("adam")
    rng = np.random.default_rng(5)
    for _ in range(3):
        for model in (jit, eager):
            model.sess.run(model.step, model.feed(X[:8], y[:8]))
        value = rng.standard_normal((12, 16)).astype(np.float32)
        for model in (jit, eager):
            model.sess.set_value(model.graph.variables[0], value)
        _same_state(jit, eager)
    for model in (jit, eager):
        model.sess.run(model.step, model.feed(X[:8], y[:8]))
    _same_state(jit, eager)


def test_values_handed_out_survive_the_donation_of_the_buffers():
    X, y = _data()
    model = MLP("momentum", True)
    sess, w, feed = model.sess, model.graph.variables[0], model.feed(X[:8], y[:8])
    held, fetched = sess.get_value(w), sess.run(w)
    before = xn.to_numpy(held)
    sess.run(model.step, feed)  # donates the buffer of w's value
    old = sess.run([model.step, w], feed)[1]  # w's value before this step
    old_value = xn.to_numpy(old)
    for _ in range(3):
        sess.run(model.step, feed)
    for array, value in ((held, before), (fetched, before), (old, old_value)):
        assert not array.is_deleted()  # not given to a donating step, and unchanged
        np.testing.assert_array_equal(xn.to_numpy(array), value)
    assert not np.array_equal(xn.to_numpy(sess.get_value(w)), old_value)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_each_variable_keeps_its_own_buffer_from_step_to_step(optimizer):
    # A weight and its optimizer slot have one shape: donated out of order, jax.jit would
    # give each one's new value the other's buffer, and XLA would copy both every step.
    X, y = _data()
    model = MLP(optimizer, True)
    sess, feed = model.sess, model.feed(X[:8], y[:8])
    sess.run(model.step, feed)  # compiles
    arrays = [v for v in model.graph.variables if sess._values[v].ndim]  # the stored values
    assert len(arrays) >= 2 * 6  # the weights and biases, and their slots
    before = [sess._values[v].unsafe_buffer_pointer() for v in arrays]
    sess.run(model.step, feed)
    assert [sess._values[v].unsafe_buffer_pointer() for v in arrays] == before


def test_fed_arrays_can_be_changed_as_soon_as_run_returns():
    # A compiled call may run after it returns, reading a host array JAX did not copy.
    rng = np.random.default_rng(0)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 512), name="x")
        w = xn.Variable(rng.standard_normal((512, 512)).astype(np.float32) / 20)
        y = xn.reduce_sum(xn.tanh(xn.tanh(x @ w) @ w))
        sess, eager = xn.Session(backend="jax"), xn.Session(backend="jax", jit=False)
        for _ in range(3):
            data = np.ones((2048, 512), np.float32)
            want = float(eager.run(y, {x: data}))
            got = sess.run(y, {x: data})
            data[...] = 0.0  # the caller reuses its buffer
            np.testing.assert_allclose(float(got), want, rtol=1e-4)


# --------------------------------------------------------------------------- failures


def _bad_feed(model):
    """A feed that passes the placeholder's shape check but fails in the first matmul."""
    return {model.x: np.ones((8, 12), np.float32)[:, :11], model.t: np.zeros(8, np.int64)}


def test_a_failed_step_names_the_op_as_eager_does_and_changes_no_variable():
    X, y = _data()
    errors = []
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")  # no static shape: the matmul fails at run time
        w = xn.Variable(np.ones((12, 3), np.float32), name="w")
        loss = xn.reduce_sum(xn.square(xn.matmul(xn.tanh(x), w, name="layer")))
        step = xn.train.AdamOptimizer(0.1).minimize(loss)
        for jit in (True, False):
            sess = xn.Session(backend="jax", jit=jit)
            sess.run(step, {x: X[:4]})
            before = {v: xn.to_numpy(sess.get_value(v)) for v in w.graph.variables}
            with pytest.raises(xn.OpError) as info:
                sess.run([step, loss], {x: X[:4, :11]})
            errors.append(str(info.value))
            for v, value in before.items():  # Adam's slots and t included
                np.testing.assert_array_equal(xn.to_numpy(sess.get_value(v)), value)
            sess.run(step, {x: X[:4]})  # and the step still runs (compiled, on JAX)
            if jit:
                assert not _runner(sess, step).eager
    assert errors[0] == errors[1]
    assert "layer (MatMul) failed" in errors[0] and "no Variable was changed" in errors[0]


def test_an_update_of_the_wrong_shape_fails_as_eager_does():
    messages = []
    for jit in (True, False):
        with xn.Graph().as_default():
            x = xn.placeholder(name="x")
            w = xn.Variable(np.ones(3, np.float32), name="w")
            step = xn.train.GradientDescentOptimizer(0.1).apply_gradients([(x, w)])
            sess = xn.Session(backend="jax", jit=jit)
            with pytest.raises(xn.OpError) as info:
                sess.run(step, {x: np.ones(4, np.float32)})
            messages.append(str(info.value))
            np.testing.assert_array_equal(xn.to_numpy(sess.run(w)), [1.0, 1.0, 1.0])
            sess.run(step, {x: np.ones(3, np.float32)})
            np.testing.assert_allclose(xn.to_numpy(sess.run(w)), [0.9, 0.9, 0.9], rtol=1e-6)
            if jit:
                assert not _runner(sess, step).eager  # the plan stays compiled
    assert messages[0] == messages[1]
    assert "has shape (4,) but the Variable has shape (3,)" in messages[0]


class _PositivePart(xn.Operation):
    """x's positive entries: a shape that depends on the values, which no trace knows."""

    def forward(self, xp, x):
        return x[x > 0]


def test_a_plan_that_cannot_be_traced_falls_back_to_the_eager_program():
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0, 2.0], name="w")
        loss = xn.reduce_sum(w * xn.reduce_sum(_PositivePart(x)))
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess, eager = xn.Session(backend="jax"), xn.Session(backend="jax", jit=False)
        for feed in ([1.0, -2.0, 3.0], [-1.0, 2.0]):
            _close(sess.run([step, loss], {x: feed})[1], eager.run([step, loss], {x: feed})[1])
        runner = _runner(sess, [step, loss])
        assert runner.eager and "NonConcreteBooleanIndexError" in runner.reason
        _close(sess.run(w), eager.run(w))


def test_check_numerics_ops_are_compiled_and_fail_as_eager_does():
    messages, values = [], []
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0, 2.0], name="w")
        checked = xn.check_numerics(xn.log(x) * w, "bad loss")
        step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(checked))
        for jit in (True, False):
            sess = xn.Session(backend="jax", jit=jit)
            sess.run(step, {x: [1.0, 2.0]})
            before = [xn.to_numpy(sess.get_value(v)) for v in w.graph.variables]
            with pytest.raises(xn.NumericsError) as info:
                sess.run([step, checked], {x: [-1.0, 0.0]})
            messages.append(str(info.value))
            for v, value in zip(w.graph.variables, before):  # Adam's slots too
                np.testing.assert_array_equal(xn.to_numpy(sess.get_value(v)), value)
            sess.run(step, {x: [3.0, 2.0]})
            values.append(xn.to_numpy(sess.run(w)))
            if jit:
                assert not _runner(sess, step).eager
    assert messages[0] == messages[1]
    assert "bad loss: 1 NaN and 1 inf in float32 shape (2,)" in messages[0]
    _close(values[0], values[1])


def test_a_check_numerics_session_runs_the_portable_program():
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0], name="w")
        step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(xn.log(x) * w))
        sess = xn.Session(backend="jax", check_numerics=True)
        sess.run(step, {x: [2.0]})
        assert _runner(sess).reason == "not compiled"
        with pytest.raises(xn.NumericsError, match="Log"):
            sess.run(step, {x: [-1.0]})
        _close(sess.run(w), [1.0 - 0.1 * np.log(2.0)])


def test_jit_false_and_xpnn_jit_0_keep_the_portable_path(monkeypatch):
    with xn.Graph().as_default():
        w = xn.Variable([1.0], name="w")
        step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w))
        off = xn.Session(backend="jax", jit=False)
        monkeypatch.setenv("XPNN_JIT", "0")
        env = xn.Session(backend="jax")
        monkeypatch.setenv("XPNN_JIT", "1")
        on = xn.Session(backend="jax")
        for sess in (off, env, on):
            sess.run(step)
        assert not hasattr(_runner(off), "eager") and not hasattr(_runner(env), "eager")
        assert not _runner(on).eager


def test_host_labels_out_of_range_fail_before_the_call_as_eager_does():
    """Traced ops cannot read labels: fed host labels are checked on the host before the
    compiled call, with the eager path's error; the plan stays compiled."""
    X, y = _data()
    errors = []
    for model in _pair("adam"):
        model.sess.run(model.step, model.feed(X[:8], y[:8]))
        before = model.state()
        bad = y[:8].copy()
        bad[3] = 3
        with pytest.raises(xn.OpError) as info:
            model.sess.run([model.step, model.loss], model.feed(X[:8], bad))
        errors.append(str(info.value))
        after = model.state()
        for name, value in before.items():
            np.testing.assert_array_equal(after[name], value, err_msg=name)
    # The same error; what it lists of the inputs differs (compiled, the logits are not kept).
    assert errors[0].splitlines()[0] == errors[1].splitlines()[0]
    assert "labels must be class indices in [0, 3), got 3" in errors[0]
    jit = _pair("adam")[0]
    jit.sess.run(jit.step, jit.feed(X[:8], y[:8]))
    assert not _runner(jit.sess).eager


def test_a_fed_dropout_rate_out_of_range_fails_before_the_call_as_eager_does():
    """Traced, DropoutMaskOf cannot read its rate: a host-fed rate is checked on the host
    before the compiled call, with the eager path's error; nothing is drawn or written, and
    the plan stays compiled (it used to fall back to the eager program for good)."""
    X = _data()[0][:8]
    errors, values = [], []
    with xn.Graph().as_default():
        x, rate = xn.placeholder(name="x"), xn.placeholder(shape=(), name="rate")
        w = xn.Variable(np.full((12, 3), 0.1, np.float32), name="w")
        loss = xn.reduce_sum(xn.square(xn.dropout(xn.matmul(x, w), rate=rate)))
        step = xn.train.AdamOptimizer(0.1).minimize(loss)
        for jit in (True, False):
            sess = xn.Session(backend="jax", jit=jit, seed=0)
            sess.run(step, {x: X, rate: 0.5})
            before = {v: xn.to_numpy(sess.get_value(v)) for v in w.graph.variables}
            with pytest.raises(xn.OpError) as info:
                sess.run([step, loss], {x: X, rate: 1.5})
            errors.append(str(info.value))
            for v, value in before.items():  # Adam's slots and t included
                np.testing.assert_array_equal(xn.to_numpy(sess.get_value(v)), value)
            sess.run(step, {x: X, rate: 0.25})  # the next mask: no draw was spent
            values.append(xn.to_numpy(sess.run(w)))
            if jit:
                assert not _runner(sess, step).eager
    assert errors[0].splitlines()[0] == errors[1].splitlines()[0]
    assert "(DropoutMaskOf) failed" in errors[0] and "rate must lie in [0, 1), got 1.5" in errors[0]
    assert "no Variable was changed" in errors[0]
    _close(values[0], values[1])


def test_a_dropout_rate_computed_in_the_graph_is_not_read_by_the_compiled_call():
    """A rate that is no host feed (TF1's 1 - keep_prob) is not checked in a compiled plan:
    a bad one gives a NaN mask, as on a device that cannot read it."""
    with xn.Graph().as_default():
        keep = xn.placeholder(shape=(), name="keep_prob")
        y = xn.dropout(xn.constant(np.ones(4, np.float32)), rate=1.0 - keep)
        sess = xn.Session(backend="jax", seed=0)
        assert np.isnan(xn.to_numpy(sess.run(y, {keep: -0.5}))).all()
        assert not _runner(sess).eager


def test_labels_computed_in_the_graph_are_not_read_by_the_compiled_call():
    """Labels that are no host feed (a constant here) are not checked in a compiled plan:
    a bad one gives its row a NaN loss, as on a device that cannot read them."""
    with xn.Graph().as_default():
        logits = xn.Variable(np.zeros((3, 4), np.float32))
        per_row = xn.losses.sparse_softmax_cross_entropy(np.array([0, 7, 2]), logits,
                                                         reduction="none")
        sess = xn.Session(backend="jax")
        got = xn.to_numpy(sess.run(per_row))
    assert np.isnan(got[1]) and np.allclose(got[[0, 2]], np.log(4.0))
    assert not _runner(sess).eager
