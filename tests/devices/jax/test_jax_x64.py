"""JAX in its default 32-bit mode turns float64 into float32 and int64 into int32 silently:
xpnn must refuse every float64 or int64 request there instead, saying how to turn x64 on.
The test run itself has x64 on (conftest), so this runs in a fresh interpreter with
JAX_ENABLE_X64=0."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import pytest
    import xpnn as xn

    import jax
    assert not jax.config.jax_enable_x64, "the test needs JAX in its 32-bit mode"
    FIX = r"JAX_ENABLE_X64=1.*jax\\.config\\.update\\(\\"jax_enable_x64\\", True\\)"

    dev = xn.devices.resolve("cpu", backend="jax")
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
        x = xn.placeholder("float64", (2,), name="x")
        sess = xn.Session(backend="jax")
        for fed in ([1.0, 2.0], np.array([1.0, 2.0])):  # an array of its dtype: no cast to check
            with pytest.raises(RuntimeError, match="placeholder x: .*" + FIX):
                sess.run(x * 2.0, feed_dict={x: fed})

    # int64 likewise: JAX would make it int32, and 2**40 would become 0.
    INT = r"int64 asked for on JAX.*would compute in int32.*" + FIX + r".*or ask for int32"
    with pytest.raises(RuntimeError, match=INT):
        dev.from_host(np.array([2**40]))
    with xn.Graph().as_default():
        i = xn.Variable(np.array([2**40, 1]), dtype="int64", trainable=False, name="i")
        with pytest.raises(RuntimeError, match="Variable i: " + INT):
            xn.Session(backend="jax").run(i)
    with xn.Graph().as_default():
        t = xn.placeholder("int64", (2,), name="t")
        sess = xn.Session(backend="jax")
        for fed in (np.array([2**40, 1]), [2**40, 1], np.array([3, 1], np.int32)):
            with pytest.raises(RuntimeError, match="placeholder t: " + INT):
                sess.run(t + 1, feed_dict={t: fed})
    with xn.Graph().as_default():
        u = xn.placeholder(name="u")  # untyped: NumPy's int64 data asks for int64
        with pytest.raises(RuntimeError, match=INT):
            xn.Session(backend="jax").run(u + 1, feed_dict={u: np.array([2**40, 1])})
    with xn.Graph().as_default():  # int64 data fed to an int32 placeholder: cast if it fits
        t = xn.placeholder("int32", (2,), name="t")
        sess = xn.Session(backend="jax")
        assert sess.run(t + 1, feed_dict={t: np.array([3, -4])}).tolist() == [4, -3]
        with pytest.raises(ValueError, match=r"placeholder t holds int32 but was fed the value "
                                             r"1099511627776"):
            sess.run(t + 1, feed_dict={t: np.array([2**40, 1])})

    # A cast to int64 or float64, or int32 / int32 (TF1's truediv: float64), would run in
    # 32 bits while its static dtype says 64 (float32 3e9 became int32 2147483647).
    with xn.Graph().as_default():
        f = xn.placeholder("float32", name="f")
        sess = xn.Session(backend="jax")
        with pytest.raises(RuntimeError, match="Cast wide: " + INT):
            sess.run(xn.cast(f, "int64", name="wide"), feed_dict={f: np.array([3e9], np.float32)})
        with pytest.raises(RuntimeError, match="Cast fine: float64 asked for on JAX.*" + FIX):
            sess.run(xn.cast(f, "float64", name="fine"), feed_dict={f: [1.0]})
        k = xn.constant(np.array([7], np.int32))
        with pytest.raises(RuntimeError, match="Divide ratio: float64 asked for on JAX"):
            sess.run(xn.divide(k, k, name="ratio"))
        assert sess.run(xn.cast(f, "int32"), feed_dict={f: [3.0]}).tolist() == [3]

    # NNClassifier's labels (int64 from NumPy) run as int32: fit works as with x64.
    X, y = xn.data.make_moons(64, noise=0.1, seed=0)
    assert y.dtype == np.int64
    model = xn.nn.NNClassifier([2, 8, 2], backend="jax", seed=0)
    history = model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    on_numpy = xn.nn.NNClassifier([2, 8, 2], seed=0)
    expected = on_numpy.fit(X, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-4)
    assert model.evaluate(X, y)[1] == on_numpy.evaluate(X, y)[1]

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
    assert xn.devices.resolve("cpu", backend="jax") is dev
    with pytest.raises(ValueError, match=message):
        xn.devices.resolve(device, backend="jax")
    with pytest.raises(ValueError, match=r"JAX sees only \d+ cpu device"):
        xn.devices.resolve("cpu:7", backend="jax")
