"""The LSTM cell's elementwise part as one op (``xn.ops.lstm_cell_elementwise``, issue 26)
beyond the op-case table: values and gradients against torch.autograd, the NumPy, torch and
CuPy (stand-in) kernels against the portable path (``Session(passes=False)``) in float32
and float64, saturated gates, the LSTM layer on the fused cell, and errors."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn.devices.cupy_standin import stand_in
from xpnn.ops import recurrent

B, U = 5, 3


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: no torch.autograd "
                               "reference (pip install torch)")


def _inputs(seed=0, scale=2.0, dtype="float64"):
    """gates (B, 4U), c, and the loss weights for h' and c'."""
    rng = np.random.default_rng(seed)
    gates = rng.standard_normal((B, 4 * U)) * scale
    c, w_h, w_c = (rng.standard_normal((B, U)) for _ in range(3))
    return [a.astype(dtype) for a in (gates, c, w_h, w_c)]


def _run(session_kw, gates, c, w_h, w_c, use_c=True):
    """[h', c', d gates, d c] of loss = sum(h' w_h) (+ sum(c' w_c)) on a new Session."""
    dtype = gates.dtype.name
    with xn.Graph().as_default():
        g = xn.placeholder(dtype, (None, 4 * U), name="gates")
        s = xn.placeholder(dtype, (None, U), name="c")
        h, c_new = xn.ops.lstm_cell_elementwise(g, s)
        loss = xn.reduce_sum(h * w_h)
        if use_c:
            loss = loss + xn.reduce_sum(c_new * w_c)
        fetches = [h, c_new, *xn.gradients(loss, [g, s])]
        return xn.Session(**session_kw).run(fetches, {g: gates, s: c}, to_numpy=True)


def _torch_reference(gates, c, w_h, w_c, use_c=True):
    torch = _torch()
    g, s = (torch.tensor(a, requires_grad=True) for a in (gates, c))
    i, f, gg, o = g.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * s + torch.sigmoid(i) * torch.tanh(gg)
    h = torch.sigmoid(o) * torch.tanh(c_new)
    loss = (h * torch.tensor(w_h)).sum()
    if use_c:
        loss = loss + (c_new * torch.tensor(w_c)).sum()
    loss.backward()
    return [h.detach().numpy(), c_new.detach().numpy(), g.grad.numpy(), s.grad.numpy()]


@pytest.mark.parametrize("use_c", [True, False], ids=["h-and-c", "h-only"])
def test_values_and_gradients_match_torch_autograd(dev, use_c):
    """float64; h-only: no gradient reaches c' (the gradient op takes zeros for it)."""
    arrays = _inputs()
    got = _run(dict(device=dev, dtype="float64"), *arrays, use_c=use_c)
    want = _torch_reference(*arrays, use_c=use_c)
    for name, a, b in zip(["h", "c", "d gates", "d c"], got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=name)


# ------------------------------------------------------------------------- device kernels


def _session(kind):
    if kind == "torch":
        _torch()
        return dict(backend="torch")
    return dict(device=stand_in()) if kind == "cupy_standin" else dict(backend="numpy")


def _spy(kind, monkeypatch):
    """A list that each kernel call of ``kind`` appends its name to."""
    calls = []
    if kind == "cupy_standin":
        return None  # the stand-in's fuser lists its launches itself
    module = {"numpy": "xpnn.devices.numpy.recurrent",
              "torch": "xpnn.devices.torch.recurrent"}[kind]
    module = pytest.importorskip(module)
    for name in ("lstm_cell", "lstm_cell_grad"):
        kernel = getattr(module, name)

        def spy(*args, _kernel=kernel, _name=name):
            calls.append(_name)
            return _kernel(*args)

        monkeypatch.setattr(module, name, spy)
    return calls


def _kernel_tolerance(dtype):
    # the kernels' sigmoid is 1 / (1 + exp(-x)), a few ulp from the portable formula
    return dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["numpy", "torch", "cupy_standin"])
def test_kernels_match_the_portable_path(kind, dtype, monkeypatch):
    arrays = _inputs(seed=3, scale=4.0, dtype=dtype)
    calls = _spy(kind, monkeypatch)
    session = _session(kind)
    fast = _run(session, *arrays)
    portable = _run(dict(session, passes=False), *arrays)
    if calls is None:
        assert session["device"].fuser.launches == ["xpnn_lstm_cell", "xpnn_lstm_cell_grad"]
    else:
        assert calls == ["lstm_cell", "lstm_cell_grad"]
    for name, a, b in zip(["h", "c", "d gates", "d c"], fast, portable):
        assert a.dtype == b.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(a, b, **_kernel_tolerance(dtype), err_msg=name)


REGISTERED = """
import numpy as np, xpnn as xn, importlib
from xpnn.devices.cupy_standin import stand_in
from xpnn.ops import recurrent
kinds = [("numpy", dict(backend="numpy")), ("cupy", dict(device=stand_in()))]
if importlib.util.find_spec("torch"):
    kinds.append(("torch", dict(backend="torch")))
for kind, session in kinds:
    with xn.Graph().as_default():
        g = xn.placeholder("float32", (None, 8))
        h, c = xn.ops.lstm_cell_elementwise(g, xn.zeros_like(g[:, :2]))
        xn.Session(**session).run(xn.gradients(xn.reduce_sum(h + c), [g]), {g: np.ones((1, 8))})
    table = importlib.import_module(f"xpnn.devices.{kind}.kernels").FORWARD
    assert recurrent.LSTMCellElementwise in table, kind
    assert recurrent.LSTMCellElementwiseGrad in table, kind
print("ok", len(kinds))
"""


def test_each_device_registers_its_kernels_itself():
    """In a fresh process, a Session's own passes bring the kernels in (the other tests
    import the kernel modules, which registers them whoever else does)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]  # this checkout's xpnn
    run = subprocess.run([sys.executable, "-c", REGISTERED], capture_output=True, text=True,
                         timeout=300, cwd=root)
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stderr[-3000:]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["numpy", "torch", "cupy_standin"])
def test_gradient_kernels_are_the_portable_arithmetic(kind, dtype):
    """The gradient op's kernels compute its portable formula in its order: bit for bit, on
    gates in F order (what the NumPy matmul kernel hands the cell) too."""
    if kind == "torch":
        _torch()
    device = stand_in() if kind == "cupy_standin" else xn.devices.resolve("cpu", backend=kind)
    module = importlib.import_module(f"xpnn.devices.{kind.split('_')[0]}.recurrent")
    rng = np.random.default_rng(6)
    act = np.asfortranarray(rng.uniform(0.0, 1.0, (B, 4 * U)).astype(dtype))
    c, c_new, dh, dc = (rng.standard_normal((B, U)).astype(dtype) for _ in range(4))
    values = [device.from_host(v) for v in [act, c, np.tanh(c_new), dh, dc]]
    with xn.Graph().as_default():
        op = recurrent.LSTMCellElementwiseGrad(*[xn.placeholder() for _ in values])
    args = (device.xp, device.fuser) if kind == "cupy_standin" else ()
    got = module.lstm_cell_grad(*args, *values)
    want = op.forward(device.xp, *values)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(xn.to_numpy(a), xn.to_numpy(b), strict=True)


@pytest.mark.parametrize("kind", ["numpy", "torch", "cupy_standin"])
def test_kernels_saturate_as_the_portable_path(kind):
    """Gates far from 0 (exp(-x) is inf in the kernels' sigmoid, sigmoid exactly 0 or 1):
    finite results, no floating-point error on NumPy, and the portable path's values."""
    gates, c, w_h, w_c = _inputs(seed=5)
    gates[:, ::2] = 1e4 * np.sign(gates[:, ::2])
    gates[:, 1::2] *= 60.0
    session = _session(kind)
    # the stand-in runs the GPU's arithmetic with NumPy, whose overflow flag is its own
    checks = dict(over="raise", invalid="raise", divide="raise") if kind == "numpy" else \
        dict(all="ignore")
    with np.errstate(**checks):
        fast = _run(session, gates, c, w_h, w_c)
    portable = _run(dict(session, passes=False), gates, c, w_h, w_c)
    for name, a, b in zip(["h", "c", "d gates", "d c"], fast, portable):
        assert np.isfinite(a).all(), name
        np.testing.assert_allclose(a, b, **_kernel_tolerance("float64"), err_msg=name)


@pytest.mark.parametrize("kind", ["numpy", "torch", "cupy_standin"])
def test_kernels_leave_other_inputs_to_the_portable_forward(kind, monkeypatch):
    """float16 and 3-D inputs are outside the kernels' case: the portable forward runs."""
    calls = _spy(kind, monkeypatch)
    session = _session(kind)
    rng = np.random.default_rng(2)
    for gates, c in [(rng.standard_normal((2, B, 4 * U)), rng.standard_normal((2, B, U))),
                     (rng.standard_normal((B, 4 * U)).astype("float16"),
                      rng.standard_normal((B, U)).astype("float16"))]:
        with xn.Graph().as_default():
            g, s = xn.placeholder(gates.dtype.name), xn.placeholder(c.dtype.name)
            h, c_new = xn.ops.lstm_cell_elementwise(g, s)
            sessions = [xn.Session(**session), xn.Session(**session, passes=False)]
            got, want = (sess.run([h, c_new], {g: gates, s: c}, to_numpy=True)
                         for sess in sessions)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    assert calls in (None, [])
    if calls is None:
        assert session["device"].fuser.launches == []


def test_lstm_layer_uses_the_fused_cell_and_keeps_its_results(dev):
    """One cell op a step; the layer's outputs and gradients with the device's passes are
    the portable plan's (to float32 rounding)."""
    x0 = np.random.default_rng(4).standard_normal((2, 4, 3)).astype("float32")
    with xn.Graph().as_default() as graph:
        x = xn.placeholder("float32", (None, 4, 3), name="x")
        layer = xn.nn.LSTM(3, 5, return_sequences=True, seed=0)
        out = layer(x)
        grads = xn.gradients(xn.reduce_sum(out * out), [x, *layer.parameters()])
        cells = [n for n in graph.nodes if type(n) is recurrent.LSTMCellElementwise]
        assert len(cells) == 4
        got = xn.Session(device=dev).run([out, *grads], {x: x0}, to_numpy=True)
        want = xn.Session(device=dev, passes=False).run([out, *grads], {x: x0}, to_numpy=True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **tolerance("float32"))


# ------------------------------------------------------------------------- errors


def test_shapes_and_dtypes_are_checked_when_built():
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match=r"gates must have shape \(\.\.\., 4 \* units\).*"
                           r"got gates \(None, 10\) and c \(None, 3\)"):
            xn.ops.lstm_cell_elementwise(xn.placeholder("float32", (None, 10)),
                                         xn.placeholder("float32", (None, 3)))
        with pytest.raises(ValueError, match=r"got gates \(4, 12\) and c \(5, 3\)"):
            xn.ops.lstm_cell_elementwise(xn.placeholder("float32", (4, 12)),
                                         xn.placeholder("float32", (5, 3)))
        with pytest.raises(TypeError, match="one floating dtype, got float32 and float64"):
            xn.ops.lstm_cell_elementwise(xn.placeholder("float32", (None, 12)),
                                         xn.placeholder("float64", (None, 3)))
        h, c = xn.ops.lstm_cell_elementwise(xn.placeholder("float32", (None, 12)),
                                            xn.placeholder("float32", (None, None)))
        assert h.shape == c.shape == (None, 3) and h.dtype == "float32"


def test_fed_shapes_are_checked_when_run(dev):
    with xn.Graph().as_default():
        g, c = xn.placeholder("float32", name="gates"), xn.placeholder("float32", name="c")
        h, _ = xn.ops.lstm_cell_elementwise(g, c)
        with pytest.raises(ValueError, match=r"LSTMCellElementwise.*got gates \(2, 12\) and "
                           r"c \(2, 4\)"):
            xn.Session(device=dev).run(h, {g: np.zeros((2, 12)), c: np.zeros((2, 4))})


def test_second_derivatives_say_they_are_not_implemented():
    with xn.Graph().as_default():
        g = xn.placeholder("float32", (None, 8))
        h, c = xn.ops.lstm_cell_elementwise(g, xn.placeholder("float32", (None, 2)))
        (dg,) = xn.gradients(xn.reduce_sum(h), [g])
        with pytest.raises(NotImplementedError, match="second derivatives of "
                           "lstm_cell_elementwise are not implemented"):
            xn.gradients(xn.reduce_sum(dg), [g])
