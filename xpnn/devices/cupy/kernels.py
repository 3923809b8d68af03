"""Kernels for single ops: the table of what a CuPy plan runs instead of an op's portable
forward (the softmax cross-entropies, in ``softmax.py``; the elementwise ops are chained in
``chains.py``). A maker gets the op, its portable forward (the fall-back for inputs outside
the kernel's case, so errors stay the op's own), the device and the fuser.

>>> import xpnn as xn
>>> from xpnn.devices.cupy import kernels
>>> kernels.has_kernel(xn.ops.SparseSoftmaxCrossEntropyGrad), kernels.has_kernel(xn.ops.Relu)
(True, False)
"""

from __future__ import annotations

from ...passes import KernelTable

FORWARD = KernelTable()  # op class -> make(op, portable, device, fuser) -> fn(*values)
fast = FORWARD.fast


def has_kernel(op_class) -> bool:
    return op_class in FORWARD


def swap_in(plan, device, fuser, skip=()) -> None:
    """Give each value step (not in ``skip``) with a kernel here that kernel."""
    for step in plan.steps:
        if step.kind == "value" and step.out not in skip:
            step.fn = FORWARD.kernel(step.op, step.fn, device, fuser)
