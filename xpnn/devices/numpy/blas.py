"""The one BLAS call NumPy does not expose: a matrix product that accumulates into an
existing array, ``c = beta * c + alpha * (a @ b)`` (GEMM). Plain SGD uses it to write
``w -= lr * x.T @ g`` straight into the weights, momentum to write ``v = m v + x.T @ g``
straight into its velocity: no gradient buffer is made, zeroed, read back and added, which
is about a tenth of an MLP training step on the CPU.

It calls the OpenBLAS that NumPy itself loaded (NumPy's wheels ship it as ``scipy-openblas``),
so the product runs on NumPy's own BLAS threads; a second BLAS library in the process would
make two thread pools fight over the cores. Where that library is not found (another BLAS,
an unusual build) or ``XPNN_BLAS=numpy`` is set, ``available()`` is False and callers use
NumPy.

``one_thread`` sets OpenBLAS's thread count to one while xpnn's own threads each run their
products (the conv kernels split a batch by images). Loading the library also shortens how
long OpenBLAS's threads spin waiting for the next product
(``_shorten_spin``): by default each spins on its core for some 2^28 cycles (about 0.1 s)
after a product, and the conv net's elementwise steps, split over xpnn's threads
(``threads.py``) right after a product, waited for that core.

>>> import numpy as np
>>> from xpnn.devices.numpy import blas
>>> c = np.ones((2, 2), dtype=np.float32)
>>> a = np.arange(4, dtype=np.float32).reshape(2, 2)
>>> blas.accumulate_product(c, a, a.T, alpha=-1.0)
>>> c.tolist()
[[0.0, -2.0], [-2.0, -12.0]]
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol prefix, integer type) of the CBLAS GEMMs, in the order they are looked for.
_NAMINGS = [
    ("scipy_cblas_{}gemm64_", ctypes.c_int64),  # NumPy >= 2 wheels: scipy-openblas64 (ILP64)
    ("scipy_cblas_{}gemm", ctypes.c_int),  # scipy-openblas32
    ("cblas_{}gemm64_", ctypes.c_int64),
    ("cblas_{}gemm", ctypes.c_int),
]
_gemm: dict = {}  # dtype -> the ctypes function (empty when unavailable)
_axpby: dict = {}  # dtype -> y = alpha x + beta y (level 1, on BLAS's threads)


def _numpy_openblas() -> list[str]:
    """Paths of the OpenBLAS shipped inside the installed NumPy (wheels on Linux, macOS,
    Windows keep it in numpy.libs/ or numpy/.dylibs/)."""
    package = os.path.dirname(np.__file__)
    patterns = [os.path.join(package + ".libs", "*openblas*"),
                os.path.join(package, ".dylibs", "*openblas*")]
    return sorted(p for pattern in patterns for p in glob.glob(pattern))


def _load() -> None:
    if os.environ.get("XPNN_BLAS", "").lower() == "numpy":
        return
    for path in _numpy_openblas():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for naming, integer in _NAMINGS:
            found = {}
            for dtype, letter, scalar in ((np.float32, "s", ctypes.c_float),
                                          (np.float64, "d", ctypes.c_double)):
                fn = getattr(library, naming.format(letter), None)
                if fn is None:
                    break
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer,
                               integer, scalar, ctypes.c_void_p, integer, ctypes.c_void_p,
                               integer, scalar, ctypes.c_void_p, integer]
                fn.restype = None
                found[np.dtype(dtype)] = fn
            if len(found) == 2:
                _gemm.update(found)
                _load_axpby(library, naming.replace("gemm", "axpby"), integer)
                _load_thread_count(library)
                _shorten_spin(library)
                return


def _load_axpby(library, naming, integer) -> None:
    for dtype, letter, scalar in ((np.float32, "s", ctypes.c_float),
                                  (np.float64, "d", ctypes.c_double)):
        fn = getattr(library, naming.format(letter), None)
        if fn is None:
            _axpby.clear()
            return
        fn.argtypes = [integer, scalar, ctypes.c_void_p, integer, scalar, ctypes.c_void_p,
                       integer]
        fn.restype = None
        _axpby[np.dtype(dtype)] = fn


# (set, get) of OpenBLAS's thread count, in the order they are looked for.
_THREAD_COUNT = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                 ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                 ("openblas_set_num_threads", "openblas_get_num_threads")]
_thread_count: list = []  # [set, get] when found
_one_thread = threading.Lock()
_one_thread_users = [0, 0]  # [callers inside one_thread(), the count to restore]


def _load_thread_count(library) -> None:
    for set_name, get_name in _THREAD_COUNT:
        set_count, get_count = getattr(library, set_name, None), getattr(library, get_name, None)
        if set_count is not None and get_count is not None:
            set_count.argtypes, set_count.restype = [ctypes.c_int], None
            get_count.argtypes, get_count.restype = [], ctypes.c_int
            _thread_count[:] = [set_count, get_count]
            return


def splits_products() -> bool:
    """Whether ``one_thread`` can have OpenBLAS run each product on its caller's thread."""
    return bool(_thread_count) and bool(_gemm)


@contextlib.contextmanager
def one_thread():
    """OpenBLAS runs every product on the thread that calls it, until the last caller
    inside leaves: the conv kernels split a batch over xpnn's threads, each of which runs
    its own products on its part, in cache after gathering its patches, instead of one
    product split by OpenBLAS after a gathering pass over the whole batch. OpenBLAS's
    thread count is process-wide: another thread's product meanwhile runs on one thread
    too (as fast as a split one, where xpnn's threads take the cores)."""
    with _one_thread:
        if _one_thread_users[0] == 0:
            _one_thread_users[1] = _thread_count[1]()
            _thread_count[0](1)
        _one_thread_users[0] += 1
    try:
        yield
    finally:
        with _one_thread:
            _one_thread_users[0] -= 1
            if _one_thread_users[0] == 0:
                _thread_count[0](_one_thread_users[1])


_SPIN = "4"  # OPENBLAS_THREAD_TIMEOUT's least: spin 2^4 cycles, then sleep until woken


def _shorten_spin(library) -> bool:
    """OpenBLAS reads its threads' spin (``OPENBLAS_THREAD_TIMEOUT``) when it loads, before
    xpnn can set it: read it again with the shortest spin, and stop the threads, which
    OpenBLAS starts again at its next parallel product (as after a fork). False where the
    two functions are not exported (another BLAS, another build) or the variable is set:
    the user's choice stands. Done at import, before xpnn runs any product."""
    read_env = getattr(library, "openblas_read_env", None)
    shutdown = getattr(library, "blas_thread_shutdown_", None)
    if read_env is None or shutdown is None or "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    read_env.restype = shutdown.restype = None
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = _SPIN
    try:
        read_env()  # OpenBLAS keeps the values; the threads it starts anew use them
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]  # child processes get the user's environment
    shutdown()
    return True


def available() -> bool:
    """Whether ``accumulate_product`` runs in BLAS (else it is NumPy arithmetic)."""
    return bool(_gemm)


def _operand(m):
    """(transpose flag, leading dimension) of a matrix whose rows or columns are contiguous
    (a C- or F-ordered matrix, or rows or columns of one); None otherwise."""
    if m.flags.c_contiguous:
        return _NO_TRANS, max(1, m.shape[1])
    if m.flags.f_contiguous:
        return _TRANS, max(1, m.shape[0])
    size = m.itemsize
    rows, cols = m.strides
    if cols == size and rows % size == 0 and rows >= m.shape[1] * size:
        return _NO_TRANS, rows // size
    if rows == size and cols % size == 0 and cols >= m.shape[0] * size:
        return _TRANS, cols // size
    return None


def accumulate_product(c, a, b, alpha: float, beta: float = 1.0) -> None:
    """``c = beta * c + alpha * (a @ b)`` in place, for 2-D NumPy arrays of one floating
    dtype."""
    fn = _gemm.get(c.dtype)
    usable = (fn is not None and type(a) is type(b) is type(c) is np.ndarray
              and a.ndim == b.ndim == c.ndim == 2 and a.dtype == b.dtype == c.dtype
              and c.shape == (a.shape[0], b.shape[1]) and a.shape[1] == b.shape[0]
              and c.flags.c_contiguous and c.flags.writeable and c.flags.aligned
              and a.flags.aligned and b.flags.aligned
              and not np.may_share_memory(c, a) and not np.may_share_memory(c, b))
    layout_a = _operand(a) if usable else None
    layout_b = _operand(b) if usable else None
    if layout_a is None or layout_b is None or a.shape[1] == 0:
        product = np.multiply(np.matmul(a, b), alpha, dtype=c.dtype, casting="unsafe")
        if beta != 1.0:
            c *= beta
        c += product
        return
    m, k = a.shape
    n = b.shape[1]
    if c.size == 0:
        return
    if beta == 0.0:  # BLAS then ignores c; NumPy's 0 * inf = nan must still show
        c *= beta
        beta = 1.0
    fn(_ROW_MAJOR, layout_a[0], layout_b[0], m, n, k, alpha, _address(a), layout_a[1],
       _address(b), layout_b[1], beta, _address(c), max(1, n))


MIN_AXPBY = 4096  # below this, the foreign call and its checks cost more than NumPy's pass


def scale_add(y, x, alpha: float, beta: float = 1.0) -> None:
    """``y = alpha * x + beta * y`` in place, for NumPy arrays of one floating dtype and
    shape laid out alike. BLAS (axpby) runs it in one pass where NumPy needs two or three;
    it may fuse the multiply-add, so results agree with NumPy's to rounding."""
    fn = _axpby.get(y.dtype) if y.size >= MIN_AXPBY else None
    usable = (fn is not None and type(x) is type(y) is np.ndarray and x.dtype == y.dtype
              and x.shape == y.shape and y.flags.writeable and y.flags.aligned
              and x.flags.aligned and _same_layout(x, y) and not np.may_share_memory(x, y))
    if not usable:
        if beta != 1.0:
            y *= beta
        y += x * alpha if x.dtype == y.dtype else np.multiply(x, alpha, dtype=y.dtype,
                                                             casting="unsafe")
        return
    if beta == 0.0:  # BLAS may then ignore y; NumPy's 0 * inf = nan must still show
        y *= beta
        beta = 1.0
    if y.size:
        fn(y.size, float(alpha), _address(x), 1, float(beta), _address(y), 1)


def _same_layout(x, y) -> bool:
    """Both C- or both F-contiguous: their memory holds the elements in one order."""
    return ((x.flags.c_contiguous and y.flags.c_contiguous)
            or (x.flags.f_contiguous and y.flags.f_contiguous))


def _address(array) -> int:
    return array.__array_interface__["data"][0]  # a third cheaper than array.ctypes.data


_load()
