"""xpnn.blas: c += alpha * (a @ b) through NumPy's own OpenBLAS, checked against NumPy in
float64 for every layout it takes and every case it must hand back to NumPy."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from xpnn.devices.numpy import blas

RNG = np.random.default_rng(0)


def _numpy_blas_is_scipy_openblas() -> bool:
    try:
        return np.__config__.CONFIG["Build Dependencies"]["blas"]["name"] == "scipy-openblas"
    except (AttributeError, KeyError, TypeError):
        return False


def test_found_in_numpy_wheels():
    if not _numpy_blas_is_scipy_openblas():
        pytest.skip("this NumPy is not built with scipy-openblas: NumPy arithmetic is used")
    assert blas.available()


def _layout(m, kind):
    if kind == "C":
        return np.ascontiguousarray(m)
    if kind == "F":
        return np.asfortranarray(m)
    if kind == "T":  # a transposed view of a C array (F-contiguous)
        return np.ascontiguousarray(m.T).T
    big = np.zeros((m.shape[0], 2 * m.shape[1]), dtype=m.dtype)  # strided: no BLAS layout
    big[:, ::2] = m
    return big[:, ::2]


def _expected(c, a, b, alpha, beta=1.0):
    return beta * c.astype(np.float64) + alpha * (a.astype(np.float64) @ b.astype(np.float64))


@pytest.mark.parametrize("beta", [1.0, 0.9, 0.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout_a", ["C", "F", "T", "strided"])
@pytest.mark.parametrize("layout_b", ["C", "F", "T", "strided"])
@pytest.mark.parametrize("shape", [(5, 3, 4), (1, 7, 1), (6, 1, 2), (64, 33, 17)])
def test_accumulate_matches_numpy(dtype, layout_a, layout_b, shape, beta):
    m, k, n = shape
    a = _layout(RNG.standard_normal((m, k)).astype(dtype), layout_a)
    b = _layout(RNG.standard_normal((k, n)).astype(dtype), layout_b)
    c = RNG.standard_normal((m, n)).astype(dtype)
    expected = _expected(c, a, b, -0.3, beta)
    a_before, b_before = a.copy(), b.copy()
    blas.accumulate_product(c, a, b, alpha=-0.3, beta=beta)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)
    assert c.dtype == dtype
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("beta", [1.0, 0.5])
@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 0, 4), (3, 4, 0)])
def test_empty_dimensions(shape, beta):
    m, k, n = shape
    c = np.ones((m, n), dtype=np.float32)
    a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    blas.accumulate_product(c, a, b, 2.0, beta=beta)
    np.testing.assert_array_equal(c, np.full((m, n), beta))  # k = 0: c is only scaled


def test_numpy_fallback_cases():
    """Where BLAS cannot write c directly, the same sum comes from NumPy."""
    a = RNG.standard_normal((4, 3)).astype(np.float32)
    b = RNG.standard_normal((3, 5)).astype(np.float32)
    cases = {
        "c is F-ordered": np.asfortranarray(RNG.standard_normal((4, 5)).astype(np.float32)),
        "c is float64": RNG.standard_normal((4, 5)),
    }
    for what, c in cases.items():
        for beta in (1.0, 0.9):
            expected = _expected(c, a, b, 0.5, beta)
            blas.accumulate_product(c, a, b, alpha=0.5, beta=beta)
            np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-6, err_msg=what)
    # c overlapping an operand: computed from the operand's value before the update
    c = RNG.standard_normal((4, 4)).astype(np.float32)
    square = RNG.standard_normal((4, 4)).astype(np.float32)
    expected = _expected(c, c, square, 1.0)
    blas.accumulate_product(c, c, square, alpha=1.0)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_and_columns_of_a_matrix_go_to_blas(dtype, monkeypatch):
    """Operands whose rows (or columns) are contiguous but spaced wider than they are long
    (rows of an F-ordered matrix, columns of a C-ordered one, a block of rows transposed)
    go to BLAS with their leading dimension, with NumPy's values; others fall back."""
    if not blas.available():
        pytest.skip("NumPy's OpenBLAS not found")
    big_f = np.asfortranarray(RNG.standard_normal((40, 6)).astype(dtype))
    big_c = RNG.standard_normal((7, 30)).astype(dtype)
    pairs = {"rows of an F matrix by columns of a C one": (big_f[5:17], big_c[:6, 3:12]),
             "a block of rows transposed": (big_c[1:4, 2:10].T, big_f[20:23, 1:5])}
    fell_back = []
    real = blas.np.matmul
    monkeypatch.setattr(blas.np, "matmul", lambda *a, **k: fell_back.append(1) or real(*a, **k))
    for what, (a, b) in pairs.items():
        c = RNG.standard_normal((a.shape[0], b.shape[1])).astype(dtype)
        expected = c * 0.5 + 2.0 * (real(a.astype(np.float64), b.astype(np.float64)))
        blas.accumulate_product(c, a, b, alpha=2.0, beta=0.5)
        np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5, err_msg=what)
    assert not fell_back
    strided = big_c[:, ::2][:, :6]  # neither rows nor columns contiguous: NumPy's product
    c = np.zeros((7, 4), dtype)
    blas.accumulate_product(c, strided, big_f[:6, :4], alpha=1.0)
    np.testing.assert_allclose(c, real(strided, big_f[:6, :4]), rtol=1e-5, atol=1e-5)
    assert fell_back


def test_without_blas_the_result_is_the_same(monkeypatch):
    a = RNG.standard_normal((6, 5)).astype(np.float32)
    b = RNG.standard_normal((5, 4)).astype(np.float32)
    c0 = RNG.standard_normal((6, 4)).astype(np.float32)
    with_blas = c0.copy()
    blas.accumulate_product(with_blas, a, b, alpha=-0.1)
    monkeypatch.setattr(blas, "_gemm", {})
    assert not blas.available()
    without = c0.copy()
    blas.accumulate_product(without, a, b, alpha=-0.1)
    np.testing.assert_allclose(with_blas, without, rtol=1e-6, atol=1e-6)


def test_shape_mismatch_raises():
    c = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError):
        blas.accumulate_product(c, np.ones((2, 3), np.float32), np.ones((4, 2), np.float32), 1.0)
    np.testing.assert_array_equal(c, 0.0)


def test_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.setattr(blas, "_gemm", {})
    monkeypatch.setenv("XPNN_BLAS", "numpy")
    blas._load()
    assert not blas.available()
    monkeypatch.delenv("XPNN_BLAS")
    blas._load()
    if _numpy_blas_is_scipy_openblas():
        assert blas.available()


def test_beta_zero_keeps_ieee_arithmetic():
    """BLAS skips reading c when beta = 0; NumPy's 0 * inf = nan must still show."""
    c = np.array([[np.inf, 1.0], [np.nan, 2.0]], dtype=np.float32)
    a = np.eye(2, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        blas.accumulate_product(c, a, a, alpha=1.0, beta=0.0)
    np.testing.assert_array_equal(np.isnan(c), [[True, False], [True, False]])
    assert c[0, 1] == 0.0 and c[1, 1] == 1.0


@pytest.mark.parametrize("shape", [(70, 64), (7, 5)], ids=["blas-size", "numpy-size"])
@pytest.mark.parametrize("layout", ["C", "F", "mixed", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [1.0, 0.9, 0.0])
def test_scale_add_matches_numpy(shape, layout, dtype, beta):
    x = RNG.standard_normal(shape).astype(dtype)
    y = RNG.standard_normal(shape).astype(dtype)
    if layout == "F":
        x, y = np.asfortranarray(x), np.asfortranarray(y)
    elif layout == "mixed":  # memory orders differ: NumPy does it
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = RNG.standard_normal((shape[0], 2 * shape[1])).astype(dtype)[:, ::2]
    want = (beta * y.astype(np.float64) + -0.3 * x.astype(np.float64))
    blas.scale_add(y, x, -0.3, beta=beta)
    np.testing.assert_allclose(y, want, rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("size", [5000, 3], ids=["blas-size", "numpy-size"])
def test_scale_add_with_beta_zero_keeps_ieee_arithmetic(size):
    y = np.ones(size, dtype=np.float32)
    y[:2] = [np.inf, np.nan]
    with np.errstate(invalid="ignore"):
        blas.scale_add(y, np.ones(size, np.float32), 2.0, beta=0.0)
    np.testing.assert_array_equal(np.isnan(y[:3]), [True, True, False])
    assert (y[2:] == 2.0).all()


def test_scale_add_without_blas_is_numpy(monkeypatch):
    x = RNG.standard_normal(5000).astype(np.float32)
    y0 = RNG.standard_normal(5000).astype(np.float32)
    with_blas = y0.copy()
    blas.scale_add(with_blas, x, 0.5, beta=0.25)
    monkeypatch.setattr(blas, "_axpby", {})
    without = y0.copy()
    blas.scale_add(without, x, 0.5, beta=0.25)
    np.testing.assert_array_equal(without, y0 * np.float32(0.25) + x * np.float32(0.5))
    np.testing.assert_allclose(with_blas, without, rtol=1e-6, atol=1e-7)


def test_scale_add_calls_blas_for_large_arrays_laid_out_alike(monkeypatch):
    if not blas._axpby:
        pytest.skip("NumPy's OpenBLAS has no axpby here: NumPy arithmetic is used")
    calls = []
    real = dict(blas._axpby)
    monkeypatch.setattr(blas, "_axpby", {
        dtype: (lambda *args, fn=fn: calls.append(args[0]) or fn(*args))
        for dtype, fn in real.items()})
    big = np.ones((70, 64), np.float32)
    blas.scale_add(big, np.ones((70, 64), np.float32), 1.0)
    blas.scale_add(np.ones(7, np.float32), np.ones(7, np.float32), 1.0)  # small: NumPy
    blas.scale_add(big, np.asfortranarray(np.ones((70, 64), np.float32)), 1.0)  # mixed
    assert calls == [70 * 64]
    assert (big == 3.0).all()


_SPIN_PROBE = """
import os, sys, time
import numpy as np
a = np.random.default_rng(0).standard_normal((800, 800)).astype(np.float32)
before = a @ a  # OpenBLAS's threads as it loaded
from xpnn.devices.numpy import blas
spun = 0.0
for _ in range(6):
    after = a @ a
    start = time.process_time()
    time.sleep(0.03)  # this thread sleeps: any CPU time now is BLAS's threads spinning
    spun += time.process_time() - start
print(spun * 1e3, np.array_equal(before, after), "OPENBLAS_THREAD_TIMEOUT" in os.environ)
"""


def _spin_ms(**env):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT",
                                                           "XPNN_BLAS")} | env
    done = subprocess.run([sys.executable, "-c", _SPIN_PROBE], capture_output=True, text=True,
                          env=dict(env, OPENBLAS_NUM_THREADS="2"), timeout=120, check=True)
    spun, same, left_set = done.stdout.split()
    return float(spun), same == "True", left_set == "True"


def test_openblas_threads_sleep_soon_after_a_product():
    """Loading xpnn's BLAS shortens how long OpenBLAS's threads spin after a product (they
    held the core xpnn's own threads wanted next); the products are bit for bit the same,
    the environment is left as it was, and a user's OPENBLAS_THREAD_TIMEOUT or
    XPNN_BLAS=numpy leaves OpenBLAS as it is."""
    if not _numpy_blas_is_scipy_openblas():
        pytest.skip("this NumPy is not built with scipy-openblas")
    short, same, left_set = _spin_ms()
    long_, same_long, left_long = _spin_ms(OPENBLAS_THREAD_TIMEOUT="28")
    if long_ < 5.0:
        pytest.skip(f"OpenBLAS's threads did not spin here ({long_:.1f} ms): nothing to shorten")
    assert same and same_long
    assert not left_set and left_long  # ours removed again; the user's kept
    assert short < 0.25 * long_, (short, long_)


class _CountedOpenBlas:
    """A stand-in library exporting the two functions ``_shorten_spin`` calls."""

    def __init__(self):
        self.calls = []
        self.openblas_read_env = lambda: self.calls.append("read_env")
        self.blas_thread_shutdown_ = lambda: self.calls.append("shutdown")


def test_a_users_thread_timeout_or_xpnn_blas_numpy_leaves_openblas_alone(monkeypatch):
    """A user's OPENBLAS_THREAD_TIMEOUT is theirs: nothing is read again or stopped; and
    XPNN_BLAS=numpy does not load the library at all, so nothing reaches ``_shorten_spin``."""
    library = _CountedOpenBlas()
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")
    assert blas._shorten_spin(library) is False
    assert library.calls == [] and os.environ["OPENBLAS_THREAD_TIMEOUT"] == "28"
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT")
    assert blas._shorten_spin(library) is True
    assert library.calls == ["read_env", "shutdown"]
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ  # set for OpenBLAS's read alone
    reached = []
    monkeypatch.setattr(blas, "_shorten_spin", reached.append)
    monkeypatch.setenv("XPNN_BLAS", "numpy")
    blas._load()
    assert reached == []


def test_shorten_spin_needs_openblas_functions(monkeypatch):
    """Another BLAS or a build without the two functions: nothing changes."""
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)

    class OtherBlas:
        pass

    assert blas._shorten_spin(OtherBlas()) is False
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
