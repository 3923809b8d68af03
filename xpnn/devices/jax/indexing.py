"""JAX's scatter-add for the ops of ``xpnn.ops.indexing``, traced into a compiled plan:
each op's own ``forward_with`` with ``.at[].add`` (XLA's scatter) in place of the
portable segment sum's sort and cumulative sums. ``tests/ops/test_indexing.py`` checks it
against the portable path.

>>> import jax.numpy as jnp
>>> add_rows(None, jnp.ones((3, 2)), jnp.array([2, 0, -1]), 3).tolist()
[[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
"""

from __future__ import annotations

import jax.numpy as jnp

from ...ops import indexing
from .kernels import fast


def add_rows(xp, rows, ids, n):
    """``ops.indexing.segment_sum``: rows (k, m) added into n rows by ids, ids outside
    [0, n) dropped (a negative id would count from the end: sent past it first)."""
    ids = jnp.where(ids < 0, n, ids)
    return jnp.zeros((n, rows.shape[1]), rows.dtype).at[ids].add(rows, mode="drop")


@fast(indexing.GatherGrad, indexing.UnsortedSegmentSum, indexing.ScatterNd,
      indexing.GatherNdGrad, indexing.TopKValuesGrad)
def _scatter_add(op, portable):
    return lambda *values: op.forward_with(jnp, add_rows, *values)
