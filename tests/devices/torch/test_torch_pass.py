"""The PyTorch passes (``xpnn/devices/torch``) against the portable plan on PyTorch
(``Session(passes=False)``, the reference): every kernel on the same inputs as the portable
forward, the in-place updates, and whole graphs (MLP training with SGD, momentum, Nesterov
and Adam; a CNN with conv, pooling, dropout and batch normalisation; fetched
intermediates, set_value between runs, failed steps, check_numerics); and that each pass
fires (ATen calls counted with torch.profiler, Variables updated in their own tensors).
``tests/devices/test_fastpath_random.py`` runs random graph programs through the passes too."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch passes need PyTorch (pip install torch)")


import xpnn as xn  # noqa: E402
from xpnn import ops  # noqa: E402
from xpnn.devices.torch import kernels  # noqa: E402
from xpnn.executor import Executor  # noqa: E402
from xpnn.plan import Description  # noqa: E402

DEV = xn.devices.resolve("cpu", backend="torch")
F32, F64 = torch.float32, torch.float64


class Side:
    """A torch Session whose plans are compiled with the passes on (the fast side) or off."""

    def __init__(self, on, **kw):
        self.on, self.sess = on, xn.Session(backend="torch", passes=on, **kw)

    def run(self, *args, **kw):
        return self.sess.run(*args, **kw)

    def values(self, variables):
        return [xn.to_numpy(self.sess.get_value(v)) for v in variables]

    def plans(self):
        return [executor.plan for executor in self.executors()]

    def executors(self):
        return list(self.sess._executors.values())


def both(build, **kw):
    """(fast, portable): each ``(nodes, Side)`` in a fresh graph from ``build()``."""
    sides = []
    for on in (True, False):
        with xn.Graph().as_default():
            nodes = build()
            sides.append((nodes, Side(on, **kw)))
    return sides


def assert_same(got, want, exact=True, rtol=1e-6, what=""):
    """Equal shape and dtype; every value the same when ``exact`` (NaN where NaN; not the
    signs of zeros and NaNs, which torch's own maximum sets differently in its vector and
    scalar loops), else to ``rtol``."""
    got, want = xn.to_numpy(got), xn.to_numpy(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.dtype, want.dtype)
    if exact:
        np.testing.assert_array_equal(got, want, strict=True, err_msg=what)
    else:
        finite = want[np.isfinite(want)] if want.dtype.kind == "f" else want
        scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


# --------------------------------------------------------------------------- kernels


def _t(rng, shape, dtype=F32, special=False):
    a = torch.as_tensor(rng.standard_normal(shape)).to(dtype)
    if special and a.numel() >= 4:
        flat = a.view(-1)
        flat[:4] = torch.tensor([float("nan"), float("inf"), -0.0, 0.0], dtype=dtype)
    return a


def _probs(rng, shape, dtype=F32):
    p = torch.as_tensor(rng.uniform(0, 1, shape)).to(dtype)
    p.view(-1)[:2] = torch.tensor([0.0, 1.0], dtype=dtype)
    return p


def _unit(rng, shape, dtype=F32):
    return torch.as_tensor(rng.uniform(0.05, 0.95, shape)).to(dtype)


def _labels(rng, n, k, dtype=torch.int64):
    return torch.as_tensor(rng.integers(0, k, n)).to(dtype)


def _logits(rng, n=6, k=4, special=False):
    x = _t(rng, (n, k)) * 3
    if special:  # a row holding +inf, one of -inf only, one with NaN
        x[0, 1], x[1], x[2, 2] = float("inf"), float("-inf"), float("nan")
    return x


P = xn.placeholder  # the ops below are built on placeholders of a throwaway graph


def _binary(cls):
    return lambda: cls(P(), P())


# (name, op factory, inputs(rng), exact)
CASES = [
    *[(f"{c.__name__}-{s}", _binary(c), g, True) for c in (ops.Add, ops.Subtract, ops.Multiply,
                                                        ops.Divide)
      for s, g in [("bias", lambda r: [_t(r, (3, 4), special=True), _t(r, (4,))]),
                   ("same", lambda r: [_t(r, (3, 4)), _t(r, (3, 4), special=True)]),
                   ("f64", lambda r: [_t(r, (3, 4), F64), _t(r, (1, 4), F64)]),
                   ("int-float", lambda r: [torch.arange(4), _t(r, (4,))])]],
    ("Relu", lambda: ops.Relu(P()), lambda r: [_t(r, (5, 4), special=True)], True),
    ("Relu-int", lambda: ops.Relu(P()), lambda r: [torch.arange(-3, 3)], True),
    ("ReluGrad", lambda: ops.ReluGrad(P(), P()),
     lambda r: [_t(r, (5, 4), special=True), torch.relu(_t(r, (5, 4), special=True))], True),
    ("ReluGrad-broadcast", lambda: ops.ReluGrad(P(), P()),
     lambda r: [_t(r, (4,)), torch.relu(_t(r, (5, 4)))], True),
    ("Sigmoid", lambda: ops.Sigmoid(P()), lambda r: [_t(r, (5, 4), special=True) * 30], True),
    ("SigmoidGrad", lambda: ops.SigmoidGrad(P(), P()),
     lambda r: [_t(r, (5, 4), special=True), _probs(r, (5, 4))], True),
    *[(f"Clip-{lo}-{hi}", functools.partial(lambda lo, hi: ops.Clip(P(), lo, hi), lo, hi),
       lambda r: [_t(r, (5, 4), special=True)], True)
      for lo, hi in [(-1.0, 1.0), (0.0, None), (None, 0.5), (None, None)]],
    ("BinaryCrossEntropy", lambda: ops.BinaryCrossEntropy(P(), P()),  # p = 0 and 1: floored
     lambda r: [_probs(r, (5, 4)), _unit(r, (5, 4))], True),
    ("BinaryCrossEntropy-broadcast", lambda: ops.BinaryCrossEntropy(P(), P()),
     lambda r: [_probs(r, (4,)), _unit(r, (5, 4))], True),
    ("BinaryCrossEntropyGrad", lambda: ops.BinaryCrossEntropyGrad(P(), P(), P()),
     lambda r: [_t(r, (5, 4)), _probs(r, (5, 4)), _unit(r, (5, 4))], True),
    *[(f"MatMul-{name}", lambda: ops.MatMul(P(), P()), gen, True) for name, gen in [
        ("2x2", lambda r: [_t(r, (5, 3)), _t(r, (3, 4))]),
        ("2x1", lambda r: [_t(r, (5, 3)), _t(r, (3,))]),
        ("1x2", lambda r: [_t(r, (3,)), _t(r, (3, 4))]),
        ("3x2", lambda r: [_t(r, (2, 5, 3)), _t(r, (3, 4))]),
        ("f64xf32", lambda r: [_t(r, (5, 3), F64), _t(r, (3, 4))])]],
    *[(f"{c.__name__}-{name}", functools.partial(lambda c: c(P(), P(), P()), c), gen, True)
      for c in (ops.MatMulGradA, ops.MatMulGradB) for name, gen in [
          ("2x2", lambda r: [_t(r, (5, 4)), _t(r, (5, 3)), _t(r, (3, 4))]),
          ("2x1", lambda r: [_t(r, (5,)), _t(r, (5, 3)), _t(r, (3,))]),
          ("1x2", lambda r: [_t(r, (4,)), _t(r, (3,)), _t(r, (3, 4))]),
          ("1x1", lambda r: [_t(r, ()), _t(r, (3,)), _t(r, (3,))]),
          ("3x2", lambda r: [_t(r, (2, 5, 4)), _t(r, (2, 5, 3)), _t(r, (3, 4))])]],
    *[(f"SumTo-{name}", lambda: ops.SumTo(P(), P()), gen, True) for name, gen in [
        ("bias", lambda r: [_t(r, (6, 4), special=True), _t(r, (4,))]),
        ("same", lambda r: [_t(r, (6, 4)), _t(r, (6, 4))]),
        ("keepdims", lambda r: [_t(r, (6, 4)), _t(r, (1, 4))])]],
    *[(f"BroadcastBack-{axis}-{keep}-{mean}",
       functools.partial(lambda a, k, m: ops.BroadcastBack(P(), P(), a, k, m), axis, keep, mean),
       functools.partial(lambda a, k, r: [_t(r, (1, 1) if k else () if a is None else (4,)),
                                          _t(r, (6, 4))], axis, keep), True)
      for axis in (None, (0,)) for keep in (False, True) for mean in (False, True)],
]


def _sparse_cases():
    out = []
    for cls in (ops.SparseSoftmaxCrossEntropy, ops.SparseSoftmaxCrossEntropyGrad):
        grad = cls is ops.SparseSoftmaxCrossEntropyGrad
        make = functools.partial(lambda c, g: c(*[P() for _ in range(2 + g)]), cls, grad)
        label_cases = [("int64", torch.int64, False), ("nonfinite", torch.int64, True)]
        if grad:  # the portable loss's take_along_dim refuses int32 on torch (see below)
            label_cases.append(("int32", torch.int32, False))
        for name, dtype, special in label_cases:
            def gen(r, dtype=dtype, special=special, grad=grad):
                inputs = [_labels(r, 6, 4, dtype), _logits(r, special=special)]
                return ([torch.full((6,), 1 / 6)] if grad else []) + inputs
            out.append((f"{cls.__name__}-{name}", make, gen, True))
    return out


CASES += _sparse_cases()


class _DeviceReadingNothing:
    """A torch CPU device that says its values cannot be read without a sync (as CUDA)."""

    device, reads_without_sync = torch.device("cpu"), False


def _call(op, values):
    return [Description.of(v) if k in op.shape_only else v for k, v in enumerate(values)]


def _portable(op, host_reads=True):
    """The op's portable forward, run as on a device that reads values without a sync or
    not (``host_reads``)."""

    def portable(*values):
        with ops.run_context.reading(host_reads):
            return op.forward(DEV.xp, *values)

    return portable


def _run_both(op, values, device=DEV):
    host_reads = device.reads_without_sync
    portable = _portable(op, host_reads)
    want = portable(*_call(op, [v.clone() for v in values]))
    inputs = [v.clone() for v in values]
    got = kernels.kernel(op, portable, device)(*_call(op, inputs))
    for before, after in zip(values, inputs):  # no kernel writes into its inputs
        assert_same(after, before)
    return got, want


@pytest.mark.parametrize("build, gen, exact", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_kernel_matches_portable(build, gen, exact):
    with xn.Graph().as_default():
        op = build()
    got, want = _run_both(op, gen(np.random.default_rng(0)))
    assert_same(got, want, exact)


def test_every_kernel_has_cases():
    """(The conv kernels' cases are in ``test_torch_pass_conv.py``.)"""
    with xn.Graph().as_default():
        tested = {type(c[1]()) for c in CASES}
    here = {cls for cls, make in kernels.FORWARD.items() if make.__module__ == kernels.__name__}
    assert here <= tested, here - tested


def test_sparse_ce_takes_int32_labels_as_int64_ones():
    """torch's take_along_dim wants int64 indices: the kernel, like the portable forward,
    gives int32 labels the result of the same labels as int64."""
    with xn.Graph().as_default():
        op = ops.SparseSoftmaxCrossEntropy(P(), P())
    labels, logits = _labels(np.random.default_rng(0), 6, 4), _logits(np.random.default_rng(1))
    assert_same(_portable(op)(labels.int(), logits), _portable(op)(labels, logits))
    fast = kernels.kernel(op, _portable(op), DEV)
    assert_same(fast(labels.int(), logits), _portable(op)(labels, logits))


@pytest.mark.parametrize("grad", [False, True], ids=["loss", "grad"])
def test_sparse_ce_without_host_reads_gives_nan_rows_for_bad_labels(grad):
    cls = ops.SparseSoftmaxCrossEntropyGrad if grad else ops.SparseSoftmaxCrossEntropy
    with xn.Graph().as_default():
        op = cls(*[P() for _ in range(2 + grad)])
    rng = np.random.default_rng(1)
    labels = torch.tensor([0, -1, 3, 4, 2, 1])
    values = ([torch.full((6,), 0.5)] if grad else []) + [labels, _logits(rng)]
    got, want = _run_both(op, values, _DeviceReadingNothing())
    assert_same(got, want)
    assert torch.isnan(got[1]).all() and torch.isnan(got[3]).all() and not torch.isnan(got[0]).any()


@pytest.mark.parametrize("grad", [False, True], ids=["loss", "grad"])
def test_sparse_ce_bad_labels_raise_the_portable_error(grad):
    cls = ops.SparseSoftmaxCrossEntropyGrad if grad else ops.SparseSoftmaxCrossEntropy
    with xn.Graph().as_default():
        op = cls(*[P() for _ in range(2 + grad)])
    for bad in (-1, 4):
        values = ([torch.ones(2)] if grad else []) + [torch.tensor([0, bad]), torch.zeros(2, 4)]
        errors = []
        for fn in (_portable(op), kernels.kernel(op, _portable(op), DEV)):
            with pytest.raises(ValueError) as info:
                fn(*values)
            errors.append(str(info.value))
        assert errors[0] == errors[1] and f"got {bad}" in errors[0]


# --------------------------------------------------------------------------- updates


OPTIMIZERS = {
    "sgd": lambda: xn.train.GradientDescentOptimizer(0.1),
    "momentum": lambda: xn.train.MomentumOptimizer(0.05, 0.9),
    "nesterov": lambda: xn.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
    "adam": lambda: xn.train.AdamOptimizer(0.01, epsilon=1e-3),
}
SHAPES = [(3, 4), (4,), ()]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_match_portable_in_place(name, dtype):
    rng = np.random.default_rng(2)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]

    def build():
        params = [xn.Variable(v) for v in init]
        grads = [xn.placeholder(dtype=dtype if k else "float32") for k in range(len(params))]
        return params, grads, OPTIMIZERS[name]().apply_gradients(list(zip(grads, params)))

    sides = both(build)
    (params, _, _), fast = sides[0]
    held = None
    for _ in range(3):
        feeds = [rng.standard_normal(s).astype(dtype if k else "float32")
                 for k, s in enumerate(SHAPES)]
        for (_, grads, update), side in sides:
            side.run(update, dict(zip(grads, feeds)))
        held = held or dict(fast.sess._values)
        assert all(fast.sess._values[v] is t for v, t in held.items())  # written in place
        got, want = (side.values(nodes[2].targets) for nodes, side in sides)
        for g, w in zip(got, want):  # SGD and momentum round as the rule does; Adam fuses
            assert_same(g, w, exact=name != "adam", rtol=1e-6 if dtype == "float32" else 1e-12)
    assert fast.executors()[0].in_place and len(held) == len(sides[0][0][2].targets)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_updates_whose_gradients_are_variables_read_the_values_before_the_run(name):
    def build():
        w1, w2 = xn.Variable([1.0, 2.0]), xn.Variable([10.0, 20.0])
        return w1, w2, OPTIMIZERS[name]().apply_gradients([(w2, w1), (w1, w2)])

    results = []
    for (w1, w2, step), side in both(build):
        side.run(step)
        side.run(step)
        results.append(side.values([w1, w2]))
    for got, want in zip(*results):
        assert_same(got, want, exact=False)
    if name == "sgd":  # w1 = [1, 2] - 0.1 [10, 20] = 0, w2 = [9.9, 19.8]; then w1 = -0.1 w2
        np.testing.assert_allclose(results[0][0], [-0.99, -1.98], rtol=1e-6)


def test_momentum_zero_keeps_nan_of_an_infinite_velocity():
    """addmm_ ignores its input at beta 0; the portable 0 * inf is NaN and must stay so."""
    def build():
        x = xn.placeholder(shape=(None, 3))
        w = xn.Variable(np.ones((3, 2), np.float32))
        opt = xn.train.MomentumOptimizer(0.1, 0.0)
        return x, w, opt.minimize(xn.reduce_sum(x @ w))

    results = []
    for (x, w, step), side in both(build):
        side.run(step, {x: np.ones((2, 3), np.float32)})
        slot = [v for v in w.graph.variables if not v.trainable][0]
        side.sess.set_value(slot, np.full((3, 2), np.inf, np.float32))
        side.run(step, {x: np.ones((2, 3), np.float32)})
        results.append(side.values([w, slot]))
    for g, w in zip(*results):
        assert_same(g, w, exact=False)
    assert np.isnan(results[0][0]).all()


# --------------------------------------------------------------------------- whole graphs


def _mlp(optimizer, units=(5, 8, 6, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = xn.placeholder("float32", (None, units[0]), name="x")
    labels = xn.placeholder("int64", (None,), name="labels")
    h, hidden = x, []
    for k, (n_in, n_out) in enumerate(zip(units[:-1], units[1:])):
        w = xn.Variable((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
                        name=f"W{k}")
        b = xn.Variable(rng.standard_normal(n_out).astype(np.float32) * 0.1, name=f"b{k}")
        z = h @ w + b
        h = xn.relu(z) if k < len(units) - 2 else z
        hidden.append(z)
    loss = xn.losses.sparse_softmax_cross_entropy(labels, h)
    opt = OPTIMIZERS[optimizer]()
    return {"x": x, "labels": labels, "logits": h, "hidden": hidden, "loss": loss,
            "opt": opt, "step": opt.minimize(loss)}


def _batch(seed, n=7, d=5, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, k, n)


def _compare_variables(sides, rtol=1e-5):
    """Every Variable of the fast side's graph (optimizer slots too) against the portable's."""
    (_, fast), (_, portable) = sides
    ours, theirs = fast.sess.graph.variables, portable.sess.graph.variables
    for v, got, want in zip(ours, fast.values(ours), portable.values(theirs)):
        assert_same(got, want, exact=False, rtol=rtol, what=v.label)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_mlp_training_matches_portable(optimizer):
    sides = both(lambda: _mlp(optimizer))
    for run in range(5):
        X, y = _batch(run, n=7 if run < 4 else 3)
        losses = []
        for nodes, side in sides:
            if run == 3:  # hyper-parameters are read at every run
                nodes["opt"].learning_rate *= 0.5
                if optimizer == "momentum":
                    nodes["opt"].use_nesterov = True
            _, loss = side.run([nodes["step"], nodes["loss"]], {nodes["x"]: X, nodes["labels"]: y})
            losses.append(loss)
        assert_same(losses[0], losses[1], exact=False, rtol=1e-5)
        _compare_variables(sides)
    (_, fast), _ = sides
    w0 = fast.sess.graph.variables[0]
    assert not np.allclose(fast.values([w0])[0], w0.initial_value)  # it did train


def _cnn():
    x = xn.placeholder("float32", (None, 6, 6, 1), name="x")
    labels = xn.placeholder("int64", (None,), name="labels")
    training = xn.placeholder("bool", (), name="training")
    net = xn.nn.Sequential(
        xn.nn.Conv2D(1, 3, 3, padding="SAME", seed=1), xn.nn.BatchNorm(3, momentum=0.9),
        xn.nn.ReLU(), xn.nn.MaxPool2D(2), xn.nn.Flatten(), xn.nn.Dropout(0.3),
        xn.nn.Linear(27, 4, seed=2))
    logits = net(x, training)
    loss = xn.losses.sparse_softmax_cross_entropy(labels, logits)
    step = xn.train.MomentumOptimizer(0.05, 0.9).minimize(loss, net.parameters())
    return {"x": x, "labels": labels, "training": training, "logits": logits, "loss": loss,
            "train": [step, *net.updates(), loss]}


def test_cnn_with_batchnorm_and_dropout_matches_portable():
    sides = both(_cnn, seed=3)
    rng = np.random.default_rng(4)
    for _ in range(3):
        X = rng.standard_normal((5, 6, 6, 1)).astype(np.float32)
        y = rng.integers(0, 4, 5)
        out = [side.run(n["train"], {n["x"]: X, n["labels"]: y, n["training"]: True})
               for n, side in sides]
        assert_same(out[0][-1], out[1][-1], exact=False, rtol=1e-5)
        _compare_variables(sides)
    logits = [side.run(n["logits"], {n["x"]: X, n["training"]: False}) for n, side in sides]
    assert_same(logits[0], logits[1], exact=False, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_without_host_reads_as_on_cuda_matches_portable(optimizer, monkeypatch):
    """The paths a CUDA device takes, run on the CPU: no label check on the host (a bad label
    gives NaN rows), Adam's step sizes kept on the device."""
    from xpnn.devices.torch import TorchDevice

    monkeypatch.setattr(TorchDevice, "reads_without_sync", property(lambda d: False))
    sides = both(lambda: _mlp(optimizer))
    for run in range(3):
        X, y = _batch(run)
        if run == 2:
            y[0] = 5  # three classes
        losses = [side.run([n["step"], n["loss"]], {n["x"]: X, n["labels"]: y})[1]
                  for n, side in sides]
        assert_same(losses[0], losses[1], exact=False, rtol=1e-5)
        _compare_variables(sides)
    assert np.isnan(losses[0].item())


def test_fetched_intermediates_match_portable_and_are_not_changed_later():
    def build():
        nodes = _mlp("sgd")
        w0 = nodes["step"].graph.variables[0]
        nodes["grads"] = xn.gradients(nodes["loss"], [w0, nodes["hidden"][0]])
        nodes["w0"], nodes["product"] = w0, nodes["hidden"][0].inputs[0]  # x @ W0, unfused
        return nodes

    sides = both(build)
    held = []
    for run in range(3):
        X, y = _batch(run)
        outs = []
        for n, side in sides:
            fetches = [n["step"], n["w0"], n["product"], n["hidden"], n["logits"], n["grads"],
                       n["loss"]]
            outs.append(side.run(fetches, {n["x"]: X, n["labels"]: y}))
        for got, want in zip(_flat(outs[0][1:]), _flat(outs[1][1:])):
            assert_same(got, want, exact=False, rtol=1e-5)
        held.append((outs[0][1], outs[0][1].clone()))  # W0 as fetched, before the update
        outs[0][4][...] = 7.0  # the caller owns fetched values
    for tensor, copy in held:
        assert_same(tensor, copy)
    _compare_variables(sides)


def _flat(values):
    if isinstance(values, (list, tuple)):
        return [v for x in values for v in _flat(x)]
    return [values]


def test_set_value_between_runs():
    sides = both(lambda: _mlp("adam"))
    rng = np.random.default_rng(5)
    for run in range(3):
        X, y = _batch(run)
        for n, side in sides:
            side.run(n["step"], {n["x"]: X, n["labels"]: y})
        new_w = rng.standard_normal((5, 8)).astype(np.float32)
        new_m = rng.standard_normal((8,)).astype(np.float32)
        for n, side in sides:
            graph = n["step"].graph
            side.sess.set_value(graph.variables[0], new_w)
            slot = [v for v in graph.variables if v.label.endswith("b0/adam_m")][0]
            side.sess.set_value(slot, new_m)
        _compare_variables(sides)


def _values_before(side):
    return {v.label: xn.to_numpy(side.sess.get_value(v)) for v in side.sess.graph.variables}


def _unchanged(side, before):
    for v in side.sess.graph.variables:
        np.testing.assert_array_equal(xn.to_numpy(side.sess.get_value(v)), before[v.label])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_failed_step_changes_no_variable_and_names_the_op(optimizer):
    def build():
        nodes = _mlp(optimizer)
        nodes["free_x"] = xn.placeholder(name="free_x")  # any shape: fails in the matmul
        nodes["free_step"] = xn.train.GradientDescentOptimizer(0.1).minimize(
            xn.reduce_sum(xn.square(nodes["free_x"] @ nodes["step"].graph.variables[0])))
        return nodes

    sides = both(build)
    X, y = _batch(0)
    for n, side in sides:
        side.run(n["step"], {n["x"]: X, n["labels"]: y})
    messages = []
    for n, side in sides:
        before = _values_before(side)
        bad = y.copy()
        bad[-1] = 3  # three classes: out of range
        with pytest.raises(xn.OpError) as label_error:
            side.run(n["step"], {n["x"]: X, n["labels"]: bad})
        _unchanged(side, before)
        with pytest.raises(xn.OpError) as shape_error:
            side.run(n["free_step"], {n["free_x"]: np.ones((2, 4), np.float32)})
        _unchanged(side, before)
        messages.append([str(e.value).splitlines()[0].split(":")[0]
                         for e in (label_error, shape_error)])
    assert messages[0] == messages[1]
    assert "SparseSoftmaxCrossEntropy" in messages[0][0] and "MatMul" in messages[0][1]


def test_check_numerics_session_checks_every_op_and_updates_portably():
    sides = both(lambda: _mlp("momentum"), check_numerics=True)
    X, y = _batch(0)
    for n, side in sides:
        side.run(n["step"], {n["x"]: X, n["labels"]: y})
    assert not sides[0][1].executors()[0].in_place  # new values are checked before written
    _compare_variables(sides)
    messages = []
    for n, side in sides:
        before = _values_before(side)
        bad = X.copy()
        bad[0, 0] = np.inf
        with pytest.raises(xn.NumericsError) as error:
            side.run(n["step"], {n["x"]: bad, n["labels"]: y})
        _unchanged(side, before)
        messages.append(str(error.value).splitlines()[0])
    assert messages[0] == messages[1]


def test_check_numerics_op_fails_the_step_before_any_write():
    def build():
        nodes = _mlp("sgd")
        nodes["checked"] = xn.check_numerics(nodes["loss"], "the loss")
        return nodes

    for n, side in both(build):
        X, y = _batch(0)
        side.run([n["step"], n["checked"]], {n["x"]: X, n["labels"]: y})
        before = _values_before(side)
        X[0, 0] = np.nan
        with pytest.raises(xn.NumericsError, match="the loss"):
            side.run([n["step"], n["checked"]], {n["x"]: X, n["labels"]: y})
        _unchanged(side, before)


def test_session_values_never_track_gradients():
    def build():
        nodes = _mlp("adam")
        g = xn.placeholder(name="g")
        bias = nodes["step"].graph.variables[1]
        nodes["user"] = xn.train.GradientDescentOptimizer(0.1).apply_gradients([(g, bias)])
        nodes["g"] = g
        return nodes

    (n, side), _ = both(build)
    X, y = _batch(0)
    x = torch.tensor(X, requires_grad=True)
    out = side.run([n["step"], n["logits"], n["loss"]], {n["x"]: x, n["labels"]: y})
    side.run(n["user"], {n["g"]: torch.ones(8, requires_grad=True)})
    assert not any(v.requires_grad for v in side.sess._values.values())
    assert not any(v.requires_grad for v in out[1:])


class _Assign(xn.train.Optimizer):
    """A portable step setting each Variable to its "gradient" (a target network's copy)."""

    def update(self, xp, param, grad):
        return (grad,)


def test_a_new_value_sharing_another_variables_tensor_is_copied():
    def build():
        u, v = xn.Variable([1.0, 2.0], name="u"), xn.Variable([0.0, 0.0], name="v")
        copy = _Assign(1.0).apply_gradients([(u, v)])
        sgd = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(u * u), [u])
        return u, v, copy, sgd

    results = []
    for (u, v, copy, sgd), side in both(build):
        side.run(copy)  # v := u
        side.run(sgd)  # u updated in place: v must keep u's old value
        results.append(side.values([u, v]))
    np.testing.assert_allclose(results[0][1], [1.0, 2.0])
    for got, want in zip(*results):
        assert_same(got, want)


def test_feeds_share_host_memory_only_when_no_copy_is_asked():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = DEV.from_host(a)
    assert np.shares_memory(shared.numpy(), a)
    assert not np.shares_memory(DEV.from_host(a, copy=True).numpy(), a)
    a.flags.writeable = False  # a read-only array is copied (torch warns on a view of one)
    assert not np.shares_memory(DEV.from_host(a).numpy(), a)
    assert not np.shares_memory(DEV.from_host(np.asfortranarray(a)).numpy(), a)
    reversed_rows = np.arange(6.0)[::-1]  # torch has no negative strides
    np.testing.assert_array_equal(DEV.from_host(reversed_rows).numpy(), reversed_rows)


# --------------------------------------------------------------------------- the passes fire


def _aten_calls(side, fetches, feed):
    from torch.profiler import ProfilerActivity, profile

    side.run(fetches, feed)  # compile first
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        side.run(fetches, feed)
    return {e.key: e.count for e in prof.key_averages() if e.key.startswith("aten::")}


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_training_step_uses_addmm_and_updates_in_place(optimizer):
    sides = both(lambda: _mlp(optimizer))
    X, y = _batch(0)
    counts = [_aten_calls(side, n["step"], {n["x"]: X, n["labels"]: y}) for n, side in sides]
    fast, portable = counts
    assert fast.get("aten::addmm") == 3 and "aten::addmm" not in portable  # x @ W + b
    if optimizer == "adam":  # on the CPU a foreach op still calls one ATen op per tensor
        assert fast.get("aten::_foreach_addcdiv_") == 1
        assert sum(fast.values()) < 0.95 * sum(portable.values()), (fast, portable)
    else:  # the weight gradients accumulated into the weights / velocities
        assert fast.get("aten::addmm_") == 3 and fast.get("aten::mm") == 2
        assert sum(fast.values()) < 0.7 * sum(portable.values()), (fast, portable)
    assert "aten::arange" not in fast and "aten::arange" in portable  # constants made once
    assert fast.get("aten::_to_copy", 0) <= 2  # ReLU masks made in the gradient's dtype


def test_passes_off_leave_the_portable_plan():
    X, y = _batch(0)
    executors = []
    for n, side in both(lambda: _mlp("sgd")):
        side.run(n["step"], {n["x"]: X, n["labels"]: y})
        executors.append(side.executors()[0])
    assert executors[0].in_place and type(executors[1]) is Executor
    fast, portable = (executor.plan for executor in executors)
    portable_fns = [isinstance(s.fn, functools.partial) for s in portable.steps
                    if s.kind == "value"]
    fast_fns = [isinstance(s.fn, functools.partial) for s in fast.steps if s.kind == "value"]
    assert all(portable_fns) and not any(fast_fns)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")
def test_training_step_on_cuda_makes_no_host_synchronisation():
    with xn.Graph().as_default():
        nodes = _mlp("adam")
        sess = xn.Session(device="cuda", backend="torch")
    X, y = _batch(0)
    feed = {nodes["x"]: torch.tensor(X, device="cuda"), nodes["labels"]: torch.tensor(y).cuda()}
    sess.run(nodes["step"], feed)  # compiles; makes the Variables
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        sess.run(nodes["step"], feed)
        sess.run(nodes["step"], feed)
    finally:
        torch.cuda.set_sync_debug_mode("default")
