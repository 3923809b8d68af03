"""The op -> ONNX table: ``CONVERTERS[op type](builder, op)`` returns the op's ONNX tensor
name (a list of names for an op of several outputs) or ``Known(value)`` where the value
turns out to need no input (a dropout mask in inference, a product by zeros)."""

from __future__ import annotations

import math

import numpy as np

from ..dtypes import is_floating
from ..ops.shape import _expand

CONVERTERS: dict = {}
INT_MAX, INT_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


class Known:
    """A converter's answer where the op's value is known after all."""

    def __init__(self, array):
        self.array = np.asarray(array)


def unsupported(node, what) -> NotImplementedError:
    return NotImplementedError(
        f"xn.onnx.export: node {node.label!r} ({what}, op type {type(node).__name__}) has no "
        f"ONNX form in xpnn's exporter; supported op types: {', '.join(sorted(CONVERTERS))}")


def converts(*types):
    def register(fn):
        for name in types:
            CONVERTERS[name] = fn
        return fn
    return register


def convert(b, op):
    fn = CONVERTERS.get(type(op).__name__)
    if fn is None:
        what = "an op"
        if op.runs_bodies:
            what = ("a control-flow op (cond, while_loop, scan); xn.nn's recurrent layers "
                    "export with loop='unroll', their default, TF1 programs with "
                    "tf.nn.static_rnn")
        elif op.random:
            what = "a random op, drawn anew every run"
        raise unsupported(op, what)
    return fn(b, op)


def _inputs(b, op, dtype=None) -> list:
    names = [b.tensor(i) for i in op.inputs]
    return names if dtype is None else [b.cast(n, dtype) for n in names]


def _emit(b, op, onnx_type, inputs=None, dtype=None, **attributes):
    """The op as one ONNX node of ``onnx_type`` on its inputs cast to its dtype."""
    dtype = dtype or b.dtype_of(op)
    inputs = _inputs(b, op, dtype) if inputs is None else inputs
    return b.emit(onnx_type, inputs, dtype, base=op.label, **attributes)


def _scalar(b, value, dtype) -> str:
    return b.initializer(np.asarray(value, dtype=dtype), "scalar")


# --------------------------------------------------------------------------- elementwise

BINARY = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Divide": "Div",
          "Maximum": "Max", "Minimum": "Min", "Pow": "Pow"}


@converts(*BINARY)
def _binary(b, op):
    simpler = _simplified(b, op)
    if simpler is not None:
        return simpler
    return _emit(b, op, BINARY[type(op).__name__])


def _simplified(b, op):
    """x * 1, x + 0, x - 0 as x and x * 0 as zeros, where the constant is one number
    (a training flag's inference value folded in: BatchNorm's blend of the batch's and
    the moving statistics, dropout's mask of ones)."""
    kind, (x, y), dtype = type(op).__name__, op.inputs, b.dtype_of(op)
    pairs = [(b.value(y), x)] + ([(b.value(x), y)] if kind in ("Add", "Multiply") else [])
    for known, other in pairs:
        if known is None or known.size != 1 or kind not in ("Add", "Subtract", "Multiply"):
            continue
        number = known.reshape(()).item()
        if kind == "Multiply" and number == 0 and op.shape and None not in op.shape:
            return Known(np.zeros(op.shape, dtype))
        neutral = 1 if kind == "Multiply" else 0
        if number == neutral and other.shape is not None and op.shape == other.shape and (
                known.ndim <= len(other.shape) and b.dtype_of(other) == dtype):
            return b.tensor(other)
    return None


COMPARISONS = {"IsEqual": "Equal", "IsGreater": "Greater", "IsGreaterEqual": "GreaterOrEqual",
               "IsLess": "Less", "IsLessEqual": "LessOrEqual", "LogicalAnd": "And",
               "LogicalOr": "Or", "LogicalXor": "Xor", "IsNotEqual": "Equal",
               "Equal": "Equal", "GreaterEqual": "GreaterOrEqual"}


@converts(*COMPARISONS)
def _comparison(b, op):
    kind = type(op).__name__
    common = _common(b.dtype_of(i) for i in op.inputs)
    out = b.emit(COMPARISONS[kind], _inputs(b, op, common), "bool", base=op.label)
    if kind == "IsNotEqual":
        out = b.emit("Not", [out], "bool", base=op.label)
    return b.cast(out, b.dtype_of(op))  # xn.equal and GreaterEqual give numbers


def _common(dtypes) -> str:
    """The dtype xpnn computes mixed inputs in: the floating one, else NumPy's promotion."""
    dtypes = list(dtypes)
    floats = [d for d in dtypes if is_floating(d)]
    return np.result_type(*(floats or dtypes)).name


UNARY = {"Negative": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Abs": "Abs",
         "Sign": "Sign", "Floor": "Floor", "Ceil": "Ceil", "Round": "Round", "Relu": "Relu",
         "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softsign": "Softsign", "Softplus": "Softplus",
         "Erf": "Erf", "Sin": "Sin", "Cos": "Cos", "Tan": "Tan", "Asin": "Asin",
         "Acos": "Acos", "Atan": "Atan", "Sinh": "Sinh", "Cosh": "Cosh", "Asinh": "Asinh",
         "Acosh": "Acosh", "Atanh": "Atanh", "LogicalNot": "Not", "IsNan": "IsNaN",
         "IsInf": "IsInf"}


@converts(*UNARY)
def _unary(b, op):
    dtype = b.dtype_of(op.inputs[0]) if type(op).__name__ in ("IsNan", "IsInf") else None
    return _emit(b, op, UNARY[type(op).__name__], _inputs(b, op, dtype), b.dtype_of(op))


@converts("Identity", "StopGradient", "CheckNumerics")
def _identity(b, op):  # CheckNumerics: ONNX has no run-time assertion to carry it
    return b.tensor(op.inputs[0])


@converts("Cast")
def _cast(b, op):
    return b.cast(b.tensor(op.inputs[0]), b.dtype_of(op))


@converts("Elu", "Selu", "LeakyRelu")
def _parametric(b, op):
    from ..ops.activations import SELU_ALPHA, SELU_SCALE

    kind = type(op).__name__
    attributes = {"Elu": {"alpha": 1.0}, "Selu": {"alpha": SELU_ALPHA, "gamma": SELU_SCALE},
                  "LeakyRelu": {"alpha": getattr(op, "alpha", 0.2)}}[kind]
    return _emit(b, op, kind, **attributes)


@converts("Relu6", "Clip")
def _clip(b, op):
    dtype = b.dtype_of(op)
    low, high = (0.0, 6.0) if type(op).__name__ == "Relu6" else (op.low, op.high)
    out = _inputs(b, op, dtype)[0]
    if low is not None:
        out = b.emit("Max", [out, _scalar(b, low, dtype)], dtype, base=op.label)
    if high is not None:
        out = b.emit("Min", [out, _scalar(b, high, dtype)], dtype, base=op.label)
    return out if (low, high) != (None, None) else b.emit("Identity", [out], dtype)


@converts("Rsqrt", "Square", "IsFinite", "Expm1", "Log1p")
def _composed(b, op):
    kind, dtype = type(op).__name__, b.dtype_of(op)
    x = b.tensor(op.inputs[0])
    if kind == "IsFinite":
        x = b.cast(x, b.dtype_of(op.inputs[0]))
        bad = b.emit("Or", [b.emit("IsNaN", [x], "bool"), b.emit("IsInf", [x], "bool")], "bool")
        return b.emit("Not", [bad], "bool", base=op.label)
    x = b.cast(x, dtype)
    if kind == "Square":
        return b.emit("Mul", [x, x], dtype, base=op.label)
    if kind == "Rsqrt":
        return b.emit("Reciprocal", [b.emit("Sqrt", [x], dtype)], dtype, base=op.label)
    one = _scalar(b, 1.0, dtype)
    if kind == "Expm1":
        return b.emit("Sub", [b.emit("Exp", [x], dtype), one], dtype, base=op.label)
    return b.emit("Log", [b.emit("Add", [x, one], dtype)], dtype, base=op.label)


@converts("Where")
def _where(b, op):
    condition, x, y = op.inputs
    dtype, flag = b.dtype_of(op), b.value(condition)
    if flag is not None and flag.size == 1:  # a training flag's choice: take that side
        chosen = x if flag.reshape(()).item() else y
        if chosen.shape == op.shape and b.dtype_of(chosen) == dtype:
            known = b.value(chosen)
            return Known(known) if known is not None else b.tensor(chosen)
    names = [b.cast(b.tensor(condition), "bool")] + [b.cast(b.tensor(v), dtype) for v in (x, y)]
    return b.emit("Where", names, dtype, base=op.label)


# --------------------------------------------------------------------------- softmax, reductions


@converts("Softmax", "LogSoftmax")
def _softmax(b, op):
    return _emit(b, op, type(op).__name__, [b.cast(b.tensor(op.inputs[0]), b.dtype_of(op))],
                 axis=op.axis)


@converts("MaskedSoftmax")
def _masked_softmax(b, op):
    """xpnn's masked softmax: masked entries exactly 0, a row with nothing kept all 0."""
    dtype, axis = b.dtype_of(op), op.axis
    x = b.cast(b.tensor(op.inputs[0]), dtype)
    keep = b.tensor(op.inputs[1])
    if b.dtypes[keep] != "bool":
        keep = b.emit("Not", [b.emit("Equal", [keep, _scalar(b, 0, b.dtypes[keep])], "bool")],
                      "bool")
    zero = _scalar(b, 0.0, dtype)
    filled = b.emit("Where", [keep, x, _scalar(b, -np.inf, dtype)], dtype)
    top = _reduce_node(b, "ReduceMax", filled, (axis,), True, dtype)
    top = b.emit("Where", [b.emit("IsInf", [top], "bool"), zero, top], dtype)
    e = b.emit("Where", [keep, b.emit("Exp", [b.emit("Sub", [filled, top], dtype)], dtype),
                         zero], dtype)
    total = _reduce_node(b, "ReduceSum", e, (axis,), True, dtype)
    some = b.emit("Greater", [total, zero], "bool")
    safe = b.emit("Where", [some, total, _scalar(b, 1.0, dtype)], dtype)
    return b.emit("Div", [e, safe], dtype, base=op.label)


REDUCTIONS = {"ReduceSum": "ReduceSum", "ReduceMean": "ReduceMean", "ReduceMax": "ReduceMax",
              "ReduceMin": "ReduceMin", "ReduceProd": "ReduceProd",
              "LogSumExp": "ReduceLogSumExp"}


@converts(*REDUCTIONS)
def _reduction(b, op):
    dtype = b.dtype_of(op)
    x = b.cast(b.tensor(op.inputs[0]), dtype)
    if op.axis == ():
        return x
    return _reduce_node(b, REDUCTIONS[type(op).__name__], x, op.axis, op.keepdims, dtype,
                        op.label)


def _reduce_node(b, onnx_type, x, axis, keepdims, dtype, base="reduce"):
    """A reduction over ``axis`` (None: all axes): axes as an input from opset 18 (and
    for ReduceSum from 13), as an attribute before."""
    inputs, attributes = [x], {"keepdims": int(bool(keepdims))}
    if axis is not None:
        if onnx_type == "ReduceSum" or b.opset >= 18:
            inputs.append(b.ints(list(axis), "axes"))
        else:
            attributes["axes"] = list(axis)
    return b.emit(onnx_type, inputs, dtype, base=base, **attributes)


@converts("ArgMax", "ArgMin")
def _arg(b, op):
    x = b.tensor(op.inputs[0])
    return b.emit(type(op).__name__, [x], "int64", base=op.label, axis=op.axis[0], keepdims=0)


@converts("MatMul")
def _matmul(b, op):
    return _emit(b, op, "MatMul")


@converts("Einsum")
def _einsum(b, op):
    return _emit(b, op, "Einsum", equation=op.equation)


# --------------------------------------------------------------------------- shapes


@converts("Reshape")
def _reshape(b, op):
    shape = list(op.new_shape)
    x = b.tensor(op.inputs[0])
    attributes = {"allowzero": 1} if 0 in shape else {}
    return b.emit("Reshape", [x, b.ints(shape, "shape")], b.dtypes[x], base=op.label,
                  **attributes)


@converts("Transpose")
def _transpose(b, op):
    x = b.tensor(op.inputs[0])
    attributes = {} if op.axes is None else {"perm": list(op.axes)}
    return b.emit("Transpose", [x], b.dtypes[x], base=op.label, **attributes)


@converts("ExpandDims")
def _expand_dims(b, op):
    x = b.tensor(op.inputs[0])
    return b.emit("Unsqueeze", [x, b.ints([op.axis], "axes")], b.dtypes[x], base=op.label)


@converts("Squeeze")
def _squeeze(b, op):
    shape = _rank_known(op)
    x = b.tensor(op.inputs[0])
    axes = list(op._axes(shape))
    if not axes:
        return x
    return b.emit("Squeeze", [x, b.ints(axes, "axes")], b.dtypes[x], base=op.label)


def _rank_known(op):
    shape = op.inputs[0].shape
    if shape is None:
        raise unsupported(op, f"its input {op.inputs[0].label} has an unknown rank")
    return shape


@converts("Flatten")
def _flatten(b, op):
    x = b.tensor(op.inputs[0])
    return b.emit("Flatten", [x], b.dtypes[x], base=op.label, axis=1)


@converts("GetItem")
def _get_item(b, op):
    return _slice(b, op, b.tensor(op.inputs[0]), op.key)


@converts("Pieces")
def _pieces(b, op):
    x = b.tensor(op.inputs[0])
    return [_slice(b, op, x, key) for key in op.keys]


@converts("Output")
def _output(b, op):
    return b.tensor(op.inputs[0])[op.output_index]


def _slice(b, op, x, key):
    """``x[key]`` (ints, slices, None): Slice, then Squeeze the int axes, then Unsqueeze
    the None ones."""
    key = _expand(key, len(_rank_known(op)))
    starts, ends, axes, steps, dropped, added = [], [], [], [], [], []
    axis = position = 0
    for k in key:
        if k is None:
            added.append(position)
            position += 1
            continue
        if isinstance(k, int):
            starts, ends = starts + [k], ends + [k + 1 if k != -1 else INT_MAX]
            axes, steps, dropped = axes + [axis], steps + [1], dropped + [axis]
        elif k != slice(None):
            step = k.step or 1
            first = k.start if k.start is not None else (0 if step > 0 else INT_MAX)
            last = k.stop if k.stop is not None else (INT_MAX if step > 0 else INT_MIN)
            starts, ends, axes, steps = starts + [first], ends + [last], axes + [axis], \
                steps + [step]
        position += not isinstance(k, int)
        axis += 1
    dtype, out = b.dtypes[x], x
    if axes:
        out = b.emit("Slice", [out, b.ints(starts, "starts"), b.ints(ends, "ends"),
                               b.ints(axes, "axes"), b.ints(steps, "steps")], dtype,
                     base=op.label)
    if dropped:
        out = b.emit("Squeeze", [out, b.ints(dropped, "axes")], dtype, base=op.label)
    if added:
        out = b.emit("Unsqueeze", [out, b.ints(added, "axes")], dtype, base=op.label)
    return out if out != x else b.emit("Identity", [x], dtype, base=op.label)


@converts("Concat", "Stack")
def _join(b, op):
    dtype = b.dtype_of(op)
    names = _inputs(b, op, dtype)
    if type(op).__name__ == "Stack":
        axes = b.ints([op.axis], "axes")
        names = [b.emit("Unsqueeze", [n, axes], dtype, base=op.label) for n in names]
    return b.emit("Concat", names, dtype, base=op.label, axis=op.axis)


@converts("Tile")
def _tile(b, op):
    x = b.tensor(op.inputs[0])
    return b.emit("Tile", [x, b.ints(op.multiples, "repeats")], b.dtypes[x], base=op.label)


@converts("Pad")
def _pad(b, op):
    x = b.tensor(op.inputs[0])
    pads = [p[0] for p in op.paddings] + [p[1] for p in op.paddings]
    value = _scalar(b, op.value, b.dtypes[x])
    return b.emit("Pad", [x, b.ints(pads, "pads"), value], b.dtypes[x], base=op.label)


@converts("Shape")
def _shape(b, op):
    shape = b.emit("Shape", [b.tensor(op.inputs[0])], "int64", base=op.label)
    return b.cast(shape, "int32")


@converts("ZerosLike", "OnesLike")
def _filled_like(b, op):
    from onnx import numpy_helper

    dtype = b.dtype_of(op)
    shape = b.emit("Shape", [b.tensor(op.inputs[0])], "int64", base=op.label)
    fill = np.asarray([0 if type(op).__name__ == "ZerosLike" else 1], dtype=dtype)
    return b.emit("ConstantOfShape", [shape], dtype, base=op.label,
                  value=numpy_helper.from_array(fill))


@converts("SequenceMask")
def _sequence_mask(b, op):
    if op.maxlen is None:
        raise unsupported(op, "sequence_mask without maxlen (its shape depends on values)")
    lengths = b.tensor(op.inputs[0])
    steps = b.initializer(np.arange(op.maxlen, dtype=b.dtypes[lengths]), "steps")
    column = b.emit("Unsqueeze", [lengths, b.ints([-1], "axes")], b.dtypes[lengths])
    return b.cast(b.emit("Less", [steps, column], "bool", base=op.label), b.dtype_of(op))


@converts("Gather")
def _gather(b, op):
    if op.dropping:
        raise unsupported(op, "a gather that drops out-of-range indices (a gradient)")
    params, indices = _inputs(b, op)
    return b.emit("Gather", [params, indices], b.dtypes[params], base=op.label, axis=op.axis)


# ------------------------------------------------------------------- shapes known at run time


def _argument(b, argument) -> str:
    """A Dynamic op's argument (a shape, multiples) as an int64 vector, or a scalar."""
    if argument.kind == "node":
        return b.cast(b.tensor(argument.entries[0]), "int64")
    known = [b.value(e) if hasattr(e, "graph") else np.asarray(e) for e in argument.entries]
    if argument.kind == "scalar":
        entry = argument.entries[0]
        return b.ints(known[0]) if known[0] is not None else b.cast(b.tensor(entry), "int64")
    if all(k is not None for k in known):
        return b.ints([int(np.asarray(k).reshape(())) for k in known], "shape")
    one = b.ints([1], "shape")
    parts = [b.ints([int(np.asarray(k).reshape(()))]) if k is not None else
             b.emit("Reshape", [b.cast(b.tensor(e), "int64"), one], "int64")
             for e, k in zip(argument.entries, known)]
    return b.emit("Concat", parts, "int64", axis=0)


@converts("ReshapeTo", "TileTo")
def _reshape_or_tile_to(b, op):
    x = b.tensor(op.inputs[0])
    kind = "Reshape" if type(op).__name__ == "ReshapeTo" else "Tile"
    return b.emit(kind, [x, _argument(b, op.arguments[0])], b.dtypes[x], base=op.label)


@converts("FillTo")
def _fill_to(b, op):
    value = b.tensor(op.inputs[0])
    return b.emit("Expand", [value, _argument(b, op.arguments[0])], b.dtypes[value],
                  base=op.label)


@converts("RangeTo")
def _range_to(b, op):
    dtype = b.dtype_of(op)
    start, limit, delta = (b.cast(_argument(b, a), dtype) for a in op.arguments)
    return b.emit("Range", [start, limit, delta], dtype, base=op.label)


# --------------------------------------------------------------------------- images


@converts("BiasAdd")
def _bias_add(b, op):
    dtype = b.dtype_of(op)
    value, bias = _inputs(b, op, dtype)
    if op.data_format == "NCHW":
        rank = len(_rank_known(op))
        bias = b.emit("Reshape", [bias, b.ints([-1] + [1] * (rank - 2), "shape")], dtype)
    return b.emit("Add", [value, bias], dtype, base=op.label)


def _to_nchw(b, op, x, dtype):
    if op.data_format == "NCHW":
        return x
    return b.emit("Transpose", [x], dtype, base=op.label, perm=[0, 3, 1, 2])


def _from_nchw(b, op, y, dtype):
    if op.data_format == "NCHW":
        return b.emit("Identity", [y], dtype, base=op.label)
    return b.emit("Transpose", [y], dtype, base=op.label, perm=[0, 2, 3, 1])


def _window(op, kernel) -> dict:
    """ONNX's strides, dilations and pads of the op's window: TF1's SAME padding, the odd
    one at the bottom/right, computed for the input's static height and width (ONNX's
    SAME_UPPER where they are unknown)."""
    window = op.window
    shape = op._nhwc_shape(_rank_known(op))
    attributes = {"strides": list(window.strides), "kernel_shape": list(kernel)}
    if window.padding == "SAME" and None in shape[1:3]:
        return {**attributes, "auto_pad": "SAME_UPPER"}
    (top, bottom), (left, right) = [window.pads(axis, shape[1 + axis], kernel[axis])
                                    for axis in (0, 1)]
    return {**attributes, "pads": [top, left, bottom, right]}


@converts("Conv2D")
def _conv(b, op):
    dtype = b.dtype_of(op)
    x, w = op.inputs
    kernel = w.shape[:2] if w.shape is not None else None
    if kernel is None or None in kernel:
        raise unsupported(op, "a convolution whose filters' shape is not known")
    filters = b.value(w)
    if filters is not None:  # HWIO -> ONNX's OIHW, once, at export
        filters = b.initializer(np.transpose(filters, (3, 2, 0, 1)).astype(dtype), w.label)
    else:
        filters = b.emit("Transpose", [b.cast(b.tensor(w), dtype)], dtype, perm=[3, 2, 0, 1])
    image = _to_nchw(b, op, b.cast(b.tensor(x), dtype), dtype)
    y = b.emit("Conv", [image, filters], dtype, base=op.label,
               dilations=list(op.window.dilations), **_window(op, kernel))
    return _from_nchw(b, op, y, dtype)


@converts("MaxPool", "AvgPool")
def _pool(b, op):
    dtype = b.dtype_of(op)
    image = _to_nchw(b, op, b.cast(b.tensor(op.inputs[0]), dtype), dtype)
    attributes = _window(op, op.ksize)
    if type(op).__name__ == "AvgPool":
        attributes["count_include_pad"] = 0  # SAME's padding is not counted, as TF1's
    y = b.emit("MaxPool" if type(op).__name__ == "MaxPool" else "AveragePool", [image],
               dtype, base=op.label, **attributes)
    return _from_nchw(b, op, y, dtype)


# --------------------------------------------------------------------------- recurrent cell


@converts("LSTMCellElementwise")
def _lstm_cell(b, op):
    """(h', c', activated gates, tanh(c')) from the gates i, f, g, o and c."""
    dtype = b.dtype_of(op.outputs[0])
    gates, c = _inputs(b, op, dtype)
    units = op.outputs[1].shape[-1] if op.outputs[1].shape else None
    if units is None:
        raise unsupported(op, "an LSTM cell whose number of units is not known")
    parts = b.emit("Split", [gates, b.ints([units] * 4, "split")], dtype, base=op.label,
                   outputs=4, axis=-1)
    i, f, o = (b.emit("Sigmoid", [parts[k]], dtype, base=op.label) for k in (0, 1, 3))
    g = b.emit("Tanh", [parts[2]], dtype, base=op.label)
    c_new = b.emit("Add", [b.emit("Mul", [f, c], dtype), b.emit("Mul", [i, g], dtype)], dtype,
                   base=op.label)
    tc = b.emit("Tanh", [c_new], dtype, base=op.label)
    h = b.emit("Mul", [o, tc], dtype, base=op.label)
    return [h, c_new, b.emit("Concat", [i, f, g, o], dtype, axis=-1), tc]


# --------------------------------------------------------------------------- dropout masks

MASKS = ("DropoutMask", "DropoutMaskOf", "DropoutKeepMaskOf")


@converts(*MASKS)
def _dropout_mask(b, op):
    """Dropout in inference: a mask of ones (x * 1 is then x itself)."""
    setting = b.value(op.inputs[1])
    if type(op).__name__ == "DropoutMask":
        off = setting is not None and setting.size == 1 and not setting.reshape(()).item()
    else:
        off = setting is not None and math.isclose(float(op.rate_of(setting)), 0.0)
    if not off:
        raise unsupported(op, "dropout while training (a new random mask every run); export "
                          "in inference: training False, or a rate fed 0 in feed_dict")
    return Known(np.ones((), b.dtype_of(op)))


# --------------------------------------------------------------------------- translations

@converts("TranslationOffsets")
def _translation_offsets(b, op):
    """RandomTranslation in inference: no shift."""
    setting = b.value(op.inputs[1])
    if setting is None or setting.size != 1 or setting.reshape(()).item():
        raise unsupported(op, "random translation while training (new random shifts every "
                          "run); export in inference: training False")
    return Known(np.zeros((), np.int32))


@converts("Translate")
def _translate(b, op):
    """A translation by known zero offsets (RandomTranslation in inference): x itself."""
    offsets = b.value(op.inputs[1])
    if offsets is None:
        b.tensor(op.inputs[1])  # raises the offsets' own error: drawn while training
    if offsets is None or offsets.any():
        raise unsupported(op, "a translation by offsets other than zeros; RandomTranslation "
                          "exports in inference only")
    return b.tensor(op.inputs[0])


SUPPORTED = frozenset(CONVERTERS)
