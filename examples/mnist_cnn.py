"""The "simple MNIST convnet": conv 3x3 32 ReLU, max-pool 2, conv 3x3 64 ReLU, max-pool 2,
flatten, dropout 0.5, dense 10, trained with Adam (lr 1e-3, batch 128) on MNIST images as
(28, 28, 1) NHWC arrays, each training image first shifted by a random whole number of
pixels (``RandomTranslation(0.05, 0.05)``: by round(uniform(-1.4, 1.4)) rows and columns,
so -1, 0 or 1; the identity when testing), as Keras users augment it.

    python examples/mnist_cnn.py --device cpu [--backend numpy|array_api_strict|torch|cupy]
        [--data ../shared/datasets/mnist] [--epochs 15] [--shift 0.05] [--quiet]

``--shift F`` sets the translation's factor; ``--shift 0`` trains the plain Keras net.

``--limit N`` trains and tests on the first N samples only; ``--synthetic`` uses random data
of MNIST's shape (no files needed); ``--distributed`` and ``--compare`` as in mnist_mlp.py.

Keras's callbacks, watching the loss on a tenth of the training rows held out:
``--patience N`` stops when it has not improved for N epochs and keeps the best weights
(EarlyStopping), ``--checkpoint PATH`` saves the best model there (ModelCheckpoint),
``--logdir DIR`` writes TensorBoard logs (``pip install -e ".[summary]"``; then
``tensorboard --logdir DIR``).
"""

from example_args import fraction
from mnist_mlp import (
    compare_first_batch,
    distributed,
    mnist_arguments,
    mnist_data,
    train_and_test,
)

import xpnn as xn


def convnet(seed=0):
    """The layers, He-initialised from ``seed`` (the same weights on every backend)."""
    nn = xn.nn
    return [nn.Conv2D(1, 32, 3, seed=seed, name="conv1"), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(32, 64, 3, seed=seed + 1, name="conv2"), nn.ReLU(), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * 5 * 64, 10, seed=seed + 2)]


def augmented(shift, seed=0):
    """The convnet behind RandomTranslation(shift, shift) (the convnet alone for 0): its
    shifts come from the model's Session generator, so the model's seed fixes them too."""
    augment = [xn.nn.RandomTranslation(shift, shift)] if shift else []
    return augment + convnet(seed)


def callbacks(args):
    """The Keras callbacks the options ask for; files are written by rank 0 alone."""
    chosen = []
    if args.patience:
        chosen.append(xn.callbacks.EarlyStopping(patience=args.patience,
                                                 restore_best_weights=True))
    if args.comm is not None and args.comm.rank != 0:
        return chosen
    if args.checkpoint:
        chosen.append(xn.callbacks.ModelCheckpoint(args.checkpoint, save_best_only=True))
    if args.logdir:
        chosen.append(xn.callbacks.TensorBoard(args.logdir, histogram_freq=1))
    return chosen


def main(argv=None):
    parser = mnist_arguments("The simple MNIST convnet", epochs=15, optimizer="adam", lr=1e-3)
    parser.add_argument("--patience", type=int, default=0,
                        help="EarlyStopping: epochs without a better val_loss (0: off)")
    parser.add_argument("--checkpoint", default=None, help="ModelCheckpoint: the best model's file")
    parser.add_argument("--logdir", default=None, help="TensorBoard: the logs' folder")
    parser.add_argument("--shift", type=fraction, default=0.05,
                        help="RandomTranslation's height and width factor: training images "
                             "move by up to this fraction of their size (0: no augmentation)")
    args = distributed(parser.parse_args(argv))
    (X, y), (X_test, y_test) = mnist_data(args)
    X, X_test = X.reshape(-1, 28, 28, 1), X_test.reshape(-1, 28, 28, 1)
    args.say(f"train {X.shape}, test {X_test.shape}")
    seed = args.seed if args.comm is None else args.seed + args.comm.rank  # dropout masks
    compared = compare_first_batch(lambda: convnet(args.seed), (28, 28, 1), X, y, args)
    with xn.Graph().as_default():  # with --distributed, fit broadcasts rank 0's weights
        model = xn.nn.NNClassifier(augmented(args.shift, args.seed), input_shape=(28, 28, 1),
                                   device=args.device, backend=args.backend, seed=seed)
    result = train_and_test(model, X, y, X_test, y_test, args, callbacks(args))
    result["compare"], result["model"] = compared, model
    if args.checkpoint:
        args.say(f"the best model is in {args.checkpoint} (xn.nn.NNClassifier.load)")
    if args.logdir:
        args.say(f"TensorBoard logs are in {args.logdir}: open them with "
                 f"`tensorboard --logdir {args.logdir}`")
    return result


if __name__ == "__main__":
    main()
