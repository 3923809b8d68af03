"""MLP 784-512-256-10 (ReLU, batch 128) on MNIST: xpnn vs a hand-written NumPy loop vs
PyTorch, same initial weights, batches and optimizer (``--optimizer sgd`` lr 0.1,
``momentum`` 0.9 with lr 0.05, ``adam`` lr 1e-3), interleaved epochs, medians. (xpnn's Adam
is TF1's, epsilon added to sqrt(v); PyTorch's adds it to sqrt(v_hat): the same work per step.)

    python benchmarks/mlp_mnist.py --data ../shared/datasets/mnist --epochs 5
    python benchmarks/mlp_mnist.py --optimizer adam --epochs 3
    python benchmarks/mlp_mnist.py --device cuda        # CuPy vs PyTorch CUDA on a GPU

Without --data it trains on synthetic data of MNIST's shape, learnable as MNIST is (each
class a random "stroke" of pixels, a fifth of them drawn, among random noise pixels): every
runner's test accuracy, on 10,000 held-out samples, is about 0.94 after 2 to 5 epochs of SGD,
and benchmarks/gpu_check.sh checks it.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

import xpnn as xn

UNITS = [784, 512, 256, 10]
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-3}
MOMENTUM, BETA1, BETA2, EPSILON = 0.9, 0.9, 0.999, 1e-8


def load(args):
    if args.data:
        (X, y), (Xt, yt) = xn.data.load_mnist(root=args.data, download=False)
        return X, y, Xt, yt, "MNIST"
    return synthetic()


def synthetic(n=70_000, test=10_000, seed=0):
    """Images of MNIST's shape: class c has 15% of the pixels as its stroke, each drawn with
    probability 0.2, and every pixel is noise with probability 0.2 (intensities 0.5-1)."""
    rng = np.random.default_rng(seed)
    strokes = rng.random((10, 784)) < 0.15
    y = rng.integers(0, 10, n)
    on = (strokes[y] & (rng.random((n, 784)) < 0.2)) | (rng.random((n, 784)) < 0.2)
    X = (on * rng.uniform(0.5, 1.0, (n, 784))).astype(np.float32)
    return X[test:], y[test:], X[:test], y[:test], "synthetic data of MNIST's shape"


def initial_weights(seed=0):
    rng = xn.init.generator(seed)
    return [
        (xn.init.he_normal((n_in, n_out), rng), np.zeros(n_out, np.float32))
        for n_in, n_out in zip(UNITS[:-1], UNITS[1:])
    ]


def epoch_orders(n, epochs, batch_size, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


# ----------------------------------------------------------------------------- NumPy by hand


class NumpyMLP:
    """Forward, closed-form backward, in-place updates: the loop a careful person writes."""

    def __init__(self, weights, lr, optimizer="sgd"):
        self.params = [(W.copy(), b.copy()) for W, b in weights]
        self.lr, self.optimizer, self.t = lr, optimizer, 0
        self.slots = [[np.zeros_like(p) for p in pair for _ in range(2)] for pair in self.params]

    def logits(self, X):
        a = X
        for i, (W, b) in enumerate(self.params):
            a = a @ W + b
            if i < len(self.params) - 1:
                a = np.maximum(a, 0)
        return a

    def step(self, X, y):
        acts = [X]
        for i, (W, b) in enumerate(self.params):
            z = acts[-1] @ W + b
            acts.append(np.maximum(z, 0) if i < len(self.params) - 1 else z)
        z = acts[-1]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1  # dL/dz = (softmax - one_hot) / n
        dz = p / len(y)
        self.t += 1
        for i in reversed(range(len(self.params))):
            W, b = self.params[i]
            dW, db = acts[i].T @ dz, dz.sum(axis=0)
            if i:
                dz = (dz @ W.T) * (acts[i] > 0)
            self.update(W, dW, *self.slots[i][:2])
            self.update(b, db, *self.slots[i][2:])

    def update(self, param, grad, s1, s2):
        if self.optimizer == "sgd":
            param -= self.lr * grad
        elif self.optimizer == "momentum":  # v = m v + g; w -= lr v (PyTorch's and TF's)
            s1 *= MOMENTUM
            s1 += grad
            param -= self.lr * s1
        else:  # Adam with bias correction
            s1 *= BETA1
            s1 += (1 - BETA1) * grad
            s2 *= BETA2
            s2 += (1 - BETA2) * grad * grad
            m_hat = s1 / (1 - BETA1**self.t)
            v_hat = s2 / (1 - BETA2**self.t)
            param -= self.lr * m_hat / (np.sqrt(v_hat) + EPSILON)

    def accuracy(self, X, y):
        return float(np.mean(np.argmax(self.logits(X), axis=1) == y))


def run_numpy_epoch(model, X, y, order, batch_size):
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        model.step(X[idx], y[idx])


# ----------------------------------------------------------------------------- PyTorch


def make_torch(weights, lr, device, optimizer="sgd"):
    import torch

    layers = []
    for i, (W, b) in enumerate(weights):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(BETA1, BETA2), eps=EPSILON)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr,
                              momentum=MOMENTUM if optimizer == "momentum" else 0.0)
    return model, opt


def run_torch_epoch(model, opt, X, y, order, batch_size, device):
    import torch
    import torch.nn.functional as F

    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        xb = torch.from_numpy(X[idx]).to(device, non_blocking=True)
        yb = torch.from_numpy(y[idx]).to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    if device != "cpu":
        torch.cuda.synchronize()


def torch_accuracy(model, X, y, device):
    import torch

    with torch.no_grad():
        logits = model(torch.from_numpy(X).to(device))
    return float((logits.argmax(1).cpu().numpy() == y).mean())


# ----------------------------------------------------------------------------- xpnn


def make_xpnn(weights, lr, device, optimizer="sgd"):
    model = xn.nn.NNClassifier(UNITS, device=device)
    for layer, (W, b) in zip(model.layers, weights):
        layer.W, layer.b = W, b
    opt = {"sgd": lambda: xn.train.GradientDescentOptimizer(lr),
           "momentum": lambda: xn.train.MomentumOptimizer(lr, MOMENTUM),
           "adam": lambda: xn.train.AdamOptimizer(lr, BETA1, BETA2, EPSILON)}[optimizer]()
    return model, model._train_step(opt, None)


def run_xpnn_epoch(model, step, X, y, order, batch_size):
    run, inputs, labels = model.session.run, model.inputs, model.labels
    weights, ones = model.sample_weight, {}  # every sample weighs 1, as fit feeds them
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        w = ones.get(len(idx))
        if w is None:
            w = ones[len(idx)] = np.ones(len(idx), np.float32)
        run(step, {inputs: X[idx], labels: y[idx], weights: w})
    xn.to_numpy(model.layers[0].b)  # wait for the device


# ----------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=sorted(LEARNING_RATES), default="sgd")
    p.add_argument("--lr", type=float, default=None, help="default: 0.1 sgd, 0.05 momentum, "
                   "1e-3 adam")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--flush-denormals", action="store_true",
                   help="every runner's main thread flushes subnormals to zero "
                   "(torch.set_flush_denormal); by default only xpnn's updates do")
    p.add_argument("--chunk", type=int, default=100, help="steps per interleaved chunk")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = p.parse_args(argv)

    if args.lr is None:
        args.lr = LEARNING_RATES[args.optimizer]
    X, y, Xt, yt, what = load(args)
    weights = initial_weights()
    orders = epoch_orders(len(X), args.epochs, args.batch_size)
    print(f"data: {what}; {args.epochs} epochs of {-(-len(X) // args.batch_size)} steps, "
          f"batch {args.batch_size}, {args.optimizer} lr {args.lr}, device {args.device}")

    runners = {}
    model, step = make_xpnn(weights, args.lr, args.device, args.optimizer)
    runners["xpnn"] = (lambda o: run_xpnn_epoch(model, step, X, y, o, args.batch_size),
                       lambda: model.score(Xt, yt))
    if args.device == "cpu":
        ref = NumpyMLP(weights, args.lr, args.optimizer)
        runners["numpy"] = (lambda o: run_numpy_epoch(ref, X, y, o, args.batch_size),
                            lambda: ref.accuracy(Xt, yt))
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch not importable: skipping the PyTorch baseline")
        else:
            tdev = "cuda" if args.device.startswith("cuda") else "cpu"
            tmodel, topt = make_torch(weights, args.lr, tdev, args.optimizer)
            runners["torch"] = (
                lambda o: run_torch_epoch(tmodel, topt, X, y, o, args.batch_size, tdev),
                lambda: torch_accuracy(tmodel, Xt, yt, tdev),
            )
            print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
            if args.flush_denormals and not torch.set_flush_denormal(True):
                print("this CPU cannot flush subnormals: --flush-denormals does nothing")

    # Interleave in chunks of --chunk steps so that a slow spell of the machine hits every
    # runner alike; an epoch's time is the sum of its chunks. The order rotates and each
    # runner starts after a short pause, so no runner always inherits the previous one's
    # still-spinning BLAS/OpenMP threads.
    times = {name: [] for name in runners}
    chunk_times = {name: [] for name in runners}  # for ratios of neighbouring chunks
    names = list(runners)
    chunk = args.chunk * args.batch_size
    for epoch, order in enumerate(orders):
        spent = dict.fromkeys(runners, 0.0)
        for k, start in enumerate(range(0, len(order), chunk)):
            part = order[start : start + chunk]
            for name in names[k % len(names):] + names[: k % len(names)]:
                time.sleep(0.1)
                t0 = time.perf_counter()
                runners[name][0](part)
                chunk_times[name].append(time.perf_counter() - t0)
                spent[name] += chunk_times[name][-1]
        for name in runners:
            times[name].append(spent[name])
        print(f"epoch {epoch + 1}: " + ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()),
              flush=True)

    medians = {n: statistics.median(t) for n, t in times.items()}
    print("\nmedian seconds per epoch and test accuracy after training:")
    for name, (_, accuracy) in runners.items():
        print(f"  {name:6s} {medians[name]:.3f} s/epoch   accuracy {accuracy():.4f}")
    # The ratio of median epochs; the median over chunks of xpnn's time over the baseline's
    # on the same batches a moment apart (less moved by the machine's drift); and the ratio
    # of each runner's fastest epoch (the machine at its quietest: on a shared VM the NumPy
    # loop, which moves more memory, slows more than xpnn when a neighbour is busy).
    for base in ("torch", "numpy"):
        if base in medians:
            ratios = [x / b for x, b in zip(times["xpnn"], times[base])]
            paired = [x / b for x, b in zip(chunk_times["xpnn"], chunk_times[base])]
            q1, q2, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
            print(f"  xpnn / {base}: {medians['xpnn'] / medians[base]:.3f} "
                  f"(per-epoch ratios {min(ratios):.3f}-{max(ratios):.3f}); "
                  f"per chunk: median {q2:.3f}, quartiles {q1:.3f}-{q3:.3f}; "
                  f"fastest epochs {min(times['xpnn']) / min(times[base]):.3f}")

    if args.device == "cpu" and not args.no_memory:
        peaks = {}
        for name, run_epoch in (("xpnn", runners["xpnn"][0]), ("numpy", runners["numpy"][0])):
            tracemalloc.start()
            run_epoch(orders[0][: 50 * args.batch_size])
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        print(f"\npeak traced memory over 50 steps: xpnn {peaks['xpnn'] / 2**20:.1f} MiB, "
              f"numpy {peaks['numpy'] / 2**20:.1f} MiB, ratio {peaks['xpnn'] / peaks['numpy']:.2f}")
    return {"medians": medians}


if __name__ == "__main__":
    main()
