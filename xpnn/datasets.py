"""``Dataset``: minibatches from data that need not fit in memory, prepared ahead on a
background thread (``xn.data.Dataset``; ``NNClassifier.fit`` takes one in place of ``X, y``).

A source is arrays (in memory, a NumPy memmap, ``np.load(..., mmap_mode="r")``, anything with
``shape`` that slices into NumPy arrays), a Keras ``Sequence``-like object (``len`` and
``[i]`` give batches), an iterable or generator of ``(X, y)`` batches, or a function that
returns a new such iterable each epoch.

>>> import numpy as np
>>> ds = Dataset(np.arange(10).reshape(5, 2), np.arange(5), batch_size=2)
>>> len(ds), [yb.tolist() for _, yb in ds]
(3, [[0, 1], [2, 3], [4]])
"""

from __future__ import annotations

import itertools
import mmap
import queue
import threading

import array_api_compat
import numpy as np

from xpnn.devices import context_of
from xpnn.dtypes import dtype_name

__all__ = ["Dataset", "dataset_for_fit", "feed_batches"]


class Dataset:
    """Minibatches ``(X_batch, y_batch)`` of one epoch each time it is iterated, prepared on
    a background thread while the caller works on the ones before: handed over ``prefetch``
    at a time, at most two such groups ahead (``prefetch=0``: no thread).

    Over arrays ``X, y`` (``y`` may be None): ``batch_size`` rows (default 32, as Keras),
    the last smaller batch kept unless ``drop_last``; with ``shuffle`` each epoch takes a new
    permutation from ``np.random.default_rng(seed)``, so the same seed gives the same epochs.
    Each batch's rows are read in index order (a memmap reads forward; a mean over the batch
    does not change) and rows of a file-backed array are read on the thread, into memory.
    Arrays of another library stay in their namespace and on their device.

    Given ``X`` alone and not an array: ``len(X)`` and ``X[i]`` (a Keras ``Sequence``;
    ``shuffle`` shuffles the batches' order, ``X.on_epoch_end()`` is called after each
    epoch), an iterable of batches, or a function returning one each epoch. A generator runs
    once; ``steps`` takes that many batches per epoch from one endless generator.
    ``transform(X_batch, y_batch)`` returns the batch to use, run on the thread.

    An error on the thread is raised in the caller with its own traceback; a loop left by
    ``break`` or an exception stops the thread at once.

    >>> ds = Dataset(np.zeros((100, 3), np.float32), np.arange(100), batch_size=32,
    ...              shuffle=True, seed=0, drop_last=True)
    >>> len(ds), [xb.shape for xb, _ in ds]
    (3, [(32, 3), (32, 3), (32, 3)])
    >>> gen = ((np.ones((4, 3)), np.zeros(4)) for _ in range(5))
    >>> [xb.shape[0] for xb, _ in Dataset(gen, steps=2)]
    [4, 4]
    """

    def __init__(self, X, y=None, batch_size=None, shuffle=False, seed=None,
                 drop_last=False, prefetch=2, steps=None, transform=None):
        self.prefetch = _count_arg("prefetch", prefetch, 0)
        self.steps = None if steps is None else _count_arg("steps", steps, 1)
        self.shuffle, self.drop_last, self.transform = bool(shuffle), bool(drop_last), transform
        self.kind = _kind(X, y)
        self.X, self.y = X, y
        if self.kind == "arrays":
            self.X, self.y = _array(X, "X"), _array(y, "y")
            self.n = _rows(self.X)
            if self.y is not None and _rows(self.y) != self.n:
                raise ValueError(f"Dataset: X and y differ in length: len(X) = {self.n}, "
                                 f"len(y) = {_rows(self.y)}")
            self.batch_size = _count_arg("batch_size", 32 if batch_size is None else
                                         batch_size, 1)
        else:
            _refuse_array_options(self.kind, batch_size, drop_last, shuffle)
            self.batch_size = None
        self._rng = np.random.default_rng(seed)
        self._active = None  # the epoch whose thread runs now: one at a time

    def __repr__(self) -> str:
        if self.kind == "arrays":
            return (f"Dataset({self.n} rows, batch_size={self.batch_size}, "
                    f"shuffle={self.shuffle}, prefetch={self.prefetch})")
        return f"Dataset({self.kind} of batches, prefetch={self.prefetch})"

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.steps is not None:
            return self.steps
        if self.kind == "arrays":
            full, rest = divmod(self.n, self.batch_size)
            return full + (1 if rest and not self.drop_last else 0)
        if self.kind == "sequence":
            return len(self.X)
        raise TypeError("Dataset: the number of batches of a generator or iterable is not "
                        "known; pass steps= (batches per epoch)")

    def __iter__(self):
        return self.batches()

    def batches(self, place=None):
        """One epoch's batches; ``place(batch)`` (a tuple), run on the thread, gives what is
        yielded: ``feed_batches`` puts each array on a Session's device there."""
        if self._active is not None and self.kind == "generator":
            self._active.close()  # one generator cannot be read by two threads
        source = self._epoch()
        if place is not None:
            source = map(place, source)
        if self.prefetch == 0:
            return self._inline(source)
        return self._prefetched(_Prefetcher(source, self.prefetch))

    def _inline(self, source):
        yield from source
        self._epoch_end()

    def _prefetched(self, prefetcher):
        # A generator, so that a loop left early (break, exception) closes it, and with it
        # the thread; the thread starts at the first batch asked for, not before.
        self._active = prefetcher
        try:
            prefetcher.start()
            yield from prefetcher
        finally:
            prefetcher.close()
            if self._active is prefetcher:
                self._active = None
        self._epoch_end()

    def _epoch_end(self):
        if self.kind == "sequence" and hasattr(self.X, "on_epoch_end"):
            self.X.on_epoch_end()

    def _epoch(self):
        """A generator of this epoch's (X, y) batches; the shuffle is drawn now."""
        if self.kind == "arrays":
            order = self._rng.permutation(self.n) if self.shuffle else None
            batches = _array_batches(self.X, self.y, self.n, self.batch_size, order,
                                     self.drop_last)
        elif self.kind == "sequence":
            n = len(self.X)
            order = self._rng.permutation(n) if self.shuffle else range(n)
            batches = (self.X[int(i)] for i in order)
        else:
            batches = self.X() if self.kind == "function" else self.X
            batches = _one_epoch(iter(batches), self.kind)
        if self.steps is not None:
            batches = itertools.islice(batches, self.steps)
        if self.kind == "arrays" and self.transform is None:
            return batches  # pairs of arrays made here: nothing to check
        return _checked(batches, self.transform, self.kind)


def _count_arg(name, value, least) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"Dataset: {name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def _kind(X, y) -> str:
    """What ``X`` is: "arrays", "sequence", "function" or "iterable" (of batches)."""
    if y is not None or hasattr(X, "shape") or array_api_compat.is_array_api_obj(X):
        return "arrays"
    if hasattr(X, "__len__") and hasattr(X, "__getitem__"):
        return "sequence"
    if callable(X):
        return "function"
    if hasattr(X, "__iter__"):
        return "generator" if iter(X) is X else "iterable"
    raise TypeError(f"Dataset: cannot take batches from a {type(X).__name__}: give arrays "
                    "X, y (a memmap too), an object with len() and [i] giving (X, y) "
                    "batches, an iterable or generator of them, or a function returning one")


def _refuse_array_options(kind, batch_size, drop_last, shuffle) -> None:
    """A source of ready batches has no rows to batch, and a stream has no order to shuffle."""
    given = [n for n, v in (("batch_size", batch_size is not None), ("drop_last", drop_last),
                            ("shuffle", shuffle and kind != "sequence")) if v]
    if given:
        raise ValueError(f"Dataset: {', '.join(given)} apply to arrays X, y; this {kind} "
                         f"gives ready batches, in its own order: leave them out")


def _array(a, name):
    if a is None or hasattr(a, "shape"):
        return a
    if isinstance(a, (list, tuple)):
        return np.asarray(a)
    raise TypeError(f"Dataset: {name} must be an array (or a memmap), got {type(a).__name__}")


def _rows(a) -> int:
    shape = tuple(a.shape)
    if not shape:
        raise ValueError("Dataset: arrays need at least one axis (the rows), got a scalar")
    return int(shape[0])


def _array_batches(X, y, n, batch_size, order, drop_last):
    take_X, take_y = _taker(X), _taker(y)
    stop = n - n % batch_size if drop_last else n
    if order is not None:  # each batch's rows sorted, all full batches in one call
        full = n - n % batch_size
        order = np.concatenate([np.sort(order[:full].reshape(-1, batch_size), axis=1).ravel(),
                                np.sort(order[full:])])
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        rows = slice(start, end) if order is None else order[start:end]
        yield take_X(rows), take_y(rows)


def _taker(a):
    """A function (a slice, or sorted row numbers) -> those rows of ``a``, in memory."""
    if a is None:
        return lambda rows: None
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        xp, device = array_api_compat.array_namespace(a), array_api_compat.device(a)

        def take(rows):
            if isinstance(rows, slice):
                return a[rows, ...]
            with context_of(a):  # CuPy makes the index on the current GPU: make it a's
                return xp.take(a, xp.asarray(rows, device=device), axis=0)

        return take
    on_disk = _on_disk(a)

    def take(rows):
        if isinstance(rows, slice):
            # A slice of a memmap still reads the file when used: read it here, on the thread.
            return np.array(a[rows]) if on_disk else np.asarray(a[rows])
        if isinstance(a, np.ndarray):
            return np.take(np.asarray(a), rows, axis=0)  # faster than a[rows]
        return np.asarray(a[rows])  # HDF5 and zarr datasets read sorted rows

    return take


def _on_disk(a) -> bool:
    """Whether ``a`` is a NumPy array over a memory-mapped file (or a view of one)."""
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap):
            return True
        a = a.base
    return isinstance(a, mmap.mmap)


def _one_epoch(batches, kind):
    """The batches of an iterable; none at all (a generator already run) is an error."""
    empty = True
    for batch in batches:
        empty = False
        yield batch
    if empty:
        hint = (" A generator runs once: pass a function that returns a new one "
                "(Dataset(make_batches)), or steps= to take that many batches per epoch "
                "from one endless generator" if kind == "generator" else "")
        raise ValueError(f"Dataset: the {kind} gave no batches this epoch.{hint}")


def _checked(batches, transform, kind):
    for i, batch in enumerate(batches):
        if transform is not None:
            batch = transform(*batch)
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            what = (f"a {type(batch).__name__}" if not isinstance(batch, (tuple, list))
                    else f"a {type(batch).__name__} of {len(batch)}")
            raise ValueError(f"Dataset: batch {i} from the {kind} is {what}: each batch "
                             f"must be an (X, y) pair (y may be None)")
        batch = tuple(np.asarray(a) if isinstance(a, (list, tuple)) else a for a in batch)
        if not hasattr(batch[0], "shape"):
            raise ValueError(f"Dataset: batch {i} from the {kind} has X of type "
                             f"{type(batch[0]).__name__}, not an array; for rows X without "
                             f"labels pass Dataset(np.asarray(X))")
        yield batch


# --------------------------------------------------------------------------------------------
# the background thread


class _Failure:
    def __init__(self, error):
        self.error = error


_END = object()


class _Prefetcher:
    """Runs an iterator on a thread, handing its items over in groups of ``depth``: the
    thread works on the next group while the consumer takes the current one (so at most
    two groups ahead)."""

    def __init__(self, items, depth):
        self._items, self._queue, self._depth = items, queue.Queue(maxsize=1), depth
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="xpnn-prefetch",
                                        daemon=True)

    def start(self):
        self._thread.start()

    def _produce(self):
        # Handed over ``depth`` at a time: one wake-up of each thread (and one GIL hand-over)
        # per group, not per batch.
        group = []
        try:
            for item in self._items:
                group.append(item)
                if len(group) == self._depth:
                    if not self._put(group):
                        return
                    group = []
            if group and not self._put(group):
                return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, raised there
            if not group or self._put(group):  # the batches before the error come first
                self._put(_Failure(exc))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)  # woken by a get; the timeout sees a stop
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self):
        while True:
            try:
                item = self._queue.get(timeout=0.1)  # woken by a put; the timeout sees a stop
            except queue.Empty:
                if self._stop.is_set():
                    raise RuntimeError("Dataset: these batches were stopped: a new pass over "
                                       "the same generator began before this one ended") from None
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                error, item = item.error, None
                raise error  # its __traceback__ still holds the thread's frames
            yield from item

    def close(self):
        """Stop the thread (after the item it is preparing) and wait for it."""
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()  # frees a put the thread is blocked in
        except queue.Empty:
            pass
        if self._thread.is_alive():
            self._thread.join()
        self._items = None


# --------------------------------------------------------------------------------------------
# feeding a Session


def feed_batches(dataset: Dataset, session, placeholders, check=None):
    """One epoch of ``dataset`` for a training loop: an iterator of batches, each passed
    through ``check(X_batch, y_batch)`` (which returns the tuple to use) and then each
    array moved to ``session``'s device in the dtype its placeholder (the same position in
    ``placeholders``) runs in, both on the prefetch thread (NumPy: no copy); one whose
    placeholder is None stays as it is. Also returns the number of batches, None where it
    is not known. Close the iterator (``contextlib.closing``) to stop the thread at once.

    >>> import xpnn as xn
    >>> with xn.Graph().as_default():
    ...     x = xn.placeholder("float32", (None, 2))
    >>> batches, n = feed_batches(Dataset(np.ones((3, 2)), np.zeros(3), batch_size=2),
    ...                           xn.Session(x.graph), (x, None))
    >>> n, [(xb.dtype.name, yb.dtype.name) for xb, yb in batches]
    (2, [('float32', 'float64'), ('float32', 'float64')])
    """
    device, session_dtype = session.device, session.dtype
    dtypes = {}  # (position, the batch's dtype) -> the dtype it runs in: resolved once

    def place(batch):
        if check is not None:
            batch = check(*batch)
        return tuple(_place(device, value, p, session_dtype, dtypes, i)
                     for i, (value, p) in enumerate(zip(batch, placeholders)))

    try:
        n = len(dataset)
    except TypeError:
        n = None
    return dataset.batches(place), n


def _place(device, value, placeholder, session_dtype, dtypes, position):
    if placeholder is None or value is None or not isinstance(value, np.ndarray):
        return value  # a device array, or one to keep on the host: the Session checks it
    if value.dtype.kind not in "fiub":
        return value  # the Session says what is wrong with it
    dtype = dtypes.get((position, value.dtype))
    if dtype is None:
        dtype = dtypes[position, value.dtype] = placeholder.run_dtype(
            dtype_name(value.dtype), session_dtype)
    if device.host_native:
        return value.astype(dtype, copy=False)
    if device.context is None:
        return device.from_host(value, dtype)
    with device.context:  # a new thread's current GPU is the first one
        return device.from_host(value, dtype)


def dataset_for_fit(X, y, comm=None) -> Dataset | None:
    """``X`` when ``fit`` was given a Dataset (which then holds the labels), else None."""
    if not isinstance(X, Dataset):
        if y is None:
            raise TypeError("fit: the labels y are missing: call fit(X, y), or fit(dataset) "
                            "with an xn.data.Dataset of (X, y) batches")
        return None
    if y is not None:
        raise ValueError("fit: y is not taken with a Dataset, which gives (X, y) batches "
                         "itself: call fit(dataset)")  # Keras: ValueError for a Sequence
    if comm is not None:
        raise ValueError("fit: a Dataset is not sharded across ranks; with comm= pass "
                         "arrays X, y (every rank the same)")
    return X
