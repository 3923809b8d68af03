"""PyTorch kernels for ops: the portable forward's arithmetic in the same order, called on
torch itself rather than through array-api-compat's wrappers, which cost several times the
op on small tensors (``xp.maximum(x, 0.0)`` makes a tensor of its scalar at every call).
Masks stay boolean (torch multiplies by a bool tensor as by 0 and 1); a constant a kernel
needs (a zero, the -1 of a one-hot gradient) is made once per plan on the device; labels are
range-checked only where the device reads them without a synchronisation (the CPU), as the
portable path does. Inputs outside a kernel's case go to the portable forward, so its errors
stay the op's own. ``tests/devices/torch/test_torch_pass.py`` checks each against the
portable forward.

>>> import xpnn as xn
>>> from xpnn.devices.torch import kernels
>>> kernels.has_kernel(xn.ops.Relu), kernels.has_kernel(xn.ops.Softmax)
(True, False)
"""

from __future__ import annotations

import math

import torch

from ... import ops
from ...passes import KernelTable

FORWARD = KernelTable()  # op class -> make(op, portable, device) -> fn(*values)
fast = FORWARD.fast


def has_kernel(op_class) -> bool:
    return op_class in FORWARD


def kernel(op, portable, device):
    """The callable a torch plan runs for ``op``; ``portable`` is the ``fn(*values)`` fallback."""
    return FORWARD.kernel(op, portable, device)


def swap_in(plan, device, skip=()) -> None:
    """Give each value step (not in ``skip``) its torch kernel."""
    for step in plan.steps:
        if step.kind == "value" and step.out not in skip:
            step.fn = kernel(step.op, step.fn, device)


def _floats(a, b) -> bool:
    return a.dtype == b.dtype and a.is_floating_point()


class Constants:
    """0-d and small tensors made once per (value, shape, dtype) on one device."""

    def __init__(self, device):
        self.device, self.made = device, {}

    def get(self, value, shape, dtype):
        key = (value, shape, dtype)
        tensor = self.made.get(key)
        if tensor is None:
            if len(self.made) >= 16:  # values keep changing: keep only the newest
                self.made.clear()
            tensor = self.made[key] = torch.full(shape, value, dtype=dtype, device=self.device)
        return tensor


# ----------------------------------------------------------------------------- elementwise


@fast(ops.Add, ops.Subtract, ops.Multiply, ops.Divide)
def _binary(op, portable, device):
    fn = {ops.Add: torch.add, ops.Subtract: torch.sub, ops.Multiply: torch.mul,
          ops.Divide: torch.div}[type(op)]

    def forward(a, b):
        return fn(a, b) if _floats(a, b) else portable(a, b)

    return forward


@fast(ops.Relu)
def _relu(op, portable, device):
    # relu is maximum(x, 0) to the value: NaN stays NaN
    return lambda x: torch.relu(x) if x.is_floating_point() else portable(x)


@fast(ops.ReluGrad)
def _relu_grad(op, portable, device):
    def forward(g, y):
        # g * (y > 0), a multiplication (0 * NaN is still NaN), with the comparison written
        # straight into g's dtype: no bool tensor to convert (benchmarks/README.md).
        if not g.is_floating_point():
            return portable(g, y)
        mask = torch.gt(y, 0.0, out=torch.empty(y.shape, dtype=g.dtype, device=y.device))
        return mask.mul_(g) if g.shape == y.shape else torch.mul(g, mask)

    return forward


@fast(ops.Sigmoid)
def _sigmoid(op, portable, device):
    def forward(x):  # the portable formula in torch's own calls (no array-api wrapper)
        if not x.is_floating_point():
            return portable(x)
        e = torch.exp(-torch.abs(x))
        d = 1.0 + e
        return torch.where(x >= 0, 1.0 / d, e / d)

    return forward


@fast(ops.Clip)
def _clip(op, portable, device):
    low, high = op.low, op.high

    def forward(x):
        if not x.is_floating_point() or (low is None and high is None):
            return portable(x)
        if low is not None:  # clamp_min is maximum to the bit, NaN kept
            x = torch.clamp_min(x, low)
        return x if high is None else torch.clamp_max(x, high)

    return forward


@fast(ops.BinaryCrossEntropy)
def _bce(op, portable, device):
    floor = ops.BCE_LOG_FLOOR
    ones = Constants(device.device)

    def forward(p, y):
        if not _floats(p, y) or p.shape != y.shape:
            return portable(p, y)
        one = ones.get(1.0, (), p.dtype)
        log_p = torch.log(p).clamp_min_(floor)
        log_q = torch.log(torch.sub(one, p)).clamp_min_(floor)
        return torch.mul(y, log_p).add_(log_q.mul_(torch.sub(one, y))).neg_()

    return forward


@fast(ops.BinaryCrossEntropyGrad)
def _bce_grad(op, portable, device):
    ones = Constants(device.device)

    def forward(grad, p, y):
        if not (_floats(p, y) and _floats(grad, p)):
            return portable(grad, p, y)
        spread = torch.sub(ones.get(1.0, (), p.dtype), p).mul_(p).clamp_min_(1e-12)
        return torch.mul(grad, torch.sub(p, y)).div_(spread)

    return forward


@fast(ops.SigmoidGrad)
def _sigmoid_grad(op, portable, device):
    ones = Constants(device.device)

    def forward(g, y):
        if not _floats(g, y):
            return portable(g, y)
        return torch.mul(g, torch.sub(ones.get(1.0, (), y.dtype), y).mul_(y))

    return forward


# ----------------------------------------------------------------------------- matmul


@fast(ops.MatMul)
def _matmul(op, portable, device):
    return lambda a, b: torch.matmul(a, b) if _floats(a, b) else portable(a, b)


# The gradient products by the operands' ndim: of a (from g and b), of b (from g and a).
_GRAD_A = {
    (2, 2): lambda g, b: torch.matmul(g, b.mT),
    (2, 1): lambda g, b: torch.outer(g, b),  # W @ x: the gradient of W is outer(g, x)
    (1, 2): lambda g, b: torch.matmul(g, b.mT),  # x @ W: the gradient of x is g @ W^T
}
_GRAD_B = {
    (2, 2): lambda g, a: torch.matmul(a.mT, g),
    # W @ x: the gradient of x is W^T g, as a product of matrices (a matrix-vector one
    # would add in another order)
    (2, 1): lambda g, a: torch.mm(a.mT, g[:, None])[:, 0],
    (1, 2): lambda g, a: torch.outer(a, g),  # x @ W: the gradient of W is outer(x, g)
}


@fast(ops.MatMulGradA, ops.MatMulGradB)
def _matmul_grad(op, portable, device):
    of_a = type(op) is ops.MatMulGradA
    products = _GRAD_A if of_a else _GRAD_B

    def forward(g, a, b):  # the differentiated operand: its description
        other = b if of_a else a
        product = products.get((a.ndim, b.ndim))
        if product is None or not _floats(g, other):
            return portable(g, a, b)
        return product(g, other)

    return forward


# ----------------------------------------------------------------------------- reductions


@fast(ops.SumTo)
def _sum_to(op, portable, device):
    def forward(g, like):
        shape = like.shape
        if g.shape == shape:
            return g
        if g.ndim == len(shape) + 1 and g.shape[1:] == shape and g.is_floating_point():
            return torch.sum(g, 0)  # a bias gradient
        return portable(g, like)

    return forward


@fast(ops.BroadcastBack)
def _broadcast_back(op, portable, device):
    counts = Constants(device.device)

    def forward(grad, like):
        if op.axis is not None or not grad.is_floating_point():
            return portable(grad, like)
        if not op.keepdims:
            grad = torch.reshape(grad, (1,) * like.ndim)
        if op.mean:
            grad = torch.div(grad, counts.get(float(math.prod(like.shape)), (), grad.dtype))
        return torch.broadcast_to(grad, like.shape)

    return forward


# ----------------------------------------------------------------------------- losses


def check_labels(labels, classes: int) -> None:
    """``ops.check_label_values`` with one reduction (CPU tensors only: it reads them)."""
    if labels.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(labels))
    if low < 0 or high >= classes:
        raise ops.label_range_error(low if low < 0 else high, classes)


def _sparse_case(labels, logits) -> bool:
    """Integer labels, one per row of 2-D floating logits: the kernels' case."""
    return (logits.ndim == 2 and logits.is_floating_point() and labels.ndim == 1
            and labels.shape[0] == logits.shape[0] and logits.shape[1] > 0
            and not labels.is_floating_point() and labels.dtype != torch.bool)


def _stable_max(x):
    """``ops._stable_max`` over the last axis: the row max, non-finite maxima made 0."""
    m = torch.amax(x, -1, keepdim=True)
    return torch.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)


def _valid_and_safe(labels, classes):
    """(mask of labels in range, labels with the others made 0): gathers stay in bounds on a
    device whose labels are not checked; those rows are made NaN afterwards."""
    valid = torch.logical_and(labels >= 0, labels < classes)
    return valid, torch.where(valid, labels, 0)


@fast(ops.SparseSoftmaxCrossEntropy)
def _sparse_ce(op, portable, device):
    host_reads = device.reads_without_sync
    nans = Constants(device.device)

    def forward(labels, logits):
        if not _sparse_case(labels, logits):
            return portable(labels, logits)
        k = logits.shape[1]
        if host_reads:
            check_labels(labels, k)
            return _loss(labels, logits)
        valid, safe = _valid_and_safe(labels, k)
        return torch.where(valid, _loss(safe, logits), nans.get(math.nan, (), logits.dtype))

    return forward


def _loss(labels, logits):
    m = _stable_max(logits)
    lse = torch.log(torch.sum(torch.exp(logits - m), -1, keepdim=True)).add_(m)
    picked = torch.gather(logits, 1, labels[:, None].long())
    return lse.sub_(picked)[:, 0]


@fast(ops.SparseSoftmaxCrossEntropyGrad)
def _sparse_ce_grad(op, portable, device):
    host_reads = device.reads_without_sync
    constants = Constants(device.device)

    def forward(grad, labels, logits):
        if not (_sparse_case(labels, logits) and grad.ndim == 1 and _floats(grad, logits)):
            return portable(grad, labels, logits)
        k = logits.shape[1]
        if host_reads:
            check_labels(labels, k)
            valid, safe = None, labels
        else:
            valid, safe = _valid_and_safe(labels, k)
        # exp(log_softmax(logits)) as the portable path computes it, in one buffer
        probs = logits - _stable_max(logits)
        probs.sub_(torch.log(torch.sum(torch.exp(probs), -1, keepdim=True))).exp_()
        # probs - one_hot(labels): p + (-1) is p - 1 to the bit
        probs.scatter_add_(1, safe[:, None].long(),
                           constants.get(-1.0, (probs.shape[0], 1), probs.dtype))
        probs.mul_(grad[:, None])
        if valid is None:
            return probs
        return torch.where(valid[:, None], probs, constants.get(math.nan, (), probs.dtype))

    return forward
