"""Synchronised batch normalisation (PyTorch's ``SyncBatchNorm``, Horovod's
``SyncBatchNormalization``): while training, the moments are those of every rank's rows
together, so ``size`` ranks with ``b`` rows each normalise as one process with ``size * b``
rows would. Per step, one message forward (every channel's sum, sum of squares and count)
and one backward (their two gradients, and the count's, zero).

    bn = xn.distributed.SyncBatchNorm(64, comm)   # in place of xn.nn.BatchNorm(64)

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.constant([[1.0], [3.0]])
...     mean, variance = xn.distributed.SyncBatchNorm(1, comm=None).moments(x)
...     xn.Session().run([mean, variance], to_numpy=True)
[array([2.], dtype=float32), array([1.], dtype=float32)]
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from .. import ops
from ..devices import context_of
from ..graph import Operation
from ..nn.layers import BatchNorm
from .transport import host_view


class AllSum(Operation):
    """The sum over ``comm``'s ranks of ``x`` (a small array: statistics); one rank (or
    ``comm`` None): ``x``. Its gradient is the sum over the ranks of theirs: every rank's
    loss depends on each rank's ``x``."""

    fresh = True

    def __init__(self, x, comm, name=None):
        self.comm = comm
        super().__init__(x, name=name)

    def infer_shape(self, shape):
        return shape

    def forward(self, xp, x):
        if self.comm is None or self.comm.size == 1:
            return x + 0  # a new array
        send = np.ascontiguousarray(host_view(x))
        received = np.empty_like(send)
        self.comm.allreduce(send, received, f"the allreduce of {self.label}")
        with context_of(x):
            return xp.asarray(received, device=array_api_compat.device(x), copy=True)

    def backward(self, grad):
        return [AllSum(grad, self.comm, name=f"{self.label}/grad")]


class SyncBatchNorm(BatchNorm):
    """:class:`xpnn.nn.BatchNorm` whose training moments are over every rank of ``comm``
    (``xn.distributed.init()``; None: this process alone). Inference, the moving statistics
    and the parameters are BatchNorm's; the moving statistics move alike on every rank."""

    def __init__(self, channels, comm, momentum=0.99, epsilon=1e-3, dtype="float32",
                 name=None):
        super().__init__(channels, momentum, epsilon, dtype, name)
        self.comm = comm

    def moments(self, x):
        """(mean, variance) per channel over every rank's rows, from the summed sums."""
        axes = list(range(len(x.shape) - 1))
        c = self.gamma.shape[0]
        local = ops.concat([ops.reduce_sum(x, axis=axes),
                            ops.reduce_sum(ops.square(x), axis=axes),
                            ops.stop_gradient(ops.reduce_sum(ops.ones_like(x), axis=axes))],
                           axis=0)
        total = AllSum(local, self.comm, name=f"{self.name}/moments")
        count = total[2 * c:]
        mean = ops.divide(total[:c], count)
        # E[x^2] - mean^2 may round below 0 where the variance is tiny
        variance = ops.maximum(ops.subtract(ops.divide(total[c:2 * c], count),
                                            ops.square(mean)), 0.0)
        return mean, variance

    def __repr__(self) -> str:
        return f"SyncBatchNorm({self.gamma.shape[0]})"
