"""What ``tests/distributed/test_distributed.py`` runs under ``mpiexec -n 2``: ``python
distributed_worker.py CASE OUTDIR``. Each case writes what the test compares (rank r's
arrays in ``OUTDIR/<case>_rank<r>.npz``, notes in ``.json``) or prints what it checks.
Importing it runs nothing and does not import mpi4py.

>>> sorted(CASES)  # doctest: +NORMALIZE_WHITESPACE
['caught', 'cnn', 'cupy', 'fault', 'fit', 'graph', 'join', 'left', 'mismatch', 'overlap',
 'stall', 'syncbn']
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import xpnn as xn

OPTIMIZERS = {"sgd": 0.2, "momentum": 0.05, "adam": 0.01}
BACKENDS = {"numpy": "cpu", "array_api_strict": "device1"}
PER_RANK_BATCH, EPOCHS = 8, 3


def data(n=101, features=6, classes=3):
    """Blobs whose last global batch of 16 splits unevenly over two ranks (5 rows: 3 + 2)."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, classes, n)
    X = (rng.standard_normal((n, features)) + y[:, None]).astype(np.float32)
    return X, y


def weights(model):
    return [xn.to_numpy(model.session.get_value(v)) for v in model.params]


def fit_case(comm, out):
    """Every optimizer on every backend: initial weights differ by rank (seed = rank); fit
    broadcasts rank 0's, trains, and each rank saves what it ended with."""
    X, y = data()
    arrays, notes = {}, {}
    for backend, device in BACKENDS.items():
        for name, lr in OPTIMIZERS.items():
            model = xn.nn.NNClassifier([6, 16, 3], seed=comm.rank, device=device,
                                       backend=backend)
            for i, w in enumerate(weights(model)):
                arrays[f"{backend}/{name}/initial{i}"] = w
            verbose = 2 if (backend, name) == ("numpy", "sgd") else 0
            history = model.fit(X, y, epochs=EPOCHS, batch_size=PER_RANK_BATCH, optimizer=name,
                                learning_rate=lr, comm=comm, verbose=verbose,
                                validation_data=(X, y))
            for i, w in enumerate(weights(model)):
                arrays[f"{backend}/{name}/final{i}"] = w
            notes[f"{backend}/{name}"] = dict(history)
    np.savez(out / f"fit_rank{comm.rank}.npz", **arrays)
    (out / f"fit_rank{comm.rank}.json").write_text(json.dumps(notes))


def images(n=45, side=6, classes=3):
    """Small one-channel images whose class shifts their mean (uneven last batch too)."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, classes, n)
    X = (rng.standard_normal((n, side, side, 1)) + y[:, None, None, None]).astype(np.float32)
    return X, y


def convnet(seed):
    """A conv stack as the conv issue's classifier has it, small: conv, ReLU, max-pool,
    dense (no Dropout: its masks are drawn per process, so no two runs could agree)."""
    nn = xn.nn
    return [nn.Conv2D(1, 4, 3, seed=seed), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
            nn.Linear(2 * 2 * 4, 3, seed=seed + 1)]


def cnn_classifier(seed):
    return xn.nn.NNClassifier(convnet(seed), input_shape=(6, 6, 1))


def cnn_case(comm, out):
    """The conv stack through ``fit(comm=)`` with Adam: rank-dependent initial weights, the
    final weights and history of each rank."""
    X, y = images()
    model = cnn_classifier(seed=comm.rank)
    initial = weights(model)
    history = model.fit(X, y, epochs=EPOCHS, batch_size=PER_RANK_BATCH, optimizer="adam",
                        learning_rate=0.01, comm=comm, verbose=0)
    arrays = {f"initial{i}": w for i, w in enumerate(initial)}
    arrays.update({f"final{i}": w for i, w in enumerate(weights(model))})
    np.savez(out / f"cnn_rank{comm.rank}.npz", **arrays)
    (out / f"cnn_rank{comm.rank}.json").write_text(json.dumps(dict(history)))


class Counting:
    """An mpi4py communicator that records each call it forwards (name, buffer size)."""

    def __init__(self, comm):
        self._comm, self.calls = comm, []

    def __getattr__(self, name):
        attr = getattr(self._comm, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            sizes = [getattr(a, "size", None) for a in args]
            self.calls.append((name, max((s for s in sizes if isinstance(s, int)), default=0)))
            return attr(*args, **kwargs)

        return counted


def graph_case(comm_world, out):
    """DistributedOptimizer on a graph of its own: messages counted per step, the NumPy
    update kernel's calls counted, weights saved for the single-process comparison."""
    from xpnn.devices.numpy import updates

    counting = Counting(comm_world)
    comm = xn.distributed.init(counting)
    kernel_calls = []
    momentum = updates.UPDATES[xn.train.MomentumOptimizer]
    updates.UPDATES[xn.train.MomentumOptimizer] = (
        lambda *args: (kernel_calls.append(1), momentum(*args))[1])
    X, y = data()
    with xn.Graph().as_default():
        x, t, params, loss = small_model(seed=comm.rank)
        opt = xn.distributed.DistributedOptimizer(xn.train.MomentumOptimizer(0.1, 0.9), comm)
        step = opt.minimize(loss)
        sess = xn.Session()
        before = [xn.to_numpy(sess.run(p)) for p in params]
        comm.broadcast_variables(sess)
        broadcast = [xn.to_numpy(sess.run(p)) for p in params]
        per_step = []
        (allreduce,) = xn.distributed.allreduces(step)
        for epoch in range(2):  # the last batch splits 3 + 2: weighted by the shares
            for Xb, yb, share in xn.distributed.batches(X, y, PER_RANK_BATCH, comm, seed=epoch,
                                                        shares=True):
                allreduce.scale = share
                start = len(counting.calls)
                sess.run(step, {x: Xb, t: yb})
                per_step.append(counting.calls[start:])
        executor = next(e for e in sess._executors.values() if e.plan.updates)
        plan = executor.plan
        notes = {"per_step": per_step, "n_params": int(sum(p.initial_value.size for p in params)),
                 "kernel_calls": len(kernel_calls),
                 "in_place": [u in executor.in_place for u in plan.updates],
                 "steps": [s.op.type for s in plan.steps if s.op is not None]}
        arrays = {f"before{i}": a for i, a in enumerate(before)}
        arrays.update({f"broadcast{i}": a for i, a in enumerate(broadcast)})
        arrays.update({f"final{i}": xn.to_numpy(sess.run(p)) for i, p in enumerate(params)})
    np.savez(out / f"graph_rank{comm.rank}.npz", **arrays)
    (out / f"graph_rank{comm.rank}.json").write_text(json.dumps(notes))


def small_model(seed, hidden=5, extra=False, dtype="float32"):
    """x (n, 6) -> ReLU(hidden) -> 3 logits, sparse softmax cross-entropy: x, t, params, loss."""
    rng = xn.init.generator(seed)
    x = xn.placeholder("float32", (None, 6), name="x")
    t = xn.placeholder("int64", (None,), name="t")
    W1 = xn.Variable(xn.init.he_normal((6, hidden), rng), name="W1", dtype=dtype)
    b1 = xn.Variable(np.zeros(hidden, np.float32), name="b1")
    W2 = xn.Variable(xn.init.he_normal((hidden, 3), rng), name="W2")
    params = [W1, b1, W2]
    logits = xn.relu(x @ W1 + b1) @ W2
    if extra:
        params.append(xn.Variable(np.zeros(3, np.float32), name="b2"))
        logits = logits + params[-1]
    return x, t, params, xn.losses.sparse_softmax_cross_entropy(t, logits)


def mismatch_case(comm, out):
    """Rank 1 builds another graph: the first step fails on both ranks, naming the
    Variables; then fit with other layer sizes fails in its broadcast alike; then rank 1
    alone meets a NaN (non_finite_case)."""
    with xn.Graph().as_default():
        x, t, params, loss = small_model(0, hidden=5 if comm.rank == 0 else 4,
                                         extra=comm.rank == 1)
        step = xn.distributed.DistributedOptimizer(
            xn.train.GradientDescentOptimizer(0.1), comm).minimize(loss)
        X, y = data()
        try:
            xn.Session().run(step, {x: X[:4], t: y[:4]})
        except ValueError as exc:
            note(out, comm, f"STEP ERROR on rank {comm.rank}: {type(exc).__name__}: {exc}")
    model = xn.nn.NNClassifier([6, 16 if comm.rank == 0 else 8, 3])
    try:
        model.fit(X, y, epochs=1, comm=comm, verbose=0)
    except xn.distributed.GraphMismatchError as exc:
        note(out, comm, f"FIT ERROR on rank {comm.rank}: {exc}")
    non_finite_case(comm, out)
    other_data_case(comm, out)
    comm.barrier()
    note(out, comm, f"rank {comm.rank} finished")


def note(out, comm, text):
    """Append a line to this rank's notes (files: ranks' output lines interleave)."""
    with open(out / f"notes_rank{comm.rank}.txt", "a") as f:
        f.write(text + "\n")


def non_finite_case(comm, out):
    """Rank 1's rows of the third global batch hold a NaN (every rank passes the same
    data): every rank's fit stops at that step, writing nothing, instead of rank 1 stopping
    alone."""
    X, y = data()
    X = X.copy()
    third = 2 * 2 * PER_RANK_BATCH  # unshuffled: rank 1 gets the second half of each batch
    X[third + PER_RANK_BATCH:third + 2 * PER_RANK_BATCH] = np.nan
    model = xn.nn.NNClassifier([6, 16, 3])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        history = model.fit(X, y, epochs=1, batch_size=PER_RANK_BATCH, comm=comm, verbose=0,
                            shuffle=False)
    finite = all(np.isfinite(w).all() for w in weights(model))
    note(out, comm, f"NON-FINITE on rank {comm.rank}: {history.stopped}; weights finite: "
                    f"{finite}")


def other_data_case(comm, out):
    """Rank 1's X and y are rank 0's rows shuffled (the same size, the same rows): fit
    raises on every rank before any weight changes; so does ``batches`` alone."""
    X, y = data()
    if comm.rank == 1:
        order = np.random.default_rng(3).permutation(len(X))
        X, y = X[order], y[order]
    model = xn.nn.NNClassifier([6, 16, 3], seed=comm.rank)
    before = weights(model)
    try:
        model.fit(X, y, epochs=1, batch_size=PER_RANK_BATCH, comm=comm, verbose=0)
        note(out, comm, f"DATA TRAINED on rank {comm.rank}")
    except ValueError as exc:
        unchanged = all(np.array_equal(a, b) for a, b in zip(before, weights(model)))
        note(out, comm, f"DATA ERROR on rank {comm.rank}: {exc}; weights unchanged: "
                        f"{unchanged}")
    try:
        next(iter(xn.distributed.batches(X, y, PER_RANK_BATCH, comm, seed=0)))
        note(out, comm, f"BATCHES GIVEN on rank {comm.rank}")
    except ValueError as exc:
        note(out, comm, f"BATCHES ERROR on rank {comm.rank}: {exc}")


def fault_case(comm, out):
    """Rank 1 raises at its fourth step while rank 0 trains on (and waits in the allreduce)."""
    def fail():
        raise RuntimeError("rank 1 failed at step 3 on purpose")
    _train_until_rank_1_stops(comm, fail)


def stall_case(comm, out, leave=False):
    """Rank 1 stops calling its step after three steps: it sleeps, as a hung rank would
    (with ``leave``, it leaves its loop and ends instead). Rank 0 waits in the gradients'
    allreduce of step 4 until the timeout, then aborts every rank."""
    def stop():
        if leave:
            print("rank 1 left its loop", flush=True)
            return True
        time.sleep(600)
    _train_until_rank_1_stops(comm, stop)


def _train_until_rank_1_stops(comm, at_step_3):
    """SGD steps on every rank; rank 1 calls ``at_step_3()`` before its fourth step and
    leaves its loop where that returns True. A rank still running at the end says so."""
    X, y = data()
    with xn.Graph().as_default():
        x, t, params, loss = small_model(0)
        step = xn.distributed.DistributedOptimizer(
            xn.train.GradientDescentOptimizer(0.1), comm).minimize(loss)
        sess = xn.Session()
        for i in range(10_000):
            if comm.rank == 1 and i == 3 and at_step_3():
                return
            sess.run(step, {x: X[:8], t: y[:8]})
    print(f"rank {comm.rank} was not stopped", flush=True)


def caught_case(comm, out):
    """left_case without the except hook (init(abort_on_error=False, timeout=2)): rank 0
    catches the error its step raises at the timeout, says what and when, then ends the job
    (the allreduce it left can never complete)."""
    comm = xn.distributed.init(abort_on_error=False, timeout=2)
    started = time.monotonic()
    try:
        stall_case(comm, out, leave=True)
    except xn.OpError as exc:
        cause = exc.__cause__
        print(f"CAUGHT {type(cause).__name__} on rank {comm.rank} after "
              f"{time.monotonic() - started:.1f} s: {cause}", flush=True)
        comm.mpi.Abort(3)


OVERLAP_BACKENDS = {"numpy": "cpu", "array_api_strict": "device1", "torch": "cpu", "jax": "cpu"}
MODES = {"blocking": {}, "buckets": {"bucket_bytes": 40}, "fp16": {"compression": "fp16"},
         "fp16_buckets": {"compression": "fp16", "bucket_bytes": 40}}


def installed_backends():
    """OVERLAP_BACKENDS less those not installed (JAX in its x64 mode: int64 labels)."""
    import importlib.util

    found = {b: d for b, d in OVERLAP_BACKENDS.items() if importlib.util.find_spec(b)}
    if "jax" in found:
        import jax

        jax.config.update("jax_enable_x64", True)
    return found


def overlap_case(comm, out):
    """small_model trained with momentum on every installed backend, each way the gradients
    can travel (MODES): the final weights; one step's local gradients with the averages the
    update read, fetched in the same run; the plan's op types in order."""
    X, y = data()
    arrays, steps = {}, {}
    for backend, device in installed_backends().items():
        for mode, options in MODES.items():
            if "compression" in options and backend == "array_api_strict":
                continue  # no float16 in the standard
            prefix = f"{backend}/{mode}"
            with xn.Graph().as_default():
                x, t, params, loss = small_model(seed=0)
                opt = xn.distributed.DistributedOptimizer(
                    xn.train.MomentumOptimizer(0.1, 0.9), comm, **options)
                pairs = opt.compute_gradients(loss)
                step = opt.apply_gradients(pairs)
                sess = xn.Session(device=device, backend=backend)
                local = [g for g, _ in pairs]
                averaged = list(step.inputs[:len(local)])
                got = sess.run([local, averaged, step], {x: X[:8 * (comm.rank + 1)],
                                                         t: y[:8 * (comm.rank + 1)]})
                for i, (g, a) in enumerate(zip(*got[:2])):
                    arrays[f"{prefix}/local{i}"] = xn.to_numpy(g)
                    arrays[f"{prefix}/averaged{i}"] = xn.to_numpy(a)
                for epoch in range(3):
                    for Xb, yb in xn.distributed.batches(X, y, PER_RANK_BATCH, comm, seed=epoch,
                                                         drop_last=True):
                        sess.run(step, {x: Xb, t: yb})
                for i, p in enumerate(params):
                    arrays[f"{prefix}/final{i}"] = xn.to_numpy(sess.run(p))
                plan = [e for e in sess._executors.values() if e.plan.updates][-1].plan  # step's
                steps[prefix] = [s.op.type for s in plan.steps if s.op is not None]
    np.savez(out / f"overlap_rank{comm.rank}.npz", **arrays)
    (out / f"overlap_rank{comm.rank}.json").write_text(json.dumps(steps))


def batch_norm_model(bn_of, seed=0):
    """x (n, 6) -> Linear(4) -> bn_of(4) (training) -> ReLU -> 3 logits, sparse softmax
    cross-entropy: x, t, the normalised values, the layer, [W1, gamma, beta, W2], loss."""
    rng = xn.init.generator(seed)
    x = xn.placeholder("float32", (None, 6), name="x")
    t = xn.placeholder("int64", (None,), name="t")
    W1 = xn.Variable(xn.init.he_normal((6, 4), rng), name="W1")
    W2 = xn.Variable(xn.init.he_normal((4, 3), rng), name="W2")
    bn = bn_of(4)
    normalised = bn(x @ W1 + 1.5, training=True)
    loss = xn.losses.sparse_softmax_cross_entropy(t, xn.relu(normalised) @ W2)
    return x, t, normalised, bn, [W1, bn.gamma, bn.beta, W2], loss


def sync_batch_norm_case(comm, out):
    """Each rank normalises its half of 16 rows with SyncBatchNorm: its normalised rows, its
    gradients (of its own rows' mean loss) and the moving statistics after one update."""
    X, y = data()
    rows = slice(8 * comm.rank, 8 * comm.rank + 8)
    arrays = {}
    for backend, device in installed_backends().items():
        with xn.Graph().as_default():
            x, t, normalised, bn, params, loss = batch_norm_model(
                lambda c: xn.distributed.SyncBatchNorm(c, comm, momentum=0.5))
            grads = xn.gradients(loss, params)
            sess = xn.Session(device=device, backend=backend)
            got = sess.run([normalised, grads, bn.updates()], {x: X[rows], t: y[rows]})
            arrays[f"{backend}/normalised"] = xn.to_numpy(got[0])
            for i, g in enumerate(got[1]):
                arrays[f"{backend}/grad{i}"] = xn.to_numpy(g)
            for name in ("moving_mean", "moving_variance"):
                arrays[f"{backend}/{name}"] = xn.to_numpy(sess.run(getattr(bn, name)))
    np.savez(out / f"syncbn_rank{comm.rank}.npz", **arrays)


JOIN_BATCHES = (3, 5)  # rank 0's, rank 1's


def join_batches(rank):
    """Rank ``rank``'s batches of 8 rows (``JOIN_BATCHES[rank]`` of them), its own rows."""
    X, y = data()
    start = 40 * rank
    return [(X[start + 8 * i:start + 8 * i + 8], y[start + 8 * i:start + 8 * i + 8])
            for i in range(JOIN_BATCHES[rank])]


def join_case(comm, out):
    """small_model trained with momentum, rank 0 on 3 batches and rank 1 on 5, then
    ``join``: the weights each rank ends with (and the rank they came from) per backend;
    one rank with no batch at all joins too."""
    arrays, notes = {}, {}
    for backend, device in installed_backends().items():
        with xn.Graph().as_default():
            x, t, params, loss = small_model(seed=comm.rank)  # broadcast below
            opt = xn.distributed.DistributedOptimizer(xn.train.MomentumOptimizer(0.1, 0.9),
                                                      comm, joinable=True)
            step = opt.minimize(loss)
            sess = xn.Session(device=device, backend=backend)
            comm.broadcast_variables(sess)
            for Xb, yb in join_batches(comm.rank):
                sess.run(step, {x: Xb, t: yb})
            notes[backend] = xn.distributed.join(sess, step, comm)
            for i, p in enumerate(params):
                arrays[f"{backend}/final{i}"] = xn.to_numpy(sess.run(p))
    with xn.Graph().as_default():  # rank 1 never steps
        x, t, params, loss = small_model(seed=0)
        step = xn.distributed.DistributedOptimizer(
            xn.train.GradientDescentOptimizer(0.1), comm, joinable=True).minimize(loss)
        sess = xn.Session()
        for Xb, yb in join_batches(0) if comm.rank == 0 else ():
            sess.run(step, {x: Xb, t: yb})
        notes["idle"] = xn.distributed.join(sess, step, comm)
        arrays["idle/final0"] = xn.to_numpy(sess.run(params[0]))
    np.savez(out / f"join_rank{comm.rank}.npz", **arrays)
    (out / f"join_rank{comm.rank}.json").write_text(json.dumps(notes))


def left_case(comm, out):
    """stall_case with rank 1 ending early, the timeout given to init (2 s)."""
    stall_case(xn.distributed.init(timeout=2), out, leave=True)


def cupy_case(comm, out):
    """graph_case's training on CuPy, a GPU per local rank where there are enough: the
    route the gradients took and the weights."""
    import cupy

    device = f"cuda:{comm.local_rank % cupy.cuda.runtime.getDeviceCount()}"
    X, y = data()
    with xn.Graph().as_default():
        x, t, params, loss = small_model(seed=0)
        step = xn.distributed.DistributedOptimizer(
            xn.train.MomentumOptimizer(0.1, 0.9), comm).minimize(loss)
        (allreduce,) = xn.distributed.allreduces(step)
        sess = xn.Session(device=device)
        for epoch in range(2):
            for Xb, yb, share in xn.distributed.batches(X, y, PER_RANK_BATCH, comm, seed=epoch,
                                                        shares=True):
                allreduce.scale = share
                sess.run(step, {x: Xb, t: yb})
        route = xn.distributed.transport.kind_of(sess.run(params[0]))
        arrays = {f"final{i}": xn.to_numpy(sess.run(p)) for i, p in enumerate(params)}
    np.savez(out / f"cupy_rank{comm.rank}.npz", **arrays)
    (out / f"cupy_rank{comm.rank}.json").write_text(json.dumps({"route": route}))


CASES = {"cnn": cnn_case, "cupy": cupy_case, "fit": fit_case, "graph": graph_case,
         "mismatch": mismatch_case, "fault": fault_case, "overlap": overlap_case,
         "caught": caught_case, "syncbn": sync_batch_norm_case, "join": join_case,
         "stall": stall_case, "left": left_case}


def main(argv):
    case, out = argv[0], Path(argv[1])
    if case == "graph":  # it wraps COMM_WORLD in a counting proxy itself
        from mpi4py import MPI

        return graph_case(MPI.COMM_WORLD, out)
    return CASES[case](xn.distributed.init(), out)


if __name__ == "__main__":
    main(sys.argv[1:])
