"""JAX: its Device and its executor (``runner.Runner``, what ``compile`` returns), whose
pass makes the whole plan one ``jax.jit`` function, so a training step (forward, backward,
every optimizer update) is one XLA call. One concept a file:

- ``layout``: which slots go in (feeds; Variables, donated or kept) and come out;
- ``body``: the function that is traced: the plan's portable steps, then its updates;
- ``kernels``: what is traced in place of some ops' portable forward (``conv``: the
  max-pool gradient over tiling windows, by reshapes; ``cross_entropy``: the sparse
  cross-entropy's gradient by a scatter);
- ``draws``: random ops' host draws made per run and passed in (the portable values);
- ``hyper``: optimizer hyper-parameters as arguments, or keys of the compilation cache;
- ``checks``: check_numerics ops counting NaNs and infinities, read after the call;
- ``fed``: fed values that ops read (labels, a dropout rate) checked on the host, before
  the call;
- ``runner``: the executor: the pass, the cache per feed shapes, the call, the commit of
  the new values it made, the fall-back to the portable program, and the repeat of the
  last call for the Session's repeated run (``Executor.repeat``).

``Session(passes=False)`` (or ``$XPNN_PASSES=0``) keeps the portable eager path, the reference
``tests/devices/jax/test_jax_jit.py`` compares this pass with.

>>> import xpnn as xn
>>> sess = xn.Session(backend="jax", graph=xn.Graph())
>>> with sess.graph.as_default():
...     w = xn.Variable([1.0, 2.0])
...     sess.run(xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w)))
>>> [runner.eager for runner in sess._executors.values()], sess.run(w).tolist()
([False], [0.0, 0.0])
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ...dtypes import dtype_name
from ...executor import Program
from .. import Device, host_array, library
from .control_flow import JaxControlFlow
from .runner import Runner


class JaxDevice(Device):
    """JAX turns every float64 request into float32 (and int64 into int32) unless its x64
    mode is on: refuse instead of computing in a precision nobody asked for. (Turning x64 on
    here would change JAX's defaults for the user's whole program.) Its Sessions compile
    each plan into one ``jax.jit`` function (this package's pass) that donates the
    Variables' buffers: so the Session hands out copies of the values it keeps, and keeps
    no array that someone else holds."""

    backend = "jax"
    old_switch = "XPNN_JIT"
    control_flow = JaxControlFlow()

    @property
    def reads_without_sync(self) -> bool:
        return self.device.platform == "cpu"

    def dtype(self, name) -> Any:
        dtype = super().dtype(name)
        self._check(dtype)
        return dtype

    def from_host(self, value, dtype=None, copy=False):
        host = host_array(value, dtype)
        self._check(host.dtype)
        # Always a copy: jax.device_put may alias the host array on the CPU, and an immutable
        # JAX array must not see later writes to it. (device_put: jnp.asarray(x, device=) is
        # several times slower.)
        import jax

        return jax.device_put(np.array(host, copy=True), self.device)

    def hand_out(self, value):
        return value.copy()  # the live buffer may be donated to a later step

    def keep(self, value, inputs):
        # A new value that is one of the update's inputs (an assign step) would be shared
        # with another Variable or a feed: a later step donating one would delete both.
        return value.copy() if any(value is i for i in inputs) else value

    def body_executor(self, plan, session) -> Program:
        if session.passes and not session.check_numerics:  # the kernels of the plan around
            from . import kernels, runner

            runner.register_kernels()
            kernels.swap_in(plan)
        return Program(plan)  # traced inline, inside the plan's own jit

    def compiling(self):
        import jax

        return jax.ensure_compile_time_eval()  # a body's constants are made, not traced

    def compile(self, plan, session) -> Runner:
        return Runner(plan, session)

    @staticmethod
    def _check(dtype) -> None:
        name = dtype_name(dtype)
        narrow = _NEEDS_X64.get(name)
        if narrow is None:
            return
        import jax

        if jax.dtypes.canonicalize_dtype(np.dtype(name)) != np.dtype(name):
            lost = "" if narrow.startswith("float") else " (2**40 would become 0)"
            raise RuntimeError(
                f"{name} asked for on JAX, but JAX is in its default 32-bit mode and would "
                f"compute in {narrow}{lost}: set JAX_ENABLE_X64=1 in the environment, or call "
                'jax.config.update("jax_enable_x64", True) before any JAX array is made '
                f"(or ask for {narrow})"
            )


# JAX's 64-bit dtypes, which it turns into their 32-bit ones unless its x64 mode is on.
_NEEDS_X64 = {"float64": "float32", "int64": "int32", "uint64": "uint32"}


def open_device(device, kind, index) -> JaxDevice:
    """The JAX device for ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``devices.resolve``)."""
    if kind not in ("cpu", "cuda", "gpu"):
        raise ValueError(f"backend 'jax' takes device 'cpu' or 'cuda[:N]', not {device!r}")
    jax = library("jax", device, "JAX", "pip install jax")
    platform = "cpu" if kind == "cpu" else "gpu"
    try:
        found = jax.devices(platform)
    except RuntimeError as exc:  # no GPU backend in this jax install
        raise RuntimeError(f"device {device!r}: JAX sees no {platform} device ({exc})") from exc
    idx = int(index or 0)
    if idx >= len(found):
        raise ValueError(f"device {device!r}: JAX sees only {len(found)} {platform} device(s)")
    xp = array_api_compat.array_namespace(jax.numpy.empty(0))
    return JaxDevice(device, xp, found[idx])


def to_numpy(array) -> np.ndarray:
    """A JAX array on the host (``xpnn.to_numpy``)."""
    return np.array(array)  # np.asarray would be a read-only view of JAX's buffer
