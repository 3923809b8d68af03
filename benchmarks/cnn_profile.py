"""Where the time of ``cnn_mnist.py``'s training step goes, op by op: xpnn on the NumPy CPU
device (each step of its plan timed, wall and process CPU time, and the in-place Adam
commit) against PyTorch CPU eager (``torch.profiler``: each top-level forward op, autograd
node and ``Adam.step`` of the same net, from the same weights, on the same batches).
Medians over the steps; then whole steps without timers, interleaved, wall and process CPU
time. The load average is printed next to the results.

    PYTHONPATH=. python benchmarks/cnn_profile.py --data ../shared/datasets/mnist --steps 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cnn_mnist import load, make_torch, make_xpnn  # noqa: E402

from xpnn.executor import _frees, straight_line  # noqa: E402

_FAMILIES = {"Conv2DBackpropFilter": "Conv2D", "Conv2DBackpropInput": "Conv2D",
             "BiasAddGrad": "BiasAdd", "MaxPoolGrad": "MaxPool", "ReluGrad": "Relu"}


def _labels(plan):
    """A name per value step: its op type and layer (gradients numbered as their forward)."""
    counts, seen, labels = defaultdict(int), defaultdict(int), {}
    for step in plan.steps:
        if step.kind == "value" and step.op.type not in _FAMILIES:
            counts[step.op.type] += 1
    for step in plan.steps:
        if step.kind != "value":
            continue
        kind = step.op.type
        family = _FAMILIES.get(kind)
        k = seen[kind]
        seen[kind] += 1
        layer = counts[family] - k if family else k + 1
        labels[id(step)] = f"{kind} {layer}" if counts[family or kind] > 1 else kind
    return labels


def _timed(fn, label, times):
    def timed(*args):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args)
        times[label].append((time.perf_counter() - wall, time.process_time() - cpu))
        return result

    return timed


def xpnn_profile(model, run, X, y, steps, batch):
    """{label: [(wall, cpu) per step]} of every plan step and the commit."""
    run(X, y, np.arange(2 * batch), batch)  # compiles the plan
    executor = max(model.session._executors.values(), key=lambda e: len(e.plan.steps))
    times, labels = defaultdict(list), _labels(executor.plan)
    for step in executor.plan.steps:
        if step.kind == "value":
            step.fn = _timed(step.fn, labels[id(step)], times)
    executor.call = executor.program = straight_line(executor.plan.steps,
                                                     _frees(executor.plan))
    executor.commit = _timed(executor.commit, "Adam (in place, all Variables)", times)
    times.clear()
    run(X, y, np.arange(steps * batch) % len(X), batch)
    return times


def torch_net(model):
    """cnn_mnist.py's PyTorch net (NCHW) from xpnn's weights, and its Adam."""
    import torch

    captured = {}
    real_adam = torch.optim.Adam

    def adam(params, lr):  # make_torch's optimizer, kept to step it here
        captured["opt"] = real_adam(params, lr=lr)
        captured["params"] = captured["opt"].param_groups[0]["params"]
        return captured["opt"]

    torch.optim.Adam = adam
    try:
        run, _ = make_torch(model, "cpu")
    finally:
        torch.optim.Adam = real_adam
    return run, captured["params"], captured["opt"]


def torch_explicit(params, opt, times):
    """fn(X, y, order, batch): the same step as autograd runs it, each kernel called by its
    ATen name (the ones autograd calls, with the same arguments) and timed."""
    import torch

    aten = torch.ops.aten
    w1, b1, w2, b2, w3, b3 = params
    conv = ([1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    pool = ([2, 2], [2, 2], [0, 0], [1, 1], False)

    def op(label, fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args)
        times[label].append((time.perf_counter() - wall, time.process_time() - cpu))
        return result

    def conv_grads(n, g, x, w, bias, need_input):  # as autograd: one call for all three
        return op(f"conv {n} backward (input, filter, bias)", aten.convolution_backward, g, x,
                  w, bias, *conv, [need_input, True, True])

    def step(xb, yb):
        c1 = op("conv 1 (bias fused)", aten.convolution, xb, w1, b1, *conv)
        r1 = op("relu 1", aten.relu, c1)
        p1, i1 = op("pool 1", aten.max_pool2d_with_indices, r1, *pool[:2])
        c2 = op("conv 2 (bias fused)", aten.convolution, p1, w2, b2, *conv)
        r2 = op("relu 2", aten.relu, c2)
        p2, i2 = op("pool 2", aten.max_pool2d_with_indices, r2, *pool[:2])
        d, mask = op("dropout", aten.native_dropout, p2.flatten(1), 0.5, True)
        logits = op("dense", aten.addmm, b3, d, w3.t())
        ls = op("softmax + loss", aten._log_softmax, logits, 1, False)
        loss = op("softmax + loss", aten.nll_loss_forward, ls, yb, None, 1, -100)
        g = op("softmax + loss grad", aten.nll_loss_backward, torch.ones_like(loss[0]), ls, yb,
               None, 1, -100, loss[1])
        g = op("softmax + loss grad", aten._log_softmax_backward_data, g, ls, 1, ls.dtype)
        gw3 = op("dense grads", aten.mm, g.t(), d)
        gb3 = op("dense grads", aten.sum, g, [0])
        gd = op("dense grads", aten.mm, g, w3)
        gd = op("dropout grad", aten.native_dropout_backward, gd, mask, 2.0)
        gr2 = op("pool 2 grad", aten.max_pool2d_with_indices_backward, gd.view(p2.shape), r2,
                 *pool, i2)
        gc2 = op("relu 2 grad", aten.threshold_backward, gr2, r2, 0)
        gp1, gw2, gb2 = conv_grads(2, gc2, p1, w2, [64], True)
        gr1 = op("pool 1 grad", aten.max_pool2d_with_indices_backward, gp1, r1, *pool, i1)
        gc1 = op("relu 1 grad", aten.threshold_backward, gr1, r1, 0)
        _, gw1, gb1 = conv_grads(1, gc1, xb, w1, [32], False)
        for p, g in zip(params, (gw1, gb1, gw2, gb2, gw3, gb3)):
            p.grad = g
        op("Adam (all parameters)", opt.step)

    def run(X, y, order, batch_size):
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                step(torch.from_numpy(X[idx].transpose(0, 3, 1, 2).copy()),
                     torch.from_numpy(y[idx]))

    return run


def torch_profile(model, X, y, steps, batch):
    """{label: [(wall, cpu)...]} of each kernel of torch's step, called explicitly."""
    times = defaultdict(list)
    _, params, opt = torch_net(model)
    run = torch_explicit(params, opt, times)
    run(X, y, np.arange(2 * batch), batch)
    times.clear()
    run(X, y, np.arange(steps * batch) % len(X), batch)
    return times


def table(title, times, steps):
    print(f"\n{title}: median ms per step over {steps} steps")
    print(f"  {'':<44}{'wall':>8}{'CPU':>8}   share of the wall sum")
    rows = []
    for label, got in times.items():
        n = len(got) // steps or 1
        per_step = [sum(w for w, _ in got[i * n:(i + 1) * n]) for i in range(len(got) // n)]
        cpus = [sum(c for _, c in got[i * n:(i + 1) * n]) for i in range(len(got) // n)] \
            if got[0][1] is not None else None
        rows.append((statistics.median(per_step) * 1e3,
                     statistics.median(cpus) * 1e3 if cpus else None, label))
    total = sum(r[0] for r in rows)
    for wall, cpu, label in sorted(rows, reverse=True):
        cpu_text = f"{cpu:8.2f}" if cpu is not None else "       -"
        print(f"  {label:<44}{wall:8.2f}{cpu_text}   {100 * wall / total:5.1f}%")
    print(f"  {'sum':<44}{total:8.2f}")


def whole_steps(runners, X, y, steps, batch, chunk=5):
    """Median wall and process-CPU ms per step of each runner, interleaved in chunks."""
    got = {name: ([], []) for name in runners}
    for start in range(0, steps, chunk):
        order = np.arange(start * batch, (start + chunk) * batch) % len(X)
        for name, run in runners.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run(X, y, order, batch)
            got[name][0].append((time.perf_counter() - wall) / chunk)
            got[name][1].append((time.process_time() - cpu) / chunk)
    print(f"\nwhole steps, {steps} each, interleaved in chunks of {chunk} (median per chunk):")
    for name, (walls, cpus) in got.items():
        print(f"  {name:<6} wall {1e3 * statistics.median(walls):7.2f} ms   "
              f"process CPU {1e3 * statistics.median(cpus):7.2f} ms")
    names = list(runners)
    if len(names) == 2:
        a, b = (got[n] for n in names)
        print(f"  {names[0]} / {names[1]}: wall "
              f"{statistics.median(x / z for x, z in zip(a[0], b[0])):.3f}, CPU "
              f"{statistics.median(x / z for x, z in zip(a[1], b[1])):.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--skip", default="", help="leave parts out: whole,xpnn,torch")
    args = p.parse_args(argv)
    args.limit, skip = None, set(args.skip.split(","))
    X, y, _, _ = load(args)
    import torch

    if os.environ.get("XPNN_THREADS"):  # one thread count for all: OPENBLAS_NUM_THREADS too
        torch.set_num_threads(int(os.environ["XPNN_THREADS"]))
    print(f"load average {os.getloadavg()}, torch {torch.__version__} "
          f"{torch.get_num_threads()} threads, XPNN_THREADS={os.environ.get('XPNN_THREADS')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    if "whole" not in skip:
        model, run_xpnn = make_xpnn("cpu")
        whole_steps({"xpnn": run_xpnn, "torch": make_torch(model, "cpu")[0]}, X, y,
                    args.steps, args.batch_size)
    if "xpnn" not in skip:
        table("xpnn (NumPy CPU device)",
              xpnn_profile(*make_xpnn("cpu"), X, y, args.steps, args.batch_size), args.steps)
    if "torch" not in skip:
        table("torch CPU eager (NCHW, each ATen kernel autograd runs, called and timed alone)",
              torch_profile(make_xpnn("cpu")[0], X, y, args.steps, args.batch_size),
              args.steps)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
