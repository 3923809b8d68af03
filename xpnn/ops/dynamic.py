"""Shapes known at run time: ops whose shape argument holds graph nodes, as TF1 code writes
``tf.reshape(x, [tf.shape(x)[0], -1])``, ``tf.zeros([tf.shape(x)[0], 3])`` or
``tf.range(tf.shape(x)[0])``.

An argument node computed from shapes alone (``shape(x)`` and constants, through any pure
op) is computed on the host from the shapes of the tensors it measures, which every backend
knows before it computes anything, a JAX trace too: the op reads those tensors for their
shape only, and a compiled JAX plan stays compiled. Any other node (a fed value, one computed
from data) is read at run time: where a device cannot read it while it compiles (JAX), the
plan runs op by op.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(shape=(None, 2, 3), name="x")
...     flat = xn.ops.reshape_to(x, [xn.ops.shape.shape(x)[0], -1])
...     rows = xn.ops.range_to(0, xn.ops.shape.shape(x)[0], 1, "int32")
...     out = xn.Session().run([flat, rows], {x: [[[1, 2, 3], [4, 5, 6]]] * 2})
>>> flat.shape, out[0].shape, out[1].tolist()
((None, 6), (2, 6), [0, 1])
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np  # shape values are computed on the host, as NumPy arrays

from ..graph import Constant, Node, Operation
from ..host import to_numpy
from .arithmetic import Identity
from .shape import GetItem, ReshapeLike, Shape, Stack

_HOST = array_api_compat.array_namespace(np.zeros(0))


def _shape_ops(node):
    """The Shape ops ``node`` is computed from, where it reads nothing else (constants
    aside); None where it reads a value."""
    found, seen, stack = [], set(), [node]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if isinstance(n, Shape):
            found.append(n)
        elif isinstance(n, Operation) and not (n.random or n.runs_bodies or n.kind != "op"):
            stack.extend(n.inputs)
        elif not isinstance(n, Constant):
            return None
    return found


def _host_value(node, shapes) -> np.ndarray:
    """``node``'s value on the host, its Shape ops giving ``shapes[op]``."""
    values, stack = {}, [(node, False)]
    while stack:
        n, ready = stack.pop()
        if n in values:
            continue
        if isinstance(n, Shape):
            values[n] = np.asarray(shapes[n], dtype=np.int32)
        elif isinstance(n, Constant):
            values[n] = np.asarray(n.value)
        elif ready:
            values[n] = np.asarray(n.forward(_HOST, *[values[i] for i in n.inputs]))
        else:
            stack.append((n, True))
            stack.extend((i, False) for i in n.inputs if i not in values)
    return values[node]


class Argument:
    """An op's argument that may hold nodes: a number (``kind`` "scalar"), a list of numbers
    and scalar nodes ("list"), or one vector node ("node"). ``inputs``: what the op reads for
    it, ``shape_only[k]`` whether it reads ``inputs[k]`` for its shape only; ``known``: its
    value as far as the static shapes tell (None entries, or None, where they do not)."""

    def __init__(self, given, what, scalar=False):
        self.what = what
        if scalar:
            self.kind, self.entries = "scalar", [given]
        elif isinstance(given, Node):
            self.kind, self.entries = "node", [given]
        elif isinstance(given, (list, tuple)):
            self.kind, self.entries = "list", list(given)
        else:
            self.kind, self.entries = "scalar", [given]
        self.reads, self.inputs, self.shape_only = [], [], []
        for entry in self.entries:
            ops = _shape_ops(entry) if isinstance(entry, Node) else []
            self.reads.append(ops)
            read = [entry] if ops is None else [op.inputs[0] for op in ops]
            self.inputs += read
            self.shape_only += [ops is not None] * len(read)
        self.known = self._known()

    @property
    def fixed(self) -> bool:
        """Whether it holds no node."""
        return not self.inputs and not any(isinstance(e, Node) for e in self.entries)

    def value(self, values):
        """Its value at run time, from the values (or descriptions) of ``inputs``."""
        start, out = 0, []
        for entry, ops in zip(self.entries, self.reads):
            if not isinstance(entry, Node):
                out.append(np.asarray(entry))
                continue
            if ops is None:
                out.append(to_numpy(values[start]))
                start += 1
                continue
            shapes = {op: tuple(values[start + k].shape) for k, op in enumerate(ops)}
            start += len(ops)
            out.append(_host_value(entry, shapes))
        return self._as_python(out)

    def _as_python(self, arrays):
        try:
            if self.kind == "scalar":
                return arrays[0].item()
            if self.kind == "node":
                return tuple(int(v) for v in arrays[0].reshape(-1).tolist())
            return tuple(int(a.item()) for a in arrays)
        except (ValueError, TypeError) as exc:  # a vector given for one entry...
            raise ValueError(f"{self.what}: a {self.kind} argument takes numbers, got values "
                             f"of shapes {[a.shape for a in arrays]}") from exc

    def _known(self):
        if self.kind == "node":
            node = self.entries[0]
            whole = _static_value(node)
            if whole is not None:
                return tuple(int(v) for v in whole.reshape(-1).tolist())
            if isinstance(_unnamed(node), Shape) and _unnamed(node).inputs[0].shape is not None:
                return tuple(_unnamed(node).inputs[0].shape)
            if type(_unnamed(node)) is Stack and all(i.shape == () for i in _unnamed(node).inputs):
                return tuple(_entry_known(i) for i in _unnamed(node).inputs)
            if node.shape is not None and len(node.shape) == 1 and node.shape[0] is not None:
                return (None,) * node.shape[0]
            return None
        known = [_entry_known(e) for e in self.entries]
        return known[0] if self.kind == "scalar" else tuple(known)

    def measured_axes(self, x):
        """For a list: per entry, the axis of ``x`` it measures (``shape(x)[k]``) or None."""
        return [_axis_of(e, x) if isinstance(e, Node) else None for e in self.entries]


def _entry_known(entry):
    """A number or scalar node's value where the static shapes tell it; else None."""
    value = _static_value(entry) if isinstance(entry, Node) else np.asarray(entry)
    if value is None:
        value = _measured(entry)
    return None if value is None else np.asarray(value).item()


def _static_value(node):
    """``node``'s value where the static shapes tell it; else None."""
    ops = _shape_ops(node)
    if ops is None or any(op.inputs[0].shape is None or None in op.inputs[0].shape
                          for op in ops):
        return None
    return _host_value(node, {op: op.inputs[0].shape for op in ops})


def _unnamed(node):
    """``node`` without the Identity ops around it (TF1's names for a tensor)."""
    while type(node) is Identity:
        node = node.inputs[0]
    return node


def _measures(node):
    """(y, k) where ``node`` is ``shape(y)[k]``, else None."""
    node = _unnamed(node)
    if type(node) is GetItem and isinstance(_unnamed(node.inputs[0]), Shape) and isinstance(
            node.key, tuple) and len(node.key) == 1 and isinstance(node.key[0], int):
        return _unnamed(node.inputs[0]).inputs[0], node.key[0]
    return None


def _axis_of(node, x=None):
    """k where ``node`` is ``shape(y)[k]`` (of y = ``x`` where given), else None."""
    found = _measures(node)
    return found[1] if found is not None and (x is None or found[0] is x) else None


def _measured(node):
    """``shape(y)[k]``'s static size (None where unknown or not such a node)."""
    found = _measures(node) if isinstance(node, Node) else None
    shape, k = (None, None) if found is None else (found[0].shape, found[1])
    if shape is None or not -len(shape) <= k < len(shape):
        return None
    return shape[k]


class Dynamic(Operation):
    """An op with ``data`` inputs of its own, then its arguments' inputs."""

    fresh = True

    def __init__(self, data, arguments, name=None):
        self.arguments, self.n_data = list(arguments), len(data)
        inputs, only = list(data), []
        for argument in self.arguments:
            only += [len(inputs) + k for k, s in enumerate(argument.shape_only) if s]
            inputs += argument.inputs
        self.shape_only = tuple(only)
        self._cache = {}
        super().__init__(*inputs, name=name)

    def argument_values(self, values) -> list:
        """Each argument's value, from the values of the inputs after the data (kept per
        input shapes where every argument is computed from shapes alone)."""
        key = None
        if all(all(a.shape_only) for a in self.arguments):
            key = tuple(tuple(v.shape) for v in values)
            if key in self._cache:
                return self._cache[key]
        out, start = [], 0
        for argument in self.arguments:
            n = len(argument.inputs)
            out.append(argument.value(values[start:start + n]))
            start += n
        if key is not None:
            if len(self._cache) >= 2:  # a last, smaller batch is a second shape
                self._cache.clear()
            self._cache[key] = out
        return out

    def backward(self, grad):
        return [None] * len(self.inputs)


class ReshapeTo(Dynamic):
    """x reshaped to a shape known at run time (one entry may be -1)."""

    fresh = False

    def __init__(self, x, shape, name=None):
        super().__init__([x], [Argument(shape, "reshape")], name=name)

    def forward(self, xp, x, *values):
        (shape,) = self.argument_values(values)
        size, rest = math.prod(x.shape), -math.prod(shape)
        if shape.count(-1) > 1 or (-1 in shape and (rest <= 0 or size % rest)) or (
                -1 not in shape and size != -rest):
            raise ValueError(f"{self.label}: cannot reshape {tuple(x.shape)} into {shape}")
        return xp.reshape(x, shape)

    def infer_shape(self, shape, *rest):
        (argument,) = self.arguments
        known = argument.known
        if known is None or argument.kind != "list":
            return known if known is None or -1 not in known else tuple(
                None if d == -1 else d for d in known)
        if -1 not in known:
            return known
        axes = argument.measured_axes(self.inputs[0])
        left = None if shape is None else [d for k, d in enumerate(shape)
                                           if k not in axes and k - len(shape) not in axes]
        given = [d for d, a in zip(known, axes) if a is None and d != -1]
        if left is None or None in left or None in given or 0 in given:
            return tuple(None if d == -1 else d for d in known)
        return tuple(math.prod(left) // math.prod(given) if d == -1 else d for d in known)

    def infer_dtype(self, dtype, *rest):
        return dtype

    def backward(self, grad):
        return [ReshapeLike(grad, self.inputs[0])] + [None] * (len(self.inputs) - 1)


class FillTo(Dynamic):
    """``value`` (a scalar) in every entry of a shape known at run time; its gradient is
    the sum of grad's, as TF1's Fill."""

    def __init__(self, value, shape, name=None):
        super().__init__([value], [Argument(shape, "fill")], name=name)

    def forward(self, xp, value, *values):
        (shape,) = self.argument_values(values)
        if any(d < 0 for d in shape):
            raise ValueError(f"{self.label}: a shape of negative sizes, {shape}")
        zeros = xp.zeros(shape, dtype=value.dtype, device=array_api_compat.device(value))
        return zeros + value

    def infer_shape(self, value, *rest):
        return self.arguments[0].known

    def infer_dtype(self, dtype, *rest):
        return dtype

    def backward(self, grad):
        from .reductions import reduce_sum

        return [reduce_sum(grad)] + [None] * (len(self.inputs) - 1)


class RangeTo(Dynamic):
    """start, start + delta, ... below limit (above it for a negative delta), any of the
    three known at run time; ``like``, a scalar of the result's dtype, places it."""

    def __init__(self, like, start, limit, delta, name=None):
        arguments = [Argument(v, "range", scalar=True) for v in (start, limit, delta)]
        super().__init__([like], arguments, name=name)

    def forward(self, xp, like, *values):
        start, limit, delta = self.argument_values(values)
        if delta == 0:
            raise ValueError(f"{self.label}: delta must not be 0")
        return xp.arange(start, limit, delta, dtype=like.dtype,
                         device=array_api_compat.device(like))

    def infer_shape(self, like, *rest):
        start, limit, delta = (a.known for a in self.arguments)
        if None in (start, limit, delta) or delta == 0:
            return (None,)
        return (max(0, math.ceil((limit - start) / delta)),)

    def infer_dtype(self, dtype, *rest):
        return dtype


class TileTo(Dynamic):
    """x repeated ``multiples[i]`` times along axis i, the multiples known at run time."""

    def __init__(self, x, multiples, name=None):
        super().__init__([x], [Argument(multiples, "tile")], name=name)

    def forward(self, xp, x, *values):
        (multiples,) = self.argument_values(values)
        if len(multiples) != x.ndim or any(m < 0 for m in multiples):
            raise ValueError(f"{self.label}: multiples {multiples} for shape {tuple(x.shape)}:"
                             " give one non-negative multiple per axis")
        return xp.tile(x, multiples)

    def infer_shape(self, shape, *rest):
        known = self.arguments[0].known
        if shape is None or known is None:
            return None if shape is None else (None,) * len(shape)
        return tuple(None if d is None or m is None else d * m for d, m in zip(shape, known))

    def infer_dtype(self, dtype, *rest):
        return dtype

    def backward(self, grad):
        given = self.arguments[0].entries
        given = given[0] if self.arguments[0].kind == "node" else given
        return [TileToGrad(grad, self.inputs[0], given)] + [None] * (len(self.inputs) - 1)


class TileToGrad(Operation):
    """The sum of grad's tiles (the multiples told by grad's and x's shapes; x: shape
    only)."""

    shape_only = (1,)
    fresh = True

    def __init__(self, grad, x, multiples):
        self.multiples = multiples  # as given to the TileTo: its own gradient tiles again
        super().__init__(grad, x)

    def forward(self, xp, grad, x):
        if 0 in x.shape or 0 in grad.shape:
            return xp.zeros(x.shape, dtype=grad.dtype, device=array_api_compat.device(grad))
        multiples = [g // d for g, d in zip(grad.shape, x.shape)]
        split = tuple(v for pair in zip(multiples, x.shape) for v in pair)
        return xp.sum(xp.reshape(grad, split), axis=tuple(range(0, 2 * x.ndim, 2)))

    def infer_shape(self, grad, x):
        return x

    def infer_dtype(self, grad, x):
        return grad

    def backward(self, grad):
        return [TileTo(grad, self.multiples), None]


def reshape_to(x, shape, name=None):
    """x reshaped to ``shape``: a list of ints and scalar nodes, or a vector node."""
    return ReshapeTo(x, shape, name=name)


def fill_to(shape, value, name=None):
    """A tensor of ``shape`` (ints and scalar nodes, or a vector node) filled with the
    scalar node ``value``."""
    return FillTo(value, shape, name=name)


def range_to(start, limit, delta, dtype, name=None):
    """``arange(start, limit, delta)`` in ``dtype``: each a number or a scalar node."""
    graph = next((v.graph for v in (start, limit, delta) if isinstance(v, Node)), None)
    return RangeTo(Constant(0, dtype=dtype, graph=graph), start, limit, delta, name=name)


def tile_to(x, multiples, name=None):
    """x tiled by ``multiples`` (ints and scalar nodes, or a vector node)."""
    return TileTo(x, multiples, name=name)


def holds_nodes(given) -> bool:
    """Whether a shape-like argument holds a graph node."""
    if isinstance(given, Node):
        return True
    return isinstance(given, (list, tuple)) and any(isinstance(e, Node) for e in given)


__all__ = ["Argument", "Dynamic", "ReshapeTo", "FillTo", "RangeTo", "TileTo", "TileToGrad",
           "reshape_to", "fill_to", "range_to", "tile_to", "holds_nodes"]
