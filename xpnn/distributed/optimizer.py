"""``DistributedOptimizer``: any ``xn.train`` optimizer, with the gradients it applies
averaged over the ranks first (Horovod's shape). Its step is the wrapped optimizer's own
update node, reading averages that one Allreduce node computes in one message per step.

>>> import xpnn as xn
>>> w = xn.Variable([1.0], name="w")
>>> opt = xn.distributed.DistributedOptimizer(xn.train.AdamOptimizer(0.1), comm=None)
>>> step = opt.minimize(xn.reduce_sum(w * w))
>>> type(step.optimizer).__name__, [n.label for n in step.inputs[:1]]
('AdamOptimizer', ['w/averaged_gradient'])
"""

from __future__ import annotations

from ..optimizers import Optimizer
from .allreduce import average_gradients, buckets_of, check_compression


class DistributedOptimizer(Optimizer):
    """Wraps ``optimizer``: ``compute_gradients`` gives this rank's gradients,
    ``apply_gradients`` averages them over ``comm``'s ranks (one fused allreduce per step,
    see ``Allreduce``) and applies the averages with ``optimizer``'s rule; ``minimize`` is
    the two. Unlike Horovod's, which averages in ``compute_gradients``, the average is taken
    where gradients are applied, so gradients from anywhere (placeholders too) are averaged
    exactly once; the wrapped optimizer's ``clipnorm``, ``clipvalue``, ``global_clipnorm``
    and ``accumulate`` act on the averages.

    ``learning_rate`` is the wrapped optimizer's (a schedule may change it between runs).
    With ``check_finite`` a step whose averaged gradients hold NaN or infinity fails on
    every rank alike, writing nothing (``fit`` turns it on).

    ``bucket_bytes``: overlap the allreduce with the backward pass, in buckets of about
    that many bytes started as their gradients are ready (None: one message after the
    backward pass). ``compression="fp16"``: floating gradients travel as float16 (half the
    bytes; the average is then that of the float16-rounded gradients), as Horovod's
    ``Compression.fp16``. ``joinable``: ranks may run different numbers of steps, each
    calling :func:`xpnn.distributed.join` when it has no more (Horovod's ``join``): the
    average is then over the ranks still stepping (one more float in the message)."""

    def __init__(self, optimizer, comm, check_finite=False, compression=None,
                 bucket_bytes=None, joinable=False):
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, DistributedOptimizer):
            raise TypeError(f"DistributedOptimizer wraps an xn.train optimizer (e.g. "
                            f"xn.train.MomentumOptimizer(0.05)), got {optimizer!r}")
        self.optimizer, self.comm, self.check_finite = optimizer, comm, check_finite
        self.compression = check_compression(compression)
        if bucket_bytes is not None:
            buckets_of([], bucket_bytes)  # checks it
        if joinable and bucket_bytes is not None:
            raise ValueError("DistributedOptimizer: joinable=True works with one message per "
                             "step: leave bucket_bytes None")
        self.bucket_bytes, self.joinable = bucket_bytes, joinable

    @property
    def learning_rate(self) -> float:
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate = value

    def compute_gradients(self, loss, var_list=None):
        """This rank's gradients, [(gradient node, Variable)]: not averaged yet."""
        return self.optimizer.compute_gradients(loss, var_list)

    def apply_gradients(self, grads_and_vars, name=None):
        """The wrapped optimizer's update node, applying the averages of the gradients."""
        averaged = average_gradients(grads_and_vars, self.comm, self.check_finite,
                                     self.compression, self.bucket_bytes, self.joinable)
        return self.optimizer.apply_gradients(averaged, name=name)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({type(self.optimizer).__name__}, {self.comm!r})"
