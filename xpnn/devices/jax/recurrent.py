"""A JAX kernel for the fused LSTM cell (``xpnn.ops.lstm_cell_elementwise``), traced into a
compiled plan and into the loop bodies it runs: the gates' sigmoids as ``jax.nn.sigmoid``
(XLA's logistic), not the portable ``exp(x - logaddexp(0, x))``, whose log1p, exp, abs and
select XLA computes as written, every step of the loop. The same values to float
rounding; shapes outside the op's case go to the portable forward (its error).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     h, c = xn.ops.lstm_cell_elementwise(xn.constant(np.zeros((1, 4), np.float32)),
...                                         xn.constant(np.ones((1, 1), np.float32)))
...     xn.Session(backend="jax").run(c).tolist()
[[0.5]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ... import ops
from .kernels import fast


def _case(gates, c) -> bool:
    return (gates.ndim >= 1 and gates.shape[:-1] == c.shape[:-1]
            and gates.shape[-1] == 4 * c.shape[-1] and gates.dtype == c.dtype
            and jnp.issubdtype(gates.dtype, jnp.floating))


@fast(ops.LSTMCellElementwise)
def _lstm_cell(op, portable):
    def forward(gates, c):
        if not _case(gates, c):
            return portable(gates, c)
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c_new = f * c + i * g
        tc = jnp.tanh(c_new)
        return o * tc, c_new, jnp.concatenate([i, f, g, o], axis=-1), tc

    return forward
