"""The graph op that averages gradients over the ranks: ``Allreduce`` takes every gradient
of a training step and returns their averages packed flat, in one message per dtype (one in
all for float32 models); an ``Unpack`` per Variable cuts its span back out, in its shape.
The optimizer's update node reads those, so it is the wrapped optimizer's own (on NumPy its
in-place kernels still apply it).

>>> import xpnn as xn
>>> from xpnn.distributed.allreduce import Allreduce, unpack
>>> w = xn.Variable([[1.0, 2.0]]); b = xn.Variable([3.0])
>>> op = Allreduce([w * 2.0, b * 2.0], [w, b], comm=None)
>>> op.shape, [(u.start, u.stop, u.shape) for u in unpack(op)]
((3,), [(0, 2, (1, 2)), (2, 3, (1,))])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import array_api_compat

from .. import ops
from ..dtypes import dtype_name
from ..graph import Operation
from .agreement import agree, describe_variables
from .transport import kind_of, transport_for


@dataclass(frozen=True)
class Group:
    """The gradients of one dtype: their positions, and each one's span in the group's
    buffer."""

    members: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]


class Allreduce(Operation):
    """The average over the ranks of ``grads`` (one per Variable of ``variables``, in their
    shapes), packed flat in order: a 1-d array of every gradient's entries, in the dtype
    they promote to. Per dtype one buffer, reused, and one message (``transport``).

    ``scale`` (read at every run) weights this rank's gradients in the sum: 1 for an equal
    share of the global batch; ``fit`` sets ``rows * size / global rows`` when the last
    batch splits unevenly, so the average is the global batch's mean gradient. With
    ``check_finite`` a non-finite average fails the run on every rank alike
    (FloatingPointError, which the Session reports as a NumericsError)."""

    fresh = True  # its result is a new array, never a buffer kept between runs

    def __init__(self, grads, variables, comm, check_finite=False, name=None):
        self.comm, self.variables = comm, list(variables)
        self.sizes = [math.prod(v.shape) for v in self.variables]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes) + 1)]
        self.scale, self.check_finite = 1.0, check_finite
        self._layouts = {}
        super().__init__(*grads, name=name)

    def infer_shape(self, *shapes):
        return (self.offsets[-1],)

    def forward(self, xp, *grads):
        self._check_shapes(grads)
        transport, groups = self._layout(grads)
        self.comm.steps += 1  # named by a timeout's message
        scale = float(self.scale)
        sums = [transport.allreduce_sum(xp, [grads[i] for i in g.members], scale)
                for g in groups]
        average = _average(xp, sums, groups, len(grads), self.comm.size)
        if self.check_finite:
            problem = ops.nonfinite(xp, average)
            if problem is not None:
                raise FloatingPointError(
                    f"the gradients averaged over the ranks hold {problem}: a rank's loss or "
                    "gradients are not finite; every rank stops at this step")
        return average

    def _check_shapes(self, grads) -> None:
        for v, g in zip(self.variables, grads):
            if tuple(g.shape) != v.shape:
                raise ValueError(f"the gradient for Variable {v.label} has shape "
                                 f"{tuple(g.shape)} but the Variable has shape {v.shape}")

    def _layout(self, grads):
        """(transport, groups) for gradients of these dtypes on this device, made once; the
        first time, the ranks' Variables and transports are compared (one allgather)."""
        key = (str(array_api_compat.device(grads[0])), *(str(g.dtype) for g in grads))
        layout = self._layouts.get(key)
        if layout is None:
            agree(self.comm, "DistributedOptimizer",
                  describe_variables(self.variables, grads), kind_of(grads[0]))
            transport = transport_for(self.comm, grads[0])  # NCCL's set-up is collective
            layout = self._layouts[key] = (transport, _groups(grads))
        return layout


def _groups(grads) -> list[Group]:
    """The gradients grouped by dtype, in order of first appearance."""
    by_dtype = {}
    for i, g in enumerate(grads):
        by_dtype.setdefault(dtype_name(g.dtype), []).append(i)
    groups = []
    for members in by_dtype.values():
        spans, start = [], 0
        for i in members:
            spans.append((start, start + math.prod(grads[i].shape)))
            start = spans[-1][1]
        groups.append(Group(tuple(members), tuple(spans)))
    return groups


def _average(xp, sums, groups, n, size):
    """The sums divided by the number of ranks, as one new flat array in input order."""
    if len(sums) == 1:
        return sums[0] / size
    dtype = xp.result_type(*(s.dtype for s in sums))
    pieces = [None] * n
    for group, total in zip(groups, sums):
        for i, (start, stop) in zip(group.members, group.spans):
            pieces[i] = xp.astype(total[start:stop], dtype)
    return xp.concat(pieces) / size


class Unpack(Operation):
    """One Variable's averaged gradient: entries ``start:stop`` of an Allreduce's result,
    in the Variable's ``shape``."""

    def __init__(self, flat, start, stop, shape, name=None):
        self.start, self.stop, self.new_shape = start, stop, tuple(shape)
        super().__init__(flat, name=name)

    def forward(self, xp, flat):
        return xp.reshape(flat[self.start:self.stop], self.new_shape)

    def infer_shape(self, shape):
        return self.new_shape


def unpack(op: Allreduce) -> list[Unpack]:
    """An Unpack per Variable of ``op``, named after it."""
    return [Unpack(op, op.offsets[i], op.offsets[i + 1], v.shape,
                   name=f"{v.label}/averaged_gradient")
            for i, v in enumerate(op.variables)]


def average_gradients(grads_and_vars, comm, check_finite=False, name=None) -> list:
    """``grads_and_vars`` with every gradient replaced by its average over the ranks of
    ``comm``, all computed by one Allreduce node (None gradients stay None; gradients that
    already are such averages are not averaged again).

    >>> import xpnn as xn
    >>> w = xn.Variable([1.0, 2.0], name="w")
    >>> [(g.label, v.label) for g, v in average_gradients([(w * 2.0, w)], comm=None)]
    [('w/averaged_gradient', 'w')]
    """
    pairs = list(grads_and_vars)
    todo = [i for i, (g, _) in enumerate(pairs) if g is not None and not _averaged(g, comm)]
    if not todo:
        return pairs
    op = Allreduce([pairs[i][0] for i in todo], [pairs[i][1] for i in todo], comm,
                   check_finite=check_finite, name=name)
    for i, averaged in zip(todo, unpack(op)):
        pairs[i] = (averaged, pairs[i][1])
    return pairs


def _averaged(grad, comm) -> bool:
    return (isinstance(grad, Unpack) and isinstance(grad.inputs[0], Allreduce)
            and grad.inputs[0].comm is comm)


def allreduces(step) -> list[Allreduce]:
    """The Allreduce nodes whose averages an optimizer step applies."""
    found = {}
    for node in step.inputs:
        if isinstance(node, Unpack) and isinstance(node.inputs[0], Allreduce):
            found[id(node.inputs[0])] = node.inputs[0]
    return list(found.values())
