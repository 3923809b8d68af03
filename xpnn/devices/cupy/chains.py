"""Chains of elementwise steps as one kernel: a step whose result only the next elementwise
step reads hands it a ``Pending`` (its formula and operands) instead of an array, and the
last step of the chain runs the formulas composed as one kernel. So a bias add and its ReLU
are one kernel, and the tanh gradient ``g * (1 - y*y)`` (three ops) is one. Softmax and
log-softmax join a chain with their row reductions done (``softmax.prepare_rows``).

Which steps defer is decided once per plan: a result that is fetched, read by an update or
by anything but one elementwise step (and reads of its shape) is made as an array. Which
defer at a run depends on its operands: float32 or float64 arrays of one dtype whose shapes
the op accepts (its ``infer_shape``); anything else runs the portable forward, where the
op's own errors come from. A lone op that is one launch on the portable path anyway (an
add, a ReLU) keeps it. Each kernel computes what the portable ops do, in their order.

>>> import numpy as np
>>> from xpnn.devices.cupy import chains, formulas, reference
>>> fuser = reference.ReferenceFuser(np)
>>> x = np.array([[-1.0, 2.0]]); b = np.array([0.5, -3.0])
>>> pending = chains.Pending(formulas.add, (x, b), (1, 2), x.dtype)
>>> chains.launch(fuser, formulas.relu, (pending,)).tolist(), fuser.launches
([[0.0, 0.0]], ['xpnn_add_relu'])
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ... import ops
from ...ops import conv
from . import formulas, softmax

MAX_OPS = 16  # formulas in one kernel at most


@dataclass(frozen=True)
class Spec:
    formula: Callable
    alone: bool = False  # worth a kernel by itself: the portable op is several launches
    rows: Callable | None = None  # the row reduction of a softmax (its prepare's formula)


SPECS = {
    ops.Add: Spec(formulas.add), ops.Subtract: Spec(formulas.subtract),
    ops.Multiply: Spec(formulas.multiply), ops.Divide: Spec(formulas.divide),
    ops.Negative: Spec(formulas.negative), ops.Square: Spec(formulas.square),
    ops.Exp: Spec(formulas.exp), ops.Log: Spec(formulas.log), ops.Sqrt: Spec(formulas.sqrt),
    ops.Tanh: Spec(formulas.tanh), ops.Relu: Spec(formulas.relu),
    ops.ReluGrad: Spec(formulas.relu_grad, alone=True),
    ops.SigmoidGrad: Spec(formulas.sigmoid_grad, alone=True),
    ops.Softmax: Spec(formulas.softmax, alone=True, rows=formulas.shifted_exp),
    ops.LogSoftmax: Spec(formulas.log_softmax, alone=True, rows=formulas.stable_shifted_exp),
    conv.BiasAdd: Spec(formulas.add),  # NHWC only (spec_of)
}


def spec_of(op) -> Spec | None:
    if type(op) is conv.BiasAdd and op.data_format != "NHWC":
        return None
    return SPECS.get(type(op))


class Pending:
    """An elementwise step's result, not computed yet, with the shape and dtype it will have
    (all that a shape-only reader takes)."""

    __slots__ = ("formula", "operands", "shape", "ndim", "dtype")

    def __init__(self, formula, operands, shape, dtype):
        self.formula, self.operands, self.dtype = formula, operands, dtype
        self.shape, self.ndim = tuple(shape), len(shape)


class Composed:
    """Formulas nested as one: ``structure`` is (formula, (child, ...)), a child a structure
    or the index of an operand (a leaf)."""

    def __init__(self, structure, n_leaves):
        self.structure, self.params = structure, [f"x{k}" for k in range(n_leaves)]
        self.__name__ = "_".join(_names(structure))[:48]

    def __call__(self, xp, *leaves):
        return _evaluate(xp, self.structure, leaves)

    def __eq__(self, other):
        return type(other) is Composed and other.structure == self.structure

    def __hash__(self):
        return hash(self.structure)


def _names(structure):
    formula, children = structure
    for child in children:
        if not isinstance(child, int):
            yield from _names(child)
    yield formula.__name__


def _evaluate(xp, structure, leaves):
    formula, children = structure
    return formula(xp, *[leaves[c] if isinstance(c, int) else _evaluate(xp, c, leaves)
                         for c in children])


@functools.lru_cache(maxsize=512)
def _composed(structure, n_leaves):
    return Composed(structure, n_leaves)


def _flatten(value, leaves):
    if type(value) is not Pending:
        leaves.append(value)
        return len(leaves) - 1
    return value.formula, tuple(_flatten(o, leaves) for o in value.operands)


def launch(fuser, formula, operands):
    """``formula`` of ``operands`` (arrays, or Pendings composed into the same kernel)."""
    leaves = []
    structure = (formula, tuple(_flatten(o, leaves) for o in operands))
    if structure[1] == tuple(range(len(leaves))):  # one formula: its own names in the source
        return fuser.elementwise(formula, leaves)
    return fuser.elementwise(_composed(structure, len(leaves)), leaves)


def materialize(value, fuser):
    """A Pending's value as an array (anything else as it is)."""
    return launch(fuser, value.formula, value.operands) if type(value) is Pending else value


# --------------------------------------------------------------------------- the plan


def _shape(op, inputs):
    """The shape of ``op``'s result when the kernels take ``inputs`` (float32 or float64
    arrays or Pendings of one dtype whose shapes ``op`` accepts), else None."""
    dtype = inputs[0].dtype
    if not softmax.floating(inputs[0]) or any(i.dtype != dtype for i in inputs):
        return None
    try:
        return op.infer_shape(*[tuple(i.shape) for i in inputs])
    except ValueError:  # the portable forward raises the op's own error
        return None


def _step_fn(step, spec, device, fuser, deferred):
    """The function of a chained step: a Pending (``deferred``) or the chain's kernel."""
    op, portable = step.op, step.fn
    prepare = (softmax.prepare_rows(op, device, fuser, spec.rows) if spec.rows is not None
               else None)

    def forward(*inputs):
        shape = _shape(op, inputs)
        operands = inputs if shape is None or prepare is None else prepare(*inputs)
        if shape is None or operands is None:
            return portable(*[materialize(i, fuser) for i in inputs])
        if deferred:
            return Pending(spec.formula, operands, shape, inputs[0].dtype)
        return launch(fuser, spec.formula, operands)

    return forward


def _defers(step, readers, specs, held, size) -> bool:
    """Whether ``step``'s result may be handed on as a Pending: its one reader besides
    shape reads is an elementwise step (not a softmax, whose reductions want an array)
    that reads it once, and nothing else holds it."""
    s = step.out
    if s in held or size >= MAX_OPS:
        return False
    values = [r for r in readers.get(s, ()) if r.kind == "value"]
    if len(values) != 1 or any(r.kind != "describe" for r in readers[s] if r.kind != "value"):
        return False
    spec = specs.get(values[0].out)
    return spec is not None and spec.rows is None and values[0].inputs.count(s) == 1


def fuse(plan, device, fuser, defer=True) -> set:
    """Give the plan's elementwise steps their chain functions (without ``defer``, each a
    kernel of its own: ``check_numerics`` reads every result); the slots given one."""
    readers, held = plan.readers(), plan.held_slots()
    specs = {step.out: spec_of(step.op) for step in plan.steps if step.kind == "value"}
    specs = {s: spec for s, spec in specs.items() if spec is not None}
    sizes, deferred, given = {}, set(), set()
    for step in plan.steps:
        spec = specs.get(step.out) if step.kind == "value" else None
        if spec is None:
            continue
        sizes[step.out] = 1 + sum(sizes[s] for s in set(step.inputs) if s in deferred)
        if defer and _defers(step, readers, specs, held, sizes[step.out]):
            deferred.add(step.out)
        elif sizes[step.out] == 1 and not spec.alone:
            continue  # one portable launch as it is
        step.fn = _step_fn(step, spec, device, fuser, step.out in deferred)
        given.add(step.out)
    return given
