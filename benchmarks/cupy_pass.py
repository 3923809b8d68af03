"""xpnn's CuPy pass (``xpnn/devices/cupy``) against xpnn's portable plan on CuPy
(``XPNN_PASSES=0``): the MLP 784-512-256-10 (ReLU, batch 128) with SGD, momentum and
Adam, same initial weights and batches, interleaved in chunks. Prints each side's median
ms/step and test accuracy, the portable side's time over the pass's, and the largest
difference between the two sides' weights after training; exits non-zero when the two
disagree (weights beyond float32 drift, or accuracies more than 0.01 apart), so that
``benchmarks/gpu_check.sh`` fails on a wrong kernel, not just a slow one.

    python benchmarks/cupy_pass.py                     # on the GPU, synthetic data
    python benchmarks/cupy_pass.py --data ../shared/datasets/mnist --optimizer adam
    python benchmarks/cupy_pass.py --device standin    # the pass's NumPy stand-in (no GPU):
                                                       # checks this script, times mean nothing
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's xpnn

import numpy as np  # noqa: E402
from mlp_mnist import LEARNING_RATES, initial_weights, load, make_xpnn  # noqa: E402

import xpnn as xn  # noqa: E402
from xpnn.devices.cupy_standin import stand_in  # noqa: E402


def _portable(make):
    """``make()`` with the CuPy pass off for the Sessions it makes."""
    os.environ["XPNN_PASSES"] = "0"
    try:
        return make()
    finally:
        del os.environ["XPNN_PASSES"]


def _steps(model, step, X, y, order):
    run, inputs, labels = model.session.run, model.inputs, model.labels
    for start in range(0, len(order), 128):
        idx = order[start : start + 128]
        run(step, {inputs: X[idx], labels: y[idx]})
    xn.to_numpy(model.layers[0].b)  # wait for the device


def compare(args, optimizer, X, y, Xt, yt):
    """(ms/step per side, accuracies, largest weight difference) for one optimizer."""
    lr = LEARNING_RATES[optimizer]
    device = stand_in() if args.device == "standin" else xn.devices.resolve(args.device)
    sides = {}
    for name, wrap in (("pass", lambda f: f()), ("portable", _portable)):
        model, step = wrap(lambda: make_xpnn(initial_weights(), lr, device, optimizer))
        _steps(model, step, X, y, np.arange(256))  # compile, warm up
        sides[name] = (model, step)
    rng = np.random.default_rng(1)
    times = {name: [] for name in sides}
    for k in range(args.chunks):
        order = rng.permutation(len(X))[: args.chunk_steps * 128]
        for name in list(sides)[k % 2:] + list(sides)[: k % 2]:
            start = time.perf_counter()
            _steps(*sides[name], X, y, order)
            times[name].append((time.perf_counter() - start) / args.chunk_steps * 1e3)
    accuracy = {name: model.score(Xt, yt) for name, (model, _) in sides.items()}
    weights = [[xn.to_numpy(layer.W) for layer in model.layers] for model, _ in sides.values()]
    gap = max(float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
              for a, b in zip(*weights))
    return {name: statistics.median(t) for name, t in times.items()}, accuracy, gap


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--optimizer", choices=[*LEARNING_RATES, "all"], default="all")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or standin")
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--chunk-steps", type=int, default=50)
    p.add_argument("--max-gap", type=float, default=1e-3,
                   help="largest relative weight difference accepted between the sides")
    args = p.parse_args(argv)
    X, y, Xt, yt, what = load(args)
    print(f"MLP 784-512-256-10, batch 128, {what}, device {args.device}, "
          f"{args.chunks} chunks of {args.chunk_steps} steps a side")
    failed = []
    for optimizer in LEARNING_RATES if args.optimizer == "all" else [args.optimizer]:
        ms, accuracy, gap = compare(args, optimizer, X, y, Xt, yt)
        print(f"{optimizer:8s} pass {ms['pass']:7.3f} ms/step (accuracy {accuracy['pass']:.4f})"
              f"   portable {ms['portable']:7.3f} ms/step (accuracy {accuracy['portable']:.4f})"
              f"   portable / pass {ms['portable'] / ms['pass']:.2f}   weight gap {gap:.2e}",
              flush=True)
        if gap > args.max_gap or abs(accuracy["pass"] - accuracy["portable"]) > 0.01:
            failed.append(optimizer)
    if failed:
        print(f"FAILED: the pass and the portable plan disagree for {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
