"""The sequence ops of issue 26 beyond the op-case table: gradients against torch.autograd
(repeated gather indices, scatter_nd, einsum, masked softmax...), the gather gradient's
memory (a segment sum, no (k, n) one-hot), the device scatter-add kernels against the
portable path, and the errors on bad input."""

from __future__ import annotations

import importlib
import tracemalloc

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn.ops import indexing

SCATTERS = [indexing.GatherGrad, indexing.UnsortedSegmentSum, indexing.ScatterNd,
            indexing.GatherNdGrad, indexing.TopKValuesGrad]


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: no torch.autograd "
                               "reference (pip install torch)")


def _grads(dev, build, arrays, weights_seed=7):
    """(value, gradients) of sum(build(*inputs) * R) in float64 on ``dev``."""
    with xn.Graph().as_default():
        phs = [xn.placeholder(shape=a.shape, name=f"in{i}") for i, a in enumerate(arrays)]
        out = build(*phs)
        r = np.random.default_rng(weights_seed).standard_normal(tuple(out.shape))
        loss = xn.reduce_sum(out * xn.constant(r))
        fetched = xn.Session(device=dev, dtype="float64").run(
            [out] + xn.gradients(loss, phs), dict(zip(phs, arrays)), to_numpy=True)
    return fetched[0], fetched[1:], r


def _torch_grads(build, arrays, r):
    torch = _torch()
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = build(torch, *tensors)
    (out * torch.tensor(r)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def _mask(torch, rows):
    return torch.tensor(np.array(rows))


TORCH_CASES = {
    "gather-repeated": (
        lambda p: xn.gather(p, [[4, 0, 4], [4, 1, 4]]),
        lambda torch, p: p[torch.tensor([[4, 0, 4], [4, 1, 4]])], [(5, 3)]),
    "gather-repeated-axis1": (
        lambda p: xn.gather(p, [2, 2, 0, 2], axis=1),
        lambda torch, p: p[:, torch.tensor([2, 2, 0, 2])], [(2, 3, 4)]),
    "embedding_lookup": (
        lambda p: xn.embedding_lookup(p, [[1, 1], [0, 1]]),
        lambda torch, p: torch.nn.functional.embedding(torch.tensor([[1, 1], [0, 1]]), p),
        [(3, 4)]),
    "scatter_nd-duplicates": (
        lambda u: xn.scatter_nd([[0, 1], [2, 0], [0, 1]], u, [3, 2, 4]),
        lambda torch, u: torch.zeros(3, 2, 4, dtype=u.dtype).index_put(
            (torch.tensor([0, 2, 0]), torch.tensor([1, 0, 1])), u, accumulate=True),
        [(3, 4)]),
    "gather_nd": (
        lambda p: xn.gather_nd(p, [[1, 0], [1, 0], [2, 1]]),
        lambda torch, p: p[torch.tensor([1, 1, 2]), torch.tensor([0, 0, 1])], [(3, 2, 4)]),
    "unsorted_segment_sum": (
        lambda d: xn.unsorted_segment_sum(d, [1, -1, 1, 0], 3),
        lambda torch, d: torch.zeros(3, 2, dtype=d.dtype).index_add(
            0, torch.tensor([1, 1, 0]), d[torch.tensor([0, 2, 3])]), [(4, 2)]),
    "einsum-scores": (
        lambda q, k: xn.einsum("bhqd,bhkd->bhqk", q, k),
        lambda torch, q, k: torch.einsum("bhqd,bhkd->bhqk", q, k), [(2, 2, 3, 4), (2, 2, 5, 4)]),
    "einsum-values": (
        lambda p, v: xn.einsum("bqk,bkd->bqd", p, v),
        lambda torch, p, v: torch.einsum("bqk,bkd->bqd", p, v), [(2, 3, 4), (2, 4, 5)]),
    "einsum-3-operands": (
        lambda a, b, c: xn.einsum("ij,jk,kl->il", a, b, c),
        lambda torch, a, b, c: torch.einsum("ij,jk,kl->il", a, b, c), [(2, 3), (3, 4), (4, 2)]),
    "tensordot": (
        lambda a, b: xn.tensordot(a, b, [[2, 0], [0, 1]]),
        lambda torch, a, b: torch.tensordot(a, b, [[2, 0], [0, 1]]), [(2, 3, 4), (4, 2, 5)]),
    "masked_softmax-padding": (
        lambda x: xn.masked_softmax(x, [[[True, True, False, False]], [[True, False, True, True]]]),
        lambda torch, x: torch.softmax(x.masked_fill(~_mask(torch, [
            [[True, True, False, False]], [[True, False, True, True]]]), -float("inf")), -1),
        [(2, 3, 4)]),
    "cumsum-exclusive-reverse": (
        lambda x: xn.cumsum(x, axis=1, exclusive=True, reverse=True),
        lambda torch, x: torch.flip(torch.cumsum(torch.flip(x, [1]), 1), [1]) - x, [(3, 4)]),
    "top_k-values": (
        lambda x: xn.top_k(x, 3)[0],
        lambda torch, x: torch.topk(x, 3).values, [(2, 6)]),
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_gradients_match_torch_autograd(dev, name):
    build, build_torch, shapes = TORCH_CASES[name]
    rng = np.random.default_rng(3)
    arrays = [rng.permutation(int(np.prod(s))).reshape(s) * 0.1 - 0.7 if "top_k" in name
              else rng.standard_normal(s) for s in shapes]
    value, grads, r = _grads(dev, build, arrays)
    expected, expected_grads = _torch_grads(build_torch, arrays, r)
    np.testing.assert_allclose(value, expected, **tolerance("float64"))
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g, e, **tolerance("float64"))


def test_masked_softmax_gives_zeros_not_nan_for_a_row_with_nothing_kept(dev):
    """torch's masked_fill(-inf) + softmax gives NaN there, and NaN gradients."""
    logits = np.array([[1.0, np.nan, -np.inf], [2.0, 1.0, 0.0]])  # masked NaN/-inf ignored
    mask = np.array([[True, False, False], [False, False, False]])
    value, (grad,), _ = _grads(dev, lambda x: xn.masked_softmax(x, mask), [logits])
    np.testing.assert_array_equal(value, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(grad, np.zeros((2, 3)))


# --------------------------------------------------------------------------- memory


@pytest.mark.backends("numpy", "array_api_strict")
@pytest.mark.parametrize("passes", [True, False], ids=["kernels", "portable"])
def test_gather_gradient_builds_no_one_hot(dev, passes):
    """1000 ids into 20000 rows: a (k, n) one-hot would be 80 MB of float32 (the old
    GatherGrad's); the segment sum needs the rows, the ids and the gradient only."""
    k, n, m = 1000, 20000, 2
    ids = np.random.default_rng(0).integers(0, n, k)
    with xn.Graph().as_default():
        table = xn.placeholder("float32", (n, m), name="table")
        (grad,) = xn.gradients(xn.reduce_sum(xn.gather(table, ids)), [table])
        sess = xn.Session(device=dev, passes=passes)
        feed = {table: np.ones((n, m), np.float32)}
        tracemalloc.start()
        try:
            out = sess.run(grad, feed, to_numpy=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    np.testing.assert_array_equal(out[:, 0], np.bincount(ids, minlength=n))
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB traced: a (k, n) one-hot?"


# --------------------------------------------------------------------------- device kernels


KERNEL_CASES = {
    "gather-axis1-dense": (lambda p: xn.gather(p, [[0, 2], [2, 2]], axis=1), [(4, 3, 2)]),
    "embedding-sparse": (lambda p: xn.gather(p, [7, 1, 7, 30]), [(40, 3)]),
    "segments-dropped": (lambda d: xn.unsorted_segment_sum(d, [[1, -1, 3], [1, 5, -2]], 6),
                         [(2, 3, 2)]),
    "scatter_nd": (lambda u: xn.scatter_nd([[1], [0], [1], [1]], u, [3, 2]), [(4, 2)]),
    "gather_nd": (lambda p: xn.gather_nd(p, [[[0, 1]], [[2, 0]], [[0, 1]]]), [(3, 2, 2)]),
    "top_k": (lambda x: xn.top_k(x, 2)[0], [(3, 5)]),
}


@pytest.mark.parametrize("name", list(KERNEL_CASES))
def test_device_scatter_add_kernels_equal_the_portable_path(dev, name):
    build, shapes = KERNEL_CASES[name]
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    with xn.Graph().as_default():
        phs = [xn.placeholder("float32", a.shape) for a in arrays]
        out = build(*phs)
        loss = xn.reduce_sum(out * xn.constant(rng.standard_normal(tuple(out.shape))))
        fetches = [out] + xn.gradients(loss, phs)
        feed = dict(zip(phs, arrays))
        fast = xn.Session(device=dev).run(fetches, feed, to_numpy=True)
        portable = xn.Session(device=dev, passes=False).run(fetches, feed, to_numpy=True)
    for a, b in zip(fast, portable):
        np.testing.assert_allclose(a, b, **tolerance("float32"))


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_each_scatter_op_has_a_device_kernel(backend):
    """The kernels compared above are the ones the devices run (not the portable path)."""
    if backend != "numpy":
        pytest.importorskip(backend, reason=f"{backend} is not installed")
    importlib.import_module(f"xpnn.devices.{backend}.indexing")
    table = importlib.import_module(f"xpnn.devices.{backend}.kernels").FORWARD
    assert all(cls in table for cls in SCATTERS)


@pytest.mark.backends("numpy")
def test_numpy_segment_sum_of_integers_and_both_routes():
    """bincount (floats, few segments) and sort + add.reduceat (many segments, integers)
    against the portable segment sum."""
    import array_api_compat.numpy as xp

    from xpnn.devices.numpy.indexing import add_rows

    rng = np.random.default_rng(2)
    for dtype, n in [("float64", 3), ("float32", 500), ("int32", 4), ("int64", 300)]:
        rows = (rng.standard_normal((40, 3)) * 100).astype(dtype)
        ids = rng.integers(-2, n + 2, 40)
        expected = indexing.segment_sum(xp, rows, ids, n)
        np.testing.assert_allclose(add_rows(xp, rows, ids, n), expected, rtol=1e-5)
        assert add_rows(xp, rows, ids, n).dtype == rows.dtype


# --------------------------------------------------------------------------- other values


def test_embedding_lookup_max_norm_and_int32_ids(dev):
    table = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 2.0]])
    with xn.Graph().as_default():
        ids = xn.placeholder("int32", (2, 2))
        params = xn.placeholder("float64", (3, 2))
        rows = xn.embedding_lookup(params, ids, max_norm=1.0)
        feed = {ids: np.array([[0, 1], [2, 0]], np.int32), params: table}
        out = xn.Session(device=dev, dtype="float64").run(rows, feed, to_numpy=True)
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    expected = (table * np.minimum(1.0, 1.0 / norms))[[[0, 1], [2, 0]]]
    np.testing.assert_allclose(out, expected, **tolerance("float64"))


def test_sequence_mask_and_top_k_indices(dev):
    with xn.Graph().as_default():
        lengths = xn.placeholder("int32", (3,))
        x = xn.placeholder("float32", (2, 4))
        values, indices = xn.top_k(x, 2)
        fetches = [xn.sequence_mask(lengths, 4), xn.sequence_mask(lengths, dtype="float32"),
                   indices]
        feed = {lengths: np.array([2, 0, 3], np.int32),
                x: np.array([[1.0, 5.0, 5.0, 0.0], [-1.0, -3.0, -2.0, -1.0]], np.float32)}
        mask, floats, top = xn.Session(device=dev).run(fetches, feed, to_numpy=True)
    expected = np.arange(4) < np.array([[2], [0], [3]])
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(floats, expected[:, :3])  # JAX: the plan runs eagerly
    assert top.dtype == np.int32 and indices.dtype == "int32"
    np.testing.assert_array_equal(top, [[1, 2], [0, 3]])  # ties to the lower index


# --------------------------------------------------------------------------- bad input


BUILD_ERRORS = [
    (lambda: xn.gather([[1.0, 2.0]], xn.constant([0.0])), TypeError, "indices must be integers"),
    (lambda: xn.unsorted_segment_sum(np.ones((3, 2)), [0, 1], 2), ValueError,
     r"must start with the shape of segment_ids, \(2,\)"),
    (lambda: xn.unsorted_segment_sum(np.ones(2), [0, 1], xn.constant(2)), TypeError,
     "num_segments must be a Python int"),
    (lambda: xn.scatter_nd([[0], [1]], np.ones((3, 2)), [4, 2]), ValueError,
     r"updates must have shape indices.shape\[:-1\] \+ shape\[1:\] = \(2, 2\)"),
    (lambda: xn.gather_nd(np.ones((2, 2)), [[0, 1, 0]]), ValueError,
     "index tuples of length 3 into an array of rank 2"),
    (lambda: xn.einsum("ij,jk->ik", np.ones((2, 3))), ValueError, "names 2 operands, 1 given"),
    (lambda: xn.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((4, 2))), ValueError,
     "axis 'j' is 3 in one operand and 4 in another"),
    (lambda: xn.einsum("...ij->ij", np.ones((2, 3))), NotImplementedError, "name every axis"),
    (lambda: xn.einsum("ii->i", np.ones((2, 2))), NotImplementedError, "a diagonal"),
    (lambda: xn.tensordot(np.ones((2, 3)), np.ones((4, 2)), 3), ValueError, "at most"),
    (lambda: xn.top_k(np.ones((2, 3)), 4), ValueError, "needs at least k entries"),
    (lambda: xn.cumsum(np.ones((2, 3)), axis=2), ValueError, "axis 2 is out of range"),
    (lambda: xn.sequence_mask(xn.constant([1.5])), TypeError, "lengths must be integers"),
    (lambda: xn.masked_softmax(np.ones((2, 3)), np.ones((2, 2), bool)), ValueError,
     r"mask of shape \(2, 2\) does not broadcast to the logits' shape \(2, 3\)"),
    (lambda: xn.embedding_lookup([np.ones((2, 3)), np.ones((2, 3))], [0]), NotImplementedError,
     "concatenate the partitions"),
]


@pytest.mark.parametrize("build, error, match", BUILD_ERRORS)
def test_bad_input_is_refused_when_the_graph_is_built(build, error, match):
    with xn.Graph().as_default(), pytest.raises(error, match=match):
        build()


RUN_ERRORS = [
    (lambda p, i: xn.gather(p, i), r"indices into axis 0 of params \(3, 2\) must lie in "
     r"\[0, 3\), got 3"),
    (lambda p, i: xn.unsorted_segment_sum(p, i, 3), r"segment_ids .* must lie below 3, got 3"),
    (lambda p, i: xn.gather_nd(p, i[:, None]), r"coordinate 0 of the indices .* must lie in "
     r"\[0, 3\), got 3"),
    (lambda p, i: xn.scatter_nd(i[:, None], p, [3, 2]), r"must lie in \[0, 3\), got 3"),
]


@pytest.mark.backends("numpy", "array_api_strict", "torch")
@pytest.mark.parametrize("build, match", RUN_ERRORS)
def test_out_of_range_indices_fail_the_step_and_change_no_variable(dev, build, match):
    with xn.Graph().as_default():
        params = xn.Variable(np.ones((3, 2), np.float32), name="params")
        ids = xn.placeholder("int64", (3,), name="ids")
        loss = xn.reduce_sum(build(params, ids))
        step = xn.train.GradientDescentOptimizer(0.5).minimize(loss)
        sess = xn.Session(device=dev)
        with pytest.raises(ValueError, match=match):
            sess.run(step, {ids: np.array([0, 3, 1])})
        np.testing.assert_array_equal(sess.run(params, to_numpy=True), np.ones((3, 2)))
        sess.run(step, {ids: np.array([0, 2, 1])})  # good ids still train
        assert not np.array_equal(sess.run(params, to_numpy=True), np.ones((3, 2)))


@pytest.mark.backends("jax")
def test_out_of_range_indices_in_a_jax_step_gather_zeros_and_scatter_nothing(dev):
    """Inside the compiled step the ids cannot be read: TF1's GPU rules."""
    with xn.Graph().as_default():
        params = xn.placeholder("float32", (3, 2))
        ids = xn.placeholder("int64", (3,))
        rows = xn.gather(params, ids)
        (grad,) = xn.gradients(xn.reduce_sum(rows), [params])
        feed = {params: np.ones((3, 2), np.float32), ids: np.array([0, 3, 0])}
        value, g = xn.Session(device=dev).run([rows, grad], feed, to_numpy=True)
    np.testing.assert_array_equal(value, [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(g, [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]])


# --------------------------------------------------------------------------- TF1's names


def test_tf1_names_and_signatures(on):
    import xpnn.compat.v1 as tf

    x = tf.constant([[1.0, 3.0, 2.0], [4.0, 0.0, 5.0]])
    values, indices = tf.nn.top_k(x, k=2)
    table = tf.constant([[3.0, 4.0], [0.0, 0.5]])
    fetches = [
        tf.cumsum(x, axis=1, exclusive=True), tf.math.cumsum(x, reverse=True),
        values, indices, tf.einsum("ij,kj->ik", x, x), tf.tensordot(x, x, [[1], [1]]),
        tf.gather_nd(x, [[1, 2], [0, 0]]), tf.scatter_nd([[1], [1]], [2.0, 5.0], [3]),
        tf.unsorted_segment_sum(x, [1, 1], num_segments=2),
        tf.math.unsorted_segment_sum(x, [0, -1], 2),
        tf.sequence_mask([1, 2], maxlen=3, dtype=tf.float32),
        tf.nn.embedding_lookup(table, [0, 1, 0], max_norm=1.0),  # TF1 clips each row
        tf.nn.embedding_lookup([table], [1]),
    ]
    out = tf.Session().run(fetches)
    a = np.array([[1.0, 3.0, 2.0], [4.0, 0.0, 5.0]])
    expected = [
        np.cumsum(a, 1) - a, np.flip(np.cumsum(np.flip(a, 0), 0), 0), [[3, 2], [5, 4]],
        [[1, 2], [2, 0]], a @ a.T, a @ a.T, [5.0, 1.0], [0.0, 7.0, 0.0],
        [[0.0, 0.0, 0.0], a.sum(0)], [a[0], [0.0, 0.0, 0.0]], [[1, 0, 0], [1, 1, 0]],
        [[0.6, 0.8], [0.0, 0.5], [0.6, 0.8]], [[0.0, 0.5]],
    ]
    for got, want in zip(out, expected):
        np.testing.assert_allclose(xn.to_numpy(got), want, rtol=1e-6)
    assert xn.to_numpy(out[3]).dtype == np.int32


def test_indexing_by_an_integer_node_gathers_a_row(dev):
    values = np.arange(12.0).reshape(4, 3)
    with xn.Graph().as_default():
        x = xn.Variable(values, dtype="float64")
        i = xn.placeholder("int32", (), name="i")
        row = x[i]
        dx, = xn.gradients(xn.reduce_sum(row * row), [x])
        got, grad = xn.Session(device=dev, dtype="float64").run([row, dx], {i: 2},
                                                                to_numpy=True)
    np.testing.assert_array_equal(got, values[2])
    want = np.zeros_like(values)
    want[2] = 2 * values[2]
    np.testing.assert_allclose(grad, want, **tolerance("float64"))
    assert row.shape == (3,)
