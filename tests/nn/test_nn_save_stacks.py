"""NNClassifier.save / load for any stack of xpnn's layers (issue #12): the architecture is
stored as JSON beside the weights, checked against them before anything is built, and
rebuilt on any backend; MLP files keep their format; every bad file is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import tolerance
from xpnn import devices, dtypes, io
from xpnn.host import to_numpy
from xpnn.nn import saving

CPU = devices.resolve("cpu")
SHAPE = (8, 8, 1)


def _cnn(seed=0, dtype="float32"):
    """Every layer kind: 8x8x1 -> conv 8x8x4 -> max pool 4x4 -> conv -> avg pool 2x2 -> 16,
    in a graph of their own (so the first Conv2D is named "conv", the second "conv_1")."""
    with xn.Graph().as_default():
        return _layers(seed, dtype)


def _layers(seed, dtype):
    return [
        xn.nn.Conv2D(1, 4, 3, padding="SAME", seed=seed, dtype=dtype),
        xn.nn.BatchNorm(4, dtype=dtype), xn.nn.ReLU(), xn.nn.MaxPool2D(2),
        xn.nn.Conv2D(4, 4, (3, 3), strides=(1, 1), padding="SAME", seed=seed + 1, dtype=dtype),
        xn.nn.Sigmoid(), xn.nn.AvgPool2D(2, strides=2), xn.nn.Flatten(), xn.nn.Dropout(0.25),
        xn.nn.Linear(16, 8, seed=seed + 2, dtype=dtype), xn.nn.Tanh(),
        xn.nn.BatchNorm(8, momentum=0.9, epsilon=1e-4, dtype=dtype, name="bn2"),
        xn.nn.Linear(8, 3, seed=seed + 3, dtype=dtype, name="out"),
    ]


def _images(n=48):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((n, *SHAPE)) * 3.0 + 2.0).astype(np.float32)
    top, left = X[:, :4].mean(axis=(1, 2, 3)), X[:, :, :4].mean(axis=(1, 2, 3))
    return X, (top > 2.0).astype(np.int64) + (left > 2.0)  # three classes


def _trained(device=CPU, dtype="float32"):
    X, y = _images()
    model = xn.nn.NNClassifier(_cnn(dtype=dtype), input_shape=SHAPE, device=device,
                               dtype=dtype)
    model.fit(X, y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.02, verbose=0)
    return model


def _batch_norms(model):
    return [layer for layer in model.net.layers if isinstance(layer, xn.nn.BatchNorm)]


def _state(model):
    """Every saved value on the host, by file name (weights and moving statistics)."""
    return {k: to_numpy(model.session.get_value(v)).copy()
            for k, v in model._param_names().items()}


def _configs(model):
    return json.loads(json.dumps([(type(la).__name__, la.config()) for la in model.net.layers]))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained CNN saved on NumPy: (model, path)."""
    model = _trained()
    path = tmp_path_factory.mktemp("stack") / "cnn.npz"
    model.save(path)
    return model, path


# --------------------------------------------------------------------------------------------
# round trips


def test_cnn_round_trip_is_exact(tmp_path, dev):
    X, _ = _images()
    model = _trained(device=dev)
    model.save(tmp_path / "cnn.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "cnn.npz", device=dev)
    assert loaded.device is dev and dev.owns(loaded.layers[0].W)
    assert repr(loaded.net) == repr(model.net) and _configs(loaded) == _configs(model)
    assert loaded.input_shape == SHAPE and loaded.dtype == "float32"
    before, after = _state(model), _state(loaded)
    assert sorted(after) == sorted(before)
    for name, value in before.items():
        assert after[name].dtype == value.dtype and after[name].tobytes() == value.tobytes()
    # the fit moved the moving statistics, and the loaded model has them
    assert np.abs(before["layers.1.moving_mean"]).max() > 0.05
    assert np.abs(before["layers.4.moving_variance"] - 1).max() > 0.01
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_loaded_inference_uses_the_moving_statistics(saved):
    model, path = saved
    X, _ = _images()
    loaded = xn.nn.NNClassifier.load(path)
    # batch statistics would make a one-sample batch's answer differ from the full batch's
    np.testing.assert_allclose(loaded.predict_proba(X[:1]), loaded.predict_proba(X)[:1],
                               rtol=1e-5, atol=1e-6)
    for layer in _batch_norms(loaded):  # the statistics alone change the answer
        loaded.session.set_value(layer.moving_mean, np.zeros(layer.moving_mean.shape))
    assert not np.allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-3)


def test_float64_stack_round_trip(tmp_path, dev):
    X, _ = _images()
    model = _trained(device=dev, dtype="float64")
    model.save(tmp_path / "cnn64")
    loaded = xn.nn.NNClassifier.load(tmp_path / "cnn64", device=dev)
    assert loaded.dtype == "float64"
    assert {dtypes.dtype_name(a.dtype) for a in _state(loaded).values()} == {"float64"}
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_save_on_numpy_load_on_each_backend(saved, dev):
    model, path = saved
    X, _ = _images()
    loaded = xn.nn.NNClassifier.load(path, device=dev)
    assert loaded.device is dev and dev.owns(loaded.session.get_value(
        _batch_norms(loaded)[1].moving_mean))
    for name, value in _state(loaded).items():
        assert value.tobytes() == _state(model)[name].tobytes(), name
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X),
                               **tolerance("float32"))


def test_load_by_backend_name(saved):
    model, path = saved
    loaded = xn.nn.NNClassifier.load(path, device="device1", backend="array_api_strict")
    assert loaded.device.backend == "array_api_strict"
    X, _ = _images()
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X),
                               **tolerance("float32"))


def test_stack_file_is_plain_data(saved):
    model, path = saved
    with np.load(path, allow_pickle=False) as f:
        records = json.loads(str(f["__layers__"]))
        assert f["__input_shape__"].tolist() == list(SHAPE)
        assert str(f["__dtype__"]) == "float32"
        assert "__units__" not in f.files
        assert {"layers.1.moving_mean", "layers.4.moving_variance"} <= set(f.files)
    assert [r["class"] for r in records] == [type(la).__name__ for la in model.net.layers]
    assert {r["module"] for r in records} == {"xpnn.nn"}
    assert records[0]["config"] == {"in_channels": 1, "filters": 4, "kernel_size": [3, 3],
                                    "strides": 1, "padding": "SAME", "dtype": "float32",
                                    "name": "conv"}
    assert records[11]["config"] == {"channels": 8, "momentum": 0.9, "epsilon": 1e-4,
                                     "dtype": "float32", "name": "bn2"}
    assert records[8]["config"] == {"rate": 0.25}


def test_a_stack_given_as_an_mlp_object_round_trips(tmp_path):
    X, y = xn.data.make_moons(32, noise=0.1, seed=0)
    model = xn.nn.NNClassifier(xn.nn.MLP([2, 8, 2], seed=0), input_shape=(2,))
    model.fit(X, y, epochs=2, batch_size=8, learning_rate=0.3, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "m.npz")
    assert repr(loaded.net) == "Sequential(Linear(2, 8), ReLU(), Linear(8, 2))"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


# --------------------------------------------------------------------------------------------
# MLP files keep their format


def test_mlp_files_keep_their_format_and_load(tmp_path, dev):
    X, _ = xn.data.make_moons(32, noise=0.1, seed=0)
    model = xn.nn.NNClassifier([2, 6, 3], activation="sigmoid", device=dev)
    model.save(tmp_path / "mlp.npz")
    with np.load(tmp_path / "mlp.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["__activation__", "__units__", "layers.0.W", "layers.0.b",
                                   "layers.1.W", "layers.1.b"]
    loaded = xn.nn.NNClassifier.load(tmp_path / "mlp.npz", device=dev)
    assert loaded.units == [2, 6, 3] and loaded.activation == "sigmoid"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_an_old_mlp_file_written_by_hand_loads(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"__units__": np.array([3, 4, 2]), "__activation__": np.asarray("tanh"),
              "layers.0.W": rng.standard_normal((3, 4)).astype(np.float32),
              "layers.0.b": np.zeros(4, np.float32),
              "layers.1.W": rng.standard_normal((4, 2)).astype(np.float32),
              "layers.1.b": np.ones(2, np.float32)}
    io.save_arrays(tmp_path / "old.npz", arrays)
    loaded = xn.nn.NNClassifier.load(tmp_path / "old.npz")
    assert loaded.units == [3, 4, 2] and loaded.activation == "tanh"
    X = rng.standard_normal((5, 3)).astype(np.float32)
    logits = np.tanh(X @ arrays["layers.0.W"]) @ arrays["layers.1.W"] + 1.0
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# a user's own layer: save works, load says what to do


class Double(xn.nn.Layer):
    def __call__(self, x, training=None):
        return xn.multiply(x, 2.0)


class MyLinear(xn.nn.Linear):
    pass


@pytest.mark.parametrize("own", ["layer", "subclass"])
def test_a_users_layer_saves_and_load_says_to_rebuild(tmp_path, own):
    X, _ = xn.data.make_moons(16, noise=0.1, seed=0)

    def layers():
        if own == "layer":
            return [xn.nn.Linear(2, 4, seed=0), Double(), xn.nn.Linear(4, 2, seed=1)]
        return [MyLinear(2, 4, seed=0), xn.nn.ReLU(), xn.nn.Linear(4, 2, seed=1)]

    model = xn.nn.NNClassifier(layers(), input_shape=(2,))
    path = tmp_path / "own.npz"
    model.save(path)
    name = "Double" if own == "layer" else "MyLinear"
    at = 1 if own == "layer" else 0
    with pytest.raises(ValueError, match=rf"own\.npz: layer {at} is '{name}' from module "
                                         rf"'{__name__}', which load cannot rebuild .*build the "
                                         r"model with the code that made it and call "
                                         r"model\.load_weights"):
        xn.nn.NNClassifier.load(path)
    other = xn.nn.NNClassifier(layers(), input_shape=(2,))
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))


def test_load_weights_for_another_stack_changes_nothing(saved, tmp_path):
    _, path = saved
    X, _ = _images()
    with xn.Graph().as_default():  # one graph for the model's layers
        layers = _layers(3, "float32")
        layers[1] = xn.nn.BatchNorm(4)
        layers[-2] = xn.nn.BatchNorm(5)
        layers[-1] = xn.nn.Linear(5, 3)
        layers[-4] = xn.nn.Linear(16, 5)
    model = xn.nn.NNClassifier(layers, input_shape=SHAPE)
    before, proba = _state(model), model.predict_proba(X)
    with pytest.raises(ValueError, match=r"cnn\.npz.*'layers\.3\.W' has shape \(16, 5\) in "
                                         r"the model but \(16, 8\) in the file"):
        model.load_weights(path)
    for name, value in _state(model).items():
        assert value.tobytes() == before[name].tobytes(), name
    np.testing.assert_array_equal(model.predict_proba(X), proba)


# --------------------------------------------------------------------------------------------
# bad files: each names the file, says what is wrong, builds nothing


def _tampered(saved, tmp_path, change):
    arrays = io.load_arrays(saved[1])
    change(arrays)
    path = tmp_path / "bad.npz"
    io.save_arrays(path, arrays)
    return path


def _records(edit):
    """A change to ``__layers__``'s records: ``edit(records)`` edits them in place."""
    def change(arrays):
        records = json.loads(str(arrays["__layers__"]))
        edit(records)
        arrays["__layers__"] = np.asarray(json.dumps(records))
    return change


def _set(i, key, value):
    return _records(lambda r: r[i]["config"].__setitem__(key, value))


def _member(key, value):
    return lambda arrays: arrays.__setitem__(key, np.asarray(value))


def _drop(key):
    return lambda arrays: arrays.pop(key)


def _at(i, cls, message):
    return rf"layer {i} \({cls}\): " + message


BAD = {
    "not-json": (_member("__layers__", "[{not json"), r"__layers__ is not JSON"),
    "deep-json": (_member("__layers__", "[" * 100_000), r"__layers__ is not JSON"),
    "not-text": (_member("__layers__", [1, 2]), r"__layers__ must be text, got int64"),
    "not-a-list": (_member("__layers__", '{"class": "Linear"}'),
                   r"__layers__ must be a list of 1 to"),
    "no-layers": (_member("__layers__", "[]"),
                  r"__layers__ must be a list of 1 to 10000 layers, got \[\]"),
    "record-not-a-dict": (_member("__layers__", "[3]"), r"layer 0 is 3, not \{'class'"),
    "unknown-class": (_records(lambda r: r[2].update({"class": "Conv3D"})),
                      r"layer 2 is 'Conv3D' from module 'xpnn\.nn', which load cannot rebuild"),
    "config-not-a-dict": (_records(lambda r: r[3].update(config=[2])),
                          r"layer 3 \(MaxPool2D\) has config \[2\], not a dict"),
    "unknown-setting": (_set(9, "bananas", 8), _at(9, "Linear", "bananas=8 is not a setting")),
    "foreign-setting": (_set(3, "rate", 0.5),
                        _at(3, "MaxPool2D", "got an unexpected keyword argument 'rate'")),
    "missing-setting": (_records(lambda r: r[0]["config"].pop("filters")),
                        _at(0, "Conv2D", "missing a required argument: 'filters'")),
    "float-size": (_set(0, "filters", 4.0),
                   _at(0, "Conv2D", r"filters=4\.0 must be a whole number from 1")),
    "bool-size": (_set(9, "n_in", True), _at(9, "Linear", "n_in=True must be a whole number")),
    "huge-size": (_set(9, "n_out", 10**12),
                  _at(9, "Linear", "n_out=1000000000000 must be a whole number from 1 to "
                                   "2147483647")),
    "huge-pool": (_set(3, "pool_size", 10**6),
                  _at(3, "MaxPool2D", r"pool_size=1000000 must be a whole number from 1 to 8 "
                                      r"\(the largest input dimension\)")),
    "huge-kernel": (_set(0, "kernel_size", [3, 9]),
                    _at(0, "Conv2D", r"kernel_size=\[3, 9\] must be")),
    "bad-strides": (_set(4, "strides", [1, 2, 3]),
                    _at(4, "Conv2D", r"strides=\[1, 2, 3\] must be")),
    "bad-padding": (_set(0, "padding", "FULL"),
                    _at(0, "Conv2D", "padding='FULL' must be 'SAME', 'VALID'")),
    "huge-pads": (_set(0, "padding", [[0, 99], [0, 0]]),
                  _at(0, "Conv2D", r"padding=\[\[0, 99\], \[0, 0\]\] must be")),
    "bad-rate": (_set(8, "rate", 1.5),
                 _at(8, "Dropout", r"rate=1\.5 must be a number in \[0\.0, 1\.0\)")),
    "text-momentum": (_set(1, "momentum", "x"),
                      _at(1, "BatchNorm", "momentum='x' must be a number")),
    "nan-epsilon": (_set(1, "epsilon", float("nan")),
                    _at(1, "BatchNorm", "epsilon=nan must be a number")),
    "int-dtype": (_set(9, "dtype", "int32"), _at(9, "Linear", "dtype='int32' must be one of")),
    "name-not-text": (_set(9, "name", 3), _at(9, "Linear", "name=3 must be text")),
    "model-dtype": (_member("__dtype__", "int8"), r"__dtype__ must be one of .* got 'int8'"),
    "no-dtype": (_drop("__dtype__"), r"__dtype__ must be text, got nothing"),
    "no-input-shape": (_drop("__input_shape__"), r"__input_shape__ must list .* got nothing"),
    "zero-input-shape": (_member("__input_shape__", [8, 0, 1]),
                         r"__input_shape__ .*\[8, 0, 1\]"),
    "huge-input-shape": (_member("__input_shape__", [10**5, 10**5, 1]),
                         r"__input_shape__ must list positive sizes of at most 2147483648"),
    "float-input-shape": (_member("__input_shape__", [8.0, 8.0, 1.0]), r"__input_shape__ must"),
}


@pytest.mark.parametrize("change, message", BAD.values(), ids=BAD.keys())
def test_a_bad_architecture_is_named_before_anything_is_built(saved, tmp_path, monkeypatch,
                                                              change, message):
    path = _tampered(saved, tmp_path, change)
    monkeypatch.setattr(saving.Stack, "build", _never)
    with pytest.raises(ValueError, match=r"bad\.npz: " + message) as info:
        xn.nn.NNClassifier.load(path)
    if "cannot rebuild" not in message:
        assert str(info.value).endswith("save the model again or use another copy")


def _never(self):
    raise AssertionError("load built the layers of a file it should have refused")


WEIGHTS = {
    "huge-layer": (_set(9, "n_out", 10**9),
                   r"'layers\.3\.W' has shape \(16, 1000000000\) in the model but \(16, 8\)"),
    "more-channels": (_set(0, "filters", 5), r"'layers\.0\.W' has shape \(3, 3, 1, 5\)"),
    "moving-mean-shape": (_member("layers.1.moving_mean", np.zeros(5, np.float32)),
                          r"'layers\.1\.moving_mean' has shape \(4,\) in the model but \(5,\)"),
    "no-moving-variance": (_drop("layers.4.moving_variance"),
                           r"missing parameters \['layers\.4\.moving_variance'\]"),
    "extra-weight": (_member("layers.6.W", np.zeros(2, np.float32)),
                     r"unexpected parameters \['layers\.6\.W'\]"),
    "one-layer-less": (_records(lambda r: r.pop(1)),
                       r"missing parameters \['layers\.1\.W', 'layers\.1\.b', 'layers\.3\.gamma'"),
    "weight-dtype": (_member("layers.0.W", np.zeros((3, 3, 1, 4), np.float64)),
                     r"'layers\.0\.W' is float64 in the file but its layer says float32"),
    "text-weight": (_member("layers.0.b", ["a", "b", "c", "d"]), r"'layers\.0\.b' holds <U1"),
}


@pytest.mark.parametrize("change, message", WEIGHTS.values(), ids=WEIGHTS.keys())
def test_weights_that_disagree_with_the_architecture_are_refused_before_building(
        saved, tmp_path, monkeypatch, change, message):
    path = _tampered(saved, tmp_path, change)
    monkeypatch.setattr(saving.Stack, "build", _never)
    with pytest.raises(ValueError, match=r"load\(.*bad\.npz\): .*" + message):
        xn.nn.NNClassifier.load(path)


def test_layers_that_do_not_fit_the_input_shape_leave_nothing_built(saved, tmp_path):
    # 16x16 inputs flatten to 64 features, the stored Linear takes 16: found while building
    path = _tampered(saved, tmp_path, _member("__input_shape__", [16, 16, 1]))
    graph = xn.get_default_graph()
    before = (len(graph.variables), len(graph.nodes))
    with pytest.raises(ValueError, match=r"bad\.npz: the stored layers do not fit inputs of "
                                         r"shape \(16, 16, 1\) \(.*\): the file is corrupt"):
        xn.nn.NNClassifier.load(path)
    assert (len(graph.variables), len(graph.nodes)) == before


def test_a_file_without_an_architecture_says_to_load_weights(tmp_path):
    io.save_arrays(tmp_path / "bare.npz", {"layers.0.W": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match=r"bare\.npz: no architecture stored .*call "
                                         r"load_weights"):
        xn.nn.NNClassifier.load(tmp_path / "bare.npz")


def test_a_layer_setting_that_is_not_json_fails_save_and_keeps_the_old_file(saved, tmp_path):
    model, path = saved
    target = tmp_path / "keep.npz"
    model.save(target)
    layers = [xn.nn.Conv2D(1, 2, 3, padding="SAME"), xn.nn.Flatten(), xn.nn.Linear(128, 2)]
    other = xn.nn.NNClassifier(layers, input_shape=SHAPE)
    other.net.layers[0].name = object()
    with pytest.raises(TypeError, match="is not JSON data"):
        other.save(target)
    assert xn.nn.NNClassifier.load(target).predict_proba(_images()[0]).shape == (48, 3)


def test_a_token_model_round_trips(tmp_path, dev):
    """A model whose input is token ids (int64, for Embedding) saves and loads: the file's
    input dtype may be an integer one."""
    with xn.Graph().as_default():
        model = xn.nn.Model([xn.nn.Embedding(12, 6, seed=0), xn.nn.Flatten(),
                             xn.nn.Dense(3, activation="softmax", seed=1)],
                            input_shape=(5,), dtype="int64", device=dev)
    tokens = np.random.default_rng(0).integers(0, 12, size=(4, 5))
    model.save(tmp_path / "tokens.npz")
    twin = xn.nn.Model.load(tmp_path / "tokens.npz", device=dev)
    assert twin.inputs.dtype == "int64"
    np.testing.assert_array_equal(twin.predict(tokens), model.predict(tokens))
