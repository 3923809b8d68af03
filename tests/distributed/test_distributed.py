"""xpnn.distributed under a real MPI: each test starts ``mpiexec -n 2`` on
``tests/distributed/distributed_worker.py`` (with a time bound) and compares what the two
ranks did with one process computed here, in the same run. Skips where mpi4py or mpiexec is missing
(``pip install 'xpnn[mpi]'``)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn
from tests.distributed import distributed_worker as worker

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distributed_worker.py")

TIME_BOUND = 120  # seconds for one mpiexec run: none takes more than a few


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")  # the mpich wheel puts it in the venv
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _why_not() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed: pip install 'xpnn[mpi]'"
    if _mpiexec() is None:
        return "no mpiexec found (beside this Python or on PATH): pip install 'xpnn[mpi]'"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def run_mpi(case, out, timeout=TIME_BOUND, n=2, env=None):
    """``mpiexec -n 2 python distributed_worker.py case out``: (return code, output,
    seconds)."""
    return mpiexec([str(WORKER), case, str(out)], timeout, n, env)


def mpiexec(argv, timeout=TIME_BOUND, n=2, env=None):
    """``mpiexec -n n python *argv``: (return code, output, seconds). On timeout the whole
    process group is killed and the test fails."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", XPNN_THREADS="1",
        **(env or {}))
    started = time.monotonic()
    process = subprocess.Popen([_mpiexec(), "-n", str(n), sys.executable, *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True, cwd=ROOT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"mpiexec -n {n} {' '.join(argv)} did not end within {timeout} s:\n{output}")
    return process.returncode, output, time.monotonic() - started


def run_case(tmp_path_factory, case):
    """Run a worker case on 2 ranks; each rank's arrays and notes, and the output."""
    out = tmp_path_factory.mktemp(case)
    code, output, _ = run_mpi(case, out)
    assert code == 0, output
    ranks = [dict(np.load(out / f"{case}_rank{r}.npz")) for r in range(2)]
    notes = [json.loads((out / f"{case}_rank{r}.json").read_text()) for r in range(2)]
    return ranks, notes, output


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory):
    return run_case(tmp_path_factory, "fit")


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory):
    ranks, notes, _ = run_case(tmp_path_factory, "graph")
    return ranks, notes[0]


def one_process_fit(backend, optimizer):
    """One process, batch 2b, rank 0's initial weights (seed 0): what the two ranks must
    reach."""
    X, y = worker.data()
    model = xn.nn.NNClassifier([6, 16, 3], seed=0, device=worker.BACKENDS[backend],
                               backend=backend)
    history = model.fit(X, y, epochs=worker.EPOCHS, batch_size=2 * worker.PER_RANK_BATCH,
                        optimizer=optimizer, learning_rate=worker.OPTIMIZERS[optimizer],
                        verbose=0, validation_data=(X, y))
    return worker.weights(model), history


def assert_float32_close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("backend", sorted(worker.BACKENDS))
@pytest.mark.parametrize("optimizer", sorted(worker.OPTIMIZERS))
def test_two_ranks_train_as_one_process_with_twice_the_batch(fit_run, backend, optimizer):
    ranks, notes, _ = fit_run
    expected, history = one_process_fit(backend, optimizer)
    for rank, arrays in enumerate(ranks):
        for i, w in enumerate(expected):
            assert_float32_close(arrays[f"{backend}/{optimizer}/final{i}"], w,
                                 f"rank {rank}, weight {i}, {optimizer} on {backend}")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):  # over both ranks' rows
            assert_float32_close(notes[rank][f"{backend}/{optimizer}"][key], history[key],
                                 f"rank {rank}: history {key}")
    for i in range(len(expected)):  # the ranks apply the same averages: no drift at all
        key = f"{backend}/{optimizer}/final{i}"
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    moved = ranks[0][f"{backend}/{optimizer}/final0"] - ranks[0][f"{backend}/{optimizer}/initial0"]
    assert np.abs(moved).max() > 1e-2  # it trained


def test_a_conv_stack_trains_on_two_ranks_as_one_process(tmp_path):
    code, output, _ = run_mpi("cnn", tmp_path)
    assert code == 0, output
    ranks = [dict(np.load(tmp_path / f"cnn_rank{r}.npz")) for r in range(2)]
    notes = [json.loads((tmp_path / f"cnn_rank{r}.json").read_text()) for r in range(2)]
    X, y = worker.images()
    model = worker.cnn_classifier(seed=0)
    history = model.fit(X, y, epochs=worker.EPOCHS, batch_size=2 * worker.PER_RANK_BATCH,
                        optimizer="adam", learning_rate=0.01, verbose=0)
    expected = worker.weights(model)
    assert np.abs(ranks[0]["initial0"] - ranks[1]["initial0"]).max() > 0.1  # seeds differ
    for rank in range(2):
        for i, w in enumerate(expected):
            assert_float32_close(ranks[rank][f"final{i}"], w, f"rank {rank}, conv weight {i}")
        assert_float32_close(notes[rank]["loss"], history["loss"], f"rank {rank}: loss")
    assert np.abs(expected[0] - ranks[0]["initial0"]).max() > 1e-2  # it trained


def test_fit_starts_every_rank_from_rank_0s_weights(fit_run):
    ranks, _, _ = fit_run
    initial = [ranks[r]["numpy/sgd/initial0"] for r in range(2)]
    assert np.abs(initial[0] - initial[1]).max() > 0.1  # seeds 0 and 1 differ
    expected, _ = one_process_fit("numpy", "sgd")  # starts from seed 0's, as rank 0
    assert_float32_close(ranks[1]["numpy/sgd/final0"], expected[0], "rank 1 after fit")


def test_only_rank_0_prints_progress(fit_run):
    *_, output = fit_run
    for epoch in range(1, worker.EPOCHS + 1):
        assert output.count(f"epoch {epoch}/{worker.EPOCHS} - ") == 1, output


def test_broadcast_variables_makes_initial_weights_equal(graph_run):
    ranks, _ = graph_run
    for i in range(3):
        assert np.abs(ranks[0][f"before{i}"] - ranks[1][f"before{i}"]).max() > 0 or i == 1
        for r in range(2):
            np.testing.assert_array_equal(ranks[r][f"broadcast{i}"], ranks[0][f"before{i}"])


def one_process_graph(n_ranks=2):
    """worker.small_model trained by one process on the global batches of ``n_ranks``."""
    X, y = worker.data()
    with xn.Graph().as_default():
        x, t, params, loss = worker.small_model(seed=0)
        step = xn.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
        sess = xn.Session()
        for epoch in range(2):
            for Xb, yb in xn.data.batches(X, y, n_ranks * worker.PER_RANK_BATCH, seed=epoch):
                sess.run(step, {x: Xb, t: yb})
        return [xn.to_numpy(sess.run(p)) for p in params]


def test_graph_api_trains_as_one_process(graph_run):
    ranks, _ = graph_run
    expected = one_process_graph()
    for r in range(2):
        for i, w in enumerate(expected):
            assert_float32_close(ranks[r][f"final{i}"], w, f"rank {r}, weight {i}")


def test_one_fused_allreduce_per_step(graph_run):
    _, notes = graph_run
    steps = notes["per_step"]
    assert len(steps) == 2 * 7  # 101 rows, global batch 16: 7 steps an epoch
    # The first step also compares the ranks' Variables: one allgather, once. The allreduce
    # is nonblocking, polled until it completes or the timeout passes.
    assert steps[0] == [["allgather", 0], ["Iallreduce", notes["n_params"]]]
    assert all(calls == [["Iallreduce", notes["n_params"]]] for calls in steps[1:]), steps


def test_numpy_update_kernels_still_apply_the_averages(graph_run):
    _, notes = graph_run
    assert notes["in_place"] == [True]
    assert notes["kernel_calls"] == 3 * len(notes["per_step"])  # each Variable, every step
    assert notes["steps"].count("Allreduce") == 1 and notes["steps"].count("Unpack") == 3


@pytest.fixture(scope="module")
def caught_run(tmp_path_factory):
    """The errors every rank raises alike and catches: (return code, both ranks' notes)."""
    out = tmp_path_factory.mktemp("mismatch")
    code, output, _ = run_mpi("mismatch", out)
    assert code == 0, output  # every rank raised alike, none waits for the other
    return code, "".join((out / f"notes_rank{r}.txt").read_text() for r in range(2))


def test_mismatched_graphs_fail_on_every_rank_naming_the_variables(caught_run):
    code, output = caught_run
    for rank in range(2):
        assert f"STEP ERROR on rank {rank}: OpError" in output
        assert f"FIT ERROR on rank {rank}: broadcast_variables: the ranks' graphs differ" in output
        assert f"rank {rank} finished" in output
    assert "rank 0 has 3 Variables, rank 1 has 4" in output
    assert "Variable 'W1': shape (6, 5) float32 on rank 0, shape (6, 4) float32 on rank 1" in output
    assert "Variable 'b2': missing on rank 0, shape (3,) float32 on rank 1" in output
    assert ("Variable 'layers.0/W': shape (6, 16) float32 on rank 0, shape (6, 8) float32 on "
            "rank 1") in output


def test_a_non_finite_loss_on_one_rank_stops_every_rank_at_that_step(caught_run):
    code, output = caught_run
    assert code == 0, output
    for rank in range(2):
        assert (f"NON-FINITE on rank {rank}: fit stopped at epoch 1, batch 3: the loss is not "
                "finite") in output, output
        assert f"NON-FINITE on rank {rank}: " in output and "weights finite: True" in output
    assert "weights finite: False" not in output


def test_a_rank_given_other_data_of_the_same_size_fails_every_rank(caught_run):
    _, output = caught_run
    assert "TRAINED" not in output and "BATCHES GIVEN" not in output
    X, y = worker.data()
    # fit checks the labels as the model holds them (int32); batches, y as given
    digests = {"DATA": xn.distributed.sharding.checksum(X, y.astype(np.int32)),
               "BATCHES": xn.distributed.sharding.checksum(X, y)}
    for rank in range(2):
        for what, digest in digests.items():
            line = next(line for line in output.splitlines()
                        if line.startswith(f"{what} ERROR on rank {rank}: "))
            assert ("distributed batches: the ranks' data differ (rank 0 has X and y of CRC32 "
                    f"{digest:#010x}, rank 1 has X and y of CRC32 0x") in line, line
            assert "pass the same X and y (the same rows in the same order) on every rank" in line
        assert f"DATA ERROR on rank {rank}: " in output and "weights unchanged: True" in output
    assert "weights unchanged: False" not in output


def test_an_exception_on_one_rank_ends_the_job_with_its_traceback(tmp_path):
    code, output, seconds = run_mpi("fault", tmp_path, timeout=60)
    assert code != 0
    assert seconds < 60
    assert "uncaught RuntimeError on rank 1 of 2; aborting every rank" in output
    assert "Traceback (most recent call last)" in output
    assert "RuntimeError: rank 1 failed at step 3 on purpose" in output
    assert "was not stopped" not in output


@pytest.mark.parametrize("case", ["stall", "left"])
def test_a_rank_that_stops_stepping_ends_every_rank_at_the_timeout(tmp_path, case):
    """Rank 1 stops calling its step (it hangs; or it leaves its loop and ends): rank 0
    would wait in the allreduce for ever. With a 2-s timeout (XPNN_ALLREDUCE_TIMEOUT, or
    init(timeout=2)) it prints what it waited in and aborts every rank."""
    env = {"XPNN_ALLREDUCE_TIMEOUT": "2"} if case == "stall" else {}
    code, output, seconds = run_mpi(case, tmp_path, timeout=60, env=env)
    assert code != 0, output
    assert seconds < 30, output  # 2 s of waiting, and the start of two Python processes
    assert ("xpnn.distributed: rank 0 of 2 waited 2 s in the gradients' allreduce of step 4 "
            "without every rank joining it") in output, output
    assert "aborting every rank (MPI_Abort)" in output
    assert "was not stopped" not in output
    assert ("rank 1 left its loop" in output) == (case == "left")


def test_a_rank_that_leaves_makes_the_others_raise_a_timeout_error_they_can_catch(tmp_path):
    """Rank 1 leaves its loop; rank 0's step raises RankTimeoutError (the OpError's cause)
    naming rank 0 and the allreduce, 2 s later, which it catches (no except hook)."""
    code, output, seconds = run_mpi("caught", tmp_path, timeout=60)
    assert seconds < 30, output
    line = next((x for x in output.splitlines() if x.startswith("CAUGHT ")), None)
    assert line is not None, output
    assert line.startswith("CAUGHT RankTimeoutError on rank 0 after "), line
    waited = float(line.split(" after ")[1].split(" s:")[0])
    assert 2.0 <= waited < 20, line  # rank 0 started at once; the bound is 2 s
    assert ("xpnn.distributed: rank 0 of 2 waited 2 s in the gradients' allreduce of step 4 "
            "without every rank joining it") in line
    assert issubclass(xn.distributed.RankTimeoutError, TimeoutError)
    assert "was not stopped" not in output


def _batch_norm_reference(rows):
    """worker.batch_norm_model with xn.nn.BatchNorm in one process on ``rows`` of the data:
    (normalised, gradients, moving mean, moving variance)."""
    X, y = worker.data()
    with xn.Graph().as_default():
        x, t, normalised, bn, params, loss = worker.batch_norm_model(
            lambda c: xn.nn.BatchNorm(c, momentum=0.5))
        sess = xn.Session()
        got = sess.run([normalised, xn.gradients(loss, params), bn.updates()],
                       {x: X[rows], t: y[rows]}, to_numpy=True)
        return got[0], got[1], *sess.run([bn.moving_mean, bn.moving_variance], to_numpy=True)


def test_sync_batch_norm_on_two_halves_equals_one_process_on_the_batch(tmp_path):
    """Each rank normalises 8 of 16 rows with SyncBatchNorm: its rows equal one process's
    BatchNorm on all 16, the mean of its gradients equals that process's, and the moving
    statistics are the process's on every rank and backend."""
    code, output, _ = run_mpi("syncbn", tmp_path)
    assert code == 0, output
    ranks = [dict(np.load(tmp_path / f"syncbn_rank{r}.npz")) for r in range(2)]
    normalised, grads, moving_mean, moving_variance = _batch_norm_reference(slice(0, 16))
    half = _batch_norm_reference(slice(0, 8))  # what a BatchNorm of its own would give
    assert np.abs(half[2] - moving_mean).max() > 1e-3
    backends = sorted({k.split("/")[0] for k in ranks[0]})
    assert "numpy" in backends and "array_api_strict" in backends
    for b in backends:
        assert_float32_close(np.concatenate([ranks[r][f"{b}/normalised"] for r in range(2)]),
                             normalised, f"{b}: the normalised rows")
        for i, g in enumerate(grads):  # W1, gamma, beta, W2
            np.testing.assert_allclose((ranks[0][f"{b}/grad{i}"] + ranks[1][f"{b}/grad{i}"]) / 2,
                                       g, rtol=1e-4, atol=1e-6, err_msg=f"{b}: gradient {i}")
        for r in range(2):
            assert_float32_close(ranks[r][f"{b}/moving_mean"], moving_mean, f"{b} rank {r}")
            assert_float32_close(ranks[r][f"{b}/moving_variance"], moving_variance,
                                 f"{b} rank {r}")


def _one_process_join(optimizer, steps):
    """small_model (seed 0) trained by one process on ``steps``' batches: the weights."""
    with xn.Graph().as_default():
        x_, t_, params, loss = worker.small_model(seed=0)
        step = optimizer.minimize(loss)
        sess = xn.Session()
        for Xb, yb in steps:
            sess.run(step, {x_: Xb, t_: yb})
        return [xn.to_numpy(sess.run(p)) for p in params]


def test_ranks_with_uneven_batches_finish_together_with_equal_variables(tmp_path):
    """Rank 0 has 3 batches, rank 1 has 5; each calls join after its last: the job ends
    (no hang), every rank holds the weights of one process that averaged both ranks'
    gradients for 3 steps and took rank 1's alone for 2; a rank with no batch joins too."""
    code, output, seconds = run_mpi("join", tmp_path, timeout=90,
                                    env={"XPNN_ALLREDUCE_TIMEOUT": "30"})
    assert code == 0, output
    ranks = [dict(np.load(tmp_path / f"join_rank{r}.npz")) for r in range(2)]
    notes = [json.loads((tmp_path / f"join_rank{r}.json").read_text()) for r in range(2)]
    mine = [worker.join_batches(r) for r in range(2)]
    both = [(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
            for a, b in zip(*mine)]
    expected = _one_process_join(xn.train.MomentumOptimizer(0.1, 0.9), both + mine[1][3:])
    backends = sorted(notes[0])
    assert {"numpy", "array_api_strict", "idle"} <= set(backends)
    for backend in backends:
        assert notes[0][backend] == notes[1][backend] == (0 if backend == "idle" else 1)
        if backend == "idle":
            continue
        for i, w in enumerate(expected):
            for r in range(2):
                assert_float32_close(ranks[r][f"{backend}/final{i}"], w, f"{backend} {r} {i}")
            np.testing.assert_array_equal(ranks[0][f"{backend}/final{i}"],
                                          ranks[1][f"{backend}/final{i}"])
    alone = _one_process_join(xn.train.GradientDescentOptimizer(0.1), mine[0])
    for r in range(2):
        assert_float32_close(ranks[r]["idle/final0"], alone[0], f"idle rank {r}")


@pytest.fixture(scope="module")
def overlap_run(tmp_path_factory):
    ranks, notes, _ = run_case(tmp_path_factory, "overlap")
    return ranks, notes[0]


def _modes(ranks, mode):
    """The backends that ran ``mode`` in the overlap case."""
    return sorted({k.split("/")[0] for k in ranks[0] if k.split("/")[1] == mode})


def test_buckets_overlapped_with_backprop_train_as_the_blocking_allreduce(overlap_run):
    ranks, steps = overlap_run
    backends = _modes(ranks, "buckets")
    assert "numpy" in backends and "array_api_strict" in backends
    for backend in backends:
        for i in range(3):
            for rank in range(2):  # bit for bit: the same sums, divided alike
                for kind in ("averaged", "final"):
                    np.testing.assert_array_equal(
                        ranks[rank][f"{backend}/buckets/{kind}{i}"],
                        ranks[rank][f"{backend}/blocking/{kind}{i}"], err_msg=f"{backend} {i}")
            np.testing.assert_array_equal(ranks[0][f"{backend}/buckets/final{i}"],
                                          ranks[1][f"{backend}/buckets/final{i}"])
        order = steps[f"{backend}/buckets"]
        assert order.count("Bucket") == 2 and order.count("OverlappedAllreduce") == 1, order
        # the first bucket (W2's gradient) is sent before the backward pass computes W1's
        assert order.index("Bucket") < max(i for i, t in enumerate(order) if "Grad" in t), order


def test_fp16_compression_averages_the_float16_rounded_gradients(overlap_run):
    ranks, _ = overlap_run
    backends = _modes(ranks, "fp16")
    assert "numpy" in backends
    for backend in backends:
        for mode in ("fp16", "fp16_buckets"):
            for i in range(3):
                halves = [ranks[r][f"{backend}/{mode}/local{i}"].astype(np.float16)
                          for r in range(2)]
                expected = (halves[0] + halves[1]).astype(np.float32) / 2
                for rank in range(2):
                    averaged = ranks[rank][f"{backend}/{mode}/averaged{i}"]
                    assert averaged.dtype == np.float32
                    np.testing.assert_array_equal(averaged, expected, err_msg=f"{mode} {i}")
                exact = sum(ranks[r][f"{backend}/blocking/local{i}"] for r in range(2)) / 2
                assert not np.array_equal(expected, exact)  # the rounding is visible


def _accuracy(arrays, prefix):
    X, y = worker.data()
    W1, b1, W2 = (arrays[f"{prefix}/final{i}"] for i in range(3))
    return float(np.mean(np.argmax(np.maximum(X @ W1 + b1, 0) @ W2, axis=1) == y))


def test_fp16_compression_trains_to_the_float32_accuracy(overlap_run):
    ranks, _ = overlap_run
    for backend in _modes(ranks, "fp16"):
        full = _accuracy(ranks[0], f"{backend}/blocking")
        initial = _accuracy({f"x/final{i}": w for i, w in enumerate(_initial_small_model())},
                            "x")
        assert full > initial + 0.1, (full, initial)  # it trained
        for mode in ("fp16", "fp16_buckets"):
            assert abs(_accuracy(ranks[0], f"{backend}/{mode}") - full) <= 0.02
            for i in range(3):  # the same path, to float16 rounding of each step's average
                np.testing.assert_allclose(ranks[0][f"{backend}/{mode}/final{i}"],
                                           ranks[0][f"{backend}/blocking/final{i}"], atol=5e-3)


def _initial_small_model():
    with xn.Graph().as_default():
        _, _, params, _ = worker.small_model(seed=0)
        sess = xn.Session()
        return [xn.to_numpy(sess.run(p)) for p in params]


def test_the_timeout_is_read_from_init_or_the_environment(monkeypatch):
    from xpnn.distributed.comm import TIMEOUT, timeout_seconds

    monkeypatch.delenv("XPNN_ALLREDUCE_TIMEOUT", raising=False)
    assert timeout_seconds(None) == TIMEOUT == 600
    assert (timeout_seconds(2.5), timeout_seconds(0), timeout_seconds(float("inf"))) == (
        2.5, None, None)
    monkeypatch.setenv("XPNN_ALLREDUCE_TIMEOUT", "30")
    assert timeout_seconds(None) == 30 and timeout_seconds(5) == 5
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("XPNN_ALLREDUCE_TIMEOUT", bad)
        with pytest.raises(ValueError, match=f"XPNN_ALLREDUCE_TIMEOUT='{bad}': the allreduce "
                                             "timeout is a number of seconds >= 0"):
            timeout_seconds(None)
    for bad in (-2, True, "x"):
        with pytest.raises(ValueError, match=r"init\(timeout=...\)"):
            timeout_seconds(bad)


def test_mnist_example_distributed_matches_one_process():
    argv = ["--synthetic", "--limit", "600", "--epochs", "2", "--quiet"]
    code, output, _ = mpiexec(["examples/mnist_mlp.py", "--distributed", "--batch-size", "32",
                               *argv])
    assert code == 0, output
    assert output.count("test accuracy") == 1 and "on 2 ranks, batch 32 each (64 a step)" in output
    loss = float(re.search(r"test accuracy [0-9.]+% \(loss ([0-9.]+)\)", output).group(1))
    sys.path.insert(0, str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location("mnist_mlp", ROOT / "examples" / "mnist_mlp.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    one = example.main([*argv, "--batch-size", "64"])
    assert loss == pytest.approx(one["test_loss"], abs=2e-4)


def _why_no_gpu() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'xpnn[cuda]')"
    import cupy

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver
        return f"no CUDA device ({exc})"
    return None if count else "no CUDA device"


@pytest.mark.parametrize("route", ["auto", "host"])
def test_cupy_gradients_average_on_the_gpu(tmp_path, route):
    """CuPy's routes: NCCL (or a CUDA-aware MPI) where present, else the host; on one GPU
    the default route runs one rank (NCCL refuses two ranks on one device), the host route
    two ranks sharing it."""
    why = _why_no_gpu()
    if why is not None:
        if os.environ.get("XPNN_REQUIRE_CUPY") == "1":
            pytest.fail(f"XPNN_REQUIRE_CUPY=1 but {why}")
        pytest.skip(why)
    import cupy

    n = 2 if route == "host" or cupy.cuda.runtime.getDeviceCount() > 1 else 1
    env = {} if route == "auto" else {"XPNN_ALLREDUCE": route}
    code, output, _ = run_mpi("cupy", tmp_path, n=n, env=env)
    assert code == 0, output
    notes = json.loads((tmp_path / "cupy_rank0.json").read_text())
    if route == "host":
        assert notes["route"] == "host"
    else:  # NCCL where CuPy has it; else a CUDA-aware MPI, else the host
        from xpnn.devices.cupy.transport import nccl_available

        assert notes["route"] == "nccl" if nccl_available() else notes["route"] in ("mpi", "host")
    expected = one_process_graph(n_ranks=n)
    for r in range(n):
        arrays = np.load(tmp_path / f"cupy_rank{r}.npz")
        for i, w in enumerate(expected):
            np.testing.assert_allclose(arrays[f"final{i}"], w, rtol=1e-4, atol=1e-5)


def test_numpy_gradients_take_the_numpy_route_scalars_too():
    """A 0-d NumPy gradient (array-api-compat's sum gives NumPy scalars) is a host array:
    packed by the NumPy transport, not staged through the generic host route."""
    from xpnn.distributed.transport import kind_of

    assert kind_of(np.ones(3, np.float32)) == "numpy"
    assert kind_of(np.float32(1.0)) == "numpy"
