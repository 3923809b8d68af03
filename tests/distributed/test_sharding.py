"""``xn.distributed.shard_dataset``: each rank's Dataset reads only its block of a
memmapped data set, and the ranks' blocks together are the data. No MPI needed: a rank is
``(rank, size)``."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


class Counting:
    """A memmap that records the rows each read asks for."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.read = a, a.shape, a.dtype, set()

    def __getitem__(self, index):
        rows = index[0] if isinstance(index, tuple) else index
        if isinstance(rows, slice):
            self.read.update(range(len(self.a))[rows])
        else:
            self.read.update(np.asarray(rows).reshape(-1).tolist())
        return np.asarray(self.a[index])


class Rank:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


@pytest.fixture
def memmapped(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((23, 3)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(23))
    return (np.load(tmp_path / "X.npy", mmap_mode="r"),
            np.load(tmp_path / "y.npy", mmap_mode="r"), X)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("prefetch", [0, 2])
def test_each_rank_reads_only_its_rows_and_the_ranks_cover_the_data(memmapped, shuffle,
                                                                      prefetch):
    X_map, y_map, X = memmapped
    seen, size = [], 3
    for rank in range(size):
        Xc, yc = Counting(X_map), Counting(y_map)
        ds = xn.distributed.shard_dataset(Xc, yc, Rank(rank, size), batch_size=4,
                                          shuffle=shuffle, seed=1, prefetch=prefetch)
        assert not Xc.read and not yc.read  # nothing read before the epoch
        labels = []
        for Xb, yb in ds:
            np.testing.assert_array_equal(Xb, X[yb])  # the rows the labels name
            labels.extend(yb.tolist())
        start, stop = [(0, 8), (8, 16), (16, 23)][rank]  # 23 rows: 8 + 8 + 7
        assert sorted(labels) == list(range(start, stop))
        assert Xc.read == yc.read == set(range(start, stop))  # no row of another rank's
        seen.extend(labels)
    assert sorted(seen) == list(range(23))


def test_even_shards_and_bad_arguments(memmapped):
    X_map, y_map, _ = memmapped
    ds = xn.distributed.shard_dataset(X_map, y_map, num_shards=3, index=2, even=True,
                                      batch_size=10)
    assert [yb.tolist() for _, yb in ds] == [list(range(14, 21))]  # 7 rows each, 2 left out
    with pytest.raises(ValueError, match=r"shard_dataset: pass comm .* got 2, 2"):
        xn.distributed.shard_dataset(X_map, y_map, num_shards=2, index=2)
    with pytest.raises(ValueError, match="X and y differ in length"):
        xn.distributed.shard_dataset(X_map, y_map[:5], num_shards=2, index=0)
    part = xn.distributed.sharding.Rows(X_map, 3, 6)
    with pytest.raises(IndexError, match=r"outside this shard's 3 rows \(rows 3:6"):
        part[np.array([0, 3])]
