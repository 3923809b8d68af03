"""xpnn on PyTorch with its plan passes (``xpnn/devices/torch``) against a hand-written PyTorch
eager loop doing the same work, and against xpnn's portable plan on PyTorch
(``XPNN_PASSES=0``): the MLP 784-512-256-10 (ReLU, batch 128) with SGD, momentum
and Adam, same initial weights and batches, the tiny step (the lesson-5 3->4 net, one
sample at a time, ``small_step.py``), and the simple MNIST convnet of ``cnn_mnist.py``
(conv 32, pool, conv 64, pool, dropout 0.5, dense 10; Adam 1e-3, batch 128) against the
same net written with ``torch.nn.Conv2d`` (NCHW) and ``torch.optim.Adam`` (xpnn's Adam is
TF1's, epsilon added to sqrt(v), PyTorch's to sqrt(v_hat): the same work a step; dropout
masks differ, each library draws its own). Runs are interleaved in short chunks, in a rotating
order; it prints each runner's median and best time, the median over chunks of xpnn's
time over eager's on the same batches a moment apart, and each runner's test accuracy (or
final loss) so that nothing wins by computing less. With one thread (the default) the time
is this process's CPU time: on a machine shared with other work, waiting for a core is then
not counted (``--clock wall`` counts it).

    python benchmarks/torch_pass.py                       # random data of MNIST's shape
    python benchmarks/torch_pass.py --data ../shared/datasets/mnist --optimizer adam
    python benchmarks/torch_pass.py --threads 2 --chunks 20 --tiny-steps 5000
    python benchmarks/torch_pass.py --data ../shared/datasets/mnist --no-mlp --no-tiny \
        --cnn-steps 469                                 # one MNIST epoch of the convnet
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's xpnn

import cnn_mnist  # noqa: E402
import numpy as np  # noqa: E402
from mlp_mnist import (  # noqa: E402
    initial_weights,
    load,
    make_torch,
    make_xpnn,
    run_torch_epoch,
    run_xpnn_epoch,
    torch_accuracy,
)
from small_step import torch_loop, xpnn_loop  # noqa: E402

import xpnn as xn  # noqa: E402

LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-3}


def _portable(make):
    """``make()`` with the torch passes off for the Sessions it makes."""
    os.environ["XPNN_PASSES"] = "0"
    try:
        return make()
    finally:
        del os.environ["XPNN_PASSES"]


def mlp_runners(args, X, y, Xt, yt, optimizer):
    """name -> (run(order), accuracy()) for one optimizer, each from the same weights."""
    lr = LEARNING_RATES[optimizer]
    device = xn.devices.resolve(args.device, backend="torch")
    runners = {}
    for name, wrap in (("xpnn", lambda f: f()), ("portable", _portable)):
        model, step = wrap(lambda: make_xpnn(initial_weights(), lr, device, optimizer))
        run_xpnn_epoch(model, step, X, y, np.arange(256), 128)
        runners[name] = (lambda o, m=model, s=step: run_xpnn_epoch(m, s, X, y, o, 128),
                         lambda m=model: m.score(Xt, yt))
    tdev = "cuda" if args.device.startswith("cuda") else "cpu"
    model, opt = make_torch(initial_weights(), lr, tdev, optimizer)
    runners["eager"] = (lambda o: run_torch_epoch(model, opt, X, y, o, 128, tdev),
                        lambda: torch_accuracy(model, Xt, yt, tdev))
    return runners


def interleaved(runners, orders, clock):
    """Each runner's seconds per chunk, chunks run in a rotating order."""
    names, times = list(runners), {name: [] for name in runners}
    for k, order in enumerate(orders):
        for name in names[k % len(names):] + names[: k % len(names)]:
            time.sleep(0.05)
            start = clock()
            runners[name](order)
            times[name].append(clock() - start)
    return times


def report(title, times, per, unit, scores):
    print(title)
    for name, spent in times.items():
        values = [t / per for t in spent]
        print(f"  {name:8s} median {statistics.median(values) * unit:9.1f}  best "
              f"{min(values) * unit:9.1f}   {scores[name]}")
    eager = times["eager"]
    for name in times:
        if name != "eager":
            paired = [a / b for a, b in zip(times[name], eager)]
            print(f"  {name} / eager: median per chunk {statistics.median(paired):.3f} "
                  f"(quartiles {_quartiles(paired)}), best {min(times[name]) / min(eager):.3f}")


def _quartiles(values):
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return f"{q1:.3f}-{q3:.3f}"


def run_mlp(args, optimizer):
    X, y, Xt, yt, what = load(args)
    runners = mlp_runners(args, X, y, Xt, yt, optimizer)
    rng = np.random.default_rng(1)
    steps = args.chunk_steps * 128
    orders = [rng.permutation(len(X))[:steps] for _ in range(args.chunks)]
    times = interleaved({n: r[0] for n, r in runners.items()}, orders, args.clock)
    scores = {n: f"test accuracy {r[1]():.4f}" for n, r in runners.items()}
    report(f"MLP 784-512-256-10, batch 128, {optimizer} lr {LEARNING_RATES[optimizer]}, {what}"
           f" ({args.chunks} chunks of {args.chunk_steps} steps), ms/step:", times,
           args.chunk_steps, 1e3, scores)


def run_tiny(args):
    loops = {"xpnn": lambda n: xpnn_loop(n, backend="torch"),
             "portable": lambda n: _portable(lambda: xpnn_loop(n, backend="torch")),
             "eager": torch_loop}
    losses = {}

    def chunk(name):
        def run(steps):
            losses[name] = f"final loss {loops[name](steps):.7f}"
        return run

    for loop in loops.values():
        loop(50)  # warm up
    times = interleaved({n: chunk(n) for n in loops}, [args.tiny_steps] * args.chunks,
                        args.clock)
    report(f"tiny step (lesson 5, 3->4 linear + sigmoid + BCE, one sample, SGD), "
           f"{args.tiny_steps} steps a chunk, us/step:", times, args.tiny_steps, 1e6, losses)


def cnn_runners(args, X, y, Xt, yt):
    """name -> (run(order), accuracy()) for the convnet, the eager net from xpnn's weights."""
    model, run_xpnn = cnn_mnist.make_xpnn(args.device, backend="torch")
    tdev = "cuda" if args.device.startswith("cuda") else "cpu"
    run_eager, eager_accuracy = cnn_mnist.make_torch(model, tdev)
    return {"xpnn": (lambda o: run_xpnn(X, y, o, 128), lambda: model.score(Xt, yt)),
            "eager": (lambda o: run_eager(X, y, o, 128), lambda: eager_accuracy(Xt, yt))}


def cnn_orders(n, steps, chunk, seed=2):
    """``steps`` batches of 128 from epochs of shuffled indices, in chunks of ``chunk``."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(-(-steps * 128 // n))])
    order = order[: steps * 128]
    return [order[i : i + chunk * 128] for i in range(0, len(order), chunk * 128)]


def run_cnn(args):
    X, y, Xt, yt, what = load(args)
    X, Xt = X.reshape(-1, 28, 28, 1), Xt.reshape(-1, 28, 28, 1)
    runners = cnn_runners(args, X, y, Xt, yt)
    for run, _ in runners.values():  # the first plan; both train on these two batches
        run(np.arange(256))
    orders = cnn_orders(len(X), args.cnn_steps, args.cnn_chunk)
    times = interleaved({n: r[0] for n, r in runners.items()}, orders, args.clock)
    steps = [len(order) / 128 for order in orders]  # the last chunk may be shorter
    times = {n: [t / k for t, k in zip(spent, steps)] for n, spent in times.items()}
    scores = {n: f"test accuracy {r[1]():.4f}" for n, r in runners.items()}
    report(f"CNN (the simple MNIST convnet), batch 128, adam lr 1e-3, {what} ({len(orders)} "
           f"chunks of {args.cnn_chunk} steps), ms/step:", times, 1, 1e3, scores)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--optimizer", choices=[*LEARNING_RATES, "all"], default="all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (both runners)")
    p.add_argument("--chunks", type=int, default=12)
    p.add_argument("--chunk-steps", type=int, default=20)
    p.add_argument("--tiny-steps", type=int, default=2000)
    p.add_argument("--no-tiny", action="store_true")
    p.add_argument("--no-mlp", action="store_true")
    p.add_argument("--cnn-steps", type=int, default=40, help="convnet steps (0: none)")
    p.add_argument("--cnn-chunk", type=int, default=5, help="convnet steps a chunk")
    p.add_argument("--clock", choices=["cpu", "wall"], default=None,
                   help="default: cpu with one thread, else wall")
    args = p.parse_args(argv)
    if args.clock is None:
        args.clock = "cpu" if args.threads == 1 else "wall"
    clock_name, args.clock = args.clock, (time.process_time if args.clock == "cpu"
                                          else time.perf_counter)

    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{clock_name} time")
    for optimizer in [] if args.no_mlp else (
            LEARNING_RATES if args.optimizer == "all" else [args.optimizer]):
        run_mlp(args, optimizer)
    if not args.no_tiny:
        run_tiny(args)
    if args.cnn_steps:
        run_cnn(args)


if __name__ == "__main__":
    main()
