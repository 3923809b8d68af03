"""xn.onnx.export: each kind of model trained a couple of steps on the backend under test,
exported, and run in onnxruntime at two batch sizes; its outputs equal the Session's."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install xpnn[onnx]")
ort = pytest.importorskip("onnxruntime",
                          reason="onnxruntime is not installed: pip install xpnn[onnx]")

BATCHES = (3, 7)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _train(sess, loss, feeds, updates=(), steps=2):
    """A couple of Adam steps, so that the exported weights are not the initial ones."""
    step = xn.train.AdamOptimizer(0.05).minimize(loss)
    for _ in range(steps):
        sess.run([step, *updates], feeds)


def _runtime(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _assert_same(tmp_path, sess, inputs, outputs, make_feed, fixed=None, **options):
    """Export, run both at each batch size, compare each output to dtype tolerance."""
    path = xn.onnx.export(sess, inputs, outputs, tmp_path / "model.onnx", **options)
    runtime = _runtime(path)
    names = [i.name for i in runtime.get_inputs()]
    assert len(names) == len(inputs)
    assert runtime.get_inputs()[0].shape[0] == "batch"
    for n in BATCHES:
        arrays = make_feed(n)
        got = runtime.run(None, dict(zip(names, arrays)))
        want = [xn.to_numpy(v) for v in  # (compat.v1's Session.run has no to_numpy=)
                sess.run(list(outputs), {**dict(zip(inputs, arrays)), **(fixed or {})})]
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    return path


def test_mlp_activations(dev, tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 4), name="x")
        labels = xn.placeholder("int32", (None,), name="labels")
        h = xn.nn.Linear(4, 8, seed=0)(x)
        h = xn.tanh(xn.nn.Linear(8, 8, seed=1)(xn.relu(h)))
        logits = xn.nn.Linear(8, 3, seed=2)(xn.sigmoid(h) - 0.5)
        loss = xn.losses.sparse_softmax_cross_entropy(labels, logits)
        probs, log_probs = xn.softmax(logits), xn.log_softmax(logits)
        sess = xn.Session(g, device=dev)
        X = _rng().standard_normal((16, 4)).astype("float32")
        _train(sess, loss, {x: X, labels: _rng().integers(0, 3, 16)})
        _assert_same(tmp_path, sess, [x], [logits, probs, log_probs],
                     lambda n: [_rng(n).standard_normal((n, 4)).astype("float32")])


def _images(n, shape=(8, 8, 2)):
    return [_rng(n).standard_normal((n, *shape)).astype("float32")]


def test_cnn_with_batch_norm_and_dropout(dev, tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 8, 8, 2), name="x")
        training = xn.placeholder("bool", (), name="training")
        net = xn.nn.Sequential(
            xn.nn.Conv2D(2, 4, 3, padding="SAME", seed=0), xn.nn.BatchNorm(4), xn.nn.ReLU(),
            xn.nn.MaxPool2D(2), xn.nn.Conv2D(4, 6, 2, strides=2, seed=1),
            xn.nn.AvgPool2D(3, strides=2, padding="SAME"), xn.nn.Dropout(0.5),
            xn.nn.Flatten(), xn.nn.Linear(6, 3, seed=2))
        logits = net(x, training)
        loss = xn.reduce_mean(xn.square(logits))
        sess = xn.Session(g, device=dev, seed=0)
        _train(sess, loss, {x: _images(16)[0], training: True}, net.updates())
        moving = sess.run(net[1].moving_mean, to_numpy=True)
        assert np.abs(moving).max() > 0  # the moving statistics the export folds in moved
        path = _assert_same(tmp_path, sess, [x], [logits], _images, {training: False})
    kinds = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Conv", "MaxPool", "AveragePool"} <= kinds
    assert not kinds & {"ReduceMean", "RandomUniformLike"}  # inference: no batch moments


def test_random_translation_is_the_identity_in_inference(dev, tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 8, 8, 2), name="x")
        training = xn.placeholder("bool", (), name="training")
        net = xn.nn.Sequential(xn.nn.RandomTranslation(0.2, 0.2), xn.nn.Conv2D(2, 3, 3, seed=0),
                               xn.nn.Flatten(), xn.nn.Linear(108, 2, seed=1))
        logits = net(x, training)
        sess = xn.Session(g, device=dev, seed=0)
        _train(sess, xn.reduce_mean(xn.square(logits)), {x: _images(16)[0], training: True})
        _assert_same(tmp_path, sess, [x], [logits], _images, {training: False})
        with pytest.raises(NotImplementedError, match="random translation while training"):
            xn.onnx.export(sess, x, logits, tmp_path / "m.onnx", feed_dict={training: True})


def test_functional_nchw_conv_and_slicing(dev, tmp_path):
    """conv2d, bias_add and pooling in NCHW with explicit padding, then x[...] slices
    (negative steps, ints, None), concat, stack, a reshape and a transpose."""
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 2, 7, 6), name="x")
        w = xn.Variable(_rng(1).standard_normal((3, 2, 2, 4)).astype("float32"), name="w")
        bias = xn.Variable(_rng(2).standard_normal(4).astype("float32"), name="bias")
        y = xn.conv2d(x, w, strides=(2, 1), padding=((1, 0), (0, 1)), data_format="NCHW",
                      dilations=1)
        y = xn.max_pool2d(xn.bias_add(y, bias, data_format="NCHW"), 2, 1, "SAME",
                          data_format="NCHW")
        parts = xn.concat([y[:, ::-1, 1:, :], y[:, :, :2, ::-2]], axis=3)
        out = xn.reshape(xn.transpose(parts, (0, 2, 3, 1)), (-1, 4))
        picked = xn.stack([y[:, 0, 0, 0], y[:, 1, -1, -1]], axis=1)[:, None, :]
        sess = xn.Session(g, device=dev)
        _assert_same(tmp_path, sess, [x], [out, picked], lambda n: _images(n, (2, 7, 6)))


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_recurrent_layers_with_lengths(dev, tmp_path, cell):
    """Unrolled (the default loop) over a fixed length; lengths mask the padded steps."""
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 5, 3), name="x")
        lengths = xn.placeholder("int32", (None,), name="lengths")
        layer = getattr(xn.nn, cell)(3, 4, return_sequences=True, return_state=True, seed=0)
        sequences, *state = layer(x, lengths=lengths)
        loss = xn.reduce_mean(xn.square(sequences))
        sess = xn.Session(g, device=dev)

        def feed(n):
            return [_rng(n).standard_normal((n, 5, 3)).astype("float32"),
                    _rng(n).integers(1, 6, n).astype("int32")]

        _train(sess, loss, dict(zip([x, lengths], feed(8))))
        _assert_same(tmp_path, sess, [x, lengths], [sequences, *state], feed)


def test_attention_transformer_with_embedding(dev, tmp_path):
    """Token ids through an Embedding (Gather), positions, a causal TransformerBlock with
    a lengths mask (masked softmax), and attention weights."""
    with xn.Graph().as_default() as g:
        ids = xn.placeholder("int32", (None, 6), name="ids")
        lengths = xn.placeholder("int32", (None,), name="lengths")
        training = xn.placeholder("bool", (), name="training")
        h = xn.nn.PositionalEncoding(6, 8)(xn.nn.Embedding(11, 8, seed=0)(ids))
        h = xn.nn.TransformerBlock(8, 2, 16, causal=True, dropout=0.1, activation="gelu_tanh",
                                   seed=1)(h, training, lengths=lengths)
        out, weights = xn.nn.MultiHeadAttention(8, 2, seed=2)(h, training, lengths=lengths,
                                                              return_weights=True)
        loss = xn.reduce_mean(xn.square(out))
        sess = xn.Session(g, device=dev, seed=0)

        def feed(n):
            return [_rng(n).integers(0, 11, (n, 6)).astype("int32"),
                    _rng(n).integers(1, 7, n).astype("int32")]

        _train(sess, loss, {**dict(zip([ids, lengths], feed(8))), training: True})
        _assert_same(tmp_path, sess, [ids, lengths], [out, weights], feed, {training: False})


def test_compat_v1_program(dev, tmp_path):
    """A TF1 program: tf.nn.conv2d, tf.layers.batch_normalization and dropout switched by
    a training placeholder, tf.layers.dense, and a keep_prob given for inference."""
    import xpnn.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 6, 6, 1], name="x")
        training = tf.placeholder_with_default(False, (), name="training")
        keep_prob = tf.placeholder(tf.float32, (), name="keep_prob")
        kernel = tf.get_variable("kernel", [3, 3, 1, 4])
        h = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME"))
        h = tf.layers.batch_normalization(h, training=training)
        h = tf.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
        h = tf.layers.dropout(tf.reshape(h, [-1, 36]), 0.3, training=training)
        h = tf.nn.dropout(tf.layers.dense(h, 8, activation=tf.nn.relu), keep_prob=keep_prob)
        logits = tf.layers.dense(h, 3)
        loss = tf.reduce_mean(tf.square(logits))
        step = tf.train.AdamOptimizer(0.05).minimize(loss)
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        sess = tf.Session(device=dev)
        sess.run(tf.global_variables_initializer())
        for _ in range(2):
            sess.run([step, updates], {x: _images(8, (6, 6, 1))[0], training: True,
                                       keep_prob: 0.5})
        _assert_same(tmp_path, sess, [x], [logits], lambda n: _images(n, (6, 6, 1)),
                     {training: False, keep_prob: 1.0}, feed_dict={keep_prob: 1.0})


def test_nnclassifier_and_model_export_onnx(dev, tmp_path):
    X, y = xn.data.make_moons(40, noise=0.1, seed=0)
    X = X.astype("float32")
    clf = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    clf.fit(X, y, epochs=2, verbose=0)
    runtime = _runtime(clf.export_onnx(tmp_path / "clf.onnx"))
    name = runtime.get_inputs()[0].name
    for n in BATCHES:
        np.testing.assert_allclose(runtime.run(None, {name: X[:n]})[0], clf.predict_proba(X[:n]),
                                   rtol=1e-4, atol=1e-5)
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Linear(2, 8, seed=0), xn.nn.BatchNorm(8), xn.nn.ReLU(),
                             xn.nn.Dropout(0.2), xn.nn.Linear(8, 2, seed=1)], input_shape=(2,),
                            device=dev)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=2, verbose=0)
    runtime = _runtime(model.export_onnx(tmp_path / "model.onnx"))
    np.testing.assert_allclose(runtime.run(None, {runtime.get_inputs()[0].name: X})[0],
                               model.predict(X), rtol=1e-4, atol=1e-5)


def test_unsupported_op_names_the_node(tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 4), name="x")
        values, _ = xn.top_k(x, 2)
        y = xn.relu(values, name="after")
        with pytest.raises(NotImplementedError, match="supported op types:.*MatMul") as error:
            xn.onnx.export(xn.Session(g), x, y, tmp_path / "m.onnx")
    assert values.label in str(error.value) and "TopK" in str(error.value)
    assert not (tmp_path / "m.onnx").exists()


def test_dropout_while_training_and_unfed_placeholder_are_refused(tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 4), name="x")
        scale = xn.placeholder("float32", (), name="scale")
        dropped = xn.dropout(x, 0.5, training=True, name="drop")
        with pytest.raises(NotImplementedError, match="dropout while training"):
            xn.onnx.export(xn.Session(g), x, dropped, tmp_path / "m.onnx")
        with pytest.raises(ValueError, match="placeholder scale .*feed_dict"):
            xn.onnx.export(xn.Session(g), x, x * scale, tmp_path / "m.onnx")
        path = xn.onnx.export(xn.Session(g), x, x * scale, tmp_path / "m.onnx",
                              feed_dict={scale: 3.0})
        X = np.ones((2, 4), "float32")
        np.testing.assert_allclose(_runtime(path).run(None, {"x": X})[0], 3 * X)


def test_a_branch_left_unused_by_inference_is_not_exported(tmp_path):
    """An unsupported op only the training branch reads does not stop the export."""
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 4), name="x")
        training = xn.placeholder("bool", (), name="training")
        noisy = x + xn.random_normal((4,), seed=0)
        y = xn.where(training, noisy, x) * 2.0
        path = xn.onnx.export(xn.Session(g), x, y, tmp_path / "m.onnx")
    X = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_allclose(_runtime(path).run(None, {"x": X})[0], 2 * X)


def test_recurrent_scan_loop_is_refused_naming_the_loop(tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 5, 3), name="x")
        y = xn.nn.LSTM(3, 4, loop="scan", seed=0)(x)
        with pytest.raises(NotImplementedError, match="control-flow op.*loop='unroll'"):
            xn.onnx.export(xn.Session(g), x, y, tmp_path / "m.onnx")


@pytest.mark.parametrize("opset", [13, 18])
def test_opsets_and_a_float64_session(tmp_path, opset):
    """Reductions take their axes as an attribute before opset 18, as an input from it;
    a Session(dtype="float64") exports float64 inputs, weights and outputs."""
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 3, 8), name="x")
        h = xn.nn.LayerNorm(8)(xn.nn.Linear(8, 8, seed=0)(x))
        y = xn.masked_softmax(h, h > 0.0) + xn.reduce_max(h, axis=1, keepdims=True)
        for dtype in ("float32", "float64"):
            _assert_same(tmp_path, xn.Session(g, dtype=dtype), [x], [y],
                         lambda n, dtype=dtype: [_rng(n).standard_normal((n, 3, 8)).astype(dtype)],
                         opset=opset)


def test_readme_block_runs_as_printed(tmp_path, monkeypatch):
    """The README's ONNX block, run as printed (it writes mlp.onnx where it runs)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("```python\nimport numpy as np, onnxruntime")
    code = text[start + len("```python\n"):text.index("```", start + 3)]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "mlp.onnx").exists()


def test_compat_v1_shapes_known_at_run_time(dev, tmp_path):
    """tf.reshape, tf.fill, tf.tile and tf.range given tf.shape(x) entries: the ONNX model
    computes them from the input's shape, at each batch size."""
    import xpnn.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 2, 3], name="x")
        n = tf.shape(x)[0]
        flat = tf.reshape(x, [n, -1])
        filled = tf.fill([n, 2], 0.5)
        tiled = tf.tile(x[:, :1, :], [1, tf.shape(x)[1], 1])
        steps = tf.cast(tf.range(tf.shape(x)[2]), tf.float32)
        y = tf.concat([flat, filled], axis=1) + tf.reduce_sum(tiled * steps)
        sess = tf.Session(device=dev)
        _assert_same(tmp_path, sess, [x], [y], lambda n: _images(n, (2, 3)))


def test_bad_arguments_name_what_is_wrong(tmp_path):
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 2), name="x")
        w = xn.Variable(np.ones((2, 2), "float32"), name="w")
        y = x @ w
        sess = xn.Session(g)
        with pytest.raises(TypeError, match="got Model .*export_onnx"):
            xn.onnx.export(xn.nn.Model(inputs=x, outputs=y), x, y, tmp_path / "m.onnx")
        with pytest.raises(TypeError, match="input w is a variable, not a placeholder"):
            xn.onnx.export(sess, w, y, tmp_path / "m.onnx")
        with pytest.raises(ValueError, match="opset must be an int >= 13"):
            xn.onnx.export(sess, x, y, tmp_path / "m.onnx", opset=11)
    with xn.Graph().as_default():
        other = xn.placeholder("float32", (None, 2), name="other")
    with pytest.raises(ValueError, match="other belongs to another graph"):
        xn.onnx.export(sess, other, y, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_compat_v1_static_rnn_exports_and_dynamic_rnn_is_refused(dev, tmp_path):
    import xpnn.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 4, 3], name="x")
        lengths = tf.placeholder(tf.int32, [None], name="lengths")
        cell = tf.nn.rnn_cell.BasicLSTMCell(5)
        outputs, state = tf.nn.static_rnn(cell, tf.unstack(x, axis=1), dtype=tf.float32,
                                          sequence_length=lengths)
        with tf.variable_scope("dynamic"):
            looped, _ = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
        sess = tf.Session(device=dev)
        sess.run(tf.global_variables_initializer())

        def feed(n):
            return [_rng(n).standard_normal((n, 4, 3)).astype("float32"),
                    _rng(n).integers(1, 5, n).astype("int32")]

        _assert_same(tmp_path, sess, [x, lengths], [tf.stack(outputs, axis=1), state.h],
                     feed)
        with pytest.raises(NotImplementedError, match="'dynamic/rnn/rnn' .*static_rnn.*Scan"):
            xn.onnx.export(sess, [x, lengths], looped)
