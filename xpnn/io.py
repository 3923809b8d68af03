"""Save and load named arrays as ``.npz``: no pickle (loading never runs code), written to a
temporary file and renamed so a crash never leaves half a file.

>>> import numpy as np, tempfile, os
>>> from xpnn import io
>>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
>>> io.save_arrays(path, {"w": np.ones(2)})
>>> io.load_arrays(path)["w"].tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


def save_arrays(path, arrays: dict) -> None:
    """Write ``{name: NumPy array}`` to ``path`` atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # np.savez would add it to the temp name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}))


def write_atomic(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``:
    readers see the old file or the whole new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_arrays(path) -> dict:
    """Read a file written by :func:`save_arrays` (or any ``.npz`` without object arrays)."""
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):  # a .npy file: one array, no names
            raise ValueError("it holds a single .npy array, not named arrays")
        with data:
            return {k: data[k] for k in data.files}
    except (ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a plain .npz of arrays ({exc})") from exc


def check_shapes(expected: dict, arrays: dict, where: str) -> None:
    """Raise (before anything changes) unless ``arrays`` has exactly the expected names and
    shapes; ``expected`` maps name -> shape."""
    missing = [k for k in expected if k not in arrays]
    extra = [k for k in arrays if k not in expected and not k.startswith("__")]
    if missing or extra:
        raise ValueError(
            f"{where}: the file does not match this model: missing parameters {missing}, "
            f"unexpected parameters {extra}"
        )
    for name, shape in expected.items():
        if tuple(arrays[name].shape) != tuple(shape):
            raise ValueError(
                f"{where}: parameter {name!r} has shape {tuple(shape)} in the model but "
                f"{tuple(arrays[name].shape)} in the file (another architecture?)"
            )
