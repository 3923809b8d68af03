"""Keras's callbacks for ``Model.fit``, with Keras's names and hooks: ``on_train_begin/end``,
``on_epoch_begin/end(epoch, logs)``, ``on_train_batch_begin/end(batch, logs)``, and those of
``evaluate`` (``on_test_*``, also run by fit's validation) and ``predict``
(``on_predict_*``); a callback stops training by setting ``model.stop_training = True``.

``logs`` at an epoch's end hold that epoch's ``loss``, metrics and ``val_*``; at a batch's
end, as Keras's, the means so far this epoch (``loss`` weighted by the batches' rows, the
metrics); ``on_test_end`` gets evaluate's results, ``on_predict_batch_end`` the batch's
``outputs``; the ``*_begin`` hooks get an empty dict. The loop brings each batch's values to
the host only where a callback defines a batch's end hook (else once per epoch).
``TensorBoard(log_dir)`` writes them, the weights' histograms and the graph to event files.

>>> import xpnn as xn
>>> X, y = xn.data.make_blobs(n_per_class=20, seed=0)
>>> model = xn.nn.NNClassifier([2, 8, 2], seed=0)
>>> stop = xn.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
>>> h = model.fit(X, y, epochs=20, verbose=0, callbacks=[stop])
>>> h.epoch, stop.stopped_epoch
([0, 1], 1)
"""

from __future__ import annotations

import csv
import math
import os
import warnings


class Callback:
    """Base class: every hook does nothing; ``self.model`` is set by ``fit``."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


class History(dict):
    """Per-epoch lists by name (``loss``, metrics, ``val_*``), Keras's ``history.history``;
    ``epoch`` lists the epochs run; ``stopped`` says why training stopped early on a
    non-finite loss (None otherwise)."""

    stopped: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch = []

    @property
    def history(self):  # Keras spelling
        return self


class CallbackList:
    """The callbacks of one ``fit``, called in order."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"fit: callbacks must be xn.callbacks.Callback objects "
                                f"(e.g. xn.callbacks.EarlyStopping()), got {callback!r}")
            callback.set_model(model)

    def wants(self, hook) -> bool:
        """Whether a callback defines ``hook`` (not the base class's, which does nothing)."""
        return any(getattr(type(c), hook) is not getattr(Callback, hook)
                   for c in self.callbacks)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        return lambda *args: [getattr(c, hook)(*args) for c in self.callbacks] and None


def _better(mode, monitor):
    """The comparison for ``mode`` ("min", "max", or "auto": max for accuracy-like names)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "max" or (mode == "auto" and ("acc" in monitor or monitor.startswith("fmeasure"))):
        return lambda value, best, delta: value - delta > best, -math.inf
    return lambda value, best, delta: value + delta < best, math.inf


def _monitored(logs, monitor, who):
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who}: the logs have no {monitor!r} (they have {sorted(logs or {})}): "
                      f"pass monitor= one of them, or validation data for val_*",
                      RuntimeWarning, stacklevel=3)
    return value


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    ``restore_best_weights`` puts back the weights of the best epoch when it stops."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.baseline = verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.better, self.worst = _better(mode, monitor)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.best = self.worst if self.baseline is None else self.baseline

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if value is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self.better(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch, self.model.stop_training = epoch, True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (``model.save``) or its weights (``save_weights_only``) after each
    epoch to ``filepath`` (formatted with ``epoch`` and the logs, as Keras's
    ``"ckpt-{epoch:02d}-{val_loss:.2f}.npz"``); with ``save_best_only`` only when
    ``monitor`` improved. Each file is written atomically (a crash leaves the last one)."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", initial_value_threshold=None):
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.better, worst = _better(mode, monitor)
        self.best = worst if initial_value_threshold is None else initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if value is None or not self.better(value, self.best, 0):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{value:.5f}, saving model to {path}")
            self.best = value
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(Callback):
    """Multiply the optimizer's learning rate by ``factor`` (not below ``min_lr``) when
    ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, then wait
    ``cooldown`` epochs; the logs gain ``lr``, as Keras's."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.better, self.worst = _better(mode, monitor)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = self.worst, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["lr"] = float(optimizer.learning_rate)
        value = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.better(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and logs["lr"] > self.min_lr:
                optimizer.learning_rate = max(logs["lr"] * self.factor, self.min_lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{optimizer.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """One CSV row per epoch: ``epoch`` and the logs' values, in sorted column order, as
    Keras's; ``append`` continues an existing file."""

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.sep, self.append = os.fspath(filename), separator, append

    def on_train_begin(self, logs=None):
        appending = self.append and os.path.exists(self.filename)
        self.file = open(self.filename, "a" if appending else "w", newline="")  # noqa: SIM115
        self.writer, self.keys, self.header = None, None, not appending

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.writer is None:
            self.keys = sorted(logs)
            self.writer = csv.DictWriter(self.file, ["epoch", *self.keys], delimiter=self.sep)
            if self.header:
                self.writer.writeheader()
        self.writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self.file.flush()

    def on_train_end(self, logs=None):
        self.file.close()


class TerminateOnNaN(Callback):
    """Stop at the first step whose loss is NaN or infinite; that step writes nothing, so
    the weights are those after the last finite step. ``fit`` adds one unless given."""

    def on_nan(self, message):
        """Called by ``fit`` when a step's loss was not finite."""
        self.model.stop_training = True
        warnings.warn(message, RuntimeWarning, stacklevel=4)


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start to ``schedule(epoch, lr)`` (epochs counted
    from 0); the history records ``learning_rate`` per epoch."""

    def __init__(self, schedule, verbose=0):
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        rate = self.schedule(epoch, optimizer.learning_rate)
        try:
            optimizer.learning_rate = rate
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fit: lr_schedule({epoch}, {optimizer.learning_rate}) gave "
                             f"{rate!r}: {exc}") from None
        self.model.history.setdefault("learning_rate", []).append(optimizer.learning_rate)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}.")


class TensorBoard(Callback):
    """Keras's TensorBoard callback on ``xn.summary.FileWriter`` (``pip install
    xpnn[summary]``): event files under ``log_dir/train`` and ``log_dir/validation``, as
    Keras lays them out; each epoch's logs as scalars ``epoch_<name>`` (``val_<name>`` under
    validation/ as ``epoch_<name>``); with ``histogram_freq`` = n, every weight's histogram
    every n epochs; with ``write_graph``, the model's graph (TensorBoard's graph tab).
    ``tensorboard --logdir log_dir`` shows them."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True):
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or (
                histogram_freq < 0):
            raise ValueError(f"TensorBoard: histogram_freq must be a whole number >= 0, got "
                             f"{histogram_freq!r}")
        self.log_dir, self.histogram_freq = os.fspath(log_dir), histogram_freq
        self.write_graph, self.writers = write_graph, {}

    def on_train_begin(self, logs=None):
        from ..summary import FileWriter  # tensorboardX is imported only here

        for part in ("train", "validation"):
            self.writers[part] = FileWriter(os.path.join(self.log_dir, part))
        if self.write_graph:
            self.writers["train"].add_graph(self.model.graph)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self.writers[part].add_scalar(f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            from ..host import to_numpy

            session = self.model.session
            for variable in self.model._state_variables():
                self.writers["train"].add_histogram(
                    variable.label, to_numpy(session.get_value(variable)), epoch)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


__all__ = ["Callback", "CSVLogger", "History", "EarlyStopping", "LearningRateScheduler",
           "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]
