"""``NNClassifier``: a softmax classifier on its own graph and Session, with the series'
training loop (``loss``, ``backward``, ``SGD``) and the scikit-learn one (``fit``,
``evaluate``, ``predict``); its save and load live in ``saving.py``.

>>> import xpnn as xn
>>> X, y = xn.data.make_blobs(n_per_class=20, seed=0)
>>> model = xn.nn.NNClassifier([2, 8, 2], seed=0)
>>> history = model.fit(X, y, epochs=30, batch_size=8, learning_rate=0.1, verbose=0)
>>> model.score(X, y) > 0.95
True
"""

from __future__ import annotations

import operator
import warnings

import numpy as np

from .. import data, ops, optimizers
from ..dtypes import dtype_name
from ..graph import Graph, placeholder
from ..host import to_numpy
from ..ops import losses
from ..session import Session
from . import estimator, saving
from . import losses_metrics as lm
from .callbacks import LearningRateScheduler
from .layers import MLP, Conv2D, Layer, Linear, Sequential
from .model import History, Model


def _is_stack(units) -> bool:
    return isinstance(units, Sequential) or (
        isinstance(units, (list, tuple)) and bool(units) and isinstance(units[0], Layer))


def _sizes(units):
    """An MLP's layer sizes as given, checked (None first or last: that size comes from the
    data at fit); None for a stack of layers."""
    return None if _is_stack(units) else _check_units(units, none_ends=True)


def _network(units, input_shape):
    """(the layer stack given, or None; the MLP's sizes or None; the shape of one sample)."""
    if _is_stack(units):
        if input_shape is None:
            raise ValueError("a model of layers needs input_shape=, the shape of one sample "
                             "(e.g. (28, 28, 1))")
        net = units if isinstance(units, Sequential) else Sequential(list(units))
        return net, None, tuple(int(d) for d in input_shape)
    sizes = _check_units(units)
    return None, sizes, (sizes[0],)


def _classes(logits) -> tuple[int, tuple]:
    """(number of classes, the shape of one sample's labels: () for one class per sample,
    (steps,) for one per time step)."""
    shape = logits.shape
    if shape is None or len(shape) not in (2, 3) or shape[-1] is None:
        raise ValueError(f"the model's output must have shape (n_samples, n_classes), or "
                         f"(n_samples, steps, n_classes) for a class per step, got {shape}: "
                         f"end the layers with a Linear layer")
    return shape[-1], tuple(shape[1:-1])


def _check_units(units, none_ends=False) -> list:
    """Layer sizes as ints: at least an input and an output size, each a whole number >= 1;
    with ``none_ends``, the first and last may be None (from the data)."""
    try:
        sizes = list(units)
        last = len(sizes) - 1
        sizes = [u if u is None and none_ends and i in (0, last) else operator.index(u)
                 for i, u in enumerate(sizes)]
    except TypeError as exc:
        raise TypeError(f"units must be a list of whole numbers (layer sizes), got {units!r}"
                        ) from exc
    if len(sizes) < 2 or min((s for s in sizes if s is not None), default=1) < 1:
        raise ValueError(
            f"units must hold an input size, any hidden sizes and an output size, each >= 1, "
            f"got {sizes}"
        )
    return sizes


FIT_DEFAULTS = dict(epochs=10, batch_size=32, optimizer="sgd", learning_rate=None, verbose=1)
OPTIMIZERS = {name: make for name, (make, _) in optimizers.NAMES.items()}


def _renamed_lr(lr, learning_rate):
    """``fit``'s rate: ``learning_rate``, or ``lr``, its old spelling, with a warning."""
    if lr is None:
        return learning_rate
    if learning_rate is not None:
        raise TypeError("fit: give learning_rate= only (lr= is its old spelling)")
    warnings.warn("fit(lr=...) is now fit(learning_rate=...)", DeprecationWarning, stacklevel=3)
    return lr


class NNClassifier(Model):
    """A softmax classifier on its own graph and Session: an MLP of layer sizes ``units``, or
    any stack of layers (a ``Sequential`` or a list, e.g. Conv2D, MaxPool2D, Flatten,
    Dropout, Linear) with ``input_shape``, the shape of one sample. ``fit`` runs Dropout in
    training mode, everything else in inference mode.

    As a scikit-learn estimator, ``NNClassifier(units=[None, 64, None])`` takes the number
    of features (``n_features_in_``) and the classes (``classes_``: any labels, strings or
    ints not starting at 0; ``predict`` gives them back) from ``fit(X, y)``, and checks
    ``X`` and ``y`` as scikit-learn does (NaN, infinity, regression targets, one class are
    refused). The network is built at fit, or at first use (``forward``, ``get_weights``)
    where ``units`` gives every size; a stack of layers at once. ``warm_start``: whether
    ``fit`` continues from the current weights (None: where ``units`` gives every size).
    ``epochs``, ``batch_size``, ``optimizer``, ``learning_rate`` and ``verbose`` are fit's
    defaults (None: fit's own), so that scikit-learn's ``fit(X, y)`` (a Pipeline,
    GridSearchCV) trains as wanted and can tune them.

    A stack whose output is (n_samples, steps, n_classes) (``Embedding``, ``LSTM(...,
    return_sequences=True)``, ``Linear``) is a sequence tagger: its labels are one class
    per step, (n_samples, steps), a negative one (-1, or PyTorch's -100) marking a padded
    step; the loss is the cross-entropy averaged over the real steps, and ``predict``,
    ``predict_proba`` and ``score`` are per step (score over the real steps).

    >>> import numpy as np, xpnn as xn
    >>> X = np.random.default_rng(0).integers(0, 4, (64, 5))
    >>> y = np.where(np.arange(5) < 3, X, -1)  # copy each token; the last two are padding
    >>> with xn.Graph().as_default():
    ...     tagger = xn.nn.NNClassifier([xn.nn.Embedding(4, 8, seed=0),
    ...                                  xn.nn.LSTM(8, 8, return_sequences=True, seed=1),
    ...                                  xn.nn.Linear(8, 4, seed=2)], input_shape=(5,))
    >>> h = tagger.fit(X, y, epochs=10, optimizer="adam", learning_rate=0.1, verbose=0)
    >>> tagger.predict(X[:2]).shape, tagger.score(X, y) > 0.9
    ((2, 5), True)

    The series' loop: ``loss(X, t)``, ``backward()``, ``SGD(model, lr).step()``, and
    ``forward_probs(X)``; or the scikit-learn way: ``fit``, ``predict``, ``score``.

    >>> import xpnn as xn
    >>> X, y = xn.data.make_moons(64, noise=0.1, seed=0)
    >>> model = xn.nn.NNClassifier([2, 10, 2], seed=0)
    >>> opt = xn.nn.SGD(model, lr=0.5)
    >>> first = model.loss(X, y)
    >>> for _ in range(50):
    ...     _ = model.loss(X, y); _ = model.backward(); opt.step()
    >>> model.loss(X, y) < first
    True
    """

    def __init__(self, units=(None, 100, None), activation="relu", device=None, backend=None,
                 seed=0, dtype="float32", input_shape=None, warm_start=None, epochs=None,
                 batch_size=None, optimizer=None, learning_rate=None, verbose=None):
        # Parameters only, as scikit-learn's estimators: the network is built at fit, or at
        # first use where ``units`` gives every size (the lesson's forward before any fit).
        self._given = dict(units=units, activation=activation, device=device, backend=backend,
                           seed=seed, dtype=dtype, input_shape=input_shape,
                           warm_start=warm_start, epochs=epochs, batch_size=batch_size,
                           optimizer=optimizer, learning_rate=learning_rate, verbose=verbose)
        self._net = None
        if _is_stack(units):  # built at once, as its layers are read through it (layer.W)
            self._network()

    # ------------------------------------------------------------------ the network, lazily

    def __setattr__(self, name, value):
        # The network's attributes (session, graph, logits, ...) live in one dict, made by
        # _build and dropped by set_params: scikit-learn wants __init__ and fit to add no
        # public attribute but the fitted ones, ending in _ (classes_, n_features_in_).
        net = self.__dict__.get("_net")
        if name in ("_given", "_net") or name.endswith("_") or net is None:
            object.__setattr__(self, name, value)
        else:
            net[name] = value

    def __delattr__(self, name):
        net = self.__dict__.get("_net")
        if name not in self.__dict__ and net is not None and name in net:
            del net[name]
        else:
            object.__delattr__(self, name)

    def __getattr__(self, name):
        net = self.__dict__.get("_net")
        if net is not None and name in net:  # the common case: read in every training step
            return net[name]
        if name.startswith("__") or name.endswith("_") or "_given" not in self.__dict__:
            raise AttributeError(f"'NNClassifier' object has no attribute {name!r}")
        try:
            return self._network()[name]
        except KeyError:
            raise AttributeError(f"'NNClassifier' object has no attribute {name!r}") from None

    def _network(self) -> dict:
        """The network's attributes, built now where ``units`` gives every size."""
        if self._net is None:
            units = self._given["units"]
            sizes = _sizes(units)
            if sizes is not None and None in sizes:
                raise estimator.not_fitted(
                    f"this NNClassifier is not fitted yet: units={units!r} takes its input "
                    f"and output sizes from the data; call fit(X, y) first, or give every "
                    f"size (e.g. [2, 8, 2]) to use it before fit")
            self._build(units)
        return self._net

    def _build(self, units) -> None:
        """Make the network of ``units`` (every size known), a new graph for an MLP."""
        given = self._given
        net, sizes, input_shape = _network(units, given["input_shape"])
        dtype = dtype_name(given["dtype"])
        if net is None:  # an MLP gets its own graph
            with Graph().as_default():
                net = MLP(sizes, given["activation"], seed=given["seed"], dtype=dtype)
        self._forget()
        self._net = {}
        try:
            self._build_model(net, input_shape, dtype, sizes)
        except BaseException:
            self._net = None
            raise
        self.classes_ = np.arange(self.n_classes)
        if len(self.input_shape) == 1:
            self.n_features_in_ = self.input_shape[0]

    def _build_model(self, net, input_shape, dtype, sizes) -> None:
        given = self._given
        super().__init__(net, input_shape, dtype=dtype, device=given["device"],
                         backend=given["backend"], seed=given["seed"])
        self.units, self.activation = sizes, given["activation"]
        self.logits = self.outputs
        self.n_classes, self.label_shape = _classes(self.logits)
        with self.graph.as_default():
            self.labels = placeholder("int32", (None, *self.label_shape), name="t")
            self.sample_weight = placeholder(self.dtype, (None,), name="sample_weight")
            self.probs = ops.softmax(self.logits)
            loss_node, self.n_correct = self._loss_and_hits()
            train_loss, _ = self._loss_and_hits(self.sample_weight)
        self._finish_loss(loss_node, train_loss, {"accuracy": self.n_correct})
        self._last_feed = None

    def _forget(self) -> None:
        """Drop the network and what fit learned (set_params, a fit on other sizes)."""
        if self._net is not None and "session" in self._net:
            self._net["session"].close()
        self._net = None
        for name in ("classes_", "n_features_in_"):
            self.__dict__.pop(name, None)

    def _restart(self) -> None:
        """Start over on the same network: a new Session, in which every Variable (the
        optimizers' slots too) starts from its seeded initial value again."""
        given, old = self._given, self.session
        self.session = Session(self.graph, device=given["device"], backend=given["backend"],
                               seed=given["seed"])
        old.close()
        for layer in self.net.layers:
            layer.session = self.session
        self.stop_training, self.history, self._last_feed = False, None, None

    @property
    def units(self):
        """The MLP's layer sizes (None for a stack of layers), once built."""
        return self._network()["units"]

    def __sklearn_is_fitted__(self) -> bool:
        """Whether the network exists (fit, or first use where ``units`` gives every size):
        scikit-learn's ``check_is_fitted`` asks this."""
        return self._net is not None

    def _loss_and_hits(self, sample_weight=None):
        """The mean cross-entropy (each sample's scaled by ``sample_weight`` where given)
        and the number of right predictions; per step, over the real steps only (a
        negative label marks a padded step)."""
        hits = ops.equal(ops.argmax(self.logits), self.labels)
        if not self.label_shape:
            if sample_weight is None:
                return (losses.sparse_softmax_cross_entropy(self.labels, self.logits),
                        ops.reduce_sum(hits))
            per_sample = losses.sparse_softmax_cross_entropy(self.labels, self.logits, "none")
            return ops.reduce_mean(ops.multiply(per_sample, sample_weight)), None
        real = ops.greater_equal(self.labels, 0)
        labels = ops.where(real, self.labels, ops.zeros_like(self.labels))  # never read
        if sample_weight is None:
            loss = losses.sparse_softmax_cross_entropy(labels, self.logits, weights=real)
            return loss, ops.reduce_sum(ops.multiply(hits, real))
        weights = ops.multiply(ops.cast(real, self.dtype), ops.reshape(sample_weight, (-1, 1)))
        total = losses.sparse_softmax_cross_entropy(labels, self.logits, "sum", weights=weights)
        steps = ops.reduce_sum(ops.cast(real, self.dtype))
        # Every step padding (a batch of padding only) gives 0, not 0 / 0.
        return ops.divide(total, ops.maximum(steps, 1.0)), None

    @property
    def layers(self):
        """The layers with weights, Linear and Conv2D (``layers[i].W`` / ``.b`` are arrays
        on the model's device)."""
        return [layer for layer in self.net.layers if isinstance(layer, (Linear, Conv2D))]

    def __repr__(self) -> str:
        if self._net is None:
            given = self._given
            return (f"NNClassifier({given['units']!r}, activation={given['activation']!r}, "
                    f"device={given['device']!r})")
        if self.units is None:
            return f"NNClassifier({self.net!r}, device={self.device})"
        return f"NNClassifier({self.units}, activation={self.activation!r}, device={self.device})"

    # ------------------------------------------------------------------ checks

    def _targets(self, t, n):
        """The labels as int32 class indices (which every device holds, JAX without x64
        too), checked; a bad one is named as given (inf, 0.5), not as a cast made it. Per
        step, a negative label marks a padded step."""
        host = np.asarray(to_numpy(t))
        self._check_label_shape(host.shape, n)
        if self._classes_from_data():
            host = estimator.indices(host, self.classes_)
        if host.dtype.kind not in "iu":
            whole = (np.isfinite(host) & (host == np.round(host)) if host.dtype.kind == "f"
                     else np.zeros(host.shape, bool))
            if not whole.all():
                raise ValueError(
                    f"labels must be integers in [0, {self.n_classes}), got "
                    f"{host[~whole][0]} (dtype {host.dtype})"
                )
        k = self.n_classes
        lm.one_unit(host[host >= 0], k)
        bad = (host >= k) if self.label_shape else (host < 0) | (host >= k)
        if bad.any():
            raise ValueError(
                f"label {host[bad][0]} is outside [0, {k}): this model has {k} classes"
                + (" (a negative label marks a padded step)" if self.label_shape else "")
            )
        if self.label_shape and not (host >= 0).any():
            raise ValueError("every label is negative (padding): give at least one real step")
        return host.astype(np.int32, copy=False)

    def _classes_from_data(self) -> bool:
        sizes = _sizes(self._given["units"])
        return sizes is not None and sizes[-1] is None

    def _features(self, X):
        """``X`` checked as scikit-learn checks it (dense, real numbers, finite); an MLP's
        as (n_samples, n_features)."""
        if self.units is None:
            return super()._features(estimator.check_X(X, flat=False, finite=False))
        return estimator.check_X(X, self.units[0], finite=self._from_data())

    def _check_label_shape(self, shape, n):
        want = (n, *self.label_shape)
        if len(shape) == len(want) and all(w in (None, d) for w, d in zip(want, shape)):
            return
        if not self.label_shape and tuple(shape) == (n, self.n_classes) and n and \
                self.n_classes > 1:
            raise ValueError(
                f"labels of shape {tuple(shape)} look one-hot (a row of {self.n_classes} per "
                f"sample), but NNClassifier's loss (sparse_categorical_crossentropy) takes one "
                f"class index per sample: pass integer labels (y.argmax(1)) or use "
                f"loss='categorical_crossentropy' (xn.nn.Model)")
        if not self.label_shape:
            hint = ("" if len(shape) < 2 else ": this model gives one class per sample; for "
                    "one per step, keep the time axis to the end (return_sequences=True) "
                    "and end with a Linear layer")
            raise ValueError(f"labels must have shape ({n},) to match X, got {shape}{hint}")
        steps = ", ".join(map(str, want[1:]))
        raise ValueError(
            f"labels must have shape ({n}, {steps}) to match X and the model's output "
            f"{tuple(self.logits.shape)} (one class per step; a negative label marks a "
            f"padded step), got {shape}; for one label per sequence, end with a recurrent "
            f"layer without return_sequences (or Flatten) and a Linear layer")

    def _lesson_feed(self, X, t=None):
        X = self._features(X)
        return self._feed(X, None if t is None else self._targets(t, X.shape[0]))

    # ------------------------------------------------------------------ the lesson's loop

    def forward(self, X):
        """Logits for ``X`` (an array on the model's device)."""
        return self.session.run(self.logits, self._lesson_feed(X))

    def forward_probs(self, X):
        """Class probabilities for ``X`` (softmax of the logits), on the model's device."""
        return self.session.run(self.probs, self._lesson_feed(X))

    def loss(self, X, t) -> float:
        """Mean cross-entropy for integer labels ``t``; remembers the batch for backward()."""
        self._last_feed = self._lesson_feed(X, t)
        return float(to_numpy(self.session.run(self.loss_node, self._last_feed)))

    def backward(self):
        """Gradients of the last ``loss(X, t)``: sets ``layer.dW`` and ``layer.db``."""
        if self._last_feed is None:
            raise RuntimeError("call loss(X, t) before backward()")
        grads = self.session.run(self.grad_nodes, self._last_feed)
        of = dict(zip(self.params, grads))
        for layer in self.layers:
            layer.dW, layer.db = of[layer.weight], of[layer.bias]
        return grads

    # ------------------------------------------------------------------ scikit-learn way

    def _new_optimizer(self, optimizer, learning_rate):
        """``optimizers.get``; a name's optimizer starts at rate 0.01 unless
        ``learning_rate`` says (the lesson's rate, not Keras's per-name defaults)."""
        if learning_rate is None and isinstance(optimizer, str):
            learning_rate = 0.01
        return optimizers.get(optimizer, learning_rate)

    def fit(self, X, y=None, epochs=None, batch_size=None, optimizer=None, learning_rate=None,
            validation_data=None, verbose=None, seed=0, shuffle=True, lr=None,
            lr_schedule=None, comm=None, *, callbacks=None, validation_split=0.0,
            class_weight=None, sample_weight=None, initial_epoch=0) -> History:
        """Minibatch training; returns per-epoch ``loss``/``accuracy`` (and ``val_*``).
        ``optimizer`` is a name (``"sgd"``, ``"momentum"``, ``"adam"``, ``"rmsprop"`` ...: see
        ``xn.train.get``) or an optimizer object, as in
        Keras (``xn.train.MomentumOptimizer(0.05, 0.9)``); ``learning_rate`` overrides its
        rate (default 0.01 for a name; ``lr`` is its old spelling). ``verbose=1`` shows a
        progress bar (tqdm when installed). Where ``units`` gives every size, a later ``fit``
        continues from the weights there, and with the same ``optimizer`` its state
        (momentum, Adam's moments) at the new rate, as Keras's; where the data give them,
        each ``fit`` starts over, as scikit-learn's (``warm_start`` says either way).

        ``X`` may be an ``xn.data.Dataset`` (data on disk, a generator), without ``y``: its
        own batches, shuffle and prefetch thread are used (``batch_size``, ``shuffle`` and
        ``seed`` here are not); a bad batch raises when it comes, after the steps before it.

        A step whose loss is NaN or infinite stops training, as Keras's TerminateOnNaN: that
        step writes nothing, so the weights are those after the last finite step; a
        RuntimeWarning says where it stopped, and ``history.stopped`` too (None otherwise).
        The history holds the epochs completed before it.

        ``callbacks``, ``validation_split``, ``class_weight``, ``sample_weight`` and
        ``initial_epoch`` are Keras's (see ``Model.fit``).

        ``lr_schedule(epoch, lr)``, as Keras's LearningRateScheduler, gives the rate for each
        epoch (counted from 0) from the current one; the history then records
        ``learning_rate`` per epoch.

        ``comm`` (``xn.distributed.init()``) trains data-parallel, one process per rank: every
        rank passes the same ``X, y``; the ranks start from rank 0's weights (broadcast here),
        each step rank r trains on its ``batch_size`` rows of a global batch of
        ``batch_size * size`` (``xn.distributed.batches``), the gradients are averaged over
        the ranks before the update, the metrics (and validation, each rank its shard) are
        over every rank's rows, and only rank 0 prints. It trains as one process would with
        batch ``batch_size * size``, to rounding.

        >>> import xpnn as xn
        >>> X, y = xn.data.make_moons(64, noise=0.1, seed=0)
        >>> model = xn.nn.NNClassifier([2, 8, 2], seed=0)
        >>> h = model.fit(X, y, epochs=3, optimizer="momentum", learning_rate=0.1, verbose=0,
        ...               lr_schedule=lambda epoch, lr: lr if epoch < 2 else lr / 10)
        >>> [round(r, 4) for r in h["learning_rate"]]
        [0.1, 0.1, 0.01]
        """
        epochs, batch_size, optimizer, learning_rate, verbose = self._fit_settings(
            epochs=epochs, batch_size=batch_size, optimizer=optimizer,
            learning_rate=_renamed_lr(lr, learning_rate), verbose=verbose)
        X, y, class_weight = self._ready_to_fit(X, y, sample_weight, class_weight)
        callbacks = list(callbacks or [])
        if lr_schedule is not None:
            callbacks.append(LearningRateScheduler(lr_schedule))
        return self._fit(optimizer, learning_rate, X, y, batch_size=batch_size, epochs=epochs,
                         verbose=verbose, callbacks=callbacks, validation_split=validation_split,
                         validation_data=validation_data, shuffle=shuffle,
                         class_weight=class_weight, sample_weight=sample_weight,
                         initial_epoch=initial_epoch, seed=seed, comm=comm)

    def _fit_settings(self, **given) -> list:
        """Each of fit's settings: as given to fit, else to the constructor, else fit's
        default (10 epochs of batches of 32, SGD at 0.01, a progress bar)."""
        return [value if value is not None else self._given[name] if self._given[name]
                is not None else FIT_DEFAULTS[name] for name, value in given.items()]

    def _ready_to_fit(self, X, y, sample_weight, class_weight):
        """Check an MLP's ``X`` and ``y`` as scikit-learn does and build the network for
        their sizes, or start the one there over (unless ``warm_start``); ``classes_`` are
        the labels found in ``y`` where ``units`` ends in None. Nothing has changed when
        this raises."""
        sizes = _sizes(self._given["units"])
        if sizes is None or isinstance(X, data.Dataset):
            self._start(None)
            return X, y, class_weight
        X = estimator.check_X(X, sizes[0], finite=self._from_data(), hint=(
            f"; units={self._given['units']!r} fixes {sizes[0]} (give None first to take the "
            f"width from the data)"))
        if y is not None or self._from_data():  # else fit's own message (Keras's form)
            y = estimator.column_y(y, "fit")
        if sizes[-1] is not None:
            self._start([X.shape[1], *sizes[1:]])
            return X, y, class_weight
        classes = estimator.classes_of(y, X.shape[0], "fit", sample_weight)
        class_weight = estimator.class_weight_by_index(class_weight, classes)
        self._start([X.shape[1], *sizes[1:-1], len(classes)])
        self.classes_ = classes
        return X, y, class_weight

    def _start(self, units) -> None:
        """Build the network of these sizes (None: of ``units`` as given; not fitted where
        they leave a size to the data), or, where it is built, start it over unless
        ``warm_start``."""
        if self._net is None and units is None:
            self._network()
        elif self._net is None or (units is not None and self.units != units):
            self._build(units)
        elif not self._warm_start():
            self._start_over = True  # done by _train_step, once fit's inputs are checked

    def _train_step(self, optimizer, learning_rate, comm=None):
        """Model's; then, where fit starts over, fresh weights: after every check of fit's
        inputs (the learning rate's last), so a refused fit changes nothing."""
        step = super()._train_step(optimizer, learning_rate, comm)
        if self._network().pop("_start_over", False):
            self._restart()
        return step

    def _warm_start(self) -> bool:
        """``warm_start``; None: start over where the sizes come from the data (scikit-
        learn's fit), continue where ``units`` gives them (Keras's, the lesson's)."""
        warm = self._given["warm_start"]
        return not self._from_data() if warm is None else bool(warm)

    def _from_data(self) -> bool:
        """Whether ``units`` leaves a size to the data: then X and y are checked as
        scikit-learn checks them (NaN and infinity refused before training too)."""
        sizes = _sizes(self._given["units"])
        return sizes is not None and None in (sizes[0], sizes[-1])

    def evaluate(self, X, y, batch_size=1024, comm=None, sample_weight=None
                 ) -> tuple[float, float]:
        """(mean loss, accuracy) over ``X, y`` (per step: over the real steps); with
        ``comm`` (every rank passing the same data) each rank evaluates its shard and the
        sums are taken over the ranks."""
        logs = self._evaluate_logs(X, y, sample_weight, batch_size, comm)
        return logs["loss"], logs["accuracy"]

    def _count(self, y) -> int:
        """What the loss and accuracy average over: the samples, or per step the real
        steps (labels >= 0)."""
        return int(np.count_nonzero(y >= 0)) if self.label_shape else y.shape[0]

    def export_onnx(self, path, opset=17):
        """The class probabilities (``predict_proba``'s) as an ONNX model at ``path``."""
        return super().export_onnx(path, opset, outputs=self.probs)

    def predict_proba(self, X, batch_size=4096) -> np.ndarray:
        """Class probabilities as a host NumPy array: (n_samples, n_classes), or per step
        (n_samples, steps, n_classes)."""
        X = self._features(X)
        parts = [self.session.run(self.probs, {self.inputs: Xb, self.training: False},
                                  to_numpy=True)
                 for Xb, _ in data.batches(X, None, batch_size, shuffle=False)]
        return np.concatenate(parts)

    def predict(self, X, batch_size=4096) -> np.ndarray:
        """Predicted class labels (host, from ``classes_``; int64 class indices where
        ``units`` fixes the classes): one per sample, or per step."""
        proba = self.predict_proba(X, batch_size)
        return self.classes_[np.argmax(proba, axis=-1)]

    def get_params(self, deep=True) -> dict:
        """The constructor's arguments, as scikit-learn's ``get_params``."""
        return dict(self._given)

    def set_params(self, **params) -> NNClassifier:
        """Change constructor arguments, as scikit-learn's ``set_params``: the network is
        dropped and built again (new weights) at fit or first use; an unknown name raises
        before anything changes."""
        unknown = sorted(set(params) - set(self._given))
        if unknown:
            raise ValueError(f"NNClassifier has no parameter {unknown[0]!r}: its parameters "
                             f"are {sorted(self._given)}")
        self._forget()
        self._given.update(params)
        return self

    def __getstate__(self) -> dict:
        """For pickle and deepcopy: the parameters, what fit learned and, once built, the
        architecture and weights as ``save`` writes them; no Session, no graph."""
        if _is_stack(self._given["units"]):
            self._network()  # the layers are stored as save stores them
        params = dict(self._given)
        state = {"params": params, "fitted": {k: v for k, v in self.__dict__.items()
                                              if k.endswith("_")}}
        if self._net is not None:
            state["arrays"] = {name: to_numpy(self.session.get_value(v))
                               for name, v in self._param_names().items()}
            if self.units is None:
                record = saving.describe(self.net.layers, self.input_shape, self.dtype)
                state["arrays"].update({k: np.asarray(v) for k, v in record.items()})
                params["units"] = params["input_shape"] = None
            state["units"] = self.units
        return state

    def __setstate__(self, state) -> None:
        self.__init__(**state["params"])
        arrays = state.get("arrays")
        if arrays is not None:
            units = state["units"]
            if units is None:
                stack = saving.read(arrays, "a pickled NNClassifier")
                self._given.update(units=stack.build(), input_shape=stack.input_shape)
                units = self._given["units"]
            self._build(units)
            for name, variable in self._param_names().items():
                self.session.set_value(variable, arrays[name])
        self.__dict__.update(state["fitted"])

    def __sklearn_tags__(self):
        """scikit-learn's tags (read by its checks; imported only when asked)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags())

    def score(self, X, y) -> float:
        """Accuracy on ``X, y`` (per step: over the real steps)."""
        return self.evaluate(X, y)[1]

    # ------------------------------------------------------------------ save / load

    def _param_names(self):
        """File names of the Variables to save: ``layers.<i>.<name>``, numbering the layers
        that hold state (Linear, Conv2D, BatchNorm) in order."""
        return saving.numbered(layer.state() for layer in self.net.layers)

    def save(self, path) -> None:
        """Write the weights (BatchNorm's moving statistics too) and the architecture to
        ``path`` (.npz, no pickle, atomic), as Keras's ``model.save``: an MLP's sizes
        (``__units__``), or a stack's layers as JSON (``__layers__``: each one's class and
        ``config()``) with ``__input_shape__`` and ``__dtype__``. :meth:`load` rebuilds the
        model from it; a stack holding a layer of your own is rebuilt by your code, then
        :meth:`load_weights`."""
        saving.save(self, path)

    def load_weights(self, path) -> None:
        """Load weights saved by :meth:`save`, or by ``model.session.save`` (a checkpoint of
        the Variables under their own names, optimizer slots too, which are skipped, as
        Keras's ``load_weights`` reads a TF checkpoint); a file for another architecture, or
        one that holds something other than numbers, raises and leaves this model unchanged.

        >>> import xpnn as xn, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
        >>> a, b = xn.nn.NNClassifier([2, 3, 2], seed=0), xn.nn.NNClassifier([2, 3, 2], seed=1)
        >>> a.save(path); b.load_weights(path); (b.layers[0].W == a.layers[0].W).all().item()
        True
        """
        saving.load_weights(self, path)

    @classmethod
    def load(cls, path, device=None, backend=None) -> NNClassifier:
        """A new model from a file written by :meth:`save`, on ``device``/``backend``, as
        Keras's ``load_model``: an MLP, or a stack of xpnn's layers with its weights and
        BatchNorm's moving statistics (which its inference uses). The stored architecture
        is checked, and checked against the stored weights, before anything is built, so a
        corrupt file raises ``ValueError`` naming it instead of allocating a huge model. A
        stack with a layer of your own: build it with your code and call load_weights.

        >>> import xpnn as xn, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
        >>> xn.nn.NNClassifier([2, 3, 2], activation="tanh").save(path)
        >>> xn.nn.NNClassifier.load(path)
        NNClassifier([2, 3, 2], activation='tanh', device=Device(numpy:cpu))
        >>> layers = [xn.nn.Conv2D(1, 2, 3), xn.nn.BatchNorm(2), xn.nn.Flatten(),
        ...           xn.nn.Linear(8, 3)]
        >>> xn.nn.NNClassifier(layers, input_shape=(4, 4, 1)).save(path)
        >>> xn.nn.NNClassifier.load(path).net
        Sequential(Conv2D(1, 2, (3, 3), padding='VALID'), BatchNorm(2), Flatten(), Linear(8, 3))
        """
        return saving.load(cls, path, device, backend)


class SGD:
    """The lesson's optimizer: ``step()`` moves every layer by -lr times the gradients the
    last ``backward()`` stored. It runs one update node on the model's graph."""

    def __init__(self, model: NNClassifier, lr=0.01):
        self.model, self.lr = model, float(lr)
        with model.graph.as_default():
            self.grad_inputs = [placeholder(p.dtype, p.shape, name=f"grad/{p.label}")
                                for p in model.params]
            self.update = optimizers.GradientDescentOptimizer(lr).apply_gradients(
                zip(self.grad_inputs, model.params))

    def step(self) -> None:
        grads = []
        for layer in self.model.layers:
            if layer.dW is None:
                raise RuntimeError("call model.backward() before SGD.step()")
            grads += [layer.dW, layer.db]
        self.model.session.run(self.update, dict(zip(self.grad_inputs, grads)))
