"""NumPy kernels for stacking and unstacking 2-D pieces (a recurrent layer's time steps)
that keep every piece in the layout the 2-D product kernel gives its results: the batch
axis contiguous (``kernels.py`` computes ``a @ b`` as ``(b^T a^T)^T``). Elementwise ops
between a step's piece and a product then run along contiguous memory, and stacking the
steps' gradients copies contiguous runs instead of single elements.

- ``stack`` of F-ordered (batch, n) pieces on axis 0 lays the result out as (n, time,
  batch) in memory: each piece's columns are contiguous, and (time, batch) merge into one
  axis of rows without a copy (the reshape back to rows that an input projection's
  gradient takes).
- ``unstack``/``split`` of a 3-D array whose pieces would have no contiguous axis copies it
  once into that layout first.

>>> import numpy as np
>>> pieces = [np.asfortranarray(np.full((2, 3), t, np.float32)) for t in range(4)]
>>> out = stack_pieces(pieces)
>>> out.shape, out.reshape(8, 3).base is not None, bool((out[2] == 2).all())
((4, 2, 3), True, True)
"""

from __future__ import annotations

import numpy as np

from ...ops import shape
from .kernels import fast


def _f_pieces(pieces) -> bool:
    first = pieces[0]
    return all(type(p) is np.ndarray and p.ndim == 2 and p.dtype == first.dtype
               and p.shape == first.shape and p.flags.f_contiguous
               and not p.flags.c_contiguous for p in pieces)


def stack_pieces(pieces):
    """``np.stack(pieces, axis=0)`` of F-ordered 2-D pieces, laid out (n, time, batch)."""
    batch, n = pieces[0].shape
    out = np.empty((n, len(pieces), batch), pieces[0].dtype).transpose(1, 2, 0)
    for t, piece in enumerate(pieces):
        out[t] = piece
    return out


@fast(shape.Stack)
def _stack(op, portable):
    def forward(*pieces):
        if op.axis == 0 and pieces and _f_pieces(pieces):
            return stack_pieces(pieces)
        return portable(*pieces)

    return forward


def _no_contiguous_axis(x, axis) -> bool:
    step = x.itemsize
    return all(x.strides[a] != step and x.shape[a] > 1 for a in range(3) if a != axis)


def batch_contiguous(x, axis):
    """A copy of 3-D ``x`` whose pieces along ``axis`` have their first axis contiguous
    and ``axis`` next in memory."""
    rest = [a for a in range(3) if a != axis]
    outer_to_inner = [rest[1], axis, rest[0]]
    base = np.empty([x.shape[a] for a in outer_to_inner], x.dtype)
    out = base.transpose(np.argsort(outer_to_inner))
    np.copyto(out, x)
    return out


@fast(shape.Pieces, fresh=False)
def _pieces(op, portable):
    def forward(x):
        if (type(x) is np.ndarray and x.ndim == 3 and x.size
                and _no_contiguous_axis(x, op.axis % 3)):
            x = batch_contiguous(x, op.axis % 3)
        return portable(x)

    return forward
