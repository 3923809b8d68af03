"""The conv kernels of ``xpnn/devices/numpy/conv.py`` against the portable ops they replace:
forward and backward of conv 3x3 SAME 1->32, ReLU, max-pool 2x2, conv 3x3 SAME 32->64,
max-pool 2x2 on a (128, 28, 28, 1) float32 batch. Prints ms per op (portable forward vs
NumPy kernel on the same inputs), then ms per whole step: a NumPy Session with the
portable conv ops, with the kernels, and PyTorch CPU (if importable), in one run.

    PYTHONPATH=. python benchmarks/conv_kernels.py --repeat 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import xpnn as xn
from xpnn.devices.numpy import kernels
from xpnn.plan import Description

CONV_OPS = [xn.conv.Conv2D, xn.conv.Conv2DBackpropInput, xn.conv.Conv2DBackpropFilter,
            xn.conv.MaxPool, xn.conv.MaxPoolGrad]


def weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 28, 28, 1)).astype(np.float32)
    w1 = (rng.standard_normal((3, 3, 1, 32)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((3, 3, 32, 64)) * 0.1).astype(np.float32)
    return x, w1, w2


def build(x, w1, w2):
    images = xn.placeholder(shape=x.shape, name="x")
    v1, v2 = xn.Variable(w1, name="w1"), xn.Variable(w2, name="w2")
    h = xn.max_pool2d(xn.relu(xn.conv2d(images, v1, padding="SAME")), 2, 2, "VALID")
    h = xn.max_pool2d(xn.conv2d(h, v2, padding="SAME"), 2, 2, "VALID")
    loss = xn.reduce_sum(h)
    return images, loss, xn.gradients(loss, [v1, v2])


def best_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def per_op(x, w1, w2, repeat):
    """Each conv op of the step, on the arrays the step hands it."""
    xp = xn.devices.resolve("cpu").xp
    window, pool = xn.conv.Window(padding="SAME"), xn.conv.Window((2, 2), (1, 1), "VALID")
    with xn.Graph().as_default():
        p = [xn.placeholder() for _ in range(3)]
        c = xn.conv
        conv = c.Conv2D(p[0], p[1], window=window)
        y1 = np.maximum(conv.forward(xp, x, w1), 0)
        max_pool = c.MaxPool(p[0], ksize=(2, 2), window=pool)
        h1 = max_pool.forward(xp, y1)
        y2 = conv.forward(xp, h1, w2)
        cases = [
            ("conv1", conv, [x, w1]),
            ("conv1 dW", c.Conv2DBackpropFilter(*p, window=window), [x, w1, y1]),
            ("pool1", max_pool, [y1]),
            ("pool1 grad", c.MaxPoolGrad(*p[:2], ksize=(2, 2), window=pool), [y1, h1]),
            ("conv2", conv, [h1, w2]),
            ("conv2 dX", c.Conv2DBackpropInput(*p, window=window), [h1, w2, y2]),
            ("conv2 dW", c.Conv2DBackpropFilter(*p, window=window), [h1, w2, y2]),
            ("pool2", max_pool, [y2]),
            ("pool2 grad", c.MaxPoolGrad(*p[:2], ksize=(2, 2), window=pool),
             [y2, max_pool.forward(xp, y2)]),
        ]
    print(f"{'op':<12}{'portable ms':>13}{'fast ms':>10}{'ratio':>8}")
    for name, op, values in cases:
        values = [Description.of(v) if k in op.shape_only else v for k, v in enumerate(values)]
        fast = kernels.forward_fn(op, False, None)
        slow = best_ms(lambda op=op, values=values: op.forward(xp, *values), repeat)
        quick = best_ms(lambda fast=fast, values=values: fast(*values), repeat)
        print(f"{name:<12}{slow:>13.1f}{quick:>10.1f}{slow / quick:>7.1f}x")


def session_step(x, w1, w2, portable):
    saved = {cls: kernels.FORWARD.pop(cls) for cls in CONV_OPS} if portable else {}
    with xn.Graph().as_default():
        images, loss, grads = build(x, w1, w2)
        sess = xn.Session(device="cpu")
        sess.run(grads, {images: x})  # compiles the plan, with whichever kernels there are
    kernels.FORWARD.update(saved)
    return lambda: sess.run(grads, {images: x})


def torch_step(x, w1, w2):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    t1 = torch.from_numpy(np.ascontiguousarray(w1.transpose(3, 2, 0, 1))).requires_grad_()
    t2 = torch.from_numpy(np.ascontiguousarray(w2.transpose(3, 2, 0, 1))).requires_grad_()

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(tx, t1, padding=1)), 2)
        h = F.max_pool2d(F.conv2d(h, t2, padding=1), 2)
        return torch.autograd.grad(h.sum(), [t1, t2])

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    x, w1, w2 = weights()
    per_op(x, w1, w2, args.repeat)
    steps = {"portable": session_step(x, w1, w2, portable=True),
             "fast": session_step(x, w1, w2, portable=False)}
    if (step := torch_step(x, w1, w2)) is not None:
        steps["torch"] = step
    times = {name: [] for name in steps}
    for _ in range(args.repeat):  # interleaved: the machine's speed drifts
        for name, step in steps.items():
            times[name].append(best_ms(step, 1))
    print("forward + backward of the whole step (best of", args.repeat, "):")
    for name, ms in times.items():
        print(f"  {name:<9}{min(ms):>8.1f} ms   {min(ms) / min(times['fast']):.2f}x fast")


if __name__ == "__main__":
    main()
