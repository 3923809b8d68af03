"""An MLP epoch (784-256-10, ReLU, SGD, batch 128, shuffled) through ``NNClassifier.fit``
fed from a memmap on disk by ``xn.data.Dataset`` with its prefetch thread, against the same
epoch from the array in memory: interleaved repeats, the ratio of each pair, the median.
Target (issue #28): memmap / memory <= 1.05.

    python benchmarks/feed_epoch.py                       # synthetic 60000 x 784 float32
    python benchmarks/feed_epoch.py --mnist ../shared/datasets/mnist --repeats 7
    python benchmarks/feed_epoch.py --threads 2 --no-prefetch

The data (synthetic of MNIST's shape, or MNIST's training set with ``--mnist``) is written
to a temporary .npy file and opened with ``np.load(mmap_mode="r")``. Having just been
written, the file is in the OS's page cache: this measures the reading, gathering and
prefetching, not the disk. ``--no-prefetch`` adds the memmap read inline (``prefetch=0``).
Both clocks are printed: wall time (what prefetch overlaps) and the process's CPU time,
which counts the thread's work too and is the steadier figure on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xpnn as xn  # noqa: E402

UNITS = [784, 256, 10]


def synthetic(n=60_000, seed=0):
    """MNIST's shape: class c lights a random 15% of the pixels, each with probability 0.2,
    among noise pixels (probability 0.2); intensities 0.5-1."""
    rng = np.random.default_rng(seed)
    strokes = rng.random((10, 784)) < 0.15
    y = rng.integers(0, 10, n)
    on = (strokes[y] & (rng.random((n, 784)) < 0.2)) | (rng.random((n, 784)) < 0.2)
    return (on * rng.uniform(0.5, 1.0, (n, 784))).astype(np.float32), y


def load(args):
    if args.mnist:
        (X, y), _ = xn.data.load_mnist(root=args.mnist, download=False)
        return X, y, "MNIST's training set"
    X, y = synthetic()
    return X, y, "synthetic data of MNIST's shape"


def pin_threads(threads):
    """Size BLAS's pool (threadpoolctl, where installed) and xpnn's own to ``threads``."""
    os.environ["XPNN_THREADS"] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: BLAS keeps its threads (set "
              "OPENBLAS_NUM_THREADS before starting)")
        return None
    return threadpool_limits(limits=threads)


def epoch_seconds(model, fit_args, fit_kwargs) -> tuple[float, float]:
    """(wall, process CPU) seconds of one epoch; the CPU time counts the prefetch thread."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(*fit_args, epochs=1, optimizer="sgd", learning_rate=0.05, verbose=0,
              **fit_kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def report(times, runners):
    for clock, i in (("wall", 0), ("cpu", 1)):
        for name, ts in times.items():
            ts = [t[i] for t in ts]
            print(f"  {clock:4s} {name:7s} median {statistics.median(ts):6.3f} s/epoch  "
                  f"best {min(ts):6.3f}  all {' '.join(f'{t:.3f}' for t in ts)}")
        for name in runners:
            if name == "memory":
                continue
            ratios = [a[i] / b[i] for a, b in zip(times[name], times["memory"])]
            median = statistics.median(ratios)
            target = (f"  target <= 1.05: {'met' if median <= 1.05 else 'not met'}"
                      if name == "memmap" else "")
            print(f"  {clock:4s} {name} / memory: median per pair {median:.3f} "
                  f"(range {min(ratios):.3f}-{max(ratios):.3f}){target}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", help="folder of MNIST's IDX files (else synthetic data)")
    parser.add_argument("--repeats", type=int, default=5, help="epochs of each runner")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--no-prefetch", action="store_true",
                        help="also time the memmap read inline (prefetch=0)")
    parser.add_argument("--backend", default=None, help="xpnn backend (default numpy)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and xpnn threads of the step (default 1: the step on one "
                             "core, the prefetch thread free to use another)")
    args = parser.parse_args()
    limits = pin_threads(args.threads)

    X, y, what = load(args)
    folder = tempfile.mkdtemp(prefix="xpnn-feed-")
    path = os.path.join(folder, "X.npy")
    np.save(path, X)
    disk = np.load(path, mmap_mode="r")
    bs = args.batch_size
    runners = {
        "memory": ((X, y), dict(batch_size=bs, shuffle=True, seed=1)),
        "memmap": ((xn.data.Dataset(disk, y, batch_size=bs, shuffle=True, seed=1,
                                    prefetch=args.prefetch),), {}),
    }
    if args.no_prefetch:
        runners["inline"] = ((xn.data.Dataset(disk, y, batch_size=bs, shuffle=True, seed=1,
                                              prefetch=0),), {})
    models = {name: xn.nn.NNClassifier(UNITS, seed=0, backend=args.backend)
              for name in runners}
    print(f"MLP {'-'.join(map(str, UNITS))}, batch {bs}, SGD, one epoch of {X.shape[0]} rows "
          f"({what}, {X.nbytes / 2**20:.0f} MiB float32) on {models['memory'].device}; "
          f"memmap: {path}, prefetch={args.prefetch}; {args.threads} step thread(s); "
          f"{args.repeats} interleaved repeats")
    for name, (fit_args, fit_kwargs) in runners.items():  # warm-up: plans, page cache
        epoch_seconds(models[name], fit_args, fit_kwargs)
    times = {name: [] for name in runners}
    for r in range(args.repeats):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for name in order:
            times[name].append(epoch_seconds(models[name], *runners[name]))
    report(times, runners)
    accuracies = {name: m.score(X[:10_000], y[:10_000]) for name, m in models.items()}
    print("  training accuracy on the first 10000 rows: " +
          ", ".join(f"{k} {v:.4f}" for k, v in accuracies.items()))
    del disk, limits
    os.remove(path)
    os.rmdir(folder)


if __name__ == "__main__":
    main()
