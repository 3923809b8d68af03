"""The one training loop of ``Model.fit`` (and so of ``NNClassifier.fit``): inputs checked
first, then epochs of minibatch steps with the callbacks' hooks, validation, the progress
bar and the epoch's line. Each batch's loss and metric sums stay on the device until the
epoch's end (one transfer per epoch, not one per batch)."""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from types import SimpleNamespace

import numpy as np

from .. import data, distributed
from .. import init as initializers
from ..devices import context_of
from ..session import NumericsError
from . import callbacks as cbks


def prepare(model, x, y, o) -> SimpleNamespace:
    """Every input of ``fit`` checked, validation split off, weights made: nothing has
    changed yet when this raises."""
    if isinstance(x, data.Dataset):
        return _prepare_dataset(model, x, y, o)
    if y is None and getattr(model, "labels", None) is not None:
        raise TypeError("fit: the labels y are missing: call fit(X, y), or fit(dataset) "
                        "with an xn.data.Dataset of (X, y) batches")
    X = model._features(x)
    n = rows(X)
    y = model._targets(y, n)
    for key in ("batch_size", "epochs", "initial_epoch"):
        value = o[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (
                1 if key == "batch_size" else 0):
            raise ValueError(f"fit: {key} must be a whole number >= "
                             f"{1 if key == 'batch_size' else 0}, got {value!r}")
    w = model._weights(y, n, o["sample_weight"], o["class_weight"])
    weighted = o["sample_weight"] is not None or o["class_weight"] is not None
    if weighted and o["comm"] is not None:
        raise ValueError("fit: sample_weight and class_weight are not supported with comm=")
    if (isinstance(X, tuple) or isinstance(y, tuple)) and o["comm"] is not None:
        raise ValueError("fit: comm= shards models of one input and one output")
    val = _validation(model, o["validation_data"])
    split = o["validation_split"]
    if not 0 <= split < 1:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {split}")
    if split and val is None:
        cut = int(n * (1 - split))
        if cut in (0, n):
            raise ValueError(f"fit: validation_split={split} of {n} samples leaves "
                             f"{'no training' if cut == 0 else 'no validation'} samples")
        val = (take(X, slice(cut, None)), _rows(y, cut, None), w[cut:])
        X, y, w = take(X, slice(0, cut)), _rows(y, 0, cut), w[:cut]
    return SimpleNamespace(X=X, y=y, w=w if weighted else None, val=val, options=o,
                           dataset=None)


def _prepare_dataset(model, dataset, y, o) -> SimpleNamespace:
    """``prepare`` for an ``xn.data.Dataset`` of (X, y) batches (``data.dataset_for_fit``
    refuses y and comm with it); the options that need the rows at hand are refused."""
    data.dataset_for_fit(dataset, y, o["comm"])
    _one_in_one_out(model, "fit")
    for key in ("sample_weight", "class_weight"):
        if o[key] is not None:
            raise ValueError(f"fit: {key} is not taken with a Dataset; give arrays X, y")
    if o["validation_split"]:
        raise ValueError("fit: validation_split needs arrays; with a Dataset give "
                         "validation_data=(X_val, y_val) or another Dataset")
    val = _validation(model, o["validation_data"])
    return SimpleNamespace(X=None, y=None, w=None, val=val, options=o,
                           dataset=checked_whole(model, dataset, "fit"))


def rows(X) -> int:
    """The samples in ``X``: an array, or a tuple of them (one per input)."""
    return int((X[0] if isinstance(X, tuple) else X).shape[0])


def take(X, index):
    """Rows ``index`` of ``X`` (an array or a tuple of them)."""
    return tuple(a[index] for a in X) if isinstance(X, tuple) else X[index]


def batches(X, y, size, shuffle=False, seed=None):
    """``data.batches`` for ``X`` and ``y`` arrays or tuples of them (a model's inputs,
    outputs' labels): each part takes the same permutation (a copy of the generator, drawn
    from once per part)."""
    if not isinstance(X, tuple) and not isinstance(y, tuple):
        return data.batches(X, y, size, shuffle=shuffle, seed=seed)
    xs = X if isinstance(X, tuple) else (X,)
    ys = y if isinstance(y, tuple) else () if y is None else (y,)
    seed = np.random.default_rng(seed) if shuffle and not isinstance(
        seed, np.random.Generator) else seed
    copies = [copy.deepcopy(seed) for _ in range(len(xs) + len(ys) - 1)]
    parts = [data.batches(a, None, size, shuffle=shuffle, seed=c)
             for a, c in zip((*xs, *ys), [seed, *copies])]

    def joined():
        for first in parts[0]:
            got = [first[0], *(next(p)[0] for p in parts[1:])]
            Xb, yb = tuple(got[:len(xs)]), tuple(got[len(xs):])
            yield (Xb if isinstance(X, tuple) else Xb[0],
                   yb if isinstance(y, tuple) else yb[0] if yb else None)

    return joined()


def _rows(y, start, stop):
    return None if y is None else take(y, slice(start, stop))


def _validation(model, given):
    if given is None:
        return None
    if isinstance(given, data.Dataset):
        return given, None, None
    if not isinstance(given, (tuple, list)) or len(given) not in (2, 3):
        raise ValueError("fit: validation_data must be (x, y), (x, y, sample_weight) or an "
                         "xn.data.Dataset of (x, y) batches")
    X = model._features(given[0])
    y = model._targets(given[1], rows(X))
    sw = given[2] if len(given) == 3 else None
    return X, y, model._weights(y, rows(X), sw, None)


def train(model, step, run):
    """Run the epochs; returns the History."""
    o, comm = run.options, run.options["comm"]
    verbose, checksum = o["verbose"], None
    if comm is not None:
        checksum = distributed.sharding.check_data(run.X, run.y, comm)  # before any change
        comm.broadcast_variables(model.session)
        verbose = verbose if comm.rank == 0 else 0
    fetches, allreduces = _fit_fetches(model, step, comm)
    rng = initializers.generator(o["seed"])
    given = list(o["callbacks"] or [])
    nan_stop = next((c for c in given if isinstance(c, cbks.TerminateOnNaN)), None)
    if nan_stop is None:
        nan_stop = cbks.TerminateOnNaN()
        given.append(nan_stop)
    callbacks = cbks.CallbackList(given, model)
    history = model.history = cbks.History({k: [] for k in ("loss", *model.metric_sums)})
    model.stop_training = False
    callbacks.on_train_begin({})
    for epoch in range(o["initial_epoch"], o["epochs"]):
        started = time.perf_counter()
        callbacks.on_epoch_begin(epoch, {})
        logs = _epoch(model, fetches, allreduces, run, rng, epoch, callbacks, checksum,
                      verbose)
        if isinstance(logs, str):
            history.stopped = logs
            nan_stop.on_nan(logs)
            break
        history.epoch.append(epoch)
        callbacks.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if verbose:
            _report(epoch, o["epochs"], history, time.perf_counter() - started)
        if model.stop_training:
            break
    callbacks.on_train_end({})
    return history


def _epoch(model, fetches, allreduces, run, rng, epoch, callbacks, checksum, verbose):
    """One epoch's logs, or the message saying where a non-finite loss stopped it."""
    o, comm = run.options, run.options["comm"]
    batches, n_batches = (_fit_batches(run, rng, comm, checksum) if run.dataset is None
                          else _dataset_batches(model, run.dataset))
    with contextlib.closing(batches):  # stops a Dataset's prefetch thread, come what may
        sums = _train_epoch(model, fetches, allreduces,
                            _progress(batches, n_batches, epoch, o["epochs"], verbose),
                            epoch, comm, callbacks)
    if isinstance(sums, str):
        return sums
    logs = dict(zip(("loss", *model.metric_sums), sums))
    if run.val is not None:
        val = evaluate(model, *run.val, max(o["batch_size"], 1024), comm, callbacks)
        logs.update({f"val_{k}": v for k, v in val.items()})
    return logs


def _fit_fetches(model, step, comm):
    """What each training run fetches, and the step's allreduces (with ``comm``)."""
    # The layers' own updates (BatchNorm's moving statistics) run with the step. Across
    # ranks the step's own check of the averaged gradients stands in for the loss's:
    # a check on one rank alone would stop it and leave the others in the allreduce.
    loss_node = model._checked_loss if comm is None else model._train_loss
    updates = model.net.updates() if model.net is not None else []
    fetches = [step, loss_node, *model.metric_sums.values(), *updates]
    allreduces = distributed.allreduces(step)  # their weights follow uneven last batches
    for allreduce in allreduces:
        allreduce.check_finite = True
    return fetches, allreduces


def _train_epoch(model, fetches, allreduces, batches, epoch, comm, callbacks):
    """Run the training step over ``batches``: the epoch's [loss, *metrics] means, or the
    message saying where it stopped when a step's loss was not finite."""
    values, counts = [], []
    n_metrics = len(model.metric_sums)
    running = _Running(model) if callbacks.wants("on_train_batch_end") else None
    for batch, (Xb, yb, wb, share) in enumerate(batches):
        for allreduce in allreduces:
            allreduce.scale = share
        callbacks.on_train_batch_begin(batch, {})
        try:
            _, *got = model.session.run(fetches, model._feed(Xb, yb, wb, training=True))
        except NumericsError:
            return (f"fit stopped at epoch {epoch + 1}, batch {batch + 1}: the loss is not "
                    "finite (NaN or inf); the weights are those after the last finite "
                    "step. Lower the learning rate, or look for NaN/inf in the data")
        values.append(got[:1 + n_metrics])
        counts.append(model._count(yb) if yb is not None else rows(Xb))
        # Keras's batch logs: this batch's values to the host, only for a hook that reads them
        logs = running.add(model.session.device.to_host, values[-1], counts[-1]) if (
            running is not None) else {}
        callbacks.on_train_batch_end(batch, logs)
    return _epoch_means(model.session, values, counts, comm)


class _Running:
    """Keras's running logs over the batches so far: the loss's mean weighted by each
    batch's rows, each metric's sum over the rows."""

    def __init__(self, model):
        self.names = ("loss", *model.metric_sums)
        self.totals, self.rows = np.zeros(len(self.names)), 0

    def add(self, to_host, got, count) -> dict:
        host = [float(np.asarray(to_host(v))) for v in got]
        self.totals += [host[0] * count, *host[1:]]
        self.rows += count
        return dict(zip(self.names, (self.totals / max(self.rows, 1)).tolist()))


def _epoch_means(session, values, counts, comm=None) -> list[float]:
    """[mean loss, *metric sums / rows] over an epoch's per-batch values, still on the
    device: stacked there and brought to the host in one transfer; with ``comm`` summed
    over the ranks too (one message)."""
    if not values:
        return [0.0] * (len(values[0]) if values else 1)
    xp = session.xp
    with context_of(values[0][0]):  # CuPy stacks on the current GPU: make it the values' one
        dtype = xp.result_type(*(v.dtype for v in values[0]))
        both = xp.stack([xp.stack([xp.astype(v, dtype) for v in row]) for row in values])
    host = np.asarray(session.device.to_host(both), np.float64)
    totals = [float((host[:, 0] * np.asarray(counts)).sum()), *host[:, 1:].sum(0).tolist()]
    rows = sum(counts)
    if comm is not None:
        *totals, rows = comm.sum([*totals, rows])
    return [t / rows for t in totals]


def _fit_batches(run, rng, comm, checksum=None):
    """(iterator of (X_batch, y_batch, weights or None, share), number of batches) for one
    epoch: with ``comm`` this rank's part of each global batch."""
    X, y, w = run.X, run.y, run.w
    o = run.options
    size, shuffle = o["batch_size"], o["shuffle"]
    if comm is None:
        # The weights' batches take the same permutation: a copy of the generator.
        w_rng = copy.deepcopy(rng)
        xy = batches(X, y, size, shuffle=shuffle, seed=rng)
        ws = (data.batches(w, None, size, shuffle=shuffle, seed=w_rng) if w is not None
              else None)
        it = ((Xb, yb, None if ws is None else next(ws)[0], 1.0) for Xb, yb in xy)
        return it, -(-rows(X) // size)
    it = distributed.batches(X, y, size, comm, shuffle=shuffle, seed=rng, shares=True,
                             data_checksum=checksum)
    return ((Xb, yb, None, share) for Xb, yb, share in it), -(-X.shape[0] // (size * comm.size))


def _dataset_batches(model, dataset, what="fit"):
    """``_fit_batches`` for an ``xn.data.Dataset``: each batch checked (unless
    ``checked_whole`` checked all its rows) and its X moved to the model's device on the
    dataset's prefetch thread (``data.feed_batches``); the labels stay on the host, where
    the loop counts them (``predict`` ignores them)."""
    _one_in_one_out(model, what)
    check = None if getattr(dataset, "_checked_for", None) is model else _dataset_check(
        model, what)
    return data.feed_batches(dataset, model.session, (model.inputs, None, None, None),
                             check or (lambda Xb, yb: (Xb, yb, None, 1.0)))


def checked_whole(model, dataset, what):
    """A Dataset over arrays with its X's shape and all its labels checked now, before any
    step (as arrays given to fit are): a shallow copy holding the checked labels, which
    shares the original's generator (the same shuffles); its batches then skip the checks.
    Other Datasets are returned as they are, their batches checked as they come."""
    if dataset.kind != "arrays" or dataset.transform is not None or (
            dataset.y is None and what != "predict"):
        return dataset
    model._features(dataset.X)  # the shape only: a memmap's rows are not read here
    whole = copy.copy(dataset)
    whole.y = None if what == "predict" else model._targets(dataset.y, dataset.n)
    whole._checked_for = model
    return whole


def _one_in_one_out(model, what):
    if len(model._ins) > 1 or len(model._outs) > 1:
        raise ValueError(f"{what}: an xn.data.Dataset feeds a model of one input and one "
                         f"output; this one has {len(model._ins)} and {len(model._outs)}: "
                         f"pass x (and y) as lists of arrays")


def _dataset_check(model, what):
    def check(Xb, yb):
        if yb is None and what != "predict":
            raise ValueError(f"{what}: the Dataset gives batches without labels (y is None); "
                             "give it (X, y) batches")
        Xb = model._features(Xb)
        yb = None if what == "predict" else model._targets(yb, Xb.shape[0])
        return Xb, yb, None, 1.0

    return check


def evaluate(model, X, y, w, batch_size, comm=None, callbacks=None) -> dict:
    """``{"loss": mean, metric: mean}`` over ``X, y`` (arrays, or an ``xn.data.Dataset``
    of (X, y) batches); with ``comm`` (every rank passing the same data) each rank
    evaluates its shard and the sums are taken over the ranks. ``callbacks``: a
    ``CallbackList`` whose ``on_test_*`` hooks run, as Keras's."""
    callbacks = callbacks or cbks.CallbackList([], model)
    callbacks.on_test_begin({})
    if isinstance(X, data.Dataset):
        batches, _ = _dataset_batches(model, checked_whole(model, X, "evaluate"), "evaluate")
        with contextlib.closing(batches):
            totals, n = _evaluate_batches(model, batches, callbacks)
    else:
        n = model._count(y) if y is not None else rows(X)
        if comm is not None:
            X, y = distributed.shard(X, y, comm, even=False)
            w = None
        totals, _ = _evaluate_batches(model, _weighted(X, y, w, batch_size), callbacks)
        if comm is not None:
            totals = np.asarray(comm.sum(totals.tolist()))
    logs = dict(zip(("loss", *model.metric_sums), (totals / max(n, 1)).tolist()))
    callbacks.on_test_end(dict(logs))
    return logs


def _weighted(X, y, w, batch_size):
    """(X, y, weights or None, 1.0) batches in order."""
    start = 0
    for Xb, yb in batches(X, y, batch_size):
        end = start + rows(Xb)
        yield Xb, yb, None if w is None else w[start:end], 1.0
        start = end


def _evaluate_batches(model, batches, callbacks):
    """(the loss's sum over the rows and the metrics' sums, the rows): host numbers."""
    fetches = [model._train_loss, *model.metric_sums.values()]
    totals, seen = np.zeros(len(fetches)), 0
    for batch, (Xb, yb, wb, _) in enumerate(batches):
        callbacks.on_test_batch_begin(batch, {})
        got = model.session.run(fetches, model._feed(Xb, yb, wb), to_numpy=True)
        count = model._count(yb) if yb is not None else rows(Xb)
        totals += [float(got[0]) * count, *map(float, got[1:])]
        seen += count
        callbacks.on_test_batch_end(batch, dict(zip(("loss", *model.metric_sums),
                                                    (totals / seen).tolist())))
    return totals, seen


def predict(model, X, batch_size, callbacks) -> np.ndarray:
    """The outputs for ``X`` (an array, or a Dataset whose batches' labels are ignored) as
    one host array, with the ``on_predict_*`` hooks."""
    if isinstance(X, data.Dataset):
        given, _ = _dataset_batches(model, checked_whole(model, X, "predict"), "predict")
    else:
        given = ((Xb, None, None, 1.0) for Xb, _ in
                 batches(model._features(X), None, batch_size))
    callbacks.on_predict_begin({})
    parts = []
    with contextlib.closing(given):
        for batch, (Xb, *_) in enumerate(given):
            callbacks.on_predict_batch_begin(batch, {})
            parts.append(model.session.run(model.outputs, model._feed(Xb), to_numpy=True))
            callbacks.on_predict_batch_end(batch, {"outputs": parts[-1]})
    callbacks.on_predict_end({})
    if not parts:
        raise ValueError("predict: the Dataset gave no batches")
    if isinstance(model.outputs, (list, tuple)):  # one array per output, as Keras's
        return [np.concatenate(each) for each in zip(*parts)]
    return np.concatenate(parts)


def _progress(iterable, total, epoch, epochs, verbose):
    if verbose != 1:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                file=sys.stderr)


def _report(epoch, epochs, history, seconds):
    parts = [f"epoch {epoch + 1}/{epochs}", f"{seconds:.2f}s"]
    parts += [f"{k} {v[-1]:.4g}" if k in ("learning_rate", "lr") else f"{k} {v[-1]:.4f}"
              for k, v in history.items() if v]
    print(" - ".join(parts), flush=True)
