"""Kernels that a compiled plan traces in place of an op's portable forward: where another
formulation of the op's work compiles to much less under XLA than the portable array-API
calls (``conv``: a max-pool gradient over tiling windows by reshapes). A kernel keeps the
op's result (to float rounding at most); inputs outside its case go to the portable
forward, so errors stay the op's own. ``tests/devices/jax/test_jax_kernels.py`` checks each against
the portable forward.

>>> import xpnn as xn
>>> from xpnn.devices.jax import conv, kernels  # conv registers its kernels
>>> kernels.has_kernel(xn.conv.MaxPoolGrad), kernels.has_kernel(xn.conv.Conv2D)
(True, False)
"""

from __future__ import annotations

from ...passes import KernelTable

FORWARD = KernelTable()  # op class -> make(op, portable) -> fn(*values)
fast = FORWARD.fast


def has_kernel(op_class) -> bool:
    return op_class in FORWARD


def kernel(op, portable):
    """The callable a compiled plan traces for ``op``; ``portable``: the fallback."""
    return FORWARD.kernel(op, portable)


def swap_in(plan) -> None:
    """Give each value step its kernel, where there is one."""
    for step in plan.steps:
        if step.kind == "value":
            step.fn = kernel(step.op, step.fn)
