"""On JAX with passes on, a plan with cond, while_loop and scan (and their gradients, and a
training step through them) stays one compiled ``jax.jit`` call: no fallback to eager."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close


@pytest.mark.backends("jax")
def test_plans_with_control_flow_stay_compiled(dev):
    with xn.Graph().as_default():
        x = xn.placeholder("float64", (3,), name="x")
        flag = xn.placeholder("bool", (), name="flag")
        w = xn.Variable(np.array([0.5, -0.25, 1.0]), name="w")
        branched = xn.cond(flag, lambda: x * w, lambda: xn.tanh(x) - w)
        _, looped = xn.while_loop(lambda i, v: xn.reduce_sum(v * v) < 50.0,
                                  lambda i, v: [i + 1, v * 1.5 + w],
                                  [xn.constant(0, "int32"), branched], maximum_iterations=20)
        scanned = xn.scan(lambda a, e: a * w + e, xn.stack([x, looped, x * 2.0]))
        loss = xn.reduce_sum(scanned * scanned)
        grads = xn.gradients(loss, [x, w])
        step = xn.train.GradientDescentOptimizer(1e-4).minimize(loss)
        compiled = xn.Session(device=dev, dtype="float64")
        eager = xn.Session(device=dev, dtype="float64", passes=False)
        x0 = np.array([0.3, -0.7, 1.1])
        for f in (True, False):
            feed = {x: x0, flag: f}
            want = eager.run([loss, *grads], feed, to_numpy=True)
            got = compiled.run([loss, *grads], feed, to_numpy=True)
            for a, b in zip(got, want):
                assert_close(a, b, "float64", rtol=1e-9)
            compiled.run(step, feed)
            eager.run(step, feed)
            assert_close(compiled.run(w), eager.run(w, to_numpy=True), "float64", rtol=1e-9)
        runners = [r for r in compiled._executors.values() if r.plan.steps]
        assert len(runners) >= 2  # the fetch, the step
        assert not any(r.eager for r in runners), [r.reason for r in runners]
