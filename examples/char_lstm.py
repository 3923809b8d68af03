"""A character-level LSTM language model on a corpus every machine has: the docstrings of
Python's own standard library (a fixed list of modules, read with ``ast``, in a fixed
order). Characters outside printable ASCII become ``?``, so the vocabulary is 96 symbols.

    python examples/char_lstm.py --device cpu [--backend numpy|array_api_strict|torch|jax]
        [--epochs 8] [--hidden 128] [--max-chars 400000] [--seed 0]

The text is cut into ``--batch-size`` streams read side by side in windows of ``--bptt``
steps (truncated backpropagation through time); the LSTM's state carries over from one
window to the next. Each epoch prints the training loss; at the end, the bits per character
on held-out text (the corpus's last tenth) beside the unigram model's (the character
frequencies alone), and a sample generated from ``--prime``.
"""

import argparse
import ast
import importlib.util
import math
import time

import numpy as np
from example_args import (
    device_arguments,
    int_at_least,
    non_negative_float,
    positive_float,
    positive_int,
)

import xpnn as xn

MODULES = ["argparse", "ast", "base64", "bisect", "calendar", "collections", "configparser",
           "contextlib", "csv", "dataclasses", "datetime", "difflib", "email.message", "enum",
           "fractions", "functools", "gettext", "heapq", "http.client", "inspect", "ipaddress",
           "json.decoder", "logging", "numbers", "optparse", "pathlib", "pickle", "pprint",
           "queue", "random", "shutil", "statistics", "string", "subprocess", "tarfile",
           "textwrap", "threading", "typing", "unittest.case", "urllib.parse", "zipfile"]
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))  # 96 symbols
UNKNOWN = VOCAB.index("?")


def stdlib_docstrings(max_chars):
    """The docstrings of MODULES (module, classes, functions, in ``ast.walk`` order), joined
    by blank lines, cut to ``max_chars``. A module this Python lacks is skipped."""
    texts = []
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        texts += [ast.get_docstring(n) for n in ast.walk(tree) if isinstance(n, kinds)]
    return "\n\n".join(t for t in texts if t)[:max_chars]


def encode(text):
    codes = np.array([VOCAB.find(ch) for ch in text], dtype=np.int32)
    codes[codes < 0] = UNKNOWN
    return codes


def streams(codes, batch):
    """``codes`` as ``batch`` equal rows (streams read side by side), the rest dropped."""
    n = len(codes) // batch
    return codes[: n * batch].reshape(batch, n)


class CharLSTM:
    """The model's graph: one-hot characters -> LSTM -> Linear -> next-character logits,
    built twice on the same weights: ``bptt`` steps for training and evaluation, one step
    for generation. The state goes in and comes out (it carries across windows)."""

    def __init__(self, hidden, bptt, seed):
        self.graph = xn.Graph()
        with self.graph.as_default():
            rng = xn.init.generator(seed)
            self.lstm = xn.nn.LSTM(len(VOCAB), hidden, return_sequences=True,
                                   return_state=True, seed=rng)
            self.out = xn.nn.Linear(hidden, len(VOCAB), init="glorot_uniform", seed=rng)
            self.train = self._unroll(bptt)
            self.one = self._unroll(1)
            self.lr = xn.placeholder("float32", (), name="lr")
            self.step = xn.train.AdamOptimizer(self.lr).minimize(self.train["loss"])

    def _unroll(self, steps):
        """Placeholders and outputs of ``steps`` time steps."""
        hidden = self.lstm.units
        ids = xn.placeholder("int32", (None, steps), name="ids")
        targets = xn.placeholder("int32", (None, steps), name="targets")
        h0, c0 = (xn.placeholder("float32", (None, hidden), name=n) for n in ("h0", "c0"))
        x = xn.ops.one_hot(ids, len(VOCAB))
        seq, h, c = self.lstm(x, initial_state=[h0, c0])
        logits = self.out(xn.ops.reshape(seq, (-1, hidden)))
        loss = xn.losses.sparse_softmax_cross_entropy(xn.ops.reshape(targets, (-1,)), logits)
        return {"ids": ids, "targets": targets, "h0": h0, "c0": c0, "h": h, "c": c,
                "logits": logits, "loss": loss}

    def zeros(self, batch):
        return [np.zeros((batch, self.lstm.units), np.float32)] * 2


def run_epoch(sess, model, rows, bptt, lr=None):
    """One pass over ``rows`` (batch, n) in windows of ``bptt``: the mean loss (nats per
    character); with ``lr``, an Adam step per window."""
    t = model.train
    h, c = model.zeros(rows.shape[0])
    total, count = 0.0, 0
    for start in range(0, rows.shape[1] - 1 - bptt + 1, bptt):
        feed = {t["ids"]: rows[:, start:start + bptt],
                t["targets"]: rows[:, start + 1:start + 1 + bptt], t["h0"]: h, t["c0"]: c}
        fetches = [t["loss"], t["h"], t["c"]]
        if lr is not None:
            feed[model.lr] = lr
            fetches.append(model.step)
        loss, h, c = sess.run(fetches, feed)[:3]
        total, count = total + float(xn.to_numpy(loss)), count + 1
    return total / max(count, 1)


def sample(sess, model, prime, length, temperature, rng):
    """``prime`` followed by ``length`` generated characters (temperature sampling; greedy
    at temperature 0)."""
    one = model.one
    h, c = model.zeros(1)
    codes = list(encode(prime))
    for code in codes[:-1]:  # read the prime
        h, c = sess.run([one["h"], one["c"]],
                        {one["ids"]: [[code]], one["h0"]: h, one["c0"]: c})
    for _ in range(length):
        logits, h, c = sess.run([one["logits"], one["h"], one["c"]],
                                {one["ids"]: [[codes[-1]]], one["h0"]: h, one["c0"]: c})
        z = xn.to_numpy(logits)[0].astype(np.float64)
        if temperature == 0:
            codes.append(int(np.argmax(z)))
            continue
        p = np.exp((z - z.max()) / temperature)
        codes.append(int(rng.choice(len(VOCAB), p=p / p.sum())))
    return "".join(VOCAB[i] for i in codes)


def unigram_bits(train, held_out):
    """Bits per character of held-out text under the training text's character
    frequencies (add-one smoothed): what a model that ignores context gets."""
    counts = np.bincount(train, minlength=len(VOCAB)) + 1.0
    p = counts / counts.sum()
    return float(-np.mean(np.log2(p[held_out])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=8, help="passes over the text")
    parser.add_argument("--hidden", type=positive_int, default=128, help="LSTM units")
    parser.add_argument("--seed", type=int, default=0, help="for the weights and the sample")
    parser.add_argument("--max-chars", type=int_at_least(1000), default=400_000,
                        help="corpus characters used (the last tenth held out)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="streams a step")
    parser.add_argument("--bptt", type=positive_int, default=50, help="steps a window")
    parser.add_argument("--lr", type=positive_float, default=0.01, help="Adam's rate")
    parser.add_argument("--prime", default="Return the ", help="the sample's start")
    parser.add_argument("--sample-length", type=int_at_least(0), default=200,
                        help="characters generated after the prime")
    parser.add_argument("--temperature", type=non_negative_float, default=0.5,
                        help="of the sampling; 0: greedy")
    args = parser.parse_args(argv)

    codes = encode(stdlib_docstrings(args.max_chars))
    cut = len(codes) * 9 // 10
    train, held_out = codes[:cut], codes[cut:]
    print(f"corpus: {len(codes)} characters of stdlib docstrings, {len(held_out)} held out, "
          f"vocabulary {len(VOCAB)}")
    model = CharLSTM(args.hidden, args.bptt, args.seed)
    sess = xn.Session(model.graph, device=args.device, backend=args.backend, seed=args.seed)
    rows = streams(train, args.batch_size)
    eval_rows = streams(held_out, max(1, min(16, len(held_out) // (2 * args.bptt))))
    started = time.perf_counter()
    losses = []
    for epoch in range(args.epochs):
        losses.append(run_epoch(sess, model, rows, args.bptt, lr=args.lr))
        print(f"epoch {epoch + 1}: loss {losses[-1]:.4f} ({losses[-1] / math.log(2):.3f} "
              f"bits/char), {time.perf_counter() - started:.1f} s")
    bpc = run_epoch(sess, model, eval_rows, args.bptt) / math.log(2)
    unigram = unigram_bits(train, held_out)
    print(f"held-out: {bpc:.3f} bits/char; unigram model: {unigram:.3f} bits/char")
    text = sample(sess, model, args.prime, args.sample_length, args.temperature,
                  np.random.default_rng(args.seed))
    print(f"sample (temperature {args.temperature}):\n{text}")
    return {"losses": losses, "bpc": bpc, "unigram_bpc": unigram, "sample": text,
            "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    main()
