"""xpnn on JAX (each plan compiled into one ``jax.jit`` call by ``xpnn/jax_fast``) against a
hand-written ``jax.jit`` training step, same initial weights, batches and optimizer rule:

- MLP 784-512-256-10 (ReLU, batch 128) on MNIST or random data of its shape, with SGD,
  momentum and Adam (``mlp_mnist.py``'s learning rates): interleaved chunks of steps, the
  median epoch, the ratio, and the test accuracy of each so that nothing wins by computing
  less;
- the tiny step: lesson 5's 3->4 linear + sigmoid + BCE net, one sample a step
  (``small_step.py``): microseconds per step (best of interleaved repeats), final losses.

Targets (issue 13): MLP <= 1.1x the hand-written step, tiny step <= 3x.

    python benchmarks/backends.py                                   # one epoch of each
    python benchmarks/backends.py --data ../shared/datasets/mnist --epochs 2
    python benchmarks/backends.py --steps 150 --tiny-steps 2000     # a short look
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
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


def _jax_step(lr, optimizer):
    import jax
    import jax.numpy as jnp

    def loss(params, x, y):
        z = _logits(params, x)
        picked = jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)

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
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            run(self.step, {inputs: X[idx], labels: y[idx]})
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
    for runner in runners.values():
        runner.run(50)  # compile
    best = {}
    for r in range(args.repeat):  # interleaved; each one's best
        for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
            time.sleep(0.05)
            t0 = time.perf_counter()
            runners[name].run(args.tiny_steps)
            us = (time.perf_counter() - t0) / args.tiny_steps * 1e6
            best[name] = min(best.get(name, us), us)
    steps = runners["jax.jit"].i
    print(f"\ntiny step (lesson 5, 3->4 sigmoid + BCE, one sample), best of {args.repeat} x "
          f"{args.tiny_steps} steps:")
    for name, runner in runners.items():
        print(f"  {name:9s} {best[name]:7.1f} us/step   loss after {steps} steps "
              f"{float(runner.loss):.7f}")
    ratio = best["xpnn-jax"] / best["jax.jit"]
    print(f"  xpnn-jax / jax.jit: {ratio:.2f} (target <= 3)")
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
    p.add_argument("--skip", choices=["mlp", "tiny"], default=None)
    args = p.parse_args(argv)

    import jax

    # (from a worktree, set PYTHONPATH to it: the script's folder comes first on sys.path)
    print(f"xpnn from {xn.__file__}; jax {jax.__version__} on {jax.devices()[0].platform}; "
          "xpnn-jax is Session(backend='jax'), each plan one jax.jit call")
    ratios = {}
    if args.skip != "mlp":
        X, y, Xt, yt, what = load(args)
        print(f"data: {what}")
        for optimizer in args.optimizers.split(","):
            ratios[optimizer] = compare_mlp(args, (X, y, Xt, yt), optimizer)
    if args.skip != "tiny":
        ratios["tiny"] = compare_tiny(args)
    print("\nratios xpnn-jax / jax.jit: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    return ratios


if __name__ == "__main__":
    main()
