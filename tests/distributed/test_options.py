"""The options of ``xn.distributed`` refused before anything runs, naming what is wrong (no
MPI needed: nothing here sends a message)."""

from __future__ import annotations

import pytest

import xpnn as xn


def _step(**options):
    w = xn.Variable([1.0, 2.0], name="w")
    opt = xn.distributed.DistributedOptimizer(xn.train.GradientDescentOptimizer(0.1), None,
                                              **options)
    return opt.minimize(xn.reduce_sum(w * w))


def test_bad_options_are_refused_naming_them():
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match="compression must be None or 'fp16'.*'int8'"):
            _step(compression="int8")
        for bad in (0, -5, 1.5, True):
            with pytest.raises(ValueError, match="bucket_bytes must be a number of bytes"):
                _step(bucket_bytes=bad)
        with pytest.raises(ValueError, match="joinable=True works with one message per step"):
            _step(joinable=True, bucket_bytes=1024)
        step = _step()
        with pytest.raises(ValueError, match=r"join: .*joinable=True.*Allreduce#\d+ is not"):
            xn.distributed.join(None, step, None)


def test_buckets_follow_the_variables_in_reverse_order_of_creation():
    with xn.Graph().as_default():
        step = _step(bucket_bytes=4)
        (op,) = xn.distributed.allreduces(step)
        assert type(op).__name__ == "OverlappedAllreduce"
        assert [b.members for b in op.buckets] == [(0,)]
        vs = [xn.Variable([0.0] * n, name=f"v{n}") for n in (300, 10, 20)]
        grads = [v * 2.0 for v in vs]
        op = xn.distributed.allreduce.OverlappedAllreduce(grads, vs, None, bucket_bytes=100)
        assert [b.members for b in op.buckets] == [(2, 1), (0,)]  # 80 + 40 bytes, then 1200
