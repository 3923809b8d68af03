"""Lessons 1-3: a softmax perceptron separating red from blue points, written TensorFlow-1
style: placeholders, Variables, the composed cross-entropy, and gradient descent.

    python examples/perceptron.py --device cpu [--backend numpy|array_api_strict|torch|cupy]
"""

import argparse

import numpy as np

import xpnn as xn


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lessons 1-3: softmax perceptron")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # Red points (label 0) around (-2, -2), blue points (label 1) around (2, 2).
    points, labels = xn.data.make_blobs(n_per_class=50, seed=args.seed)
    rng = np.random.default_rng(args.seed)

    with xn.Graph().as_default():
        X = xn.placeholder()
        c = xn.placeholder()
        W = xn.Variable(rng.standard_normal((2, 2)).astype(np.float32), name="W")
        b = xn.Variable(rng.standard_normal(2).astype(np.float32), name="b")
        p = xn.softmax(xn.add(xn.matmul(X, W), b))
        # Maximum likelihood: J = -sum_i sum_j c_ij log p_ij.
        J = xn.negative(xn.reduce_sum(xn.reduce_sum(xn.multiply(c, xn.log(p)), axis=1)))
        minimization_op = xn.train.GradientDescentOptimizer(learning_rate=args.lr).minimize(J)

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
            "misclassification_before": error_before, "misclassification_after": error_after}


if __name__ == "__main__":
    main()
