"""The CuPy pass (``xpnn/devices/cupy``) against the portable plan (``Session(passes=False)``).

Written where no GPU is: every test runs on the stand-in ("standin": NumPy arrays, the
kernels' traced statements run by the reference fuser), and again on a GPU ("cuda": the
compiled kernels) where CuPy and a CUDA device are present; skipped with the reason
elsewhere, failing instead with ``XPNN_REQUIRE_CUPY=1`` (``benchmarks/gpu_check.sh``).

- formulas: the traced statements compute the formula (bit for bit on the stand-in; the
  printed source compiled, on a GPU), and a few printed kernels read as they should;
- kernels: the cross-entropy kernels against the portable forward on the same inputs;
- plans: whole graphs (MLPs with SGD, momentum, Nesterov and Adam; tanh, sigmoid, dense
  cross-entropy) against the portable plan, with the kernels each step launches counted,
  and the rules (fetched values, check_numerics, a rate that is a node, gradients that are
  Variables, bad labels, errors, float16) that keep a step portable.
``tests/devices/test_fastpath_random.py`` runs random graph programs through the pass too."""

from __future__ import annotations

from collections import Counter

import array_api_compat
import numpy as np
import pytest

import xpnn as xn
from tests.conftest import _unavailable, skip_or_fail
from xpnn import ops
from xpnn.devices.cupy import chains, cuda, formulas, kernels, reference, source
from xpnn.devices.cupy_standin import stand_in
from xpnn.executor import Executor
from xpnn.ops import recurrent

NP = array_api_compat.array_namespace(np.empty(0))
F32, F64 = np.float32, np.float64


class RecordingCudaFuser(cuda.CudaFuser):
    """The CUDA fuser, telling the kernels it launched (as the reference fuser does)."""

    def __init__(self):
        super().__init__()
        self.launches = []

    def _get(self, formula, args, writes=0, reduction=None):
        found = super()._get(formula, args, writes, reduction)
        self.launches.append(found[0].name)
        return found


class Target:
    """Where the pass runs: the stand-in, or the GPU with a recording CUDA fuser."""

    def __init__(self, name, monkeypatch):
        self.name = name
        if name == "cuda":
            reason = _unavailable("cupy")
            if reason:
                skip_or_fail(f"cupy: {reason}", cupy=True)
            import cupy

            self.cupy, self.fuser = cupy, RecordingCudaFuser()
            monkeypatch.setattr(cuda, "_FUSER", self.fuser)
            self.gpu = xn.devices.resolve("cuda")
        else:
            self.gpu, self.fuser = None, reference.ReferenceFuser(NP)

    def device(self, reads_labels=False):
        if self.gpu is not None:
            if reads_labels:
                pytest.skip("CuPy does not read labels on the host")
            return self.gpu
        return stand_in(reads_labels, self.fuser)

    def array(self, host):
        return host if self.gpu is None else self.cupy.asarray(host)

    @property
    def exact(self) -> bool:  # the stand-in runs NumPy's own functions: bit for bit
        return self.gpu is None

    def launched(self) -> Counter:
        counts = Counter(self.fuser.launches)
        self.fuser.launches.clear()
        return counts


@pytest.fixture(params=["standin", "cuda"])
def target(request, monkeypatch):
    return Target(request.param, monkeypatch)


def assert_same(got, want, exact=True, rtol=2e-6, what=""):
    got, want = xn.to_numpy(got), xn.to_numpy(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.dtype, want.dtype)
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    finite = want[np.isfinite(want)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


# --------------------------------------------------------------------------- formulas


def _f(rng, shape, dtype, special=False):
    a = rng.standard_normal(shape).astype(dtype)
    if special and a.size >= 4:
        a.reshape(-1)[:4] = [np.nan, np.inf, -0.0, 0.0]
    return a


def _labels(rng, n, k):
    return rng.integers(-1, k + 1, (n, 1))


# name -> (formula, writes, args(rng, dtype)); rows (6, 4), row statistics (6, 1)
FORMULA_CASES = {
    **{f.__name__: (f, 0, lambda r, d: [_f(r, (6, 4), d, True), _f(r, (4,), d)])
       for f in (formulas.add, formulas.subtract, formulas.multiply, formulas.divide)},
    **{f.__name__: (f, 0, lambda r, d: [_f(r, (6, 4), d, True)])
       for f in (formulas.negative, formulas.square, formulas.exp, formulas.tanh,
                 formulas.relu)},
    **{f.__name__: (f, 0, lambda r, d: [np.abs(_f(r, (6, 4), d, True))])
       for f in (formulas.log, formulas.sqrt)},
    "relu_grad": (formulas.relu_grad, 0,
                  lambda r, d: [_f(r, (6, 4), d, True), _f(r, (6, 4), d, True)]),
    "sigmoid_grad": (formulas.sigmoid_grad, 0,
                     lambda r, d: [_f(r, (6, 4), d, True), r.uniform(0, 1, (6, 4)).astype(d)]),
    "shifted_exp": (formulas.shifted_exp, 0, lambda r, d: [_f(r, (6, 4), d), _f(r, (6, 1), d)]),
    "stable_shifted_exp": (formulas.stable_shifted_exp, 0,
                           lambda r, d: [_f(r, (6, 4), d), _f(r, (6, 1), d, True)]),
    "softmax": (formulas.softmax, 0,
                lambda r, d: [_f(r, (6, 4), d), _f(r, (6, 1), d), 1 + np.abs(_f(r, (6, 1), d))]),
    "log_softmax": (formulas.log_softmax, 0, lambda r, d: [
        _f(r, (6, 4), d), _f(r, (6, 1), d, True), 1 + np.abs(_f(r, (6, 1), d))]),
    "dense_ce_term": (formulas.dense_ce_term, 0, lambda r, d: [
        np.where(r.uniform(size=(6, 4)) < 0.5, 0.0, r.uniform(size=(6, 4))).astype(d),
        _f(r, (6, 4), d), _f(r, (6, 1), d, True), 1 + np.abs(_f(r, (6, 1), d))]),
    "picked": (formulas.picked, 0, lambda r, d: [
        _f(r, (6, 4), d, True), _labels(r, 6, 4), np.arange(4)[None, :]]),
    "sparse_ce_loss": (formulas.sparse_ce_loss, 0, lambda r, d: [
        1 + np.abs(_f(r, (6, 1), d)), _f(r, (6, 1), d, True), _f(r, (6, 1), d)]),
    "sparse_ce_loss_unchecked": (formulas.sparse_ce_loss_unchecked, 0, lambda r, d: [
        1 + np.abs(_f(r, (6, 1), d)), _f(r, (6, 1), d, True), _f(r, (6, 1), d),
        _labels(r, 6, 4), 3]),
    "sparse_ce_grad": (formulas.sparse_ce_grad, 0, lambda r, d: [
        _f(r, (6, 1), d), _f(r, (6, 4), d), _f(r, (6, 1), d, True),
        1 + np.abs(_f(r, (6, 1), d)), _labels(r, 6, 4), np.arange(4)[None, :]]),
    "sparse_ce_grad_unchecked": (formulas.sparse_ce_grad_unchecked, 0, lambda r, d: [
        _f(r, (6, 1), d), _f(r, (6, 4), d), _f(r, (6, 1), d, True),
        1 + np.abs(_f(r, (6, 1), d)), _labels(r, 6, 4), np.arange(4)[None, :], 3]),
    "sgd": (formulas.sgd, 1, lambda r, d: [_f(r, (3, 4), d), _f(r, (3, 4), d), 0.1]),
    **{f.__name__: (f, 2, lambda r, d: [_f(r, (3, 4), d), _f(r, (3, 4), d), _f(r, (3, 4), d),
                                        0.05, 0.9])
       for f in (formulas.momentum, formulas.nesterov)},
    "adam": (formulas.adam, 3, lambda r, d: [
        _f(r, (3, 4), d), _f(r, (3, 4), d), np.abs(_f(r, (3, 4), d)), _f(r, (3, 4), d),
        np.asarray(0.9**3, d), np.asarray(0.999**3, d), 0.01,
        *optimizers_coefficients(d), 1e-8]),
    "adam_powers": (formulas.adam_powers, 2, lambda r, d: [
        np.asarray(0.9, d), np.asarray(0.999, d), *optimizers_coefficients(d)[::2]]),
    "sigmoid": (formulas.sigmoid, 0, lambda r, d: [_f(r, (6, 4), d, True) * 50]),
    "lstm_cell": (formulas.lstm_cell, 7, lambda r, d: [_f(r, (6, 4), d) for _ in range(7)] + [
        _f(r, (6, 4), d, True) * 3 for _ in range(4)] + [_f(r, (6, 4), d)]),
    "lstm_cell_grad": (formulas.lstm_cell_grad, 5, lambda r, d: [
        _f(r, (6, 4), d) for _ in range(5)] + [r.uniform(0, 1, (6, 4)).astype(d) for _ in range(
            4)] + [_f(r, (6, 4), d), np.tanh(_f(r, (6, 4), d)), _f(r, (6, 4), d),
                   _f(r, (6, 4), d)]),
}


def optimizers_coefficients(dtype):
    return xn.optimizers.beta_coefficients(0.9, 0.999, np.dtype(dtype).name)


def test_every_formula_has_a_case():
    helpers = {"stable", "valid"}  # used inside the others, never a kernel of their own
    public = {name for name, f in vars(formulas).items()
              if callable(f) and getattr(f, "__module__", "") == formulas.__name__}
    assert public - helpers == set(FORMULA_CASES), public - helpers ^ set(FORMULA_CASES)


def _formula_result(formula, writes, args):
    """The formula on NumPy arrays, as the results a kernel writes or returns."""
    with np.errstate(all="ignore"):
        out = formula(NP, *[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    out = out if isinstance(out, tuple) else (out,)
    shape = np.broadcast_shapes(*[np.shape(a) for a in args if isinstance(a, np.ndarray)])
    dtype = next(a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f")
    return [np.broadcast_to(np.asarray(o, dtype), shape) for o in out]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", sorted(FORMULA_CASES))
def test_kernel_computes_its_formula(name, dtype, target):
    """The stand-in runs the traced statements with the NumPy models of their C (bit for
    bit equal to the formula); a GPU runs the printed, compiled source (to rounding, exact
    where the formula is arithmetic alone: no contraction into FMAs)."""
    formula, writes, make = FORMULA_CASES[name]
    target.device()
    args = make(np.random.default_rng(0), dtype)
    want = _formula_result(formula, writes, args)
    on_target = [target.array(a) if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"):
        out = target.fuser.elementwise(formula, on_target, writes=writes)
    got = on_target[:writes] if writes else (out if isinstance(out, tuple) else (out,))
    transcendental = any(s.op in ("exp", "log", "tanh") for s in
                         source.trace(formula, [source.kind_of(a) for a in args], writes)
                         .statements)
    for g, w in zip(got, want):
        assert_same(g, w, exact=target.exact or not transcendental,
                    rtol=4e-6 if dtype == F32 else 1e-14, what=name)


def test_operand_names_taken_in_the_kernels_c_are_refused():
    """CuPy's loop index ``i`` (the LSTM cell's first gate), a C keyword, a temporary's
    name: each would break the compiled kernel, so tracing refuses them by name."""
    def gate(xp, i, do):
        return i + do

    def scaled(xp, x, t0):
        return x * 2.0 + t0

    with pytest.raises(TypeError, match=r"gate: operand names \['i', 'do'\] are taken"):
        source.trace(gate, [("float", True)] * 2)
    with pytest.raises(TypeError, match=r"scaled: operand names \['t0'\] are taken"):
        source.trace(scaled, [("float", True)] * 2)
    cell = source.trace(formulas.lstm_cell, [("float", True)] * 12, writes=7)
    assert cell.out_params() == "T act_i, T act_f, T act_g, T act_o, T h, T c_new, T tanh_c"
    assert cell.in_params() == "T z_i, T z_f, T z_g, T z_o, T c, T c0"


def test_composed_formulas_are_the_nested_calls():
    leaves = [np.array([-1.0, 2.0, np.nan]), np.array([0.5, -3.0, 1.0]), np.array([2.0])]
    structure = (formulas.multiply, (2, (formulas.relu, ((formulas.add, (0, 1)),))))
    composed = chains.Composed(structure, 3)
    want = leaves[2] * np.maximum(leaves[0] + leaves[1], 0.0)
    assert composed.__name__ == "add_relu_multiply" and composed.params == ["x0", "x1", "x2"]
    np.testing.assert_array_equal(composed(NP, *leaves), want)
    kernel = source.trace(composed, [("float", True)] * 3)
    np.testing.assert_array_equal(source.run(kernel, NP, leaves, np.dtype(F64))[0], want)
    assert composed == chains.Composed(structure, 3) and len({composed, chains.Composed(
        structure, 3)}) == 1


def test_printed_kernels():
    F, S, N = ("float", True), ("float", False), ("int", True)
    adam = source.trace(formulas.adam, [F] * 6 + [S] * 6, writes=3)
    assert adam.in_params() == ("T grad, T beta1_power, T beta2_power, T lr, T b1, T c1, "
                                "T b2, T c2, T eps, T c0")
    assert adam.out_params() == "T param, T m, T v" and adam.constants == (("c0", 1.0),)
    body = adam.body().splitlines()
    assert body[:5] == ["T t0 = c0 - beta2_power;", "T t1 = sqrt(t0);", "T t2 = lr * t1;",
                        "T t3 = c0 - beta1_power;", "T t4 = t2 / t3;"]
    assert body[-3:] == ["param = t16;", "m = t7;", "v = t11;"]
    relu = source.trace(formulas.relu, [F])
    assert relu.body() == "T t0 = (x > c0 || x != x) ? x : c0;\nout0 = t0;"
    picked = source.trace(formulas.picked, [F, N, N])
    assert picked.in_params() == "T z, I label, I column, T c0"
    assert picked.map_expr() == "((label == column) ? z : c0)"
    grad = source.trace(formulas.sparse_ce_grad_unchecked, [F] * 4 + [N, N, ("int", False)])
    assert "I last" in grad.in_params() and grad.constants[-1][0] == "c1"
    assert np.isnan(grad.constants[-1][1])
    assert grad.arguments(["g", "z", "m", "s", "l", "c", 3])[-2:] == [0.0, grad.constants[-1][1]]


def test_the_tracer_refuses_what_a_kernel_cannot_do():
    F, N = ("float", True), ("int", True)

    def branches(xp, x):
        return x if x > 0 else -x

    def mixes(xp, x, n):
        return x * n

    def unknown(xp, x):
        return xp.sin(x)

    for formula, kinds, match in [(branches, [F], "branch"), (mixes, [F, N], "mixes"),
                                  (unknown, [F], "sin"), (formulas.valid, [N, N], "floating")]:
        with pytest.raises((TypeError, AttributeError), match=match):
            source.trace(formula, kinds)


def test_the_models_of_maximum_and_where_are_numpys():
    """The C maximum ``(a > b || a != a) ? a : b`` keeps NumPy's NaN and zeros."""
    a = np.array([np.nan, 1.0, -0.0, 0.0, -2.0, 3.0])
    b = np.array([1.0, np.nan, 0.0, -0.0, -1.0, np.inf])
    model = source.OPS["maximum"][1](NP, np.dtype(F64), a, b)
    np.testing.assert_array_equal(model, np.maximum(a, b))
    assert list(np.signbit(model)) == list(np.signbit(np.maximum(a, b)))


# --------------------------------------------------------------------------- kernels


P = xn.placeholder


def _portable(op, device, host_reads):
    """The op's portable forward, run as on a device that reads values without a sync or
    not (``host_reads``)."""

    def portable(*values):
        with ops.run_context.reading(host_reads):
            return op.forward(device.xp, *values)

    return portable


def _ce_inputs(cls, rng, bad=False):
    n, k = 6, 4
    logits = (_f(rng, (n, k), F32) * 3).astype(F32)
    logits[0, 1], logits[1] = np.inf, -np.inf  # a row with +inf, one of -inf only
    if cls is ops.SoftmaxCrossEntropy:
        labels = rng.uniform(0, 1, (n, k)).astype(F32)
        labels[2] = [0.0, 1.0, 0.0, 0.0]
        return [labels, logits]
    labels = rng.integers(0, k, n)
    if bad:
        labels[[1, 3]] = [-1, k]
    grad = [rng.uniform(0.1, 1, n).astype(F32)] if cls is ops.SparseSoftmaxCrossEntropyGrad else []
    return grad + [labels, logits]


CE = [ops.SoftmaxCrossEntropy, ops.SparseSoftmaxCrossEntropy, ops.SparseSoftmaxCrossEntropyGrad]


LSTM = [recurrent.LSTMCellElementwise, recurrent.LSTMCellElementwiseGrad]


def test_every_kernel_is_tested():
    assert set(kernels.FORWARD) == set(CE + LSTM)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("cls", LSTM, ids=lambda c: c.__name__)
def test_lstm_cell_kernels_match_portable(cls, dtype, target):
    """One kernel each. The gradient is the portable arithmetic in its order (bit for bit
    on the stand-in); the forward's sigmoid is a few ulp from the portable one."""
    device = target.device()
    rng = np.random.default_rng(4)
    with xn.Graph().as_default():
        op = cls(*[P() for _ in range(2 if cls is LSTM[0] else 5)])
    if cls is LSTM[0]:
        values = [_f(rng, (6, 16), dtype) * 3, _f(rng, (6, 4), dtype)]
    else:
        values = [rng.uniform(0, 1, (6, 16)).astype(dtype), _f(rng, (6, 4), dtype),
                  np.tanh(_f(rng, (6, 4), dtype)), _f(rng, (6, 4), dtype), _f(rng, (6, 4), dtype)]
    values = [target.array(v) for v in values]
    portable = _portable(op, device, False)
    want = portable(*values)
    got = kernels.FORWARD[cls](op, portable, device, target.fuser)(*values)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_same(g, w, exact=target.exact and cls is LSTM[1],
                    rtol=4e-6 if dtype == F32 else 1e-14, what=cls.__name__)
    assert sum(target.launched().values()) == 1  # one kernel, not the portable forward


@pytest.mark.parametrize("reads", [True, False], ids=["checked", "unread"])
@pytest.mark.parametrize("cls", CE, ids=lambda c: c.__name__)
def test_cross_entropy_kernels_match_portable(cls, reads, target):
    device = target.device(reads_labels=reads)
    with xn.Graph().as_default():
        op = cls(*[P() for _ in range(2 + (cls is ops.SparseSoftmaxCrossEntropyGrad))])
    values = [target.array(v) for v in _ce_inputs(cls, np.random.default_rng(1))]
    portable = _portable(op, device, reads)
    with np.errstate(all="ignore"):
        want = portable(*values)
        got = kernels.FORWARD[cls](op, portable, device, target.fuser)(*values)
    assert_same(got, want, exact=target.exact, rtol=1e-5)
    assert target.launched()  # the kernel ran, not the portable forward


@pytest.mark.parametrize("cls", CE[1:], ids=lambda c: c.__name__)
def test_unread_bad_labels_give_nan_rows_without_a_host_read(cls, target, monkeypatch):
    device = target.device()

    def read(*args):
        raise AssertionError("the labels were read on the host")

    monkeypatch.setattr(ops, "check_label_values", read)
    with xn.Graph().as_default():
        op = cls(*[P() for _ in range(2 + (cls is ops.SparseSoftmaxCrossEntropyGrad))])
    values = [target.array(v) for v in _ce_inputs(cls, np.random.default_rng(2), bad=True)]
    portable = _portable(op, device, False)
    with np.errstate(all="ignore"):
        got = xn.to_numpy(kernels.FORWARD[cls](op, portable, device, target.fuser)(*values))
        want = xn.to_numpy(portable(*values))
    assert np.isnan(got[[1, 3]]).all() and not np.isnan(got[[2, 4, 5]]).any()
    assert_same(got, want, exact=target.exact, rtol=1e-5)


@pytest.mark.parametrize("reads", [True, False], ids=["checked", "unread"])
@pytest.mark.parametrize("cls", CE[1:], ids=lambda c: c.__name__)
def test_int8_labels_of_128_classes(cls, reads, target):
    """The largest class index fits int8, the class count does not: CuPy (>= 13) refuses a
    scalar argument its I cannot hold, so the kernels take the last class instead."""
    device = target.device(reads_labels=reads)
    with xn.Graph().as_default():
        op = cls(*[P() for _ in range(2 + (cls is ops.SparseSoftmaxCrossEntropyGrad))])
    rng = np.random.default_rng(4)
    labels = np.array([127, 0, 5, -1 if not reads else 1], np.int8)
    host = [rng.uniform(0.1, 1, 4).astype(F32)] if cls is ops.SparseSoftmaxCrossEntropyGrad \
        else []
    host += [labels, _f(rng, (4, 128), F32)]
    portable = _portable(op, device, reads)
    got = xn.to_numpy(kernels.FORWARD[cls](op, portable, device, target.fuser)(
        *[target.array(v) for v in host]))
    assert target.launched()
    want = _portable(op, stand_in(reads), reads)(*host)  # NumPy's portable forward
    assert_same(got, want, exact=target.exact, rtol=1e-5)
    assert np.isnan(got[3]).all() != reads and np.isfinite(got[:3]).all()


def test_the_stand_in_types_numbers_as_cupy_does():
    """A kernel's integer number argument is taken in its I (the integer arrays' one
    dtype), as CuPy takes it; CuPy refuses one out of that type's range."""
    fuser = reference.ReferenceFuser(NP)
    s, m, z = np.ones((2, 1), F32), np.zeros((2, 1), F32), np.zeros((2, 1), F32)
    label = np.array([[1], [-1]], np.int8)
    got = fuser.elementwise(formulas.sparse_ce_loss_unchecked, (s, m, z, label, 127))
    assert np.isfinite(got[0]).all() and np.isnan(got[1]).all()
    with pytest.raises(OverflowError):
        fuser.elementwise(formulas.sparse_ce_loss_unchecked, (s, m, z, label, 128))
    with pytest.raises(TypeError, match="int arrays must share one dtype"):
        fuser.elementwise(formulas.picked, (z, label, np.arange(1, dtype=np.int16)[None]))


def test_checked_bad_labels_raise_the_portable_error():
    device = stand_in(reads_labels=True)
    with xn.Graph().as_default():
        op = ops.SparseSoftmaxCrossEntropy(P(), P())
    values = _ce_inputs(ops.SparseSoftmaxCrossEntropy, np.random.default_rng(2), bad=True)
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\), got -1"):
        kernels.FORWARD[type(op)](op, _portable(op, device, True), device, device.fuser)(*values)


# --------------------------------------------------------------------------- plans


class Side:
    """A Session on ``device`` whose plans are compiled with the pass on or off."""

    def __init__(self, device, on, **kw):
        self.on, self.sess = on, xn.Session(device=device, passes=on, **kw)

    def run(self, *args, **kw):
        with np.errstate(all="ignore"):
            return self.sess.run(*args, **kw)

    def values(self, variables):
        return [xn.to_numpy(self.sess.get_value(v)) for v in variables]

    def plan(self):
        return self.executor().plan

    def executor(self):
        (executor,) = self.sess._executors.values()
        return executor


def both(target, build, reads_labels=False, **kw):
    """[(nodes, fast Side), (nodes, portable Side)], each graph built by ``build()``."""
    sides = []
    for on in (True, False):
        with xn.Graph().as_default():
            sides.append((build(), Side(target.device(reads_labels), on, **kw)))
    return sides


OPTIMIZERS = {
    "sgd": lambda: xn.train.GradientDescentOptimizer(0.1),
    "momentum": lambda: xn.train.MomentumOptimizer(0.05, 0.9),
    "nesterov": lambda: xn.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
    "adam": lambda: xn.train.AdamOptimizer(0.01, epsilon=1e-3),
}


def _mlp(optimizer="sgd", activation=xn.relu, loss="sparse", seed=0):
    rng = np.random.default_rng(seed)
    x = xn.placeholder("float32", (None, 5), name="x")
    labels = (xn.placeholder("int64", (None,), name="labels") if loss == "sparse" else
              xn.placeholder("float32", (None, 3), name="labels"))
    w1 = xn.Variable(rng.standard_normal((5, 8)).astype(F32) / 2, name="w1")
    b1 = xn.Variable(rng.standard_normal(8).astype(F32) / 10, name="b1")
    w2 = xn.Variable(rng.standard_normal((8, 3)).astype(F32) / 3, name="w2")
    b2 = xn.Variable(np.zeros(3, F32), name="b2")
    z1 = xn.matmul(x, w1) + b1
    logits = xn.matmul(activation(z1), w2) + b2
    fn = (xn.losses.sparse_softmax_cross_entropy if loss == "sparse"
          else xn.losses.softmax_cross_entropy)
    loss = fn(labels, logits)
    opt = OPTIMIZERS[optimizer]()
    return {"x": x, "labels": labels, "z1": z1, "logits": logits, "loss": loss, "opt": opt,
            "step": opt.minimize(loss), "variables": [w1, b1, w2, b2]}


def _feed(nodes, seed, n=7, loss="sparse"):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    if loss != "sparse":
        labels = np.eye(3, dtype=F32)[labels] * 0.8 + 0.2 / 3
    return {nodes["x"]: rng.standard_normal((n, 5)).astype(F32), nodes["labels"]: labels}


def _check(sides, target, fetched=()):
    (nodes, fast), (other, portable) = sides
    for got, want in zip(*fetched):
        assert_same(got, want, exact=target.exact, rtol=1e-5)
    ours, theirs = fast.sess.graph.variables, portable.sess.graph.variables
    for v, got, want in zip(ours, fast.values(ours), portable.values(theirs)):
        assert_same(got, want, exact=target.exact, rtol=1e-5, what=v.label)


# kernels one training step of _mlp launches: the bias add and ReLU as one, the sparse
# cross-entropy's gradient (its row max and sum), the ReLU's gradient, one update a Variable
STEP_KERNELS = {"xpnn_add_relu": 1, "xpnn_stable_shifted_exp": 1, "xpnn_relu_grad": 1}


def ce_grad_kernel(device) -> str:
    """The sparse cross-entropy gradient's kernel: where the device does not read labels
    on the host (CuPy on a GPU) the one that makes a bad label's row NaN."""
    return "xpnn_sparse_ce_grad" + ("" if device.reads_without_sync else "_unchecked")
UPDATE_KERNELS = {"sgd": {"xpnn_sgd": 4}, "momentum": {"xpnn_momentum": 4},
                  "nesterov": {"xpnn_nesterov": 4},
                  "adam": {"xpnn_adam": 4, "xpnn_adam_powers": 4}}


@pytest.mark.parametrize("reads", [True, False], ids=["checked", "unread"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_mlp_training_matches_portable_one_kernel_per_update(optimizer, reads, target):
    sides = both(target, lambda: _mlp(optimizer), reads_labels=reads)
    kernels = {**STEP_KERNELS, ce_grad_kernel(sides[0][1].sess.device): 1,
               **UPDATE_KERNELS[optimizer]}
    for run in range(4):
        fetched = []
        for nodes, side in sides:
            if run == 2:  # hyper-parameters are read at every run
                nodes["opt"].learning_rate *= 0.5
            if run < 3:
                fetched.append(side.run([nodes["step"], nodes["loss"]], _feed(nodes, run))[1:])
                continue
            target.launched()  # the step alone: the loss's forward is not computed
            side.run(nodes["step"], _feed(nodes, run))
            if side.on:
                assert target.launched() == Counter(kernels)
        _check(sides, target, fetched if run < 3 else ())
    (_, fast), (_, portable) = sides
    held = dict(fast.sess._values)
    fast.run(sides[0][0]["step"], _feed(sides[0][0], 9))
    assert all(fast.sess._values[v] is a for v, a in held.items())  # written in place
    assert all(u in e.in_place for e in fast.sess._executors.values() for u in e.plan.updates)
    assert not any(e.in_place for e in portable.sess._executors.values())


@pytest.mark.parametrize("activation, kernel", [
    (xn.tanh, "xpnn_square_subtract_multiply"),
    (xn.sigmoid, "xpnn_sigmoid_grad")], ids=["tanh", "sigmoid"])
def test_activation_gradients_are_one_kernel(activation, kernel, target):
    sides = both(target, lambda: _mlp("sgd", activation), reads_labels=target.exact)
    fetched = []
    for nodes, side in sides:
        target.launched()
        fetched.append(side.run([nodes["step"], nodes["loss"]], _feed(nodes, 0)))
        if side.on:
            assert target.launched()[kernel] == 1
    _check(sides, target, [fetched[0][1:], fetched[1][1:]])


def test_dense_cross_entropy_forward_and_gradient_are_fused(target):
    sides = both(target, lambda: _mlp("momentum", loss="dense"))
    for run in range(2):
        fetched = []
        for nodes, side in sides:
            target.launched()
            fetched.append(side.run([nodes["step"], nodes["loss"]],
                                    _feed(nodes, run, loss="dense"))[1:])
            if side.on:
                launched = target.launched()
                # g (softmax(z) sum(labels) - labels): softmax's row max and sum, one kernel
                assert launched["xpnn_softmax_multiply_subtract_multiply"] == 1
                assert launched["xpnn_shifted_exp"] == 1 and launched["xpnn_dense_ce_term"] == 1
        _check(sides, target, fetched)


def test_a_small_cnn_matches_portable_its_bias_add_and_relu_one_kernel(target):
    def build():
        x = xn.placeholder("float32", (None, 6, 6, 1), name="x")
        labels = xn.placeholder("int64", (None,), name="labels")
        net = xn.nn.Sequential(xn.nn.Conv2D(1, 3, 3, padding="SAME", seed=1), xn.nn.ReLU(),
                               xn.nn.MaxPool2D(2), xn.nn.Flatten(), xn.nn.Linear(27, 4, seed=2))
        loss = xn.losses.sparse_softmax_cross_entropy(labels, net(x))
        return {"x": x, "labels": labels, "loss": loss,
                "step": xn.train.AdamOptimizer(0.01).minimize(loss, net.parameters())}

    sides = both(target, build)
    rng = np.random.default_rng(3)
    for _ in range(2):
        X, y = rng.standard_normal((5, 6, 6, 1)).astype(F32), rng.integers(0, 4, 5)
        fetched = []
        for nodes, side in sides:
            target.launched()
            fetched.append(side.run([nodes["loss"], nodes["step"]],
                                    {nodes["x"]: X, nodes["labels"]: y})[:1])
            if side.on:
                launched = target.launched()
                assert launched["xpnn_add_relu"] == 1 and launched["xpnn_adam"] == 4
        _check(sides, target, fetched)


def test_fetched_intermediates_are_arrays_and_not_chained(target):
    sides = both(target, _mlp, reads_labels=target.exact)
    fetched = []
    for nodes, side in sides:
        target.launched()
        fetched.append(side.run([nodes["step"], nodes["z1"], nodes["logits"]], _feed(nodes, 1)))
        if side.on:
            launched = target.launched()
            assert "xpnn_add_relu" not in launched  # z1 is an array; the ReLU of it alone
            assert "xpnn_relu" not in launched  # is one launch either way: kept portable
    _check(sides, target, [fetched[0][1:], fetched[1][1:]])


def test_check_numerics_keeps_every_value_and_portable_updates(target):
    sides = both(target, lambda: _mlp("adam"), reads_labels=target.exact, check_numerics=True)
    fetched = []
    for nodes, side in sides:
        target.launched()
        fetched.append(side.run([nodes["step"], nodes["loss"]], _feed(nodes, 0))[1:])
        if side.on:
            launched = target.launched()
            assert "xpnn_add_relu" not in launched and "xpnn_adam" not in launched
            assert launched["xpnn_relu_grad"] == 1  # kernels of one op still run
            assert not side.executor().in_place
    _check(sides, target, fetched)


def test_a_learning_rate_node_takes_the_portable_update(target):
    def build():
        w = xn.Variable(np.array([1.0, -2.0], F32), name="w")
        rate = xn.placeholder("float32", (), name="rate")
        return {"w": w, "rate": rate, "step": xn.train.AdamOptimizer(rate).minimize(
            xn.reduce_sum(xn.square(w)))}

    sides = both(target, build)
    for nodes, side in sides:
        side.run(nodes["step"], {nodes["rate"]: 0.1})
        assert not side.executor().in_place
    _check(sides, target)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_gradients_that_are_variables_are_not_updated_in_place(name, target):
    def build():
        w1 = xn.Variable(np.array([1.0, 2.0], F32), name="w1")
        w2 = xn.Variable(np.array([10.0, 20.0], F32), name="w2")
        return {"step": OPTIMIZERS[name]().apply_gradients([(w2, w1), (w1, w2)])}

    sides = both(target, build)
    for _ in range(2):
        for nodes, side in sides:
            side.run(nodes["step"])
            assert not side.executor().in_place
    _check(sides, target)


def test_an_assigned_variable_keeps_its_own_array(target):
    """assign(w2, w1) makes w2's new value w1's array: kept as a copy, so the in-place
    update of w2 that follows leaves w1 alone."""
    def build():
        w1 = xn.Variable(np.array([1.0, 2.0], F32), name="w1")
        w2 = xn.Variable(np.zeros(2, F32), name="w2")
        step = xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w2 * w2), [w2])
        return {"assign": xn.assign(w2, w1), "step": step, "w1": w1, "w2": w2}

    sides = both(target, build)
    for nodes, side in sides:
        side.run(nodes["assign"])
        side.run(nodes["step"])
        assert side.values([nodes["w1"]])[0].tolist() == [1.0, 2.0]
        assert side.values([nodes["w2"]])[0].tolist() == [0.0, 0.0]
    _check(sides, target)


def test_unread_bad_labels_give_nan_in_the_loss_and_the_step(target, monkeypatch):
    def read(*args):
        raise AssertionError("the labels were read on the host")

    monkeypatch.setattr(ops, "check_label_values", read)
    sides = both(target, _mlp)
    fetched = []
    for nodes, side in sides:
        feed = _feed(nodes, 0)
        feed[nodes["labels"]][2] = 5
        fetched.append(side.run([nodes["loss"], nodes["step"]], feed)[:1])
    assert np.isnan(xn.to_numpy(fetched[0][0]))
    _check(sides, target, fetched)


def test_a_failed_step_names_its_op_and_changes_no_variable(target):
    def build():
        x = xn.placeholder("float32", (None, 3), name="x")
        b = xn.placeholder("float32", (None,), name="b")
        w = xn.Variable(np.ones((3, 3), F32), name="w")
        loss = xn.reduce_sum(xn.relu(xn.add(xn.matmul(x, w), b, name="biased")))
        return {"x": x, "b": b, "step": xn.train.GradientDescentOptimizer(0.1).minimize(loss)}

    for nodes, side in both(target, build)[:1]:
        x = np.ones((2, 3), F32)
        side.run(nodes["step"], {nodes["x"]: x, nodes["b"]: np.ones(3, F32)})
        before = side.values(side.sess.graph.variables)
        with pytest.raises(xn.OpError, match=r"biased \(Add\) failed"):
            side.run(nodes["step"], {nodes["x"]: x, nodes["b"]: np.ones(4, F32)})
        after = side.values(side.sess.graph.variables)
        assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_float16_takes_the_portable_path(target):
    def build():
        w = xn.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], np.float16), name="w")
        b = xn.Variable(np.array([0.25, -0.5], np.float16), name="b")
        loss = xn.reduce_sum(xn.tanh(xn.relu(w + b)))
        return {"step": xn.train.MomentumOptimizer(0.1, 0.9).minimize(loss)}

    sides = both(target, build)
    for _ in range(2):
        for nodes, side in sides:
            target.launched()
            side.run(nodes["step"])
            if side.on:
                assert not target.launched()
    _check(sides, target)


def test_the_pass_off_leaves_the_portable_plan(target):
    with xn.Graph().as_default():
        nodes = _mlp("adam")
        side = Side(target.device(reads_labels=target.exact), on=False)
        target.launched()
        side.run(nodes["step"], _feed(nodes, 0))
    assert not target.launched() and type(side.executor()) is Executor
