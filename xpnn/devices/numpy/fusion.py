"""ReluGrad(MaxPoolGrad(x, g), x), the backward pass of a ReLU before a max-pool, as one
kernel: the pool's gradient gives shares to window maxima only, and there x is the maximum,
so the ReLU's mask (x > 0) is the maxima's (t > 0). The pool's kernel applies it to the
pooled shares (a quarter of the entries for 2x2 windows) and the ReluGrad step passes its
input on, which spares a pass over the whole input. Products by 1 and 0 are exact, so the
result is the unfused kernels' bit for bit, NaN, infinities and signed zeros included.

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(shape=(1, 2, 2, 1))
...     loss = xn.reduce_sum(xn.max_pool2d(xn.relu(x), 2, 2, "VALID"))
...     sess = xn.Session(device="cpu")
...     dx = xn.gradients(loss, [x])[0]
...     up = sess.run(dx, {x: np.array([-1.0, 3.0, 2.0, 0.5]).reshape(1, 2, 2, 1)})
...     down = sess.run(dx, {x: np.array([-1.0, -3.0, -2.0, -0.5]).reshape(1, 2, 2, 1)})
>>> up.ravel().tolist(), down.ravel().tolist()  # all ReLU outputs 0: the mask stops all
([0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

from ... import ops
from ...ops import conv


def _passed_on(g, y):
    return g


def relu_into_pool_grad(plan, facts, skip=()) -> tuple[dict, set]:
    """Fuse each ReluGrad whose gradient input is a MaxPoolGrad of the same ``x``, read by
    that ReluGrad alone. Returns the kernel options of the pool gradients' slots
    (``relu_grad``: the portable ReluGrad, for the kernel's non-float fallback) and the
    ReluGrad slots, whose steps now pass their input on."""
    made = {step.out: step for step in plan.steps if step.kind == "value"}
    readers = {}
    for step in made.values():
        for s in step.inputs:
            readers[s] = readers.get(s, 0) + 1
    options, fused = {}, set()
    for index, step in enumerate(plan.steps):
        if step.kind != "value" or type(step.op) is not ops.ReluGrad or step.out in skip:
            continue
        dx, y = step.inputs
        pool = made.get(dx)
        if (pool is None or type(pool.op) is not conv.MaxPoolGrad or pool.inputs[0] != y
                or pool.out in skip or dx == y or readers[dx] != 1
                or dx in facts.update_reads or not facts.owned(dx, index)):
            continue
        options[pool.out] = {"relu_grad": step.fn}
        step.fn = _passed_on
        fused.add(step.out)
    return options, fused
