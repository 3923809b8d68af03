"""A matrix product plus a bias, ``x @ W + b``, as one ``torch.addmm(b, x, W)`` (``W @ x + b``
for a vector x: ``torch.addmv``): the bias is the GEMM's accumulator, so no product is
written and read back to add it (PyTorch's own ``Linear`` does the same). The product's
step hands the add a ``PendingProduct``; it is fused only where the add is the product's one
reader (besides reads of its shape) and the product is not fetched. The product's step
still checks its operands, so a mismatch fails there, naming the matmul. Results agree with
the portable plan's to rounding (the GEMM adds the bias into its sums in its own order).

>>> import torch
>>> from xpnn.devices.torch import addmm
>>> pending = addmm.PendingProduct(torch.ones(2, 3), torch.ones(3, 4))
>>> tuple(pending.shape), addmm.materialize(pending)[0, 0].item()
((2, 4), 3.0)
"""

from __future__ import annotations

import torch

from ... import ops
from . import kernels


class PendingProduct:
    """A product ``a @ b`` of a matrix and a matrix or a vector, not computed yet; it has
    the shape and dtype of one (what a plan's shape reads take)."""

    __slots__ = ("a", "b", "shape", "ndim", "dtype")

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.shape = torch.Size(a.shape[:1] + b.shape[1:])
        self.ndim, self.dtype = b.ndim, a.dtype


def materialize(value):
    """The product as a tensor (anything else as it is)."""
    return torch.matmul(value.a, value.b) if type(value) is PendingProduct else value


def fuse(plan, session) -> set:
    """Fuse each MatMul whose only value reader is an Add into that Add; the slots of the
    steps given new functions."""
    readers, held = plan.readers(), plan.held_slots()
    products = {step.out: step for step in plan.steps
                if step.kind == "value" and type(step.op) is ops.MatMul}
    fused = set()
    for step in plan.steps:
        if step.kind != "value" or type(step.op) is not ops.Add:
            continue
        for k, s in enumerate(step.inputs):
            product = products.get(s)
            others = [r for r in readers.get(s, ()) if r is not step]
            if (product is None or s in held or step.inputs.count(s) != 1
                    or any(r.kind != "describe" for r in others)):
                continue
            matmul = kernels.kernel(product.op, product.fn, session.device)
            add = kernels.kernel(step.op, step.fn, session.device)
            product.fn, step.fn = _lazy(matmul), _addmm(add, k)
            fused |= {product.out, step.out}
            break
    return fused


def _lazy(matmul):
    """The product's step: a PendingProduct for floating operands, a matrix and a matrix or
    a vector, that match; else the product itself (or the op's own error)."""

    def forward(a, b):
        if (a.ndim == 2 and b.ndim in (1, 2) and a.dtype == b.dtype and a.is_floating_point()
                and a.shape[1] == b.shape[0]):
            return PendingProduct(a, b)
        return matmul(a, b)

    return forward


def _fits(bias, shape) -> bool:
    """Whether ``bias`` broadcasts to ``shape`` without growing it (nor its rank)."""
    return 1 <= bias.ndim <= len(shape) and all(
        d in (1, full) for d, full in zip(reversed(bias.shape), reversed(shape)))


def _addmm(add, k):
    """The add's step: ``addmm(bias, a, b)`` (``addmv`` for a vector b) when input ``k`` is a
    PendingProduct and the other a bias of its dtype that fits, else the add of the product
    (the op's kernel)."""

    def forward(*inputs):
        product, bias = inputs[k], inputs[1 - k]
        if type(product) is not PendingProduct:
            return add(*inputs)
        if bias.dtype == product.dtype and _fits(bias, product.shape):
            fn = torch.addmm if product.ndim == 2 else torch.addmv
            return fn(bias, product.a, product.b)
        inputs = list(inputs)
        inputs[k] = materialize(product)
        return add(*inputs)

    return forward
