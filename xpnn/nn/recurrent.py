"""Recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU`` and the ``Bidirectional`` wrapper.

Inputs are batch-major, ``(batch, time, features)``, with a static number of time steps:
the time loop is :func:`_over_time`, the one place that knows it is a loop: unrolled into
the graph, one cell per step (``loop="unroll"``, TF1's ``static_rnn``, the default), or one
cell run by ``xn.control_flow.scan_loop`` (``loop="scan"``, TF1's ``dynamic_rnn``: any
number of steps, one ``lax.scan`` on JAX). The input's part of every step is one matrix
product before the loop.

Weights are stored as PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` store layer 0's, so
its tensors copy in as they are (``weight_ih_l0`` -> ``layer.weight_ih`` and so on):

- ``weight_ih`` (gates * units, n_in), ``weight_hh`` (gates * units, units), ``bias_ih``
  and ``bias_hh`` (gates * units,); a step computes ``x @ weight_ih.T + bias_ih`` and
  ``h @ weight_hh.T + bias_hh``.
- LSTM's four gates in PyTorch's order i, f, g, o: ``c' = f c + i g``, ``h' = o tanh(c')``.
- GRU's three in the order r, z, n, with the reset gate applied after ``weight_hh``, as
  PyTorch (and cuDNN) do: ``n = tanh(x W_in + b_in + r (h W_hn + b_hn))``,
  ``h' = (1 - z) n + z h``.

``lengths`` (batch,) or ``mask`` (batch, time) mark the real steps: past a sequence's end
the state is kept and the output is zeros, so the last output is each sequence's state at
its own length (TF1's ``dynamic_rnn`` with ``sequence_length``, PyTorch's packed sequences).

>>> import xpnn as xn
>>> lstm = xn.nn.LSTM(3, 5, seed=0)
>>> lstm.weight_ih.shape, lstm.weight_hh.shape, lstm.bias_ih.shape
((20, 3), (20, 5), (20,))
>>> x = xn.placeholder("float32", (None, 7, 3))
>>> lstm(x).shape, xn.nn.LSTM(3, 5, return_sequences=True)(x).shape
((None, 5), (None, 7, 5))
"""

from __future__ import annotations

import math

import numpy as np

from .. import init as initializers
from .. import ops
from ..control_flow import scan_loop
from ..graph import Node, Variable, constant, get_default_graph
from .layers import Layer

PARTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


LOOPS = ("unroll", "scan")


def _over_time(step, inputs, state, mask=None, reverse=False, loop="unroll"):
    """Run ``step(x_t, state) -> (output, state)`` over the time-major ``inputs`` (time,
    batch, features), first to last (last to first when ``reverse``). ``loop="unroll"``
    builds one cell per step in the graph (TF1's ``static_rnn``); ``"scan"`` builds the cell
    once and runs it with ``xn.control_flow.scan_loop`` (TF1's ``dynamic_rnn``: a smaller
    graph, one ``lax.scan`` on JAX, any number of steps). Where ``mask`` (batch, time) is
    False, the state is kept and the output is zeros. Returns every step's output, stacked
    on axis 1 (batch-major), and the last state (a list)."""

    def masked(x_t, keep, state):
        output, new = step(x_t, state)
        if keep is None:
            return output, list(new)
        new = [ops.where(keep, n, s) for n, s in zip(new, state)]
        return ops.where(keep, output, ops.zeros_like(output)), new

    if loop == "scan":
        elems = [inputs]
        if mask is not None:
            elems.append(ops.transpose(mask, (1, 0)))

        def scanned(carry, xs):
            output, new = masked(xs[0], xs[1][:, None] if mask is not None else None, carry)
            return new, output

        state, outputs = scan_loop(scanned, list(state), elems, reverse=reverse)
        return ops.transpose(outputs, (1, 0, 2)), list(state)
    steps = list(enumerate(ops.unstack(inputs, axis=0)))
    outputs = [None] * len(steps)
    for t, x_t in reversed(steps) if reverse else steps:
        keep = None if mask is None else mask[:, t:t + 1]
        outputs[t], state = masked(x_t, keep, state)
    return ops.stack(outputs, axis=1), state


class _Recurrent(Layer):
    """One recurrent layer: weights in PyTorch's layout (see the module), the cell in
    :meth:`step`; ``__call__`` checks the inputs and runs the cell over time."""

    gates = 1  # blocks of ``units`` rows in the weights
    base = "rnn"  # the default name
    state_size = 1  # state tensors: h (LSTM: h and c)

    def __init__(self, n_in, units, return_sequences=False, return_state=False, seed=None,
                 dtype="float32", name=None, loop="unroll"):
        if loop not in LOOPS:
            raise ValueError(f"{type(self).__name__}: loop must be one of {LOOPS}, got "
                             f"{loop!r}")
        self.loop = loop
        name = name or get_default_graph().layer_name(self.base)
        self.n_in, self.units, self.name = int(n_in), int(units), name
        if self.n_in < 1 or self.units < 1:
            raise ValueError(f"{type(self).__name__}: n_in and units must be >= 1, got "
                             f"{n_in} and {units}")
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        rng, limit = initializers.generator(seed), 1.0 / math.sqrt(self.units)
        for part, shape in self.state_shapes(self.n_in, self.units).items():
            value = rng.uniform(-limit, limit, shape).astype(dtype)  # PyTorch's init
            setattr(self, part, Variable(value, name=f"{name}/{part}"))

    def parameters(self):
        return [getattr(self, part) for part in PARTS]

    def state(self):
        return {part: getattr(self, part) for part in PARTS}

    def config(self):
        return {"n_in": self.n_in, "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "dtype": self.weight_ih.dtype, "name": self.name, "loop": self.loop}

    @classmethod
    def state_shapes(cls, n_in, units, **_):
        rows = cls.gates * units
        return {"weight_ih": (rows, n_in), "weight_hh": (rows, units), "bias_ih": (rows,),
                "bias_hh": (rows,)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_in}, {self.units})"

    def __call__(self, x, training=None, lengths=None, mask=None, initial_state=None):
        """The outputs for ``x`` (batch, time, n_in): every step's (batch, time, units)
        with ``return_sequences``, else the last state h (batch, units); with
        ``return_state``, a list: that output, then the final state tensors."""
        outputs, state = self.run(x, lengths, mask, initial_state)
        output = outputs if self.return_sequences else state[0]
        return [output, *state] if self.return_state else output

    def run(self, x, lengths=None, mask=None, initial_state=None, reverse=False):
        """(every step's output stacked on axis 1, the final state as a list), checked;
        ``reverse`` runs the sequences backwards, each from its own last real step. The
        input's part of every step, ``x W_ih^T + b``, is one product before the loop."""
        x = self._check_input(x)
        mask = _step_mask(self, x, lengths, mask)
        state = self._initial_state(x, initial_state)
        w_ih, b_ih, *weights = self._weights()
        projected = _time_major_affine(x, w_ih, b_ih)
        return _over_time(lambda p_t, s: self.step(p_t, s, *weights), projected, state, mask,
                          reverse, self.loop)

    def _weights(self):
        """What the loop reads, made once: W_ih^T and b_ih (for the product before the
        loop), then what every step reads: W_hh^T and b_hh."""
        return (ops.transpose(self.weight_ih), self.bias_ih, ops.transpose(self.weight_hh),
                self.bias_hh)

    def step(self, x, state, w_hh, b_hh):
        """One time step from the input's projected part ``x``: (output, new state list)."""
        raise NotImplementedError

    def _check_input(self, x):
        x = x if isinstance(x, Node) else constant(np.asarray(x, self.weight_ih.dtype))
        shape = x.shape
        if shape is None or len(shape) != 3 or (shape[1] is None and self.loop == "unroll"):
            raise ValueError(f"layer {self.name!r} ({self!r}) takes inputs of shape (batch, "
                             f"time, {self.n_in}) with a known number of time steps (the "
                             f"time loop is unrolled), got {x.label} of shape {shape}: give "
                             f"the placeholder a fixed time size, or build the layer with "
                             f"loop='scan'")
        if shape[2] is not None and shape[2] != self.n_in:
            raise ValueError(f"layer {self.name!r} ({self!r}) takes inputs with {self.n_in} "
                             f"features (n_in) in the last axis, got an input of shape "
                             f"{tuple(shape)}: build the layer for {shape[2]} features")
        return x

    def _initial_state(self, x, given):
        """The state tensors at the start: ``given`` (checked), or zeros (batch, units)."""
        n = self.state_size
        if given is None:
            zeros = ops.add(ops.zeros_like(x[:, 0, :1]),
                            np.zeros(self.units, self.weight_ih.dtype))
            return [zeros] * n
        given = [given] if isinstance(given, Node) or n == 1 and not isinstance(
            given, (list, tuple)) else list(given)
        if len(given) != n:
            raise ValueError(f"layer {self.name!r} ({self!r}): initial_state must be {n} "
                             f"tensor(s) of shape (batch, {self.units}), got {len(given)}")
        given = [constant(s) if not isinstance(s, Node) else s for s in given]
        for s in given:
            if s.shape is not None and (len(s.shape) != 2 or s.shape[1] not in (None,
                                                                                self.units)):
                raise ValueError(f"layer {self.name!r} ({self!r}): initial_state tensors "
                                 f"must have shape (batch, {self.units}), got {s.label} of "
                                 f"shape {s.shape}")
        return given


def _affine(x, w_t, b):
    return ops.add(ops.matmul(x, w_t), b)


def _time_major_affine(x, w_t, b):
    """``x W + b`` for x (batch, time, n), time-major: (time, batch, m). Where the time or
    the batch size is known it is one 2-D product over the rows in time order, so each
    step's slice is a block of consecutive rows (on NumPy, in the layout the step's own
    matrix products give: no strided copies in the loop)."""
    steps, batch = x.shape[1], x.shape[0]
    time_major = ops.transpose(x, (1, 0, 2))
    if steps is None and batch is None:
        return _affine(time_major, w_t, b)
    rows = _affine(ops.reshape(time_major, (-1, w_t.shape[0])), w_t, b)
    return ops.reshape(rows, (steps if steps is not None else -1,
                              batch if steps is None else -1, w_t.shape[1]))


class SimpleRNN(_Recurrent):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (PyTorch's ``nn.RNN``, tanh).

    >>> import xpnn as xn
    >>> xn.nn.SimpleRNN(3, 4).state_shapes(3, 4)["weight_hh"]
    (4, 4)
    """

    base = "simple_rnn"

    def step(self, x, state, w_hh, b_hh):
        h = ops.tanh(ops.add(x, _affine(state[0], w_hh, b_hh)))
        return h, [h]


class LSTM(_Recurrent):
    """Long short-term memory, PyTorch's ``nn.LSTM`` (gates i, f, g, o); the state is
    [h, c].

    >>> import xpnn as xn
    >>> xn.nn.LSTM.state_shapes(3, 4)["weight_ih"]
    (16, 3)
    """

    gates, base, state_size = 4, "lstm", 2

    def _weights(self):  # one bias, added before the loop: the two add once
        return (ops.transpose(self.weight_ih), ops.add(self.bias_ih, self.bias_hh),
                ops.transpose(self.weight_hh), None)

    def step(self, x, state, w_hh, _):
        h, c = state
        z = ops.add(ops.matmul(h, w_hh), x)  # into the product's own buffer, in place
        h, c = ops.lstm_cell_elementwise(z, c)  # the gates i, f, g, o: one op, one kernel
        return h, [h, c]


class GRU(_Recurrent):
    """Gated recurrent unit, PyTorch's ``nn.GRU`` (gates r, z, n; the reset gate multiplies
    ``h W_hn + b_hn``).

    >>> import xpnn as xn
    >>> xn.nn.GRU.state_shapes(3, 4)["bias_hh"]
    (12,)
    """

    gates, base = 3, "gru"

    def step(self, x, state, w_hh, b_hh):
        h = state[0]
        x_r, x_z, x_n = ops.split(x, 3, axis=-1)
        h_r, h_z, h_n = ops.split(_affine(h, w_hh, b_hh), 3, axis=-1)
        r = ops.sigmoid(ops.add(x_r, h_r))
        z = ops.sigmoid(ops.add(x_z, h_z))
        n = ops.tanh(ops.add(x_n, ops.multiply(r, h_n)))
        h = ops.add(n, ops.multiply(z, ops.subtract(h, n)))  # (1 - z) n + z h
        return h, [h]


RECURRENT = {cls.__name__: cls for cls in (SimpleRNN, LSTM, GRU)}


def _step_mask(layer, x, lengths, mask):
    """(batch, time) bool, True on real steps, from ``lengths`` or ``mask`` (or None)."""
    if lengths is not None and mask is not None:
        raise ValueError(f"layer {layer.name!r}: give lengths or mask, not both")
    batch, steps = x.shape[0], x.shape[1]
    if mask is not None:
        mask = mask if isinstance(mask, Node) else constant(np.asarray(mask))
        if mask.shape is not None and (len(mask.shape) != 2 or mask.shape[1] not in (
                None, steps) or None not in (batch, mask.shape[0]) and batch != mask.shape[0]):
            raise ValueError(f"layer {layer.name!r} ({layer!r}): mask must have shape "
                             f"(batch, {steps}) to match the input {x.shape}, got "
                             f"{mask.label} of shape {mask.shape}")
        return mask if mask.dtype == "bool" else ops.not_equal(mask, 0)
    if lengths is None:
        return None
    if steps is None:
        raise ValueError(f"layer {layer.name!r} ({layer!r}): lengths need the input's number "
                         f"of time steps, and {x.label} of shape {x.shape} has none: give "
                         f"the placeholder a fixed time size, or pass mask= (batch, time)")
    lengths = _checked_lengths(layer, x, lengths)
    positions = constant(np.arange(steps, dtype=np.int32))
    return ops.less(positions, ops.reshape(lengths, (-1, 1)))


def _checked_lengths(layer, x, lengths):
    """``lengths`` as int32 (batch,), checked now for shape and dtype and when run for its
    values (0 to the number of steps: the run fails otherwise, before any update)."""
    lengths = lengths if isinstance(lengths, Node) else constant(np.asarray(lengths))
    batch, steps = x.shape[0], x.shape[1]
    shape = lengths.shape
    if shape is not None and (len(shape) != 1 or None not in (batch, shape[0])
                              and batch != shape[0]):
        raise ValueError(f"layer {layer.name!r} ({layer!r}): lengths must have shape "
                         f"(batch,) = ({batch},) to match the input {x.shape}, got "
                         f"{lengths.label} of shape {shape}")
    if lengths.dtype is not None and np.dtype(lengths.dtype).kind not in "iu":
        raise TypeError(f"layer {layer.name!r} ({layer!r}): lengths must be integers (each "
                        f"sequence's number of steps), got {lengths.dtype}")
    lengths = ops.cast(lengths, "int32")
    # check_numerics is the graph's run-time check: an inf marks a length out of range.
    outside = ops.logical_or(ops.less(lengths, 0), ops.greater(lengths, steps))
    flags = ops.check_numerics(ops.where(outside, np.float32(np.inf), np.float32(0.0)),
                               f"layer {layer.name!r}: lengths must lie in [0, {steps}] "
                               f"(the input's time steps); the inf marks each one outside")
    return ops.add(lengths, ops.cast(flags, "int32"))


class Bidirectional(Layer):
    """A recurrent layer run forwards and, as a copy with weights of its own, backwards in
    time (each sequence reversed within its own length, as PyTorch's packed sequences);
    the outputs are joined on the last axis. With ``return_state``: the output, then the
    forward layer's final state tensors, then the backward one's. ``layer`` may be a
    recurrent layer or its saved record ``{"class": "LSTM", "config": {...}}``.

    >>> import xpnn as xn
    >>> bi = xn.nn.Bidirectional(xn.nn.GRU(3, 4, return_sequences=True, seed=0), seed=1)
    >>> bi(xn.placeholder("float32", (None, 6, 3))).shape
    (None, 6, 8)
    >>> sorted(bi.state())[:2]
    ['backward.bias_hh', 'backward.bias_ih']
    """

    def __init__(self, layer, seed=None, name=None):
        if isinstance(layer, dict):
            layer = _from_record(layer)
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional wraps one of {sorted(RECURRENT)}, got {layer!r}")
        self.name = name or get_default_graph().layer_name("bidirectional")
        self.forward = layer
        self.backward = type(layer)(**dict(layer.config(), name=f"{self.name}/backward"),
                                    seed=seed)

    def __call__(self, x, training=None, lengths=None, mask=None, initial_state=None):
        """The forward and backward outputs joined on the last axis (see the class)."""
        n = self.forward.state_size
        if initial_state is not None and len(initial_state) != 2 * n:
            raise ValueError(f"layer {self.name!r} ({self!r}): initial_state must be the "
                             f"forward layer's {n} state tensor(s), then the backward one's, "
                             f"got {len(initial_state)}")
        starts = (None, None) if initial_state is None else (initial_state[:n],
                                                             initial_state[n:])
        runs = [layer.run(x, lengths, mask, start, reverse=layer is self.backward)
                for layer, start in zip((self.forward, self.backward), starts)]
        (fw_out, fw_state), (bw_out, bw_state) = runs
        if self.forward.return_sequences:
            output = ops.concat([fw_out, bw_out], axis=-1)
        else:
            output = ops.concat([fw_state[0], bw_state[0]], axis=-1)
        return [output, *fw_state, *bw_state] if self.forward.return_state else output

    def parameters(self):
        return self.forward.parameters() + self.backward.parameters()

    def state(self):
        return {f"{side}.{k}": v for side in ("forward", "backward")
                for k, v in getattr(self, side).state().items()}

    def config(self):
        return {"layer": {"class": type(self.forward).__name__,
                          "config": self.forward.config()}, "name": self.name}

    @classmethod
    def state_shapes(cls, layer, **_):
        shapes = RECURRENT[layer["class"]].state_shapes(**layer["config"])
        return {f"{side}.{k}": s for side in ("forward", "backward") for k, s in shapes.items()}

    def __repr__(self) -> str:
        return f"Bidirectional({self.forward!r})"


def _from_record(record):
    """The recurrent layer a saved record ``{"class": ..., "config": ...}`` describes."""
    cls = RECURRENT.get(record.get("class"))
    if cls is None or not isinstance(record.get("config"), dict):
        raise ValueError(f"Bidirectional: a layer record must be {{'class': one of "
                         f"{sorted(RECURRENT)}, 'config': {{...}}}}, got {record!r}")
    return cls(**record["config"])
