"""An LSTM language-model training step (one-hot input of ``--vocab`` characters, one LSTM
layer of ``--hidden`` units over ``--steps`` time steps, a linear layer back to the vocab,
softmax cross-entropy at every step, Adam), batch ``--batch``: xpnn (``xn.nn.LSTM``, its
time loop unrolled or an ``xn.control_flow`` scan) against PyTorch's ``nn.LSTM`` with the
same initial weights and batches, and xpnn on JAX against a hand-written ``jax.jit`` +
``lax.scan`` LSTM (the JAX pair in a second process: XLA's threads would share the cores
with the others). Runs are interleaved in chunks in a rotating order; it prints each
runner's median milliseconds per step, the median over chunks of the ratios, and each
runner's last loss (the same work: the losses must agree to a few digits after the same
number of steps from the same weights). With one thread (the default) the time is CPU
time: the calling thread's for NumPy and torch, the process's for the two JAX runners.

    python benchmarks/lstm_step.py                       # issue #26's sizes
    python benchmarks/lstm_step.py --chunks 3 --chunk-steps 2 --hidden 64   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _threads(n):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))


def make_data(args):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    ids = rng.integers(0, args.vocab, (args.batch, args.steps + 1))
    x = np.eye(args.vocab, dtype=np.float32)[ids[:, :-1]]
    return x, ids[:, 1:].astype(np.int64)


def initial_weights(args):
    import numpy as np

    rng = np.random.default_rng(args.seed + 1)
    k = 1.0 / np.sqrt(args.hidden)
    u = lambda *shape: rng.uniform(-k, k, shape).astype(np.float32)  # noqa: E731
    four = 4 * args.hidden
    return {"weight_ih": u(four, args.vocab), "weight_hh": u(four, args.hidden),
            "bias_ih": u(four), "bias_hh": u(four),
            "W": u(args.hidden, args.vocab), "b": u(args.vocab)}


def xpnn_runner(args, weights, x, y, backend, loop, device=None):
    import xpnn as xn

    graph = xn.Graph()
    with graph.as_default():
        inputs = xn.placeholder("float32", x.shape, name="x")
        labels = xn.placeholder("int64" if backend != "jax" else "int32", y.shape, name="y")
        lstm = xn.nn.LSTM(args.vocab, args.hidden, return_sequences=True, loop=loop)
        head = xn.nn.Linear(args.hidden, args.vocab)
        hidden = xn.reshape(lstm(inputs), (-1, args.hidden))
        logits = head(hidden)
        loss = xn.losses.sparse_softmax_cross_entropy(xn.reshape(labels, (-1,)), logits)
        step = xn.train.AdamOptimizer(args.lr).minimize(loss)
        sess = (xn.Session(device=device, graph=graph) if device else
                xn.Session(backend=backend, graph=graph))
        for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            sess.set_value(getattr(lstm, part), weights[part])
        sess.set_value(head.weight, weights["W"])
        sess.set_value(head.bias, weights["b"])
    feed = {inputs: x, labels: y if backend != "jax" else y.astype("int32")}

    def run(n):
        value = None
        for _ in range(n):
            value, _ = sess.run([loss, step], feed)
        return float(xn.to_numpy(value))

    return run


def torch_runner(args, weights, x, y, device="cpu"):
    import torch

    torch.set_num_threads(args.threads)
    lstm = torch.nn.LSTM(args.vocab, args.hidden, batch_first=True).to(device)
    head = torch.nn.Linear(args.hidden, args.vocab).to(device)
    with torch.no_grad():
        for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{part}_l0").copy_(torch.from_numpy(weights[part]))
        head.weight.copy_(torch.from_numpy(weights["W"]).T)
        head.bias.copy_(torch.from_numpy(weights["b"]))
    params = list(lstm.parameters()) + list(head.parameters())
    # TF1's Adam (xpnn's): epsilon 1e-8 on the bias-corrected step, as torch's eps here
    opt = torch.optim.Adam(params, lr=args.lr, eps=1e-8)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).reshape(-1).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(n):
        value = None
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            out, _ = lstm(xt)
            value = loss_fn(head(out.reshape(-1, args.hidden)), yt)
            value.backward()
            opt.step()
        return float(value.detach())

    return run


def jax_runner(args, weights, x, y):
    import jax
    import jax.numpy as jnp

    params = {k: jnp.asarray(v) for k, v in weights.items()}
    xs, ys = jnp.asarray(x), jnp.asarray(y.astype("int32")).reshape(-1)
    H = args.hidden

    def loss_fn(p):
        gates_x = jnp.einsum("btv,gv->tbg", xs, p["weight_ih"]) + p["bias_ih"] + p["bias_hh"]

        def cell(carry, gx):
            h, c = carry
            g = gx + h @ p["weight_hh"].T
            i, f = jax.nn.sigmoid(g[:, :H]), jax.nn.sigmoid(g[:, H:2 * H])
            gg, o = jnp.tanh(g[:, 2 * H:3 * H]), jax.nn.sigmoid(g[:, 3 * H:])
            c = f * c + i * gg
            h = o * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((xs.shape[0], H), jnp.float32)
        _, hs = jax.lax.scan(cell, (zeros, zeros), gates_x)
        logits = jnp.swapaxes(hs, 0, 1).reshape(-1, H) @ p["W"] + p["b"]
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, ys[:, None], axis=1))

    b1, b2, eps, lr = 0.9, 0.999, 1e-8, args.lr

    @jax.jit
    def step(p, m, v, t):
        value, g = jax.value_and_grad(loss_fn)(p)
        t = t + 1
        lr_t = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)  # TF1's Adam
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        p = jax.tree_util.tree_map(lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps), p, m, v)
        return p, m, v, t, value

    state = [params, jax.tree_util.tree_map(jnp.zeros_like, params),
             jax.tree_util.tree_map(jnp.zeros_like, params), jnp.asarray(0.0)]

    def run(n):
        value = None
        for _ in range(n):
            *state[:], value = step(*state)
        return float(value.block_until_ready())

    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50, help="time steps")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--vocab", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--chunks", type=int, default=6)
    p.add_argument("--chunk-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=["cpu", "wall"], default=None)
    p.add_argument("--runners", default="all",
                   help="comma list of xpnn-unroll,xpnn-scan,torch,xpnn-jax,jax (all), "
                        "xpnn-jax-unroll (slow to compile), xpnn-cuda,torch-cuda on a GPU")
    args = p.parse_args(argv)
    _threads(args.threads)
    clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    # CPU time: the calling thread's for NumPy and torch (one thread does all their work),
    # the process's for JAX (XLA computes on threads of its own); a process's CPU time
    # would also count XLA's idle threads while NumPy or torch runs.
    cpu = {True: time.process_time, False: time.thread_time}
    x, y = make_data(args)
    weights = initial_weights(args)
    makers = {"xpnn-unroll": lambda: xpnn_runner(args, weights, x, y, "numpy", "unroll"),
              "xpnn-scan": lambda: xpnn_runner(args, weights, x, y, "numpy", "scan"),
              "torch": lambda: torch_runner(args, weights, x, y),
              "xpnn-jax": lambda: xpnn_runner(args, weights, x, y, "jax", "scan"),
              "xpnn-jax-unroll": lambda: xpnn_runner(args, weights, x, y, "jax", "unroll"),
              "jax": lambda: jax_runner(args, weights, x, y),
              # on a CUDA machine (benchmarks/gpu_check.sh): not in "all"
              "xpnn-cuda": lambda: xpnn_runner(args, weights, x, y, None, "unroll", "cuda"),
              "torch-cuda": lambda: torch_runner(args, weights, x, y, "cuda")}
    names = ([n for n in makers if "cuda" not in n and n != "xpnn-jax-unroll"]
             if args.runners == "all"
             else args.runners.split(","))
    jax_names = [n for n in names if "jax" in n]
    if jax_names and len(jax_names) < len(names):
        # JAX's own threads would share the cores with NumPy and torch: a process each
        names = [n for n in names if n not in jax_names]
        command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
        command += ["--runners", ",".join(jax_names)]
    else:
        command = None
    runners, losses = {}, {}
    for name in names:
        try:
            runners[name] = makers[name]()
            runners[name](1)  # compile, warm up (every runner takes the same first step)
        except (ImportError, RuntimeError, AssertionError) as exc:  # no library or device
            print(f"{name}: skipped ({exc})")
    names = [n for n in names if n in runners]
    times = {n: [] for n in names}
    for chunk in range(args.chunks):
        order = names[chunk % len(names):] + names[: chunk % len(names)]
        for name in order:
            now = cpu["jax" in name] if clock == "cpu" else time.perf_counter
            start = now()
            losses[name] = runners[name](args.chunk_steps)
            times[name].append((now() - start) / args.chunk_steps * 1e3)
    print(f"LSTM step: batch {args.batch}, {args.steps} time steps, hidden {args.hidden}, "
          f"vocab {args.vocab}, {args.threads} thread(s), {clock} time, "
          f"{args.chunks} chunks x {args.chunk_steps} steps")
    for name in names:
        print(f"  {name:12s} median {statistics.median(times[name]):8.1f} ms/step   "
              f"best {min(times[name]):8.1f}   last loss {losses[name]:.5f}")
    for a, b in [("xpnn-unroll", "torch"), ("xpnn-scan", "torch"), ("xpnn-jax", "jax"),
                 ("xpnn-jax-unroll", "jax"),
                 ("xpnn-cuda", "torch-cuda")]:
        if a in times and b in times:
            ratio = statistics.median(t / u for t, u in zip(times[a], times[b]))
            print(f"  {a} / {b}: {ratio:.2f}")
    return subprocess.call(command) if command else 0


if __name__ == "__main__":
    sys.exit(main())
