"""The JAX device's pass over a compiled plan (``Device.rewrite``): the whole plan becomes
one ``jax.jit`` function, so a training step (forward, backward, every optimizer update)
is one XLA call. One concept a file:

- ``layout``: which slots go in (feeds; Variables, donated or kept) and come out;
- ``body``: the function that is traced: the plan's portable steps, then its updates;
- ``kernels``: what is traced in place of some ops' portable forward (``conv``: the
  max-pool gradient over tiling windows, by reshapes; ``cross_entropy``: the sparse
  cross-entropy's gradient by a scatter);
- ``draws``: random ops' host draws made per run and passed in (the portable values);
- ``hyper``: optimizer hyper-parameters as arguments, or keys of the compilation cache;
- ``checks``: check_numerics ops counting NaNs and infinities, read after the call;
- ``labels``: label ranges of host-fed labels checked on the host, before the call;
- ``runner``: the cache per feed shapes, the call, the fall-back to the portable program.

``Session(passes=False)`` (or ``$XPNN_PASSES=0``) keeps the portable eager path, the reference
``tests/test_jax_jit.py`` compares this pass with.

>>> import xpnn as xn
>>> sess = xn.Session(backend="jax", graph=xn.Graph())
>>> with sess.graph.as_default():
...     w = xn.Variable([1.0, 2.0])
...     sess.run(xn.train.GradientDescentOptimizer(0.5).minimize(xn.reduce_sum(w * w)))
>>> [plan.program.eager for plan in sess._plans.values()], sess.run(w).tolist()
([False], [0.0, 0.0])
"""

from __future__ import annotations

from ..backend import JaxDevice
from ..plan import bind
from . import kernels
from .checks import Checks
from .labels import LabelChecks
from .layout import Layout
from .runner import Runner


def rewrite(plan, session) -> None:
    """Compile ``plan`` (for ``session``) into one ``jax.jit`` call, where it computes
    anything. A ``check_numerics`` Session runs the portable program (its checks read every
    value on the host), through a runner all the same: it hands out copies of Variables,
    whose buffers another plan may donate."""
    if session.check_numerics:
        runner = Runner(plan, session, Layout(plan))
        plan.compiler = runner.compile
        return
    from . import conv as _conv  # noqa: F401  (registers the conv kernels; imports jax)
    from . import cross_entropy as _cross_entropy  # noqa: F401  (registers its kernel)

    checks = Checks(plan, session.xp)
    layout = Layout(plan, donate=not checks.steps)  # checks: a failed run keeps every buffer
    if not (layout.computed or plan.updates):  # nothing to compute: no call
        plan.compiler = Runner(plan, session, layout).compile
        return
    labels = LabelChecks(plan, session)  # ops that read labels read nothing once traced
    kernels.swap_in(plan)
    labels.record()
    runner = Runner(plan, session, layout, checks, labels)
    plan.compiler = runner.compile
    plan.host_feeds = True
    layout.new_slot = plan.n_slots
    plan.n_slots += 1
    for update in plan.updates:  # written from the compiled call's results (runner.commit)
        update.in_place, update.check_shapes = True, False
    plan.commit = runner.commit
    for step in plan.steps:
        if step.op is not None and step.op.random:
            bind(step, session.device, runner.draws.draw)


JaxDevice.register(rewrite)
