"""The "simple MNIST convnet": conv 3x3 32 ReLU, max-pool 2, conv 3x3 64 ReLU, max-pool 2,
flatten, dropout 0.5, dense 10, trained with Adam (lr 1e-3, batch 128) on MNIST images as
(28, 28, 1) NHWC arrays.

    python examples/mnist_cnn.py --device cpu [--backend numpy|array_api_strict|torch|cupy]
        [--data ../shared/datasets/mnist] [--epochs 15] [--quiet]

``--limit N`` trains and tests on the first N samples only; ``--synthetic`` uses random data
of MNIST's shape (no files needed).
"""

import argparse
import time

from mnist_mlp import synthetic_mnist

import xpnn as xn


def convnet(seed=0):
    """The layers, He-initialised from ``seed`` (the same weights on every backend)."""
    nn = xn.nn
    return [nn.Conv2D(1, 32, 3, seed=seed, name="conv1"), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(32, 64, 3, seed=seed + 1, name="conv2"), nn.ReLU(), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * 5 * 64, 10, seed=seed + 2)]


def main(argv=None):
    parser = argparse.ArgumentParser(description="The simple MNIST convnet")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--data", default=None,
                        help="folder with the MNIST IDX files (default: $XPNN_DATA/mnist or "
                             "~/.cache/xpnn/mnist, downloaded when missing)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None, help="use the first N samples only")
    parser.add_argument("--synthetic", action="store_true", help="random data, no files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    args = parser.parse_args(argv)

    if args.synthetic:
        n_train, n_test = (args.limit, args.limit) if args.limit else (60000, 10000)
        (X, y), (X_test, y_test) = synthetic_mnist(n_train, n_test, seed=args.seed)
    else:
        (X, y), (X_test, y_test) = xn.data.load_mnist(root=args.data)
    if args.limit:
        X, y = X[: args.limit], y[: args.limit]
        X_test, y_test = X_test[: args.limit], y_test[: args.limit]
    X, X_test = X.reshape(-1, 28, 28, 1), X_test.reshape(-1, 28, 28, 1)
    print(f"train {X.shape}, test {X_test.shape}")

    with xn.Graph().as_default():
        model = xn.nn.NNClassifier(convnet(args.seed), input_shape=(28, 28, 1),
                                   device=args.device, backend=args.backend, seed=args.seed)
    print(model)
    started = time.perf_counter()
    history = model.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer="adam", learning_rate=args.lr, seed=args.seed,
                        verbose=2 if args.quiet else 1)
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(X_test, y_test)
    print(f"test accuracy {test_accuracy:.2%} (loss {test_loss:.4f}) after {args.epochs} epochs; "
          f"training took {seconds:.1f} s")
    return {"test_accuracy": test_accuracy, "test_loss": test_loss, "seconds": seconds,
            "history": dict(history)}


if __name__ == "__main__":
    main()
