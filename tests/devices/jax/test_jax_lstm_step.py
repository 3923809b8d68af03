"""What a compiled LSTM training step (``xn.nn.LSTM(loop="scan")``, softmax cross-entropy,
Adam: ``benchmarks/lstm_step.py``'s) traces to on JAX, read off the jaxpr of the runner's
``jax.jit`` body: the mechanisms its speed against a hand-written ``lax.scan`` LSTM rests
on, not timings."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

jax = pytest.importorskip("jax", reason="jax is not installed: the JAX LSTM step is not tested")

from xpnn.devices.jax import runner as jax_runner  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BATCH, TIME, VOCAB, HIDDEN = 3, 4, 5, 6


def _lstm_step():
    """(session, fetches, feed) of a small LSTM language-model training step on JAX."""
    rng = np.random.default_rng(0)
    x = np.eye(VOCAB, dtype=np.float32)[rng.integers(0, VOCAB, (BATCH, TIME))]
    y = rng.integers(0, VOCAB, (BATCH, TIME)).astype(np.int32)
    inputs = xn.placeholder("float32", x.shape, name="x")
    labels = xn.placeholder("int32", y.shape, name="y")
    lstm = xn.nn.LSTM(VOCAB, HIDDEN, return_sequences=True, loop="scan", seed=0)
    head = xn.nn.Linear(HIDDEN, VOCAB)
    logits = head(xn.reshape(lstm(inputs), (-1, HIDDEN)))
    loss = xn.losses.sparse_softmax_cross_entropy(xn.reshape(labels, (-1,)), logits)
    step = xn.train.AdamOptimizer(1e-3).minimize(loss)
    return xn.Session(backend="jax"), [loss, step], {inputs: x, labels: y}


def _traced(monkeypatch, sess, fetches, feed):
    """The jaxpr of the ``jax.jit`` body that runs ``fetches`` (checked not to fall back)."""
    seen = {}
    arguments = jax_runner.Runner._arguments

    def spy(self, *args):
        seen["runner"], seen["args"] = self, arguments(self, *args)
        seen["shapes"] = [jax.ShapeDtypeStruct(np.shape(v), v.dtype) for v in seen["args"]]
        return seen["args"]

    monkeypatch.setattr(jax_runner.Runner, "_arguments", spy)
    sess.run(fetches, feed)
    runner = seen["runner"]
    assert not runner.eager, runner.reason
    (entry,) = runner.entries.values()
    return jax.make_jaxpr(entry.jitted)(*seen["shapes"])


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs inside it (scan bodies, inner jits)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for inner in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(inner, "jaxpr", inner)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def test_weight_gradients_are_unbatched_products(monkeypatch):
    """The input projection's weight gradient, (batch, time, vocab) rows against (batch,
    time, 4 units) gradients, is one matrix product over every row, not a product per
    sequence summed after (XLA ran that batch of small products, and wrote their
    (batch, vocab, 4 units) stack, far slower than the hand-written step's one product)."""
    with xn.Graph().as_default():
        jaxpr = _traced(monkeypatch, *_lstm_step())
    dots = [e for e in _equations(jaxpr.jaxpr) if e.primitive.name == "dot_general"]
    assert dots
    batched = [e for e in dots if any(e.params["dimension_numbers"][1])]
    assert not batched, [str(e) for e in batched]


def test_forward_scan_keeps_four_arrays_per_step(monkeypatch):
    """The forward ``lax.scan`` stacks, besides the carry and the outputs, what the
    gradient reads: the step's carry (h, c) and the cell's activated gates and tanh(c'),
    not h' and c' again."""
    with xn.Graph().as_default():
        jaxpr = _traced(monkeypatch, *_lstm_step())
    scans = [e for e in _equations(jaxpr.jaxpr) if e.primitive.name == "scan"]
    forward = [e for e in scans if not e.params["reverse"]]
    assert len(forward) == 1
    (scan,) = forward
    stacked = len(scan.outvars) - scan.params["num_carry"]
    assert stacked == 1 + 4, [str(v.aval) for v in scan.outvars]  # the outputs h, then kept


def test_lstm_cell_kernel_runs_in_the_scan_body(monkeypatch):
    """The loop body's fused LSTM cell is traced with the JAX kernel (XLA's logistic), as
    the plan around it would be, not the portable sigmoid's logaddexp: no log1p in the
    step (the forward ran 1.7 times the hand-written one's time with it)."""
    with xn.Graph().as_default():
        jaxpr = _traced(monkeypatch, *_lstm_step())
    names = {e.primitive.name for e in _equations(jaxpr.jaxpr)}
    assert "logistic" in names
    assert "log1p" not in names and "custom_jvp_call" not in names, sorted(names)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_cell_kernel_matches_the_portable_op(dtype):
    """The kernel's four outputs against the portable forward, under ``jax.jit`` as in a
    plan, on gates far into both tails (the sigmoids saturate) and on a leading batch of
    two axes; a gates/c mismatch gets the op's own error from the portable forward."""
    from xpnn.devices.jax import kernels, recurrent  # noqa: F401  (recurrent registers it)

    xp = xn.devices.resolve("cpu", backend="jax").xp
    rng = np.random.default_rng(1)
    gates = (rng.standard_normal((2, 3, 4 * HIDDEN)) * 8).astype(dtype)
    gates[0, 0, :4] = [-200.0, 200.0, -30.0, 30.0]
    c = rng.standard_normal((2, 3, HIDDEN)).astype(dtype)
    with xn.Graph().as_default():
        op = xn.ops.LSTMCellElementwise(xn.placeholder(dtype), xn.placeholder(dtype))
    portable = lambda g, s: op.forward(xp, g, s)  # noqa: E731
    fast = kernels.kernel(op, portable)
    if dtype == "float64" and not jax.config.jax_enable_x64:
        pytest.skip("JAX runs without x64 here (the test run turns it on)")
    assert fast is not portable
    got = jax.jit(fast)(gates, c)
    want = jax.jit(portable)(gates, c)
    tol = {"float32": 1e-6, "float64": 1e-14}[dtype]
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="gates must have shape"):
        fast(gates[..., :-1], c)
