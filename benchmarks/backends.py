"""xpnn on JAX (each plan compiled into one ``jax.jit`` call by ``xpnn/devices/jax``) against a
hand-written ``jax.jit`` training step, same initial weights, batches and optimizer rule:

- MLP 784-512-256-10 (ReLU, batch 128) on MNIST or random data of its shape, with SGD,
  momentum and Adam (``mlp_mnist.py``'s learning rates): interleaved chunks of steps, the
  median epoch, the ratio, and the test accuracy of each so that nothing wins by computing
  less;
- the tiny step: lesson 5's 3->4 linear + sigmoid + BCE net, one sample a step
  (``small_step.py``): microseconds per step (best of interleaved repeats), final losses;
- the simple MNIST convnet of ``cnn_mnist.py`` (conv 32, pool, conv 64, pool, dropout 0.5,
  dense 10; Adam 1e-3, batch 128) against a jitted step of ``lax.conv_general_dilated``
  and ``lax.reduce_window`` differentiated by ``jax.grad``: interleaved chunks, the median
  chunk, the ratio, test accuracies. (Dropout masks differ: xpnn draws them on the host,
  the hand-written step with ``jax.random`` inside the call.)

Targets (issue 13): MLP <= 1.1x the hand-written step, tiny step <= 3x (issue #30: 1.5x);
the CNN has none.

    python benchmarks/backends.py                                   # one epoch of each
    python benchmarks/backends.py --data ../shared/datasets/mnist --epochs 2
    python benchmarks/backends.py --steps 150 --tiny-steps 2000     # a short look
    python benchmarks/backends.py --data ../shared/datasets/mnist --skip mlp,tiny \
        --cnn-steps 469                                             # a convnet epoch
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from cnn_mnist import make_xpnn as make_xpnn_cnn
from mlp_mnist import (
    BETA1,
    BETA2,
    EPSILON,
    LEARNING_RATES,
    MOMENTUM,
    UNITS,
    epoch_orders,
    initial_weights,
    load,
)
from small_step import LR as TINY_LR
from small_step import X as TINY_X
from small_step import Y as TINY_Y
from small_step import initial_weights as tiny_weights

import xpnn as xn

# ----------------------------------------------------------------------------- MLP, by hand


class JaxMLP:
    """The step a careful JAX user writes: one jitted function, parameters and optimizer
    slots donated, NumPy batches passed straight in."""

    def __init__(self, weights, lr, optimizer):
        import jax
        import jax.numpy as jnp

        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
        self.slots = [tuple(jnp.zeros_like(p) for _ in range(2) for p in pair)  # m, then v
                      for pair in self.params]
        self.t = jnp.zeros((), jnp.float32)
        self.logits = jax.jit(_logits)
        self.step = jax.jit(_jax_step(lr, optimizer), donate_argnums=(0, 1, 2))

    def run(self, X, y, order, batch_size):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            self.params, self.slots, self.t = self.step(self.params, self.slots, self.t,
                                                        X[idx], y[idx])
        self.t.block_until_ready()

    def accuracy(self, X, y):
        return float(np.mean(np.argmax(np.asarray(self.logits(self.params, X)), 1) == y))


def _logits(params, x):
    import jax.numpy as jnp

    for i, (W, b) in enumerate(params):
        x = x @ W + b
        if i < len(params) - 1:
            x = jnp.maximum(x, 0.0)
    return x


def _jax_update(lr, optimizer):
    """update(p, g, s1, s2, t) -> (p, s1, s2): one parameter's step (Adam as the paper and
    PyTorch write it: epsilon added to sqrt(v_hat); xpnn's is TF1's, the same work)."""
    import jax.numpy as jnp

    def update(p, g, s1, s2, t):
        if optimizer == "sgd":
            return p - lr * g, s1, s2
        if optimizer == "momentum":  # v = m v + g; w -= lr v
            v = MOMENTUM * s1 + g
            return p - lr * v, v, s2
        m = BETA1 * s1 + (1 - BETA1) * g
        v = BETA2 * s2 + (1 - BETA2) * g * g
        m_hat, v_hat = m / (1 - BETA1**t), v / (1 - BETA2**t)
        return p - lr * m_hat / (jnp.sqrt(v_hat) + EPSILON), m, v

    return update


def _cross_entropy(z, y):
    import jax
    import jax.numpy as jnp

    picked = jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)


def _jax_step(lr, optimizer):
    import jax

    update = _jax_update(lr, optimizer)

    def loss(params, x, y):
        return _cross_entropy(_logits(params, x), y)

    def step(params, slots, t, x, y):
        grads = jax.grad(loss)(params, x, y)
        t = t + 1.0
        new_params, new_slots = [], []
        for (W, b), (gW, gb), (mW, mb, vW, vb) in zip(params, grads, slots):
            W, mW, vW = update(W, gW, mW, vW, t)
            b, mb, vb = update(b, gb, mb, vb, t)
            new_params.append((W, b))
            new_slots.append((mW, mb, vW, vb))
        return new_params, new_slots, t

    return step


# ----------------------------------------------------------------------------- MLP, xpnn


class XpnnMLP:
    def __init__(self, weights, lr, optimizer):
        self.model = xn.nn.NNClassifier(UNITS, device="cpu", backend="jax")
        for layer, (W, b) in zip(self.model.layers, weights):
            layer.W, layer.b = W, b
        opt = {"sgd": lambda: xn.train.GradientDescentOptimizer(lr),
               "momentum": lambda: xn.train.MomentumOptimizer(lr, MOMENTUM),
               "adam": lambda: xn.train.AdamOptimizer(lr, BETA1, BETA2, EPSILON)}[optimizer]()
        self.step = self.model._train_step(opt, None)

    def run(self, X, y, order, batch_size):
        run, inputs, labels = self.model.session.run, self.model.inputs, self.model.labels
        weights, ones = self.model.sample_weight, {}  # every sample weighs 1, as fit feeds
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            w = ones.get(len(idx))
            if w is None:
                w = ones[len(idx)] = np.ones(len(idx), np.float32)
            run(self.step, {inputs: X[idx], labels: y[idx], weights: w})
        xn.to_numpy(self.model.layers[0].b)  # wait for the device

    def accuracy(self, X, y):
        return self.model.score(X, y)


def compare_mlp(args, data, optimizer):
    X, y, Xt, yt = data
    lr = LEARNING_RATES[optimizer]
    weights = initial_weights()
    runners = {"xpnn-jax": XpnnMLP(weights, lr, optimizer),
               "jax.jit": JaxMLP(weights, lr, optimizer)}
    orders = [o[: args.steps * args.batch_size] if args.steps else o
              for o in epoch_orders(len(X), args.epochs, args.batch_size)]
    # Compile both first, for a full batch and the epoch's last (smaller) one: both runners
    # train on these few batches alike, so the comparison stays fair.
    warm = orders[0][: 3 * args.batch_size]
    last = len(orders[0]) % args.batch_size or args.batch_size
    for runner in runners.values():
        runner.run(X, y, warm, args.batch_size)
        runner.run(X, y, warm[:last], args.batch_size)
    times = {name: [] for name in runners}
    chunk_times = {name: [] for name in runners}
    names, chunk = list(runners), args.chunk * args.batch_size
    for order in orders:
        spent = dict.fromkeys(runners, 0.0)
        for k, start in enumerate(range(0, len(order), chunk)):
            part = order[start : start + chunk]
            for name in names[k % 2:] + names[: k % 2]:  # alternate who goes first
                time.sleep(0.05)
                t0 = time.perf_counter()
                runners[name].run(X, y, part, args.batch_size)
                chunk_times[name].append(time.perf_counter() - t0)
                spent[name] += chunk_times[name][-1]
        for name in runners:
            times[name].append(spent[name])
    medians = {n: statistics.median(t) for n, t in times.items()}
    steps = -(-len(orders[0]) // args.batch_size)
    print(f"\nMLP {'-'.join(map(str, UNITS))}, {optimizer} lr {lr}, {len(orders)} epoch(s) of "
          f"{steps} steps, batch {args.batch_size}:")
    for name, runner in runners.items():
        print(f"  {name:9s} {medians[name]:7.3f} s/epoch  {medians[name] / steps * 1e3:6.2f} "
              f"ms/step   test accuracy {runner.accuracy(Xt, yt):.4f}")
    paired = [a / b for a, b in zip(chunk_times["xpnn-jax"], chunk_times["jax.jit"])]
    q1, q2, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
    ratio = medians["xpnn-jax"] / medians["jax.jit"]
    print(f"  xpnn-jax / jax.jit: {ratio:.3f} (target <= 1.1); per chunk: median {q2:.3f}, "
          f"quartiles {q1:.3f}-{q3:.3f}")
    return ratio


# ----------------------------------------------------------------------------- tiny step


class XpnnTiny:
    def __init__(self):
        W, b = tiny_weights()
        with xn.Graph().as_default():
            self.x = xn.placeholder(shape=(3,), name="x")
            self.y = xn.placeholder(shape=(4,), name="y")
            weight, bias = xn.Variable(W, name="W"), xn.Variable(b, name="b")
            p = xn.sigmoid(weight @ self.x + bias)
            loss = xn.losses.binary_cross_entropy(p, self.y, reduction="sum")
            self.fetches = [xn.train.GradientDescentOptimizer(TINY_LR).minimize(loss), loss]
            self.sess = xn.Session(backend="jax")
        self.i, self.loss = 0, None

    def run(self, steps):
        run, fetches, x, y, i = self.sess.run, self.fetches, self.x, self.y, self.i
        for i in range(self.i, self.i + steps):
            out = run(fetches, {x: TINY_X[i % 5], y: TINY_Y[i % 5]})
        self.i, self.loss = i + 1, out[1]
        return float(self.loss)


class JaxTiny:
    def __init__(self):
        import jax
        import jax.numpy as jnp

        def loss_fn(W, b, x, y):
            p = jax.nn.sigmoid(W @ x + b)
            return -jnp.sum(y * jnp.maximum(jnp.log(p), -100.0)
                            + (1 - y) * jnp.maximum(jnp.log(1 - p), -100.0))

        def step(W, b, x, y):
            loss, (gW, gb) = jax.value_and_grad(loss_fn, argnums=(0, 1))(W, b, x, y)
            return W - TINY_LR * gW, b - TINY_LR * gb, loss

        W, b = tiny_weights()
        self.W, self.b = jnp.asarray(W), jnp.asarray(b)
        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.i, self.loss = 0, None

    def run(self, steps):
        W, b, step, i = self.W, self.b, self.step, self.i
        for i in range(self.i, self.i + steps):
            W, b, loss = step(W, b, TINY_X[i % 5], TINY_Y[i % 5])
        self.W, self.b, self.i, self.loss = W, b, i + 1, loss
        return float(loss)


def compare_tiny(args):
    runners = {"xpnn-jax": XpnnTiny(), "jax.jit": JaxTiny()}
    clock = time.process_time if args.tiny_clock == "cpu" else time.perf_counter
    for runner in runners.values():
        runner.run(50)  # compile
    best = {}
    for r in range(args.repeat):  # interleaved; each one's best
        for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
            time.sleep(0.05)
            t0 = clock()
            runners[name].run(args.tiny_steps)
            us = (clock() - t0) / args.tiny_steps * 1e6
            best[name] = min(best.get(name, us), us)
    steps = runners["jax.jit"].i
    print(f"\ntiny step (lesson 5, 3->4 sigmoid + BCE, one sample), best of {args.repeat} x "
          f"{args.tiny_steps} steps ({args.tiny_clock} clock; load average "
          f"{os.getloadavg()[0]:.2f}):")
    for name, runner in runners.items():
        print(f"  {name:9s} {best[name]:7.1f} us/step   loss after {steps} steps "
              f"{float(runner.loss):.7f}")
    ratio = best["xpnn-jax"] / best["jax.jit"]
    print(f"  xpnn-jax / jax.jit: {ratio:.2f} (target <= 1.5, issue #30)")
    return ratio


# ----------------------------------------------------------------------------- CNN


class JaxCNN:
    """The convnet a careful JAX user writes: ``lax.conv_general_dilated`` and
    ``lax.reduce_window`` in NHWC with HWIO filters (xpnn's layout: the same weights as they
    are), gradients by ``jax.grad``, dropout from ``jax.random`` inside the step, Adam as
    ``JaxMLP``'s; one jitted step, parameters, slots and key donated."""

    def __init__(self, model, lr=1e-3):
        import jax
        import jax.numpy as jnp

        layers = [layer for layer in model.layers if hasattr(layer, "W")]
        self.params = [jnp.asarray(xn.to_numpy(getattr(layer, name)))
                       for layer in layers for name in ("W", "b")]
        self.slots = [(jnp.zeros_like(p), jnp.zeros_like(p)) for p in self.params]
        self.t, self.key = jnp.zeros((), jnp.float32), jax.random.PRNGKey(0)
        self.logits = jax.jit(_cnn_logits)
        self.step = jax.jit(_jax_cnn_step(lr), donate_argnums=(0, 1, 2, 3))

    def run(self, X, y, order, batch_size):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            self.params, self.slots, self.t, self.key = self.step(
                self.params, self.slots, self.t, self.key, X[idx], y[idx])
        self.t.block_until_ready()

    def accuracy(self, X, y, batch_size=1000):
        hits = 0
        for i in range(0, len(X), batch_size):
            logits = np.asarray(self.logits(self.params, X[i : i + batch_size], None))
            hits += int(np.sum(np.argmax(logits, 1) == y[i : i + batch_size]))
        return hits / len(X)


def _cnn_logits(params, x, keep):
    """The convnet's logits; ``keep`` the dropout mask (already scaled), None to test."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def conv_relu_pool(x, w, b):
        z = lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        z = jax.nn.relu(z + b)
        return lax.reduce_window(z, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    w1, b1, w2, b2, w3, b3 = params
    h = conv_relu_pool(conv_relu_pool(x, w1, b1), w2, b2)
    h = h.reshape(h.shape[0], -1)
    return (h if keep is None else h * keep) @ w3 + b3


def _jax_cnn_step(lr):
    import jax

    update = _jax_update(lr, "adam")

    def loss(params, x, y, keep):
        return _cross_entropy(_cnn_logits(params, x, keep), y)

    def step(params, slots, t, key, x, y):
        key, draw = jax.random.split(key)
        keep = jax.random.bernoulli(draw, 0.5, (x.shape[0], 1600)).astype(x.dtype) * 2.0
        grads = jax.grad(loss)(params, x, y, keep)
        t = t + 1.0
        new = [update(p, g, m, v, t) for p, g, (m, v) in zip(params, grads, slots)]
        return [n[0] for n in new], [(n[1], n[2]) for n in new], t, key

    return step


class XpnnCNN:
    def __init__(self):
        self.model, self._run = make_xpnn_cnn("cpu", backend="jax")

    def run(self, X, y, order, batch_size):
        self._run(X, y, order, batch_size)

    def accuracy(self, X, y):
        return self.model.score(X, y)


def compare_cnn(args, data):
    X, y, Xt, yt = (a.reshape(-1, 28, 28, 1) if a.ndim == 2 else a for a in data)
    xpnn_cnn = XpnnCNN()
    runners = {"xpnn-jax": xpnn_cnn, "jax.jit": JaxCNN(xpnn_cnn.model)}
    rng = np.random.default_rng(2)
    order = np.concatenate([rng.permutation(len(X))
                            for _ in range(-(-args.cnn_steps * args.batch_size // len(X)))])
    order = order[: args.cnn_steps * args.batch_size]
    for runner in runners.values():  # compile: both train on these two batches
        runner.run(X, y, order[: 2 * args.batch_size], args.batch_size)
    chunk = args.cnn_chunk * args.batch_size
    times = {name: [] for name in runners}
    names = list(runners)
    for k, start in enumerate(range(0, len(order), chunk)):
        for name in names[k % 2:] + names[: k % 2]:
            time.sleep(0.05)
            t0 = time.perf_counter()
            part = order[start : start + chunk]
            runners[name].run(X, y, part, args.batch_size)
            times[name].append((time.perf_counter() - t0) / -(-len(part) // args.batch_size))
    print(f"\nCNN (the simple MNIST convnet), adam lr 1e-3, batch {args.batch_size}, "
          f"{len(times['jax.jit'])} chunks of {args.cnn_chunk} steps:")
    for name, runner in runners.items():
        print(f"  {name:9s} {statistics.median(times[name]) * 1e3:7.2f} ms/step (median chunk)"
              f"   test accuracy {runner.accuracy(Xt, yt):.4f}")
    paired = [a / b for a, b in zip(times["xpnn-jax"], times["jax.jit"])]
    q1, q2, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
    ratio = statistics.median(times["xpnn-jax"]) / statistics.median(times["jax.jit"])
    print(f"  xpnn-jax / jax.jit: {ratio:.3f} (no target); per chunk: median {q2:.3f}, "
          f"quartiles {q1:.3f}-{q3:.3f}")
    return ratio


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="steps per epoch (0: the whole epoch)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizers", default="sgd,momentum,adam")
    p.add_argument("--chunk", type=int, default=50, help="steps per interleaved chunk")
    p.add_argument("--tiny-steps", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=4, help="interleaved tiny-step repeats")
    p.add_argument("--tiny-clock", choices=("wall", "cpu"), default="wall",
                   help="the tiny step's clock (cpu: the process's CPU time, all threads)")
    p.add_argument("--cnn-steps", type=int, default=40, help="convnet steps (0: none)")
    p.add_argument("--cnn-chunk", type=int, default=5, help="convnet steps a chunk")
    p.add_argument("--skip", default="", help="comma-separated: mlp, tiny, cnn")
    args = p.parse_args(argv)
    skip = set(args.skip.split(",")) - {""}

    import jax

    # (from a worktree, set PYTHONPATH to it: the script's folder comes first on sys.path)
    print(f"xpnn from {xn.__file__}; jax {jax.__version__} on {jax.devices()[0].platform}; "
          "xpnn-jax is Session(backend='jax'), each plan one jax.jit call")
    ratios = {}
    if not {"mlp", "cnn"} <= skip:
        X, y, Xt, yt, what = load(args)
        print(f"data: {what}")
    if "mlp" not in skip:
        for optimizer in args.optimizers.split(","):
            ratios[optimizer] = compare_mlp(args, (X, y, Xt, yt), optimizer)
    if "tiny" not in skip:
        ratios["tiny"] = compare_tiny(args)
    if "cnn" not in skip and args.cnn_steps:
        ratios["cnn"] = compare_cnn(args, (X, y, Xt, yt))
    print("\nratios xpnn-jax / jax.jit: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    return ratios


if __name__ == "__main__":
    main()
