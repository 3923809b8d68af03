"""Random translation (Keras's RandomTranslation as ops): shifts by whole pixels as a NumPy
loop does, offsets drawn from the seeded host generator (the same on every backend), the
identity where not training, the gradient the opposite shift, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from xpnn import to_numpy


def shifted(images, offsets, fill=0.0):
    """The reference: a loop over images and pixels."""
    out = np.full_like(images, fill)
    n, h, w, _ = images.shape
    for k in range(n):
        dy, dx = offsets[k]
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[k, i, j] = images[k, i - dy, j - dx]
    return out


def drawn_offsets(generator, n, h, w, height, width):
    """What a draw from ``generator`` gives: uniforms in float32, scaled, rounded."""
    u = generator.random((n, 2)).astype(np.float32)
    rows = np.round((np.float32(height[0]) + u[:, 0] * np.float32(height[1] - height[0])) * h)
    cols = np.round((np.float32(width[0]) + u[:, 1] * np.float32(width[1] - width[0])) * w)
    return np.stack([rows, cols], axis=1).astype(np.int32)


def images(n=6, h=7, w=5, c=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(np.float32)


def test_translate_matches_a_loop(dev):
    x0 = images()
    offsets = np.array([[0, 0], [1, -2], [-3, 4], [7, 0], [-2, -5], [3, 2]], np.int32)
    with xn.Graph().as_default():
        y = xn.ops.translate(x0, offsets, fill_value=-1.5)
        got = to_numpy(xn.Session(device=dev).run(y))
    np.testing.assert_array_equal(got, shifted(x0, offsets, -1.5))


def test_the_shifts_are_the_seeded_draws_on_every_backend(dev):
    x0 = images(n=16, h=28, w=28, c=1)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 28, 28, 1), name="x")
        y = xn.ops.random_translation(x, 0.1, (-0.2, 0.05))
        offsets = y.inputs[1]
        sess = xn.Session(device=dev, seed=3)
        runs = [sess.run([y, offsets], {x: x0}, to_numpy=True) for _ in range(2)]
    generator = np.random.Generator(np.random.PCG64(3))
    for got, drawn in runs:
        expected = drawn_offsets(generator, 16, 28, 28, (-0.1, 0.1), (-0.2, 0.05))
        np.testing.assert_array_equal(drawn, expected)
        np.testing.assert_array_equal(got, shifted(x0, expected))
    assert not np.array_equal(runs[0][1], runs[1][1])  # new shifts every run
    rows, cols = runs[0][1][:, 0], runs[0][1][:, 1]
    assert (abs(rows) <= 3).all() and (cols >= -6).all() and (cols <= 1).all()


def test_an_op_seed_gives_its_own_stream_in_every_session(dev):
    x0 = images()
    with xn.Graph().as_default():
        y = xn.ops.random_translation(x0, 0.5, 0.5, seed=11)
        first = [to_numpy(xn.Session(device=dev, seed=s).run(y)) for s in (0, 1)]
    np.testing.assert_array_equal(first[0], first[1])
    expected = drawn_offsets(np.random.Generator(np.random.PCG64(11)), 6, 7, 5,
                             (-0.5, 0.5), (-0.5, 0.5))
    np.testing.assert_array_equal(first[0], shifted(x0, expected))


def test_the_identity_where_not_training(dev):
    x0 = images()
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        training = xn.placeholder("bool", (), name="training")
        y = xn.ops.random_translation(x, 0.3, 0.3, training=training)
        sess = xn.Session(device=dev, seed=0)
        np.testing.assert_array_equal(to_numpy(sess.run(y, {x: x0, training: False})), x0)
        assert not np.array_equal(to_numpy(sess.run(y, {x: x0, training: True})), x0)
        assert xn.ops.random_translation(x, 0.3, 0.3, training=False) is x


def test_translate_gradcheck(dev):
    x0 = images(n=3, h=5, w=4, c=2).astype(np.float64)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=x0.shape, name="x")
        offsets = xn.constant(np.array([[1, -1], [-2, 3], [0, 0]], np.int32))
        y = xn.ops.translate(x, offsets, fill_value=2.0)
        weights = xn.constant(np.random.default_rng(1).standard_normal(x0.shape))
        loss = xn.reduce_sum(xn.tanh(y) * weights)
        assert xn.gradcheck(loss, [x], {x: x0}, device=dev, max_elements=120).ok


def test_the_gradient_shifts_back_by_the_drawn_offsets(dev):
    x0 = images(n=8, h=6, w=6, c=1)
    c = np.random.default_rng(2).standard_normal(x0.shape).astype(np.float32)
    with xn.Graph().as_default():
        x = xn.Variable(x0, name="x")
        y = xn.ops.random_translation(x, 0.4, 0.4)
        (g,) = xn.gradients(xn.reduce_sum(y * c), [x])
        drawn, grad = xn.Session(device=dev, seed=4).run([y.inputs[1], g], to_numpy=True)
    assert drawn.any()
    np.testing.assert_array_equal(grad, shifted(c, -drawn))  # c moved back, zeros in


def test_the_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    x0 = images(n=4, h=6, w=5, c=3).astype(np.float64)
    offsets = np.array([[2, -1], [0, 3], [-6, 0], [1, 1]], np.int32)
    c = np.random.default_rng(3).standard_normal(x0.shape)
    xt = torch.tensor(x0, requires_grad=True)
    padded = torch.nn.functional.pad(xt, (0, 0, 6, 6, 6, 6), value=0.5)  # W and H by 6
    crops = [padded[k, 6 - dy:12 - dy, 6 - dx:11 - dx] for k, (dy, dx) in enumerate(offsets)]
    (torch.stack(crops) * torch.tensor(c)).sum().backward()
    with xn.Graph().as_default():
        x = xn.Variable(x0, dtype="float64", name="x")
        y = xn.ops.translate(x, offsets, fill_value=0.5)
        (g,) = xn.gradients(xn.reduce_sum(y * c), [x])
        out, grad = xn.Session().run([y, g], to_numpy=True)
    np.testing.assert_array_equal(out, torch.stack(crops).detach().numpy())
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("factor, match", [
    (1.5, r"height_factor must lie in \[-1, 1\]"),
    ((-0.2, 1.2), r"height_factor must lie in \[-1, 1\]"),
    (-0.1, "upper bound -0.1 is below the lower bound 0.1"),
    ((0.3, 0.1), "upper bound 0.1 is below the lower bound 0.3"),
    (float("nan"), r"must lie in \[-1, 1\]"),
])
def test_bad_factors_are_refused(factor, match):
    with xn.Graph().as_default(), pytest.raises(ValueError, match=match):
        xn.ops.random_translation(images(), factor, 0.1)


@pytest.mark.parametrize("factor", ["0.1", (0.1,), (0.1, 0.2, 0.3), None])
def test_factors_that_are_not_numbers_or_pairs_are_refused(factor):
    with xn.Graph().as_default(), pytest.raises(TypeError, match="width_factor must be a"):
        xn.ops.random_translation(images(), 0.1, factor)


def test_inputs_that_are_not_nhwc_batches_are_refused(dev):
    with xn.Graph().as_default():
        with pytest.raises(ValueError, match=r"shape \(7, 5, 2\).*\(batch, height, width"):
            xn.ops.random_translation(images()[0], 0.1, 0.1)
        with pytest.raises(ValueError, match=r"offsets .* have shape \(6, 3\)"):
            xn.ops.translate(images(), np.zeros((6, 3), np.int32))
        x = xn.placeholder(name="x")  # rank unknown until run
        y = xn.ops.translate(x, np.zeros((4, 2), np.int32))
        with pytest.raises(ValueError, match=r"offsets have shape \(4, 2\) for 6 images"):
            xn.Session(device=dev).run(y, {x: images()})
