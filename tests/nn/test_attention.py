"""The sequence layers (xpnn/nn/attention.py, xpnn/nn/embedding.py) against torch.nn with
copied weights, in float64 on each backend: values, and the gradients of sum(y * R) (R a
fixed random array) w.r.t. the input and every parameter; masks, saving, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import assert_close

B, L, D, H, FF = 3, 5, 8, 2, 12


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: no reference to "
                                               "compare with (pip install torch)")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _grads(dev, y, inputs, set_values=None, feed=None):
    """(y, d sum(y * R)/d each of ``inputs``), run on ``dev``, and R."""
    R = _rng(7).standard_normal(y.shape)
    loss = xn.reduce_sum(y * xn.constant(R))
    session = xn.Session(device=dev)
    for variable, value in (set_values or {}).items():
        session.set_value(variable, np.asarray(value))
    out = session.run([y, *xn.gradients(loss, inputs)], feed, to_numpy=True)
    return out[0], out[1:], R


def _torch_grads(torch, y, tensors, R):
    (y * torch.as_tensor(R)).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in tensors]


def _compare(ours, theirs):
    (y, grads), (ty, tgrads) = ours, theirs
    assert_close(y, ty, "float64")
    assert len(grads) == len(tgrads)
    for g, tg in zip(grads, tgrads):
        assert_close(g, tg, "float64")


# ----------------------------------------------------------------------------- Embedding


def test_embedding_matches_torch(dev):
    torch = _torch()
    ids = np.array([[1, 4, 4, 0], [9, 1, 1, 1]])  # repeats: their gradients add up
    with xn.Graph().as_default():
        layer = xn.nn.Embedding(10, D, seed=0, dtype="float64")
        table = _rng().standard_normal((10, D))
        y, grads, R = _grads(dev, layer(xn.constant(ids)), [layer.weight],
                             {layer.weight: table})
    reference = torch.nn.Embedding(10, D).double()
    with torch.no_grad():
        reference.weight.copy_(torch.as_tensor(table))
    theirs = _torch_grads(torch, reference(torch.as_tensor(ids)), [reference.weight], R)
    assert y.shape == (2, 4, D)
    _compare((y, grads), theirs)


def test_embedding_takes_float_ids_and_refuses_bool(dev):
    with xn.Graph().as_default():
        layer = xn.nn.Embedding(5, 3, seed=0)
        ids = xn.placeholder("float32", (None, 2))
        y = xn.Session(device=dev).run(layer(ids), {ids: np.array([[4.0, 1.0]], np.float32)},
                                       to_numpy=True)
        table = xn.Session(device=dev).run(layer.weight, to_numpy=True)
        np.testing.assert_array_equal(y, table[[[4, 1]]])
        with pytest.raises(TypeError, match=r"takes integer token ids, got bool"):
            layer(xn.placeholder("bool", (None, 2)))


# ----------------------------------------------------------------------------- LayerNorm


def test_layer_norm_matches_torch(dev):
    torch = _torch()
    x = _rng(1).standard_normal((B, L, D)) * 3.0 + 1.0
    gamma, beta = _rng(2).standard_normal(D), _rng(3).standard_normal(D)
    eps = 0.5  # large, so eps inside or outside the square root would differ
    with xn.Graph().as_default():
        layer = xn.nn.LayerNorm(D, eps=eps, dtype="float64")
        xv = xn.Variable(x)
        ours = _grads(dev, layer(xv), [xv, layer.gamma, layer.beta],
                      {layer.gamma: gamma, layer.beta: beta})
    reference = torch.nn.LayerNorm(D, eps=eps).double()
    with torch.no_grad():
        reference.weight.copy_(torch.as_tensor(gamma))
        reference.bias.copy_(torch.as_tensor(beta))
    tx = torch.tensor(x, requires_grad=True)
    theirs = _torch_grads(torch, reference(tx), [tx, reference.weight, reference.bias], ours[2])
    _compare(ours[:2], theirs)


# -------------------------------------------------------------------- MultiHeadAttention


def _torch_attention(torch, dim, heads):
    """A torch.nn.MultiheadAttention with random weights and biases."""
    reference = torch.nn.MultiheadAttention(dim, heads, batch_first=True).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * 0.5)
    return reference


def _attention_values(mha, reference, prefix=""):
    """{xpnn Variable: the value of its twin in a torch.nn.MultiheadAttention}, and the torch
    parameters in the order of ``mha.parameters()``."""
    d = mha.dim
    w, b = reference.in_proj_weight, reference.in_proj_bias
    twins = {"Wq": (w, slice(0, d), True), "Wk": (w, slice(d, 2 * d), True),
             "Wv": (w, slice(2 * d, 3 * d), True), "Wo": (reference.out_proj.weight, None, True),
             "bq": (b, slice(0, d), False), "bk": (b, slice(d, 2 * d), False),
             "bv": (b, slice(2 * d, 3 * d), False), "bo": (reference.out_proj.bias, None, False)}
    values = {}
    for name, variable in mha.state().items():
        tensor, part, transposed = twins[name]
        value = tensor.detach().numpy()[part if part is not None else slice(None)]
        values[variable] = value.T if transposed else value
    return values


def _attention_grad_of(name, d, grads):
    """The gradient of xpnn's ``name`` from torch's in_proj / out_proj gradients."""
    w, b, ow, ob = grads
    i = "qkv".find(name[1])
    if name == "Wo":
        return ow.T
    if name == "bo":
        return ob
    return w[i * d:(i + 1) * d].T if name[0] == "W" else b[i * d:(i + 1) * d]


MASKS = ["none", "causal", "key_mask", "lengths", "causal_and_lengths"]


def _masks(kind):
    """(causal, key_mask, lengths) for xpnn, and torch's (attn_mask, key_padding_mask)."""
    lengths = np.array([5, 3, 1])
    by_length = np.arange(L)[None, :] < lengths[:, None]
    causal = "causal" in kind
    attn_mask = ~np.tril(np.ones((L, L), bool)) if causal else None
    if kind in ("lengths", "causal_and_lengths"):
        return (causal, None, lengths), (attn_mask, ~by_length)
    if kind == "key_mask":
        keep = np.ones((B, L), bool)
        keep[0, 1], keep[2, 3:] = False, False
        return (causal, keep, None), (None, ~keep)
    return (causal, None, None), (attn_mask, None)


@pytest.mark.parametrize("kind", MASKS)
def test_multi_head_attention_matches_torch(dev, kind):
    torch = _torch()
    (causal, key_mask, lengths), (attn_mask, padding) = _masks(kind)
    x = _rng(1).standard_normal((B, L, D))
    reference = _torch_attention(torch, D, H)
    with xn.Graph().as_default():
        mha = xn.nn.MultiHeadAttention(D, H, causal=causal, dtype="float64")
        xv = xn.Variable(x)
        y, weights = mha(xv, key_mask=key_mask, lengths=lengths, return_weights=True)
        state = mha.state()
        ours = _grads(dev, y, [xv, *state.values()], _attention_values(mha, reference))
        seen = xn.Session(device=dev)
        for variable, value in _attention_values(mha, reference).items():
            seen.set_value(variable, value)
        weights = seen.run(weights, to_numpy=True)
    tx = torch.tensor(x, requires_grad=True)
    ty, tweights = reference(tx, tx, tx, attn_mask=None if attn_mask is None else
                             torch.as_tensor(attn_mask), key_padding_mask=None if padding is
                             None else torch.as_tensor(padding), average_attn_weights=False)
    params = [reference.in_proj_weight, reference.in_proj_bias, reference.out_proj.weight,
              reference.out_proj.bias]
    ty, (gx, *gparams) = _torch_grads(torch, ty, [tx, *params], ours[2])
    expected = [gx, *(_attention_grad_of(name, D, gparams) for name in state)]
    _compare(ours[:2], (ty, expected))
    assert_close(weights, tweights.detach().numpy(), "float64")


def test_masked_keys_get_exactly_zero_weight_and_no_influence(dev):
    x = _rng(4).standard_normal((B, L, D))
    lengths = np.array([5, 3, 2])
    with xn.Graph().as_default():
        mha = xn.nn.MultiHeadAttention(D, H, causal=True, seed=0, dtype="float64")
        xp = xn.placeholder("float64", (None, L, D))
        y, weights = mha(xp, lengths=lengths, return_weights=True)
        session = xn.Session(device=dev)
        y1, w = session.run([y, weights], {xp: x}, to_numpy=True)
        changed = x.copy()
        changed[1, 3:], changed[2, 2:] = 1e3, -1e3  # the padding, made huge
        y2 = session.run(y, {xp: changed}, to_numpy=True)
    keep = (np.arange(L)[None, :] < lengths[:, None])[:, None, None, :] & np.tril(
        np.ones((L, L), bool))
    assert (w[~np.broadcast_to(keep, w.shape)] == 0.0).all()
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    for b, n in enumerate(lengths):  # the real positions see nothing of the padding
        np.testing.assert_array_equal(y1[b, :n], y2[b, :n])


def test_a_query_with_every_key_masked_gets_zero_weights_not_nan(dev):
    x = _rng(7).standard_normal((B, L, D))
    with xn.Graph().as_default():
        mha = xn.nn.MultiHeadAttention(D, H, seed=0, dtype="float64")
        xv = xn.Variable(x)
        y, weights = mha(xv, lengths=np.array([L, 0, 2]), return_weights=True)
        dx, = xn.gradients(xn.reduce_sum(y * y), [xv])
        y, w, g = xn.Session(device=dev).run([y, weights, dx], to_numpy=True)
    assert (w[1] == 0.0).all() and np.isfinite(y).all() and np.isfinite(g).all()
    np.testing.assert_allclose(w[[0, 2]].sum(axis=-1), 1.0, rtol=1e-12)


def test_cross_attention_of_another_length(dev):
    torch = _torch()
    q, kv = _rng(5).standard_normal((B, 2, D)), _rng(6).standard_normal((B, L, D))
    reference = _torch_attention(torch, D, H)
    with xn.Graph().as_default():
        mha = xn.nn.MultiHeadAttention(D, H, dtype="float64")
        qv, kvv = xn.Variable(q), xn.Variable(kv)
        ours = _grads(dev, mha.attend(qv, kvv, kvv), [qv, kvv],
                      _attention_values(mha, reference))
    tq, tkv = torch.tensor(q, requires_grad=True), torch.tensor(kv, requires_grad=True)
    theirs = _torch_grads(torch, reference(tq, tkv, tkv)[0], [tq, tkv], ours[2])
    _compare(ours[:2], theirs)


# ---------------------------------------------------------------------- TransformerBlock


def _torch_block(torch, norm_first, activation):
    act = "relu" if activation == "relu" else (
        lambda t: torch.nn.functional.gelu(t, approximate="tanh"))
    reference = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=act,
                                                 batch_first=True, norm_first=norm_first)
    reference = reference.double().train()  # train(): torch's slow path, as ours
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * 0.3)
    return reference


def _block_values(block, reference):
    values = _attention_values(block.attention, reference.self_attn)
    for ours, theirs in ((block.norm1, reference.norm1), (block.norm2, reference.norm2)):
        values[ours.gamma], values[ours.beta] = (theirs.weight.detach().numpy(),
                                                 theirs.bias.detach().numpy())
    for ours, theirs in ((block.ff1, reference.linear1), (block.ff2, reference.linear2)):
        values[ours.weight], values[ours.bias] = (theirs.weight.detach().numpy().T,
                                                  theirs.bias.detach().numpy())
    return values


def _block_grads(block, reference):
    """torch's gradients in the order of ``block.state()``."""
    a = reference.self_attn
    attention = [a.in_proj_weight.grad, a.in_proj_bias.grad, a.out_proj.weight.grad,
                 a.out_proj.bias.grad]
    attention = [g.numpy() for g in attention]
    out = [_attention_grad_of(name, D, attention) for name in block.attention.state()]
    for norm in (reference.norm1, reference.norm2):
        out += [norm.weight.grad.numpy(), norm.bias.grad.numpy()]
    for linear in (reference.linear1, reference.linear2):
        out += [linear.weight.grad.numpy().T, linear.bias.grad.numpy()]
    return out


@pytest.mark.parametrize("norm_first,activation,causal", [
    (False, "relu", False), (True, "relu", True), (True, "gelu_tanh", False),
    (False, "gelu_tanh", True)])
def test_transformer_block_matches_torch_encoder_layer(dev, norm_first, activation, causal):
    torch = _torch()
    x = _rng(8).standard_normal((B, L, D))
    lengths = np.array([5, 4, 2])
    reference = _torch_block(torch, norm_first, activation)
    with xn.Graph().as_default():
        block = xn.nn.TransformerBlock(D, H, FF, causal=causal, norm_first=norm_first,
                                       activation=activation, dtype="float64")
        xv = xn.Variable(x)
        ours = _grads(dev, block(xv, lengths=lengths), [xv, *block.parameters()],
                      _block_values(block, reference))
    tx = torch.tensor(x, requires_grad=True)
    mask = torch.as_tensor(~np.tril(np.ones((L, L), bool))) if causal else None
    padding = torch.as_tensor(~(np.arange(L)[None, :] < lengths[:, None]))
    ty = reference(tx, src_mask=mask, src_key_padding_mask=padding)
    (ty * torch.as_tensor(ours[2])).sum().backward()
    _compare(ours[:2], (ty.detach().numpy(), [tx.grad.numpy(), *_block_grads(block, reference)]))


def test_transformer_block_dropout_follows_the_training_flag(dev):
    x = _rng(9).standard_normal((B, L, D)).astype(np.float32)
    with xn.Graph().as_default():
        block = xn.nn.TransformerBlock(D, H, FF, dropout=0.5, seed=0)
        plain = xn.nn.TransformerBlock(D, H, FF, seed=0)
        training = xn.placeholder("bool", ())
        xp = xn.placeholder("float32", (None, L, D))
        session = xn.Session(device=dev, seed=0)
        for ours, theirs in zip(block.parameters(), plain.parameters()):
            session.set_value(ours, session.get_value(theirs))
        off, reference = session.run([block(xp, training), plain(xp, False)],
                                     {xp: x, training: False}, to_numpy=True)
        on = session.run(block(xp, training), {xp: x, training: True}, to_numpy=True)
    np.testing.assert_array_equal(off, reference)
    assert np.abs(on - reference).max() > 1e-2


# ------------------------------------------------------------------ positional encodings


def test_positional_encoding_is_the_papers_sinusoids(dev):
    dim, max_len = 6, 10
    expected = np.zeros((max_len, dim))
    for pos in range(max_len):
        for i in range(0, dim, 2):
            angle = pos / 10000 ** (i / dim)
            expected[pos, i], expected[pos, i + 1] = np.sin(angle), np.cos(angle)
    x = _rng(10).standard_normal((2, 7, dim))
    with xn.Graph().as_default():
        xv = xn.Variable(x)
        y, (gx,), _ = _grads(dev, xn.nn.PositionalEncoding(max_len, dim, "float64")(xv), [xv])
    assert_close(y, x + expected[:7], "float64")
    assert_close(gx, _rng(7).standard_normal(x.shape), "float64")  # R itself: an addition


def test_position_embedding_learns_one_vector_per_position(dev):
    x = _rng(11).standard_normal((3, 4, 2))
    with xn.Graph().as_default():
        layer = xn.nn.PositionEmbedding(6, 2, seed=0, dtype="float64")
        xv = xn.Variable(x)
        y, (gx, gw), R = _grads(dev, layer(xv), [xv, layer.weight])
        table = xn.Session(device=dev).run(layer.weight, to_numpy=True)
    assert_close(y, x + table[:4], "float64")
    expected = np.zeros((6, 2))
    expected[:4] = R.sum(axis=0)  # each position's vector got every sample's gradient
    assert_close(gw, expected, "float64")


# ------------------------------------------------------------------------------ saving


LAYERS = {
    "Embedding": lambda: [xn.nn.Embedding(7, D, seed=0)],
    "PositionalEncoding": lambda: [xn.nn.Embedding(7, D, seed=0),
                                   xn.nn.PositionalEncoding(16, D)],
    "PositionEmbedding": lambda: [xn.nn.Embedding(7, D, seed=0),
                                  xn.nn.PositionEmbedding(16, D, seed=1)],
    "LayerNorm": lambda: [xn.nn.Embedding(7, D, seed=0), xn.nn.LayerNorm(D, eps=1e-3)],
    "MultiHeadAttention": lambda: [xn.nn.Embedding(7, D, seed=0),
                                   xn.nn.MultiHeadAttention(D, H, causal=True, seed=2)],
    "TransformerBlock": lambda: [xn.nn.Embedding(7, D, seed=0), xn.nn.TransformerBlock(
        D, H, FF, causal=True, norm_first=True, activation="gelu_tanh", seed=3)],
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_layer_saves_and_loads(dev, tmp_path, name):
    with xn.Graph().as_default():
        layers = [*LAYERS[name](), xn.nn.Flatten(), xn.nn.Linear(L * D, 3, seed=0)]
        model = xn.nn.NNClassifier(layers, input_shape=(L,), device=dev)
    X = _rng(12).integers(0, 7, (24, L))
    y = X[:, 0] % 3
    model.fit(X, y, epochs=2, batch_size=8, optimizer="adam", learning_rate=0.01, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "m.npz", device=dev)
    assert type(loaded.net.layers[-3]).__name__ == name
    assert [layer.config() for layer in loaded.net.layers] == [
        layer.config() for layer in model.net.layers]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    for key, variable in loaded.net.layers[-3].state().items():
        np.testing.assert_array_equal(
            xn.to_numpy(loaded.session.get_value(variable)),
            xn.to_numpy(model.session.get_value(model.net.layers[-3].state()[key])))


def test_layer_values_read_through_the_model(tmp_path):
    with xn.Graph().as_default():
        block = xn.nn.TransformerBlock(D, H, FF, seed=0)
        embed = xn.nn.Embedding(7, D, seed=0)
        model = xn.nn.NNClassifier([embed, block, xn.nn.Flatten(), xn.nn.Linear(L * D, 2)],
                                   input_shape=(L,))
    table = np.ones((7, D), np.float32)
    embed.W = table
    np.testing.assert_array_equal(xn.to_numpy(model.session.get_value(embed.weight)), table)
    assert block.attention.Wq.shape == (D, D) and block.norm2.gain.shape == (D,)


def test_a_bad_setting_in_a_file_is_named(tmp_path):
    import json

    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([*LAYERS["TransformerBlock"](), xn.nn.Flatten(),
                                    xn.nn.Linear(L * D, 3)], input_shape=(L,))
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    records = json.loads(str(arrays["__layers__"]))
    records[1]["config"]["causal"] = "yes"
    arrays["__layers__"] = np.asarray(json.dumps(records))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"layer 1 \(TransformerBlock\): causal='yes' must be "
                                         r"true or false"):
        xn.nn.NNClassifier.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make,match", [
    (lambda: xn.nn.MultiHeadAttention(10, 3), r"num_heads \(3\) must divide dim \(10\)"),
    (lambda: xn.nn.TransformerBlock(8, 2, 16, activation="gelu"),
     r"activation must be one of \['gelu_tanh', 'relu'\], got 'gelu'"),
    (lambda: xn.nn.LayerNorm(4, eps=-1.0), r"eps >= 0"),
    (lambda: xn.nn.Embedding(0, 4), r"vocab_size and dim must be >= 1"),
    (lambda: xn.nn.MultiHeadAttention(8, 2, dropout=1.0), r"dropout must lie in \[0, 1\)"),
])
def test_bad_settings_are_refused(make, match):
    with xn.Graph().as_default(), pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer,shape,match", [
    (lambda: xn.nn.MultiHeadAttention(8, 2, name="mha"), (None, 5, 6),
     r"'mha' .* takes a query of shape \(batch, length, 8\), got query X of shape "
     r"\(None, 5, 6\)"),
    (lambda: xn.nn.MultiHeadAttention(8, 2), (None, None, 8),
     r"length is known when the graph is built.*fixed length"),
    (lambda: xn.nn.TransformerBlock(8, 2, 4), (None, 5), r"takes an input of shape"),
    (lambda: xn.nn.LayerNorm(4), (None, 3, 5), r"normalises a last axis of 4.*\(None, 3, 5\)"),
    (lambda: xn.nn.PositionalEncoding(4, 8), (None, 5, 8),
     r"takes \(batch, length <= 4, 8\) inputs, got shape \(None, 5, 8\)"),
])
def test_inputs_that_do_not_fit_are_named(layer, shape, match):
    with xn.Graph().as_default():
        x = xn.placeholder("float32", shape, name="X")
        with pytest.raises(ValueError, match=match):
            layer()(x)


def test_causal_cross_attention_needs_one_length():
    with xn.Graph().as_default():
        mha = xn.nn.MultiHeadAttention(8, 2, causal=True)
        q, kv = xn.placeholder("float32", (None, 3, 8)), xn.placeholder("float32", (None, 4, 8))
        with pytest.raises(ValueError, match=r"causal mask needs queries and keys of one "
                                             r"length, got 3 and 4"):
            mha.attend(q, kv, kv)


def test_transformer_block_feed_forward_products_are_matrix_products():
    """The feed-forward multiplies (batch * length, dim) rows by its weights, one GEMM each,
    in the forward and the gradients: NumPy would multiply a 3-D input batch by batch, and
    make W's gradient a batched product summed over the batch (benchmarks/transformer_block.py)."""
    from xpnn.autodiff import topological_order

    with xn.Graph().as_default():
        block = xn.nn.TransformerBlock(D, H, FF)
        x = xn.placeholder("float32", (None, L, D))
        y = block(x)
        weights = [block.ff1.weight, block.ff2.weight]
        grads = xn.gradients(xn.reduce_sum(y), [x, *weights])
    products = [node for node in topological_order([y, *grads])
                if isinstance(node, (xn.ops.MatMul, xn.ops.MatMulGradA, xn.ops.MatMulGradB))
                and any(w in node.inputs for w in weights)]
    assert len(products) == 6  # forward, gradient of the input and of W, for each weight
    for node in products:
        ranks = [len(i.shape) for i in node.inputs]
        assert ranks.count(2) == len(ranks), f"{node.label}: operands of ranks {ranks}"
    assert y.shape == (None, L, D)
