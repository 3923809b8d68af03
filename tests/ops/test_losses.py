"""Losses: composed and fused twins agree, the fused ones stay finite where the composed one
overflows, BCE matches PyTorch at p = 0 and 1, every reduction, gradients vs finite
differences."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

LOSSES = xn.losses

# Two rows of logits with known cross-entropies, targets one-hot.
LOGITS = np.array([[2.0, -1.0, 0.5], [0.3, 0.1, -2.0], [-1.0, 1.5, 1.0], [0.0, 0.0, 0.0]])
LABELS = np.array([0, 2, 1, 1])
ONE_HOT = np.eye(3)[LABELS]


def np_log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_softmax(z):
    return np.exp(np_log_softmax(z))


def np_reduce(per_sample, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](per_sample)


def run(dev, fetches, feed=None, dtype=None):
    return xn.Session(device=dev, dtype=dtype).run(fetches, feed, to_numpy=True)


# --------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_composed_fused_and_sparse_cross_entropy_agree(dev, reduction):
    expected_rows = -(ONE_HOT * np_log_softmax(LOGITS)).sum(axis=1)
    expected_grad = (np_softmax(LOGITS) - ONE_HOT) * (
        1.0 / len(LABELS) if reduction == "mean" else 1.0
    )
    with xn.Graph().as_default():
        z = xn.placeholder(name="z")
        c = xn.placeholder(name="c")
        labels = xn.placeholder(dtype="int64", name="labels")
        losses = [
            LOSSES.cross_entropy(c, xn.softmax(z), reduction=reduction),
            LOSSES.softmax_cross_entropy(c, z, reduction=reduction),
            LOSSES.sparse_softmax_cross_entropy(labels, z, reduction=reduction),
            LOSSES.sparse_softmax_cross_entropy(LABELS, z, reduction=reduction),  # host labels
        ]
        # "none": a per-sample vector; seed its gradient with ones like the sum
        grads = [xn.gradients(loss, [z])[0] for loss in losses]
        feed = {z: LOGITS, c: ONE_HOT, labels: LABELS}
        values = run(dev, losses + grads, feed, dtype="float64")
        for loss in losses:
            weighted = loss * xn.constant([1.0, -2.0, 0.5, 3.0]) if reduction == "none" else loss
            xn.gradcheck(xn.reduce_sum(weighted), [z], feed, device=dev)
    for v in values[:4]:
        np.testing.assert_allclose(v, np_reduce(expected_rows, reduction), rtol=1e-12)
    for g in values[4:]:
        np.testing.assert_allclose(g, expected_grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_the_series_formula(dev):
    """J = -sum(sum(c * log p, axis=1)) on probabilities, as lesson 2 writes it."""
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    c = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with xn.Graph().as_default():
        P = xn.placeholder(name="p")
        J = LOSSES.cross_entropy(c, P)
        J_mean = LOSSES.cross_entropy(c, P, reduction="mean")
        (g,) = xn.gradients(J, [P])
        out = run(dev, [J, J_mean, g], {P: p}, dtype="float64")
    np.testing.assert_allclose(out[0], -(np.log(0.7) + np.log(0.8)), rtol=1e-14)
    np.testing.assert_allclose(out[1], -(np.log(0.7) + np.log(0.8)) / 2, rtol=1e-14)
    np.testing.assert_allclose(out[2], -c / p, rtol=1e-14)


def test_soft_labels_and_their_gradient(dev):
    """softmax_cross_entropy takes probability rows (not only one-hot), and gives a gradient
    for the labels too."""
    rng = np.random.default_rng(0)
    soft = np_softmax(rng.standard_normal((3, 4)))
    z0 = rng.standard_normal((3, 4)) * 3
    with xn.Graph().as_default():
        z, c = xn.placeholder(name="z"), xn.placeholder(name="c")
        loss = LOSSES.softmax_cross_entropy(c, z, reduction="none")
        value = run(dev, loss, {z: z0, c: soft}, dtype="float64")
        np.testing.assert_allclose(value, -(soft * np_log_softmax(z0)).sum(1), rtol=1e-12)
        weighted = xn.reduce_sum(loss * xn.constant([1.0, -2.0, 0.5]))
        xn.gradcheck(weighted, [z, c], {z: z0, c: soft}, device=dev)
        # labels scaled by 2 (rows summing to 2): gradient is 2 softmax - labels
        (g,) = xn.gradients(xn.reduce_sum(loss), [z])
        np.testing.assert_allclose(run(dev, g, {z: z0, c: 2 * soft}, dtype="float64"),
                                   2 * np_softmax(z0) - 2 * soft, rtol=1e-12, atol=1e-15)


def test_fused_losses_are_finite_for_huge_logits(dev):
    z0 = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [5e3, 5e3, -1e4]])
    labels0 = np.array([1, 1, 0])
    c0 = np.eye(3)[labels0]
    with xn.Graph().as_default():
        z, c = xn.placeholder(name="z"), xn.placeholder(name="c")
        labels = xn.placeholder(dtype="int64", name="labels")
        fused = LOSSES.softmax_cross_entropy(c, z, reduction="none")
        sparse = LOSSES.sparse_softmax_cross_entropy(labels, z, reduction="none")
        composed = LOSSES.cross_entropy(c, xn.softmax(z), reduction="none")
        fetches = [fused, sparse, xn.gradients(xn.reduce_sum(fused), [z])[0],
                   xn.gradients(xn.reduce_sum(sparse), [z])[0]]
        feed = {z: z0, c: c0, labels: labels0}
        with np.errstate(all="ignore"):
            comp = run(dev, composed, feed)
        assert not np.all(np.isfinite(comp))  # the composed twin overflows: the point of fusing
        for dtype, atol in ((None, 1e-3), ("float64", 1e-9)):  # float32 spacing at 5e3: 5e-4
            with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                out = run(dev, fetches, feed, dtype=dtype)
            assert all(np.all(np.isfinite(o)) for o in out)
            np.testing.assert_allclose(out[0], [2e4, 0.0, np.log(2.0)], rtol=1e-6, atol=atol)
            np.testing.assert_allclose(out[1], out[0], rtol=1e-6, atol=atol)
            probs = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.5, 0.5, 0]])
            np.testing.assert_allclose(out[2], probs - c0, atol=1e-6)
            np.testing.assert_allclose(out[3], probs - c0, atol=1e-6)


def test_softmax_family_finite_for_huge_logits(dev):
    z0 = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]])
    with xn.Graph().as_default():
        z = xn.placeholder(name="z")
        fetches = [xn.softmax(z), xn.log_softmax(z), xn.logsumexp(z, axis=1),
                   xn.logsumexp(z), xn.softmax(z, axis=0)]
        fetches += xn.gradients(xn.reduce_sum(xn.logsumexp(z, axis=1)), [z])
        fetches += xn.gradients(xn.reduce_sum(xn.log_softmax(z) * np.eye(3)), [z])
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            out = run(dev, fetches, {z: z0}, dtype="float64")
    third = np.full(3, 1 / 3)
    soft = np.array([[1.0, 0.0, 0.0], third, third])
    np.testing.assert_allclose(out[0], soft, rtol=1e-12)
    np.testing.assert_allclose(out[1], [[0.0, -2e4, -1e4], -np.log(3) * np.ones(3),
                                        -np.log(3) * np.ones(3)], rtol=1e-12)
    np.testing.assert_allclose(out[2], [1e4, 1e4 + np.log(3), -1e4 + np.log(3)], rtol=1e-12)
    np.testing.assert_allclose(out[3], 1e4 + np.log(4), rtol=1e-12)  # four entries at 1e4
    np.testing.assert_allclose(out[4], [[0.5, 0, 0], [0.5, 1.0, 1.0], [0, 0, 0]], rtol=1e-12)
    np.testing.assert_allclose(out[5], soft, rtol=1e-12)
    np.testing.assert_allclose(out[6], np.eye(3) - soft, rtol=1e-12, atol=1e-15)


def test_sparse_labels_as_host_list_keep_integers(dev):
    with xn.Graph().as_default():
        loss = LOSSES.sparse_softmax_cross_entropy([0, 1], [[2.0, 0.0], [0.0, 2.0]])
        value = run(dev, loss)
    np.testing.assert_allclose(value, np.log1p(np.exp(-2.0)), rtol=1e-6)


# --------------------------------------------------------------------------- binary


P_EDGE = np.array([0.0, 1.0, 0.0, 1.0, 0.3, 0.9])
Y_EDGE = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
# PyTorch's BCELoss (logs clamped at -100), worked by hand
BCE_EDGE = np.array([100.0, 100.0, 0.0, 0.0, -np.log(0.3), -np.log(0.1)])
# PyTorch's grad: (p - y) / max(p (1 - p), 1e-12)
BCE_EDGE_GRAD = np.array([-1e12, 1e12, 0.0, 0.0, -0.7 / 0.21, 0.9 / 0.09])


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_bce_at_zero_and_one_gives_pytorch_values(dev):
    with xn.Graph().as_default():
        p, y = xn.placeholder(name="p"), xn.placeholder(name="y")
        loss = LOSSES.binary_cross_entropy(p, y, reduction="none")
        (g,) = xn.gradients(xn.reduce_sum(loss), [p])
        for dtype in (None, "float64"):
            value, grad = run(dev, [loss, g], {p: P_EDGE, y: Y_EDGE}, dtype=dtype)
            np.testing.assert_array_equal(value[:4], [100.0, 100.0, 0.0, 0.0])  # exactly
            np.testing.assert_allclose(value, BCE_EDGE, rtol=1e-6)
            assert np.all(np.isfinite(grad))
            np.testing.assert_allclose(grad, BCE_EDGE_GRAD, rtol=1e-6)
            mean = run(dev, LOSSES.binary_cross_entropy(p, y), {p: P_EDGE, y: Y_EDGE}, dtype)
            np.testing.assert_allclose(mean, BCE_EDGE.mean(), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:divide by zero")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_torch(dev, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = np.concatenate([P_EDGE, rng.uniform(0.01, 0.99, 6)])
    y0 = np.concatenate([Y_EDGE, rng.uniform(0.0, 1.0, 6)])  # soft targets too
    tp = torch.tensor(p0, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(y0), reduction=reduction)
    tl.sum().backward()
    with xn.Graph().as_default():
        p, y = xn.placeholder(name="p"), xn.placeholder(name="y")
        loss = LOSSES.binary_cross_entropy(p, y, reduction=reduction)
        (g,) = xn.gradients(xn.reduce_sum(loss), [p])
        value, grad = run(dev, [loss, g], {p: p0, y: y0}, dtype="float64")
    np.testing.assert_allclose(value, tl.detach().numpy(), rtol=1e-12)
    # torch clamps p (1 - p) at a float32 1e-12: its 1e12 differs in the 9th digit
    np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-8)


def test_bce_gradient_matches_finite_differences(dev):
    p0 = np.array([[0.2, 0.7], [0.5, 0.95]])
    y0 = np.array([[1.0, 0.0], [0.3, 1.0]])
    with xn.Graph().as_default():
        p, y = xn.placeholder(name="p"), xn.placeholder(name="y")
        loss = LOSSES.binary_cross_entropy(p, y, reduction="sum")
        xn.gradcheck(loss, [p], {p: p0, y: y0}, device=dev)
        # through a sigmoid, with a broadcast target row
        z = xn.placeholder(name="z")
        loss2 = LOSSES.binary_cross_entropy(xn.sigmoid(z), xn.constant([1.0, 0.0]))
        xn.gradcheck(loss2, [z], {z: np.array([[0.5, -1.0], [2.0, 0.1]])}, device=dev)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sigmoid_bce_equals_bce_of_sigmoid(dev, reduction):
    rng = np.random.default_rng(1)
    z0, y0 = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    with xn.Graph().as_default():
        z, y = xn.placeholder(name="z"), xn.placeholder(name="y")
        fused = LOSSES.sigmoid_binary_cross_entropy(z, y, reduction=reduction)
        composed = LOSSES.binary_cross_entropy(xn.sigmoid(z), y, reduction=reduction)
        gf = xn.gradients(xn.reduce_sum(fused), [z, y])
        gc = xn.gradients(xn.reduce_sum(composed), [z])
        feed = {z: z0, y: y0}
        out = run(dev, [fused, composed, *gf, *gc], feed, dtype="float64")
        xn.gradcheck(xn.reduce_sum(fused * xn.constant(rng.standard_normal((4, 3)))
                                   if reduction == "none" else fused), [z, y], feed, device=dev)
    s = 1 / (1 + np.exp(-z0))
    rows = -(y0 * np.log(s) + (1 - y0) * np.log(1 - s))
    scale = 1 / rows.size if reduction == "mean" else 1.0
    np.testing.assert_allclose(out[0], np_reduce(rows, reduction), rtol=1e-12)
    np.testing.assert_allclose(out[1], out[0], rtol=1e-12)
    np.testing.assert_allclose(out[2], (s - y0) * scale, rtol=1e-12)
    np.testing.assert_allclose(out[3], -z0 * scale, rtol=1e-12)
    np.testing.assert_allclose(out[4], out[2], rtol=1e-10)


def test_sigmoid_bce_finite_for_huge_logits(dev):
    z0 = np.array([1e4, 1e4, -1e4, -1e4, 0.0])
    y0 = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    with xn.Graph().as_default():
        z, y = xn.placeholder(name="z"), xn.placeholder(name="y")
        loss = LOSSES.sigmoid_binary_cross_entropy(z, y, reduction="none")
        (g,) = xn.gradients(xn.reduce_sum(loss), [z])
        for dtype in (None, "float64"):
            with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                value, grad = run(dev, [loss, g], {z: z0, y: y0}, dtype=dtype)
            np.testing.assert_allclose(value, [0.0, 1e4, 1e4, 0.0, np.log(2)], rtol=1e-6)
            np.testing.assert_array_equal(grad[:4], [0.0, 1.0, -1.0, 0.0])
            np.testing.assert_allclose(grad[4], -0.5)


# --------------------------------------------------------------------------- MSE, reductions


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mean_squared_error(dev, reduction):
    pred0 = np.array([[1.0, 2.0], [3.0, 5.0]])
    target0 = np.array([[0.0, 2.0], [1.0, 1.0]])
    sq = (pred0 - target0) ** 2
    with xn.Graph().as_default():
        pred, target = xn.placeholder(name="pred"), xn.placeholder(name="target")
        loss = LOSSES.mean_squared_error(pred, target, reduction=reduction)
        (g,) = xn.gradients(xn.reduce_sum(loss), [pred])
        value, grad = run(dev, [loss, g], {pred: pred0, target: target0})
        xn.gradcheck(xn.reduce_sum(loss * xn.constant([[1.0, -1.0], [2.0, 0.5]])),
                     [pred, target], {pred: pred0, target: target0}, device=dev)
    np.testing.assert_array_equal(value, np_reduce(sq, reduction))
    scale = 0.25 if reduction == "mean" else 1.0
    np.testing.assert_array_equal(grad, 2 * (pred0 - target0) * scale)
    if reduction == "mean":
        assert value == 5.25  # (1 + 0 + 4 + 16) / 4


@pytest.mark.parametrize(
    "make",
    [
        lambda r: LOSSES.cross_entropy([[1.0, 0.0]], [[0.5, 0.5]], reduction=r),
        lambda r: LOSSES.softmax_cross_entropy([[1.0, 0.0]], [[0.5, 0.5]], reduction=r),
        lambda r: LOSSES.sparse_softmax_cross_entropy([0], [[0.5, 0.5]], reduction=r),
        lambda r: LOSSES.binary_cross_entropy([0.5], [1.0], reduction=r),
        lambda r: LOSSES.sigmoid_binary_cross_entropy([0.5], [1.0], reduction=r),
        lambda r: LOSSES.mean_squared_error([0.5], [1.0], reduction=r),
    ],
    ids=["cross_entropy", "softmax_ce", "sparse_ce", "bce", "sigmoid_bce", "mse"],
)
@pytest.mark.parametrize("bad", ["avg", "Mean", None, ""])
def test_bad_reduction_raises(make, bad):
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', "
                                             rf"'none'\), got {bad!r}"):
            make(bad)


def test_reduction_defaults():
    """cross_entropy sums (the series' J); the others average."""
    with xn.Graph().as_default():
        sess = xn.Session()
        c, p = [[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.25, 0.75]]
        total = -(np.log(0.5) + np.log(0.75))
        np.testing.assert_allclose(sess.run(LOSSES.cross_entropy(c, p), to_numpy=True), total,
                                   rtol=1e-6)
        logits = np.log(np.array(p))
        np.testing.assert_allclose(
            sess.run(LOSSES.softmax_cross_entropy(c, logits), to_numpy=True), total / 2, rtol=1e-6
        )
        np.testing.assert_allclose(
            sess.run(LOSSES.mean_squared_error([1.0, 3.0], [0.0, 0.0]), to_numpy=True), 5.0
        )


# --------------------------------------------------------------------------- weights (#26)

# Two sequences of four steps, five classes; the second sequence ends after two steps.
SEQ_LOGITS = np.random.default_rng(5).standard_normal((2, 4, 5)) * 2
SEQ_LABELS = np.array([[1, 4, 0, 2], [3, 3, 0, 0]])
SEQ_MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)


def np_sparse_ce(logits, labels):
    return -np.take_along_axis(np_log_softmax(logits), labels[..., None], axis=-1)[..., 0]


@pytest.mark.parametrize("kind", ["bool-mask", "float-weights", "per-sequence"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_sparse_cross_entropy_matches_its_reference(dev, kind, reduction):
    weights = {"bool-mask": SEQ_MASK, "float-weights": np.where(SEQ_MASK, [0.5, 2.0, 1.0, 3.0], 0),
               "per-sequence": np.array([[2.0], [0.5]])}[kind]
    entries = np_sparse_ce(SEQ_LOGITS, SEQ_LABELS) * weights
    full = np.broadcast_to(weights, SEQ_LABELS.shape).astype(float)
    expected = {"mean": entries.sum() / full.sum(), "sum": entries.sum(), "none": entries}
    with xn.Graph().as_default():
        z = xn.placeholder("float64", (None, 4, 5), name="z")
        w = xn.placeholder(weights.dtype.name, weights.shape, name="w")
        loss = LOSSES.sparse_softmax_cross_entropy(SEQ_LABELS, z, reduction, weights=w)
        feed = {z: SEQ_LOGITS, w: weights}
        np.testing.assert_allclose(run(dev, loss, feed, dtype="float64"), expected[reduction],
                                   rtol=1e-12)
        seeded = xn.reduce_sum(loss * np.arange(8.0).reshape(2, 4)) if reduction == "none" \
            else loss
        wrt = [z] if kind == "bool-mask" else [z, w]  # a bool mask has no gradient
        xn.gradcheck(seeded, wrt, feed, device=dev)


def test_labels_under_zero_weights_change_nothing(dev):
    other = np.where(SEQ_MASK, SEQ_LABELS, (SEQ_LABELS + 2) % 5)  # new labels where padded
    assert (other != SEQ_LABELS).any()
    with xn.Graph().as_default():
        z = xn.placeholder("float64", (None, 4, 5), name="z")
        t = xn.placeholder("int32", (None, 4), name="t")
        loss = LOSSES.sparse_softmax_cross_entropy(t, z, weights=SEQ_MASK)
        fetches = [loss, xn.gradients(loss, [z])[0]]
        a = run(dev, fetches, {z: SEQ_LOGITS, t: SEQ_LABELS}, dtype="float64")
        b = run(dev, fetches, {z: SEQ_LOGITS, t: other}, dtype="float64")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert (a[1][~SEQ_MASK] == 0).all() and (a[1][SEQ_MASK] != 0).any()
    real = SEQ_MASK.sum()
    np.testing.assert_allclose(a[0], np_sparse_ce(SEQ_LOGITS, SEQ_LABELS)[SEQ_MASK].sum() / real,
                               rtol=1e-12)


def test_every_weight_zero_gives_a_zero_loss_and_gradient(dev):
    with xn.Graph().as_default():
        z = xn.placeholder("float64", (None, 4, 5), name="z")
        loss = LOSSES.sparse_softmax_cross_entropy(SEQ_LABELS, z, weights=np.zeros((2, 4)))
        value, grad = run(dev, [loss, xn.gradients(loss, [z])[0]], {z: SEQ_LOGITS},
                          dtype="float64")
    assert value == 0.0 and (grad == 0).all()


@pytest.mark.parametrize("shape", [(2, 5), (4, 2), (2, 4, 1)])
def test_weights_that_do_not_fit_the_labels_are_refused(shape):
    with xn.Graph().as_default():
        z = xn.placeholder("float32", (2, 4, 5), name="z")
        with pytest.raises(ValueError, match=r"weights of shape \(.*\) do not broadcast to the "
                                             r"labels' shape \(2, 4\)"):
            LOSSES.sparse_softmax_cross_entropy(SEQ_LABELS, z, weights=np.ones(shape))
