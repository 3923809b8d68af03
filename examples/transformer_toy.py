"""A small Transformer learns to reverse digit strings of 6 to 8 digits: token embedding +
sinusoidal positions, pre-LN TransformerBlocks (padding masked by each string's length),
a final LayerNorm and a linear head giving each position's digit. Trained through the graph
(placeholders, a masked per-position cross-entropy, Adam, Session.run); the data is drawn
from --seed, and the held-out strings are never trained on.

    python examples/transformer_toy.py --device cpu [--backend numpy|array_api_strict|torch]
        [--epochs 4] [--seed 0]

Prints the loss per epoch and the held-out exact-sequence accuracy (every digit right).
"""

import argparse
import time

import numpy as np
from example_args import device_arguments, int_at_least, positive_float, positive_int

import xpnn as xn

PAD, DIGITS = 10, 10  # token 10 pads a string to the longest length


def reversal_data(n, low, high, rng, exclude=frozenset()):
    """``n`` distinct digit strings of ``low``..``high`` digits not in ``exclude``, padded:
    (ids, reversed ids, lengths), and the set of strings drawn."""
    drawn, strings = set(exclude), []
    while len(strings) < n:
        length = int(rng.integers(low, high + 1))
        s = "".join(map(str, rng.integers(0, 10, length)))
        if s not in drawn:
            drawn.add(s)
            strings.append(s)
    ids = np.full((n, high), PAD, np.int32)
    targets = np.zeros((n, high), np.int32)  # past the length: masked out of the loss
    for i, s in enumerate(strings):
        digits = np.array([int(c) for c in s], np.int32)
        ids[i, :len(s)], targets[i, :len(s)] = digits, digits[::-1]
    return ids, targets, np.array([len(s) for s in strings], np.int32), set(strings)


def build(args, length):
    """The graph: placeholders, logits (batch, length, 10), the masked loss and Adam's step."""
    ids = xn.placeholder("int32", (None, length), name="ids")
    targets = xn.placeholder("int32", (None, length), name="targets")
    lengths = xn.placeholder("int32", (None,), name="lengths")
    nn = xn.nn
    x = nn.Embedding(DIGITS + 1, args.dim, seed=args.seed)(ids)
    x = nn.PositionalEncoding(length, args.dim)(x)
    for i in range(args.blocks):
        x = nn.TransformerBlock(args.dim, args.heads, 4 * args.dim, norm_first=True,
                                seed=args.seed + 1 + i)(x, lengths=lengths)
    logits = nn.Linear(args.dim, DIGITS, init="glorot_uniform", seed=args.seed)(
        nn.LayerNorm(args.dim)(x))
    # Positions past a string's length have no digit: their loss is masked out.
    real = xn.cast(xn.less(np.arange(length, dtype=np.int32), lengths[:, None]), "float32")
    per_position = xn.losses.sparse_softmax_cross_entropy(
        xn.reshape(targets, (-1,)),
        xn.reshape(logits, (-1, DIGITS)), reduction="none")
    loss = xn.reduce_sum(per_position * xn.reshape(real, (-1,))) / xn.reduce_sum(real)
    step = xn.train.AdamOptimizer(args.lr).minimize(loss)
    return ids, targets, lengths, logits, loss, step


def exact_accuracy(session, nodes, data, batch=500):
    """The share of strings whose every digit is predicted right."""
    ids, _, lengths, logits = nodes
    X, T, N = data
    right = 0
    for start in range(0, len(X), batch):
        x, t, n = X[start:start + batch], T[start:start + batch], N[start:start + batch]
        predicted = np.argmax(session.run(logits, {ids: x, lengths: n}, to_numpy=True), -1)
        real = np.arange(x.shape[1])[None, :] < n[:, None]
        right += int(np.all((predicted == t) | ~real, axis=1).sum())
    return right / len(X)


def main(argv=None):
    parser = argparse.ArgumentParser(description="A small Transformer reverses digit strings",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=4, help="passes over the data")
    parser.add_argument("--train", type=positive_int, default=20000, help="training strings")
    parser.add_argument("--test", type=positive_int, default=2000, help="held-out strings")
    parser.add_argument("--min-length", type=int_at_least(1), default=6, help="shortest")
    parser.add_argument("--max-length", type=int_at_least(1), default=8, help="longest")
    parser.add_argument("--dim", type=positive_int, default=64, help="model width")
    parser.add_argument("--heads", type=positive_int, default=4, help="attention heads")
    parser.add_argument("--blocks", type=positive_int, default=2, help="TransformerBlocks")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="strings a step")
    parser.add_argument("--lr", type=positive_float, default=2e-3, help="Adam's rate")
    parser.add_argument("--seed", type=int, default=0, help="for the data and the weights")
    args = parser.parse_args(argv)
    if args.min_length > args.max_length:
        parser.error(f"argument --min-length: must be at most --max-length "
                     f"({args.max_length}), got {args.min_length}")

    rng = np.random.default_rng(args.seed)
    *test, held_out = reversal_data(args.test, args.min_length, args.max_length, rng)
    *train, _ = reversal_data(args.train, args.min_length, args.max_length, rng, held_out)
    with xn.Graph().as_default():
        ids, targets, lengths, logits, loss, step = build(args, args.max_length)
        session = xn.Session(device=args.device, backend=args.backend, seed=args.seed)
    print(f"reversing strings of {args.min_length}-{args.max_length} digits: "
          f"{args.train} to train on, {args.test} held out; {session.device}")

    started, losses = time.perf_counter(), []
    for epoch in range(args.epochs):
        order, total = rng.permutation(args.train), 0.0
        for start in range(0, args.train, args.batch_size):
            batch = order[start:start + args.batch_size]
            feed = {ids: train[0][batch], targets: train[1][batch], lengths: train[2][batch]}
            total += float(session.run([step, loss], feed, to_numpy=True)[1]) * len(batch)
        losses.append(total / args.train)
        print(f"epoch {epoch + 1:2d}  loss {losses[-1]:.4f}  "
              f"({time.perf_counter() - started:.0f} s)")
    nodes = (ids, targets, lengths, logits)
    accuracy = exact_accuracy(session, nodes, test)
    seconds = time.perf_counter() - started
    print(f"held-out exact-sequence accuracy {accuracy:.2%} on {args.test} strings "
          f"({seconds:.0f} s training and testing)")
    return {"losses": losses, "accuracy": accuracy, "seconds": seconds}


if __name__ == "__main__":
    main()
