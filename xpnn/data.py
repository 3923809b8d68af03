"""Data: one-hot labels, minibatches, toy data sets and MNIST (IDX files, checksummed download).

Everything here runs on the host with NumPy except where an input array lives on a device:
``one_hot`` and ``batches`` then answer in that array's namespace and on its device.

>>> X, y = make_blobs(n_per_class=3)
>>> X.shape, X.dtype.name, y.tolist()
((6, 2), 'float32', [0, 0, 0, 1, 1, 1])
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import time
import urllib.request
import zlib
from pathlib import Path

import array_api_compat
import numpy as np

from xpnn.datasets import Dataset, dataset_for_fit, feed_batches
from xpnn.devices import context_of
from xpnn.dtypes import dtype_name
from xpnn.host import to_numpy
from xpnn.io import open_regular, write_atomic

__all__ = [
    "Dataset",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "MAX_IDX_NBYTES",
    "MNIST_NBYTES",
    "MNISTNotFoundError",
    "batches",
    "dataset_for_fit",
    "feed_batches",
    "load_mnist",
    "make_blobs",
    "make_moons",
    "mnist_folder",
    "one_hot",
    "read_idx",
    "write_idx",
]


def _is_device_array(a) -> bool:
    """An array of some array-API namespace other than plain NumPy (keep it where it is)."""
    return not isinstance(a, np.ndarray) and array_api_compat.is_array_api_obj(a)


def _as_host(a) -> np.ndarray:
    return to_numpy(a) if array_api_compat.is_array_api_obj(a) else np.asarray(a)


def _n_rows(a) -> int:
    # array-api-strict has no len(); shape[0] works everywhere.
    shape = getattr(a, "shape", None)
    if not shape:
        raise ValueError(f"expected an array with at least one axis, got shape {shape}")
    return int(shape[0])


# --------------------------------------------------------------------------------------------
# one-hot and minibatches


def one_hot(labels, n_classes: int, dtype="float32"):
    """Encode integer class labels ``(n,)`` as rows of an ``(n, n_classes)`` indicator matrix.

    ``labels`` may be a list, a NumPy array or an array of any array-API namespace; the result
    is in that namespace and on that array's device.

    >>> one_hot([2, 0], 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"n_classes must be an integer >= 1, got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if isinstance(labels, (list, tuple)) and len(labels) == 0:
        labels = np.zeros(0, dtype=np.int64)

    # Validate on the host: out-of-range indices fail silently on some backends.
    host = _as_host(labels)
    if host.ndim != 1:
        raise ValueError(f"labels must be 1-D (n,), got shape {host.shape}")
    if not np.issubdtype(host.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {host.dtype}")
    bad = host[(host < 0) | (host >= n_classes)]
    if bad.size:
        raise ValueError(
            f"label {bad[0]} is outside the valid range [0, {n_classes}) for n_classes={n_classes}"
        )

    if not _is_device_array(labels):
        return (host[:, None] == np.arange(n_classes, dtype=host.dtype)).astype(dtype_name(dtype))
    xp = array_api_compat.array_namespace(labels)
    device = array_api_compat.device(labels)
    with context_of(labels):  # CuPy makes arange on the current GPU, not labels' one
        classes = xp.arange(n_classes, dtype=labels.dtype, device=device)
        return xp.astype(labels[:, None] == classes[None, :], getattr(xp, dtype_name(dtype)))


def batches(X, y, batch_size: int, shuffle: bool = True, seed=None, drop_last: bool = False):
    """Yield ``(X_batch, y_batch)`` minibatches covering every sample exactly once.

    With ``shuffle`` one permutation is drawn per call from ``np.random.default_rng(seed)``
    (``seed`` may also be a ``numpy.random.Generator``) and only each batch's rows are gathered;
    without it the batches are slices (views). The last, smaller batch is kept unless
    ``drop_last``. ``y`` may be ``None``: the pairs are then ``(X_batch, None)``. Arrays of any
    array-API namespace stay in their namespace and on their device.

    >>> X = np.arange(10).reshape(5, 2)
    >>> [yb.tolist() for _, yb in batches(X, np.arange(5), 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    if isinstance(X, (list, tuple)):
        X = np.asarray(X)
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    n = _n_rows(X)
    if y is not None and _n_rows(y) != n:
        raise ValueError(f"X and y differ in length: len(X) = {n}, len(y) = {_n_rows(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # Not a generator itself, so that bad arguments raise here rather than at the first next().
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    return _batches(X, y, n, int(batch_size), order, drop_last)


def _batches(X, y, n, batch_size, order, drop_last):
    take_X, take_y = _row_taker(X, order), _row_taker(y, order)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        yield take_X(start, end), take_y(start, end)


def _row_taker(a, order):
    """A function (start, end) -> rows start:end of ``a`` (in ``order`` when shuffling)."""
    if a is None:
        return lambda start, end: None
    if order is None:
        return lambda start, end: a[start:end, ...]
    xp = array_api_compat.array_namespace(a)
    # The permutation moves to a's device once per epoch; each batch slices it. CuPy runs
    # both on the current GPU, whatever a's: make a's current (cuda:1 next to cuda:0).
    context = context_of(a)
    with context:
        index = xp.asarray(order, device=array_api_compat.device(a))

    def take(start, end):
        with context:
            return xp.take(a, index[start:end], axis=0)

    return take


# --------------------------------------------------------------------------------------------
# toy data sets


def make_blobs(
    n_per_class: int = 50, seed=0, centers=((-2.0, -2.0), (2.0, 2.0)), std=1.0, dtype="float32"
):
    """Gaussian clouds, ``n_per_class`` points each: red (label 0) around ``(-2, -2)`` and blue
    (label 1) around ``(2, 2)``, unit std by default. Returns ``X (k*n, d)`` and ``y`` int64.

    ``centers`` gives one row per class; ``std`` is one number or one per class.

    >>> X, y = make_blobs(n_per_class=100, std=0.0)
    >>> X[0].tolist(), X[-1].tolist(), y.shape
    ([-2.0, -2.0], [2.0, 2.0], (200,))
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2:
        raise ValueError(f"centers must be 2-D (n_classes, n_features), got shape {centers.shape}")
    k, d = centers.shape
    stds = np.broadcast_to(np.asarray(std, dtype=np.float64), (k,))
    rng = np.random.default_rng(seed)
    clouds = [c + s * rng.standard_normal((n_per_class, d)) for c, s in zip(centers, stds)]
    X = np.concatenate(clouds).astype(dtype_name(dtype))
    y = np.repeat(np.arange(k, dtype=np.int64), n_per_class)
    return X, y


def make_moons(n_samples: int = 100, noise=0.1, seed=0, dtype="float32", shuffle: bool = True):
    """Two interleaving half circles, as scikit-learn's ``make_moons`` defines them.

    Label 0: ``(cos t, sin t)``; label 1: ``(1 - cos t, 1 - sin t - 0.5)``, ``t`` evenly spaced
    in ``[0, pi]``; the first ``n_samples // 2`` points are label 0. Points are shuffled, then
    Gaussian noise of std ``noise`` is added. Returns ``X (n, 2)`` and ``y`` int64.

    >>> X, y = make_moons(6, noise=0.0, shuffle=False)
    >>> np.round(X[:3], 3).tolist(), y.tolist()
    ([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], [0, 0, 0, 1, 1, 1])
    """
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1.0 - np.cos(t_in), 1.0 - np.sin(t_in) - 0.5], axis=1)
    X = np.concatenate([outer, inner])
    y = np.concatenate([np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)])
    rng = np.random.default_rng(seed)
    if shuffle:
        order = rng.permutation(n_samples)
        X, y = X[order], y[order]
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X.astype(dtype_name(dtype)), y


# --------------------------------------------------------------------------------------------
# IDX files (the MNIST format): big-endian header, then raw unsigned bytes

_IDX_UBYTE = 0x08


def read_idx(path) -> np.ndarray:
    """Read an unsigned-byte IDX file (raw or ``.gz``) into a uint8 array of the header's shape.

    Strict: the magic number must be 2049 (1-D) or 2051 (3-D), and the data length must equal
    the product of the header's dimensions; otherwise ``ValueError`` names the file and sizes.
    A ``.gz`` file is decompressed only as far as its header's size (and ``MAX_IDX_NBYTES``),
    so a small file that expands to gigabytes fails at once, in bounded memory.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> write_idx(path, np.array([7, 2, 1], dtype=np.uint8)); read_idx(path).tolist()
    [7, 2, 1]
    """
    return _parse_idx(_read_bytes(path), str(path))


# No IDX file is decompressed past this many bytes (the largest, EMNIST by_class, is 0.55 GB);
# raise it to read bigger ones. Downloads of the official files stop at their official size.
MAX_IDX_NBYTES = 1 << 30
_CHUNK = 1 << 20


def _read_bytes(path) -> bytearray | bytes:
    """The file's bytes, gunzipped when it ends in .gz; a raw file is read only once its size
    matches its header's (a FIFO or device, never)."""
    path = Path(path)
    with open_regular(path, lambda why: ValueError(f"{path}: cannot read IDX data: {why}")) as f:
        if path.suffix == ".gz":
            try:
                return _gunzip(f, str(path))
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{path}: not a valid gzip file ({exc})") from exc
        shape, header = _idx_shape(f.read(16), str(path))
        _check_idx_size(shape, os.fstat(f.fileno()).st_size - header, str(path))
        f.seek(0)
        return f.read()


def _gunzip(fileobj, name: str, limit: int | None = None) -> bytearray:
    """Decompress IDX data from a gzip stream a chunk at a time, never past the size its IDX
    header declares, ``limit`` or ``MAX_IDX_NBYTES``: a gzip bomb fails after that much."""
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as gz:
        out = bytearray(gz.read(16))  # the longest header: magic + 3 dims
        shape, header = _idx_shape(out, name)
        cap, why = header + math.prod(shape), "the size its IDX header declares"
        for bound, reason in ((limit, "the size of the official file"),
                              (MAX_IDX_NBYTES, "xpnn.data.MAX_IDX_NBYTES")):
            if bound is not None and bound <= cap:
                cap, why = bound, reason
        while len(out) <= cap and (chunk := gz.read(min(_CHUNK, cap + 1 - len(out)))):
            out += chunk
    if len(out) > cap:
        raise ValueError(
            f"{name}: decompresses to more than {cap} bytes, {why}; refused without reading "
            f"further (a corrupt file, or a small file that expands hugely: a gzip bomb)"
        )
    return out


def _idx_shape(raw, name: str) -> tuple[tuple[int, ...], int]:
    """(shape, header length) from the start of IDX data."""
    if len(raw) < 4:
        raise ValueError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    if raw[:2] == b"\x1f\x8b":  # gzip's magic: a .gz file saved under another name
        raise ValueError(f"{name}: the data is gzip-compressed, not raw IDX: name the file "
                         f"with a .gz suffix (or decompress it) and read it again")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (2049, 2051):
        raise ValueError(
            f"{name}: bad IDX magic number {magic}, expected 2049 (labels) or 2051 (images)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated header, expected {header} bytes, found {len(raw)}")
    return tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)), header


def _check_idx_size(shape, actual: int, name: str) -> None:
    expected = math.prod(shape)  # Python ints: three 32-bit dims overflow int64
    if actual != expected:
        dims = "x".join(map(str, shape))
        raise ValueError(
            f"{name}: header says {dims} = {expected} bytes of data, found {actual} "
            f"(file truncated or corrupt)"
        )


def _parse_idx(raw, name: str) -> np.ndarray:
    shape, header = _idx_shape(raw, name)
    _check_idx_size(shape, len(raw) - header, name)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path, array) -> None:
    """Write a uint8 array (1-D or 3-D) as an IDX file, gzip-compressed if ``path`` ends in .gz.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte")
    >>> write_idx(path, np.zeros((2, 3, 3), np.uint8)); os.path.getsize(path)
    34
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(
            f"write_idx takes a 1-D or 3-D uint8 array, got {array.dtype} with shape {array.shape}"
        )
    header = bytes([0, 0, _IDX_UBYTE, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


# --------------------------------------------------------------------------------------------
# MNIST

# MD5 of the uncompressed official files (tests monkeypatch this table).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Sizes of the uncompressed official files: local files are MD5-checked only at these sizes,
# and a verified download is not decompressed past them.
MNIST_NBYTES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is neither on disk nor downloadable; the message lists where it looked."""


def mnist_folder(root=None) -> Path:
    """The folder MNIST is read from (and downloaded to): ``root``, else ``$XPNN_DATA/mnist``,
    else ``$XDG_CACHE_HOME/xpnn/mnist`` (default ``~/.cache/xpnn/mnist``).

    >>> str(mnist_folder("/data/mnist"))
    '/data/mnist'
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("XPNN_DATA"):
        return Path(os.environ["XPNN_DATA"]).expanduser() / "mnist"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "xpnn" / "mnist"


def load_mnist(
    root=None, download: bool = True, mirrors=None, timeout: float = 120, verify: bool = True
):
    """Load MNIST as ``(X_train, y_train), (X_test, y_test)``: X float32 in [0, 1] with shape
    ``(n, 784)``, y int64.

    The four IDX files (raw or ``.gz``) are read from :func:`mnist_folder`. Missing files are
    downloaded (when ``download``) from each of ``mirrors`` in turn, checked, and written
    atomically into that folder; a failed or corrupt download leaves nothing behind. Each
    file's download from one mirror gets ``timeout`` seconds in all, connecting included: a
    server that stalls or trickles fails there (within one more network wait, itself at most
    ``timeout``) and the next mirror is tried. With ``verify``, downloads must match the
    official MD5s (``MNIST_MD5``) and so must local files of the official size (smaller
    files, such as test fixtures, are only parsed strictly).
    Pass ``verify=False`` for other data in the same format (e.g. Fashion-MNIST mirrors).
    Downloads are decompressed in chunks and refused as soon as they outgrow the official
    size (``MNIST_NBYTES``; without ``verify``, the size their IDX header declares, at most
    ``MAX_IDX_NBYTES``), so a tiny file that expands to gigabytes costs neither.

    >>> (X, y), (Xt, yt) = load_mnist()  # doctest: +SKIP
    >>> X.shape, X.dtype.name, y[:5].tolist()  # doctest: +SKIP
    ((60000, 784), 'float32', [5, 0, 4, 1, 9])
    """
    folder = mnist_folder(root)
    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    mirrors = [mirrors] if isinstance(mirrors, str) else list(mirrors)

    arrays = {}
    for name in MNIST_MD5:
        path = _find_local(folder, name)
        if path is None:
            if not download:
                raise _not_found(folder, name, [], download=False)
            path = _download(folder, name, mirrors, timeout, verify)
        raw = _read_bytes(path)
        if verify:
            _check_local(raw, path, name)
        arrays[name] = _parse_idx(raw, str(path))

    def split(prefix):
        images = arrays[f"{prefix}-images-idx3-ubyte"]
        labels = arrays[f"{prefix}-labels-idx1-ubyte"]
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(
                f"{folder}: {prefix} images must be 3-D and labels 1-D, got shapes "
                f"{images.shape} and {labels.shape}"
            )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{folder}: {prefix} has {images.shape[0]} images but {labels.shape[0]} labels"
            )
        # One pass, uint8 -> float32 inside the ufunc: several times faster than astype + /=.
        X = np.divide(images.reshape(images.shape[0], -1), np.float32(255), dtype=np.float32)
        return X, labels.astype(np.int64)

    return split("train"), split("t10k")


def _find_local(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _md5(raw) -> str:
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def _check_local(raw, path: Path, name: str) -> None:
    if len(raw) == MNIST_NBYTES.get(name) and _md5(raw) != MNIST_MD5[name]:
        raise ValueError(
            f"{path}: MD5 {_md5(raw)} does not match the official {MNIST_MD5[name]}; "
            f"delete the file to download it again, or pass verify=False"
        )


# URLError and timeouts are OSErrors; a cut-off body raises IncompleteRead or EOFError.
_DOWNLOAD_ERRORS = (OSError, EOFError, ValueError, zlib.error, http.client.HTTPException)


class _Deadline:
    """A download's body whose reads raise ``TimeoutError`` once ``deadline`` (a
    ``time.monotonic()``) has passed: the socket timeout bounds each wait, not a server that
    trickles a byte at a time. A read gathers what each network wait brings (``read1``)
    and checks the deadline between them."""

    def __init__(self, response, deadline: float, timeout: float):
        self.response, self.deadline, self.timeout = response, deadline, timeout

    def read(self, size: int = -1) -> bytes:
        read1 = getattr(self.response, "read1", self.response.read)
        parts, got = [], 0
        # Full reads, as from a file: gzip takes a short read of its header for a broken file.
        while size is None or size < 0 or got < size:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"the download took longer than timeout={self.timeout} "
                                   f"seconds")
            chunk = read1(_CHUNK if size is None or size < 0 else min(_CHUNK, size - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


def _download(folder: Path, name: str, mirrors, timeout, verify) -> Path:
    """Fetch ``name``.gz from the first mirror that serves a valid copy; write it atomically."""
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name + ".gz"
        try:
            deadline = time.monotonic() + timeout
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = _Deadline(response, deadline, timeout)
                raw = _gunzip(body, url, MNIST_NBYTES.get(name) if verify else None)
            if verify and _md5(raw) != MNIST_MD5[name]:
                raise ValueError(f"MD5 mismatch: got {_md5(raw)}, expected {MNIST_MD5[name]}")
            _parse_idx(raw, url)
        except _DOWNLOAD_ERRORS as exc:  # network, truncation or checksum: try the next mirror
            errors.append((url, f"{type(exc).__name__}: {exc}"))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        write_atomic(target, lambda f, raw=raw: f.write(raw))
        return target
    raise _not_found(folder, name, errors, download=True)


def _not_found(folder: Path, name: str, errors, download: bool) -> MNISTNotFoundError:
    looked = "\n".join(f"  {folder / n}[.gz]" for n in MNIST_MD5 if _find_local(folder, n) is None)
    if download:
        tried = "\n".join(f"  {url}: {err}" for url, err in errors) or "  (no mirrors given)"
        tried = f"Download of {name}.gz failed from every mirror:\n{tried}\n"
    else:
        tried = "download=False, so no mirror was tried.\n"
    return MNISTNotFoundError(
        f"MNIST files not found. Looked for:\n{looked}\n{tried}"
        f"Put the four IDX files (raw or .gz) in a folder and pass load_mnist(root='/that/folder'),"
        f" or set $XPNN_DATA so that they are in $XPNN_DATA/mnist."
    )
