"""Mixed precision (``Session(precision=...)``, ``xpnn/precision.py``): where the casts go,
dynamic loss scaling, gradients and training against float32, and Adam's epsilon in half."""

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn.precision import POLICIES, ToDtype

HALF_TOLERANCE = {"float16": dict(rtol=2e-2, atol=2e-3), "bfloat16": dict(rtol=6e-2, atol=2e-2)}


def _half_or_skip(dev, precision):
    half = POLICIES[precision]
    if not hasattr(dev.xp, half):
        pytest.skip(f"{dev.backend} has no {half}")
    return half


def _host(value):
    """A fetched value on the host in float32 (NumPy has no bfloat16)."""
    if "bfloat16" in str(value.dtype):
        value = value.float() if hasattr(value, "float") else value.astype("float32")
    return np.asarray(xn.to_numpy(value), dtype=np.float32)


def _mlp(batch_norm=False, seed=0, wrap=True, rate=0.01, **options):
    """x -> Linear(2, 16) [-> BatchNorm] -> relu -> Linear(16, 2) -> mean sparse cross-entropy,
    with a (loss-scaled) Adam step, in the default graph."""
    x = xn.placeholder(shape=(None, 2), name="x")
    y = xn.placeholder("int32", (None,), name="y")
    first, last = xn.nn.Linear(2, 16, seed=seed), xn.nn.Linear(16, 2, seed=seed + 1)
    h = first(x)
    bn = xn.nn.BatchNorm(16) if batch_norm else None
    if bn is not None:
        h = bn(h)
    logits = last(xn.relu(h))
    loss = xn.losses.sparse_softmax_cross_entropy(y, logits)
    adam = xn.train.AdamOptimizer(rate)
    opt = xn.train.LossScaleOptimizer(adam, **options) if wrap else adam
    step = opt.minimize(loss)
    extra = bn.updates() if bn is not None else []
    return dict(x=x, y=y, logits=logits, loss=loss, step=[step, *extra], opt=opt,
                weights=[first.weight, first.bias, last.weight, last.bias])


def _moons(n=200):
    X, y = xn.data.make_moons(n, noise=0.1, seed=0)
    return X, y.astype(np.int32)


def _step_dtypes(sess, fetches, feed):
    """Each value step's op and the dtype of its result, running the compiled plan step by
    step (the portable functions: ``passes=False``)."""
    executor = sess._executor(fetches, feed)
    plan, values = executor.plan, list(executor.plan.template)
    for f in plan.feeds:
        values[f.slot] = sess._feed_value(f.placeholder, feed[f.placeholder])
    for s, v in plan.variables.items():
        values[s] = sess._leaf_value(v)
    out = []
    for step in plan.steps:
        values[step.out] = step.fn(*(values[i] for i in step.inputs))
        if step.kind == "value":
            out.append((step.op, xn.dtypes.dtype_name(values[step.out].dtype)
                        if hasattr(values[step.out], "dtype") else None))
    updates = [[values[s] for s in u.inputs] for u in plan.updates]
    return out, updates


@pytest.mark.parametrize("precision", sorted(POLICIES))
def test_casts_are_placed_as_the_policy_says(dev, precision):
    """Matmuls (forward and backward) and the BatchNorm arithmetic compute in half; the
    cross-entropy, the means (BatchNorm's statistics, the loss) and the unscaled gradients in
    float32; every gradient reaches the update in float32; the graph gets no node."""
    half = _half_or_skip(dev, precision)
    X, y = _moons(32)
    with xn.Graph().as_default() as graph:
        m = _mlp(batch_norm=True)
        n_nodes = len(graph.nodes)
        sess = xn.Session(device=dev, precision=precision, passes=False)
        steps, updates = _step_dtypes(sess, [*m["step"], m["loss"]], {m["x"]: X, m["y"]: y})
        assert len(graph.nodes) == n_nodes
    by_type = {}
    for op, dtype in steps:
        by_type.setdefault(type(op).__name__, set()).add(dtype)
    for name in ("MatMul", "MatMulGradA", "MatMulGradB", "Relu", "ReluGrad"):
        assert by_type[name] == {half}, (name, by_type[name])
    # BatchNorm's 1 / sqrt(variance + eps) stays float32: made from float32 means alone.
    for name in ("SparseSoftmaxCrossEntropy", "SparseSoftmaxCrossEntropyGrad", "ReduceMean",
                 "Sqrt"):
        assert by_type[name] == {"float32"}, (name, by_type[name])
    casts = [op for op, _ in steps if isinstance(op, ToDtype)]
    assert {op.inputs[0].label for op in casts if op.target == half} >= {
        v.label for v in m["weights"][::2]} | {"x"}  # the weights are cast at their reads
    for inputs in updates:
        assert all(xn.dtypes.dtype_name(v.dtype) in ("float32", "int32", "bool")
                   for v in inputs), [v.dtype for v in inputs]
    for passes in (False, True):  # the device's passes keep the dtypes
        with graph.as_default():
            sess = xn.Session(device=dev, precision=precision, passes=passes)
            out = sess.run([m["logits"], m["loss"], *m["weights"]], {m["x"]: X, m["y"]: y})
        assert [str(v.dtype).rpartition(".")[2] for v in out] == [half, *["float32"] * 5]


@pytest.mark.parametrize("precision", sorted(POLICIES))
def test_gradients_equal_the_float32_ones_to_half_tolerance(dev, precision):
    half = _half_or_skip(dev, precision)
    X, y = _moons(64)
    got = {}
    for policy in (None, precision):
        with xn.Graph().as_default():
            m = _mlp(batch_norm=True)
            grads = xn.gradients(m["loss"], m["weights"])
            sess = xn.Session(device=dev, precision=policy)
            got[policy] = [_host(g) for g in sess.run(grads, {m["x"]: X, m["y"]: y})]
    for mixed, single in zip(got[precision], got[None]):
        scale = float(np.abs(single).max())
        np.testing.assert_allclose(mixed, single, rtol=HALF_TOLERANCE[half]["rtol"],
                                   atol=HALF_TOLERANCE[half]["atol"] * max(scale, 1.0))


@pytest.mark.parametrize("precision", sorted(POLICIES))
def test_an_mlp_on_moons_trains_to_the_float32_accuracy(dev, precision):
    _half_or_skip(dev, precision)
    X, y = _moons(200)
    accuracy = {}
    for policy in (None, precision):
        with xn.Graph().as_default():
            m = _mlp(rate=0.05)
            sess = xn.Session(device=dev, precision=policy)
            for _ in range(100):
                sess.run(m["step"], {m["x"]: X, m["y"]: y})
            predicted = _host(sess.run(m["logits"], {m["x"]: X})).argmax(axis=1)
            accuracy[policy] = float((predicted == y).mean())
    assert accuracy[None] > 0.95, accuracy
    assert abs(accuracy[precision] - accuracy[None]) <= 0.02, accuracy


def test_loss_scaling_without_a_policy_steps_as_the_plain_optimizer(dev):
    """Scaling by a power of two and unscaling in float32 changes no number."""
    X, y = _moons(64)
    weights = {}
    for wrap in (False, True):
        with xn.Graph().as_default():
            m = _mlp(wrap=wrap)
            sess = xn.Session(device=dev)
            for _ in range(3):
                sess.run(m["step"], {m["x"]: X, m["y"]: y})
            weights[wrap] = [_host(v) for v in sess.run(m["weights"])]
    for scaled, plain in zip(weights[True], weights[False]):
        np.testing.assert_allclose(scaled, plain, **tolerance("float32"))


def _state(sess, graph):
    return {v.label: _host(sess.run(v)) for v in graph.variables}


@pytest.mark.parametrize("precision", [None, *sorted(POLICIES)])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the NaN step
def test_loss_scale_grows_backs_off_and_skips(dev, precision):
    """growth_interval=2: the scale doubles after every 2 finite steps; a step whose
    gradients are NaN (a NaN fed) changes no weight and no Adam slot, halves the scale and
    starts the count again."""
    if precision is not None:
        _half_or_skip(dev, precision)
    X, y = _moons(32)
    with xn.Graph().as_default() as graph:
        m = _mlp(initial_scale=4.0, growth_interval=2)
        sess = xn.Session(device=dev, precision=precision)
        scales = []
        for _ in range(5):
            sess.run(m["step"], {m["x"]: X, m["y"]: y})
            scales.append(float(_host(sess.run(m["opt"].loss_scale))))
        assert scales == [4.0, 8.0, 8.0, 16.0, 16.0]
        before = _state(sess, graph)
        bad = X.copy()
        bad[3, 1] = np.nan
        sess.run(m["step"], {m["x"]: bad, m["y"]: y})
        after = _state(sess, graph)
        assert after.pop(m["opt"].loss_scale.label) == 8.0
        assert after.pop(m["opt"].good_steps.label) == 0
        for label, value in after.items():  # weights and every Adam slot, bit for bit
            np.testing.assert_array_equal(value, before[label], err_msg=label)
        sess.run(m["step"], {m["x"]: X, m["y"]: y})
        assert not np.array_equal(_host(sess.run(m["weights"][0])),
                                  before[m["weights"][0].label])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the inf step
def test_a_float16_overflow_skips_the_step(dev):
    """The default scale 2**15 grown past float16's range (65504): the scaled gradients are
    inf in float16, the step is skipped and the scale halved."""
    _half_or_skip(dev, "mixed_float16")
    X, y = _moons(32)
    with xn.Graph().as_default() as graph:
        m = _mlp()
        sess = xn.Session(device=dev, precision="mixed_float16")
        sess.set_value(m["opt"].loss_scale, 2.0 ** 30)
        before = _state(sess, graph)
        sess.run(m["step"], {m["x"]: X, m["y"]: y})
        after = _state(sess, graph)
        assert after.pop(m["opt"].loss_scale.label) == 2.0 ** 29
        for label, value in after.items():
            if label != m["opt"].good_steps.label:
                np.testing.assert_array_equal(value, before[label], err_msg=label)


@pytest.mark.parametrize("epsilon", [1e-7, 1e-8])
@pytest.mark.parametrize("how", ["dtype", "precision"])
@pytest.mark.filterwarnings("ignore:.*without loss scaling")
def test_adam_in_float16_takes_a_finite_step(dev, how, epsilon):
    """In float16 epsilon 1e-7 or 1e-8 is 0: a weight with a zero gradient would get 0/0."""
    _half_or_skip(dev, "mixed_float16")
    results = {}
    for kind in ("float32", how):
        with xn.Graph().as_default():
            w = xn.Variable(np.array([1.0, 0.5, -2.0], np.float32), name="w")
            x = xn.placeholder(shape=(3,), name="x")
            loss = xn.reduce_sum(xn.square(w * x))
            step = xn.train.AdamOptimizer(0.01, epsilon=epsilon).minimize(loss)
            options = {"dtype": "float16"} if kind == "dtype" else (
                {"precision": "mixed_float16"} if kind == "precision" else {})
            sess = xn.Session(device=dev, **options)
            sess.run(step, {x: np.array([1.0, 0.0, 1e-3], np.float32)})
            results[kind] = _host(sess.run(w))
    assert np.isfinite(results[how]).all(), results
    np.testing.assert_allclose(results[how], results["float32"], **tolerance("float16"))


def test_an_unscaled_optimizer_under_mixed_float16_warns(dev):
    _half_or_skip(dev, "mixed_float16")
    X, y = _moons(8)
    with xn.Graph().as_default():
        m = _mlp(wrap=False)
        sess = xn.Session(device=dev, precision="mixed_float16")
        with pytest.warns(UserWarning, match="LossScaleOptimizer"):
            sess.run(m["step"], {m["x"]: X, m["y"]: y})


def test_bad_precisions_are_refused_clearly(dev):
    with pytest.raises(ValueError, match="mixed_float16"):
        xn.Session(device=dev, precision="float16")
    with pytest.raises(ValueError, match="give one"):
        xn.Session(device=dev, dtype="float32", precision="mixed_float16")
    for precision, half in POLICIES.items():
        if not hasattr(dev.xp, half):
            with pytest.raises(TypeError, match=f"backend '{dev.backend}' has no {half}"):
                xn.Session(device=dev, precision=precision)


def test_bfloat16_values_come_to_the_host_as_float32(dev):
    """NumPy has no bfloat16: a fetched bfloat16 value comes back as float32 (exactly)."""
    _half_or_skip(dev, "mixed_bfloat16")
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 2), name="x")
        w = xn.Variable(np.array([[1.0], [0.5]], np.float32), name="w")
        y = xn.matmul(x, w)
        sess = xn.Session(device=dev, precision="mixed_bfloat16")
        got = sess.run(y, {x: [[2.0, 4.0]]}, to_numpy=True)
    assert isinstance(got, np.ndarray) and got.astype(np.float32).tolist() == [[4.0]]


def test_a_model_fits_in_mixed_precision(dev):
    """``Model(precision="mixed_float16")``: fit scales the loss (a LossScaleOptimizer
    around the compiled optimizer) and reaches the float32 model's accuracy."""
    _half_or_skip(dev, "mixed_float16")
    X, y = _moons(200)
    accuracy = {}
    for policy in (None, "mixed_float16"):
        with xn.Graph().as_default():
            model = xn.nn.Model([xn.nn.Linear(2, 16, seed=0), xn.nn.ReLU(),
                                 xn.nn.Linear(16, 2, seed=1)], input_shape=(2,), device=dev,
                                precision=policy)
            model.compile(xn.train.AdamOptimizer(0.05), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            history = model.fit(X, y, batch_size=50, epochs=25, verbose=0)
            accuracy[policy] = history.history["accuracy"][-1]
            if policy is not None:  # 2**15, grown by no 2000 finite steps yet (100 here)
                scale = model.graph.get_operation_by_name("loss_scale")
                assert float(_host(model.session.run(scale))) == 2.0 ** 15
    assert accuracy[None] > 0.95, accuracy
    assert abs(accuracy["mixed_float16"] - accuracy[None]) <= 0.02, accuracy
