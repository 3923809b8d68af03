"""The "simple MNIST convnet" (conv 32 3x3 ReLU, max-pool 2, conv 64 3x3 ReLU, max-pool 2,
flatten, dropout 0.5, dense 10; Adam 1e-3, batch 128) in xpnn and in PyTorch CPU eager: same
initial weights and batches, interleaved in chunks, seconds per epoch and test accuracy of
each, and the ratio. (Dropout masks differ: each library draws its own.) Then the peak memory
of training of each, measured alike in a fresh process per library: the resident set's
high-water mark during ten steps above the resident set before them (Linux).

    python benchmarks/cnn_mnist.py --data ../shared/datasets/mnist --epochs 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import xpnn as xn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from mnist_cnn import convnet  # noqa: E402  (the example's layers, the same weights)


def load(args):
    if args.data:
        (X, y), (Xt, yt) = xn.data.load_mnist(root=args.data, download=False)
    else:
        rng = np.random.default_rng(0)
        X, y = rng.random((60_000, 784), dtype=np.float32), rng.integers(0, 10, 60_000)
        Xt, yt = X[:10_000], y[:10_000]
    n = args.limit or len(X)
    return X[:n].reshape(-1, 28, 28, 1), y[:n], Xt.reshape(-1, 28, 28, 1), yt


def make_xpnn(device, backend=None):
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier(convnet(0), input_shape=(28, 28, 1), device=device,
                                   backend=backend, seed=0)
    step = model._train_step(xn.train.AdamOptimizer(1e-3), None)
    fetches = [step, *model.net.updates()]

    def run(X, y, order, batch_size):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            model.session.run(fetches, model._feed(X[idx], y[idx], training=True))
        xn.to_numpy(model.layers[0].b)  # wait for the device

    return model, run


def make_torch(model, device):
    import torch

    convs = [layer for layer in model.layers if isinstance(layer, xn.nn.Conv2D)]
    dense = model.layers[-1]
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10))
    with torch.no_grad():  # HWIO -> OIHW; NHWC flatten order -> NCHW's
        for layer, conv in zip((net[0], net[3]), convs):
            layer.weight.copy_(torch.from_numpy(xn.to_numpy(conv.W).transpose(3, 2, 0, 1)))
            layer.bias.copy_(torch.from_numpy(xn.to_numpy(conv.b)))
        W = xn.to_numpy(dense.W).reshape(5, 5, 64, 10).transpose(2, 0, 1, 3).reshape(1600, 10)
        net[8].weight.copy_(torch.from_numpy(W.T.copy()))
        net[8].bias.copy_(torch.from_numpy(xn.to_numpy(dense.b)))
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def run(X, y, order, batch_size):
        net.train()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            xb = torch.from_numpy(X[idx].transpose(0, 3, 1, 2).copy()).to(device)
            yb = torch.from_numpy(y[idx]).to(device)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()

    def accuracy(Xt, yt, batch_size=1000):
        net.eval()
        hits = 0
        with torch.no_grad():
            for start in range(0, len(Xt), batch_size):
                xb = Xt[start : start + batch_size].transpose(0, 3, 1, 2).copy()
                logits = net(torch.from_numpy(xb).to(device))
                hits += int((logits.argmax(1).cpu().numpy() == yt[start : start + batch_size])
                            .sum())
        return hits / len(Xt)

    return run, accuracy


def _resident_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def step_peak_mib(name, args, steps=10):
    """In this process: the RSS high-water mark of ``steps`` training steps of ``name`` (the
    first one making plans, optimizer slots and caches) above the RSS before them, with the
    data, the library and the model's weights already in memory."""
    n = args.batch_size
    rng = np.random.default_rng(0)
    X = rng.random((steps * n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    model, run = make_xpnn(args.device)
    if name == "torch":
        run, _ = make_torch(model, "cuda" if args.device.startswith("cuda") else "cpu")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _resident_kib("VmRSS")
    run(X, y, np.arange(len(X)), n)
    return (_resident_kib("VmHWM") - before) / 1024


def peak_memory(names, args):
    """Each library's step peak, from a fresh interpreter (one process's heap would blur both)."""
    peaks = {}
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--memory-of", name, "--device",
                              args.device, "--batch-size", str(args.batch_size)],
                             capture_output=True, text=True, check=True)
        peaks[name] = float(out.stdout.split()[-1])
    return peaks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="train on the first N samples")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--chunk", type=int, default=50, help="steps per interleaved chunk")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--memory-of", choices=["xpnn", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_of:
        print(f"{step_peak_mib(args.memory_of, args):.1f}")
        return None

    X, y, Xt, yt = load(args)
    model, run_xpnn = make_xpnn(args.device)
    runners = {"xpnn": (run_xpnn, lambda: model.score(Xt, yt))}
    try:
        import torch
    except ImportError:
        print("torch not importable: xpnn alone")
    else:
        tdev = "cuda" if args.device.startswith("cuda") else "cpu"
        run_torch, torch_accuracy = make_torch(model, tdev)
        runners["torch"] = (run_torch, lambda: torch_accuracy(Xt, yt))
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rng = np.random.default_rng(1)
    times = {name: [] for name in runners}
    chunk = args.chunk * args.batch_size
    for epoch in range(args.epochs):
        order, spent = rng.permutation(len(X)), dict.fromkeys(runners, 0.0)
        for start in range(0, len(order), chunk):
            for name, (run, _) in runners.items():
                t0 = time.perf_counter()
                run(X, y, order[start : start + chunk], args.batch_size)
                spent[name] += time.perf_counter() - t0
        for name in runners:
            times[name].append(spent[name])
        print(f"epoch {epoch + 1}: " + ", ".join(f"{n} {t[-1]:.1f}s" for n, t in times.items()),
              flush=True)
    medians = {n: statistics.median(t) for n, t in times.items()}
    for name, (_, accuracy) in runners.items():
        print(f"  {name:6s} {medians[name]:.1f} s/epoch   test accuracy {accuracy():.4f}")
    if "torch" in medians:
        print(f"  xpnn / torch: {medians['xpnn'] / medians['torch']:.2f}")
    if not args.no_memory:
        peaks = peak_memory(runners, args)
        print(f"  peak memory of 10 steps (RSS above the resident set before, batch "
              f"{args.batch_size}): " + ", ".join(f"{n} {m:.1f} MiB" for n, m in peaks.items()))
        if "torch" in peaks:
            print(f"  xpnn / torch memory: {peaks['xpnn'] / peaks['torch']:.2f}")
    return medians


if __name__ == "__main__":
    main()
