"""The "simple MNIST convnet": conv 3x3 32 ReLU, max-pool 2, conv 3x3 64 ReLU, max-pool 2,
flatten, dropout 0.5, dense 10, trained with Adam (lr 1e-3, batch 128) on MNIST images as
(28, 28, 1) NHWC arrays.

    python examples/mnist_cnn.py --device cpu [--backend numpy|array_api_strict|torch|cupy]
        [--data ../shared/datasets/mnist] [--epochs 15] [--quiet]

``--limit N`` trains and tests on the first N samples only; ``--synthetic`` uses random data
of MNIST's shape (no files needed); ``--distributed`` as in mnist_mlp.py.
"""

from mnist_mlp import distributed, mnist_arguments, mnist_data, train_and_test

import xpnn as xn


def convnet(seed=0):
    """The layers, He-initialised from ``seed`` (the same weights on every backend)."""
    nn = xn.nn
    return [nn.Conv2D(1, 32, 3, seed=seed, name="conv1"), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(32, 64, 3, seed=seed + 1, name="conv2"), nn.ReLU(), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * 5 * 64, 10, seed=seed + 2)]


def main(argv=None):
    args = distributed(mnist_arguments("The simple MNIST convnet", epochs=15, optimizer="adam",
                                       lr=1e-3).parse_args(argv))
    (X, y), (X_test, y_test) = mnist_data(args)
    X, X_test = X.reshape(-1, 28, 28, 1), X_test.reshape(-1, 28, 28, 1)
    args.say(f"train {X.shape}, test {X_test.shape}")
    seed = args.seed if args.comm is None else args.seed + args.comm.rank  # dropout masks
    with xn.Graph().as_default():  # with --distributed, fit broadcasts rank 0's weights
        model = xn.nn.NNClassifier(convnet(args.seed), input_shape=(28, 28, 1),
                                   device=args.device, backend=args.backend, seed=seed)
    return train_and_test(model, X, y, X_test, y_test, args)


if __name__ == "__main__":
    main()
