"""Peak memory of one training step of ``cnn_mnist.py``'s convnet (NumPy device, traced by
tracemalloc) against what the step must hold: the activations kept for the backward pass
and the two patch matrices. Prints both and their ratio (target: at most 1.5).

    python benchmarks/cnn_memory.py --batch-size 128
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cnn_mnist  # noqa: E402


def must_hold(n: int) -> int:
    """Bytes (float32) of: the input, conv-1 output (bias and ReLU in place), pool-1 output,
    conv-2 output, pool-2 output and dropout mask, and the patch matrices of both convs."""
    activations = 28 * 28 * 1 + 26 * 26 * 32 + 13 * 13 * 32 + 11 * 11 * 64 + 2 * 5 * 5 * 64
    patches = 26 * 26 * 9 * 1 + 11 * 11 * 9 * 32
    return 4 * n * (activations + patches)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args(argv)
    n = args.batch_size
    rng = np.random.default_rng(0)
    X = rng.random((3 * n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 3 * n)
    tracemalloc.start()
    model, run = cnn_mnist.make_xpnn("cpu")
    start = tracemalloc.get_traced_memory()[0]
    run(X, y, np.arange(2 * n), n)  # the plan and its kept buffers
    kept = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.reset_peak()
    run(X, y, np.arange(2 * n, 3 * n), n)
    peak = tracemalloc.get_traced_memory()[1] - start
    need = must_hold(n)
    mib = 2**20
    print(f"batch {n}: kept by the plan {kept / mib:.1f} MiB, step peak {peak / mib:.1f} MiB, "
          f"must hold {need / mib:.1f} MiB: peak / must hold {peak / need:.2f}")
    return peak / need


if __name__ == "__main__":
    main()
