"""Lessons 1-3: a softmax perceptron separating red from blue points, written TensorFlow-1
style: placeholders, Variables, the composed cross-entropy, and gradient descent. It also
draws the graph it trains (forward ops, gradient nodes, the update) as out/graph.svg.

    python examples/perceptron.py --device cpu [--backend numpy|array_api_strict|torch|cupy]
"""

import argparse
from pathlib import Path

import numpy as np
from example_args import device_arguments, positive_float, positive_int

import xpnn as xn


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lessons 1-3: softmax perceptron",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--steps", type=positive_int, default=100, help="gradient descent steps")
    parser.add_argument("--lr", type=positive_float, default=0.01, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="for the points and weights")
    parser.add_argument("--out", default="out", help="folder for graph.svg (or graph.dot)")
    parser.add_argument("--no-graph", action="store_true", help="do not draw the graph")
    args = parser.parse_args(argv)

    # Red points (label 0) around (-2, -2), blue points (label 1) around (2, 2).
    points, labels = xn.data.make_blobs(n_per_class=50, seed=args.seed)
    rng = np.random.default_rng(args.seed)

    with xn.Graph().as_default():
        X = xn.placeholder("float32", (None, 2), name="X")  # points
        c = xn.placeholder("float32", (None, 2), name="c")  # their classes, one-hot
        with xn.name_scope("perceptron"):  # a box in the picture; names become perceptron/...
            W = xn.Variable(rng.standard_normal((2, 2)).astype(np.float32), name="W")
            b = xn.Variable(rng.standard_normal(2).astype(np.float32), name="b")
            p = xn.softmax(xn.add(xn.matmul(X, W), b))
        with xn.name_scope("loss"):
            # Maximum likelihood: J = -sum_i sum_j c_ij log p_ij.
            J = xn.negative(xn.reduce_sum(xn.reduce_sum(xn.multiply(c, xn.log(p)), axis=1)))
        with xn.name_scope("train"):
            minimization_op = xn.train.GradientDescentOptimizer(learning_rate=args.lr).minimize(J)
        graph_file = None if args.no_graph else save_graph([J, minimization_op], Path(args.out))

        session = xn.Session(device=args.device, backend=args.backend)
        feed_dict = {X: points, c: xn.data.one_hot(labels, 2)}

        def evaluate():
            loss, probs = session.run([J, p], feed_dict, to_numpy=True)
            return float(loss), xn.metrics.misclassification_rate(labels, probs)

        loss_before, error_before = evaluate()
        print(f"before: loss {loss_before:.4f}, misclassification {error_before:.2%}")
        for step in range(args.steps):
            J_value, _ = session.run([J, minimization_op], feed_dict, to_numpy=True)
            if step % 10 == 0:
                print(f"step {step:4d}  loss {float(J_value):.4f}")
        loss_after, error_after = evaluate()
        print(f"after {args.steps} steps: loss {loss_after:.4f}, "
              f"misclassification {error_after:.2%}")
        W_value, b_value = session.run([W, b], to_numpy=True)
    print(f"W = {W_value.tolist()}\nb = {b_value.tolist()}")
    return {"loss_before": loss_before, "loss_after": loss_after,
            "misclassification_before": error_before, "misclassification_after": error_after,
            "graph": graph_file}


def save_graph(fetches, out: Path) -> Path:
    """Draw what the training loop runs: out/graph.svg, or out/graph.dot (DOT text) where
    Graphviz's ``dot`` program is not installed."""
    try:
        path = xn.draw_graph(fetches, out / "graph.svg")
        print(f"graph: {path} (open it in a web browser)")
    except xn.GraphvizNotFoundError:
        path = xn.draw_graph(fetches, out / "graph.dot")
        print(f"graph: {path} (DOT text: Graphviz's `dot` program is not installed; after "
              f"`apt install graphviz`, `dot -Tsvg {path} -o {out / 'graph.svg'}` draws it)")
    return path


if __name__ == "__main__":
    main()
