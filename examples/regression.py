"""A housing-style regression through ``xn.nn.Model.fit`` with the mean squared error, as a
Keras user writes it: compile, fit with a validation split and EarlyStopping, evaluate.

    python examples/regression.py --device cpu [--backend numpy|array_api_strict|torch|jax]

The data are synthetic (no download): eight house features (rooms, age, distance...) and a
price that depends on them non-linearly plus noise. It prints the held-out RMSE of the MLP
beside a linear least-squares fit's, the baseline it should beat.
"""

import argparse

import numpy as np
from example_args import device_arguments, positive_float, positive_int

import xpnn as xn


def housing(n, seed=0):
    """(features (n, 8), prices (n, 1)), float32, standardised features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    price = (2.0 * X[:, 0] - 1.0 * X[:, 1] + 0.8 * X[:, 2] ** 2 + np.sin(2 * X[:, 3])
             + 0.5 * X[:, 4] * X[:, 5] + 0.1 * rng.normal(size=n))
    return X.astype(np.float32), price[:, None].astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description="MLP regression with Model.fit and MSE",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--train", type=positive_int, default=4000, help="training samples")
    parser.add_argument("--test", type=positive_int, default=1000, help="held-out samples")
    parser.add_argument("--epochs", type=positive_int, default=60, help="at most this many")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--hidden", type=positive_int, default=64, help="units per hidden layer")
    args = parser.parse_args(argv)

    X, y = housing(args.train + args.test)
    X_train, y_train = X[:args.train], y[:args.train]
    X_test, y_test = X[args.train:], y[args.train:]
    with xn.Graph().as_default():
        layers = [xn.nn.Dense(args.hidden, activation="relu", seed=0),
                  xn.nn.Dense(args.hidden, activation="relu", seed=1),
                  xn.nn.Dense(1, seed=2)]
        model = xn.nn.Model(layers, input_shape=(8,), device=args.device, backend=args.backend)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.summary()
    stop = xn.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    history = model.fit(X_train, y_train, batch_size=64, epochs=args.epochs,
                        validation_split=0.1, callbacks=[stop], learning_rate=args.lr,
                        verbose=0)
    mse, mae = model.evaluate(X_test, y_test)
    rmse = float(np.sqrt(mse))
    ones = np.ones((args.train, 1), np.float32)
    coef, *_ = np.linalg.lstsq(np.hstack([X_train, ones]), y_train, rcond=None)
    baseline = np.hstack([X_test, ones[:args.test]]) @ coef
    linear_rmse = float(np.sqrt(((baseline - y_test) ** 2).mean()))
    print(f"epochs run: {len(history.epoch)}, last val_loss {history.history['val_loss'][-1]:.4f}")
    print(f"held-out RMSE: MLP {rmse:.4f}, linear least squares {linear_rmse:.4f}")
    return {"rmse": rmse, "linear_rmse": linear_rmse, "mae": mae, "history": history}


if __name__ == "__main__":
    main()
