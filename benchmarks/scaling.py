"""How xpnn's training cost grows: epoch time for batch sizes 32/128/512 and hidden widths
256/1024/4096 (MLP 784-w-w-10), each next to the hand-written NumPy loop in the
same run; then a long run checking that no step slows down (no leak, no growing graph).

    python benchmarks/scaling.py                 # random data of MNIST's shape
    python benchmarks/scaling.py --epochs-long 20

Each cell trains on --samples samples and scales the time to a 60,000-sample epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from mlp_mnist import NumpyMLP, run_numpy_epoch, run_xpnn_epoch

import xpnn as xn

EPOCH = 60_000


def weights_for(units, seed=0):
    rng = xn.init.generator(seed)
    return [(xn.init.he_normal((a, b), rng), np.zeros(b, np.float32))
            for a, b in zip(units[:-1], units[1:])]


def xpnn_model(units, weights, lr=0.1):
    model = xn.nn.NNClassifier(units)
    for layer, (W, b) in zip(model.layers, weights):
        layer.W, layer.b = W, b
    return model, model._train_step("sgd", lr)


def time_cell(units, batch, X, y, samples, repeats=3):
    weights = weights_for(units)
    model, step = xpnn_model(units, weights)
    ref = NumpyMLP(weights, 0.1)
    order = np.random.default_rng(0).permutation(len(X))[:samples]
    run_xpnn_epoch(model, step, X, y, order[: 4 * batch], batch)  # compile, warm up
    run_numpy_epoch(ref, X, y, order[: 4 * batch], batch)
    t_x, t_n = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        run_xpnn_epoch(model, step, X, y, order, batch)
        t_x.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_numpy_epoch(ref, X, y, order, batch)
        t_n.append(time.perf_counter() - start)
    scale = EPOCH / samples
    return statistics.median(t_x) * scale, statistics.median(t_n) * scale


def long_run(X, y, epochs, batch=128, samples=12_800):
    units = [784, 512, 256, 10]
    model, step = xpnn_model(units, weights_for(units))
    nodes = len(model.graph.nodes)
    order = np.random.default_rng(0).permutation(len(X))[:samples]
    times, peaks = [], []
    for _ in range(epochs):
        tracemalloc.start()
        start = time.perf_counter()
        run_xpnn_epoch(model, step, X, y, order, batch)
        times.append(time.perf_counter() - start)
        peaks.append(tracemalloc.get_traced_memory())
        tracemalloc.stop()
    return times, peaks, nodes, len(model.graph.nodes), len(model.session._plans)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=12_800)
    p.add_argument("--epochs-long", type=int, default=20)
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.random((EPOCH, 784), dtype=np.float32)
    y = rng.integers(0, 10, EPOCH)

    print(f"seconds per 60,000-sample epoch (from {args.samples} samples, median of 3), SGD")
    print(f"{'MLP':>22s} {'batch':>6s} {'xpnn':>8s} {'numpy':>8s} {'ratio':>6s}")
    cells = [([784, 512, 256, 10], b) for b in (32, 128, 512)]
    cells += [([784, w, w, 10], 128) for w in (256, 1024, 4096)]
    for units, batch in cells:
        samples = args.samples if units[1] < 4096 else args.samples // 4
        tx, tn = time_cell(units, batch, X, y, samples)
        name = "-".join(map(str, units))
        print(f"{name:>22s} {batch:6d} {tx:8.2f} {tn:8.2f} {tx / tn:6.2f}", flush=True)

    times, peaks, before, after, plans = long_run(X, y, args.epochs_long)
    print(f"\n{args.epochs_long} epochs of {args.samples} samples, MLP 784-512-256-10, batch 128:")
    print("  seconds: " + " ".join(f"{t:.3f}" for t in times))
    first, last = statistics.median(times[:5]), statistics.median(times[-5:])
    print(f"  median of the first 5 {first:.3f}s, of the last 5 {last:.3f}s "
          f"(ratio {last / first:.3f})")
    print("  traced memory still held at the end of each epoch (MiB): "
          + " ".join(f"{cur / 2**20:.2f}" for cur, _ in peaks))
    print(f"  graph nodes before/after: {before}/{after}; cached plans: {plans}")


if __name__ == "__main__":
    main()
