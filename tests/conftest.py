"""Run each backend-generic test on every selected array namespace.

Select with ``pytest --xp numpy,torch`` or ``XPNN_XP=...``; ``all`` means every one in
``DEVICES``, each not installed here (or CuPy without a GPU) skipped with the reason. The
default is ``numpy,array_api_strict`` (strict on ``Device("device1")``, our stand-in for a
GPU: any array created on the wrong device fails there). JAX runs in its x64 mode.
``cupy_standin`` is the CuPy device's rules over NumPy (``xpnn.devices.cupy_standin``: no
value read on the host, fed data copied, the CuPy pass run by its reference fuser), so CI
catches without a GPU what would fail on one; a test that needs real CuPy skips saying so.

``@pytest.mark.backends("jax")`` runs a ``dev`` test only on those of the selected backends.
With ``XPNN_REQUIRE_CUPY=1`` (benchmarks/gpu_check.sh sets it) a CuPy test that cannot run
fails instead of skipping, so a GPU check cannot pass by running nothing.
The doctests of ``xpnn/devices/torch`` and ``xpnn/devices/jax`` skip, with the reason, where
their library is not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xpnn import devices, dtypes
from xpnn.devices.cupy_standin import stand_in
from xpnn.host import to_numpy

# backend name -> the device a Session is opened on for that backend
DEVICES = {
    "numpy": "cpu",
    "array_api_strict": "device1",
    "torch": "cpu",
    "jax": "cpu",
    "cupy": "cuda",
    # The CuPy device's rules over NumPy arrays (xpnn.devices.cupy_standin): no host reads,
    # fed data copied, the CuPy pass run by its reference fuser. Runs without a GPU.
    "cupy_standin": "cpu",
}
DEFAULT = "numpy,array_api_strict"
# package folder -> (the library its modules or doctests need, how to install it)
DOCTESTS_NEED = {
    "devices/torch": ("torch", "pip install torch==2.13.0"),
    "devices/jax": ("jax", "pip install jax==0.10.2"),
}
PACKAGE = Path(__file__).resolve().parents[1] / "xpnn"


def pytest_addoption(parser):
    parser.addoption(
        "--xp",
        default=None,
        help=f"comma-separated backends to test ({', '.join(DEVICES)}, or 'all'); "
        f"default $XPNN_XP or {DEFAULT}",
    )


def _selected(config) -> list[str]:
    raw = config.getoption("--xp") or os.environ.get("XPNN_XP") or DEFAULT
    names = list(DEVICES) if raw == "all" else [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in DEVICES]
    if unknown:
        raise pytest.UsageError(f"--xp: unknown backend(s) {unknown}; choose from {list(DEVICES)}")
    return names


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backends(*names): run this dev test only on these of the selected backends"
    )
    # float64 and int64 on JAX need its x64 mode, switched on before any JAX array exists
    # (SciPy does the same for its JAX tests); without it xpnn refuses both, which
    # test_jax_x64.py checks in a fresh interpreter. On wherever JAX is installed, selected
    # or not: the JAX pass's own tests and doctests run whenever JAX imports.
    if _unavailable("jax") is None:
        import jax

        jax.config.update("jax_enable_x64", True)
    # A conftest's collection hooks reach only the files under its own folder; a plugin
    # registered here reaches xpnn/ too, whose doctests --doctest-modules collects.
    config.pluginmanager.register(OptionalDoctests(), "xpnn-optional-doctests")


class OptionalDoctests:
    """Skip, with the reason, the doctest modules of a backend that is not installed."""

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(self, file_path, parent):
        collectors = yield
        reason = _doctests_unavailable(Path(file_path))
        if reason is None or not collectors:
            return collectors
        return [SkippedDoctests.from_parent(parent, path=file_path, reason=reason)]


def _doctests_unavailable(path: Path) -> str | None:
    """Why the doctests of ``path`` (an xpnn module) cannot run here, or None."""
    if path.suffix != ".py" or not path.is_relative_to(PACKAGE):
        return None
    folder = "/".join(path.relative_to(PACKAGE).parts[:2])
    if folder not in DOCTESTS_NEED:
        return None
    library, install = DOCTESTS_NEED[folder]
    if _unavailable(library) is None:
        return None
    return f"doctests of xpnn/{folder}/{path.name} need {library}, not installed ({install})"


class SkippedDoctests(pytest.File):
    """Stands in for the doctest module of ``path``: collecting it skips with ``reason``
    (importing the module itself could fail without its library)."""

    def __init__(self, *, reason, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason

    def collect(self):
        pytest.skip(self.reason)


def _unavailable(name: str) -> str | None:
    """Why a backend cannot run here, or None."""
    if name == "cupy":
        try:
            import cupy
        except ImportError:
            return "cupy is not installed (pip install 'xpnn[cuda]')"
        try:
            if cupy.cuda.runtime.getDeviceCount() == 0:
                return "no CUDA device"
        except Exception:
            return "no CUDA device" + ("" if shutil.which("nvidia-smi") else " (no nvidia-smi)")
        return None
    if name == "cupy_standin":
        return None  # NumPy only
    try:
        __import__(name)
    except ImportError:
        return f"{name} is not installed"
    return None


def pytest_generate_tests(metafunc):
    if "dev" in metafunc.fixturenames:
        names = _selected(metafunc.config)
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:
            wanted = "/".join(only.args)
            if set(only.args) - set(DEVICES):
                raise pytest.UsageError(
                    f"{metafunc.function.__name__}: @pytest.mark.backends({wanted}) names an "
                    f"unknown backend; choose from {list(DEVICES)}"
                )
            names = [n for n in names if n in only.args]
            if not names:
                skip = pytest.mark.skip(reason=f"runs on {wanted} only: add it to --xp")
                metafunc.parametrize("dev", [pytest.param(None, marks=skip)], ids=["none"])
                return
        metafunc.parametrize("dev", names, indirect=True, ids=names)


@pytest.fixture
def dev(request):
    """The :class:`xpnn.devices.Device` under test (``dev.xp`` is its namespace)."""
    name = request.param
    reason = _unavailable(name)
    if reason:
        skip_or_fail(f"{name}: {reason}", cupy=name == "cupy")
    if name == "cupy_standin":  # a new one each test: its fuser lists that test's kernels
        return stand_in()
    return devices.resolve(DEVICES[name], backend=name)


@contextlib.contextmanager
def environment(name: str, value: str):
    """``os.environ[name] = value`` inside the block, the old value (or none) after it."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def skip_or_fail(reason: str, cupy: bool) -> None:
    """Skip, or fail for CuPy where ``XPNN_REQUIRE_CUPY`` says it must run."""
    if cupy and os.environ.get("XPNN_REQUIRE_CUPY"):
        pytest.fail(f"{reason}, but XPNN_REQUIRE_CUPY is set", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def xp(dev):
    return dev.xp


@pytest.fixture
def on(dev):
    """compat.v1: tf.Session()s run on the backend under test, in a fresh default graph."""
    import xpnn.compat.v1 as tf

    tf.use_device(dev)
    tf.reset_default_graph()
    yield dev
    tf.use_device()


def tolerance(dtype) -> dict:
    """rtol/atol for comparing results computed in ``dtype``."""
    name = dtypes.dtype_name(dtype)
    return {"float64": dict(rtol=1e-10, atol=1e-12), "float16": dict(rtol=1e-2, atol=1e-3)}.get(
        name, dict(rtol=2e-5, atol=1e-6)
    )


def assert_close(actual, expected, dtype="float32", **kw):
    """Compare a backend array with a NumPy expectation on the host."""
    tol = tolerance(dtype)
    tol.update(kw)
    np.testing.assert_allclose(to_numpy(actual), np.asarray(expected), **tol)


def peak_memory_of_failure(call, match, error=ValueError) -> int:
    """Peak traced memory (bytes) while ``call()`` raises ``error`` matching ``match``."""
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
