"""Lesson 4: a 3-layer ReLU MLP with a softmax output, trained by minibatch gradient descent
on MNIST (the lesson reached 92.37% test accuracy with plain SGD; these defaults reach 98%).

    python examples/mnist_mlp.py --device cpu [--backend numpy|array_api_strict|torch|cupy]
        [--data ../shared/datasets/mnist] [--epochs 10] [--optimizer momentum] [--lr 0.05]
        [--dropout 0.2]

``--limit N`` trains and tests on the first N samples only; ``--synthetic`` uses random data
of MNIST's shape (no files needed). ``--compare cpu,torch:cpu,jax:cpu`` first runs the model
on one batch on each device and prints the first node where they disagree.

``--distributed`` trains data-parallel over MPI, one process per rank (``pip install
'xpnn[mpi]'``); ``--batch-size`` is then each rank's, so two ranks with 64 train as one
process with 128, and ``--device cuda`` gives rank r the GPU ``cuda:<local rank>``::

    .venv/bin/mpiexec -n 2 .venv/bin/python examples/mnist_mlp.py --distributed --batch-size 64
"""

import argparse
import sys
import time

import numpy as np
from example_args import device_arguments, fraction, positive_float, positive_int

import xpnn as xn


def synthetic_mnist(n_train=60000, n_test=10000, seed=0):
    """Random 28x28 'images' whose label is a fixed random linear function of the pixels,
    so an MLP can learn it; shapes and dtypes are MNIST's."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((784, 10)).astype(np.float32)

    def split(n):
        X = rng.random((n, 784), dtype=np.float32)
        return X, np.argmax((X - 0.5) @ projection, axis=1).astype(np.int64)

    return split(n_train), split(n_test)


def mnist_arguments(description, epochs, optimizer, lr):
    """The options the MNIST examples share (mnist_cnn.py uses them too)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--data", default=None,
                        help="folder with the four MNIST IDX files; None: $XPNN_DATA/mnist, "
                             "else ~/.cache/xpnn/mnist (downloaded there when missing)")
    parser.add_argument("--epochs", type=positive_int, default=epochs, help="passes over the data")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="rows a step")
    parser.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default=optimizer,
                        help="momentum: 0.9; adam: TF1's")
    parser.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    parser.add_argument("--lr-drop", type=positive_int, nargs="*", default=[], metavar="EPOCH",
                        help="divide the learning rate by 10 from each of these epochs on")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use the first N samples only; None: all")
    parser.add_argument("--synthetic", action="store_true", help="random data, no files")
    parser.add_argument("--validate", action="store_true", help="test accuracy every epoch")
    parser.add_argument("--seed", type=int, default=0, help="for the weights, shuffles and masks")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI (run under mpiexec); --batch-size per rank")
    parser.add_argument("--compare", default=None, metavar="DEVICES",
                        help="before training, run the model on one batch on each of these "
                             "comma-separated devices (e.g. cpu,torch:cpu,jax:cpu) and print "
                             "where they first disagree (xn.debug.compare_backends)")
    return parser


def compare_first_batch(make_layers, input_shape, X, y, args):
    """--compare: the model's layers (``make_layers()``, in a graph of their own) on the
    first batch, forward and gradients, on each device; the report is printed (and
    returned). None without --compare."""
    if not args.compare:
        return None
    with xn.Graph().as_default() as graph:
        layers = make_layers()
    n = args.batch_size
    graph, loss, feed = xn.debug.models.layers_loss(layers, input_shape, X[:n], y[:n], graph)
    report = xn.debug.compare_backends(loss, feed, devices=args.compare.split(","),
                                       graph=graph)
    args.say(report)
    return report


def mlp_layers(units, dropout, seed):
    """The MLP's layers, with Dropout after each hidden one where ``dropout``."""
    rng = xn.init.generator(seed)
    layers = []
    for n_in, n_out in zip(units[:-2], units[1:-1]):
        layers += [xn.nn.Linear(n_in, n_out, seed=rng), xn.nn.ReLU()]
        layers += [xn.nn.Dropout(dropout)] if dropout else []
    return layers + [xn.nn.Linear(units[-2], units[-1], seed=rng)]


def distributed(args):
    """For --distributed: the communicator in ``args.comm``, rank r on ``cuda:<local rank>``
    when ``--device cuda``; ``args.say`` prints on rank 0 only (plain print without it)."""
    args.comm = xn.distributed.init() if args.distributed else None
    rank = 0 if args.comm is None else args.comm.rank
    if args.comm is not None and args.device == "cuda":
        args.device = f"cuda:{args.comm.local_rank}"
    args.say = print if rank == 0 else (lambda *text, **options: None)
    return args


def mnist_data(args):
    """((X, y), (X_test, y_test)): MNIST (or --synthetic), the first --limit samples."""
    if args.synthetic:
        n_train, n_test = (args.limit, args.limit) if args.limit else (60000, 10000)
        (X, y), (X_test, y_test) = synthetic_mnist(n_train, n_test, seed=args.seed)
    else:
        (X, y), (X_test, y_test) = load_mnist_or_exit(args.data)
    if args.limit:
        X, y = X[: args.limit], y[: args.limit]
        X_test, y_test = X_test[: args.limit], y_test[: args.limit]
    return (X, y), (X_test, y_test)


def load_mnist_or_exit(root):
    """MNIST from ``root`` (see --data), or one line on stderr and exit status 2, as argparse
    does for a bad option, when it is neither there nor downloadable."""
    try:
        return xn.data.load_mnist(root=root)
    except xn.data.MNISTNotFoundError:
        print(f"error: MNIST is not in {xn.data.mnist_folder(root)} and could not be "
              "downloaded: pass --data DIR, a folder with its four IDX files (raw or .gz), "
              "or try --synthetic", file=sys.stderr)
        sys.exit(2)


def step_decay(drops):
    """A ``fit(lr_schedule=)`` dividing the rate by 10 at each epoch in ``drops`` (counted
    from 1, as printed); None for no drops."""
    if not drops:
        return None
    return lambda epoch, lr: lr / 10 if epoch + 1 in drops else lr


def train_and_test(model, X, y, X_test, y_test, args, callbacks=()):
    """fit with the options (over ``args.comm``'s ranks with --distributed), then the test
    accuracy and the time training took. With ``callbacks``, a tenth of the training rows
    is held out for them to watch (``val_loss``), unless --validate gives the test set."""
    comm = args.comm
    args.say(model if comm is None else f"{model} on {comm.size} ranks, batch "
             f"{args.batch_size} each ({args.batch_size * comm.size} a step)")
    started = time.perf_counter()
    history = model.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=args.optimizer, learning_rate=args.lr, seed=args.seed,
                        validation_data=(X_test, y_test) if args.validate else None,
                        validation_split=0.1 if callbacks and not args.validate else 0.0,
                        verbose=2 if args.quiet else 1, lr_schedule=step_decay(args.lr_drop),
                        comm=comm, callbacks=list(callbacks))
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(X_test, y_test, comm=comm)
    args.say(f"test accuracy {test_accuracy:.2%} (loss {test_loss:.4f}) after {args.epochs} "
             f"epochs; training took {seconds:.1f} s")
    return {"test_accuracy": test_accuracy, "test_loss": test_loss, "seconds": seconds,
            "history": dict(history), "ranks": 1 if comm is None else comm.size}


def main(argv=None):
    parser = mnist_arguments("Lesson 4: MLP on MNIST", epochs=10, optimizer="momentum", lr=0.05)
    parser.add_argument("--units", type=positive_int, nargs="+", default=[512, 256],
                        help="hidden layer sizes")
    parser.add_argument("--dropout", type=fraction, default=0.0,
                        help="dropout rate after each hidden layer (0: none)")
    args = distributed(parser.parse_args(argv))
    (X, y), (X_test, y_test) = mnist_data(args)
    args.say(f"train {X.shape}, test {X_test.shape}")
    seed = args.seed if args.comm is None else args.seed + args.comm.rank  # dropout masks

    units = [784, *args.units, 10]
    compared = compare_first_batch(lambda: mlp_layers(units, args.dropout, args.seed), (784,),
                                   X, y, args)
    if args.dropout:  # the MLP's layers with Dropout after each hidden one
        with xn.Graph().as_default():
            model = xn.nn.NNClassifier(mlp_layers(units, args.dropout, args.seed),
                                       input_shape=(784,), device=args.device,
                                       backend=args.backend, seed=seed)
    else:  # with --distributed, fit starts every rank from rank 0's weights
        model = xn.nn.NNClassifier(units, device=args.device, backend=args.backend, seed=seed)
    return {**train_and_test(model, X, y, X_test, y_test, args), "compare": compared}


if __name__ == "__main__":
    main()
