"""Lesson 5: a linear layer + sigmoid + binary cross-entropy, trained one sample at a time.

    python examples/bce_linear.py --device cpu [--backend numpy|array_api_strict|torch|cupy]

The data, seed, learning rate and schedule are the lesson's. Each epoch prints the sum of the
per-sample losses; the last line is the lesson's ``Epoch: 1999 Loss: 0.21374...`` (published:
0.2137417010962963; the digits after the 6th depend on the BLAS kernel the CPU gets).

``--grad lesson`` (default) trains with the lesson's hand-derived gradients, written as graph
nodes; they round as the lesson's NumPy code does, so on one machine the printed numbers match
that code's to float32 rounding (digit for digit where both get the same kernel).
``--grad autodiff`` lets ``minimize`` derive them instead: the same values up to float32
rounding, which 10 000 SGD steps amplify into the 7th digit (0.21374188...).
"""

import argparse

import numpy as np
from example_args import device_arguments, positive_float, positive_int

import xpnn as xn

X = [[1, 3, 5], [1, 9, 5], [1, 2, 5], [0, 9, 5], [0, 0, 5]]
Y = [[1, 0, 0, 0]] * 3 + [[0, 0, 0, 0]] * 2


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lesson 5: linear + sigmoid + BCE",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=2000,
                        help="passes over the 5 samples")
    parser.add_argument("--lr", type=positive_float, default=0.01, help="learning rate")
    parser.add_argument("--grad", choices=["lesson", "autodiff"], default="lesson",
                        help="the lesson's hand-derived gradients, or minimize's")
    parser.add_argument("--every", type=positive_int, default=100, help="print every N epochs")
    args = parser.parse_args(argv)

    np.random.seed(42)
    weight = np.random.randn(4, 3).astype(np.float32)
    bias = np.random.randn(4).astype(np.float32)

    with xn.Graph().as_default():
        x = xn.placeholder("float32", (3,), name="x")  # one sample
        y = xn.placeholder("float32", (4,), name="y")
        W = xn.Variable(weight, name="W")
        b = xn.Variable(bias, name="b")
        z = W @ x + b
        p = 1.0 / (1.0 + xn.exp(-z))  # sigmoid, written as the lesson writes it
        loss = xn.losses.binary_cross_entropy(p, y, reduction="sum")
        sgd = xn.train.GradientDescentOptimizer(learning_rate=args.lr)
        if args.grad == "autodiff":
            step = sgd.minimize(loss)
        else:
            # The lesson's derivation: dL/dp = (p - y) / (p - p^2), dp/dz = e^-z / (e^-z + 1)^2,
            # dL/dW = outer(dL/dz, x), dL/db = dL/dz.
            e = xn.exp(-z)
            dz = (p - y) / (p - p**2) * (e / (e + 1.0) ** 2)
            dW = xn.reshape(dz, (4, 1)) * x
            step = sgd.apply_gradients([(dW, W), (dz, b)])
        sess = xn.Session(device=args.device, backend=args.backend)

        history = []
        for epoch in range(args.epochs):
            total = 0.0
            for xi, yi in zip(X, Y):
                value, _ = sess.run([loss, step], {x: xi, y: yi}, to_numpy=True)
                total += float(value)
            history.append(total)
            if epoch % args.every == 0 or epoch == args.epochs - 1:
                print(f"Epoch: {epoch} Loss: {total}")
        W_final, b_final = sess.run([W, b], to_numpy=True)
    return {"loss": history[-1], "history": history, "W": W_final, "b": b_final}


if __name__ == "__main__":
    main()
