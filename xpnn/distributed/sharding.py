"""Each rank's part of the data: a fixed shard (``shard``), or its rows of every global
batch under one permutation that all ranks share (``batches``), so that ``size`` ranks with
batch ``b`` see exactly the batches one process with batch ``size * b`` would.

>>> import numpy as np
>>> from xpnn.distributed.sharding import split
>>> split(10, 4), split(3, 4)
([3, 3, 2, 2], [1, 1, 1, 0])
"""

from __future__ import annotations

import zlib

import numpy as np

from ..data import _n_rows, _row_taker
from ..host import to_numpy


def split(n, size) -> list[int]:
    """``n`` rows over ``size`` ranks as evenly as they go, the first ranks one more."""
    base, extra = divmod(n, size)
    return [base + (rank < extra) for rank in range(size)]


def shard(X, y, comm, even=True):
    """This rank's contiguous block of ``X`` and ``y`` (``y`` may be None), as ChainerMN's
    ``scatter_dataset`` without the scatter: every rank holds the data and keeps its part.
    With ``even`` every block has ``n // size`` rows (the last ``n % size`` rows are left
    out), so that batches of one size give every rank the same number of steps; without,
    the first ``n % size`` ranks get one row more.

    >>> import numpy as np
    >>> class Rank1of2: rank, size = 1, 2
    >>> [a.tolist() for a in shard(np.arange(5), np.arange(5) * 10, Rank1of2())]
    [[2, 3], [20, 30]]
    """
    n = _n_rows(X)
    if y is not None and _n_rows(y) != n:
        raise ValueError(f"X and y differ in length: len(X) = {n}, len(y) = {_n_rows(y)}")
    counts = [n // comm.size] * comm.size if even else split(n, comm.size)
    start = sum(counts[:comm.rank])
    stop = start + counts[comm.rank]
    return X[start:stop, ...], (None if y is None else y[start:stop, ...])


def batches(X, y, batch_size, comm, shuffle=True, seed=None, drop_last=False, shares=False,
            data_checksum=None):
    """This rank's rows of each global batch of ``batch_size * comm.size`` rows, as pairs
    ``(X_part, y_part)`` (triples with this rank's ``share`` too, see below). Every rank
    passes the same ``X`` and ``y``; the permutation comes from ``seed`` as in
    ``xn.data.batches`` (an int or a Generator in the same state on every rank; None: rank
    0 draws one and sends it), so one process with batch ``batch_size * size`` and the same
    seed sees the same global batches. A last global batch that does not split evenly is
    split as evenly as it goes; one with fewer rows than ranks is left out. The ranks'
    row counts, contents (a CRC32 of ``X`` and ``y``, see :func:`checksum`; pass
    ``data_checksum`` to reuse one computed before, as ``fit`` does once for all its
    epochs) and permutations are compared first (one small message): a rank with other
    data raises on every rank, naming the ranks, instead of training on it silently.

    ``share`` is ``rows here * size / rows in the global batch``, 1 for an even split: the
    weight ``Allreduce.scale`` gives this rank's gradients to average to the global mean.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = _n_rows(X)
    if y is not None and _n_rows(y) != n:
        raise ValueError(f"X and y differ in length: len(X) = {n}, len(y) = {_n_rows(y)}")
    if shuffle and seed is None:
        seed = comm.mpi.bcast(np.random.SeedSequence().entropy if comm.rank == 0 else None)
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    if data_checksum is None:
        data_checksum = checksum(X, y)
    _check_same_data(comm, n, data_checksum, order)
    parts = _parts(n, int(batch_size), comm, drop_last)
    take_X, take_y = _row_taker(X, order), _row_taker(y, order)
    return ((take_X(a, b), take_y(a, b), share) if shares else (take_X(a, b), take_y(a, b))
            for a, b, share in parts)


def _parts(n, batch_size, comm, drop_last) -> list[tuple[int, int, float]]:
    """(start, stop, share) of this rank's rows in each global batch, in permuted order."""
    step = batch_size * comm.size
    stop = n - n % step if drop_last else n
    parts = []
    for start in range(0, stop, step):
        m = min(step, n - start)
        if m < comm.size:
            break
        counts = split(m, comm.size)
        first = start + sum(counts[:comm.rank])
        parts.append((first, first + counts[comm.rank], counts[comm.rank] * comm.size / m))
    return parts


def checksum(X, y=None) -> int:
    """A CRC32 of the contents of ``X`` and ``y`` (shapes, dtypes and bytes, on the host):
    what ``batches`` compares across the ranks.

    >>> import numpy as np
    >>> X = np.arange(6.0).reshape(3, 2)
    >>> checksum(X, np.arange(3)) == checksum(X.copy(), np.arange(3)) != checksum(X[::-1], None)
    True
    """
    digest = 0
    for a in (X, y):
        host = None if a is None else np.ascontiguousarray(to_numpy(a))
        if host is not None:
            digest = zlib.crc32(f"{host.shape} {host.dtype.str}".encode(), digest)
            digest = zlib.crc32(host.reshape(-1).view(np.uint8), digest)
    return digest


def check_data(X, y, comm) -> int:
    """Raise on every rank alike where the ranks' ``X`` and ``y`` differ (row counts or
    contents, naming the ranks); else their :func:`checksum`, for ``batches``."""
    digest = checksum(X, y)
    _check_same_data(comm, _n_rows(X), digest, None)
    return digest


def _check_same_data(comm, n, digest, order) -> None:
    """Raise on every rank alike where the ranks' row counts, data or permutations differ."""
    mine = (n, digest, None if order is None else zlib.crc32(order.tobytes()))
    everyone = comm.mpi.allgather(mine)
    problems = (
        ("row counts", "pass the same X and y on every rank", lambda r: f"{everyone[r][0]} rows"),
        ("data", "pass the same X and y (the same rows in the same order) on every rank",
         lambda r: f"X and y of CRC32 {everyone[r][1]:#010x}"),
        ("permutations", "pass the same seed (or a Generator in the same state) on every rank",
         lambda r: "no shuffling" if everyone[r][2] is None else
         f"a permutation of CRC32 {everyone[r][2]:#010x}"))
    for k, (what, fix, describe) in enumerate(problems):
        others = [r for r in range(1, comm.size) if everyone[r][k] != everyone[0][k]]
        if others:
            ranks = ", ".join(f"rank {r} has {describe(r)}" for r in [0, *others])
            raise ValueError(f"distributed batches: the ranks' {what} differ ({ranks}): {fix}")


class Rows:
    """Rows ``start:stop`` of an array-like ``a`` (a memmap, ``np.load(mmap_mode="r")``, an
    HDF5 dataset): indexing it reads those rows of ``a`` only, into memory, never others.

    >>> import numpy as np
    >>> part = Rows(np.arange(10) * 10, 4, 7)
    >>> part.shape, part[1:].tolist(), part[np.array([0, 2])].tolist()
    ((3,), [50, 60], [40, 60])
    """

    def __init__(self, a, start, stop):
        self.a, self.start, self.stop = a, int(start), int(stop)
        self.shape = (self.stop - self.start, *tuple(a.shape)[1:])
        self.dtype = a.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        rows, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        n = self.shape[0]
        if isinstance(rows, slice):
            r = range(n)[rows]
            rows = slice(self.start + r.start, self.start + r.stop, r.step) if r else slice(0, 0)
        else:
            rows = np.asarray(rows)
            if rows.size and (rows.min() < -n or rows.max() >= n):
                raise IndexError(f"rows {rows.min()}..{rows.max()} are outside this shard's "
                                 f"{n} rows (rows {self.start}:{self.stop} of the data)")
            rows = np.where(rows < 0, rows + n, rows) + self.start
        return np.asarray(self.a[(rows, *rest)])


def shard_dataset(X, y=None, comm=None, num_shards=None, index=None, even=False, **options):
    """An ``xn.data.Dataset`` over this rank's contiguous block of ``X`` (and ``y``): a
    memmap (or any array-like) is read only in this rank's rows, each batch as it is
    prepared. The block is ``comm``'s rank's of ``comm.size`` (or ``index`` of
    ``num_shards``), as :func:`shard` cuts it (``even``: every block ``n // size`` rows);
    ``options`` are the Dataset's (``batch_size``, ``shuffle``, ``seed``, ``prefetch``...).
    The blocks of all ranks together are the data (without ``even``).

    >>> import numpy as np
    >>> ds = shard_dataset(np.arange(10), None, num_shards=3, index=1, batch_size=2)
    >>> [b.tolist() for b, _ in ds]
    [[4, 5], [6]]
    """
    from ..datasets import Dataset

    if comm is not None:
        num_shards, index = comm.size, comm.rank
    if num_shards is None or index is None or not 0 <= index < num_shards:
        raise ValueError(f"shard_dataset: pass comm (xn.distributed.init()), or num_shards "
                         f">= 1 and an index in [0, num_shards); got {num_shards}, {index}")
    n = _n_rows(X)
    if y is not None and _n_rows(y) != n:
        raise ValueError(f"X and y differ in length: len(X) = {n}, len(y) = {_n_rows(y)}")
    counts = [n // num_shards] * num_shards if even else split(n, num_shards)
    start = sum(counts[:index])
    stop = start + counts[index]
    return Dataset(Rows(X, start, stop), None if y is None else Rows(y, start, stop), **options)
