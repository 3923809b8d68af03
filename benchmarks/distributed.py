"""Data-parallel MNIST MLP (784-512-256-10, ReLU, momentum 0.9, lr 0.05) over MPI: one
process with 2 BLAS threads against 2 processes with 1 thread each, at the same global batch
(128: 2 x 64), and 1 process with 1 thread as the control, interleaved in rounds, the best
round of each reported. Per configuration:
steps/s, samples/s, ms per step, the allreduce's ms per step (time inside the
Communicator's allreduce, waiting for the other rank included) and its share of the step, and
a bare allreduce of the gradient's size: a plain blocking ``MPI_Allreduce``, and the
nonblocking one polled until done that a Communicator with a timeout (the default) makes.
Then a model of the step on 8, 64 and 512 GPUs from the measured compute time per step.

    python benchmarks/distributed.py [--data ../shared/datasets/mnist] [--steps 150]
    python benchmarks/distributed.py --model-only --compute-ms 3.0   # the model alone
    python benchmarks/distributed.py --overlap [--bucket-kb 64] [--steps 60]

``--overlap``: 2 processes x 1 thread, the MLP and the CNN of examples/mnist_cnn.py (batch
64 each), with the gradients' allreduce after the backward pass (one blocking message) and
overlapped with it (``DistributedOptimizer(bucket_bytes=)``, buckets started as their
gradients are ready), each also with ``MPICH_ASYNC_PROGRESS=1`` (MPICH's progress thread,
which moves a started message on while Python computes): ms per step, and the allreduce's
exposed ms per step (the wait after the backward pass ends) and share of the step.

Needs the ``mpi`` extra (mpi4py, and the mpich wheel's ``mpiexec``). Without --data (or
when the files are missing) it trains on random data of MNIST's shape.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import xpnn as xn

UNITS = [784, 512, 256, 10]
GLOBAL_BATCH = 128
CNN_PARAMS = 320 + 18_496 + 16_010  # the simple MNIST convnet (examples/mnist_cnn.py)


def n_params(units=UNITS) -> int:
    return sum(a * b + b for a, b in zip(units[:-1], units[1:]))


# ----------------------------------------------------------------------------- one run


class TimedAllreduce:
    """Adds up the seconds a Communicator spends in large allreduces (the gradients'; fit's
    few-number metric sums are left out): its ``allreduce`` replaced by a timed one."""

    def __init__(self, comm):
        self.seconds, self.calls = 0.0, 0
        allreduce = comm.allreduce

        def timed(send, receive, *args):
            started = time.perf_counter()
            allreduce(send, receive, *args)
            if receive.size > 16:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        comm.allreduce = timed


def load(data, n):
    if data and Path(data).exists():
        (X, y), _ = xn.data.load_mnist(root=data, download=False)
        return X[:n], y[:n], "MNIST"
    rng = np.random.default_rng(0)
    return (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n),
            "random data of MNIST's shape")


def bare_allreduce_ms(comm, repeats=30) -> tuple[float, float]:
    """Median ms of one in-place float32 allreduce of the MLP's gradient size: a plain
    ``MPI_Allreduce``, and the polled one of a Communicator with a timeout, interleaved."""
    from mpi4py import MPI

    polled = xn.distributed.Communicator(comm, timeout=600)
    buffer, times = np.ones(n_params(), np.float32), ([], [])

    def plain():
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    def poll():
        polled.allreduce(MPI.IN_PLACE, buffer)

    for _ in range(repeats):
        for allreduce, own in zip((plain, poll), times):
            comm.Barrier()
            started = time.perf_counter()
            allreduce()
            own.append(time.perf_counter() - started)
    return tuple(1e3 * statistics.median(t) for t in times)


def worker(args) -> None:
    """One configuration: fit a warm-up, then time ``--steps`` steps; rank 0 prints JSON."""
    comm = timed = None
    if args.distributed:
        comm = xn.distributed.init()
        timed = TimedAllreduce(comm)
    size = 1 if comm is None else comm.size
    X, y, what = load(args.data, GLOBAL_BATCH * args.steps)
    model = xn.nn.NNClassifier(UNITS, seed=0)
    fit = dict(batch_size=GLOBAL_BATCH // size, optimizer="momentum", learning_rate=0.05,
               verbose=0, comm=comm)
    model.fit(X[: 20 * GLOBAL_BATCH], y[: 20 * GLOBAL_BATCH], epochs=1, **fit)
    if timed is not None:
        timed.seconds = timed.calls = 0
    started = time.perf_counter()
    history = model.fit(X, y, epochs=1, **fit)
    seconds = time.perf_counter() - started
    result = {"ranks": size, "threads": os.environ.get("OPENBLAS_NUM_THREADS"), "data": what,
              "steps": args.steps, "seconds": seconds, "loss": history["loss"][-1],
              "allreduce_s": 0.0 if timed is None else timed.seconds,
              "allreduce_calls": 0 if timed is None else timed.calls}
    if comm is not None:
        result["bare_allreduce_ms"], result["bare_polled_ms"] = bare_allreduce_ms(comm.mpi)
    if comm is None or comm.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- overlap


def overlap_model(name, seed=0):
    if name == "MLP":
        return xn.nn.NNClassifier(UNITS, seed=seed), (784,)
    nn = xn.nn  # examples/mnist_cnn.py's convnet, without its Dropout (the same work a step)
    layers = [nn.Conv2D(1, 32, 3, seed=seed), nn.ReLU(), nn.MaxPool2D(2),
              nn.Conv2D(32, 64, 3, seed=seed + 1), nn.ReLU(), nn.MaxPool2D(2),
              nn.Flatten(), nn.Linear(5 * 5 * 64, 10, seed=seed + 2)]
    return xn.nn.NNClassifier(layers, input_shape=(28, 28, 1)), (28, 28, 1)


class Windows:
    """Records, per step, the seconds from the first bucket's start to the wait (the part of
    the backward pass a started message could hide behind), and the OverlappedAllreduces
    made."""

    def __init__(self):
        from xpnn.distributed.allreduce import Bucket, OverlappedAllreduce

        self.made, self.seconds, self.first = [], 0.0, None
        init, start, wait = (OverlappedAllreduce.__init__, Bucket.forward,
                             OverlappedAllreduce.forward)

        def recording(op, *a, **k):
            init(op, *a, **k)
            self.made.append(op)

        def started(bucket, *a):
            if bucket is bucket.owner.buckets[0]:
                self.first = time.perf_counter()
            return start(bucket, *a)

        def waiting(op, *a):
            self.seconds += time.perf_counter() - self.first
            return wait(op, *a)

        OverlappedAllreduce.__init__, Bucket.forward = recording, started
        OverlappedAllreduce.forward = waiting

    def waited(self) -> float:
        return sum(op.waited for op in self.made)


def overlap_worker(args) -> None:
    """Rank 0 prints a RESULT per model: ms per step, exposed allreduce ms per step (the
    wait after the backward pass) and the window ms (first bucket's start to the wait)."""
    comm = xn.distributed.init()
    timed, windows = TimedAllreduce(comm), Windows()
    bucket = None if args.mode == "blocking" else args.bucket_kb * 1024
    for name in ("MLP", "CNN"):
        model, shape = overlap_model(name)
        rng = np.random.default_rng(0)
        n = GLOBAL_BATCH * (args.steps + 5)
        X = rng.random((n, *shape), dtype=np.float32)
        y = rng.integers(0, 10, n)
        opt = xn.distributed.DistributedOptimizer(xn.train.MomentumOptimizer(0.05, 0.9), comm,
                                                  check_finite=True, bucket_bytes=bucket)
        fit = dict(batch_size=GLOBAL_BATCH // comm.size, optimizer=opt, verbose=0, comm=comm,
                   shuffle=False)
        model.fit(X[:5 * GLOBAL_BATCH], y[:5 * GLOBAL_BATCH], epochs=1, **fit)  # warm-up
        timed.seconds, waited, windows.seconds = 0.0, windows.waited(), 0.0
        started = time.perf_counter()
        model.fit(X[5 * GLOBAL_BATCH:], y[5 * GLOBAL_BATCH:], epochs=1, **fit)
        step_ms = 1e3 * (time.perf_counter() - started) / args.steps
        exposed = timed.seconds + windows.waited() - waited
        if comm.rank == 0:
            print("RESULT " + json.dumps({"model": name, "mode": args.mode,
                                          "step_ms": step_ms,
                                          "exposed_ms": 1e3 * exposed / args.steps,
                                          "window_ms": 1e3 * windows.seconds / args.steps}),
                  flush=True)


def overlap_main(args) -> None:
    """Each mode in fresh processes, in rounds; the best round of each."""
    mpiexec = Path(sys.executable).with_name("mpiexec")
    modes = [("blocking", {}), ("overlapped", {}),
             ("blocking", {"MPICH_ASYNC_PROGRESS": "1"}),
             ("overlapped", {"MPICH_ASYNC_PROGRESS": "1"})]
    best = {}
    for _ in range(args.rounds):
        for mode, extra in modes:
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                       XPNN_THREADS="1", **extra, PYTHONPATH=os.pathsep.join(
                           [str(Path(__file__).resolve().parents[1]),
                            os.environ.get("PYTHONPATH", "")]))
            command = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", "2",
                       sys.executable, __file__, "--overlap-worker", "--mode", mode,
                       "--steps", str(args.steps), "--bucket-kb", str(args.bucket_kb)]
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=900)
            if done.returncode:
                raise RuntimeError(f"{command} failed:\n{done.stdout}\n{done.stderr}")
            for line in done.stdout.splitlines():
                if line.startswith("RESULT "):
                    r = json.loads(line[len("RESULT "):])
                    key = (r["model"], mode, "async progress" if extra else "")
                    if key not in best or r["step_ms"] < best[key]["step_ms"]:
                        best[key] = r
    print(f"2 processes x 1 thread, batch 64 each, {args.steps} steps, buckets of "
          f"{args.bucket_kb} KB, best of {args.rounds} rounds")
    print(f"{'model':<5} {'allreduce':<30} {'ms/step':>8} {'exposed ms':>11} {'share':>6} "
          f"{'window ms':>10}")
    for (name, mode, progress), r in sorted(best.items()):
        label = f"{mode}{', ' + progress if progress else ''}"
        print(f"{name:<5} {label:<30} {r['step_ms']:8.2f} {r['exposed_ms']:11.3f} "
              f"{r['exposed_ms'] / r['step_ms']:6.1%} {r['window_ms']:10.3f}")


# ----------------------------------------------------------------------------- the driver


def run(config, args) -> dict:
    """Start one configuration in fresh processes; its rank 0's result."""
    ranks, threads = config
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               XPNN_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
                   [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, __file__, "--worker", "--steps", str(args.steps)]
    if args.data:
        command += ["--data", args.data]
    if ranks > 1:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        command = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(ranks),
                   *command, "--distributed"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{command} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len("RESULT "):])


def report(results) -> float:
    """The table, each figure the best of the rounds (the run least disturbed by the other
    work on the machine); returns one process's fastest compute ms per step."""
    print(f"{'configuration':<24} {'steps/s':>8} {'samples/s':>10} {'ms/step':>8} "
          f"{'allreduce ms':>13} {'share':>6} {'bare allreduce ms, plain / polled':>34}")
    compute = {}
    for (ranks, threads), runs in results.items():
        best = min(runs, key=lambda r: r["seconds"])
        step_ms = 1e3 * best["seconds"] / best["steps"]
        reduce_ms = 1e3 * best["allreduce_s"] / best["steps"]
        bare = [(r["bare_allreduce_ms"], r["bare_polled_ms"]) for r in runs
                if "bare_polled_ms" in r]
        bare_text = (f"{min(b[0] for b in bare):.3f} / {min(b[1] for b in bare):.3f}" if bare
                     else "-")
        compute[ranks] = min(compute.get(ranks, np.inf), step_ms - reduce_ms)
        label = f"{ranks} process{'es' * (ranks > 1)} x {threads} thread{'s' * (threads > 1)}"
        print(f"{label:<24} {1e3 / step_ms:8.1f} {GLOBAL_BATCH * 1e3 / step_ms:10.0f} "
              f"{step_ms:8.2f} {reduce_ms:13.3f} {reduce_ms / step_ms:6.1%} {bare_text:>34}")
    return compute[1]


# ----------------------------------------------------------------------------- the model

# Published figures (benchmarks/README.md, "Scaling model", gives the sources): NCCL ring bus
# bandwidth for large messages, and the smallest message's time (the latency floor).
INTRA_NODE = {"busbw": 370e9, "floor_s": 15e-6}  # 8 x H100 SXM, NVLink 4 (nccl#1455, #1259)
INTER_NODE = {"busbw": 180e9, "floor_s": 47e-6, "floor_at": 16}  # H100 nodes (nccl#1031, #1244)


def allreduce_seconds(n, nbytes) -> float:
    """Ring allreduce on n GPUs: 2(n-1)/n of the bytes over the bus bandwidth, plus a
    latency floor; across nodes the floor grows with the tree's depth, log2 n."""
    fabric = INTRA_NODE if n <= 8 else INTER_NODE
    floor = fabric["floor_s"]
    if n > 8:
        floor *= np.log2(n) / np.log2(fabric["floor_at"])
    return 2 * (n - 1) / n * nbytes / fabric["busbw"] + floor


def model(mlp_cpu_ms, cnn_cpu_ms=39.0, gpu_ms=(("MLP", 0.3), ("CNN", 1.0))) -> None:
    """Step time and efficiency on n GPUs, each with batch 128 (weak scaling), the allreduce
    after backprop (not overlapped), for a step computed at this CPU's speed (measured:
    the MLP here, the CNN from cnn_mnist.py's 18.3 s an epoch) and at a GPU's (assumed:
    kernel launches bound both models there)."""
    print(f"\nscaling model, per-GPU batch {GLOBAL_BATCH} (global batch = 128 n), float32 "
          "gradients, allreduce not overlapped with backprop")
    print(f"{'model':<5} {'compute':>22} {'GPUs':>5} {'allreduce ms':>13} {'efficiency':>11} "
          f"{'global batch':>13} {'steps/epoch':>12}")
    gpu = dict(gpu_ms)
    for name, params, cpu in (("MLP", n_params(), mlp_cpu_ms), ("CNN", CNN_PARAMS, cnn_cpu_ms)):
        for compute, how in ((cpu, "measured"), (gpu[name], "GPU, assumed")):
            for n in (8, 64, 512):
                reduce_ms = 1e3 * allreduce_seconds(n, 4 * params)
                print(f"{name:<5} {compute:6.2f} ms {how:>12} {n:5d} {reduce_ms:13.3f} "
                      f"{compute / (compute + reduce_ms):11.1%} {GLOBAL_BATCH * n:13d} "
                      f"{max(1, 60000 // (GLOBAL_BATCH * n)):12d}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-only", action="store_true")
    parser.add_argument("--overlap", action="store_true")
    parser.add_argument("--overlap-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="blocking", help=argparse.SUPPRESS)
    parser.add_argument("--bucket-kb", type=int, default=64)
    parser.add_argument("--compute-ms", type=float, default=None,
                        help="compute ms per step for the model (default: measured)")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.overlap_worker:
        return overlap_worker(args)
    if args.overlap:
        return overlap_main(args)
    compute_ms = args.compute_ms
    if not args.model_only:
        results = {(1, 2): [], (2, 1): [], (1, 1): []}  # 1 x 1: the control
        for _ in range(args.rounds):
            for config in results:
                results[config].append(run(config, args))
        print(f"MNIST MLP {UNITS}, global batch {GLOBAL_BATCH}, {args.steps} steps a run, "
              f"{args.rounds} rounds, {results[(1, 2)][0]['data']}; "
              f"{n_params()} parameters ({4 * n_params() / 1e6:.2f} MB of float32 gradients)")
        measured = report(results)
        compute_ms = measured if compute_ms is None else compute_ms
    model(compute_ms if compute_ms is not None else 3.0)  # 3 ms: about this CPU's MLP step


if __name__ == "__main__":
    main()
