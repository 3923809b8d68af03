"""Data-parallel training over MPI, as ChainerMN and Horovod do it for Chainer and
TensorFlow 1: one process per device, each with its own Session and its part of every
batch; the gradients averaged over the ranks by one allreduce per step (a graph node),
before the wrapped optimizer's update. Needs the ``mpi`` extra (``pip install
'xpnn[mpi]'``: mpi4py and the mpich wheel, which brings ``mpiexec``); importing this
module does not import mpi4py.

    import xpnn as xn
    comm = xn.distributed.init()                        # rank, size, local_rank
    model = xn.nn.NNClassifier([784, 512, 256, 10], device="cpu")
    model.fit(X, y, batch_size=64, optimizer="momentum", learning_rate=0.05, comm=comm)

    # or on a graph of your own:
    opt = xn.distributed.DistributedOptimizer(xn.train.MomentumOptimizer(0.05), comm)
    step = opt.minimize(loss)
    sess = xn.Session(); comm.broadcast_variables(sess)  # every rank starts from rank 0's
    for Xb, yb in xn.distributed.batches(X, y, 64, comm, seed=epoch):
        sess.run(step, {x: Xb, t: yb})

Run it with ``mpiexec -n 2 python script.py``.

For real clusters: ``SyncBatchNorm`` (BatchNorm over every rank's rows);
``DistributedOptimizer(..., bucket_bytes=)`` (the allreduce overlapped with the backward
pass), ``compression="fp16"``, ``joinable=True`` with ``join`` (ranks with uneven data);
``init(timeout=)`` (a rank that stops leaves the others a ``RankTimeoutError``);
``shard_dataset`` (each rank reads only its rows of a memmapped data set).

>>> import xpnn as xn
>>> sorted(n for n in dir(xn.distributed) if not n.startswith("_"))[:4]
['AllSum', 'Allreduce', 'Communicator', 'DistributedOptimizer']
"""

from .agreement import GraphMismatchError
from .allreduce import Allreduce, Unpack, allreduces, average_gradients
from .comm import Communicator, RankTimeoutError, init
from .join import join
from .optimizer import DistributedOptimizer
from .sharding import batches, shard, shard_dataset
from .sync_batch_norm import AllSum, SyncBatchNorm

__all__ = ["AllSum", "Allreduce", "Communicator", "DistributedOptimizer", "GraphMismatchError",
           "RankTimeoutError", "SyncBatchNorm", "Unpack", "allreduces", "average_gradients",
           "batches", "init", "join", "shard", "shard_dataset"]
