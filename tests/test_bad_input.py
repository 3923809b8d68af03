"""Bad numbers, bad feeds and bad arguments: each fails with an error that names what is
wrong, and a failed run changes no Variable (optimizer slots included)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpnn as xn
from xpnn import to_numpy


def snapshot(sess, graph):
    return {v: to_numpy(sess.get_value(v)).copy() for v in graph.variables}


def assert_unchanged(sess, before):
    for v, value in before.items():
        np.testing.assert_array_equal(to_numpy(sess.get_value(v)), value,
                                      err_msg=f"Variable {v.label} changed")


def needs_float64(dev):
    if dev.backend == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("jax: float64 needs JAX_ENABLE_X64=1")


# --------------------------------------------------------------------------- Python scalars


def test_a_python_float_takes_the_float64_dtype_exactly(dev):
    needs_float64(dev)
    with xn.Graph().as_default():
        v = xn.Variable(np.float64(1.0), dtype="float64", name="v")
        h = v
        for _ in range(2000):
            h = h + v * 0.001
        sess = xn.Session(device=dev)
        assert to_numpy(sess.run(v * 0.1)).item() == 0.1  # was 0.10000000149011612
        assert to_numpy(sess.run(0.1 * v)).item() == 0.1
        expected = 1.0
        for _ in range(2000):
            expected = expected + 1.0 * 0.001
        assert to_numpy(sess.run(h)).item() == expected  # was 3.0000000949949026
        assert sess.run(h).dtype == dev.dtype("float64")


def test_python_numbers_meet_integers_and_float32(dev):
    with xn.Graph().as_default():
        i = xn.Variable(np.array([1, 2]), dtype="int64", trainable=False, name="i")
        f = xn.Variable([1.0, 2.0], name="f")
        sess = xn.Session(device=dev)
        doubled = sess.run(i * 2)
        assert doubled.dtype == dev.dtype("int64")  # an int meeting int64 stays int64
        assert to_numpy(doubled).tolist() == [2, 4]
        assert sess.run(i * 0.5).dtype == dev.dtype("float32")  # a float: the default float
        assert sess.run(f * 0.1).dtype == dev.dtype("float32")
        np.testing.assert_array_equal(to_numpy(sess.run(f * 0.1)),
                                      np.array([1.0, 2.0], np.float32) * np.float32(0.1))


# --------------------------------------------------------------------------- non-finite values


def test_check_numerics_op_names_the_op_and_changes_nothing(dev):
    with xn.Graph().as_default() as graph:
        x = xn.placeholder(name="x")
        w = xn.Variable([1.0, 2.0], name="w")
        loss = xn.reduce_sum(xn.check_numerics(xn.log(x * w), "log of x w", name="checked"))
        step = xn.train.AdamOptimizer(0.1).minimize(loss)
        sess = xn.Session(device=dev)
        sess.run(step, {x: [1.0, 1.0]})
        before = snapshot(sess, graph)
        with pytest.raises(xn.NumericsError, match=r"(?s)checked \(CheckNumerics\) failed: "
                                                   r"log of x w: 0 NaN and 1 inf.*input 0"):
            sess.run([step, loss], {x: [0.0, 1.0]})
        assert_unchanged(sess, before)
        assert to_numpy(sess.run(loss, {x: [1.0, 1.0]})).shape == ()


def test_check_numerics_checks_the_gradient_too(dev):
    with xn.Graph().as_default():
        x = xn.Variable([0.0, 4.0], name="x")
        y = xn.reduce_sum(xn.sqrt(xn.check_numerics(x, "x")))
        (g,) = xn.gradients(y, [x])
        sess = xn.Session(device=dev)
        np.testing.assert_allclose(to_numpy(sess.run(y)), 2.0)  # sqrt(0) is finite
        with pytest.raises(xn.NumericsError, match="detected in gradient. x: 0 NaN and 1 inf"):
            sess.run(g)  # d sqrt(x)/dx at 0 is inf, and flows back through the check


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_session_check_numerics_stops_a_nan_feed_before_any_write(dev, optimizer):
    make = {"sgd": xn.train.GradientDescentOptimizer, "momentum": xn.train.MomentumOptimizer,
            "adam": xn.train.AdamOptimizer}[optimizer]
    with xn.Graph().as_default() as graph:
        x = xn.placeholder(shape=(None, 2), name="x")
        W = xn.Variable([[1.0, 0.0], [0.5, 1.0]], name="W")
        loss = xn.reduce_mean(xn.square(xn.relu(x @ W)))
        step = make(0.1).minimize(loss)
        sess = xn.Session(device=dev, check_numerics=True)
        sess.run(step, {x: [[1.0, 2.0]]})
        before = snapshot(sess, graph)
        with pytest.raises(xn.NumericsError, match=r"(?s)MatMul.*check_numerics is on.*"
                                                   r"input 0 x: shape \(1, 2\)"):
            sess.run(step, {x: [[np.nan, 2.0]]})
        assert_unchanged(sess, before)
        # without the switch the same run writes NaN into the weights
        plain = xn.Session(device=dev)
        plain.run(step, {x: [[np.nan, 2.0]]})
        assert np.isnan(to_numpy(plain.get_value(W))).any()


def test_session_check_numerics_checks_new_variable_values(dev):
    with xn.Graph().as_default() as graph:
        w = xn.Variable([3e38, 1.0], name="w")
        step = xn.train.GradientDescentOptimizer(1.0).minimize(xn.reduce_sum(w * -3e38))
        sess = xn.Session(device=dev, check_numerics=True)
        before = snapshot(sess, graph)
        with pytest.raises(xn.NumericsError, match=r"new value of Variable w has 0 NaN and 1 "
                                                   r"inf"):
            sess.run(step)  # 3e38 + 3e38 overflows float32
        assert_unchanged(sess, before)
        sess.check_numerics = False
        sess.run(step)
        assert np.isinf(to_numpy(sess.get_value(w))[0])


def test_fit_stops_on_a_non_finite_loss_and_keeps_the_last_finite_weights(dev):
    X, y = xn.data.make_moons(32, noise=0.1, seed=0)
    X_bad = X.copy()
    X_bad[10, 0] = np.nan  # in the second batch of 8
    model = xn.nn.NNClassifier([2, 6, 2], device=dev, seed=0)
    with pytest.warns(RuntimeWarning, match="fit stopped at epoch 1, batch 2: the loss is not "
                                            "finite"):
        history = model.fit(X_bad, y, epochs=3, batch_size=8, optimizer="momentum",
                            learning_rate=0.1, shuffle=False, verbose=0)
    assert history.stopped.startswith("fit stopped at epoch 1, batch 2")
    assert history["loss"] == []
    one_step = xn.nn.NNClassifier([2, 6, 2], device=dev, seed=0)
    one_step.fit(X[:8], y[:8], epochs=1, batch_size=8, optimizer="momentum", learning_rate=0.1,
                 shuffle=False, verbose=0)
    for a, b in zip(model.layers, one_step.layers):
        assert np.isfinite(to_numpy(a.W)).all()
        np.testing.assert_allclose(to_numpy(a.W), to_numpy(b.W), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(to_numpy(a.b), to_numpy(b.b), rtol=1e-6, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.fit(X, y, epochs=1, batch_size=8, verbose=0).stopped is None


def test_a_training_run_refuses_an_empty_batch(dev):
    with xn.Graph().as_default() as graph:
        x = xn.placeholder(shape=(None, 2), name="x")
        W = xn.Variable([[1.0, 0.0], [0.5, 1.0]], name="W")
        out = x @ W
        step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_mean(xn.square(out)))
        sess = xn.Session(device=dev)
        sess.run(step, {x: [[1.0, 2.0]]})
        before = snapshot(sess, graph)
        with pytest.raises(ValueError, match=r"placeholder x was fed an empty array \(shape "
                                             r"\(0, 2\)\) in a run that updates Variables"):
            sess.run(step, {x: np.zeros((0, 2), np.float32)})
        assert_unchanged(sess, before)
        assert tuple(sess.run(out, {x: np.zeros((0, 2), np.float32)}).shape) == (0, 2)


# --------------------------------------------------------------------------- feeds


def test_complex_feeds_are_refused_naming_the_placeholder(dev):
    with xn.Graph().as_default():
        x = xn.placeholder("float32", name="x")
        sess = xn.Session(device=dev)
        data = np.array([1 + 2j, 3 - 1j], np.complex64)
        with pytest.raises(TypeError, match="placeholder x"):
            sess.run(x * 2.0, {x: data})
        on_device = dev.xp.asarray(data, device=dev.device)
        with pytest.raises(TypeError, match="placeholder x.*complex"):
            sess.run(x * 2.0, {x: on_device})


def test_fractional_labels_on_the_device_are_refused(dev):
    if not dev.reads_without_sync:
        pytest.skip(f"{dev}: the check would stall the device; skipped by design")
    with xn.Graph().as_default():
        t = xn.placeholder("int64", name="t")
        sess = xn.Session(device=dev)
        fractional = dev.from_host(np.array([0.5, 1.0]), "float32")
        with pytest.raises(TypeError, match="placeholder t holds int64 but was fed fractional "
                                            "float32 data"):
            sess.run(t, {t: fractional})
        whole = dev.from_host(np.array([0.0, 1.0]), "float32")
        assert to_numpy(sess.run(t, {t: whole})).tolist() == [0, 1]


def test_ragged_lists_and_out_of_range_integers_name_the_placeholder(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        t = xn.placeholder("int64", name="t")
        sess = xn.Session(device=dev)
        with pytest.raises(ValueError, match="placeholder x: the fed data is not a rectangular "
                                             "array"):
            sess.run(x, {x: [[1.0], [2.0, 3.0]]})
        with pytest.raises(ValueError, match="placeholder t holds int64 but was fed the value "
                                             "9223372036854775813"):
            sess.run(t, {t: np.array([1, 2**63 + 5], np.uint64)})


@pytest.mark.parametrize("bad, shown", [(np.inf, "inf"), (-np.inf, "-inf"), (np.nan, "nan")])
def test_non_finite_floats_fed_to_an_integer_placeholder_are_refused(dev, bad, shown):
    with xn.Graph().as_default():
        t = xn.placeholder("int64", name="t")
        sess = xn.Session(device=dev)
        message = f"placeholder t holds int64 but was fed {shown} \\(float64\\)"
        with pytest.raises(ValueError, match=message):  # was INT64_MIN (or 0 on JAX)
            sess.run(t, {t: [bad, 1.0]})
        if dev.reads_without_sync:
            on_device = dev.from_host(np.array([1.0, bad]), "float32")
            with pytest.raises(ValueError, match="placeholder t holds int64 but was fed"):
                sess.run(t, {t: on_device})


def test_floats_too_large_for_an_integer_placeholder_are_refused(dev):
    with xn.Graph().as_default():
        t = xn.placeholder("int32", name="t")
        sess = xn.Session(device=dev)
        with pytest.raises(ValueError, match=r"placeholder t holds int32 but was fed the value "
                                             r"1e\+20, outside \[-2147483648, 2147483647\]"):
            sess.run(t, {t: np.array([1e20, 0.0])})
        assert to_numpy(sess.run(t, {t: np.array([-2.0**31, 3.0])})).tolist() == [-2**31, 3]


def test_set_value_refuses_what_a_feed_refuses_and_changes_nothing(dev):
    with xn.Graph().as_default():
        i = xn.Variable(np.array([1, 2], np.int32), trainable=False, name="i")
        sess = xn.Session(device=dev)
        refused = [
            ([3.7, 1.0], TypeError, "holds int32 but was given fractional float64 data"),
            (np.array([2**40, 1]), ValueError, "holds int32 but was given the value "
                                               "1099511627776, outside"),
            ([np.inf, 1.0], ValueError, "holds int32 but was given inf"),
        ]
        for value, error, message in refused:
            with pytest.raises(error, match="set_value: Variable i " + message):
                sess.set_value(i, value)
            assert to_numpy(sess.get_value(i)).tolist() == [1, 2]
        sess.set_value(i, [3.0, -4.0])  # whole numbers in range: taken
        assert to_numpy(sess.get_value(i)).tolist() == [3, -4]


def test_finite_floats_beyond_a_narrower_float_dtype_are_refused(dev, tmp_path):
    # The casts would make them inf silently; inf and NaN given by the user pass as today.
    beyond = r"a value of magnitude {} \({}\), beyond {}'s range"
    with xn.Graph().as_default() as graph:
        x = xn.placeholder("float32", name="x")
        w = xn.Variable(np.array([1.0, 2.0], np.float32), name="w")
        sess = xn.Session(device=dev)
        before = snapshot(sess, graph)
        for fed in (np.array([1.0, -1e300]), np.array([np.nan, 1e300]), [1e300]):
            with pytest.raises(ValueError, match="placeholder x holds float32 but was fed "
                                                 + beyond.format(r"1e\+300", "float64", "float32")):
                sess.run(x, {x: fed})
        if hasattr(dev.xp, "float16"):  # array-api-strict has none
            h = xn.placeholder("float16", name="h")
            with pytest.raises(ValueError, match="placeholder h holds float16 but was fed "
                                                 + beyond.format("70000", "int64", "float16")):
                sess.run(h, {h: np.array([1, -70000])})
        given = np.array([np.inf, np.nan, -3e38, 1.0])
        np.testing.assert_array_equal(to_numpy(sess.run(x, {x: given})), given.astype(np.float32))
        with pytest.raises(ValueError, match="set_value: Variable w holds float32 but was given "
                                             + beyond.format(r"1e\+300", "float64", "float32")):
            sess.set_value(w, np.array([1e300, 1.0]))
        path = tmp_path / "big.npz"
        xn.io.save_arrays(path, {"w": np.array([1.0, 1e300])})
        with pytest.raises(ValueError, match=r"restore\(.*big\.npz\): Variable w holds float32"):
            sess.restore(path)
        assert_unchanged(sess, before)
        if dev.reads_without_sync:
            on_device = dev.from_host(np.array([1e300, 1.0]), "float64")
            with pytest.raises(ValueError, match="placeholder x holds float32 but was fed"):
                sess.run(x, {x: on_device})


def test_restore_refuses_a_value_its_variable_cannot_hold_and_changes_nothing(dev, tmp_path):
    with xn.Graph().as_default() as graph:
        w = xn.Variable([1.0, 2.0], name="w")
        i = xn.Variable(np.array([1, 2], np.int32), trainable=False, name="i")
        sess = xn.Session(device=dev)
        before = snapshot(sess, graph)
        path = tmp_path / "bad.npz"
        for bad, message in [(np.array([3.7, 1.0]), "fractional"),
                             (np.array([2**40, 1]), "the value 1099511627776")]:
            xn.io.save_arrays(path, {"w": np.array([5.0, 6.0], np.float32), "i": bad})
            with pytest.raises((TypeError, ValueError),
                               match=rf"restore\(.*bad\.npz\): Variable i holds int32 but was "
                                     rf"given {message}"):
                sess.restore(path)
            assert_unchanged(sess, before)  # w, restored before i, too
        xn.io.save_arrays(path, {"w": np.array([5.0, 6.0], np.float32), "i": np.array([7, 8])})
        sess.restore(path)
        assert to_numpy(sess.get_value(i)).tolist() == [7, 8]
        assert to_numpy(sess.get_value(w)).tolist() == [5.0, 6.0]


def test_torch_feeds_carry_no_autograd_history():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3), name="x")
        W = xn.Variable(np.ones((3, 2), np.float32), name="W")
        step = xn.train.MomentumOptimizer(0.01).minimize(xn.reduce_mean(xn.square(x @ W)))
        sess = xn.Session(device="cpu", backend="torch")
        for _ in range(3):
            fed = torch.ones((4, 3), requires_grad=True)
            sess.run(step, {x: fed})
        for value in sess._values.values():
            assert not value.requires_grad and value.grad_fn is None
        assert fed.grad is None


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("units", [[2, 0, 2], [4, -5, 3], [3]])
def test_nnclassifier_refuses_bad_units(units):
    # As scikit-learn's estimators, __init__ stores its arguments; they are checked when the
    # network is built (first use or fit).
    with pytest.raises(ValueError, match=r"units must hold an input size, any hidden sizes "
                                         r"and an output size, each >= 1"):
        xn.nn.NNClassifier(units).get_weights()
    with pytest.raises(TypeError, match="units must be a list of whole numbers"):
        xn.nn.NNClassifier([2, 2.5, 2]).get_weights()


def test_fit_takes_lists_as_scikit_learn_does(dev):
    X, y = xn.data.make_moons(32, noise=0.1, seed=0)
    a = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    b = xn.nn.NNClassifier([2, 4, 2], device=dev, seed=0)
    ha = a.fit(X, y, epochs=2, batch_size=8, verbose=0)
    hb = b.fit(X.tolist(), y.tolist(), epochs=2, batch_size=8, verbose=0)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-6)
    assert a.predict(X.tolist()).tolist() == b.predict(X).tolist()
    assert b.score(X.tolist(), y.tolist()) == a.score(X, y)


def test_assign_refuses_floats_into_an_integer_variable_and_checks_integer_ranges(dev):
    # assign and assign_add truncated 3.7 and wrapped 1e10 and 2**40 into int32 silently.
    with xn.Graph().as_default() as graph:
        w = xn.Variable(np.array([7, 8], np.int32), name="counts", trainable=False)
        v = xn.placeholder(name="v")
        wide = xn.placeholder("int64", name="wide")
        floating = "assign: Variable counts holds int32 but the value .* is float"
        for value in ([3.7, 1.0], np.array([2.0, 1.0]), xn.constant([1.0, 2.0]), 0.5):
            for assign in (xn.assign, xn.assign_add, xn.assign_sub):
                with pytest.raises(TypeError, match=floating):
                    assign(w, value)
        with pytest.raises(ValueError, match="assign: Variable counts holds int32 but was given "
                                             "the value 1099511627776, outside"):
            xn.assign(w, 2**40)
        untyped, narrowing = xn.assign(w, v), xn.assign(w, wide)
        for jit in (True, False):
            sess = xn.Session(device=dev, passes=jit)
            before = snapshot(sess, graph)
            with pytest.raises(ValueError, match=floating):  # known by dtype, no host read
                sess.run(untyped, {v: np.array([3.7, 1e10])})
            if dev.reads_without_sync and not jit:  # a compiled plan cannot read values
                with pytest.raises(ValueError, match="assign: Variable counts holds int32 but "
                                                     "was assigned the value 1099511627776"):
                    sess.run(narrowing, {wide: np.array([2**40, 1])})
            assert_unchanged(sess, before)
            sess.run(narrowing, {wide: np.array([-3, 4])})
            sess.run(xn.assign_add(w, [1, 2]))
            assert to_numpy(sess.run(w)).tolist() == [-2, 6]


# --------------------------------------------------------------------------- build-time checks


def test_group_refuses_values_that_are_not_ops_naming_their_position():
    with xn.Graph().as_default():
        w = xn.Variable([1.0], name="w")
        with pytest.raises(TypeError, match=r"group: input 1 \('x', of type str\)"):
            xn.group([xn.assign(w, [2.0])], "x")
        with pytest.raises(TypeError, match=r"group: input 0 \(1, of type int\)"):
            xn.group(1)


@pytest.mark.parametrize("dtype", ["int32", "bool", np.int64])
def test_session_dtype_must_be_floating(dev, dtype):
    with xn.Graph().as_default(), pytest.raises(ValueError, match=r"float16.*float32.*float64"):
        xn.Session(device=dev, dtype=dtype)


def test_linear_and_conv2d_name_the_layer_when_the_input_does_not_fit():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 5), name="x")
        with pytest.raises(ValueError, match=r"layer 'dense' .*4 features.*\(None, 5\)"):
            xn.nn.Linear(4, 2, name="dense")(x)
        images = xn.placeholder(shape=(None, 6, 6, 3), name="images")
        with pytest.raises(ValueError, match=r"layer 'c1' .*2 channels.*\(None, 6, 6, 3\)"):
            xn.nn.Conv2D(2, 4, 3, name="c1")(images)
        unknown = xn.placeholder(shape=(None, None), name="unknown")
        xn.nn.Linear(4, 2)(unknown)  # the size is checked at run time then
