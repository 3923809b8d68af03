"""PyTorch's scatter-add for the ops of ``xpnn.ops.indexing``: each op's own
``forward_with`` with ``index_add_`` in place of the portable segment sum. Ids outside
[0, n) go to one spare row past the end, cut off after: nothing is read on the host (no
synchronisation on CUDA). ``tests/ops/test_indexing.py`` checks it against the portable
path.

>>> import torch
>>> add_rows(None, torch.ones(3, 2), torch.tensor([2, 0, 5]), 3).tolist()
[[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
"""

from __future__ import annotations

import array_api_compat.torch as xp_torch
import torch

from ...ops import indexing
from .kernels import fast


def add_rows(xp, rows, ids, n):
    """``ops.indexing.segment_sum``: rows (k, m) added into n rows by ids, ids outside
    [0, n) dropped."""
    ids = ids.long()
    ids = torch.where((ids >= 0) & (ids < n), ids, n)
    out = torch.zeros((n + 1, rows.shape[1]), dtype=rows.dtype, device=rows.device)
    return out.index_add_(0, ids, rows)[:n]


@fast(indexing.GatherGrad, indexing.UnsortedSegmentSum, indexing.ScatterNd,
      indexing.GatherNdGrad, indexing.TopKValuesGrad)
def _scatter_add(op, portable, device):
    return lambda *values: op.forward_with(xp_torch, add_rows, *values)
