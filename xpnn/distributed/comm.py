"""The communicator: ``init()`` wraps an mpi4py communicator (``MPI.COMM_WORLD`` by default)
as one object that knows its rank, its size and its rank on this node, and broadcasts a
Session's Variables. mpi4py is imported here, on first use, never when xpnn is imported.

Run under ``mpiexec -n 2 python script.py``; alone (``python script.py``) it is one rank of
one, and everything below works unchanged::

    import xpnn as xn
    comm = xn.distributed.init()
    print(comm.rank, comm.size, comm.local_rank)   # pick device=f"cuda:{comm.local_rank}"

Its allreduces (the gradients' and the metrics') wait ``timeout`` seconds at most for the
other ranks (600 by default): a rank that stops calling its step would otherwise leave the
others waiting for ever. Past it, the waiting rank raises :class:`RankTimeoutError` naming
itself and what it waited for (uncaught, it aborts every rank).

>>> timeout_seconds(None), timeout_seconds(2), timeout_seconds(0)
(600.0, 2.0, None)
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from ..host import to_numpy
from .agreement import agree, describe_variables

INSTALL = "pip install 'xpnn[mpi]' (mpi4py and the mpich wheel, which brings mpiexec)"
TIMEOUT = 600.0  # seconds an allreduce waits for the other ranks: init(timeout=...)
ABORT_PAUSE = 0.2  # seconds between printing an uncaught exception and aborting every rank
SPIN = 0.1  # seconds of polling before each poll sleeps a millisecond (leaves the core)
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def mpi():
    """mpi4py's MPI module, or an ImportError saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"xpnn.distributed needs mpi4py, which is not installed ({exc}): "
                          f"{INSTALL}") from exc
    return MPI


def init(comm=None, abort_on_error=True, timeout=None) -> Communicator:
    """A :class:`Communicator` over ``comm`` (an mpi4py communicator; ``MPI.COMM_WORLD`` when
    None). With ``abort_on_error`` and more than one rank, an exception that nothing catches
    prints its traceback, naming the rank, then aborts every rank (``MPI_Abort``), as
    ChainerMN's global except hook: the others would otherwise wait in the next allreduce
    for ever. ``timeout``: the seconds an allreduce waits for the other ranks before this
    rank raises :class:`RankTimeoutError`, naming itself and the allreduce (uncaught, with
    ``abort_on_error``, it aborts every rank) (None: ``$XPNN_ALLREDUCE_TIMEOUT``,
    else 600; 0 waits for ever, in a plain blocking ``MPI_Allreduce``).

    >>> import xpnn as xn  # doctest: +SKIP
    >>> comm = xn.distributed.init()  # doctest: +SKIP
    >>> comm.rank, comm.size  # doctest: +SKIP
    (0, 1)
    """
    communicator = Communicator(mpi().COMM_WORLD if comm is None else comm, timeout)
    if abort_on_error and communicator.size > 1:
        install_except_hook(communicator.rank, communicator.size)
    return communicator


class RankTimeoutError(TimeoutError):
    """A rank waited longer than the timeout for the others in a collective operation: the
    message names the waiting rank and the operation. The pending message cannot complete,
    so the job cannot go on: uncaught (``init(abort_on_error=True)``) it aborts every rank."""


class Communicator:
    """An mpi4py communicator (``.mpi``) with ``rank``, ``size``, ``local_rank`` and
    ``local_size`` (the ranks sharing this node's memory, ``MPI.COMM_TYPE_SHARED``: use
    ``cuda:<local_rank>``), ``barrier()``, ``sum()``, ``allreduce()`` (within ``timeout``
    seconds, see :func:`init`) and ``broadcast_variables()``."""

    def __init__(self, comm, timeout=None):
        self.timeout = timeout_seconds(timeout)
        MPI = mpi()
        self.mpi = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.transports = {}  # (kind, device) -> the Transport an Allreduce chose (transport.py)
        self.steps = 0  # the gradient allreduces run so far (Allreduce nodes count them)

    def __repr__(self) -> str:
        return (f"<Communicator rank {self.rank} of {self.size} (local rank {self.local_rank} "
                f"of {self.local_size})>")

    def barrier(self) -> None:
        """Wait until every rank has called it."""
        self.mpi.Barrier()

    def sum(self, values) -> list[float]:
        """The sums over every rank of a few numbers (float64, one message): metrics."""
        buffer = np.asarray(values, dtype=np.float64).copy()
        self.allreduce(mpi().IN_PLACE, buffer, "the sum of an epoch's metrics")
        return buffer.tolist()

    def allreduce(self, send, receive, what="an allreduce") -> None:
        """Sum ``send`` over the ranks into ``receive`` (host buffers, or device buffers for
        a CUDA-aware MPI; ``send`` may be ``MPI.IN_PLACE``). With a timeout it is a
        nonblocking allreduce, polled: past the deadline this rank raises
        :class:`RankTimeoutError` naming itself and ``what`` it waited in."""
        if self.timeout is None:
            self.mpi.Allreduce(send, receive, op=mpi().SUM)
            return
        self.wait(self.start(send, receive), what)

    def start(self, send, receive):
        """A nonblocking allreduce (sum) of ``send`` into ``receive``: its request, for
        :meth:`wait`. ``receive`` must not be read before."""
        return self.mpi.Iallreduce(send, receive, op=mpi().SUM)

    def wait(self, request, what="an allreduce") -> None:
        """Wait for ``request`` to complete, at most ``timeout`` seconds (see :func:`init`),
        polling it; past the deadline raise :class:`RankTimeoutError`."""
        if self.timeout is None:
            request.Wait()
            return
        started = time.monotonic()
        while not request.Test():
            waited = time.monotonic() - started
            if waited > self.timeout:
                raise RankTimeoutError(
                    f"xpnn.distributed: rank {self.rank} of {self.size} waited "
                    f"{self.timeout:g} s in {what} without every rank joining it: a rank "
                    "stopped calling its step (it hangs, died, or left its loop early). The "
                    "bound is init(timeout=...) or $XPNN_ALLREDUCE_TIMEOUT (0: wait for ever)")
            if waited < SPIN:  # let a process with work (the other rank on a shared core)
                _yield()  # run first, as MPICH's blocking waits do
            else:  # a long wait: poll once a millisecond
                time.sleep(0.001)

    def broadcast_variables(self, session, root=0) -> None:
        """Give every rank's ``session`` rank ``root``'s values of all the graph's Variables
        (weights and optimizer slots), as TF1 Horovod's ``broadcast_global_variables``: one
        message per dtype. The ranks' Variables are compared first; where they differ (names,
        shapes, dtypes, count) every rank raises :class:`GraphMismatchError` naming them."""
        if not 0 <= root < self.size:
            raise ValueError(f"broadcast_variables: root must be a rank in [0, {self.size}), "
                             f"got {root}")
        variables = list(session.graph.variables)
        hosts = [np.asarray(to_numpy(session.get_value(v))) for v in variables]
        agree(self, "broadcast_variables", describe_variables(variables, hosts))
        for dtype in dict.fromkeys(h.dtype for h in hosts):
            members = [i for i, h in enumerate(hosts) if h.dtype == dtype]
            buffer = np.concatenate([hosts[i].reshape(-1) for i in members])
            self.mpi.Bcast(buffer, root=root)
            if self.rank == root:
                continue
            start = 0
            for i in members:
                stop = start + hosts[i].size
                session.set_value(variables[i], buffer[start:stop].reshape(hosts[i].shape))
                start = stop


def timeout_seconds(timeout=None) -> float | None:
    """The allreduce timeout in seconds (None: none): ``timeout``, else
    ``$XPNN_ALLREDUCE_TIMEOUT``, else ``TIMEOUT``; 0 (or infinity) means none."""
    where = "init(timeout=...)"
    if timeout is None:
        text = os.environ.get("XPNN_ALLREDUCE_TIMEOUT", "").strip()
        if not text:
            return TIMEOUT
        where, timeout = f"XPNN_ALLREDUCE_TIMEOUT={text!r}", text
    try:
        seconds = math.nan if isinstance(timeout, bool) else float(timeout)
    except (TypeError, ValueError):
        seconds = math.nan
    if not seconds >= 0:
        raise ValueError(f"{where}: the allreduce timeout is a number of seconds >= 0 (0 waits "
                         f"for ever), got {timeout!r}")
    return None if seconds in (0, math.inf) else seconds


_installed = False


def install_except_hook(rank, size) -> None:
    """Make an uncaught exception print its traceback under a line naming ``rank``, then
    abort every rank (once per process; the previous hook prints the traceback)."""
    global _installed
    if _installed:
        return
    previous = sys.excepthook

    def abort_all(kind, value, traceback):
        try:
            sys.stderr.write(f"\nxpnn.distributed: uncaught {kind.__name__} on rank {rank} of "
                             f"{size}; aborting every rank (MPI_Abort)\n")
            previous(kind, value, traceback)
            sys.stdout.flush()
            sys.stderr.flush()
            # mpiexec forwards a rank's output through its own process, which the abort
            # kills: on a loaded machine the traceback's last lines were lost without a pause.
            time.sleep(ABORT_PAUSE)
        finally:
            mpi().COMM_WORLD.Abort(1)

    sys.excepthook = abort_all
    _installed = True
