"""xn.gradcheck itself: it passes a correct gradient and catches wrong ones, per element and
along random directions, with a report that shows where."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


class XpnnTestSquare(xn.Operation):
    """x^2 with a right (scale=2) or wrong gradient, and an optional error at one entry."""

    def __init__(self, x, scale=2.0, spike=None):
        self.scale, self.spike = scale, spike
        super().__init__(x)

    def forward(self, xp, x):
        return x * x

    def infer_shape(self, shape):
        return shape

    def backward(self, grad):
        (x,) = self.inputs
        g = grad * self.scale * x
        if self.spike is not None:
            g = g + xn.constant(self.spike)
        return [g]


def test_passes_a_correct_gradient(dev):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 4))
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable(rng.standard_normal(4), name="w")
        loss = xn.reduce_sum(XpnnTestSquare(x) * w)
        report = xn.gradcheck(loss, [x, w], {x: x0}, device=dev)
    assert isinstance(report, xn.GradcheckReport)
    assert report.ok and report.max_error < 1e-7
    assert [(c.name, c.shape) for c in report.checks] == [("x", (3, 4)), ("w", (4,))]
    assert all(len(c.direction_errors) == 2 for c in report.checks)
    assert "gradcheck (eps=1e-06" in str(report) and "FAILED" not in str(report)


def test_raises_on_a_wrong_gradient(dev):
    x0 = np.arange(1.0, 13.0).reshape(3, 4) / 4
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        loss = xn.reduce_sum(XpnnTestSquare(x, scale=2.125))  # 6 % too large, exact in f32
        with pytest.raises(xn.GradcheckError) as info:
            xn.gradcheck(loss, [x], {x: x0}, device=dev)
        message = str(info.value)
        report = xn.gradcheck(loss, [x], {x: x0}, device=dev, raise_on_failure=False)
    assert isinstance(info.value, AssertionError)
    assert "x (3, 4): max abs error" in message and "<-- FAILED" in message
    # the worst entries first: the error 0.125 x is largest where x is largest
    assert "at (2, 3): analytic +6.37500000e+00  numeric +6.00000000e+00" in message
    assert "at (2, 2): analytic +5.84375000e+00  numeric +5.50000000e+00" in message
    assert message.count("    at (") == 3 and "random direction" in message
    assert not report.ok
    (check,) = report.checks
    assert check.max_abs_error == pytest.approx(0.375, rel=1e-6)
    assert check.max_rel_error == pytest.approx(0.125 / 2.125, rel=1e-6)
    assert check.worst[0][0] == (2, 3)


def test_one_wrong_input_among_right_ones(dev):
    with xn.Graph().as_default():
        a, b = xn.placeholder(name="a"), xn.placeholder(name="b")
        loss = xn.reduce_sum(xn.square(a)) + xn.reduce_sum(XpnnTestSquare(b, scale=1.0))
        with pytest.raises(xn.GradcheckError, match=r"(?s)a \(2,\): .*b \(2,\): .*FAILED"):
            xn.gradcheck(loss, [a, b], {a: [1.0, 2.0], b: [3.0, 4.0]}, device=dev)
        report = xn.gradcheck(loss, [a, b], {a: [1.0, 2.0], b: [3.0, 4.0]}, device=dev,
                              raise_on_failure=False)
    assert [c.ok for c in report.checks] == [True, False]


def test_random_direction_catches_an_error_beyond_max_elements(dev):
    shape, k = (40, 50), 1234  # 2,000 entries, 10 of them checked one by one
    spike = np.zeros(shape)
    spike.flat[k] = 100.0
    x0 = np.random.default_rng(1).standard_normal(shape)
    with xn.Graph().as_default():
        x = xn.placeholder(name="big")
        loss = xn.reduce_sum(XpnnTestSquare(x, spike=spike))
        report = xn.gradcheck(loss, [x], {x: x0}, device=dev, max_elements=10,
                              raise_on_failure=False)
        (check,) = report.checks
        assert check.max_abs_error < 1e-6  # the sampled entries are all right
        assert not report.ok  # but a random direction sees the spike
        with pytest.raises(xn.GradcheckError, match=r"big \(40, 50\).*FAILED"):
            xn.gradcheck(loss, [x], {x: x0}, device=dev, max_elements=10)
        # the same tensor with a right gradient passes with the same sampling
        right = xn.reduce_sum(XpnnTestSquare(x))
        assert xn.gradcheck(right, [x], {x: x0}, device=dev, max_elements=10).ok


def test_runs_in_float64_at_the_sessions_point(dev):
    """A float32 graph is checked in float64 (eps 1e-6 would be noise in float32), at the
    Variable values of ``session``, which it leaves untouched."""
    with xn.Graph().as_default():
        w = xn.Variable([0.5, -1.0, 2.0], name="w")  # float32
        loss = xn.reduce_sum(xn.exp(w) * xn.tanh(w))
        sess = xn.Session(device=dev)
        sess.set_value(w, [1.5, 0.25, -0.75])
        before = xn.to_numpy(sess.get_value(w)).copy()
        report = xn.gradcheck(loss, [w], session=sess)
        assert report.ok and report.max_error < 1e-7
        np.testing.assert_array_equal(xn.to_numpy(sess.get_value(w)), before)
        assert sess.get_value(w).dtype == dev.dtype("float32")


def test_variable_that_does_not_affect_the_loss(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, 2.0], name="w")
        u = xn.Variable([3.0], name="u")
        report = xn.gradcheck(xn.reduce_sum(w * w), [w, u], device=dev)
    assert report.ok and report.checks[1].max_abs_error == 0.0


def test_argument_errors(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0], name="w")
        loss = xn.reduce_sum(x * w)
        with pytest.raises(ValueError, match="placeholder 'x' must be fed"):
            xn.gradcheck(loss, [w], device=dev)
        h = x * w
        with pytest.raises(TypeError, match=r"gradcheck: Multiply#\d+ is not a Variable or "
                                            r"placeholder"):
            xn.gradcheck(xn.reduce_sum(h * h), [h], {x: [1.0]}, device=dev)
