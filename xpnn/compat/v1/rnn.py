"""TF1's recurrent loops: ``tf.nn.dynamic_rnn``, ``tf.nn.static_rnn`` and
``tf.nn.bidirectional_dynamic_rnn``, running a ``tf.nn.rnn_cell`` cell over time.

``dynamic_rnn`` is one ``xn.control_flow.scan_loop`` over the time axis (a ``lax.scan`` on
JAX), its gradient the scan's; ``static_rnn`` calls the cell once per input. As TF1's:
Variables in scope ``rnn`` (``bidirectional_rnn/fw`` and ``.../bw``), inputs batch-major
unless ``time_major``, the zero state where no ``initial_state`` is given (then ``dtype``
is needed), and with ``sequence_length`` an example's outputs past its length are zeros
and its final state is the state at its last step.

>>> import numpy as np
>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.placeholder(tf.float32, [None, 5, 3])
>>> cell = tf.nn.rnn_cell.GRUCell(4)
>>> outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=[5, 2], dtype=tf.float32)
>>> with tf.Session() as sess:
...     sess.run(tf.global_variables_initializer())
...     out, last = sess.run([outputs, state], {x: np.ones((2, 5, 3))})
>>> out.shape, bool((out[1, 2:] == 0).all()), bool((last[1] == out[1, 1]).all())
((2, 5, 4), True, True)
"""

from __future__ import annotations

from ... import ops
from ...control_flow import scan_loop
from ...graph import TensorShape
from .array_ops import shape as _shape
from .rnn_cell import flatten, pack
from .tensors import as_tensor
from .variables import variable_scope


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None,
                parallel_iterations=None, swap_memory=False, time_major=False, scope=None):
    """``cell`` over the time axis of ``inputs`` ((batch, time, depth), or (time, batch,
    depth) where ``time_major``): (outputs of the same layout, final state)."""
    with variable_scope(scope or "rnn"):
        return _dynamic(cell, inputs, sequence_length, initial_state, dtype, time_major,
                        reverse=False)


def _dynamic(cell, inputs, sequence_length, initial_state, dtype, time_major, reverse):
    x = _sequence_input(inputs, "dynamic_rnn")
    if not time_major:
        x = ops.transpose(x, [1, 0, 2])
    state = _initial_state(cell, initial_state, dtype, x, batch_axis=1)
    lengths = _lengths(sequence_length)
    cell.build_once(TensorShape((None, x.shape[2])), dtype=x.dtype)  # Variables outside the loop
    flat = [as_tensor(s) for s in flatten(state)]
    # the step's index rides in the carry: the time length may be known only at run time
    first = ops.subtract(_shape(x)[0], 1) if reverse else as_tensor(0)
    structure = {}

    def step(carry, x_t):
        t, old = carry[0], carry[1:]
        output, new = cell(x_t, pack(state, old))
        structure["state"] = new
        new = [as_tensor(n) for n in flatten(new)]
        if lengths is not None:
            output, new = _copy_through(ops.less(t, lengths), output, new, old)
        return [ops.add(t, -1 if reverse else 1), *new], output

    final, outputs = scan_loop(step, [first, *flat], x, reverse=reverse, name="rnn")
    if not time_major:
        outputs = ops.transpose(outputs, [1, 0, 2])
    return outputs, pack(structure["state"], final[1:])


def _sequence_input(inputs, what):
    x = as_tensor(inputs)
    if x.shape is None or len(x.shape) != 3 or x.shape[2] is None:
        raise ValueError(f"tf.nn.{what}: inputs must have shape (batch, time, depth) (or "
                         f"(time, batch, depth) with time_major=True) with the depth known, "
                         f"got {x.shape}")
    return x


def _initial_state(cell, initial_state, dtype, x, batch_axis):
    if initial_state is not None:
        return initial_state
    if dtype is None:
        raise ValueError("If there is no initial_state, you must give a dtype.")
    batch = x.shape[batch_axis]
    return cell.zero_state(batch if batch is not None else _shape(x)[batch_axis], dtype)


def _lengths(sequence_length):
    if sequence_length is None:
        return None
    lengths = as_tensor(sequence_length)
    if lengths.shape is not None and len(lengths.shape) != 1:
        raise ValueError(f"sequence_length must be a vector of length batch_size, but saw "
                         f"shape: {lengths.shape}")
    return ops.cast(lengths, "int32")


def _copy_through(valid, output, new, old):
    """Where a step is past an example's length: a zero output, the state unchanged."""
    keep = valid[:, None]
    output = ops.where(keep, output, ops.ZerosLike(output))
    return output, [ops.where(keep, n, o) for n, o in zip(new, old)]


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None,
               scope=None):
    """``cell`` over ``inputs``, a list of (batch, depth) tensors, one per step: (the list
    of outputs, the final state)."""
    if not isinstance(inputs, (list, tuple)):
        raise TypeError("inputs must be a sequence")
    if not inputs:
        raise ValueError("inputs must not be empty")
    with variable_scope(scope or "rnn"):
        inputs = [as_tensor(x) for x in inputs]
        state = _initial_state(cell, initial_state, dtype, inputs[0], batch_axis=0)
        lengths = _lengths(sequence_length)
        outputs = []
        for t, x in enumerate(inputs):
            output, new = cell(x, state)
            if lengths is not None:
                old = [as_tensor(s) for s in flatten(state)]
                valid = ops.less(as_tensor(t), lengths)
                output, flat = _copy_through(valid, output, [as_tensor(n) for n in flatten(new)],
                                             old)
                new = pack(new, flat)
            outputs.append(output)
            state = new
        return outputs, state


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None,
                              initial_state_fw=None, initial_state_bw=None, dtype=None,
                              parallel_iterations=None, swap_memory=False, time_major=False,
                              scope=None):
    """``cell_fw`` over ``inputs`` and ``cell_bw`` over them reversed (each example's first
    ``sequence_length`` steps reversed, where given): ((outputs_fw, outputs_bw),
    (state_fw, state_bw)), both outputs in the inputs' time order."""
    with variable_scope(scope or "bidirectional_rnn"):
        with variable_scope("fw") as fw_scope:
            out_fw, state_fw = dynamic_rnn(cell_fw, inputs, sequence_length, initial_state_fw,
                                           dtype, time_major=time_major, scope=fw_scope)
        # TF1 reverses the sequences, runs forward and reverses back: the same as running
        # from each example's last step to its first, which a reversed scan does
        with variable_scope("bw"):
            out_bw, state_bw = _dynamic(cell_bw, inputs, sequence_length, initial_state_bw,
                                        dtype, time_major, reverse=True)
    return (out_fw, out_bw), (state_fw, state_bw)


__all__ = ["bidirectional_dynamic_rnn", "dynamic_rnn", "static_rnn"]
