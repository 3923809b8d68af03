"""One Transformer block, forward and backward, in xpnn against PyTorch CPU (issue #26):
``xn.nn.TransformerBlock(128, 4, ff_dim=512)`` (post-LN, ReLU, no dropout) and
``torch.nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)`` with the
same weights copied in, on one fixed (32, 64, 128) float32 input. A step is the gradient of
sum(y * R) (R fixed) w.r.t. the input and every parameter: in xpnn one ``Session.run``
fetching the gradients, in torch the forward and ``backward()`` (gradients set to None
first). ``--causal`` masks each query to the keys before it (torch gets the mask and
``is_causal=True``, so it may take its fused causal attention).

Time: the two run in interleaved chunks, in a rotating order; it prints each side's median
and best ms/step and the median over chunks of xpnn's time over torch's a moment apart.
With one thread (the default: NumPy's BLAS, xpnn's own pool, torch and XLA are all pinned
to it, the script re-running itself with those variables set) the time is this process's
CPU time, so waiting for a core on a shared machine is not counted (``--clock wall``).
It prints the largest differences of y and of the gradients between the two, from one step.

Memory: the peak extra memory of a step, each library in a fresh interpreter of its own
(one process's heap would blur both), each with its usual heap settings (xpnn's NumPy plan
tunes glibc's, ``devices/numpy/allocator.py``): the model built, the input made and one
warm-up step run on one sample (code loaded, lazy initialisation; it leaves little
behind), the resident set's high-water mark is reset (``/proc/self/clear_refs``), then
``VmHWM`` above the resident set before is read after the first full step (plans, xpnn's
kept buffers and the step's peak: the figure compared) and after ``--memory-steps`` steps
(where glibc's freed-but-kept blocks show too: in torch's process they raise the mark after
the first step). RSS counts pages whichever allocator made them; tracemalloc would see
NumPy's arrays but not torch's, so it is printed for xpnn on NumPy only, as a check.

    python benchmarks/transformer_block.py                   # xpnn on NumPy, 1 thread
    python benchmarks/transformer_block.py --causal --backend torch
    python benchmarks/transformer_block.py --chunks 4 --chunk-steps 3 --no-memory  # quick
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's xpnn

import numpy as np  # noqa: E402

import xpnn as xn  # noqa: E402

BATCH, LENGTH, DIM, HEADS, FF_DIM = 32, 64, 128, 4, 512


def inputs(seed=0):
    """The input and R of sum(y * R), float32, the same in every process."""
    rng = np.random.default_rng(seed)
    shape = (BATCH, LENGTH, DIM)
    return (rng.standard_normal(shape, dtype=np.float32),
            rng.standard_normal(shape, dtype=np.float32))


def make_block(causal):
    """The xpnn block (seed 0), in a graph of its own."""
    with xn.Graph().as_default() as graph:
        return graph, xn.nn.TransformerBlock(DIM, HEADS, FF_DIM, causal=causal, seed=0)


def make_xpnn(args):
    """(step(X, R), outputs(X, R), the block): ``step`` returns the gradients of sum(y * R)
    w.r.t. x, then each parameter, from one ``Session.run``; ``outputs`` fetches y too."""
    graph, block = make_block(args.causal)
    with graph.as_default():
        x = xn.placeholder("float32", (None, LENGTH, DIM), name="x")
        r = xn.placeholder("float32", (None, LENGTH, DIM), name="R")
        y = block(x)
        grads = xn.gradients(xn.reduce_sum(y * r), [x, *block.parameters()])
        session = xn.Session(backend=args.backend)

    def step(X, R):
        out = session.run(grads, {x: X, r: R})
        xn.to_numpy(out[-1])  # waits for an asynchronous device (JAX)
        return out

    def outputs(X, R):
        return session.run([y, *grads], {x: X, r: R}, to_numpy=True)

    return step, outputs, block


def make_torch(block, causal):
    """(step(X, R), outputs(X, R)) of a ``TransformerEncoderLayer`` holding ``block``'s
    initial weights."""
    import torch

    layer = torch.nn.TransformerEncoderLayer(DIM, HEADS, FF_DIM, dropout=0.0, batch_first=True)
    a = block.attention
    weights = {
        layer.self_attn.in_proj_weight: np.concatenate(
            [a.w_q.initial_value, a.w_k.initial_value, a.w_v.initial_value], axis=1).T,
        layer.self_attn.in_proj_bias: np.concatenate(
            [a.b_q.initial_value, a.b_k.initial_value, a.b_v.initial_value]),
        layer.self_attn.out_proj.weight: a.w_o.initial_value.T,
        layer.self_attn.out_proj.bias: a.b_o.initial_value,
        layer.norm1.weight: block.norm1.gamma.initial_value,
        layer.norm1.bias: block.norm1.beta.initial_value,
        layer.norm2.weight: block.norm2.gamma.initial_value,
        layer.norm2.bias: block.norm2.beta.initial_value,
        layer.linear1.weight: block.ff1.weight.initial_value.T,
        layer.linear1.bias: block.ff1.bias.initial_value,
        layer.linear2.weight: block.ff2.weight.initial_value.T,
        layer.linear2.bias: block.ff2.bias.initial_value,
    }
    with torch.no_grad():
        for tensor, value in weights.items():
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    layer.train()
    mask = torch.from_numpy(~np.tril(np.ones((LENGTH, LENGTH), bool))) if causal else None
    params = list(weights)

    def step(X, R):
        layer.zero_grad(set_to_none=True)
        x = torch.from_numpy(X).requires_grad_()
        y = layer(x, src_mask=mask, is_causal=causal)
        (y * torch.from_numpy(R)).sum().backward()
        return y, x

    def outputs(X, R):
        """y and the gradients in the order of xpnn's: in_proj split into q, k, v, and
        every weight transposed."""
        y, x = step(X, R)
        g = {p: p.grad.numpy() for p in params}
        d = DIM
        w, b = g[params[0]], g[params[1]]
        attention = [w[i * d:(i + 1) * d].T for i in range(3)] + [g[params[2]].T]
        attention += [b[i * d:(i + 1) * d] for i in range(3)] + [g[params[3]]]
        rest = [g[p].T if p.ndim == 2 else g[p] for p in params[4:]]
        return [y.detach().numpy(), x.grad.numpy(), *attention, *rest]

    return step, outputs


def agreement(ours, theirs):
    """(max |y - y_torch|, max |y_torch|, the same over every gradient). Absolute: some
    true gradients are zero (the key bias's: softmax ignores a shift of all scores)."""
    assert len(ours) == len(theirs)
    pairs = list(zip(ours, theirs))
    return [max(float(np.abs(f(g, t)).max()) for g, t in part)
            for part in (pairs[:1], pairs[1:]) for f in (np.subtract, lambda g, t: t)]


def interleaved(runners, chunks, steps, clock):
    """Each runner's seconds per step in each chunk, chunks run in a rotating order."""
    names, times = list(runners), {name: [] for name in runners}
    for k in range(chunks):
        for name in names[k % len(names):] + names[: k % len(names)]:
            time.sleep(0.05)
            start = clock()
            for _ in range(steps):
                runners[name]()
            times[name].append((clock() - start) / steps)
    return times


def report(times):
    for name, spent in times.items():
        print(f"  {name:5s} median {statistics.median(spent) * 1e3:8.2f} ms/step  best "
              f"{min(spent) * 1e3:8.2f}")
    ratios = [a / b for a, b in zip(times["xpnn"], times["torch"])]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    ratio = statistics.median(ratios)
    print(f"  xpnn / torch time: median per chunk {ratio:.3f} (quartiles {q1:.3f}-{q3:.3f}), "
          f"best {min(times['xpnn']) / min(times['torch']):.3f}   target <= 1.0: "
          f"{'met' if ratio <= 1.0 else 'NOT met'}")


def _resident_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def step_memory_mib(name, args):
    """In this process, after a warm-up step on one sample: the peak resident set of the
    first step, and of ``args.memory_steps`` steps, above the resident set before them, MiB.
    For xpnn on NumPy also the peak of the NumPy arrays one more step allocates (tracemalloc
    sees no buffer the plan already holds)."""
    X, R = inputs()
    if name == "torch":  # no xpnn Session here: its NumPy plan would tune this heap
        step, _ = make_torch(make_block(args.causal)[1], args.causal)
    else:
        step, _, _ = make_xpnn(args)
    step(X[:1], R[:1])  # loads code, initialises lazily; one sample leaves little behind
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _resident_kib("VmRSS")
    peaks = []
    for _ in range(max(args.memory_steps, 1)):
        step(X, R)
        peaks.append((_resident_kib("VmHWM") - before) / 1024)
    found = [peaks[0], peaks[-1]]
    if name == "xpnn" and args.backend is None:
        tracemalloc.start()
        step(X, R)
        found.append(tracemalloc.get_traced_memory()[1] / 2**20)
    return found


def peak_memory(args):
    """Each library's step peaks, each from a fresh interpreter."""
    found = {}
    for name in ("xpnn", "torch"):
        command = [sys.executable, __file__, "--memory-of", name, "--backend",
                   args.backend or "numpy", "--threads", str(args.threads),
                   "--memory-steps", str(args.memory_steps)]
        out = subprocess.run(command + ["--causal"] * args.causal, capture_output=True,
                             text=True, check=True)
        found[name] = [float(v) for v in out.stdout.split()]
    return found


def _pin_threads(threads, argv):
    """Re-run this script with every thread pool sized ``threads`` (BLAS reads its variable
    when NumPy is imported, which has happened by now)."""
    if os.environ.get("XPNN_BENCH_THREADS") == str(threads):
        return
    env = dict(os.environ, XPNN_BENCH_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               XPNN_THREADS=str(threads))
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, __file__, *argv], env)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["numpy", "torch", "jax"], default="numpy",
                   help="xpnn's backend (torch is always the baseline)")
    p.add_argument("--causal", action="store_true", help="a causal mask in both")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chunks", type=int, default=12)
    p.add_argument("--chunk-steps", type=int, default=6)
    p.add_argument("--memory-steps", type=int, default=3)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--clock", choices=["cpu", "wall"], default=None,
                   help="default: cpu with one thread, else wall")
    p.add_argument("--memory-of", choices=["xpnn", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.backend = None if args.backend == "numpy" else args.backend
    if args.clock is None:
        args.clock = "cpu" if args.threads == 1 else "wall"
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    _pin_threads(args.threads, argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.memory_of:
        print(" ".join(f"{v:.2f}" for v in step_memory_mib(args.memory_of, args)))
        return None
    X, R = inputs()
    xpnn_step, xpnn_outputs, block = make_xpnn(args)
    torch_step, torch_outputs = make_torch(block, args.causal)
    dy, y_max, dg, g_max = agreement(xpnn_outputs(X, R), torch_outputs(X, R))  # a warm-up
    print(f"TransformerBlock({DIM}, {HEADS}, ff_dim={FF_DIM}{', causal' * args.causal}) "
          f"forward + backward, input ({BATCH}, {LENGTH}, {DIM}) float32; xpnn on "
          f"{args.backend or 'numpy'}, torch {torch.__version__} CPU; {args.threads} "
          f"thread(s), {args.clock} time, {args.chunks} chunks of {args.chunk_steps} steps")
    print(f"  agreement: max |y - y_torch| {dy:.2e} (max |y_torch| {y_max:.2f}), largest "
          f"gradient difference {dg:.2e} (largest torch gradient entry {g_max:.2f})")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times = interleaved({"xpnn": lambda: xpnn_step(X, R), "torch": lambda: torch_step(X, R)},
                        args.chunks, args.chunk_steps, clock)
    report(times)
    if not args.no_memory:
        found = peak_memory(args)
        print(f"  peak extra memory (RSS high-water above the RSS before, a fresh process "
              f"each), first step / {args.memory_steps} steps: " + ", ".join(
                  f"{n} {v[0]:.1f} / {v[1]:.1f} MiB" for n, v in found.items()))
        if len(found["xpnn"]) > 2:
            print(f"  xpnn's new NumPy arrays in one more step (tracemalloc): peak "
                  f"{found['xpnn'][2]:.1f} MiB")
        ratio = found["xpnn"][0] / found["torch"][0]
        print(f"  xpnn / torch memory, first step: {ratio:.2f} ({args.memory_steps} steps: "
              f"{found['xpnn'][1] / found['torch'][1]:.2f})   target <= 1.2: "
              f"{'met' if ratio <= 1.2 else 'NOT met'}")
    return times


if __name__ == "__main__":
    main()
