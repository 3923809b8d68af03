"""``xn.data.Dataset`` (issue #28): batches from arrays, memmaps, generators, functions and
Keras-Sequence-like objects, shuffled per epoch, prepared on a prefetch thread and placed
on the Session's device; ``NNClassifier.fit(dataset)``; the thread's errors and shutdown."""

from __future__ import annotations

import threading
import traceback

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn.host import to_numpy

Dataset = xn.data.Dataset


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "xpnn-prefetch"]


def rows(n=50, d=3):
    X = np.arange(n * d, dtype=np.float32).reshape(n, d)
    return X, np.arange(n) % 2


# ------------------------------------------------------------------------------ arrays


def test_each_epoch_covers_every_row_once_in_a_new_reproducible_order():
    X, y = rows()
    a, b = (Dataset(X, y, batch_size=8, shuffle=True, seed=3) for _ in range(2))
    epochs = [[(to_numpy(xb), yb) for xb, yb in a] for _ in range(3)]
    again = [[(to_numpy(xb), yb) for xb, yb in b] for _ in range(3)]
    firsts = []
    for epoch, other in zip(epochs, again):
        seen = np.concatenate([xb[:, 0] for xb, _ in epoch]) // 3
        assert sorted(seen.tolist()) == list(range(50))  # every row once
        for (xb, yb), (xo, yo) in zip(epoch, other, strict=True):
            np.testing.assert_array_equal(yb, yo)
            np.testing.assert_array_equal(xb, xo)  # the same seed, the same epochs
            np.testing.assert_array_equal(yb, xb[:, 0] // 3 % 2)  # rows stay paired
        firsts.append(seen.tolist())
    assert firsts[0] != firsts[1] != firsts[2]  # reshuffled every epoch
    assert [len(e) for e in epochs] == [7, 7, 7] and len(a) == 7


def test_drop_last_and_unshuffled_batches_in_order():
    X, y = rows(10)
    ds = Dataset(X, y, batch_size=4, drop_last=True)
    assert len(ds) == 2 and [yb.tolist() for _, yb in ds] == [[0, 1, 0, 1], [0, 1, 0, 1]]
    assert [xb.shape[0] for xb, _ in Dataset(X, None, batch_size=4)] == [4, 4, 2]
    assert all(yb is None for _, yb in Dataset(X, batch_size=4))


@pytest.mark.parametrize("how", ["np.load", "np.memmap"])
def test_a_memmap_gives_in_memory_batches_equal_to_the_arrays(tmp_path, how):
    X, y = rows(40)
    if how == "np.load":
        np.save(tmp_path / "X.npy", X)
        mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    else:
        mm = np.memmap(tmp_path / "X.bin", dtype=np.float32, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        mm = np.memmap(tmp_path / "X.bin", dtype=np.float32, mode="r", shape=X.shape)
    for shuffle in (False, True):
        disk = list(Dataset(mm, y, batch_size=16, shuffle=shuffle, seed=0))
        memory = list(Dataset(X, y, batch_size=16, shuffle=shuffle, seed=0))
        for (xd, yd), (xm, ym) in zip(disk, memory, strict=True):
            # read into memory on the thread: a plain array, no view of the file
            assert type(xd) is np.ndarray and not isinstance(xd.base, np.memmap)
            assert xd.base is None or not np.shares_memory(xd, mm)
            np.testing.assert_array_equal(xd, xm)
            np.testing.assert_array_equal(yd, ym)


def test_device_arrays_stay_on_their_device(dev):
    X, y = rows(20)
    Xd = dev.from_host(X)
    for xb, yb in Dataset(Xd, y, batch_size=8, shuffle=True, seed=1):
        assert dev.owns(xb) or dev.host_native
        np.testing.assert_array_equal(to_numpy(xb)[:, 0] // 3 % 2, yb)


# ------------------------------------------------------------------------------ other sources


def test_a_generator_function_gives_a_new_epoch_each_time():
    def batches():
        for i in range(3):
            yield np.full((2, 3), i, np.float32), np.array([i, i])

    ds = Dataset(batches)
    epochs = [[yb.tolist() for _, yb in ds] for _ in range(2)]
    assert epochs == [[[0, 0], [1, 1], [2, 2]]] * 2
    with pytest.raises(TypeError, match="pass steps="):
        len(ds)


def test_a_generator_runs_once_unless_steps_takes_part_of_it():
    gen = ((np.zeros((2, 1)), np.array([i, i])) for i in range(5))
    ds = Dataset(gen, steps=2)
    assert len(ds) == 2
    assert [[yb[0] for _, yb in ds] for _ in range(2)] == [[0, 1], [2, 3]]
    once = Dataset((np.zeros((2, 1)), np.zeros(2)) for _ in range(2))
    assert len(list(once)) == 2
    with pytest.raises(ValueError, match="A generator runs once: pass a function"):
        list(once)


def test_a_keras_sequence_shuffles_its_batch_order_and_hears_each_epoch_end():
    class Batches:  # keras.utils.Sequence's protocol
        ends = 0

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.full((1, 2), i), np.array([i])

        def on_epoch_end(self):
            self.ends += 1

    seq = Batches()
    ds = Dataset(seq, shuffle=True, seed=0)
    orders = [[int(yb[0]) for _, yb in ds] for _ in range(3)]
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders) and len(set(map(tuple, orders))) > 1
    assert seq.ends == 3 and len(ds) == 4
    assert [int(yb[0]) for _, yb in Dataset([(np.ones((1, 1)), np.array([7]))])] == [7]


def test_transform_runs_on_the_thread_and_prefetch_0_runs_inline():
    X, y = rows(6)
    where = []

    def scale(xb, yb):
        where.append(threading.current_thread().name)
        return xb / 255, yb

    batches = list(Dataset(X.astype(np.uint8), y, batch_size=3, transform=scale))
    assert where == ["xpnn-prefetch"] * 2 and batches[0][0].max() <= 1
    where.clear()
    list(Dataset(X, y, batch_size=3, transform=scale, prefetch=0))
    assert where == [threading.current_thread().name] * 2


# ------------------------------------------------------------------------------ the thread


def test_an_error_on_the_thread_is_raised_in_the_loop_with_its_traceback():
    def failing_batches():
        yield np.zeros((2, 1)), np.zeros(2)
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone") as info:
        for batch in Dataset(failing_batches):
            got.append(batch)
    assert len(got) == 1
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "failing_batches" in frames  # raised where the producer raised it
    assert not prefetch_threads()


def test_break_or_an_exception_in_the_loop_stops_the_thread():
    X, y = rows(1000)
    for _ in Dataset(X, y, batch_size=2, prefetch=3):
        break
    assert not prefetch_threads()
    with pytest.raises(KeyError):
        for _ in Dataset(X, y, batch_size=2):
            raise KeyError("in the step")
    assert not prefetch_threads()
    endless = Dataset(lambda: ((np.zeros((1, 1)), np.zeros(1)) for _ in iter(int, 1)))
    it = iter(endless)
    next(it)
    del it  # an iterator dropped part-way
    assert not prefetch_threads()


def test_bad_arguments_and_batches_are_named():
    X, y = rows(10)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        Dataset(X, y, batch_size=0)
    with pytest.raises(ValueError, match="prefetch must be a whole number >= 0, got -1"):
        Dataset(X, y, prefetch=-1)
    with pytest.raises(ValueError, match="len\\(X\\) = 10, len\\(y\\) = 9"):
        Dataset(X, y[:9])
    with pytest.raises(ValueError, match="batch_size, shuffle apply to arrays X, y"):
        Dataset(lambda: iter([]), batch_size=4, shuffle=True)
    with pytest.raises(TypeError, match="cannot take batches from a int"):
        Dataset(3)
    with pytest.raises(ValueError, match="batch 1 from the function is a ndarray: each batch "
                                         "must be an \\(X, y\\) pair"):
        list(Dataset(lambda: iter([(X, y), X])))
    assert not prefetch_threads()


# ------------------------------------------------------------------------------ a Session


def test_feed_batches_places_x_on_the_sessions_device_in_its_dtype(dev):
    with xn.Graph().as_default() as graph:
        x = xn.placeholder("float32", (None, 3))
    session = xn.Session(graph, device=dev)
    X, y = rows(10)
    ds = Dataset(X.astype(np.float64), y, batch_size=4)
    batches, n = xn.data.feed_batches(ds, session, (x, None))
    placed = list(batches)
    assert n == 3 and len(placed) == 3
    for i, (xb, yb) in enumerate(placed):
        if dev.host_native:
            assert type(xb) is np.ndarray
        else:
            assert dev.owns(xb)  # moved on the thread, not by the run
        assert str(xb.dtype).endswith("float32") and isinstance(yb, np.ndarray)
        np.testing.assert_array_equal(to_numpy(xb), X[4 * i:4 * i + 4])


def _blobs_model(dev):
    return xn.nn.NNClassifier([2, 8, 2], seed=0, device=dev)


def test_fit_on_a_dataset_trains_as_fit_on_the_arrays(dev):
    X, y = xn.data.make_blobs(n_per_class=40, seed=0)
    a, b = _blobs_model(dev), _blobs_model(dev)
    ha = a.fit(X, y, epochs=3, batch_size=16, shuffle=False, learning_rate=0.1, verbose=0)
    hb = b.fit(Dataset(X, y, batch_size=16), epochs=3, learning_rate=0.1, verbose=0)
    tol = tolerance("float32")
    np.testing.assert_allclose(hb["loss"], ha["loss"], **tol)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(to_numpy(lb.W), to_numpy(la.W), **tol)
    assert not prefetch_threads()


def test_fit_learns_from_a_shuffled_memmap_on_disk(dev, tmp_path):
    X, y = xn.data.make_blobs(n_per_class=100, seed=1)
    np.save(tmp_path / "X.npy", X)
    ds = Dataset(np.load(tmp_path / "X.npy", mmap_mode="r"), y, batch_size=32, shuffle=True,
                 seed=0)
    model = _blobs_model(dev)
    h = model.fit(ds, epochs=4, learning_rate=0.1, verbose=0, validation_data=(X, y))
    assert h["accuracy"][-1] > 0.95 and h["val_accuracy"][-1] > 0.95


def test_fit_refuses_y_with_a_dataset_and_names_a_bad_batch(dev):
    X, y = xn.data.make_blobs(n_per_class=20, seed=0)
    model = _blobs_model(dev)
    with pytest.raises(ValueError, match="y is not taken with a Dataset"):
        model.fit(Dataset(X, y), y)
    with pytest.raises(TypeError, match="the labels y are missing"):
        model.fit(X)
    with pytest.raises(ValueError, match="batches without labels"):
        model.fit(Dataset(X, batch_size=8), verbose=0)
    bad = y.copy()
    bad[-1] = 5
    before = to_numpy(model.layers[0].W)
    with pytest.raises(ValueError, match="label 5 is outside \\[0, 2\\)"):
        model.fit(Dataset(X, bad, batch_size=20), verbose=0)
    assert not prefetch_threads()
    # a Dataset over arrays has all its labels checked before the first step, as arrays
    np.testing.assert_array_equal(to_numpy(model.layers[0].W), before)
    with pytest.raises(ValueError, match="label 5 is outside \\[0, 2\\)"):
        model.fit(Dataset(lambda: ((X[i:i + 20], bad[i:i + 20]) for i in (0, 20))), verbose=0)
    assert not prefetch_threads()
    # batches of a function are checked as they come: the first trained, the bad one not
    assert not np.array_equal(to_numpy(model.layers[0].W), before)


def test_fit_stopped_by_a_nan_loss_leaves_no_thread(dev):
    X, y = xn.data.make_blobs(n_per_class=200, seed=0)
    X[100] = np.nan
    model = _blobs_model(dev)
    with pytest.warns(RuntimeWarning, match="fit stopped at epoch 1, batch 2"):
        h = model.fit(Dataset(X, y, batch_size=64), epochs=2, verbose=0)
    assert h.stopped and not prefetch_threads()


def test_a_second_pass_over_one_generator_stops_the_first_with_a_message():
    gen = ((np.zeros((1, 1)), np.zeros(1)) for _ in range(100))
    ds = Dataset(gen, steps=10)
    first = iter(ds)
    next(first)
    second = iter(ds)
    assert next(second)[0].shape == (1, 1)
    with pytest.raises(RuntimeError, match="a new pass over the same generator began"):
        list(first)
    del second
    assert not prefetch_threads()


def test_rows_given_without_y_are_not_taken_for_batches():
    with pytest.raises(ValueError, match="has X of type int, not an array; for rows X "
                                         "without labels pass Dataset\\(np.asarray\\(X\\)\\)"):
        list(Dataset([[1, 2], [3, 4]]))
    assert [xb.shape for xb, _ in Dataset(np.asarray([[1, 2], [3, 4]]), batch_size=1)] == \
        [(1, 2), (1, 2)]
