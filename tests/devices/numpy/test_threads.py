"""xpnn.devices.numpy.threads.run_together: calls that must run at the same time do, nested
or from several threads at once; errors and Ctrl-C reach the caller."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from xpnn.devices.numpy import threads


def _meeting(parties):
    barrier = threading.Barrier(parties, timeout=30)  # a call left waiting breaks it
    return lambda: barrier.wait()


def test_calls_run_at_the_same_time():
    threads.run_together([_meeting(3)] * 3)


def test_nested_calls_get_helpers_of_their_own():
    """Each part of an outer call runs an inner call whose parts wait for one another: a
    helper busy with the outer call is not handed the inner call's work."""
    outer = _meeting(2)

    def part():
        threads.run_together([_meeting(3)] * 3)
        outer()

    threads.run_together([part, part])


def test_callers_on_several_threads_at_once():
    errors = []

    def caller():
        try:
            for _ in range(20):
                threads.run_together([_meeting(2)] * 2)
        except BaseException as error:
            errors.append(error)

    callers = [threading.Thread(target=caller) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert errors == [] and not any(t.is_alive() for t in callers)


def test_an_error_on_a_helper_reaches_the_caller():
    finished = []

    def fails():
        raise ValueError("from a helper")

    with pytest.raises(ValueError, match="from a helper"):
        threads.run_together([lambda: finished.append(1), fails])
    assert finished == [1]
    threads.run_together([_meeting(2)] * 2)  # the helper that failed still serves


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
def test_ctrl_c_waits_for_blas_jobs_then_raises():
    """With interruptible=False (BLAS's jobs point into their caller's stack) Ctrl-C during
    the wait does not return early: the jobs finish, then KeyboardInterrupt is raised."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    main, finished = threading.main_thread().ident, []

    def slow():
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.3)
        finished.append(1)

    with pytest.raises(KeyboardInterrupt):
        threads.run_together([lambda: None, slow], interruptible=False)
        assert finished == [1]
        time.sleep(5)  # the interrupt raised again arrives here
    assert finished == [1]
