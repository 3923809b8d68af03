"""One test session per backend (`nox -s "tests(backend='numpy')"`), a gpu-tagged
`tests_cupy`, `tests_tf1` (TensorFlow 1 as the oracle) and `lint`."""

import shutil

import nox

nox.options.sessions = ["tests", "lint"]


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict", "torch", "jax"])
def tests(session, backend):
    session.install("-e", ".[test]")
    if backend == "torch":
        session.install("torch==2.13.0")  # the CPU build; a bare `torch` pulls CUDA wheels
    if backend == "jax":
        session.install("jax==0.10.2")  # the tests switch on its x64 mode (tests/conftest.py)
    session.run("pytest", "-q", f"--xp={backend}", *session.posargs)


@nox.session
def tests_tf1(session):
    """xpnn against real TensorFlow 1 (tf.compat.v1) as the oracle (tests/test_tf1_oracle.py)."""
    session.install("-e", ".[test]", "tensorflow-cpu")
    session.run("pytest", "-q", "tests/test_tf1_oracle.py", *session.posargs)


@nox.session(tags=["gpu"])
def tests_cupy(session):
    if shutil.which("nvidia-smi") is None:
        session.skip("no NVIDIA driver (nvidia-smi not found)")
    session.install("-e", ".[test,cuda]")
    session.run("pytest", "-q", "--xp=cupy", *session.posargs)


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "xpnn", "tests", "examples", "benchmarks", "noxfile.py")
