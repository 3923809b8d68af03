"""Per-step overhead: the series' 3->4 linear + sigmoid + BCE network (lesson 5) trained one
sample at a time. Prints microseconds per step for xpnn, hand-written NumPy and PyTorch, and
checks that the three final losses agree.

    python benchmarks/small_step.py --steps 10000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import xpnn as xn

X = np.array([[1, 3, 5], [1, 9, 5], [1, 2, 5], [0, 9, 5], [0, 0, 5]], dtype=np.float32)
Y = np.array([[1, 0, 0, 0]] * 3 + [[0, 0, 0, 0]] * 2, dtype=np.float32)
LR = 0.01


def initial_weights():
    np.random.seed(42)
    weight = np.random.randn(4, 3).astype(np.float32)
    bias = np.random.randn(4).astype(np.float32)
    return weight, bias


def numpy_loop(steps):
    """Forward, BCE with PyTorch's clamped logs and gradient, in-place SGD."""
    W, b = initial_weights()
    loss = None
    for i in range(steps):
        x, y = X[i % 5], Y[i % 5]
        p = 1.0 / (1.0 + np.exp(-(W @ x + b)))
        loss = -np.sum(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
        dz = (p - y) / np.maximum(p * (1 - p), 1e-12) * (p * (1 - p))
        W -= LR * np.outer(dz, x)
        b -= LR * dz
    return float(loss)


def torch_loop(steps):
    import torch

    W, b = initial_weights()
    weight = torch.tensor(W, requires_grad=True)
    bias = torch.tensor(b, requires_grad=True)
    opt = torch.optim.SGD([weight, bias], lr=LR)
    bce = torch.nn.BCELoss(reduction="sum")
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    loss = None
    for i in range(steps):
        opt.zero_grad()
        loss = bce(torch.sigmoid(weight @ Xt[i % 5] + bias), Yt[i % 5])
        loss.backward()
        opt.step()
    return float(loss.detach())


def xpnn_loop(steps, device="cpu", backend=None):
    W, b = initial_weights()
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(3,), name="x")
        y = xn.placeholder(shape=(4,), name="y")
        weight, bias = xn.Variable(W, name="W"), xn.Variable(b, name="b")
        p = xn.sigmoid(weight @ x + bias)
        loss = xn.losses.binary_cross_entropy(p, y, reduction="sum")
        step = xn.train.GradientDescentOptimizer(LR).minimize(loss)
        sess = xn.Session(device=device, backend=backend)
        run = sess.run
        fetches = [step, loss]
        out = None
        for i in range(steps):
            out = run(fetches, {x: X[i % 5], y: Y[i % 5]})
        return float(xn.to_numpy(out[1]))


def timed(fn, steps, clock=time.perf_counter):
    fn(50)  # warm up: plan compilation, first-call costs
    start = clock()
    loss = fn(steps)
    return (clock() - start) / steps * 1e6, loss


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: the process's CPU time, steadier on a shared machine")
    args = p.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    loops = {"xpnn": xpnn_loop, "numpy": numpy_loop}
    try:
        import torch

        torch.set_num_threads(1)
        loops["torch"] = torch_loop
    except ImportError:
        print("torch not importable: skipping the PyTorch baseline")

    best, losses = {}, {}
    for _ in range(args.repeat):  # interleaved; keep each one's best
        for name, fn in loops.items():
            us, loss = timed(fn, args.steps, clock)
            best[name] = min(best.get(name, us), us)
            losses[name] = loss
    print(f"{args.steps} steps, one sample each (best of {args.repeat}, {args.clock} clock; "
          f"load average {os.getloadavg()[0]:.2f}):")
    for name in loops:
        print(f"  {name:6s} {best[name]:7.1f} us/step   final loss {losses[name]:.7f}")
    print(f"  xpnn / numpy: {best['xpnn'] / best['numpy']:.2f}")
    if "torch" in best:
        print(f"  xpnn / torch: {best['xpnn'] / best['torch']:.2f}")
    spread = max(losses.values()) - min(losses.values())
    print(f"  final losses agree to {spread:.2e}")
    return {"us_per_step": best, "losses": losses}


if __name__ == "__main__":
    main()
