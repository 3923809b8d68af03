"""Checks that every rank built the same thing before their arrays are combined: one small
pickled ``allgather`` of each rank's list of Variables (name, shape, dtype), compared on
every rank alike, so that every rank raises the same error instead of one of them waiting in
an allreduce whose sizes no longer match.

>>> from xpnn.distributed.agreement import differences
>>> print(differences([([("W", (3, 4), "float32")], "numpy"),
...                    ([("W", (3, 5), "float32"), ("b", (5,), "float32")], "numpy")]))
rank 0 has 1 Variables, rank 1 has 2
Variable 'W': shape (3, 4) float32 on rank 0, shape (3, 5) float32 on rank 1
Variable 'b': missing on rank 0, shape (5,) float32 on rank 1
"""

from __future__ import annotations

from itertools import zip_longest

from ..dtypes import dtype_name

MAX_LINES = 8


class GraphMismatchError(ValueError):
    """The ranks' graphs differ where they must agree (their Variables, or the transport
    their gradients take): the message names the Variables and the ranks."""


def describe_variables(variables, values) -> list[tuple]:
    """``(name, shape, dtype)`` of each Variable as it runs (its value's shape and dtype)."""
    return [(v.label, tuple(a.shape), dtype_name(a.dtype)) for v, a in zip(variables, values)]


def agree(comm, what, entries, extra=None) -> None:
    """Raise :class:`GraphMismatchError` on every rank where the ranks' ``entries`` (or
    ``extra``, e.g. how the gradients travel) differ. One collective call: every rank must
    call it at the same point."""
    everyone = comm.mpi.allgather((list(entries), extra))
    problem = differences(everyone)
    if problem:
        raise GraphMismatchError(
            f"{what}: the ranks' graphs differ, so their values cannot be combined:\n"
            f"{problem}\nbuild the same model (the same layers, sizes and dtypes, in the same "
            "order) on the same kind of device on every rank")


def differences(everyone) -> str:
    """Each rank's entries against rank 0's, a line per difference ('' when they agree)."""
    first, first_extra = everyone[0]
    lines = []
    for rank, (entries, extra) in enumerate(everyone[1:], start=1):
        if extra != first_extra:
            lines.append(f"the gradients travel by {first_extra} on rank 0, by {extra} on "
                         f"rank {rank}")
        if len(entries) != len(first):
            lines.append(f"rank 0 has {len(first)} Variables, rank {rank} has {len(entries)}")
        for mine, theirs in zip_longest(first, entries):
            if mine != theirs:
                lines.append(_line(mine, theirs, rank))
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"... and {len(lines) - MAX_LINES} more"]
    return "\n".join(lines)


def _line(mine, theirs, rank) -> str:
    names = dict.fromkeys(e[0] for e in (mine, theirs) if e is not None)
    label = " / ".join(repr(n) for n in names)
    return f"Variable {label}: {_entry(mine)} on rank 0, {_entry(theirs)} on rank {rank}"


def _entry(entry) -> str:
    if entry is None:
        return "missing"
    name, shape, dtype = entry
    return f"shape {tuple(shape)} {dtype}"
