"""The executor contract: ``Device.compile(plan, session)`` returns an executor with
``run(values)`` and ``commit(values)``; the portable ``Executor`` is the reference, and what
``Session(passes=False)`` gets on every device; compiling leaves the Plan as the portable
compiler made it (no device state hung on it)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xpnn as xn
from xpnn.executor import Executor
from xpnn.plan import Plan, UpdateStep, compile_plan

OPTIMIZERS = {
    "sgd": lambda: xn.train.GradientDescentOptimizer(0.1),
    "momentum": lambda: xn.train.MomentumOptimizer(0.05, 0.9),
    "adam": lambda: xn.train.AdamOptimizer(0.01),
}


def _mlp(optimizer):
    """A two-layer classifier's training step in a new graph: (nodes, feed)."""
    rng = np.random.default_rng(0)
    x = xn.placeholder("float32", (None, 5), name="x")
    labels = xn.placeholder("int64", (None,), name="labels")
    w1 = xn.Variable(rng.standard_normal((5, 4)).astype(np.float32) * 0.5, name="w1")
    b1 = xn.Variable(np.zeros(4, np.float32), name="b1")
    w2 = xn.Variable(rng.standard_normal((4, 3)).astype(np.float32) * 0.5, name="w2")
    loss = xn.losses.sparse_softmax_cross_entropy(labels, xn.relu(x @ w1 + b1) @ w2)
    step = OPTIMIZERS[optimizer]().minimize(loss)
    feed = {x: rng.standard_normal((8, 5)).astype(np.float32), labels: rng.integers(0, 3, 8)}
    return {"step": step, "loss": loss}, feed


def _one_step_by_hand(dev, optimizer, passes):
    """One training step driven through the executor's own ``run`` and ``commit``, as
    ``Session.run`` drives it: (the executor, the loss, every Variable's new value)."""
    with xn.Graph().as_default() as graph:
        nodes, feed = _mlp(optimizer)
        sess = xn.Session(device=dev, passes=passes)
        plan = compile_plan(sess, [nodes["step"], nodes["loss"]], list, feed)
        for s, constant in plan.constants.items():
            plan.template[s] = sess._leaf_value(constant)
        executor = dev.compile(plan, sess) if passes else Executor(plan, sess)
        values = plan.template.copy()
        for f in plan.feeds:
            values[f.slot] = sess._feed_value(f.placeholder, feed[f.placeholder])
        for s, variable in plan.variables.items():
            values[s] = sess._leaf_value(variable)
        executor.run(values)
        loss = xn.to_numpy(values[plan.fetch_slots[1]])
        executor.commit(values)
        new = {v.label: xn.to_numpy(sess.get_value(v)) for v in graph.variables}
    return executor, loss, new


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_devices_executor_runs_and_commits_as_the_portable_one(dev, optimizer):
    """Contract check (new): ``dev.compile``'s executor, run and committed by hand, gives the
    portable executor's loss and new Variable values (every optimizer slot too)."""
    fast, fast_loss, fast_new = _one_step_by_hand(dev, optimizer, passes=True)
    portable, loss, new = _one_step_by_hand(dev, optimizer, passes=False)
    assert type(portable) is Executor and isinstance(fast, Executor)
    np.testing.assert_allclose(fast_loss, loss, rtol=1e-5, atol=1e-6)
    assert sorted(fast_new) == sorted(new)
    for name, value in new.items():
        np.testing.assert_allclose(fast_new[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_passes_off_gets_the_portable_executor_on_every_device(dev, monkeypatch):
    """Contract check (new): ``Session(passes=False)`` and ``$XPNN_PASSES=0`` run the
    portable ``Executor``; the default runs what ``dev.compile`` returns."""
    kinds = {}
    for how in ("off", "environment", "default"):
        monkeypatch.setenv("XPNN_PASSES", "0" if how == "environment" else "1")
        with xn.Graph().as_default():
            nodes, feed = _mlp("momentum")
            sess = xn.Session(device=dev, passes=False if how == "off" else None)
            sess.run(nodes["step"], feed)
            (executor,) = sess._executors.values()
            kinds[how] = type(executor)
            plan = executor.plan
            kinds["compile"] = type(dev.compile(compile_plan(sess, [nodes["step"]], list, feed),
                                                sess))
    assert kinds["off"] is Executor and kinds["environment"] is Executor
    assert kinds["default"] is kinds["compile"]
    assert plan.updates  # the step was compiled, with its update


def test_compiling_hangs_nothing_on_the_plan(dev):
    """The Plan holds the portable plan only: it has no field for a device's program,
    compiler, commit or feed rule, its updates none for being written in place, and a
    device's compile adds no attribute nor slot (JAX's compiled call added one)."""
    names = {f.name for f in dataclasses.fields(Plan)}
    assert not names & {"program", "compiler", "commit", "host_feeds", "copies"}
    assert "in_place" not in {f.name for f in dataclasses.fields(UpdateStep)}
    counts = []
    for passes in (False, True):
        with xn.Graph().as_default():
            nodes, feed = _mlp("adam")
            sess = xn.Session(device=dev, passes=passes)
            sess.run([nodes["step"], nodes["loss"]], feed)
            (plan,) = sess._plans.values()
            assert set(vars(plan)) == names
            assert all(set(vars(update)) == {"op", "inputs", "check_shapes"}
                       for update in plan.updates)
            counts.append((plan.n_slots, len(plan.template)))
    assert counts[0] == counts[1]


def test_a_failed_commit_through_the_executor_changes_no_variable(dev):
    """The Session checks, then calls ``executor.commit``: a NaN in a new value under
    ``check_numerics`` fails the run with the update named, and no Variable changes, on
    every device (the in-place updates are off there, every update portable)."""
    with xn.Graph().as_default():
        w = xn.Variable(np.array([1.0, 2.0], np.float32), name="w")
        v = xn.Variable(np.array([3.0], np.float32), name="v")
        rate = xn.placeholder("float32", (), name="rate")
        loss = xn.reduce_sum(w * w) + xn.reduce_sum(v)
        step = xn.train.GradientDescentOptimizer(rate).minimize(loss)
        sess = xn.Session(device=dev, check_numerics=True)
        sess.run(step, {rate: 0.1})
        before = [xn.to_numpy(sess.run(x)) for x in (w, v)]
        with pytest.raises(xn.NumericsError, match="new value of Variable"):
            sess.run(step, {rate: np.inf})
        executor = next(e for e in sess._executors.values() if e.plan.updates)
        assert not executor.in_place
        for x, old in zip((w, v), before):
            np.testing.assert_array_equal(xn.to_numpy(sess.run(x)), old)


# --------------------------------------------------------------------------- the update table


@pytest.mark.parametrize("folder", ["numpy", "cupy", "torch"])
def test_every_device_folder_supplies_only_its_formulas_to_the_one_update_table(folder):
    """Contract check (new): the NumPy, torch and CuPy update tables are ``passes``'
    ``UpdateTable`` (which chooses and commits), one formula per optimizer class."""
    import importlib

    from xpnn import passes

    if folder == "torch":
        pytest.importorskip("torch", reason="torch is not installed")
    table = importlib.import_module(f"xpnn.devices.{folder}.updates").UPDATES
    assert type(table) is passes.UpdateTable
    assert set(table) == {xn.train.GradientDescentOptimizer, xn.train.MomentumOptimizer,
                          xn.train.AdamOptimizer}


def test_the_update_table_chooses_and_commits_in_order_within_around():
    """Contract check (new): ``UpdateTable.choose`` leaves out a rate that is a node, a
    gradient that is a Variable, and everything under check_numerics; ``commit`` applies
    the chosen updates' formulas in order, inside ``around``, with the arguments asked for."""
    from xpnn import passes

    with xn.Graph().as_default():
        w = xn.Variable(np.ones(2, np.float32), name="w")
        u = xn.Variable(np.ones(2, np.float32), name="u")
        rate = xn.placeholder("float32", (), name="rate")
        steps = [
            xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(w * w), var_list=[w]),
            xn.train.AdamOptimizer(rate).minimize(xn.reduce_sum(u * u), var_list=[u]),
            xn.train.GradientDescentOptimizer(0.1).apply_gradients([(w, u)]),
            xn.train.MomentumOptimizer(0.1, 0.9).minimize(xn.reduce_sum(u * w), var_list=[u]),
        ]
        table = passes.UpdateTable(dict.fromkeys(
            [xn.train.AdamOptimizer, xn.train.MomentumOptimizer,
             xn.train.GradientDescentOptimizer]))
        chosen = {}
        for check_numerics in (False, True):
            sess = xn.Session(passes=False, check_numerics=check_numerics)
            for step in steps:
                sess.run(step, {rate: 0.1})
            plans = [e.plan for e in sess._executors.values()]
            chosen[check_numerics] = [table.choose(p, passes.live_slots(p), sess) for p in plans]
    assert [len(c) for c in chosen[False]] == [1, 0, 0, 1]
    assert not any(chosen[True])
    picked = [chosen[False][0][0], chosen[False][3][0]]
    calls, depth = [], [0]

    class Around:
        def __enter__(self):
            depth[0] += 1

        def __exit__(self, *exc):
            depth[0] -= 1

    def apply(optimizer, values, *args):
        calls.append((type(optimizer).__name__, values, args, depth[0]))

    table.commit(picked, apply)("values")
    assert calls == [("AdamOptimizer", "values", (picked[0].groups(),), 0),
                     ("MomentumOptimizer", "values", (picked[1].groups(),), 0)]
    calls.clear()
    table.commit(picked, apply, arguments=lambda update: (len(update.inputs), "x"),
                 around=Around)("values")
    assert [c[2:] for c in calls] == [((len(p.inputs), "x"), 1) for p in picked]
    assert depth[0] == 0


def test_an_updates_groups_are_the_optimizers_pairs_over_the_plans_slots():
    """One dataclass says where a Variable's gradient, value and slots sit: the optimizer's
    ``Pair`` of input positions, and the same ``Pair`` of plan slots (there was a second,
    ``plan.SlotGroup``)."""
    from xpnn import optimizers, plan

    with xn.Graph().as_default():
        w = xn.Variable(np.ones(2, np.float32), name="w")
        step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(w * w))
        sess = xn.Session(passes=False)
        sess.run(step)
    (update,) = next(iter(sess._plans.values())).updates
    (pair,) = step.pairs
    (group,) = update.groups()
    assert type(pair) is type(group) is optimizers.Pair and not hasattr(plan, "SlotGroup")
    assert group == optimizers.Pair(update.inputs[pair.gradient], update.inputs[pair.variable],
                                    tuple(update.inputs[k] for k in pair.slots))


# --------------------------------------------------------------------------- freshness


def test_one_freshness_rule_tells_the_values_that_may_view_a_variable():
    """The portable plan and the NumPy passes ask one rule (``plan.fresh``) which results
    may be (views of) a Variable: an op that says its result is new (``abs``, which has no
    NumPy kernel) gives no view, a reshape may. So the NumPy device updates in place where
    the gradient is such a new array, as the torch and CuPy passes did already."""
    from xpnn import passes
    from xpnn.devices.numpy import ownership

    with xn.Graph().as_default():
        w1 = xn.Variable(np.ones(2, np.float32), name="w1")
        w2 = xn.Variable(np.array([-1.0, 2.0], np.float32), name="w2")
        opt = xn.train.GradientDescentOptimizer(0.5)
        new_array = opt.apply_gradients([(xn.abs(w2), w1)])
        view = opt.apply_gradients([(xn.reshape(w2, (2,)), w1)])
        sess, portable = xn.Session(), xn.Session(passes=False)
        for step in (new_array, view):
            for s in (sess, portable):
                s.run(step)
        in_place = [bool(e.in_place) for e in sess._executors.values()]
        for executor in sess._executors.values():
            plan = executor.plan
            assert ownership.Facts(plan).live == passes.live_slots(plan)
        np.testing.assert_array_equal(sess.run(w1), portable.run(w1))
    assert in_place == [True, False]


def test_the_cupy_adam_formula_reads_its_rate_without_building_an_optimizer():
    """``formulas.adam`` is passed the rate; it built an ``AdamOptimizer()`` at import only
    to call ``adam_step_size``, which now takes the rate itself. Same numbers as the rule."""
    from xpnn import optimizers
    from xpnn.devices.cupy import formulas

    assert not [name for name, value in vars(formulas).items()
                if isinstance(value, optimizers.Optimizer)]
    opt = xn.train.AdamOptimizer(0.25)
    b1, c1, b2, c2 = optimizers.beta_coefficients(opt.beta1, opt.beta2, "float64")
    param, m, v, grad = (np.array([x]) for x in (1.0, 0.5, 0.25, -2.0))
    powers = np.array(0.9), np.array(0.999)
    got = formulas.adam(np, param, m, v, grad, *powers, 0.25, b1, c1, b2, c2, opt.epsilon)
    want = opt.update(np, param, grad, m, v, *powers)[:3]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-15)
