"""Bad input to cond, while_loop and scan: a clear error naming what is wrong and what to
do, raised at build time where it can be, and a failed run changes no Variable."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


def one():
    return xn.constant(1.0)


def test_cond_refuses_a_pred_that_is_not_a_bool():
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (), name="x")
        with pytest.raises(TypeError, match=r"pred x .*float32.*bool scalar"):
            xn.cond(x, one, one)
        with pytest.raises(TypeError, match="functions of no argument"):
            xn.cond(x > 0.0, 1.0, 2.0)


def test_cond_refuses_a_pred_that_is_not_a_scalar(dev, passes):
    with xn.Graph().as_default():
        flags = xn.placeholder("bool", (3,), name="flags")
        with pytest.raises(ValueError, match=r"pred flags has shape \(3,\).*scalar"):
            xn.cond(flags, one, one)
        unknown = xn.placeholder("bool", None, name="unknown")  # found at run time
        y = xn.cond(unknown, one, lambda: xn.constant(2.0))
        with pytest.raises(Exception, match=r"pred must be a scalar bool, got shape \(2,\)"):
            xn.Session(device=dev, passes=passes).run(y, {unknown: np.array([True, False])})


def test_cond_branches_of_different_structure_or_dtype():
    with xn.Graph().as_default():
        flag = xn.placeholder("bool", (), name="flag")
        with pytest.raises(ValueError, match="true_fn returned 2 values and false_fn 1"):
            xn.cond(flag, lambda: [one(), one()], lambda: [one()])
        with pytest.raises(TypeError, match="output 0 is float32 in true_fn and int32 in "
                                            "false_fn.*xn.cast"):
            xn.cond(flag, one, lambda: xn.constant(1, "int32"))
        with pytest.raises(ValueError, match="false_fn returned nothing"):
            xn.cond(flag, one, lambda: [])


def test_no_variable_is_created_inside_a_body():
    with xn.Graph().as_default():
        flag = xn.placeholder("bool", (), name="flag")
        with pytest.raises(ValueError, match="Variable made inside cond/true_fn.*"
                                             "create the Variable outside"):
            xn.cond(flag, lambda: xn.Variable(1.0, name="inner") * 2.0, one)
        with pytest.raises(ValueError, match="made inside while/body"):
            xn.while_loop(lambda v: v < 3.0, lambda v: v + xn.Variable(1.0), one())


def test_while_loop_body_changing_a_dtype_or_the_count():
    with xn.Graph().as_default():
        i = xn.constant(0, "int32")
        with pytest.raises(TypeError, match="loop variable 0 enters as int32 and the body "
                                            "returns float32.*xn.cast"):
            xn.while_loop(lambda i: i < 3, lambda i: xn.cast(i, "float32") + 1.0, i)
        with pytest.raises(ValueError, match="body returned 2 values for 1 loop variables"):
            xn.while_loop(lambda i: i < 3, lambda i: [i + 1, i], [i])
        with pytest.raises(TypeError, match="cond must return one scalar bool"):
            xn.while_loop(lambda i: i + 1, lambda i: i + 1, i)


def test_maximum_iterations_must_be_an_int():
    with xn.Graph().as_default():
        with pytest.raises(TypeError, match="maximum_iterations must be a Python int.*float"):
            xn.while_loop(lambda v: v < 3.0, lambda v: v + 1.0, one(), maximum_iterations=2.5)


def test_a_loop_variable_outgrowing_its_unknown_shape_at_run_time(dev, passes):
    """The build cannot see the growth (unknown dims); the run refuses it, naming it."""
    with xn.Graph().as_default():
        n = xn.placeholder("int32", (), name="n")
        v = xn.placeholder("float32", (2,), name="v")
        extra = xn.placeholder("float32", None, name="extra")
        _, out = xn.while_loop(lambda i, v: i < n, lambda i, v: [i + 1, xn.concat([v, extra], 0)],
                               [xn.constant(0, "int32"), v], shape_invariants=[(), (2,)])
        with pytest.raises(Exception, match=r"loop variable 1 has shape \(4,\).*shape "
                                            r"invariant is \(2,\)"):
            xn.Session(device=dev, passes=passes).run(out, {n: 1, v: np.ones(2, np.float32),
                                                        extra: np.ones(2, np.float32)})


def test_empty_elems():
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match="at least one sequence"):
            xn.control_flow.scan_loop(lambda c, x: (c, c), one(), [])
        with pytest.raises(ValueError, match="is a scalar; elems are sliced"):
            xn.scan(lambda a, x: a + x, one(), initializer=one())


def test_a_scan_over_no_step_or_uneven_elems_fails_and_changes_no_variable(dev, passes):
    with xn.Graph().as_default():
        w = xn.Variable(np.float32(2.0), name="w")
        xs = xn.placeholder("float32", (None,), name="xs")
        ys = xn.placeholder("float32", (None,), name="ys")
        loss = xn.foldl(lambda a, e: a + e[0] * e[1] * w, [xs, ys], xn.constant(0.0))
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev, passes=passes)
        empty = np.zeros(0, np.float32)
        with pytest.raises(Exception, match=r"first axis of at least one step, got shapes "
                                            r"\[\(0,\), \(0,\)\]"):
            sess.run(loss, {xs: empty, ys: empty})
        with pytest.raises(Exception, match=r"must share a first axis.*\[\(3,\), \(2,\)\]"):
            sess.run(step, {xs: np.ones(3, np.float32), ys: np.ones(2, np.float32)})
        assert float(xn.to_numpy(sess.run(w))) == 2.0
        sess.run(step, {xs: np.ones(3, np.float32), ys: np.ones(3, np.float32)})
        assert float(xn.to_numpy(sess.run(w))) == pytest.approx(2.0 - 0.1 * 3)
