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
import time
from dataclasses import dataclass

import array_api_compat

from .. import ops
from ..dtypes import dtype_name
from ..graph import Operation
from .agreement import agree, describe_variables
from .transport import kind_of, transport_for, what


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
    (FloatingPointError, which the Session reports as a NumericsError). ``compression``:
    "fp16" sends floating gradients as float16. ``joinable``: the first message ends with a
    count, 1 from each rank that steps and 0 from one that has joined (``join``), and the
    sum is divided by the summed count, not by the number of ranks."""

    fresh = True  # its result is a new array, never a buffer kept between runs
    overlapped = False

    def __init__(self, grads, variables, comm, check_finite=False, compression=None,
                 joinable=False, name=None):
        self.comm, self.variables, self.joinable = comm, list(variables), joinable
        self.compression = check_compression(compression)
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
        sums = []
        for k, g in enumerate(groups):
            members = self._compress(xp, [grads[i] for i in g.members])
            if self.joinable:  # scaled here: the count that ends the first message is not
                members = [m * scale for m in members] if scale != 1.0 else members
                if k == 0:
                    members.append(xp.ones((1,), dtype=members[0].dtype,
                                           device=array_api_compat.device(members[0])))
            total = transport.allreduce_sum(xp, members, 1.0 if self.joinable else scale)
            sums.append(self._decompress(xp, total, grads[g.members[0]]))
        divisor = self.comm.size
        if self.joinable:  # the ranks that have not joined (see join.py) sent 1, the others 0
            divisor, sums[0] = sums[0][-1:], sums[0][:-1]
        average = _average(xp, sums, groups, len(grads), divisor)
        return self._checked(xp, average)

    def _compress(self, xp, grads) -> list:
        """``grads`` as they travel: float16 with ``compression="fp16"`` (floating ones)."""
        if self.compression is None or not xp.isdtype(grads[0].dtype, "real floating"):
            return grads
        half = getattr(xp, "float16", None)
        if half is None:
            raise TypeError(f"compression='fp16': this array library ({xp.__name__}) has no "
                            "float16; use compression=None on it")
        return [xp.astype(g, half) for g in grads]

    def _decompress(self, xp, total, like):
        return total if total.dtype == like.dtype else xp.astype(total, like.dtype)

    def _checked(self, xp, average):
        if self.check_finite:
            problem = ops.nonfinite(xp, average)
            if problem is not None:
                raise FloatingPointError(
                    f"the gradients averaged over the ranks hold {problem}: a rank's loss or "
                    "gradients are not finite; every rank stops at this step")
        return average

    def _check_shapes(self, grads, variables=None) -> None:
        for v, g in zip(self.variables if variables is None else variables, grads):
            if tuple(g.shape) != v.shape:
                raise ValueError(f"the gradient for Variable {v.label} has shape "
                                 f"{tuple(g.shape)} but the Variable has shape {v.shape}")

    def _layout(self, grads):
        """(transport, groups) for gradients of these dtypes on this device, made once; the
        first time, the ranks' Variables and transports are compared (one allgather)."""
        return _layout(self._layouts, self.comm, self.variables, grads)


def _layout(layouts, comm, variables, grads):
    key = (str(array_api_compat.device(grads[0])), *(str(g.dtype) for g in grads))
    layout = layouts.get(key)
    if layout is None:
        agree(comm, "DistributedOptimizer", describe_variables(variables, grads),
              kind_of(grads[0]))
        transport = transport_for(comm, grads[0])  # NCCL's set-up is collective
        layout = layouts[key] = (transport, _groups(grads))
    return layout


def check_compression(compression):
    """``compression`` if it is one there is (None, "fp16"), else a ValueError."""
    if compression not in (None, "fp16"):
        raise ValueError(f"compression must be None or 'fp16' (gradients sent as float16, "
                         f"Horovod's Compression.fp16), got {compression!r}")
    return compression


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
    """The sums divided by ``size`` (the number of ranks, or the summed count), as one new
    flat array in input order."""
    if len(sums) == 1:
        return sums[0] / size
    dtype = xp.result_type(*(s.dtype for s in sums))
    pieces = [None] * n
    for group, total in zip(groups, sums):
        for i, (start, stop) in zip(group.members, group.spans):
            pieces[i] = xp.astype(total[start:stop], dtype)
    return xp.concat(pieces) / size


class OverlappedAllreduce(Allreduce):
    """:class:`Allreduce`'s average, its message cut into buckets of about ``bucket_bytes``
    (the gradients taken in reverse order of their Variables' creation, as Horovod and
    PyTorch's DDP do): each :class:`Bucket` starts its sum (nonblocking) as soon as its
    gradients are computed, in the backward pass, and this op waits for them all before the
    update. Its result equals Allreduce's bit for bit. ``waited``: the seconds spent waiting
    here so far (the allreduce's share not hidden behind the backward pass)."""

    overlapped = True

    def __init__(self, grads, variables, comm, bucket_bytes, check_finite=False,
                 compression=None, name=None):
        variables = list(variables)
        self.buckets = [Bucket([grads[i] for i in members], members)
                        for members in buckets_of(variables, bucket_bytes)]
        super().__init__(self.buckets, variables, comm, check_finite, compression, name=name)
        for bucket in self.buckets:
            bucket.owner = self
        self.in_flight, self.waited = [], 0.0

    def forward(self, xp, *tokens):
        started = time.perf_counter()
        pieces = [None] * len(self.variables)
        for bucket in self.buckets:
            for request, result, group, like in bucket.pending:
                if request is not None:
                    self.comm.wait(request, what(self.comm))
                total = self._decompress(xp, result(), like)
                for i, (start, stop) in zip(group.members, group.spans):
                    pieces[bucket.members[i]] = total[start:stop]
            bucket.pending = ()
        self.in_flight = []
        self.waited += time.perf_counter() - started
        dtype = xp.result_type(*(p.dtype for p in pieces))
        average = xp.concat([xp.astype(p, dtype) for p in pieces]) / self.comm.size
        return self._checked(xp, average)


class Bucket(Operation):
    """Some gradients of an :class:`OverlappedAllreduce` (``members``: their positions in
    it): its forward packs them and starts their sum over the ranks, without waiting; its
    value is an empty array, which orders the wait after it."""

    def __init__(self, grads, members, name=None):
        self.members, self.owner, self.pending = tuple(members), None, ()
        self._layouts = {}
        super().__init__(*grads, name=name)

    def infer_shape(self, *shapes):
        return (0,)

    def forward(self, xp, *grads):
        owner = self.owner
        variables = [owner.variables[i] for i in self.members]
        owner._check_shapes(grads, variables)
        transport, groups = _layout(self._layouts, owner.comm, variables, grads)
        if self is owner.buckets[0]:
            owner.comm.steps += 1  # named by a timeout's message
        for request in owner.in_flight:  # MPI progresses the messages sent before
            request.Test()
        pending = []
        for k, g in enumerate(groups):
            members = owner._compress(xp, [grads[i] for i in g.members])
            request, result = transport.start(xp, members, float(owner.scale), (id(self), k))
            pending.append((request, result, g, grads[g.members[0]]))
            if request is not None:
                owner.in_flight.append(request)
        self.pending = tuple(pending)
        return xp.zeros((0,), dtype=grads[0].dtype, device=array_api_compat.device(grads[0]))


def buckets_of(variables, bucket_bytes) -> list[list[int]]:
    """Positions of ``variables`` in buckets of at least ``bucket_bytes`` each (the last
    may be smaller), from the last Variable to the first.

    >>> import xpnn as xn
    >>> vs = [xn.Variable([0.0] * n) for n in (4, 1, 2, 8)]
    >>> buckets_of(vs, 12)
    [[3], [2, 1], [0]]
    """
    if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) or bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be a number of bytes >= 1, got {bucket_bytes!r}")
    buckets, current, size = [], [], 0
    for i in reversed(range(len(variables))):
        current.append(i)
        size += math.prod(variables[i].shape) * dtype_size(variables[i].dtype)
        if size >= bucket_bytes:
            buckets.append(current)
            current, size = [], 0
    return buckets + [current] if current else buckets


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


def dtype_size(dtype) -> int:
    """Bytes per entry of a dtype named like "float32" (1 for "bool")."""
    bits = "".join(c for c in dtype_name(dtype) if c.isdigit())
    return int(bits or 8) // 8


def unpack(op: Allreduce) -> list[Unpack]:
    """An Unpack per Variable of ``op``, named after it."""
    return [Unpack(op, op.offsets[i], op.offsets[i + 1], v.shape,
                   name=f"{v.label}/averaged_gradient")
            for i, v in enumerate(op.variables)]


def average_gradients(grads_and_vars, comm, check_finite=False, compression=None,
                      bucket_bytes=None, joinable=False, name=None) -> list:
    """``grads_and_vars`` with every gradient replaced by its average over the ranks of
    ``comm``, all computed by one Allreduce node (None gradients stay None; gradients that
    already are such averages are not averaged again). With ``bucket_bytes`` an
    :class:`OverlappedAllreduce`, its buckets started during the backward pass;
    ``compression="fp16"`` sends floating gradients as float16; ``joinable``: ranks may
    stop early (``xn.distributed.join``).

    >>> import xpnn as xn
    >>> w = xn.Variable([1.0, 2.0], name="w")
    >>> [(g.label, v.label) for g, v in average_gradients([(w * 2.0, w)], comm=None)]
    [('w/averaged_gradient', 'w')]
    """
    pairs = list(grads_and_vars)
    todo = [i for i, (g, _) in enumerate(pairs) if g is not None and not _averaged(g, comm)]
    if not todo:
        return pairs
    grads, variables = [pairs[i][0] for i in todo], [pairs[i][1] for i in todo]
    if bucket_bytes is None:
        op = Allreduce(grads, variables, comm, check_finite, compression, joinable, name=name)
    else:
        op = OverlappedAllreduce(grads, variables, comm, bucket_bytes, check_finite,
                                 compression, name=name)
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
