"""SimpleRNN, LSTM, GRU and Bidirectional (issue #26) against PyTorch's nn.RNN, nn.LSTM and
nn.GRU with the same weights copied in: values and gradients with respect to the input,
the initial state and every parameter, in float64; lengths against packed sequences;
saving; bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn.host import to_numpy

B, T, F, H = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 4])
KINDS = ["SimpleRNN", "LSTM", "GRU"]
TORCH = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
PARTS = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def _torch():
    return pytest.importorskip("torch", reason="the reference is PyTorch's nn.LSTM/GRU/RNN")


def _data(kind, bidirectional):
    """x, the initial state tensors (ours: h [, c] per direction) and the loss's weights."""
    rng = np.random.default_rng(1)
    n_states = (2 if kind == "LSTM" else 1) * (2 if bidirectional else 1)
    x = rng.standard_normal((B, T, F))
    states = [rng.standard_normal((B, H)) * 0.5 for _ in range(n_states)]
    width = 2 * H if bidirectional else H
    weights = [rng.standard_normal((B, T, width))] + [rng.standard_normal((B, H))
                                                      for _ in range(n_states)]
    return x, states, weights


def _xpnn_run(dev, kind, bidirectional, lengths, x, states, weights, torch_module, loop):
    """Our outputs [sequence, final states...] and the gradients of sum(out * weights) with
    respect to x, the initial states and the parameters (PyTorch's order)."""
    g = xn.Graph()
    with g.as_default():
        xs = xn.placeholder("float64", (None, T, F), name="x")
        s0 = [xn.placeholder("float64", (None, H), name=f"s{i}") for i in range(len(states))]
        feed = {xs: x, **dict(zip(s0, states))}
        layer = getattr(xn.nn, kind)(F, H, return_sequences=True, return_state=True,
                                     dtype="float64", seed=0, loop=loop)
        if bidirectional:
            layer = xn.nn.Bidirectional(layer, seed=1)
        lens = None
        if lengths is not None:
            lens = xn.placeholder("int64", (None,), name="lengths")
            feed[lens] = lengths
        outs = layer(xs, lengths=lens, initial_state=s0)
        loss = xn.add_n([xn.reduce_sum(o * w) for o, w in zip(outs, weights)])
        params = layer.parameters()
        grads = xn.gradients(loss, [xs, *s0, *params])
    sess = xn.Session(g, device=dev)
    suffixes = ["", "_reverse"] if bidirectional else [""]
    names = [f"{part}_l0{suffix}" for suffix in suffixes for part in PARTS]
    for variable, name in zip(params, names):
        sess.set_value(variable, getattr(torch_module, name).detach().numpy())
    got = sess.run([*outs, *grads], feed, to_numpy=True)
    return got[:len(outs)], got[len(outs):], names


def _torch_run(torch_module, kind, lengths, x, states, weights, names):
    """PyTorch's outputs and gradients, the same loss."""
    torch = _torch()
    xt = torch.tensor(x, requires_grad=True)
    dirs = len(names) // 4
    # ours: [h_fw, (c_fw), h_bw, (c_bw)]; PyTorch's: h0 (dirs, B, H) [, c0]
    per_dir = len(states) // dirs
    st = [torch.tensor(np.stack([states[d * per_dir + k] for d in range(dirs)]),
                       requires_grad=True) for k in range(per_dir)]
    inp = xt if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, final = torch_module(inp, tuple(st) if kind == "LSTM" else st[0])
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    final = list(final) if kind == "LSTM" else [final]
    ours = [out] + [final[k][d] for d in range(dirs) for k in range(per_dir)]
    loss = sum((o * torch.tensor(w)).sum() for o, w in zip(ours, weights))
    wanted = [xt] + [s for s in st] + [getattr(torch_module, n) for n in names]
    grads = torch.autograd.grad(loss, wanted)
    # the states' gradients back in our order: per direction, then per tensor
    state_grads = [grads[1 + k][d] for d in range(dirs) for k in range(per_dir)]
    values = [o.detach().numpy() for o in ours]
    return values, [grads[0].numpy(), *state_grads, *(g.numpy() for g in grads[1 + per_dir:])]


@pytest.mark.parametrize("loop", xn.nn.recurrent.LOOPS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one_way", "bidirectional"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_pytorch_values_and_gradients(dev, kind, lengths, bidirectional, loop):
    torch = _torch()
    torch.manual_seed(0)
    module = getattr(torch.nn, TORCH[kind])(F, H, batch_first=True,
                                            bidirectional=bidirectional).double()
    x, states, weights = _data(kind, bidirectional)
    ours, our_grads, names = _xpnn_run(dev, kind, bidirectional, lengths, x, states, weights,
                                       module, loop)
    theirs, their_grads = _torch_run(module, kind, lengths, x, states, weights, names)
    what = ["output"] + [f"final state {i}" for i in range(len(states))]
    for name, a, b in zip(what, ours, theirs):
        np.testing.assert_allclose(a, b, **tolerance("float64"), err_msg=name)
    what = ["x"] + [f"initial state {i}" for i in range(len(states))] + names
    assert len(our_grads) == len(their_grads) == len(what)
    for name, a, b in zip(what, our_grads, their_grads):
        np.testing.assert_allclose(a, b, **tolerance("float64"), err_msg=f"d loss / d {name}")


def _forward(dev, layer, x, **inputs):
    g = xn.get_default_graph()
    xs = xn.placeholder("float64", (None, T, F))
    feeds = {xs: x}
    kwargs = {}
    for key, value in inputs.items():
        kwargs[key] = xn.placeholder(value.dtype.name, value.shape)
        feeds[kwargs[key]] = value
    out = layer(xs, **kwargs)
    return xn.Session(g, device=dev).run(out, feeds, to_numpy=True)


@pytest.mark.parametrize("loop", xn.nn.recurrent.LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_last_output_is_the_state_at_each_length_and_mask_equals_lengths(dev, kind, loop):
    x = np.random.default_rng(2).standard_normal((B, T, F))
    mask = np.arange(T) < LENGTHS[:, None]
    with xn.Graph().as_default():
        make = functools.partial(getattr(xn.nn, kind), loop=loop)
        seq = make(F, H, return_sequences=True, dtype="float64", seed=3, name="a")
        last = make(F, H, dtype="float64", seed=3, name="b")
        by_lengths = _forward(dev, seq, x, lengths=LENGTHS)
        by_mask = _forward(dev, seq, x, mask=mask)
        by_float_mask = _forward(dev, seq, x, mask=mask.astype(np.float64))
        final = _forward(dev, last, x, lengths=LENGTHS)
    np.testing.assert_array_equal(by_lengths, by_mask)
    np.testing.assert_array_equal(by_lengths, by_float_mask)
    assert not by_lengths[~mask].any()  # zeros past each end
    last_real = by_lengths[np.arange(B), LENGTHS - 1]
    np.testing.assert_allclose(final, last_real, **tolerance("float64"))
    # and each sequence alone, cut to its length, gives the same
    for i, n in enumerate(LENGTHS):
        with xn.Graph().as_default():
            alone = make(F, H, dtype="float64", seed=3, name="b")
            xs = xn.placeholder("float64", (None, n, F))
            got = xn.Session(device=dev).run(alone(xs), {xs: x[i:i + 1, :n]}, to_numpy=True)
        np.testing.assert_allclose(got[0], final[i], **tolerance("float64"))


def test_bidirectional_last_output_joins_both_final_states(dev):
    x = np.random.default_rng(4).standard_normal((B, T, F))
    with xn.Graph().as_default():
        bi = xn.nn.Bidirectional(xn.nn.GRU(F, H, return_state=True, dtype="float64",
                                           seed=0), seed=1)
        out, h_fw, h_bw = _forward(dev, bi, x, lengths=LENGTHS)
    assert out.shape == (B, 2 * H)
    np.testing.assert_array_equal(out, np.concatenate([h_fw, h_bw], axis=1))


def test_layout_names_and_config():
    with xn.Graph().as_default():
        lstm = xn.nn.LSTM(F, H, seed=0)
        gru, rnn = xn.nn.GRU(F, H), xn.nn.SimpleRNN(F, H)
        bi = xn.nn.Bidirectional(xn.nn.LSTM(F, H, seed=0))
    assert [v.shape for v in lstm.parameters()] == [(4 * H, F), (4 * H, H), (4 * H,),
                                                    (4 * H,)]
    assert gru.weight_ih.shape == (3 * H, F) and rnn.weight_hh.shape == (H, H)
    assert [lstm.name, gru.name, rnn.name, bi.name] == ["lstm", "gru", "simple_rnn",
                                                        "bidirectional"]
    assert lstm.weight_ih.name == "lstm/weight_ih"
    assert bi.backward.weight_ih.name == "bidirectional/backward/weight_ih"
    limit = 1 / np.sqrt(H)  # PyTorch's initialisation
    assert 0.5 * limit < np.abs(lstm.weight_hh.initial_value).max() <= limit
    assert xn.nn.LSTM.state_shapes(**lstm.config()) == {k: v.shape for k, v in
                                                        lstm.state().items()}
    assert xn.nn.Bidirectional.state_shapes(**bi.config()) == {k: v.shape for k, v in
                                                               bi.state().items()}
    again = xn.nn.Bidirectional(**bi.config())
    assert repr(again) == "Bidirectional(LSTM(4, 6))"


# ------------------------------------------------------------------------------ saving


def _sequences(n=32):
    """Three classes of sequences: which third of the steps holds the largest value."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, T, F)).astype(np.float32)
    return X, (np.argmax(X[:, :, 0], axis=1) * 3 // T).astype(np.int64)


@pytest.mark.parametrize("make", [
    lambda: xn.nn.SimpleRNN(F, H, seed=0),
    lambda: xn.nn.LSTM(F, H, seed=0),
    lambda: xn.nn.GRU(F, H, seed=0, name="my_gru"),
    lambda: xn.nn.Bidirectional(xn.nn.LSTM(F, H // 2, seed=0), seed=1),
], ids=["SimpleRNN", "LSTM", "GRU", "Bidirectional"])
def test_save_and_load_round_trip(tmp_path, dev, make):
    X, y = _sequences()
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([make(), xn.nn.Linear(H, 3, seed=2)], input_shape=(T, F),
                                   device=dev)
    model.fit(X, y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.02, verbose=0)
    model.save(tmp_path / "rnn.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "rnn.npz", device=dev)
    assert repr(loaded.net) == repr(model.net)
    assert [la.config() for la in loaded.net.layers] == [la.config() for la in model.net.layers]
    before = {k: to_numpy(model.session.get_value(v)) for k, v in model._param_names().items()}
    after = {k: to_numpy(loaded.session.get_value(v)) for k, v in loaded._param_names().items()}
    assert sorted(before) == sorted(after) and len(before) in (6, 10)
    for name, value in before.items():
        assert after[name].tobytes() == value.tobytes(), name
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_load_names_a_corrupt_wrapped_layer(tmp_path):
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([xn.nn.Bidirectional(xn.nn.GRU(F, 2, seed=0)),
                                    xn.nn.Linear(4, 3)], input_shape=(T, F))
    model.save(tmp_path / "bi.npz")
    arrays = dict(np.load(tmp_path / "bi.npz"))
    record = str(arrays["__layers__"])
    for bad, message in [('"class": "GRU"', "'class': one of"),
                         ('"units": 2', "units=-2, which must be a whole number")]:
        worse = '"class": "Linear"' if bad.startswith('"class"') else '"units": -2'
        arrays["__layers__"] = np.asarray(record.replace(bad, worse))
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(ValueError, match=message):
            xn.nn.NNClassifier.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("shape, inputs, error, message", [
    ((None, T, 3), {}, ValueError, r"'lstm' \(LSTM\(4, 6\)\) takes inputs with 4 features"),
    ((None, None, F), {}, ValueError, "known number of time steps"),
    ((None, F), {}, ValueError, r"shape \(batch, time, 4\)"),
    ((None, T, F), {"lengths": ("int32", (None, 2))}, ValueError,
     r"lengths must have shape \(batch,\)"),
    ((2, T, F), {"lengths": ("int32", (3,))}, ValueError, r"lengths must have shape"),
    ((None, T, F), {"lengths": ("float32", (None,))}, TypeError, "lengths must be integers"),
    ((None, T, F), {"mask": ("bool", (None, T + 1))}, ValueError, "mask must have shape"),
    ((None, T, F), {"lengths": ("int32", (None,)), "mask": ("bool", (None, T))}, ValueError,
     "lengths or mask, not both"),
    ((None, T, F), {"initial_state": [("float32", (None, H))]}, ValueError,
     r"initial_state must be 2 tensor\(s\)"),
    ((None, T, F), {"initial_state": [("float32", (None, H)), ("float32", (None, 3))]},
     ValueError, r"initial_state tensors must have shape \(batch, 6\)"),
])
def test_bad_inputs_are_named_when_building(shape, inputs, error, message):
    with xn.Graph().as_default():
        lstm = xn.nn.LSTM(F, H)
        x = xn.placeholder("float32", shape)
        kwargs = {k: [xn.placeholder(*s) for s in v] if isinstance(v, list)
                  else xn.placeholder(*v) for k, v in inputs.items()}
        with pytest.raises(error, match=message):
            lstm(x, **kwargs)


def test_wrapping_a_non_recurrent_layer_is_refused():
    with pytest.raises(TypeError, match="Bidirectional wraps one of"):
        xn.nn.Bidirectional(xn.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="initial_state must be the forward layer's 2"):
        with xn.Graph().as_default():
            bi = xn.nn.Bidirectional(xn.nn.LSTM(F, H))
            bi(xn.placeholder("float32", (None, T, F)),
               initial_state=[xn.placeholder("float32", (None, H))] * 2)


@pytest.mark.parametrize("bad", [[5, 6, 1], [5, -1, 2]])
def test_lengths_out_of_range_fail_the_step_and_change_nothing(dev, bad):
    X = np.random.default_rng(5).standard_normal((B, T, F)).astype(np.float32)
    with xn.Graph().as_default() as g:
        gru = xn.nn.GRU(F, H, seed=0)
        x, lengths = xn.placeholder("float32", (None, T, F)), xn.placeholder("int32", (None,))
        loss = xn.reduce_sum(gru(x, lengths=lengths) ** 2)
        step = xn.train.GradientDescentOptimizer(0.1).minimize(loss)
    sess = xn.Session(g, device=dev)
    before = [to_numpy(sess.get_value(v)).copy() for v in gru.parameters()]
    with pytest.raises(xn.NumericsError, match=r"'gru': lengths must lie in \[0, 5\]"):
        sess.run(step, {x: X, lengths: np.array(bad, np.int32)})
    for value, variable in zip(before, gru.parameters()):
        np.testing.assert_array_equal(to_numpy(sess.get_value(variable)), value)
    sess.run(step, {x: X, lengths: np.array([5, 0, 2], np.int32)})  # in range: it runs
    assert not np.array_equal(to_numpy(sess.get_value(gru.weight_ih)), before[0])


@pytest.mark.parametrize("kind", KINDS)
def test_a_scanned_layer_takes_any_number_of_steps_and_equals_the_unrolled_one(dev, kind):
    x = np.random.default_rng(5).standard_normal((B, T, F))
    with xn.Graph().as_default():
        any_steps = xn.placeholder("float64", (None, None, F))
        fixed = xn.placeholder("float64", (None, T, F))
        make = getattr(xn.nn, kind)
        scanned = make(F, H, return_sequences=True, dtype="float64", seed=3, loop="scan")
        unrolled = make(F, H, return_sequences=True, dtype="float64", seed=3)
        a, b = scanned(any_steps), unrolled(fixed)
        loss = xn.reduce_sum(a * a)
        grads = xn.gradients(loss, scanned.parameters())
        sess = xn.Session(device=dev)
        got, want = sess.run([a, b], {any_steps: x, fixed: x}, to_numpy=True)
        shorter = sess.run(a, {any_steps: x[:, :3]}, to_numpy=True)
        sess.run(grads, {any_steps: x})
    np.testing.assert_allclose(got, want, **tolerance("float64"))
    np.testing.assert_allclose(shorter, want[:, :3], **tolerance("float64"))
    with pytest.raises(ValueError, match="known number of time steps"):
        unrolled(any_steps)
    with pytest.raises(ValueError, match="loop must be one of"):
        make(F, H, loop="while")
