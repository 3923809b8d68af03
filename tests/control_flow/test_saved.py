"""What a differentiated loop keeps per step for its gradient (``Body.gradient(save=True)``):
of an op with several outputs, only the outputs the gradient reads, not the op's whole
tuple."""

from __future__ import annotations

import numpy as np

import xpnn as xn
from xpnn.autodiff import topological_order
from xpnn.control_flow.scan import Scan
from xpnn.ops.outputs import Output


def test_lstm_scan_keeps_only_the_outputs_its_gradient_reads():
    """The fused LSTM cell's gradient reads its activated gates and tanh(c') (outputs 2 and
    3); h' and c' (0 and 1) are the next step's carry, which the loop keeps anyway: saving
    the cell's tuple kept them twice."""
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (3, 4, 5))
        lstm = xn.nn.LSTM(5, 6, return_sequences=True, loop="scan", seed=0)
        grads = xn.gradients(xn.reduce_sum(lstm(x)), lstm.parameters())
        (scan,) = [n for n in topological_order(grads) if isinstance(n, Scan)]
        saved = scan.vjp.saved
        assert all(isinstance(n, Output) for n in saved), [n.label for n in saved]
        assert sorted(n.output_index for n in saved) == [2, 3]
        assert {type(n.inputs[0]).__name__ for n in saved} == {"LSTMCellElementwise"}
        # and the gradient fed those still matches the unrolled layer's
        unrolled = xn.nn.LSTM(5, 6, return_sequences=True, seed=0)
        want = xn.gradients(xn.reduce_sum(unrolled(x)), unrolled.parameters())
        sess = xn.Session()
        feed = {x: np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)}
        for got, ref in zip(sess.run(grads, feed, to_numpy=True),
                            sess.run(want, feed, to_numpy=True)):
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
