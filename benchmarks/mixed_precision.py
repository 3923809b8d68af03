"""Mixed precision against float32: an MLP (784-256-128-10) and the small MNIST convnet
(``examples/mnist_cnn.py``) trained from the same initial weights and batches in float32 and
in ``Session(precision="mixed_float16")`` (Adam 1e-3 under a LossScaleOptimizer, batch
128): test accuracy of each and its difference (target: within 0.2 points), seconds per
epoch, and the memory of one training step: the peak bytes of the values the plan holds
(fed data, activations, gradients, casts: every array alive between two steps of the
portable plan, measured by running it step by step with its frees), with and without the
Variables and optimizer slots (float32 in both), and the ratio mixed / float32.

    python benchmarks/mixed_precision.py --mnist ../shared/datasets/mnist --epochs 1
    python benchmarks/mixed_precision.py --backend numpy --limit 6000   # NumPy: slow in half

Without --mnist it trains on synthetic data of MNIST's shape (``mlp_mnist.synthetic``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import xpnn as xn
from xpnn.executor import _frees
from xpnn.plan import Description

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mlp_mnist import synthetic  # noqa: E402
from mnist_cnn import convnet  # noqa: E402


def load(args):
    if args.mnist:
        (X, y), (Xt, yt) = xn.data.load_mnist(root=args.mnist, download=False)
    else:
        X, y, Xt, yt, _ = synthetic()
    n = args.limit or len(X)
    return X[:n].reshape(n, -1), y[:n].astype(np.int32), Xt.reshape(len(Xt), -1), \
        yt.astype(np.int32)


def build(kind):
    """The model's graph in the default graph: its nodes and the training fetches."""
    x = xn.placeholder(shape=(None, 784), name="x")
    labels = xn.placeholder("int32", (None,), name="labels")
    training = xn.placeholder("bool", (), name="training")
    if kind == "mlp":
        h = x
        for k, (n_in, n_out) in enumerate([(784, 256), (256, 128), (128, 10)]):
            h = xn.nn.Linear(n_in, n_out, seed=k)(h)
            h = xn.relu(h) if n_out != 10 else h
        logits = h
    else:
        logits = xn.nn.Sequential(convnet(0))(xn.reshape(x, (-1, 28, 28, 1)), training)
    loss = xn.losses.sparse_softmax_cross_entropy(labels, logits)
    step = xn.train.LossScaleOptimizer(xn.train.AdamOptimizer(1e-3)).minimize(loss)
    return dict(x=x, labels=labels, training=training, logits=logits, step=step)


def step_memory(model, precision, X, y, backend):
    """Peak bytes of the plan's values between two steps: (all, without the Variables)."""
    with xn.Graph().as_default():
        m = build(model)
        sess = xn.Session(backend=backend, precision=precision, passes=False, seed=0)
        feed = {m["x"]: X, m["labels"]: y, m["training"]: True}
        plan = sess._executor(m["step"], feed).plan
        values = list(plan.template)
        for f in plan.feeds:
            values[f.slot] = sess._feed_value(f.placeholder, feed[f.placeholder])
        for s, v in plan.variables.items():
            values[s] = sess._leaf_value(v)
        frees, kept = _frees(plan), set(plan.variables)
        peak = peak_values = 0
        for index, step in enumerate(plan.steps):
            values[step.out] = step.fn(*(values[i] for i in step.inputs))
            sizes = [(s, _nbytes(v)) for s, v in enumerate(values)]
            peak = max(peak, sum(b for _, b in sizes))
            peak_values = max(peak_values, sum(b for s, b in sizes if s not in kept))
            for s in frees.get(index, ()):
                values[s] = None
    return peak, peak_values


def _nbytes(value) -> int:
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    if value is None or isinstance(value, Description) or not hasattr(value, "dtype"):
        return 0
    return value.dtype.itemsize * int(np.prod(tuple(value.shape)))


def train(model, precision, data, args):
    """(test accuracy, seconds per epoch) after ``args.epochs`` epochs."""
    X, y, Xt, yt = data
    with xn.Graph().as_default():
        m = build(model)
        sess = xn.Session(backend=args.backend, precision=precision, seed=0)
        rng, seconds = np.random.default_rng(1), []
        for _ in range(args.epochs):
            order = rng.permutation(len(X))
            start = time.perf_counter()
            for i in range(0, len(order), args.batch_size):
                idx = order[i:i + args.batch_size]
                sess.run(m["step"], {m["x"]: X[idx], m["labels"]: y[idx], m["training"]: True})
            xn.to_numpy(sess.run(m["step"].targets[0]))  # wait for the device
            seconds.append(time.perf_counter() - start)
        predicted = np.concatenate([
            np.asarray(sess.run(m["logits"], {m["x"]: Xt[i:i + 1000], m["training"]: False},
                                to_numpy=True), np.float32).argmax(axis=1)
            for i in range(0, len(Xt), 1000)])
    return float((predicted == yt).mean()), min(seconds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", help="folder of MNIST's idx files (else synthetic data)")
    p.add_argument("--backend", default="jax", help="numpy, torch or jax (default: jax)")
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=0, help="train on the first N rows only")
    args = p.parse_args(argv)
    data = load(args)
    batch = data[0][:args.batch_size], data[1][:args.batch_size]
    print(f"backend {args.backend}, {len(data[0])} training rows, {args.epochs} epoch(s), "
          f"batch {args.batch_size}")
    for model in args.models.split(","):
        results = {}
        for precision in (None, "mixed_float16"):
            accuracy, seconds = train(model, precision, data, args)
            memory = step_memory(model, precision, *batch, args.backend)
            results[precision] = accuracy, seconds, memory
            print(f"{model} {precision or 'float32':>13}: test accuracy {accuracy:.4f}, "
                  f"{seconds:.1f} s/epoch, step peak {memory[0] / 2**20:.2f} MiB "
                  f"({memory[1] / 2**20:.2f} MiB without Variables and slots)")
        (a32, s32, m32), (a16, s16, m16) = results[None], results["mixed_float16"]
        print(f"{model} mixed - float32: accuracy {100 * (a16 - a32):+.2f} points; "
              f"memory mixed / float32 {m16[0] / m32[0]:.2f} (without Variables and slots "
              f"{m16[1] / m32[1]:.2f}); time mixed / float32 {s16 / s32:.2f}")


if __name__ == "__main__":
    main()
