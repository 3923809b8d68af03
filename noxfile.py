"""One test session per backend (`nox -s "tests(backend='numpy')"`), a gpu-tagged
`tests_cupy`, `tests_tf1` (TensorFlow 1 as the oracle) and `lint`.

`tests_cupy` works offline too, as on the GPU machines lent here (no network): carry the
folder of wheels that benchmarks/gpu_check.sh uses, made where PyPI is reachable,

    pip download --no-deps -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1 \
        hypothesis sortedcontainers

and run `XPNN_WHEELS=.whl nox -s tests_cupy`: pip then installs from that folder alone
(`--no-index --find-links`), and CuPy, NumPy and pytest come from the machine's own
site-packages, which the session's virtualenv sees (add wheels for any it lacks). The suite
runs from the checkout (pytest's `pythonpath`), so xpnn itself needs no install there.
"""

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint"]


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict", "torch", "jax", "cupy_standin"])
def tests(session, backend):
    # The MPI tests (tests/distributed/test_distributed.py) run in one session; elsewhere they skip.
    # tensorboard: the reader the tf.summary tests read event files back with
    # onnx: the exported models tests/onnx runs in onnxruntime
    extras = "test,summary,onnx,mpi" if backend == "numpy" else "test,summary,onnx"
    session.install("-e", f".[{extras}]", "tensorboard", "scikit-learn")  # check_estimator
    if backend == "torch":
        session.install("torch==2.13.0")  # the CPU build; a bare `torch` pulls CUDA wheels
    if backend == "jax":
        session.install("jax==0.10.2")  # the tests switch on its x64 mode (tests/conftest.py)
    session.run("pytest", "-q", f"--xp={backend}", *session.posargs)


@nox.session
def tests_tf1(session):
    """xpnn against real TensorFlow 1 (tf.compat.v1) as the oracle: its optimizers
    (tests/compat/test_tf1_oracle.py) and xpnn.compat.v1 running TF 1.x programs unchanged
    (tests/compat/test_compat_v1_oracle.py); tf_keras for tf.layers under Keras 3."""
    session.install("-e", ".[test,summary]", "tensorflow-cpu", "tf_keras", "tensorboard")
    session.run("pytest", "-q", "tests/compat/test_tf1_oracle.py",
                "tests/compat/test_compat_v1_oracle.py", "tests/compat/test_compat_v1_summary.py",
                *session.posargs, env={"TF_CPP_MIN_LOG_LEVEL": "3"})


# Offline, the test dependencies come from $XPNN_WHEELS; CuPy and NumPy from the machine.
OFFLINE_TEST_PACKAGES = ["array-api-compat>=1.16", "array-api-strict>=2.6.1", "pytest>=8",
                         "hypothesis>=6"]


@nox.session(tags=["gpu"], venv_params=["--system-site-packages"])
def tests_cupy(session):
    if shutil.which("nvidia-smi") is None:
        session.skip("no NVIDIA driver (nvidia-smi not found)")
    wheels = os.environ.get("XPNN_WHEELS")
    if wheels:
        session.install("--no-index", "--find-links", wheels, *OFFLINE_TEST_PACKAGES)
    else:
        session.install("-e", ".[test,cuda]")
    # The venv's python, which sees the machine's packages too (a bare `pytest` could be the
    # machine's own, outside the venv). A CuPy test that cannot run fails, not skips.
    session.run("python", "-m", "pytest", "-q", "--xp=cupy", *session.posargs,
                env={"XPNN_REQUIRE_CUPY": "1"})


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "xpnn", "tests", "examples", "benchmarks", "noxfile.py")
