"""Uneven data (Horovod's ``join``): ranks with different numbers of batches. A rank out of
batches calls ``join(session, step, comm)``; until every rank has, it answers the others'
gradient messages with zeros and a count of 0 (the steps' Allreduce, made ``joinable``,
sends a count of 1 and divides by the sum: the mean over the ranks still stepping). When
every rank has joined, the Variables of the rank that stepped last (the lowest such) are
broadcast, so every rank ends with the same weights and optimizer slots.

    opt = xn.distributed.DistributedOptimizer(xn.train.AdamOptimizer(1e-3), comm,
                                              joinable=True)
    step = opt.minimize(loss)
    for Xb, yb in my_batches:          # any number of them on each rank
        sess.run(step, {x: Xb, t: yb})
    xn.distributed.join(sess, step, comm)
"""

from __future__ import annotations

import math

import numpy as np

from ..dtypes import dtype_name
from .agreement import agree, describe_variables
from .allreduce import allreduces
from .comm import mpi
from .transport import kind_of


def join(session, step, comm) -> int:
    """Wait, answering the other ranks' gradient messages of ``step`` with zeros, until
    every rank has called it; then give every rank the Variables of the rank that stepped
    last (``broadcast_variables``). Returns that rank. ``step``'s averages must be a
    ``DistributedOptimizer(..., joinable=True)``'s."""
    nodes = allreduces(step)
    bad = [op.label for op in nodes if not op.joinable or op.overlapped]
    if not nodes or bad:
        raise ValueError(f"join: the step's gradients must be averaged by a "
                         f"DistributedOptimizer(..., joinable=True) (one message a step); "
                         f"{', '.join(bad) or 'it has no Allreduce'} is not")
    for op in nodes:
        if not op._layouts:  # a rank that never stepped: the others compare Variables first
            values = [session.get_value(v) for v in op.variables]
            agree(comm, "DistributedOptimizer", describe_variables(op.variables, values),
                  kind_of(values[0]))
    stepped_last = True
    while any(_answer_with_zeros(op, comm) for op in nodes):
        stepped_last = False
    root = comm.mpi.allreduce(comm.rank if stepped_last else comm.size, op=mpi().MIN)
    comm.broadcast_variables(session, root)
    return root


def _answer_with_zeros(op, comm) -> bool:
    """One step's messages of ``op`` from a rank that has joined: whether a rank still
    steps (the summed count is not 0)."""
    comm.steps += 1
    by_dtype = {}
    for v in op.variables:
        by_dtype.setdefault(_travels_as(op, v.dtype), []).append(math.prod(v.shape))
    count = None
    for k, (dtype, sizes) in enumerate(by_dtype.items()):
        buffer = np.zeros(sum(sizes) + (k == 0), dtype)
        comm.allreduce(mpi().IN_PLACE, buffer,
                       f"the gradients' allreduce of step {comm.steps} (this rank has joined)")
        count = buffer[-1] if k == 0 else count
    return count != 0


def _travels_as(op, dtype) -> str:
    name = dtype_name(dtype)
    return "float16" if op.compression and name.startswith("float") else name
