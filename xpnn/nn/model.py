"""``Model``: a network on its own Session, trained by one loop on any loss, in Keras's words:
``compile(optimizer, loss, metrics)``, ``fit``, ``evaluate``, ``predict``, ``summary``,
``save``/``load``. A model is a layer stack (``Model(layers, input_shape=...)``) or a
graph from an input placeholder to an output node (``Model(inputs=x, outputs=y)``).

>>> import numpy as np, xpnn as xn
>>> X = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
>>> y = X @ np.float32([[1.0], [-2.0], [0.5]])
>>> with xn.Graph().as_default():
...     model = xn.nn.Model([xn.nn.Linear(3, 1, seed=0)], input_shape=(3,))
>>> model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
>>> history = model.fit(X, y, epochs=40, batch_size=16, learning_rate=0.1, verbose=0)
>>> history.epoch[-1], history.history["loss"][-1] < 1e-3
(39, True)
"""

from __future__ import annotations

import re

import array_api_compat
import numpy as np

from .. import data, distributed, io, ops, optimizers
from ..autodiff import gradients, topological_order
from ..graph import Graph, Node, Placeholder, placeholder
from ..host import to_numpy
from ..precision import LossScaleOptimizer
from ..session import Session
from . import callbacks as cbks
from . import compiled, loop, saving
from . import losses_metrics as lm
from .callbacks import History
from .layers import MLP, Sequential
from .outputs import Outputs


class Model:
    """A network and its Session. ``layers``: a ``Sequential`` or a list of layers, with
    ``input_shape``, the shape of one sample; or ``inputs`` (a placeholder of shape
    ``(None, ...)``) and ``outputs`` (a node computed from it), and optionally ``training``
    (a bool placeholder the graph's Dropout/BatchNorm read: True while ``fit`` trains).
    ``compile`` then says the loss; see :meth:`compile` and :meth:`fit`. ``precision``:
    Keras's policy name, ``"mixed_float16"`` (``fit`` then scales the loss) or
    ``"mixed_bfloat16"`` (``Session(precision=...)``)."""

    units = None  # a stack's model; NNClassifier's MLP sets its sizes (save writes them)

    def __init__(self, layers=None, input_shape=None, *, inputs=None, outputs=None,
                 training=None, dtype="float32", device=None, backend=None, seed=0,
                 precision=None):
        if layers is not None:
            if inputs is not None or outputs is not None:
                raise TypeError("Model: give layers (with input_shape) or inputs= and "
                                "outputs=, not both")
            self._from_layers(layers, input_shape, dtype)
        elif inputs is None or outputs is None:
            raise TypeError("Model needs layers (a list or Sequential, with input_shape=) or "
                            "inputs= (a placeholder) and outputs= (a node made from it)")
        else:
            self._from_graph(inputs, outputs, training)
        self.session = Session(self.graph, device=device, backend=backend, seed=seed,
                               precision=precision)
        for layer in self.net.layers if self.net is not None else []:
            layer.session = self.session  # reaches every layer's W-style properties
        self.stop_training, self.history, self.optimizer = False, None, None
        self.compiled_loss, self._train_steps = None, {}

    def _from_layers(self, layers, input_shape, dtype):
        if input_shape is None:
            raise ValueError("a model of layers needs input_shape=, the shape of one sample "
                             "(e.g. (28, 28, 1))")
        self.net = layers if isinstance(layers, Sequential) else Sequential(list(layers))
        self.input_shape = tuple(int(d) for d in input_shape)
        self.dtype = dtype if isinstance(dtype, str) else np.dtype(dtype).name
        params = self.net.parameters()
        # The model lives in its layers' Variables' graph (layers built on their first input,
        # such as Dense, make theirs there).
        self.graph = params[0].graph if params else Graph()
        with self.graph.as_default():
            self.inputs = placeholder(self.dtype, (None, *self.input_shape), name="X")
            self.training = placeholder("bool", (), name="training")
            x, self._layer_shapes = self.inputs, []
            for layer in self.net.layers:
                x = layer(x, self.training)
                self._layer_shapes.append(x.shape)
            self.outputs = x
        self.params = self.net.parameters()

    def _from_graph(self, inputs, outputs, training):
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        if not ins or not outs or not all(isinstance(p, Placeholder) for p in ins) or not all(
                isinstance(o, Node) for o in outs):
            raise TypeError(f"Model(inputs=, outputs=) takes a placeholder or a list of them "
                            f"and a node or a list of them, got {inputs!r} and {outputs!r}")
        used = {id(n) for n in topological_order(outs)}
        unused = [p.label for p in ins if id(p) not in used]
        if unused:
            raise ValueError(f"Model: the outputs do not depend on the inputs {unused}: give "
                             f"inputs= only the placeholders the outputs are computed from")
        self.net, self.graph = None, outs[0].graph
        self.inputs = inputs if len(ins) > 1 else ins[0]
        self.outputs = outs if len(outs) > 1 else outs[0]
        self.training = training
        self.input_shape = tuple(ins[0].shape[1:]) if ins[0].shape else ()
        self.dtype = ins[0].dtype
        # In the order they were made, as Keras's weights (get_weights, summary).
        self.params = [v for v in self.graph.trainable_variables() if id(v) in used]

    @property
    def _ins(self) -> tuple:
        """The input placeholders, in order (one for a stack's model)."""
        return tuple(self.inputs) if isinstance(self.inputs, (list, tuple)) else (self.inputs,)

    @property
    def _outs(self) -> tuple:
        return tuple(self.outputs) if isinstance(self.outputs, (list, tuple)) else (
            self.outputs,)

    def __repr__(self) -> str:
        what = repr(self.net) if self.net is not None else f"inputs={self.inputs!r}"
        return f"{type(self).__name__}({what}, device={self.device})"

    @property
    def device(self):
        return self.session.device

    @property
    def layers(self):
        return list(self.net.layers) if self.net is not None else []

    # ------------------------------------------------------------------ compile

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, from_logits=None,
                y_true=None, loss_weights=None):
        """Say how to train, as Keras's ``compile``. ``loss``: ``"sparse_categorical_
        crossentropy"`` (integer labels), ``"categorical_crossentropy"`` (one-hot or soft
        rows), ``"binary_crossentropy"``, ``"mse"``, ``"mae"``, ``"huber"``, a function
        ``loss(y_true, y_pred)`` of graph nodes, or a node of the graph (with ``y_true=`` its
        label placeholder, or none: ``fit(x)`` without ``y``). ``from_logits``: whether the
        output is logits (True) or probabilities (False), Keras's flag; None (the default)
        decides from the graph: probabilities where the output is a softmax or sigmoid.
        ``metrics``: ``"accuracy"`` (which one by Keras's rules: sparse, categorical or
        binary from the loss), ``"mae"``, ``"mse"``. A model of several outputs takes a
        loss (and metrics) per output and ``loss_weights``: see ``xpnn/nn/outputs.py``."""
        if loss is None:
            raise ValueError("compile needs loss=, e.g. 'sparse_categorical_crossentropy' "
                             f"or 'mse' (one of {sorted(lm.LOSSES)}), a function or a node")
        self.optimizer = optimizers.get(optimizer)
        self._compile_args = {"loss": loss, "metrics": list(metrics or []),
                              "from_logits": from_logits}
        with self.graph.as_default():
            if len(self._outs) > 1:
                spec = Outputs(self._outs, loss, metrics, loss_weights, from_logits)
            elif loss_weights is not None:
                raise ValueError("compile: loss_weights weighs the losses of several outputs; "
                                 "this model has one")
            else:
                spec = lm.build(self.outputs, loss, metrics, from_logits, y_true)
        self.compiled_loss, self.labels, self.sample_weight = spec, spec.labels, spec.weights
        self._finish_loss(spec.plain, spec.loss, spec.sums)
        self._train_steps = {}

    def _finish_loss(self, loss_node, train_loss, metric_sums):
        """``loss_node``: the mean loss (what a plain run fetches); ``train_loss``: the
        same with each sample's term scaled by the ``sample_weight`` placeholder, which
        fit and evaluate feed (ones when no weights are given)."""
        self.loss_node, self._train_loss = loss_node, train_loss
        self.metric_sums, self._grad_nodes = dict(metric_sums), None
        with self.graph.as_default():
            # fit fetches this: a non-finite loss fails the step before it writes any weight.
            self._checked_loss = ops.check_numerics(train_loss, "the training loss")
            self._train_grads = gradients(train_loss, self.params)
        if self.params and all(g is None for g in self._train_grads):
            raise ValueError("the loss does not depend on any of the model's Variables: build "
                             "it from the model's outputs")

    @property
    def grad_nodes(self):
        """The gradients of ``loss_node`` for ``params`` (built at first use)."""
        if self._grad_nodes is None:
            with self.graph.as_default():
                self._grad_nodes = gradients(self.loss_node, self.params)
        return self._grad_nodes

    def _compiled(self, what):
        if self.compiled_loss is None and not hasattr(self, "loss_node"):
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    # ------------------------------------------------------------------ data checks

    def _features(self, X):
        """X as an array (lists and other array-likes become NumPy arrays), checked; for a
        model of several inputs, a tuple of them from a list or a dict by input name."""
        if len(self._ins) > 1:
            return self._several_features(X)
        return _checked_features(X, self.input_shape, "X")

    def _several_features(self, X):
        ins, names = self._ins, [p.name for p in self._ins]
        if isinstance(X, dict):
            if set(X) != set(names):
                raise ValueError(f"x must give each input by name, {names}, got {sorted(X)}")
            X = [X[name] for name in names]
        if not isinstance(X, (list, tuple)) or len(X) != len(ins):
            raise ValueError(f"this model has {len(ins)} inputs {names}: pass x as a list of "
                             f"{len(ins)} arrays (in that order) or a dict by name, got "
                             f"{type(X).__name__}")
        parts = tuple(_checked_features(a, tuple(p.shape[1:]), f"x[{p.name!r}]")
                      for a, p in zip(X, ins))
        rows = {int(a.shape[0]) for a in parts}
        if len(rows) > 1:
            raise ValueError(f"the inputs {names} must have the same number of samples, got "
                             f"{[int(a.shape[0]) for a in parts]}")
        return parts

    def _targets(self, y, n):
        return self.compiled_loss.targets(y, n)

    def _count(self, y) -> int:
        """What the loss and metrics average over: the samples."""
        return loop.rows(y) if y is not None else 0

    def _weights(self, y, n, sample_weight, class_weight):
        """Per-sample weights (float, host): ``sample_weight`` times ``class_weight`` of
        each sample's class; ones when neither is given."""
        w = np.ones(n, np.float32)
        if sample_weight is not None:
            given = np.asarray(to_numpy(sample_weight), np.float32)
            if given.shape != (n,) or not np.isfinite(given).all() or (given < 0).any():
                raise ValueError(f"sample_weight must hold one finite weight >= 0 per sample, "
                                 f"shape ({n},), got shape {given.shape}")
            w = w * given
        if class_weight is not None:
            if len(self._outs) > 1:
                raise ValueError("class_weight is for a model of one output; with several, "
                                 "give sample_weight")
            w = w * lm.class_weights(class_weight, y, self._n_classes())
        return w

    def _n_classes(self):
        return self.outputs.shape[-1] if self.outputs.shape else None

    # ------------------------------------------------------------------ training

    def _train_step(self, optimizer, learning_rate, comm=None):
        """The training step of this optimizer (a name or an object), made once: a later
        ``fit`` with another learning rate changes its rate and keeps its state (momentum,
        Adam's moments). With ``comm`` its gradients are averaged over the ranks."""
        key = (id(optimizer) if isinstance(optimizer, optimizers.Optimizer) else optimizer,
               comm)
        step = self._train_steps.get(key)
        if step is None:
            opt = self._new_optimizer(optimizer, learning_rate)
            if comm is not None and not isinstance(opt, distributed.DistributedOptimizer):
                opt = distributed.DistributedOptimizer(opt, comm, check_finite=True)
            with self.graph.as_default():
                pairs = [(g, p) for g, p in zip(self._train_grads, self.params) if g is not None]
                if self.session.compute_dtype == "float16" and comm is None:  # as Keras's
                    opt = LossScaleOptimizer(opt)
                    pairs = opt.compute_gradients(self._train_loss, [p for _, p in pairs])
                step = opt.apply_gradients(pairs)
            self._train_steps[key] = step
        if learning_rate is not None:
            step.optimizer.learning_rate = learning_rate
        return step

    def _new_optimizer(self, optimizer, learning_rate):
        return optimizers.get(optimizer, learning_rate)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, *, learning_rate=None, seed=0, comm=None
            ) -> History:
        """Minibatch training, as Keras's ``fit`` (``batch_size`` None: 32): returns the
        ``History`` (``history.history["loss"]``, metrics, ``val_*``; ``history.epoch``).
        ``validation_split`` holds out the last fraction of ``x, y`` (before shuffling);
        ``validation_data`` is ``(x, y)``, ``(x, y, sample_weight)`` or an
        ``xn.data.Dataset``; ``x`` may be a Dataset of (x, y) batches, and for a model of
        several inputs (outputs) ``x`` (``y``) is a list or a dict by name. ``class_weight``
        ({class: weight}) and ``sample_weight`` (one per sample) scale each sample's loss
        (the mean over the batch, as Keras's). ``callbacks``: ``xn.callbacks`` objects;
        a ``TerminateOnNaN`` is added unless given. ``learning_rate`` overrides the
        optimizer's; ``comm`` trains data-parallel (see ``NNClassifier.fit``)."""
        self._compiled("fit")
        return self._fit(self.optimizer, learning_rate, x, y, batch_size=batch_size or 32,
                         epochs=epochs, verbose=verbose, callbacks=callbacks,
                         validation_split=validation_split, validation_data=validation_data,
                         shuffle=shuffle, class_weight=class_weight,
                         sample_weight=sample_weight, initial_epoch=initial_epoch, seed=seed,
                         comm=comm)

    def _fit(self, optimizer, learning_rate, x, y, **options) -> History:
        """The one training loop: checks every input, then builds or reuses the step."""
        run = loop.prepare(self, x, y, options)
        step = self._train_step(optimizer, learning_rate, options["comm"])
        self.optimizer = step.optimizer
        return loop.train(self, step, run)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None,
                 return_dict=False, callbacks=None, comm=None):
        """The loss (and metrics, in compile's order: a list ``[loss, *metrics]``) over
        ``x, y`` (or ``x`` an ``xn.data.Dataset`` of (x, y) batches), as Keras's
        ``evaluate``; ``return_dict`` gives them by name; ``callbacks``' ``on_test_*`` hooks
        run."""
        self._compiled("evaluate")
        hooks = cbks.CallbackList(callbacks or [], self)
        if isinstance(x, data.Dataset):
            if y is not None or sample_weight is not None:
                raise ValueError("evaluate: y and sample_weight are not taken with a Dataset, "
                                 "which gives (x, y) batches itself: call evaluate(dataset)")
            logs = loop.evaluate(self, x, None, None, None, None, hooks)
        else:
            logs = self._evaluate_logs(x, y, sample_weight, batch_size or 1024, comm, hooks)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_logs(self, X, y, sample_weight, batch_size, comm=None, callbacks=None
                       ) -> dict:
        X = self._features(X)
        if comm is not None and (isinstance(X, tuple) or len(self._outs) > 1):
            raise ValueError("evaluate: comm= shards models of one input and one output")
        y = self._targets(y, loop.rows(X))
        w = self._weights(y, loop.rows(X), sample_weight, None)
        return loop.evaluate(self, X, y, w, batch_size, comm, callbacks)

    def predict(self, x, batch_size=None, verbose=0, callbacks=None) -> np.ndarray:
        """The outputs for ``x`` (an array, or an ``xn.data.Dataset``, whose labels are
        ignored) as a host NumPy array, in batches of ``batch_size`` (None: 1024), in
        inference mode; ``callbacks``' ``on_predict_*`` hooks run."""
        return loop.predict(self, x, batch_size or 1024, cbks.CallbackList(callbacks or [],
                                                                             self))

    def _feed(self, X, y=None, w=None, training=False) -> dict:
        feed = dict(zip(self._ins, X if isinstance(X, tuple) else (X,)))
        if self.training is not None:
            feed[self.training] = training
        if y is not None and getattr(self, "labels", None) is not None:
            feed.update(zip(self.labels, y) if isinstance(y, tuple) else [(self.labels, y)])
        weights = getattr(self, "sample_weight", None)
        if weights is not None:
            w = np.ones(loop.rows(X)) if w is None else w
            for p in weights if isinstance(weights, tuple) else (weights,):
                feed[p] = np.asarray(w, dtype=p.dtype)
        return feed

    # ------------------------------------------------------------------ weights

    def _state_variables(self):
        if self.net is None:
            return list(self.params)
        return [v for layer in self.net.layers for v in layer.state().values()]

    def get_weights(self) -> list:
        """Every weight (BatchNorm's moving statistics too) as host NumPy arrays."""
        return [to_numpy(self.session.get_value(v)) for v in self._state_variables()]

    def set_weights(self, weights) -> None:
        """Set the weights from a list as :meth:`get_weights` gives, checked first."""
        variables = self._state_variables()
        if len(weights) != len(variables) or any(
                tuple(np.shape(w)) != tuple(v.shape) for w, v in zip(weights, variables)):
            raise ValueError(f"set_weights: expected {len(variables)} arrays of shapes "
                             f"{[tuple(v.shape) for v in variables]}, got "
                             f"{[tuple(np.shape(w)) for w in weights]}")
        for v, w in zip(variables, weights):
            self.session.set_value(v, w)

    def _param_names(self):
        """File names of the Variables to save: ``layers.<i>.<name>``, numbering the layers
        that hold state in order; a graph's model: the Variables' own names."""
        if self.net is None:
            return {v.name: v for v in self.params}
        return saving.numbered(layer.state() for layer in self.net.layers)

    def save(self, path) -> None:
        """Write the weights and the architecture to ``path`` (.npz, atomic); see
        ``NNClassifier.save``; with what ``compile`` said (loss and metrics by name, the
        optimizer and its slots: see ``xpnn/nn/compiled.py``), which :meth:`load` restores.
        A graph's model saves its weights only."""
        if self.net is None:
            raise ValueError("save: a model made from inputs=/outputs= has no stored "
                             "architecture: use save_weights, and load_weights into the same "
                             "graph built by your code")
        saving.save(self, path, compiled.record(self))

    def save_weights(self, path) -> None:
        """Write the weights only to ``path`` (.npz, atomic)."""
        saving.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights saved by :meth:`save` or :meth:`save_weights`; a file for another
        architecture raises and leaves this model unchanged."""
        saving.load_weights(self, path)

    @classmethod
    def load(cls, path, device=None, backend=None):
        """A new model from a file written by :meth:`save`, compiled as it was when saved
        (loss and metrics by name, the optimizer and its state), as Keras's
        ``load_model``: ``fit``, ``evaluate`` and ``predict`` work at once. A model saved
        uncompiled, or compiled with a loss function or node, loads uncompiled."""

        def build(layers, activation=None, input_shape=None, **options):
            if activation is not None:  # an MLP's sizes
                with Graph().as_default():
                    net = MLP(list(layers), activation, dtype=options["dtype"])
                return cls(net, input_shape=(int(layers[0]),), **options)
            return cls(layers, input_shape=input_shape, **options)

        arrays = io.load_arrays(path)
        model = saving.load(build, path, device, backend, arrays)
        compiled.restore(model, arrays, path)
        return model

    def export_onnx(self, path, opset=17, outputs=None):
        """The forward graph in inference mode (``training`` False), with the current
        weights, as an ONNX model at ``path``: ``xn.onnx.export`` (needs ``onnx``)."""
        from ..onnx import export

        fixed = {self.training: False} if self.training is not None else None
        return export(self.session, self.inputs, outputs or self.outputs, path, opset=opset,
                      feed_dict=fixed)

    # ------------------------------------------------------------------ summary

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts as Keras does."""
        for line in _summary_lines(self):
            print_fn(line)


def _checked_features(X, want, what):
    if not array_api_compat.is_array_api_obj(X):
        X = np.asarray(X)
    shape = tuple(X.shape)
    if len(shape) != len(want) + 1 or any(w not in (None, d) for w, d in zip(want, shape[1:])):
        raise ValueError(f"{what} must have shape (n_samples, "
                         f"{', '.join(map(str, want))}), got {shape}")
    if shape[0] == 0:
        raise ValueError(f"{what} has no samples: pass at least one row")
    return X


def _snake(name):
    """Keras's snake case: ReLU -> re_lu, NNClassifier -> nn_classifier."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _summary_rows(model):
    """(name (type), output shape, parameter count) per layer or, for a graph's model, per
    Variable."""
    if model.net is None:
        rows = [(f"{p.name or 'input'} (InputLayer)", str(tuple(p.shape)), 0)
                for p in model._ins]
        return rows + [(f"{v.name} (Variable)", str(tuple(v.shape)), int(np.prod(v.shape)))
                       for v in model.params]
    rows, counts = [], {}
    for layer, shape in zip(model.net.layers, model._layer_shapes):
        kind = type(layer).__name__
        name = getattr(layer, "name", None)
        if not name:
            n = counts[kind] = counts.get(kind, -1) + 1
            name = _snake(kind) + (f"_{n}" if n else "")
        params = sum(int(np.prod(p.shape)) for p in layer.parameters())
        rows.append((f"{name} ({kind})", str(tuple(shape)), params))
    return rows


def _summary_lines(model):
    def line(fields):
        return "".join((" " + str(f))[:w].ljust(w) for f, w in zip(fields, (28, 26, 11)))

    def size(n_bytes):
        units = ["Byte", "KB", "MB", "GB", "TB"]
        while n_bytes >= 1024 and len(units) > 1:
            n_bytes, units = n_bytes / 1024, units[1:]
        return f"{n_bytes:.2f} {units[0]}"

    variables = model._state_variables()
    trainable = {id(p) for p in model.params}
    train = [v for v in variables if id(v) in trainable]
    other = [v for v in variables if id(v) not in trainable]

    def count(vs):
        n = sum(int(np.prod(v.shape)) for v in vs)
        n_bytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in vs)
        return f"{n:,} ({size(n_bytes)})"

    out = [f'Model: "{_snake(type(model).__name__)}"', "_" * 65,
           line(["Layer (type)", "Output Shape", "Param #"]), "=" * 65]
    for row in _summary_rows(model):
        out += [line(row), " " * 65]
    return out + ["=" * 65, f"Total params: {count(variables)}",
                  f"Trainable params: {count(train)}", f"Non-trainable params: {count(other)}",
                  "_" * 65]


__all__ = ["History", "Model"]
