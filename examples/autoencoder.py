"""An autoencoder through ``xn.nn.Model.fit``: 64-pixel images squeezed through a small code
and rebuilt, trained on ``fit(x, x)`` with the mean squared error, as in Keras.

    python examples/autoencoder.py --device cpu [--backend ...] [--mnist DIR]

The images are embedded: 8x8 "digits" drawn as blobs around ten prototype strokes (no
download); ``--mnist DIR`` uses MNIST's files in DIR instead (28x28, 784 pixels). It prints
the held-out reconstruction error beside the error of predicting the mean image.
"""

import argparse

import numpy as np
from example_args import device_arguments, positive_float, positive_int

import xpnn as xn


def digits(n, seed=0):
    """(n, 64) float32 in [0, 1]: ten 8x8 prototypes, each sample one of them plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((10, 64)) < 0.3).astype(np.float32)
    images = prototypes[rng.integers(0, 10, n)] + 0.15 * rng.normal(size=(n, 64))
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description="An autoencoder with Model.fit(x, x)",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--train", type=positive_int, default=3000, help="training images")
    parser.add_argument("--test", type=positive_int, default=500, help="held-out images")
    parser.add_argument("--code", type=positive_int, default=12, help="code size")
    parser.add_argument("--epochs", type=positive_int, default=30, help="passes over the data")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--mnist", default=None, help="a folder with MNIST's files to use")
    args = parser.parse_args(argv)

    if args.mnist:
        (images, _), _ = xn.data.load_mnist(args.mnist, download=False)
        X = images[:args.train + args.test]
    else:
        X = digits(args.train + args.test)
    X_train, X_test = X[:args.train], X[args.train:]
    d = X.shape[1]
    with xn.Graph().as_default():
        layers = [xn.nn.Dense(64, activation="relu", seed=0),
                  xn.nn.Dense(args.code, activation="relu", seed=1),
                  xn.nn.Dense(64, activation="relu", seed=2),
                  xn.nn.Dense(d, activation="sigmoid", seed=3)]
        model = xn.nn.Model(layers, input_shape=(d,), device=args.device, backend=args.backend)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(X_train, X_train, batch_size=64, epochs=args.epochs,
                        validation_data=(X_test, X_test), learning_rate=args.lr, verbose=0)
    error = model.evaluate(X_test, X_test)
    mean_error = float(((X_train.mean(0) - X_test) ** 2).mean())
    print(f"loss per epoch: {', '.join(f'{v:.4f}' for v in history.history['loss'])}")
    print(f"held-out reconstruction MSE: {error:.4f} (the mean image: {mean_error:.4f})")
    return {"mse": error, "mean_mse": mean_error, "history": history}


if __name__ == "__main__":
    main()
