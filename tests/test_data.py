"""Tests for xpnn.data: one_hot and batches on every backend, toy data, IDX files, MNIST.

MNIST tests never touch the network or the real files: they write tiny IDX files and serve
them from a local HTTP server (or file:// URLs) with the checksum table monkeypatched.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from io import BytesIO

import numpy as np
import pytest

from tests.conftest import peak_memory_of_failure
from xpnn import data
from xpnn.host import to_numpy

# --------------------------------------------------------------------------------------------
# one_hot


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_one_hot_matches_eye_on_device(dev, dtype):
    labels = np.array([2, 0, 1, 2, 3], dtype=np.int64)
    out = data.one_hot(dev.from_host(labels), 4, dtype=dtype)
    assert dev.owns(out)
    assert out.dtype == dev.dtype(dtype)
    assert out.shape == (5, 4)
    np.testing.assert_array_equal(to_numpy(out), np.eye(4, dtype=dtype)[labels])


@pytest.mark.parametrize("int_dtype", ["int32", "int64", "uint8"])
def test_one_hot_any_integer_dtype(dev, int_dtype):
    labels = np.array([1, 0, 1], dtype=int_dtype)
    out = data.one_hot(dev.from_host(labels), 2)
    np.testing.assert_array_equal(to_numpy(out), [[0, 1], [1, 0], [0, 1]])


def test_one_hot_from_list_and_numpy():
    np.testing.assert_array_equal(data.one_hot([0, 2], 3), [[1, 0, 0], [0, 0, 1]])
    out = data.one_hot(np.array([1]), 2, dtype="float64")
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert data.one_hot([], 3).shape == (0, 3)


@pytest.mark.parametrize("bad", [[0, 3], [-1, 0]])
def test_one_hot_rejects_out_of_range(dev, bad):
    value = 3 if 3 in bad else -1
    with pytest.raises(ValueError, match=rf"label {value} is outside the valid range \[0, 3\)"):
        data.one_hot(dev.from_host(np.array(bad, dtype=np.int64)), 3)


def test_one_hot_rejects_float_labels(dev):
    with pytest.raises(ValueError, match="integer dtype, got float32"):
        data.one_hot(dev.from_host(np.array([0.0, 1.0], dtype=np.float32)), 2)


def test_one_hot_rejects_rank(dev):
    with pytest.raises(ValueError, match=r"1-D \(n,\), got shape \(2, 1\)"):
        data.one_hot(dev.from_host(np.zeros((2, 1), dtype=np.int64)), 2)


def test_one_hot_rejects_bad_n_classes():
    with pytest.raises(ValueError, match="n_classes must be >= 1, got 0"):
        data.one_hot([0], 0)
    with pytest.raises(TypeError, match="n_classes must be an integer"):
        data.one_hot([0], 2.0)


# --------------------------------------------------------------------------------------------
# batches


def _dataset(dev, n=10):
    # Row i of X is [2i, 2i+1] and y[i] = i, so every batch can be checked row by row.
    X = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64)
    return dev.from_host(X), dev.from_host(y)


def _collect(dev, it):
    out = []
    for Xb, yb in it:
        assert dev.owns(Xb) and dev.owns(yb)
        Xh, yh = to_numpy(Xb), to_numpy(yb)
        np.testing.assert_array_equal(Xh, np.stack([2 * yh, 2 * yh + 1], axis=1))
        out.append(yh)
    return out


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_sample_once(dev, shuffle):
    X, y = _dataset(dev)
    got = _collect(dev, data.batches(X, y, 4, shuffle=shuffle, seed=1))
    assert [len(b) for b in got] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(got)), np.arange(10))
    if not shuffle:
        np.testing.assert_array_equal(np.concatenate(got), np.arange(10))


def test_batches_drop_last(dev):
    X, y = _dataset(dev)
    got = _collect(dev, data.batches(X, y, 4, seed=0, drop_last=True))
    assert [len(b) for b in got] == [4, 4]
    assert len(set(np.concatenate(got).tolist())) == 8
    # An exact multiple loses nothing.
    assert [len(b) for b in _collect(dev, data.batches(X, y, 5, drop_last=True))] == [5, 5]


def test_batches_seed_is_deterministic_and_shuffles(dev):
    X, y = _dataset(dev, n=50)

    def order(seed):
        return np.concatenate(_collect(dev, data.batches(X, y, 7, seed=seed)))

    np.testing.assert_array_equal(order(3), order(3))
    np.testing.assert_array_equal(order(3), np.random.default_rng(3).permutation(50))
    assert not np.array_equal(order(3), order(4))
    assert not np.array_equal(order(3), np.arange(50))


def test_batches_accepts_generator_and_draws_new_order_per_call(dev):
    X, y = _dataset(dev, n=30)
    rng = np.random.default_rng(0)
    first = np.concatenate(_collect(dev, data.batches(X, y, 8, seed=rng)))
    second = np.concatenate(_collect(dev, data.batches(X, y, 8, seed=rng)))
    expected = np.random.default_rng(0)
    np.testing.assert_array_equal(first, expected.permutation(30))
    np.testing.assert_array_equal(second, expected.permutation(30))


def test_batches_without_shuffle_yields_views():
    X = np.arange(12.0).reshape(6, 2)
    y = np.arange(6)
    for Xb, yb in data.batches(X, y, 4, shuffle=False):
        assert np.shares_memory(Xb, X) and np.shares_memory(yb, y)


def test_batches_y_none(dev):
    X, _ = _dataset(dev)
    got = list(data.batches(X, None, 3, shuffle=False))
    assert [yb for _, yb in got] == [None] * 4
    np.testing.assert_array_equal(np.concatenate([to_numpy(Xb) for Xb, _ in got]), to_numpy(X))


def test_batches_batch_larger_than_data(dev):
    X, y = _dataset(dev, n=3)
    assert [len(b) for b in _collect(dev, data.batches(X, y, 10))] == [3]
    assert list(data.batches(X, y, 10, drop_last=True)) == []


def test_batches_errors_at_call_time(dev):
    X, y = _dataset(dev)
    with pytest.raises(ValueError, match=r"len\(X\) = 10, len\(y\) = 9"):
        data.batches(X, dev.from_host(np.arange(9)), 2)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        data.batches(X, y, 0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        data.batches(X, y, 2.5)


# --------------------------------------------------------------------------------------------
# toy data sets


def test_make_blobs_shapes_labels_and_centres():
    X, y = data.make_blobs(n_per_class=500, seed=0)
    assert X.shape == (1000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.repeat([0, 1], 500))
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [-2, -2], atol=0.15)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [2, 2], atol=0.15)
    np.testing.assert_allclose(X[y == 0].std(axis=0), [1, 1], atol=0.1)
    X2, _ = data.make_blobs(n_per_class=500, seed=0)
    np.testing.assert_array_equal(X, X2)
    assert not np.array_equal(X, data.make_blobs(n_per_class=500, seed=1)[0])


def test_make_blobs_overrides():
    X, y = data.make_blobs(3, centers=[[0, 0, 0], [1, 1, 1], [5, 5, 5]], std=0.0, dtype="float64")
    assert X.dtype == np.float64 and X.shape == (9, 3)
    np.testing.assert_array_equal(X, np.repeat([[0, 0, 0], [1, 1, 1], [5, 5, 5]], 3, axis=0))
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    X, _ = data.make_blobs(2000, std=[0.5, 2.0])
    np.testing.assert_allclose([X[:2000].std(), X[2000:].std()], [0.5, 2.0], rtol=0.05)


@pytest.mark.parametrize("n", [100, 7])
def test_make_moons_radii_and_balance(n):
    X, y = data.make_moons(n, noise=0.0)
    assert X.shape == (n, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert (y == 0).sum() == n // 2 and (y == 1).sum() == n - n // 2
    outer, inner = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*outer.T), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0, atol=1e-6)
    assert (outer[:, 1] >= -1e-6).all() and (inner[:, 1] <= 0.5 + 1e-6).all()
    assert not np.array_equal(y, np.sort(y))  # shuffled


def test_make_moons_matches_sklearn_definition_unshuffled():
    X, y = data.make_moons(5, noise=0.0, shuffle=False, dtype="float64")
    t_out, t_in = np.linspace(0, np.pi, 2), np.linspace(0, np.pi, 3)
    expected = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1),
        ]
    )
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1])


def test_make_moons_noise_and_seed():
    X0, y0 = data.make_moons(400, noise=0.0, seed=5)
    X1, y1 = data.make_moons(400, noise=0.1, seed=5)
    np.testing.assert_array_equal(y0, y1)  # same shuffle; noise is drawn after it
    assert 0.08 < np.std(X1 - X0) < 0.12
    np.testing.assert_array_equal(X1, data.make_moons(400, noise=0.1, seed=5)[0])


# --------------------------------------------------------------------------------------------
# IDX files


def _idx_bytes(array):
    """IDX bytes written independently of xpnn: magic, big-endian dims, raw uint8."""
    magic = 0x0800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_exact(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    for name, array in (("img", images), ("lab", labels)):
        path = tmp_path / f"{name}{suffix}"
        data.write_idx(path, array)
        raw = path.read_bytes()
        assert (gzip.decompress(raw) if suffix else raw) == _idx_bytes(array)
        back = data.read_idx(path)
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back, array)


def test_idx_reads_independently_written_file(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "l").write_bytes(_idx_bytes(labels))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "l"), labels)


def test_idx_truncated_names_file_and_sizes(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(_idx_bytes(np.zeros((2, 3, 3), np.uint8))[:-5])
    with pytest.raises(ValueError, match=r"short-idx3-ubyte.*2x3x3 = 18 bytes of data, found 13"):
        data.read_idx(path)
    path.write_bytes(_idx_bytes(np.zeros((2, 3, 3), np.uint8)) + b"x")
    with pytest.raises(ValueError, match="18 bytes of data, found 19"):
        data.read_idx(path)


def test_idx_bad_magic_header_and_gzip(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(struct.pack(">II", 2050, 0))
    with pytest.raises(ValueError, match="bad.*magic number 2050"):
        data.read_idx(path)
    path.write_bytes(struct.pack(">II", 2051, 1))
    with pytest.raises(ValueError, match="truncated header, expected 16 bytes, found 8"):
        data.read_idx(path)
    path.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="too short"):
        data.read_idx(path)
    gz = tmp_path / "bad.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(np.zeros(100, np.uint8)))[:-20])
    with pytest.raises(ValueError, match=r"bad\.gz.*gzip"):
        data.read_idx(gz)


def test_idx_gzip_file_without_gz_suffix_says_it_is_gzip(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(gzip.compress(_idx_bytes(np.arange(3, dtype=np.uint8))))
    with pytest.raises(ValueError, match=r"labels-idx1-ubyte: the data is gzip-compressed.*\.gz"):
        data.read_idx(path)


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# MNIST

TRAIN, TEST = 6, 4


def _tiny_mnist():
    """name -> uncompressed IDX bytes of a tiny MNIST-shaped data set."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, TEST, dtype=np.uint8),
    }
    arrays["train-images-idx3-ubyte"][0, 0, :2] = [0, 255]  # pin both ends of the scale
    return arrays


@pytest.fixture
def tiny(monkeypatch):
    """The tiny arrays; MNIST_MD5 patched to their checksums."""
    arrays = _tiny_mnist()
    md5 = {n: hashlib.md5(_idx_bytes(a)).hexdigest() for n, a in arrays.items()}
    monkeypatch.setattr(data, "MNIST_MD5", md5)
    return arrays


def _write_tree(folder, arrays, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        raw = _idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


def _check_loaded(result, arrays):
    (X, y), (Xt, yt) = result
    assert X.shape == (TRAIN, 784) and Xt.shape == (TEST, 784)
    assert X.dtype == np.float32 and y.dtype == np.int64 and yt.dtype == np.int64
    images = arrays["train-images-idx3-ubyte"].reshape(TRAIN, 784)
    np.testing.assert_array_equal(X, images.astype(np.float32) / np.float32(255))
    assert X[0, 0] == 0.0 and X[0, 1] == 1.0
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(Xt * 255, arrays["t10k-images-idx3-ubyte"].reshape(TEST, 784))


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_root(tmp_path, tiny, gz):
    _write_tree(tmp_path, tiny, gz=gz)
    _check_loaded(data.load_mnist(root=tmp_path, download=False), tiny)


def test_load_mnist_mixed_raw_and_gz(tmp_path, tiny):
    _write_tree(tmp_path, dict(list(tiny.items())[:2]), gz=True)
    _write_tree(tmp_path, dict(list(tiny.items())[2:]), gz=False)
    _check_loaded(data.load_mnist(root=str(tmp_path), download=False), tiny)


def test_mnist_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XPNN_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert data.mnist_folder(tmp_path / "r") == tmp_path / "r"
    assert data.mnist_folder() == tmp_path / "d" / "mnist"
    monkeypatch.delenv("XPNN_DATA")
    assert data.mnist_folder() == tmp_path / "c" / "xpnn" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert data.mnist_folder() == tmp_path / "h" / ".cache" / "xpnn" / "mnist"


def test_load_mnist_reads_xpnn_data(tmp_path, tiny, monkeypatch):
    _write_tree(tmp_path / "mnist", tiny)
    monkeypatch.setenv("XPNN_DATA", str(tmp_path))
    _check_loaded(data.load_mnist(download=False), tiny)


def test_load_mnist_truncated_local_file(tmp_path, tiny):
    _write_tree(tmp_path, tiny, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*3136 bytes of data, found 3036"):
        data.load_mnist(root=tmp_path, download=False)


def test_load_mnist_label_count_mismatch(tmp_path, tiny):
    tiny["train-labels-idx1-ubyte"] = tiny["train-labels-idx1-ubyte"][:-1]
    _write_tree(tmp_path, tiny)
    with pytest.raises(ValueError, match="train has 6 images but 5 labels"):
        data.load_mnist(root=tmp_path, download=False, verify=False)


def test_load_mnist_verifies_local_files_of_official_size(tmp_path, tiny, monkeypatch):
    _write_tree(tmp_path, tiny)
    sizes = {n: len(_idx_bytes(a)) for n, a in tiny.items()}
    monkeypatch.setattr(data, "MNIST_NBYTES", sizes)  # pretend the tiny files are official size
    data.load_mnist(root=tmp_path, download=False)  # right checksums pass
    monkeypatch.setitem(data.MNIST_MD5, "train-labels-idx1-ubyte", "0" * 32)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: MD5 .* official 0{32}"):
        data.load_mnist(root=tmp_path, download=False)
    data.load_mnist(root=tmp_path, download=False, verify=False)
    monkeypatch.setattr(data, "MNIST_NBYTES", {})  # other sizes: not checked
    data.load_mnist(root=tmp_path, download=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 serving that folder."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _dead_url():
    """A localhost URL with nothing listening: the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_load_mnist_downloads_into_cache(tmp_path, tiny, serve, monkeypatch):
    _write_tree(tmp_path / "mirror", tiny)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("XPNN_DATA", raising=False)
    cache = tmp_path / "cache" / "xpnn" / "mnist"
    mirrors = [_dead_url(), serve(tmp_path / "mirror")]
    _check_loaded(data.load_mnist(mirrors=mirrors, timeout=5), tiny)
    # Stored uncompressed, nothing else (no temp files).
    assert sorted(p.name for p in cache.iterdir()) == sorted(tiny)
    for name, array in tiny.items():
        assert (cache / name).read_bytes() == _idx_bytes(array)
    # A second load needs no mirror at all.
    _check_loaded(data.load_mnist(mirrors=[], download=False), tiny)


def test_load_mnist_downloads_from_file_url(tmp_path, tiny):
    _write_tree(tmp_path / "mirror", tiny)
    _check_loaded(
        data.load_mnist(root=tmp_path / "c", mirrors=(tmp_path / "mirror").as_uri()), tiny
    )


def test_load_mnist_corrupt_download_leaves_nothing(tmp_path, tiny, serve):
    bad = dict(tiny)
    bad["train-images-idx3-ubyte"] = tiny["train-images-idx3-ubyte"] ^ np.uint8(1)  # MD5 differs
    _write_tree(tmp_path / "mirror", bad)
    root = tmp_path / "cache"
    with pytest.raises(data.MNISTNotFoundError, match="MD5 mismatch"):
        data.load_mnist(root=root, mirrors=[serve(tmp_path / "mirror")], timeout=5)
    assert not root.exists() or list(root.iterdir()) == []


def test_load_mnist_truncated_download_leaves_nothing(tmp_path, tiny, serve):
    _write_tree(tmp_path / "mirror", tiny)
    gz = tmp_path / "mirror" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-30])
    root = tmp_path / "cache"
    with pytest.raises(data.MNISTNotFoundError, match="train-images-idx3-ubyte.gz: EOFError"):
        data.load_mnist(root=root, mirrors=[serve(tmp_path / "mirror")], timeout=5)
    assert not root.exists() or list(root.iterdir()) == []


def test_load_mnist_bad_mirror_then_good_mirror(tmp_path, tiny, serve):
    bad = dict(tiny)
    bad["t10k-labels-idx1-ubyte"] = tiny["t10k-labels-idx1-ubyte"][::-1].copy()
    _write_tree(tmp_path / "bad", bad)
    _write_tree(tmp_path / "good", tiny)
    mirrors = [serve(tmp_path / "bad"), serve(tmp_path / "good")]
    _check_loaded(data.load_mnist(root=tmp_path / "c", mirrors=mirrors, timeout=5), tiny)


def test_load_mnist_without_checksums_still_parses_downloads(tmp_path, tiny, serve):
    bad = dict(tiny)
    bad["t10k-labels-idx1-ubyte"] = tiny["t10k-labels-idx1-ubyte"][::-1].copy()
    _write_tree(tmp_path / "mirror", bad)
    url = serve(tmp_path / "mirror")
    (_, _), (_, yt) = data.load_mnist(root=tmp_path / "c", mirrors=[url], verify=False)
    np.testing.assert_array_equal(yt, bad["t10k-labels-idx1-ubyte"])
    # Not IDX at all: rejected even without verify, and nothing is written.
    (tmp_path / "junk").mkdir()
    for name in tiny:
        (tmp_path / "junk" / f"{name}.gz").write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(data.MNISTNotFoundError, match="magic number"):
        data.load_mnist(root=tmp_path / "c2", mirrors=[serve(tmp_path / "junk")], verify=False)
    assert not (tmp_path / "c2").exists() or list((tmp_path / "c2").iterdir()) == []


def test_load_mnist_all_mirrors_fail_one_clear_error(tmp_path, tiny):
    root = tmp_path / "empty"
    dead = _dead_url()
    missing = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(data.MNISTNotFoundError) as info:
        data.load_mnist(root=root, mirrors=[dead, missing], timeout=5)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for name in tiny:  # every place it looked
        assert f"{root / name}[.gz]" in message
    assert f"{dead}train-images-idx3-ubyte.gz: URLError" in message
    assert f"{missing}train-images-idx3-ubyte.gz: URLError" in message
    assert "load_mnist(root=" in message and "$XPNN_DATA" in message
    assert not root.exists()


def test_load_mnist_offline_without_download(tmp_path, tiny):
    _write_tree(tmp_path, dict(list(tiny.items())[:3]))  # t10k labels missing
    with pytest.raises(data.MNISTNotFoundError, match="download=False") as info:
        data.load_mnist(root=tmp_path, download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte[.gz]" in message
    assert "train-images" not in message  # only what is missing is listed


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a 4 KB body, sent a byte every 0.1 s (100 bytes at most, so a
    client that never gives up is done in 10 s)."""

    def do_GET(self):
        body = gzip.compress(np.random.default_rng(0).bytes(4096))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body[:100]:
            if self.server.stop.is_set():
                break
            try:
                self.wfile.write(bytes([byte]))
            except OSError:  # the client gave up
                break
            time.sleep(0.1)

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle():
    """The URL of a server on 127.0.0.1 that trickles its answers at 10 bytes/s."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.stop.set()
    server.shutdown()
    server.server_close()


def test_load_mnist_timeout_is_a_deadline_for_the_whole_download(tmp_path, tiny, trickle):
    # Every byte comes well within the socket timeout; only a deadline stops the download.
    root = tmp_path / "cache"
    start = time.monotonic()
    with pytest.raises(data.MNISTNotFoundError,
                       match=rf"{trickle}train-images-idx3-ubyte\.gz: TimeoutError: the download "
                             rf"took longer than timeout=1 seconds"):
        data.load_mnist(root=root, mirrors=[trickle], timeout=1)
    assert time.monotonic() - start < 5
    assert not root.exists() or list(root.iterdir()) == []


# --------------------------------------------------------------------------------------------
# gzip bombs: small files that expand hugely


def _idx_header(*shape) -> bytes:
    return struct.pack(f">I{len(shape)}I", 0x0800 | len(shape), *shape)


def _bomb(header: bytes, mib: int) -> bytes:
    """gzip data that expands to ``header`` and ``mib`` MiB of zeros: one small gzip member
    repeated (a decompressor reads the members as one stream), so it costs ~1 KB per MiB."""
    return gzip.compress(header) + gzip.compress(bytes(1 << 20)) * mib


@pytest.fixture
def urlopen(monkeypatch):
    """urlopen(files): urllib.request.urlopen serves files[name] for any URL ending in /name
    (an URLError for others), so downloads run offline."""

    def install(files):
        def fake(url, timeout=None):
            name = url.rsplit("/", 1)[1]
            if name not in files:
                raise urllib.error.URLError(f"{name} is not served here")
            return BytesIO(files[name])

        monkeypatch.setattr(urllib.request, "urlopen", fake)

    return install


def _gz_files(arrays) -> dict:
    return {f"{name}.gz": gzip.compress(_idx_bytes(a)) for name, a in arrays.items()}


def test_download_of_a_gzip_bomb_stops_at_the_official_size(tmp_path, tiny, urlopen):
    name = "train-images-idx3-ubyte"
    official = data.MNIST_NBYTES[name]
    files = _gz_files(tiny)
    files[f"{name}.gz"] = _bomb(_idx_header(60_000, 28, 28), 256)  # 256 MiB from 256 KB
    urlopen(files)
    root = tmp_path / "cache"
    peak = peak_memory_of_failure(
        lambda: data.load_mnist(root=root, mirrors=["https://mirror.invalid/"]),
        rf"{name}\.gz: ValueError: .*decompresses to more than {official} bytes, the size of "
        rf"the official file",
        data.MNISTNotFoundError,
    )
    assert peak < 1.5 * official  # not the whole 256 MiB, nor a copy of it
    assert not root.exists() or list(root.iterdir()) == []


def test_unverified_download_stops_at_the_size_its_header_declares(tmp_path, tiny, urlopen,
                                                                   monkeypatch):
    name = "train-images-idx3-ubyte"
    files = _gz_files(tiny)
    files[f"{name}.gz"] = _bomb(_idx_header(6, 28, 28), 64)
    urlopen(files)
    root = tmp_path / "cache"
    peak = peak_memory_of_failure(
        lambda: data.load_mnist(root=root, mirrors=["https://m.invalid/"], verify=False),
        r"decompresses to more than 4720 bytes, the size its IDX header declares",
        data.MNISTNotFoundError,
    )
    assert peak < 4 << 20
    # A header that declares a huge file is held to MAX_IDX_NBYTES.
    monkeypatch.setattr(data, "MAX_IDX_NBYTES", 1 << 20)
    files[f"{name}.gz"] = _bomb(_idx_header(2**31, 28, 28), 64)
    with pytest.raises(data.MNISTNotFoundError,
                       match=r"more than 1048576 bytes, xpnn\.data\.MAX_IDX_NBYTES"):
        data.load_mnist(root=root, mirrors=["https://m.invalid/"], verify=False)
    assert not root.exists() or list(root.iterdir()) == []


def test_read_idx_checks_a_raw_file_size_before_reading_it(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(_idx_header(10) + bytes(10))
    with open(path, "r+b") as f:
        f.truncate(6 * 2**30)  # 6 GiB, sparse: no disk used, and never read
    peak = peak_memory_of_failure(
        lambda: data.read_idx(path),
        rf"labels-idx1-ubyte: header says 10 = 10 bytes of data, found {6 * 2**30 - 8} "
        rf"\(file truncated or corrupt\)",
    )
    assert peak < 1 << 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here (Windows)")
def test_read_idx_refuses_a_fifo_without_opening_it(tmp_path):
    fifo = tmp_path / "labels-idx1-ubyte"
    os.mkfifo(fifo)
    errors = []

    def read():
        try:
            data.read_idx(fifo)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # the old code blocked in open(): a writer releases it
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join(5)
        pytest.fail(f"read_idx blocked on the FIFO {fifo}")
    assert len(errors) == 1 and isinstance(errors[0], ValueError), errors
    assert str(errors[0]) == (f"{fifo}: cannot read IDX data: it is a FIFO (named pipe), not a "
                              f"regular file")


def test_read_idx_of_a_local_gzip_bomb_fails_in_bounded_memory(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(_bomb(_idx_header(2, 3, 3), 128))
    peak = peak_memory_of_failure(
        lambda: data.read_idx(path),
        r"bomb-idx3-ubyte\.gz: decompresses to more than 34 bytes, the size its IDX header "
        r"declares",
    )
    assert peak < 4 << 20
    # One byte too many is the same error; the exact size still reads.
    path.write_bytes(gzip.compress(_idx_header(2, 3, 3) + bytes(19)))
    with pytest.raises(ValueError, match="more than 34 bytes"):
        data.read_idx(path)
    path.write_bytes(_bomb(_idx_header(2, 3, 3), 0) + gzip.compress(bytes(18)))
    np.testing.assert_array_equal(data.read_idx(path), np.zeros((2, 3, 3), np.uint8))
