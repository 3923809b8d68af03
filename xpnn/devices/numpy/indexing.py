"""NumPy's scatter-add for the ops of ``xpnn.ops.indexing`` (the gradients of gathers,
``scatter_nd``, ``unsorted_segment_sum``, the gradient of ``top_k``): each op's own
``forward_with`` with ``add_rows`` below in place of the portable segment sum. Floating
rows into at most as many segments as rows: one ``bincount`` over (segment, column) pairs,
summed in float64; else the rows sorted by segment and summed by ``add.reduceat`` (an
embedding table's gradient, many more rows than ids). Each segment is summed on its own:
no rounding carried from one to the next. ``tests/ops/test_indexing.py`` checks them
against the portable path.

>>> import numpy as np
>>> add_rows(None, np.ones((3, 2), np.float32), np.array([2, 0, 2]), 3).tolist()
[[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
"""

from __future__ import annotations

import array_api_compat.numpy as xp_numpy
import numpy as np

from ...ops import indexing
from .kernels import fast


def add_rows(xp, rows, ids, n):
    """``ops.indexing.segment_sum``: rows (k, m) added into n rows by ids, ids outside
    [0, n) dropped."""
    ids = np.asarray(ids, dtype=np.intp)
    valid = (ids >= 0) & (ids < n)
    if not valid.all():
        rows, ids = rows[valid], ids[valid]
    k, m = rows.shape
    if rows.dtype.kind == "f" and n <= k:
        flat = (ids[:, None] * m + np.arange(m)).ravel()
        sums = np.bincount(flat, weights=rows.ravel(), minlength=n * m)
        return sums.reshape(n, m).astype(rows.dtype, copy=False)
    out = np.zeros((n, m), rows.dtype)
    if k:
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
        out[ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


@fast(indexing.GatherGrad, indexing.UnsortedSegmentSum, indexing.ScatterNd,
      indexing.GatherNdGrad, indexing.TopKValuesGrad)
def _scatter_add(op, portable):
    return lambda *values: op.forward_with(xp_numpy, add_rows, *values)
