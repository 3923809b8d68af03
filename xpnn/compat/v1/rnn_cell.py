"""``tf.nn.rnn_cell``: TF1's recurrent cells over xpnn's ops, with TF1's formulas, state
layouts, defaults and Variable names, so a ``tf.train.Saver`` checkpoint's names match.

A cell is a ``tf.layers.Layer``: its first call opens variable scope ``basic_lstm_cell``
(the class's name, unique in the current scope, or ``name=``) and makes its Variables
there (``rnn/basic_lstm_cell/kernel`` and ``.../bias`` under ``tf.nn.dynamic_rnn``); later
calls reuse them. ``cell(inputs, state)`` gives ``(output, new_state)``;
``cell.zero_state(batch_size, dtype)`` the state of zeros; ``state_size``/``output_size``
their sizes.

- ``BasicLSTMCell``: gates ``[x, h] @ kernel + bias`` split as i, j, f, o; ``forget_bias``
  (1.0) added to f; state ``LSTMStateTuple(c, h)`` (or ``[c, h]`` side by side where
  ``state_is_tuple=False``). Runs on xpnn's fused LSTM cell op (tanh activation).
- ``LSTMCell``: as BasicLSTMCell, plus ``use_peepholes`` (``w_f_diag``, ``w_i_diag``,
  ``w_o_diag``), ``cell_clip``, ``num_proj`` (``projection/kernel``, no bias) and
  ``proj_clip``; ``initializer`` for the kernels.
- ``GRUCell``: ``gates/kernel``, ``gates/bias`` (ones), ``candidate/kernel``,
  ``candidate/bias`` (zeros); ``h' = u h + (1 - u) tanh([x, r h] @ W + b)``.
- ``BasicRNNCell``: ``h' = tanh([x, h] @ kernel + bias)``.
- ``MultiRNNCell(cells)``: cell k in scope ``multi_rnn_cell/cell_k``; its state the tuple
  of the cells' states.
- ``DropoutWrapper(cell, input_keep_prob, output_keep_prob, state_keep_prob)``: dropout on
  the cell's inputs, outputs and state (not an LSTM's c), the masks drawn anew at each
  step from the Session's generator; keep probabilities may be placeholders.

``zero_state(batch_size, dtype)`` of an int batch size is a tensor a run may feed (the
last batch's final state, as TF1 programs do; a run feeds a state tuple by its tuple).

Where it differs from TF1: a cell first called inside a ``tf.while_loop`` body must have
been called (built) outside it before (``tf.nn.dynamic_rnn`` builds its cell first);
``zero_state``'s batch size is an int or ``tf.shape(x)[k]`` (that one not fed), not
another tensor; ``DropoutWrapper(variational_recurrent=True)`` is not supported and its
``seed`` is not used (the masks come from the Session's generator, as ``tf.nn.dropout``'s).

Its names: RNNCell, LayerRNNCell, BasicRNNCell, BasicLSTMCell, LSTMCell, GRUCell,
MultiRNNCell, DropoutWrapper, ResidualWrapper, LSTMStateTuple.

>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> cell = tf.nn.rnn_cell.BasicLSTMCell(4)
>>> x = tf.placeholder(tf.float32, [2, 3])
>>> h, state = cell(x, cell.zero_state(2, tf.float32))
>>> cell.state_size, h.shape, [v.name for v in tf.trainable_variables()]
(LSTMStateTuple(c=4, h=4), (2, 4), ['basic_lstm_cell/kernel', 'basic_lstm_cell/bias'])
"""

from __future__ import annotations

import collections
import sys

import numpy as np

from ... import ops
from ...graph import Node, TensorShape
from ...ops import recurrent
from .dtypes import as_dtype, float32
from .graphs import name_scope
from .initializers import constant_initializer, zeros_initializer
from .layers import Layer
from .tensors import as_tensor, placeholder_with_default, zeros
from .unsupported import module_getattr
from .variables import variable_scope


class LSTMStateTuple(collections.namedtuple("LSTMStateTuple", ("c", "h"))):
    """An LSTM's state: the cell state ``c`` and the output ``h``."""

    __slots__ = ()

    @property
    def dtype(self):
        c, h = self
        if c.dtype != h.dtype:
            raise TypeError(f"Inconsistent internal state: {c.dtype} vs {h.dtype}")
        return c.dtype


def flatten(structure) -> list:
    """The tensors (or sizes) of a nested state, depth first."""
    if isinstance(structure, (tuple, list)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def pack(structure, flat):
    """``flat`` (a list) in the nesting of ``structure``."""
    leaves = iter(flat)

    def build(s):
        if isinstance(s, (tuple, list)):
            items = [build(item) for item in s]
            return type(s)(*items) if hasattr(s, "_fields") else type(s)(items)
        return next(leaves)

    return build(structure)


def _activation(activation):
    if activation is None:
        return ops.tanh
    return getattr(ops, activation) if isinstance(activation, str) else activation


def zeros_for_batch(batch_size, size, dtype):
    """Zeros of shape (batch_size, size): ``batch_size`` an int (a tensor a run may feed,
    as TF1's: a program feeds the last batch's final state there), or ``tf.shape(x)[k]``."""
    if not isinstance(batch_size, Node):
        shape = [int(batch_size), int(size)]
        return placeholder_with_default(np.zeros(shape, as_dtype(dtype).name), shape, "zeros")
    source = _shape_source(batch_size)
    if source is None:
        raise NotImplementedError(
            "zero_state: a batch size given as a tensor must be tf.shape(x)[k] (or an int); "
            f"got {batch_size.label}")
    x, k = source
    key = tuple(slice(None) if i == k else 0 for i in range(len(x.shape)))
    column = ops.cast(ops.ZerosLike(ops.GetItem(ops.stop_gradient(x), key)), as_dtype(
        dtype).name)[:, None]  # (batch, 1) zeros, whatever x's batch is at run time
    return ops.add(column, zeros([int(size)], dtype))


def _shape_source(node):
    """(x, k) where ``node`` is ``tf.shape(x)[k]`` (through identities and casts)."""
    node = _unwrapped(node)
    if type(node) is not ops.GetItem or len(node.key) != 1 or not isinstance(node.key[0], int):
        return None
    shape = _unwrapped(node.inputs[0])
    if type(shape) is not ops.shape.Shape or shape.inputs[0].shape is None:
        return None
    return shape.inputs[0], node.key[0] % len(shape.inputs[0].shape)


def _unwrapped(node):
    while type(node).__name__ in ("Identity", "Cast") and node.inputs:
        node = node.inputs[0]
    return node


class RNNCell(Layer):
    """TF1's abstract cell: ``__call__(inputs, state, scope=None)`` builds the Variables at
    the first call (``build(input_shape)``), then ``call(inputs, state)``."""

    def __init__(self, trainable=True, name=None, dtype=None, reuse=None, **kwargs):
        super().__init__(trainable=trainable, name=name, dtype=dtype, _reuse=reuse, **kwargs)

    @property
    def state_size(self):
        raise NotImplementedError(f"{type(self).__name__}.state_size")

    @property
    def output_size(self):
        raise NotImplementedError(f"{type(self).__name__}.output_size")

    def __call__(self, inputs, state, scope=None):
        inputs = as_tensor(inputs)
        if not self.built:
            self.build_once(TensorShape(inputs.shape), scope, inputs.dtype)
        with name_scope(self.scope.original_name_scope):
            return self.call(inputs, state)

    def build_once(self, input_shape, scope=None, dtype=None) -> None:
        """Open the cell's variable scope (``scope`` or its unique name) and make its
        Variables there for inputs of ``input_shape`` (of ``dtype``), once."""
        if self.built:
            return
        with variable_scope(scope or self._scope_name(),
                            reuse=self._reuse or None) as opened:
            self.scope = opened
            if self.dtype is None:
                found = as_dtype(dtype or float32)
                self.dtype = found if found.is_floating else float32
            self.build(input_shape)
            self.built = True

    def zero_state(self, batch_size, dtype):
        """The state of zeros for ``batch_size`` examples (an int or ``tf.shape(x)[0]``)."""
        with name_scope(f"{type(self).__name__}ZeroState"):
            sizes = self.state_size
            return pack(sizes, [zeros_for_batch(batch_size, s, dtype) for s in flatten(sizes)])


LayerRNNCell = RNNCell


class BasicRNNCell(RNNCell):
    """``output = new_state = activation([inputs, state] @ kernel + bias)``."""

    base_name = "basic_rnn_cell"

    def __init__(self, num_units, activation=None, reuse=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, reuse=reuse, **kwargs)
        self.num_units, self.activation = int(num_units), _activation(activation)

    state_size = output_size = property(lambda self: self.num_units)

    def build(self, input_shape):
        depth = _shape_depth(input_shape, type(self).__name__)
        self.kernel = self.add_variable("kernel", [depth + self.num_units, self.num_units])
        self.bias = self.add_variable("bias", [self.num_units], initializer=zeros_initializer())

    def call(self, inputs, state):
        out = self.activation(_linear([inputs, state], self.kernel, self.bias))
        return out, out


def _shape_depth(input_shape, what) -> int:
    dims = list(input_shape.as_list() if hasattr(input_shape, "as_list") else input_shape)
    if len(dims) < 2 or dims[-1] is None:
        raise ValueError(f"{what}: the inputs must have shape (batch, depth) with the depth "
                         f"known, got {tuple(dims)}; set the placeholder's last axis")
    return int(dims[-1])


def _linear(parts, kernel, bias=None):
    joined = ops.concat(list(parts), 1)
    out = ops.matmul(joined, kernel)
    return out if bias is None else ops.add(out, bias)


class BasicLSTMCell(RNNCell):
    """TF1's LSTM: gates i, j, f, o of ``[inputs, h] @ kernel + bias``;
    ``c' = sigmoid(f + forget_bias) c + sigmoid(i) activation(j)``,
    ``h' = activation(c') sigmoid(o)``."""

    base_name = "basic_lstm_cell"

    def __init__(self, num_units, forget_bias=1.0, state_is_tuple=True, activation=None,
                 reuse=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, reuse=reuse, **kwargs)
        self.num_units, self.forget_bias = int(num_units), float(forget_bias)
        self.state_is_tuple = bool(state_is_tuple)
        self.tanh = activation is None or activation is ops.tanh or activation == "tanh"
        self.activation = _activation(activation)

    @property
    def state_size(self):
        n = self.num_units
        return LSTMStateTuple(n, n) if self.state_is_tuple else 2 * n

    @property
    def output_size(self):
        return self.num_units

    def build(self, input_shape):
        depth = _shape_depth(input_shape, type(self).__name__)
        n = self.num_units
        self.kernel = self.add_variable("kernel", [depth + n, 4 * n])
        self.bias = self.add_variable("bias", [4 * n], initializer=zeros_initializer())

    def call(self, inputs, state):
        c, h = _lstm_state(state, self.state_is_tuple, self.num_units, self.num_units)
        gates = _linear([inputs, h], self.kernel, self.bias)
        i, j, f, o = ops.split(gates, 4, axis=1)
        f = ops.add(f, self.forget_bias)
        if self.tanh:  # the fused op takes PyTorch's gate order i, f, g, o
            h, c = recurrent.lstm_cell_elementwise(ops.concat([i, f, j, o], 1), c)
        else:
            c = ops.add(ops.multiply(c, ops.sigmoid(f)),
                        ops.multiply(ops.sigmoid(i), self.activation(j)))
            h = ops.multiply(self.activation(c), ops.sigmoid(o))
        return h, _lstm_new_state(c, h, self.state_is_tuple)


def _lstm_state(state, is_tuple, units, out_units):
    if is_tuple:
        c, h = state
        return as_tensor(c), as_tensor(h)
    state = as_tensor(state)
    return state[:, :units], state[:, units:units + out_units]


def _lstm_new_state(c, h, is_tuple):
    return LSTMStateTuple(c, h) if is_tuple else ops.concat([c, h], 1)


class LSTMCell(BasicLSTMCell):
    """TF1's full LSTM: BasicLSTMCell's gates, with peepholes, a cell clip and an output
    projection where asked."""

    base_name = "lstm_cell"

    def __init__(self, num_units, use_peepholes=False, cell_clip=None, initializer=None,
                 num_proj=None, proj_clip=None, num_unit_shards=None, num_proj_shards=None,
                 forget_bias=1.0, state_is_tuple=True, activation=None, reuse=None, name=None,
                 dtype=None, **kwargs):
        if num_unit_shards is not None or num_proj_shards is not None:
            raise NotImplementedError("LSTMCell: num_unit_shards/num_proj_shards (deprecated "
                                      "in TF1) are not in xpnn.compat.v1")
        super().__init__(num_units, forget_bias, state_is_tuple, activation, reuse, name,
                         dtype, **kwargs)
        self.use_peepholes, self.initializer = bool(use_peepholes), initializer
        self.cell_clip, self.proj_clip = cell_clip, proj_clip
        self.num_proj = None if num_proj is None else int(num_proj)

    @property
    def state_size(self):
        n, m = self.num_units, self.output_size
        return LSTMStateTuple(n, m) if self.state_is_tuple else n + m

    @property
    def output_size(self):
        return self.num_units if self.num_proj is None else self.num_proj

    def build(self, input_shape):
        depth = _shape_depth(input_shape, type(self).__name__)
        n, init = self.num_units, self.initializer
        self.kernel = self.add_variable("kernel", [depth + self.output_size, 4 * n],
                                        initializer=init)
        self.bias = self.add_variable("bias", [4 * n], initializer=zeros_initializer())
        if self.use_peepholes:
            self.w_f_diag = self.add_variable("w_f_diag", [n], initializer=init)
            self.w_i_diag = self.add_variable("w_i_diag", [n], initializer=init)
            self.w_o_diag = self.add_variable("w_o_diag", [n], initializer=init)
        if self.num_proj is not None:
            self.proj_kernel = self.add_variable("projection/kernel", [n, self.num_proj],
                                                 initializer=init)

    def call(self, inputs, state):
        if not (self.use_peepholes or self.cell_clip is not None or self.num_proj is not None):
            return super().call(inputs, state)
        c_prev, m_prev = _lstm_state(state, self.state_is_tuple, self.num_units,
                                     self.output_size)
        i, j, f, o = ops.split(_linear([inputs, m_prev], self.kernel, self.bias), 4, axis=1)
        f = ops.add(f, self.forget_bias)
        if self.use_peepholes:
            f = ops.add(f, ops.multiply(self.w_f_diag, c_prev))
            i = ops.add(i, ops.multiply(self.w_i_diag, c_prev))
        c = ops.add(ops.multiply(ops.sigmoid(f), c_prev),
                    ops.multiply(ops.sigmoid(i), self.activation(j)))
        if self.cell_clip is not None:
            c = ops.clip(c, -float(self.cell_clip), float(self.cell_clip))
        if self.use_peepholes:
            o = ops.add(o, ops.multiply(self.w_o_diag, c))
        m = ops.multiply(ops.sigmoid(o), self.activation(c))
        if self.num_proj is not None:
            m = ops.matmul(m, self.proj_kernel)
            if self.proj_clip is not None:
                m = ops.clip(m, -float(self.proj_clip), float(self.proj_clip))
        return m, _lstm_new_state(c, m, self.state_is_tuple)


class GRUCell(RNNCell):
    """TF1's GRU: ``r, u = sigmoid([x, h] @ gates/kernel + gates/bias)``,
    ``h' = u h + (1 - u) activation([x, r h] @ candidate/kernel + candidate/bias)``."""

    base_name = "gru_cell"

    def __init__(self, num_units, activation=None, reuse=None, kernel_initializer=None,
                 bias_initializer=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, reuse=reuse, **kwargs)
        self.num_units, self.activation = int(num_units), _activation(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    state_size = output_size = property(lambda self: self.num_units)

    def build(self, input_shape):
        depth = _shape_depth(input_shape, type(self).__name__)
        n, kernel_init, bias_init = self.num_units, self.kernel_initializer, self.bias_initializer
        self.gate_kernel = self.add_variable("gates/kernel", [depth + n, 2 * n],
                                             initializer=kernel_init)
        self.gate_bias = self.add_variable(
            "gates/bias", [2 * n], initializer=bias_init or constant_initializer(1.0))
        self.candidate_kernel = self.add_variable("candidate/kernel", [depth + n, n],
                                                  initializer=kernel_init)
        self.candidate_bias = self.add_variable(
            "candidate/bias", [n], initializer=bias_init or zeros_initializer())

    def call(self, inputs, state):
        state = as_tensor(state)
        value = ops.sigmoid(_linear([inputs, state], self.gate_kernel, self.gate_bias))
        r, u = ops.split(value, 2, axis=1)
        candidate = self.activation(_linear([inputs, ops.multiply(r, state)],
                                            self.candidate_kernel, self.candidate_bias))
        new_h = ops.add(ops.multiply(u, state), ops.multiply(ops.subtract(1.0, u), candidate))
        return new_h, new_h


class MultiRNNCell(RNNCell):
    """Cells stacked: cell k reads cell k-1's output; the state is the tuple of theirs."""

    base_name = "multi_rnn_cell"

    def __init__(self, cells, state_is_tuple=True):
        super().__init__()
        self.cells = list(cells)
        if not self.cells:
            raise ValueError("Must specify at least one cell for MultiRNNCell.")
        if not state_is_tuple:
            raise NotImplementedError("MultiRNNCell(state_is_tuple=False) is not in "
                                      "xpnn.compat.v1: keep the state a tuple")

    @property
    def state_size(self):
        return tuple(cell.state_size for cell in self.cells)

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def zero_state(self, batch_size, dtype):
        with name_scope("MultiRNNCellZeroState"):
            return tuple(cell.zero_state(batch_size, dtype) for cell in self.cells)

    def build(self, input_shape):
        dims = list(input_shape.as_list())
        for k, cell in enumerate(self.cells):
            with variable_scope(f"cell_{k}"):
                cell.build_once(TensorShape(tuple(dims)), dtype=self.dtype)
            dims[-1] = cell.output_size

    def call(self, inputs, state):
        if not isinstance(state, (tuple, list)) or len(state) != len(self.cells):
            raise ValueError(f"MultiRNNCell: expected a state tuple of {len(self.cells)} "
                             f"cells' states, got {state!r}")
        new_states = []
        for k, cell in enumerate(self.cells):
            with name_scope(f"cell_{k}"):
                inputs, new = cell(inputs, state[k])
            new_states.append(new)
        return inputs, tuple(new_states)


class _Wrapper(RNNCell):
    """A cell around ``cell``: its Variables (none of its own, as TF1's ``weights`` says),
    scope and sizes are the wrapped cell's."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    state_size = property(lambda self: self.cell.state_size)
    output_size = property(lambda self: self.cell.output_size)

    def zero_state(self, batch_size, dtype):
        return self.cell.zero_state(batch_size, dtype)

    def build_once(self, input_shape, scope=None, dtype=None):
        self.cell.build_once(input_shape, scope, dtype)
        self.built = True

    def __call__(self, inputs, state, scope=None):
        return self.call(as_tensor(inputs), state, scope)


class DropoutWrapper(_Wrapper):
    """Dropout on the wrapped cell's inputs, outputs and state (every state tensor but an
    LSTM's c), each kept with its probability (a number or a placeholder)."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent=False, input_size=None, dtype=None, seed=None,
                 dropout_state_filter_visitor=None):
        if variational_recurrent:
            raise NotImplementedError("DropoutWrapper(variational_recurrent=True) is not in "
                                      "xpnn.compat.v1: each step draws its own masks")
        if dropout_state_filter_visitor is not None:
            raise NotImplementedError("DropoutWrapper(dropout_state_filter_visitor=...) is "
                                      "not in xpnn.compat.v1")
        for what, p in (("input", input_keep_prob), ("output", output_keep_prob),
                        ("state", state_keep_prob)):
            if not isinstance(p, Node) and not 0.0 < float(p) <= 1.0:
                raise ValueError(f"Parameter {what}_keep_prob must be between 0 and 1: {p}")
        super().__init__(cell)
        self.keep = (input_keep_prob, output_keep_prob, state_keep_prob)

    @staticmethod
    def _dropout(x, keep):
        """tf.nn.dropout(x, keep_prob=keep)."""
        if not isinstance(keep, Node):
            return x if float(keep) == 1.0 else ops.dropout(x, 1.0 - float(keep))
        return ops.multiply(x, ops.random.DropoutKeepMaskOf(x, keep))

    def call(self, inputs, state, scope=None):
        keep_in, keep_out, keep_state = self.keep
        output, new_state = self.cell(self._dropout(inputs, keep_in), state, scope)
        output = self._dropout(output, keep_out)
        if isinstance(keep_state, Node) or float(keep_state) != 1.0:
            new_state = self._drop_state(new_state, keep_state)
        return output, new_state

    def _drop_state(self, state, keep):
        if isinstance(state, LSTMStateTuple):  # TF1's default filter keeps c as it is
            return LSTMStateTuple(state.c, self._dropout(state.h, keep))
        if isinstance(state, (tuple, list)):
            return type(state)(self._drop_state(s, keep) for s in state)
        return self._dropout(state, keep)


class ResidualWrapper(_Wrapper):
    """The wrapped cell's output plus its inputs."""

    def __init__(self, cell, residual_fn=None):
        super().__init__(cell)
        self.residual_fn = residual_fn or (lambda inputs, output: ops.add(inputs, output))

    def call(self, inputs, state, scope=None):
        output, new_state = self.cell(inputs, state, scope)
        return self.residual_fn(inputs, output), new_state


__all__ = ["BasicLSTMCell", "BasicRNNCell", "DropoutWrapper", "GRUCell", "LSTMCell",
           "LSTMStateTuple", "LayerRNNCell", "MultiRNNCell", "RNNCell", "ResidualWrapper"]
__getattr__ = module_getattr(sys.modules[__name__], "tf.nn.rnn_cell")
