"""Convolution, pooling, bias_add and flatten: forward values and gradients against PyTorch
(NHWC <-> NCHW, HWIO <-> OIHW, TF1's SAME padding applied explicitly), gradients and
second-order gradients against finite differences on every backend, ties in max pooling,
static shapes, and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

# --------------------------------------------------------------------------- references


def tf_pads(n, k, s, d, padding):
    """TF1's (before, after) padding of one spatial axis, written out again here."""
    if padding == "VALID":
        return (0, 0)
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return (total // 2, total - total // 2)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v[-3:-1] if len(v) == 4 else v)


def spatial_pads(x_nhwc, k, strides, dilations, padding):
    """((top, bottom), (left, right)) for a test case (explicit pads given as NHWC 4x2 or 2x2)."""
    if not isinstance(padding, str):
        return tuple(tuple(p) for p in (padding[1:3] if len(padding) == 4 else padding))
    (sh, sw), (dh, dw) = pair(strides), pair(dilations)
    return (tf_pads(x_nhwc.shape[1], k[0], sh, dh, padding),
            tf_pads(x_nhwc.shape[2], k[1], sw, dw, padding))


def torch_nchw(torch, x_nhwc, pads, value=0.0):
    (t, b), (left, r) = pads
    x = torch.as_tensor(x_nhwc).permute(0, 3, 1, 2)
    return torch.nn.functional.pad(x, (left, r, t, b), value=value)


def to_format(a, data_format):
    return a if data_format == "NHWC" else np.transpose(a, (0, 3, 1, 2))


def from_format(a, data_format):
    return a if data_format == "NHWC" else np.transpose(a, (0, 2, 3, 1))


def in_format(arg, data_format):
    """TF1's 4-lists (strides, explicit pads) are laid out like the data."""
    if data_format == "NCHW" and isinstance(arg, list) and len(arg) == 4:
        return [arg[0], arg[3], arg[1], arg[2]]
    return arg


# (input NHWC, kernel (kh, kw), strides, dilations, padding)
CONV_CASES = [
    ((2, 7, 6, 3), (3, 3), 1, 1, "VALID"),
    ((2, 7, 6, 3), (3, 2), 2, 1, "SAME"),
    ((1, 8, 9, 2), (3, 3), (2, 3), 1, "SAME"),
    ((2, 9, 8, 2), (3, 3), 1, 2, "SAME"),
    ((1, 10, 10, 1), (2, 3), 3, (2, 1), "VALID"),
    ((2, 5, 5, 3), (1, 1), 2, 1, "SAME"),
    ((1, 5, 6, 2), (4, 4), 1, 1, "SAME"),  # even kernel: the extra padding bottom/right
    ((1, 3, 4, 1), (5, 5), [1, 2, 2, 1], 1, "SAME"),  # kernel larger than the input
    ((1, 6, 7, 2), (3, 3), [1, 2, 2, 1], 1, [[0, 0], [1, 2], [0, 3], [0, 0]]),
    ((2, 5, 5, 2), (2, 2), 1, [1, 2, 2, 1], ((1, 0), (2, 1))),
]


def conv_id(c):
    x, k, s, d, p = c
    padding = p if isinstance(p, str) else "explicit"
    return f"x{'x'.join(map(str, x))}-k{k[0]}{k[1]}-s{s}-d{d}-{padding}"


CONV_PARAMS = [pytest.param(c, id=conv_id(c)) for c in CONV_CASES]
FORMATS = ["NHWC", "NCHW"]


def conv_inputs(case, out_channels=4, seed=0):
    shape, k = case[0], case[1]
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(k + (shape[3], out_channels))


def torch_conv(torch, x, w, case):
    _, k, strides, dilations, padding = case
    pads = spatial_pads(x, k, strides, dilations, padding)
    oihw = torch.as_tensor(w).permute(3, 2, 0, 1)
    y = torch.nn.functional.conv2d(torch_nchw(torch, x, pads), oihw, stride=pair(strides),
                                   dilation=pair(dilations))
    return y.permute(0, 2, 3, 1)


def build_conv(x, w, case, data_format, name=None):
    _, _, strides, dilations, padding = case
    return xn.conv2d(x, w, strides=in_format(strides, data_format),
                     padding=in_format(padding, data_format), data_format=data_format,
                     dilations=in_format(dilations, data_format), name=name)


def needs_torch():
    return pytest.importorskip("torch", reason="torch is not installed: no reference to compare")


# --------------------------------------------------------------------------- conv2d


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("case", CONV_PARAMS)
def test_conv2d_forward_matches_torch(dev, case, data_format):
    torch = needs_torch()
    x0, w0 = conv_inputs(case)
    x32, w32 = x0.astype(np.float32), w0.astype(np.float32)
    expected = torch_conv(torch, x32.astype(np.float64), w32.astype(np.float64), case).numpy()
    with xn.Graph().as_default():
        x = xn.placeholder(shape=to_format(x0, data_format).shape, name="x")
        y = build_conv(x, xn.Variable(w32, name="w"), case, data_format)
        assert y.shape == to_format(expected, data_format).shape
        out = xn.Session(device=dev).run(y, {x: to_format(x32, data_format)})
    assert dev.owns(out) and out.dtype == dev.dtype("float32")
    np.testing.assert_allclose(from_format(xn.to_numpy(out), data_format), expected,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("case", CONV_PARAMS)
def test_conv2d_gradients_match_torch_autograd(dev, case, data_format):
    """d sum(R * conv(x, w)) / dx and / dw in float64, and one second-order gradient: that of
    sum(dx * S) with respect to w (torch's create_graph)."""
    torch = needs_torch()
    x0, w0 = conv_inputs(case)
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    ty = torch_conv(torch, tx, tw, case)
    r = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    s = np.random.default_rng(2).standard_normal(x0.shape)
    tdx, tdw = torch.autograd.grad((ty * torch.tensor(r)).sum(), [tx, tw], create_graph=True)
    (tddw,) = torch.autograd.grad((tdx * torch.tensor(s)).sum(), [tw])
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")  # no static shape: the ops check at run time
        w = xn.Variable(w0, name="w")
        y = build_conv(x, w, case, data_format)
        dx, dw = xn.gradients(xn.reduce_sum(y * to_format(r, data_format)), [x, w])
        (ddw,) = xn.gradients(xn.reduce_sum(dx * to_format(s, data_format)), [w])
        sess = xn.Session(device=dev, dtype="float64")
        got = sess.run([dx, dw, ddw], {x: to_format(x0, data_format)}, to_numpy=True)
    np.testing.assert_allclose(from_format(got[0], data_format), tdx.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(got[1], tdw.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[2], tddw.numpy(), rtol=1e-10, atol=1e-12)


SMALL_CONV = [
    pytest.param(((2, 5, 4, 2), (3, 2), 1, 1, "VALID"), "NHWC", id="valid"),
    pytest.param(((1, 5, 5, 2), (3, 3), 2, 1, "SAME"), "NCHW", id="same-stride2-nchw"),
    pytest.param(((1, 6, 5, 1), (2, 2), (1, 2), 2, "SAME"), "NHWC", id="same-dilated"),
    pytest.param(((1, 4, 4, 2), (2, 2), 2, 1, ((1, 0), (0, 1))), "NCHW", id="explicit-nchw"),
]


def projection(shape, seed):
    return xn.constant(np.random.default_rng(seed).standard_normal(shape))


@pytest.mark.parametrize("case, data_format", SMALL_CONV)
def test_conv2d_gradcheck(dev, case, data_format):
    x0, w0 = conv_inputs(case, out_channels=3)
    with xn.Graph().as_default():
        feed_x = to_format(x0, data_format)
        x = xn.placeholder(shape=feed_x.shape, name="x")
        w = xn.Variable(w0, name="w")
        y = build_conv(x, w, case, data_format)
        loss = xn.reduce_sum(xn.tanh(y) * projection(y.shape, 3))
        feed = {x: feed_x}
        assert xn.gradcheck(loss, [x, w], feed, device=dev, max_elements=40).ok


@pytest.mark.parametrize("case, data_format", SMALL_CONV[1:3])
def test_conv2d_second_order_gradcheck(dev, case, data_format):
    """The gradient of (sum(dx * S) + sum(dw * T)) for dx, dw the gradients of
    sum(conv(x, w)^2): through both backprop ops' own gradients."""
    x0, w0 = conv_inputs(case, out_channels=2)
    with xn.Graph().as_default():
        x = xn.Variable(to_format(x0, data_format), name="x")
        w = xn.Variable(w0, name="w")
        dx, dw = xn.gradients(xn.reduce_sum(xn.square(build_conv(x, w, case, data_format))),
                              [x, w])
        loss = (xn.reduce_sum(dx * projection(x.shape, 4))
                + xn.reduce_sum(dw * projection(w.shape, 5)))
        assert xn.gradcheck(loss, [x, w], device=dev, max_elements=30).ok


# --------------------------------------------------------------------------- pooling

# (input NHWC, ksize, strides, padding)
POOL_CASES = [
    ((2, 6, 6, 3), 2, 2, "VALID"),
    ((2, 7, 5, 2), 3, 2, "SAME"),
    ((1, 5, 8, 2), (2, 3), (1, 2), "SAME"),
    ((1, 7, 7, 1), [1, 3, 3, 1], [1, 3, 3, 1], "VALID"),
    ((1, 4, 5, 2), 4, 1, "SAME"),  # each window cut by the padding differently
    ((2, 3, 3, 1), 2, 3, "SAME"),  # no padding needed: total max(..., 0) = 0
]
POOL_PARAMS = [pytest.param(c, id=f"x{'x'.join(map(str, c[0]))}-k{c[1]}-s{c[2]}-{c[3]}")
               for c in POOL_CASES]


def torch_pool(torch, x, case, kind):
    _, ksize, strides, padding = case
    k, s = pair(ksize), pair(strides)
    pads = spatial_pads(x, k, s, 1, padding)
    if kind == "max":
        xp = torch_nchw(torch, x, pads, value=-np.inf)
        y = torch.nn.functional.max_pool2d(xp, k, s)
    elif pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]:
        y = torch.nn.functional.avg_pool2d(torch.as_tensor(x).permute(0, 3, 1, 2), k, s,
                                           padding=(pads[0][0], pads[1][0]),
                                           count_include_pad=False)
    else:  # TF1's odd padding is uneven, which torch's padding= cannot do: sum / count
        window_sum = torch.nn.functional.avg_pool2d(torch_nchw(torch, x, pads), k, s)
        ones = torch_nchw(torch, torch.ones_like(x), pads)
        y = window_sum / torch.nn.functional.avg_pool2d(ones, k, s)
    return y.permute(0, 2, 3, 1)


def build_pool(x, case, kind, data_format):
    _, ksize, strides, padding = case
    fn = xn.max_pool2d if kind == "max" else xn.avg_pool2d
    return fn(x, in_format(ksize, data_format), in_format(strides, data_format), padding,
              data_format=data_format)


def distinct(shape, seed=0):
    """Values at least 0.1 apart (no ties in any window)."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.1


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_PARAMS)
def test_pool_forward_and_gradient_match_torch(dev, case, kind, data_format):
    torch = needs_torch()
    x0 = distinct(case[0])
    tx = torch.tensor(x0, requires_grad=True)
    ty = torch_pool(torch, tx, case, kind)
    r = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    (tdx,) = torch.autograd.grad((ty * torch.tensor(r)).sum(), [tx])
    with xn.Graph().as_default():
        x = xn.placeholder(shape=to_format(x0, data_format).shape, name="x")
        y = build_pool(x, case, kind, data_format)
        assert y.shape == to_format(r, data_format).shape
        (dx,) = xn.gradients(xn.reduce_sum(y * to_format(r, data_format)), [x])
        sess = xn.Session(device=dev, dtype="float64")
        got_y, got_dx = sess.run([y, dx], {x: to_format(x0, data_format)}, to_numpy=True)
    np.testing.assert_allclose(from_format(got_y, data_format), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(from_format(got_dx, data_format), tdx.numpy(), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case, data_format", [
    pytest.param(POOL_CASES[1], "NHWC", id="same-k3-s2"),
    pytest.param(POOL_CASES[4], "NCHW", id="same-k4-s1-nchw"),
])
def test_pool_gradcheck_first_and_second_order(dev, case, kind, data_format):
    """loss = sum(tanh(pool(x)) * R) and the gradient of sum(dloss/dx * S): second order
    through MaxPoolGrad/MaxPoolGradGrad and AvgPoolGrad/AvgPool."""
    x0 = to_format(distinct(case[0]), data_format)
    with xn.Graph().as_default():
        x = xn.Variable(x0, name="x")
        y = build_pool(x, case, kind, data_format)
        loss = xn.reduce_sum(xn.tanh(y) * projection(y.shape, 1))
        (dx,) = xn.gradients(loss, [x])
        second = xn.reduce_sum(dx * projection(x.shape, 2))
        assert xn.gradcheck(loss, [x], device=dev, max_elements=30).ok
        assert xn.gradcheck(second, [x], device=dev, max_elements=30).ok


def max_pool_grad(dev, x0, ksize, strides, padding="VALID", weights=None):
    with xn.Graph().as_default():
        x = xn.Variable(np.asarray(x0, dtype=np.float64)[None, :, :, None], name="x")
        y = xn.max_pool2d(x, ksize, strides, padding)
        w = 1.0 if weights is None else np.asarray(weights, dtype=np.float64)[None, :, :, None]
        (g,) = xn.gradients(xn.reduce_sum(y * w), [x])
        return xn.Session(device=dev).run(g, to_numpy=True)[0, :, :, 0]


def test_max_pool_ties_send_the_gradient_to_the_first_max(dev):
    """Row-major first maximum of each window, as PyTorch's max_pool2d (checked with it in
    test_max_pool_ties_match_torch); overlapping windows add up."""
    x0 = [[1.0, 3.0, 3.0], [3.0, 0.0, 3.0], [2.0, 3.0, 1.0]]
    np.testing.assert_array_equal(max_pool_grad(dev, x0, 2, 1),
                                  [[0.0, 2.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(max_pool_grad(dev, np.ones((4, 4)), 2, 2),
                                  np.kron(np.ones((2, 2)), [[1.0, 0.0], [0.0, 0.0]]))
    # SAME: the -inf padding never wins, even over -1e30
    np.testing.assert_array_equal(max_pool_grad(dev, np.full((3, 3), -1e30), 2, 2, "SAME"),
                                  [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])


@pytest.mark.parametrize("shape, ksize, strides", [((4, 4), 2, 1), ((5, 5), 3, 2),
                                                   ((4, 6), (2, 3), (2, 1))])
def test_max_pool_ties_match_torch(dev, shape, ksize, strides):
    torch = needs_torch()
    x0 = np.random.default_rng(0).integers(0, 3, shape).astype(np.float64)  # many ties
    weights_shape = [(n - k) // s + 1 for n, k, s in zip(shape, pair(ksize), pair(strides))]
    weights = np.random.default_rng(1).standard_normal(weights_shape)
    tx = torch.tensor(x0[None, None], requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, pair(ksize), pair(strides))
    (ty * torch.tensor(weights[None, None])).sum().backward()
    got = max_pool_grad(dev, x0, ksize, strides, weights=weights)
    np.testing.assert_allclose(got, tx.grad.numpy()[0, 0], rtol=1e-12)


# --------------------------------------------------------------------------- bias_add, flatten


@pytest.mark.parametrize("shape, data_format", [((2, 3, 4, 5), "NHWC"), ((2, 3, 4, 5), "NCHW"),
                                                ((4, 3), "NHWC"), ((2, 3, 4), "NCHW")])
def test_bias_add_forward_and_gradients(dev, shape, data_format):
    rng = np.random.default_rng(0)
    v0 = rng.standard_normal(shape)
    channels = shape[-1] if data_format == "NHWC" else shape[1]
    b0 = rng.standard_normal(channels)
    b_view = b0 if data_format == "NHWC" else b0.reshape((channels,) + (1,) * (len(shape) - 2))
    with xn.Graph().as_default():
        v = xn.Variable(v0, name="v")
        b = xn.Variable(b0, name="b")
        y = xn.bias_add(v, b, data_format=data_format)
        assert y.shape == shape
        np.testing.assert_allclose(xn.Session(device=dev).run(y, to_numpy=True), v0 + b_view)
        loss = xn.reduce_sum(xn.tanh(y) * projection(shape, 1))
        (gb,) = xn.gradients(xn.reduce_sum(xn.square(y)), [b])
        assert gb.shape == (channels,)
        second = xn.reduce_sum(gb * projection((channels,), 2))
        assert xn.gradcheck(loss, [v, b], device=dev, max_elements=30).ok
        assert xn.gradcheck(second, [v, b], device=dev, max_elements=30).ok


def test_flatten(dev):
    x0 = np.arange(24.0).reshape(2, 3, 2, 2)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 3, 2, 2), name="x")
        y = xn.flatten(x)
        assert y.shape == (None, 12)
        assert xn.flatten(xn.placeholder(shape=(None, None, 2))).shape == (None, None)
        assert xn.flatten(xn.placeholder(shape=(5,))).shape == (5, 1)
        loss = xn.reduce_sum(y * projection((2, 12), 1))
        out = xn.Session(device=dev).run(y, {x: x0}, to_numpy=True)
        np.testing.assert_array_equal(out, x0.reshape(2, 12))
        assert xn.gradcheck(loss, [x], {x: x0}, device=dev, max_elements=24).ok


# --------------------------------------------------------------------------- together


def test_a_small_convnet_trains(dev):
    """conv -> bias -> relu -> max pool -> flatten -> dense on two kinds of 6x6 images."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((16, 6, 6, 1)).astype(np.float32) * 0.1
    labels = np.arange(16) % 2
    images[labels == 1, 1:5, 2:4, 0] += 1.0  # a vertical bar
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 6, 6, 1), name="x")
        t = xn.placeholder(dtype="int64", shape=(None,), name="t")
        w = xn.Variable(rng.standard_normal((3, 3, 1, 4)).astype(np.float32) * 0.5, name="w")
        b = xn.Variable(np.zeros(4, np.float32), name="b")
        h = xn.max_pool2d(xn.relu(xn.bias_add(xn.conv2d(x, w, padding="SAME"), b)), 2, 2, "SAME")
        assert h.shape == (None, 3, 3, 4)
        dense = xn.Variable(rng.standard_normal((36, 2)).astype(np.float32) * 0.1, name="dense")
        loss = xn.losses.sparse_softmax_cross_entropy(t, xn.flatten(h) @ dense)
        step = xn.train.GradientDescentOptimizer(0.5).minimize(loss)
        sess = xn.Session(device=dev)
        first = float(xn.to_numpy(sess.run(loss, {x: images, t: labels})))
        for _ in range(30):
            sess.run(step, {x: images, t: labels})
        last = float(xn.to_numpy(sess.run(loss, {x: images, t: labels})))
    assert last < 0.2 * first


# --------------------------------------------------------------------------- static shapes


def test_static_shapes():
    with xn.Graph().as_default():
        w = xn.Variable(np.zeros((3, 3, 2, 5), np.float32), name="w")
        x = xn.placeholder(shape=(None, 28, None, 2), name="x")
        assert xn.conv2d(x, w).shape == (None, 26, None, 5)
        assert xn.conv2d(x, w, strides=2, padding="SAME").shape == (None, 14, None, 5)
        assert xn.conv2d(x, w, dilations=2, padding=((1, 1), (0, 0))).shape == (None, 26, None, 5)
        nchw = xn.placeholder(shape=(4, 2, 9, 8), name="nchw")
        assert xn.conv2d(nchw, w, 2, "VALID", data_format="NCHW").shape == (4, 5, 4, 3)
        assert xn.conv2d(xn.placeholder(name="u"), w).shape is None
        assert xn.conv2d(x, xn.placeholder(name="f")).shape == (None, None, None, None)
        assert xn.max_pool2d(x, 2, 2, "VALID").shape == (None, 14, None, 2)
        assert xn.avg_pool2d(nchw, 3, 2, "SAME", data_format="NCHW").shape == (4, 2, 5, 4)
        dx, dw = xn.gradients(xn.reduce_sum(xn.conv2d(x, w, 2, "SAME")), [x, w])
        assert (type(dx).__name__, dx.shape) == ("Conv2DBackpropInput", (None, 28, None, 2))
        assert (type(dw).__name__, dw.shape) == ("Conv2DBackpropFilter", (3, 3, 2, 5))


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_fail_when_the_op_is_built():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 8, 8, 3), name="x")
        w = xn.Variable(np.zeros((3, 3, 3, 4), np.float32), name="w")
        for kwargs, message in [
            (dict(strides=0), r"conv2d: strides must be positive, got 0"),
            (dict(dilations=(1, -1)), r"conv2d: dilations must be positive, got \(1, -1\)"),
            (dict(strides=[2, 1, 1, 1]), r"strides \[2, 1, 1, 1\] must be 1 in the batch and "
                                         r"channel axes \(NHWC\)"),
            (dict(strides=(1, 2, 3)), r"strides must be an int, a pair or a 4-list"),
            (dict(strides=1.5), r"strides must hold integers"),
            (dict(padding="FULL"), r"padding must be 'SAME', 'VALID' or explicit pads"),
            (dict(padding=((1, 1), (1, -1))), r"padding must not be negative"),
            (dict(padding=[[0, 0], [1, 1], [1, 1], [1, 0]]), r"pads the batch or channel"),
            (dict(data_format="NHCW"), r"data_format must be 'NHWC' or 'NCHW', got 'NHCW'"),
            (dict(strides=0, name="conv1"), r"^conv1: strides must be positive"),
        ]:
            with pytest.raises(ValueError, match=message):
                xn.conv2d(x, w, **kwargs)
        with pytest.raises(ValueError, match=r"max_pool2d: padding must be 'SAME', 'VALID', got"):
            xn.max_pool2d(x, 2, 2, ((1, 1), (1, 1)))
        with pytest.raises(ValueError, match=r"avg_pool2d: ksize must be positive"):
            xn.avg_pool2d(x, 0, 1, "VALID")
        with pytest.raises(ValueError, match=r"bias_add: data_format must be"):
            xn.bias_add(x, [1.0], data_format="CHW")


def test_bad_shapes_fail_when_the_op_is_built():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 5, 5, 3), name="x")
        w = xn.Variable(np.zeros((3, 3, 2, 4), np.float32), name="w")
        with pytest.raises(ValueError, match=r"Conv2D#\d+: input of shape \(None, 5, 5, 3\) "
                                             r"\(NHWC\), filters of shape \(3, 3, 2, 4\) \(HWIO\): "
                                             r"the input has 3 channels but the filters take 2"):
            xn.conv2d(x, w)
        with pytest.raises(ValueError, match=r"^c1: conv2d needs a 4-D input and 4-D filters, "
                                             r"got input of shape \(5, 5, 3\)"):
            xn.conv2d(xn.placeholder(shape=(5, 5, 3)), w, name="c1")
        big = xn.Variable(np.zeros((6, 2, 3, 4), np.float32), name="big")
        with pytest.raises(ValueError, match=r"Conv2D#\d+: the kernel covers 6 rows \(size 6, "
                                             r"dilation 1\) but the input has 5, padding VALID"):
            xn.conv2d(x, big)
        with pytest.raises(ValueError, match=r"the kernel covers 5 columns \(size 3, dilation 2\) "
                                             r"but the input has 4, padding VALID"):
            xn.conv2d(xn.placeholder(shape=(1, 9, 4, 2)), w, dilations=2)
        assert xn.conv2d(x, big, padding="SAME").shape == (None, 5, 5, 4)  # SAME always fits
        with pytest.raises(ValueError, match=r"MaxPool#\d+: pooling needs a 4-D input, got "
                                             r"input of shape \(5, 5\)"):
            xn.max_pool2d(xn.placeholder(shape=(5, 5)), 2, 2, "VALID")
        with pytest.raises(ValueError, match=r"AvgPool#\d+: the kernel covers 6 columns"):
            xn.avg_pool2d(x, (2, 6), 1, "VALID")
        with pytest.raises(ValueError, match=r"BiasAdd#\d+: bias of shape \(4,\) does not match "
                                             r"the 3 channels of value \(None, 5, 5, 3\)"):
            xn.bias_add(x, np.zeros(4, np.float32))
        with pytest.raises(ValueError, match=r"Flatten#\d+: flatten needs a batch axis"):
            xn.flatten(xn.constant(1.0))


def test_bad_shapes_fail_at_run_time_when_unknown_before(dev):
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        w = xn.Variable(np.zeros((3, 3, 2, 4), np.float32), name="w")
        y = xn.conv2d(x, w, name="conv")
        pooled = xn.max_pool2d(x, 4, 1, "VALID", name="pool")
        (dx,) = xn.gradients(xn.reduce_sum(y), [x])
        sess = xn.Session(device=dev)
        assert sess.run(y, {x: np.zeros((1, 4, 4, 2))}).shape == (1, 2, 2, 4)
        with pytest.raises(xn.OpError, match=r"(?s)conv \(Conv2D\) failed: conv: input of shape "
                                             r"\(1, 4, 4, 3\) \(NHWC\), filters of shape "
                                             r"\(3, 3, 2, 4\) \(HWIO\): the input has 3 channels"
                                             r".*input 0 x: shape \(1, 4, 4, 3\)"):
            sess.run(y, {x: np.zeros((1, 4, 4, 3))})
        with pytest.raises(ValueError, match=r"conv: the kernel covers 3 rows .* but the input "
                                             r"has 2, padding VALID"):
            sess.run(dx, {x: np.zeros((1, 2, 4, 2))})
        with pytest.raises(ValueError, match=r"conv: conv2d needs a 4-D input"):
            sess.run(y, {x: np.zeros((4, 4, 2))})
        with pytest.raises(ValueError, match=r"pool: the kernel covers 4 columns"):
            sess.run(pooled, {x: np.zeros((1, 5, 3, 2))})


def test_a_gradient_of_the_wrong_shape_is_refused():
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(1, 5, 5, 2), name="x")
        w = xn.Variable(np.zeros((3, 3, 2, 4), np.float32), name="w")
        g = xn.placeholder(shape=(1, 3, 3, 5), name="g")
        with pytest.raises(ValueError, match=r"Conv2DBackpropInput#\d+: the gradient has shape "
                                             r"\(1, 3, 3, 5\) but the forward op's output has "
                                             r"shape \(1, 3, 3, 4\)"):
            xn.conv.Conv2DBackpropInput(x, w, g, window=xn.conv.Window())


# --------------------------------------------------------------------------- layers


def test_conv_layers_in_a_sequential_learn_on_every_backend(dev):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    y = (X[:, :4].sum(axis=(1, 2, 3)) > X[:, 4:].sum(axis=(1, 2, 3))).astype(np.int64)
    with xn.Graph().as_default():
        x = xn.placeholder(shape=(None, 8, 8, 1), name="x")
        t = xn.placeholder("int64", (None,), name="t")
        training = xn.placeholder("bool", (), name="training")
        net = xn.nn.Sequential(
            xn.nn.Conv2D(1, 4, 3, padding="SAME", seed=0), xn.nn.ReLU(), xn.nn.MaxPool2D(2),
            xn.nn.Conv2D(4, 4, 3, seed=1), xn.nn.AvgPool2D(3, padding="SAME"),
            xn.nn.Flatten(), xn.nn.Dropout(0.1), xn.nn.Linear(4, 2, seed=2))
        logits = net(x, training)
        assert logits.shape == (None, 2)
        loss = xn.losses.sparse_softmax_cross_entropy(t, logits)
        step = xn.train.AdamOptimizer(0.02).minimize(loss)
        sess = xn.Session(device=dev, seed=0)
        feed = {x: X, t: y}
        first = float(xn.to_numpy(sess.run(loss, {**feed, training: False})))
        for _ in range(30):
            sess.run(step, {**feed, training: True})
        last = float(xn.to_numpy(sess.run(loss, {**feed, training: False})))
    assert last < first / 2
    assert repr(net[0]) == "Conv2D(1, 4, (3, 3), padding='SAME')"


def test_conv_layer_weights_are_he_initialised_over_the_window():
    conv = xn.nn.Conv2D(16, 64, 3, seed=0)
    W = conv.weight.initial_value
    assert W.shape == (3, 3, 16, 64) and W.dtype == np.float32
    np.testing.assert_allclose(W.std(), np.sqrt(2.0 / (3 * 3 * 16)), rtol=0.03)
    np.testing.assert_array_equal(W, xn.nn.Conv2D(16, 64, 3, seed=0).weight.initial_value)


def _cnn(seed=0, rate=0.25):
    return [xn.nn.Conv2D(1, 4, 3, padding="SAME", seed=seed), xn.nn.ReLU(),
            xn.nn.MaxPool2D(2), xn.nn.Flatten(), xn.nn.Dropout(rate),
            xn.nn.Linear(4 * 4 * 4, 2, seed=seed + 1)]


def _images(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    return X, (X[:, :4].mean(axis=(1, 2, 3)) > X[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)


def test_nnclassifier_takes_a_layer_stack(dev, tmp_path):
    X, y = _images()
    model = xn.nn.NNClassifier(_cnn(), input_shape=(8, 8, 1), device=dev, seed=0)
    before = model.evaluate(X, y)[0]
    history = model.fit(X, y, epochs=15, batch_size=16, optimizer="adam", learning_rate=0.02,
                        verbose=0)
    assert history["loss"][-1] < history["loss"][0] and model.evaluate(X, y)[0] < before / 2
    assert model.score(X, y) > 0.85
    # inference runs dropout as the identity: the same answer twice
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "Linear"]
    assert model.layers[0].W.shape == (3, 3, 1, 4)
    path = tmp_path / "cnn.npz"
    model.save(path)
    other = xn.nn.NNClassifier(xn.nn.Sequential(_cnn(seed=5)), input_shape=(8, 8, 1),
                               device=dev)
    other.load_weights(path)
    np.testing.assert_allclose(other.predict_proba(X), model.predict_proba(X), rtol=1e-5,
                               atol=1e-6)
    loaded = xn.nn.NNClassifier.load(path, device=dev)  # the layers are stored too
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_dropout_is_on_in_fit_only():
    X, y = _images(16)
    on = xn.nn.NNClassifier(_cnn(rate=0.5), input_shape=(8, 8, 1), seed=0)
    off = xn.nn.NNClassifier(_cnn(rate=0.0), input_shape=(8, 8, 1), seed=0)
    np.testing.assert_array_equal(on.predict_proba(X), off.predict_proba(X))
    on.fit(X, y, epochs=1, batch_size=16, verbose=0)
    off.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(on.layers[1].W, off.layers[1].W)  # the masks changed the step


def test_a_layer_stack_needs_its_input_shape_and_a_class_axis():
    with pytest.raises(ValueError, match="a model of layers needs input_shape="):
        xn.nn.NNClassifier(_cnn())
    with pytest.raises(ValueError, match=r"output must have shape \(n_samples, n_classes\)"):
        xn.nn.NNClassifier([xn.nn.Conv2D(1, 2, 3)], input_shape=(8, 8, 1))
    model = xn.nn.NNClassifier(_cnn(), input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 8, 8, 1\)"):
        model.predict(np.zeros((2, 8, 8, 3), np.float32))
