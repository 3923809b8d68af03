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

import math
import os
import re
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from .host import to_numpy

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None


def save_arrays(path, arrays: dict, what: str = "array", hint: str = "") -> None:
    """Write ``{name: array}`` to ``path`` atomically, one ``name.npy`` member per array (the
    layout ``numpy.savez`` writes, without its keyword arguments: any name is just a name).
    Arrays of any backend (CuPy, PyTorch, ...) come to the host through its own transfer
    (``xpnn.to_numpy``). A name a ``.npz`` cannot hold (a NUL character, over 64 KB) raises
    before anything is written, naming the ``what`` and ending with ``hint``; a failed write
    (a full disk) raises ``OSError`` naming ``path`` and leaves any file there as it was.
    The file is the one :func:`npz_path` names: ``path``, with ``.npz`` added if it lacks it."""
    path = npz_path(path)
    hosts = {}
    for name, value in arrays.items():
        problem = _name_problem(name)
        if problem is None:
            hosts[name] = to_numpy(value)
            if hosts[name].dtype.hasobject:
                problem = "it holds Python objects, which only pickle could store"
        if problem:
            raise ValueError(f"cannot save {path}: the {what} named {_short(name)} cannot be "
                             f"stored: {problem}{hint}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # its message names the folder, not the checkpoint
        blocker = next((p for p in path.parents if os.path.isfile(p)), None)
        raise _not_written(exc, path, blocker and f"{blocker} is a file, not a folder") from exc
    write_atomic(path, lambda f: _write_npz(f, hosts))


def npz_path(path, reading: bool = False) -> Path:
    """The file ``path`` names, one rule for saving and loading: ``path`` itself when it ends
    in ``.npz`` (any case), else ``path`` + ``.npz``. When reading a ``path`` without the
    suffix, whichever of the two exists; where both do, ``ValueError`` names both rather
    than guess which one was meant.

    >>> npz_path("ckpt").name, npz_path("ckpt.NPZ").name
    ('ckpt.npz', 'ckpt.NPZ')
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return path
    with_suffix = path.with_name(path.name + ".npz")
    if not reading or not os.path.exists(path) or os.path.isdir(path):
        return with_suffix
    if os.path.exists(with_suffix):
        raise ValueError(f"both {path} and {with_suffix} exist, and {path} names either (a "
                         f"save to it writes {with_suffix}): pass the full name of the file "
                         f"to read, or remove the other one")
    return path


# A zip member's name is at most 65535 bytes, and each member here is "<name>.npy".
MAX_NAME_BYTES = 0xFFFF - len(".npy")


def _name_problem(name) -> str | None:
    """Why ``name`` cannot be a member name of a .npz, or None."""
    if not isinstance(name, str):
        return f"names must be strings, got {type(name).__name__}"
    if "\0" in name:  # zipfile cuts a name at its first NUL: two names would become one
        return "it holds a NUL character ('\\x00'), which ends a name in a .npz (zip) file"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode (a lone surrogate), which a .npz cannot store"
    if size > MAX_NAME_BYTES:
        return (f"it is {size} bytes long in UTF-8; a .npz holds names of at most "
                f"{MAX_NAME_BYTES} bytes")
    return None


def _short(name) -> str:
    if not isinstance(name, str) or len(name) <= 60:
        return repr(name)
    return f"{name[:40]!r}... ({len(name)} characters)"


def _write_npz(f, arrays: dict) -> None:
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(name + ".npy")  # a fixed date: equal arrays, equal files
            with archive.open(info, "w", force_zip64=True) as member:
                npy.write_array(member, array, allow_pickle=False)


# Where file locks exist (POSIX), a writer holds one on its temporary while it writes, so
# a temporary nobody holds is a killed writer's; elsewhere, one untouched this long is.
STALE_TEMP_SECONDS = 600
_UNLOCKED_GRACE_SECONDS = 2.0  # between mkstemp and the writer's lock, and its close and rename


def write_atomic(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``:
    readers see the old file or the whole new one, never half of it.

    Where ``path`` is a symlink, the file it points to is replaced and the link kept.
    A process killed mid-write leaves its temporary ``.{name}.XXXXXXXX.tmp`` behind; each
    write first deletes those of the same ``path`` whose writer is gone (see
    :func:`remove_stale_temporaries`).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> write_atomic(path, lambda f: f.write(b"hello")); open(path, "rb").read()
    b'hello'
    """
    path = Path(path)
    # Renaming onto a link would replace the link and leave the file it points to stale.
    target = Path(os.path.realpath(path))
    for name in dict.fromkeys((path, target)):
        remove_stale_temporaries(name)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _not_written(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            _lock(f.fileno(), blocking=True)  # held until closed: "a writer is at work"
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # e.g. a full disk: its message names no file
            raise _not_written(exc, path) from exc
        raise


def _not_written(exc: OSError, path, reason=None) -> OSError:
    """``exc`` (same errno, so the same OSError subclass) with a message naming ``path``."""
    reason = reason or exc.strerror or exc
    message = f"could not write {path}: {reason}; a file already there is unchanged"
    return OSError(exc.errno, message) if exc.errno else OSError(message)


def _lock(fd, blocking: bool) -> bool:
    """Take an exclusive lock on ``fd``: False if another process holds one; True also
    where there are no file locks (then ``_writer_gone`` goes by age alone)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _writer_gone(entry, now, older_than) -> bool:
    """Whether the temporary ``entry`` has no writer any more: at least ``older_than``
    seconds old and nobody holds its lock; without file locks, age alone decides."""
    age = now - entry.stat().st_mtime
    if fcntl is None:
        return age >= (STALE_TEMP_SECONDS if older_than is None else older_than)
    if age < (_UNLOCKED_GRACE_SECONDS if older_than is None else older_than):
        return False
    fd = os.open(entry.path, os.O_RDONLY)
    try:
        return _lock(fd, blocking=False)
    finally:
        os.close(fd)  # releases the lock we may have taken


def remove_stale_temporaries(path, older_than: float | None = None) -> list[Path]:
    """Delete the temporaries :func:`write_atomic` left beside ``path`` whose writer is gone
    (killed): nobody holds the lock a writer keeps on its temporary while it writes (and
    it is ``older_than`` seconds old, default 2: a writer locks right after creating it).
    Without file locks (Windows), a temporary not modified for ``older_than`` seconds
    (default ``STALE_TEMP_SECONDS``) counts as gone. Return what was deleted. Other files,
    and other targets' temporaries, are never touched.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, ".w.npz.k2j4x9_q.tmp"), "wb").close()
    >>> [p.name for p in remove_stale_temporaries(os.path.join(folder, "w.npz"), older_than=0)]
    ['.w.npz.k2j4x9_q.tmp']
    """
    path = Path(path)
    # mkstemp's random part has no dot, so ".w.npz.x.RANDOM.tmp" (target w.npz.x) never matches.
    pattern = re.compile(re.escape(f".{path.name}.") + r"[^.]+\.tmp")
    now = time.time()
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed  # no folder yet: nothing to clean
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and _writer_gone(entry, now, older_than):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass  # gone already (another cleaner) or not ours to delete: best effort
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _BadFile(ValueError):
    """A file that is not a plain .npz of arrays (the message names it and says why)."""


def load_arrays(path) -> dict:
    """Read a file written by :func:`save_arrays` (or any ``.npz`` without object arrays).

    The whole zip directory is checked before any data is read, and every member's ``.npy``
    header before its data: duplicate names, encrypted members, compression other than
    stored or deflate, and a shape that needs more bytes than the member holds (a corrupt
    or hostile file) are refused before anything is allocated, as are FIFOs and devices
    (never opened). Every problem with the file raises ``ValueError`` naming it. The file is
    the one :func:`npz_path` names, as for :func:`save_arrays`."""
    path = npz_path(path, reading=True)

    def bad(reason):
        return _BadFile(f"{path}: not a plain .npz of arrays ({reason})")

    with open_regular(path, bad) as f:  # a missing file stays a FileNotFoundError
        head = f.read(len(npy.MAGIC_PREFIX))
        disk_size = os.fstat(f.fileno()).st_size
        if disk_size == 0:
            raise bad("the file is empty, 0 bytes: save it again or use another copy")
        if head == npy.MAGIC_PREFIX:
            raise bad("it holds a single .npy array, not named arrays: load it with numpy.load")
        try:
            with zipfile.ZipFile(f) as archive:
                members = _check_directory(archive, disk_size, bad)
                return {key: _read_member(archive, info, bad) for key, info in members.items()}
        except _BadFile:
            raise
        except (ValueError, EOFError, OSError, zlib.error, NotImplementedError,
                zipfile.BadZipFile) as exc:  # numpy's and zipfile's own complaints
            raise bad(f"{type(exc).__name__}: {exc}") from exc


def open_regular(path, bad):
    """``path`` opened for reading in binary, or ``bad(reason)`` raised when it is not a
    regular file: a FIFO would block the read forever, a device read without end."""
    kind = _kind(os.stat(path).st_mode)  # before opening: opening a FIFO blocks
    if kind is None:
        # O_NONBLOCK: should it have become a FIFO since the stat, opening it won't block.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        kind = _kind(os.fstat(fd).st_mode)
        if kind is None:
            if hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        os.close(fd)
    raise bad(f"it is {kind}, not a regular file")


def _kind(mode) -> str | None:
    """What a non-regular file is (``st_mode``), or None for a regular one."""
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO (named pipe)",
             stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}
    return next((name for test, name in kinds.items() if test(mode)), "not a plain file")


def _key(info) -> str:
    return info.filename[:-4] if info.filename.endswith(".npy") else info.filename


# Deflate expands data at most 1032-fold: a bound even when the directory's size is forged.
# Other methods (bzip2, LZMA) expand far more from a few bytes; numpy never writes them.
_MAX_EXPANSION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}


def _check_directory(archive, disk_size, bad) -> dict:
    """``{name: ZipInfo}`` of the archive's members, once each directory entry is checked."""
    members = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        what = f"member {info.filename!r}"
        key = _key(info)
        if key in members:
            raise bad(f"members {members[key].filename!r} and {info.filename!r} are both "
                      f"named {key!r}: a tampered or broken file")
        if info.flag_bits & 0x1:
            raise bad(f"{what} is encrypted; xpnn reads only unencrypted .npz files")
        if info.compress_type not in _MAX_EXPANSION:
            method = zipfile.compressor_names.get(info.compress_type, "unknown")
            raise bad(f"{what} is compressed with {method} (method {info.compress_type}); "
                      f"only stored and deflated members are read, as numpy.savez and "
                      f"savez_compressed write them")
        if info.compress_size > disk_size:
            raise bad(f"{what} claims {info.compress_size} bytes but the whole file has "
                      f"{disk_size}: it is truncated")
        members[key] = info
    return members


def _read_member(archive, info, bad) -> np.ndarray:
    what = f"member {info.filename!r}"
    capacity = min(info.file_size, info.compress_size * _MAX_EXPANSION[info.compress_type])
    with archive.open(info) as f:
        try:
            version = npy.read_magic(f)
        except ValueError:
            raise bad(f"{what} is not a .npy array; an .npz holds only .npy members") from None
        if version not in ((1, 0), (2, 0)):
            raise bad(f"{what} is .npy format {version}; only 1.0 and 2.0 are read")
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = npy.read_array_header_2_0(f)
        if dtype.hasobject:
            raise bad(f"{what} holds Python objects, which only pickle loads; xpnn never "
                      f"unpickles")
        count = math.prod(shape)
        needed = f.tell() + count * dtype.itemsize
        if needed > capacity or needed != info.file_size:
            most = "at most " if needed > capacity else ""
            raise bad(f"{what} claims shape {shape} {dtype}, {needed} bytes with its header, "
                      f"but holds {most}{min(capacity, info.file_size)}: the file is corrupt")
        data = _read_exactly(f, needed - f.tell())
    if not data:
        return np.zeros(shape, dtype)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


_CHUNK = 1 << 20


def _read_exactly(f, nbytes) -> bytearray:
    """``nbytes`` from ``f``, in chunks: memory grows only as data really arrives."""
    data = bytearray()
    while len(data) < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - len(data)))
        if not chunk:
            raise EOFError(f"the data ends after {len(data)} of {nbytes} bytes")
        data += chunk
    return data


def check_shapes(expected: dict, arrays: dict, where: str, extra_ok: bool = False,
                 hint: str = "") -> None:
    """Raise (before anything changes) unless ``arrays`` has every expected name, with the
    expected shape and a numeric dtype, and (unless ``extra_ok``) no other names except
    ``__metadata__`` ones; ``expected`` maps name -> shape, ``hint`` ends a name mismatch's
    message.

    >>> check_shapes({"w": (2,)}, {"w": np.zeros(2)}, "here")
    >>> check_shapes({"w": (2,)}, {}, "here")
    Traceback (most recent call last):
    ValueError: here: the file does not match this model: missing parameters ['w']
    """
    missing = [k for k in expected if k not in arrays]
    extra = [] if extra_ok else [k for k in arrays
                                 if k not in expected and not k.startswith("__")]
    reasons = [f"{what} parameters {names}" for what, names in
               (("missing", missing), ("unexpected", extra)) if names]
    if reasons:
        raise ValueError(f"{where}: the file does not match this model: "
                         f"{', '.join(reasons)}{hint}")
    for name, shape in expected.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(shape):
            raise ValueError(
                f"{where}: parameter {name!r} has shape {tuple(shape)} in the model but "
                f"{tuple(array.shape)} in the file (another architecture?)"
            )
        if array.dtype.kind not in "fiub":
            raise ValueError(f"{where}: parameter {name!r} holds {array.dtype} data in the "
                             f"file, not numbers: the file is not a checkpoint of this model")
