"""JAX in its default 32-bit mode turns float64 into float32 silently: xpnn must refuse every
float64 request there instead, saying how to turn x64 on. The test run itself has x64 on
(conftest), so this runs in a fresh interpreter with JAX_ENABLE_X64=0."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import pytest
    import xpnn as xn

    import jax
    assert not jax.config.jax_enable_x64, "the test needs JAX in its 32-bit mode"
    FIX = r"JAX_ENABLE_X64=1.*jax\\.config\\.update\\(\\"jax_enable_x64\\", True\\)"

    dev = xn.backend.resolve("cpu", backend="jax")
    with pytest.raises(RuntimeError, match=FIX):
        xn.Session(backend="jax", dtype="float64")
    with pytest.raises(RuntimeError, match=FIX):
        dev.from_host(np.ones(2))
    with pytest.raises(RuntimeError, match=FIX):
        dev.from_host([1.0], "float64")
    with pytest.raises(RuntimeError, match=FIX):
        dev.dtype("float64")

    with xn.Graph().as_default():
        w = xn.Variable(np.ones(2))  # a float64 initial value
        with pytest.raises(RuntimeError, match=FIX):
            xn.Session(backend="jax").run(w)
    with xn.Graph().as_default():
        x = xn.placeholder("float64", (2,))
        with pytest.raises(RuntimeError, match=FIX):
            xn.Session(backend="jax").run(x * 2.0, feed_dict={x: [1.0, 2.0]})

    # float32, the default, is untouched; float64 host data fed to a float32 placeholder too.
    with xn.Graph().as_default():
        w = xn.Variable([1.0, 2.0])
        x = xn.placeholder(shape=(2,))
        out = xn.Session(backend="jax").run(w * x, feed_dict={x: np.array([3.0, 4.0])})
        assert str(out.dtype) == "float32" and out.tolist() == [3.0, 8.0]
    print("ok")
    """
)


@pytest.mark.backends("jax")
def test_float64_fails_loudly_in_jax_32_bit_mode(dev):
    env = {**os.environ, "JAX_ENABLE_X64": "0", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


@pytest.mark.backends("jax")
def test_the_jax_test_run_has_x64_on(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0])
        out = xn.Session(device=dev, dtype="float64").run(w * 3.0)
    assert str(out.dtype) == "float64"


@pytest.mark.backends("jax")
def test_jax_arrays_come_home_writable_and_unshared(dev):
    a = dev.from_host(np.arange(4.0, dtype=np.float32))
    host = xn.to_numpy(a)
    host[0] = 9.0  # a view of JAX's buffer would be read-only
    assert dev.to_host(a)[0] == 0.0


@pytest.mark.backends("jax")
def test_jax_from_host_does_not_share_the_callers_array(dev):
    h = np.arange(1024, dtype=np.float32)
    a = dev.from_host(h)
    h[0] = 9.0
    assert dev.to_host(a)[0] == 0.0


@pytest.mark.backends("jax")
@pytest.mark.parametrize(
    "device, message",
    [("device1", r"backend 'jax' takes device 'cpu' or 'cuda\[:N\]', not 'device1'"),
     ("tpu:0", r"unknown device 'tpu:0'")],
)
def test_jax_device_strings(dev, device, message):
    assert xn.backend.resolve("cpu", backend="jax") is dev
    with pytest.raises(ValueError, match=message):
        xn.backend.resolve(device, backend="jax")
    with pytest.raises(ValueError, match=r"JAX sees only \d+ cpu device"):
        xn.backend.resolve("cpu:7", backend="jax")
