"""Tests for saving and loading: xpnn.io (.npz, no pickle, atomic writes), NNClassifier
save / load / load_weights and Session.save / restore, on each backend and across them."""

from __future__ import annotations

import os

import numpy as np
import pytest

import xpnn as xn
from xpnn import backend, io
from xpnn.backend import to_numpy

CPU = backend.resolve("cpu")
STRICT = backend.resolve("device1", backend="array_api_strict")


def _data(n=32):
    return xn.data.make_moons(n, noise=0.1, seed=0)


def _trained(units=(2, 8, 2), device=CPU, seed=0, **kw):
    X, y = _data()
    model = xn.nn.NNClassifier(list(units), device=device, seed=seed, **kw)
    model.fit(X, y, epochs=2, batch_size=8, learning_rate=0.3, verbose=0)
    return model


def _weights(model):
    return [(to_numpy(layer.W).copy(), to_numpy(layer.b).copy()) for layer in model.layers]


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for (wa, ba), (wb, bb) in zip(a, b):
        assert wa.dtype == wb.dtype and wa.tobytes() == wb.tobytes()
        assert ba.dtype == bb.dtype and ba.tobytes() == bb.tobytes()


def _rewrite(path, drop=(), **replace):
    """Rewrite a saved file without the names in ``drop`` and with ``replace``d arrays."""
    arrays = io.load_arrays(path)
    for name in drop:
        del arrays[name]
    arrays.update({k.replace("__", "."): v for k, v in replace.items()})
    io.save_arrays(path, arrays)


# --------------------------------------------------------------------------------------------
# xpnn.io


def test_save_and_load_arrays_round_trip(tmp_path):
    arrays = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "b": np.array([1e-30, -2.5], dtype=np.float64),
        "n": np.array([1, 2, 3], dtype=np.int64),
        "scalar": np.asarray(3.5, dtype=np.float32),
        "name": np.asarray("relu"),
    }
    path = tmp_path / "arrays.npz"
    io.save_arrays(path, arrays)
    back = io.load_arrays(path)
    assert list(back) == list(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
    with np.load(path, allow_pickle=False) as plain:
        assert sorted(plain.files) == sorted(arrays)
        np.testing.assert_array_equal(plain["w"], arrays["w"])


def test_npz_suffix_is_added_and_found(tmp_path):
    io.save_arrays(tmp_path / "weights", {"a": np.ones(2)})
    assert os.listdir(tmp_path) == ["weights.npz"]
    np.testing.assert_array_equal(io.load_arrays(tmp_path / "weights")["a"], [1.0, 1.0])
    np.testing.assert_array_equal(io.load_arrays(str(tmp_path / "weights.npz"))["a"], [1, 1])


def test_save_creates_missing_folders_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "b" / "w.npz"
    io.save_arrays(path, {"x": np.zeros(3)})
    io.save_arrays(path, {"x": np.ones(3)})  # overwrite
    assert os.listdir(path.parent) == ["w.npz"]
    np.testing.assert_array_equal(io.load_arrays(path)["x"], np.ones(3))


class Boom(RuntimeError):
    pass


def _failing_savez(f, **arrays):
    f.write(b"half a file")
    raise Boom("disk full")


def test_failing_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    io.save_arrays(path, {"x": np.arange(3.0)})
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(Boom, match="disk full"):
        io.save_arrays(path, {"x": np.zeros(3)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(io.load_arrays(path)["x"], [0.0, 1.0, 2.0])


def test_failing_write_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(Boom):
        io.save_arrays(tmp_path / "new.npz", {"x": np.zeros(3)})
    assert os.listdir(tmp_path) == []


def test_load_refuses_pickles_and_other_files(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a plain .npz of arrays"):
        io.load_arrays(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz: not a plain .npz"):
        io.load_arrays(tmp_path / "junk.npz")
    with open(tmp_path / "single.npz", "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match="single.npz: not a plain .npz.*single .npy array"):
        io.load_arrays(tmp_path / "single.npz")
    with pytest.raises(FileNotFoundError):
        io.load_arrays(tmp_path / "missing.npz")


def test_check_shapes_messages():
    expected = {"a": (2, 3), "b": (3,)}
    io.check_shapes(expected, {"a": np.zeros((2, 3)), "b": np.zeros(3), "__meta__": 1}, "here")
    with pytest.raises(ValueError, match=r"here: .*missing parameters \['b'\], unexpected "
                                         r"parameters \['c'\]"):
        io.check_shapes(expected, {"a": np.zeros((2, 3)), "c": np.zeros(3)}, "here")
    with pytest.raises(ValueError, match=r"parameter 'a' has shape \(2, 3\) in the model but "
                                         r"\(3, 2\) in the file"):
        io.check_shapes(expected, {"a": np.zeros((3, 2)), "b": np.zeros(3)}, "here")


# --------------------------------------------------------------------------------------------
# NNClassifier.save / load / load_weights


def test_model_file_is_a_plain_npz(tmp_path, dev):
    model = _trained(device=dev)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(
            ["__units__", "__activation__", "layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
        )
        assert f["__units__"].tolist() == [2, 8, 2]
        assert str(f["__activation__"]) == "relu"
        for i, (W, b) in enumerate(_weights(model)):
            assert f[f"layers.{i}.W"].dtype == np.float32
            assert f[f"layers.{i}.W"].tobytes() == W.tobytes()
            assert f[f"layers.{i}.b"].tobytes() == b.tobytes()
    assert os.listdir(tmp_path) == ["model.npz"]


def test_save_load_round_trip_is_exact(tmp_path, dev):
    X, _ = _data()
    model = _trained(units=(2, 6, 5, 3), device=dev, activation="tanh")
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "m.npz", device=dev)
    assert loaded.units == [2, 6, 5, 3] and loaded.activation == "tanh"
    assert loaded.device is dev
    _assert_same_weights(_weights(loaded), _weights(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_save_load_float64_model(tmp_path, dev):
    model = _trained(device=dev, dtype="float64")
    model.save(tmp_path / "m64")
    loaded = xn.nn.NNClassifier.load(tmp_path / "m64", device=dev)
    assert loaded.dtype == "float64"
    assert backend.dtype_name(loaded.layers[0].W.dtype) == "float64"
    _assert_same_weights(_weights(loaded), _weights(model))


@pytest.mark.parametrize("src, dst", [(CPU, STRICT), (STRICT, CPU)], ids=["numpy->strict",
                                                                            "strict->numpy"])
def test_save_on_one_backend_load_on_another(tmp_path, src, dst):
    X, _ = _data()
    model = _trained(device=src)
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "m.npz", device=dst)
    assert loaded.device is dst and dst.owns(loaded.layers[0].W)
    _assert_same_weights(_weights(loaded), _weights(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_load_by_device_string_and_backend(tmp_path):
    model = _trained()
    model.save(tmp_path / "m.npz")
    loaded = xn.nn.NNClassifier.load(tmp_path / "m.npz", device="device1",
                                     backend="array_api_strict")
    assert loaded.device.backend == "array_api_strict"
    _assert_same_weights(_weights(loaded), _weights(model))


def test_save_on_numpy_load_on_each_backend_and_back(tmp_path, dev):
    X, _ = _data()
    model = _trained(device=CPU)
    model.save(tmp_path / "cpu.npz")
    there = xn.nn.NNClassifier.load(tmp_path / "cpu.npz", device=dev)
    assert dev.owns(there.layers[1].W)
    _assert_same_weights(_weights(there), _weights(model))
    np.testing.assert_allclose(there.predict_proba(X), model.predict_proba(X), rtol=1e-6,
                               atol=1e-7)
    there.save(tmp_path / "there.npz")
    back = xn.nn.NNClassifier.load(tmp_path / "there.npz", device=CPU)
    _assert_same_weights(_weights(back), _weights(model))


def test_load_weights_into_an_existing_model(tmp_path, dev):
    X, _ = _data()
    model = _trained(device=dev)
    model.save(tmp_path / "m.npz")
    other = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=99)
    assert not np.array_equal(_weights(other)[0][0], _weights(model)[0][0])
    other.load_weights(tmp_path / "m.npz")
    _assert_same_weights(_weights(other), _weights(model))
    np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))
    assert dev.owns(other.layers[0].W)


def test_failing_model_save_keeps_the_old_file(tmp_path, dev, monkeypatch):
    path = tmp_path / "m.npz"
    first = _trained(device=dev)
    first.save(path)
    second = _trained(device=dev, seed=1)
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(Boom):
        second.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    _assert_same_weights(_weights(xn.nn.NNClassifier.load(path, device=dev)), _weights(first))


@pytest.mark.parametrize(
    "saved, loading, message",
    [
        ([2, 10, 2], [2, 8, 2], r"'layers\.0\.W' has shape \(2, 8\) in the model but \(2, 10\) "
                                r"in the file"),
        ([2, 8, 3], [2, 8, 2], r"'layers\.1\.W' has shape \(8, 2\) in the model but \(8, 3\) "
                               r"in the file"),
        ([3, 8, 2], [2, 8, 2], r"'layers\.0\.W' has shape \(2, 8\) in the model but \(3, 8\)"),
        ([2, 8, 2], [2, 8, 8, 2], r"missing parameters \['layers\.2\.W', 'layers\.2\.b'\]"),
        ([2, 8, 8, 2], [2, 8, 2], r"unexpected parameters \['layers\.2\.W', 'layers\.2\.b'\]"),
    ],
    ids=["first-layer", "last-layer-only", "input-width", "fewer-layers", "more-layers"],
)
def test_load_weights_for_another_architecture_changes_nothing(tmp_path, dev, saved, loading,
                                                               message):
    X, _ = _data()
    xn.nn.NNClassifier(saved, device=dev, seed=1).save(tmp_path / "other.npz")
    model = _trained(units=loading, device=dev, seed=3)
    before, proba = _weights(model), model.predict_proba(X)
    with pytest.raises(ValueError, match=message) as info:
        model.load_weights(tmp_path / "other.npz")
    assert "other.npz" in str(info.value)
    _assert_same_weights(_weights(model), before)
    np.testing.assert_array_equal(model.predict_proba(X), proba)


def test_file_missing_a_parameter(tmp_path, dev):
    path = tmp_path / "m.npz"
    model = _trained(device=dev)
    model.save(path)
    _rewrite(path, drop=["layers.1.b"])
    target = _trained(device=dev, seed=5)
    before = _weights(target)
    with pytest.raises(ValueError, match=r"missing parameters \['layers\.1\.b'\]"):
        target.load_weights(path)
    _assert_same_weights(_weights(target), before)
    with pytest.raises(ValueError, match=r"missing parameters \['layers\.1\.b'\]"):
        xn.nn.NNClassifier.load(path, device=dev)
    _rewrite(path, drop=["layers.0.W"])
    with pytest.raises(ValueError, match=r"missing parameters \['layers\.0\.W', 'layers\.1\.b'\]"):
        xn.nn.NNClassifier.load(path, device=dev)


def test_file_with_a_wrong_shape_for_one_parameter(tmp_path, dev):
    path = tmp_path / "m.npz"
    model = _trained(device=dev)
    model.save(path)
    _rewrite(path, layers__1__b=np.zeros(3, dtype=np.float32))
    target = _trained(device=dev, seed=5)
    before = _weights(target)
    with pytest.raises(ValueError, match=r"'layers\.1\.b' has shape \(2,\) in the model but "
                                         r"\(3,\) in the file"):
        target.load_weights(path)
    _assert_same_weights(_weights(target), before)


def test_load_needs_an_architecture(tmp_path):
    io.save_arrays(tmp_path / "bare.npz", {"layers.0.W": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match="no architecture stored"):
        xn.nn.NNClassifier.load(tmp_path / "bare.npz")


# --------------------------------------------------------------------------------------------
# Session.save / restore


def _two_variables():
    g = xn.Graph()
    with g.as_default():
        w = xn.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        b = xn.Variable(np.array([0.5, -0.5, 2.0], dtype=np.float32), name="b")
    return g, w, b


def test_session_save_restore_round_trip(tmp_path, dev):
    g, w, b = _two_variables()
    sess = xn.Session(g, device=dev)
    new_w = np.array([[1.5, -2.0, 3.0], [0.0, 1e-20, -7.25]], dtype=np.float32)
    sess.set_value(w, new_w)
    sess.save(tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["b", "w"]
        np.testing.assert_array_equal(f["w"], new_w)
    sess.set_value(w, np.zeros((2, 3)))
    sess.set_value(b, np.zeros(3))
    sess.restore(tmp_path / "ckpt.npz")
    assert dev.owns(sess.get_value(w))
    np.testing.assert_array_equal(to_numpy(sess.get_value(w)), new_w)
    np.testing.assert_array_equal(to_numpy(sess.get_value(b)), [0.5, -0.5, 2.0])
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("src, dst", [(CPU, STRICT), (STRICT, CPU)], ids=["numpy->strict",
                                                                            "strict->numpy"])
def test_session_restore_across_backends(tmp_path, src, dst):
    g, w, b = _two_variables()
    a = xn.Session(g, device=src)
    a.set_value(w, np.full((2, 3), 0.1, dtype=np.float32))
    a.save(tmp_path / "ckpt")
    other = xn.Session(g, device=dst)
    other.restore(tmp_path / "ckpt")
    assert dst.owns(other.get_value(w))
    assert to_numpy(other.get_value(w)).tobytes() == to_numpy(a.get_value(w)).tobytes()
    assert to_numpy(other.get_value(b)).tobytes() == to_numpy(a.get_value(b)).tobytes()


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"w": np.ones((2, 3), np.float32), "b": np.ones(4, np.float32)},
         r"parameter 'b' has shape \(3,\) in the model but \(4,\) in the file"),
        ({"w": np.ones((3, 2), np.float32), "b": np.ones(3, np.float32)},
         r"parameter 'w' has shape \(2, 3\) in the model but \(3, 2\) in the file"),
        ({"w": np.ones((2, 3), np.float32)}, r"missing parameters \['b'\]"),
        ({"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32),
          "extra": np.ones(1, np.float32)}, r"unexpected parameters \['extra'\]"),
    ],
    ids=["wrong-shape-second", "wrong-shape-first", "missing", "extra"],
)
def test_session_restore_with_a_bad_file_changes_nothing(tmp_path, dev, arrays, message):
    g, w, b = _two_variables()
    sess = xn.Session(g, device=dev)
    sess.set_value(w, np.full((2, 3), 9.0))
    io.save_arrays(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match=message):
        sess.restore(tmp_path / "bad.npz")
    np.testing.assert_array_equal(to_numpy(sess.get_value(w)), np.full((2, 3), 9.0))
    np.testing.assert_array_equal(to_numpy(sess.get_value(b)), [0.5, -0.5, 2.0])


def test_session_save_restore_0d_variable(tmp_path, dev):
    g = xn.Graph()
    with g.as_default():
        t = xn.Variable(np.float32(2.5), name="t")
    sess = xn.Session(g, device=dev)
    assert tuple(sess.get_value(t).shape) == ()
    sess.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as f:
        assert f["t"].shape == () and float(f["t"]) == 2.5
    sess.set_value(t, np.float32(0.0))
    sess.restore(tmp_path / "t.npz")
    assert float(to_numpy(sess.get_value(t))) == 2.5


def test_session_checkpoint_keeps_optimizer_state(tmp_path, dev):
    # Adam's step counter is a 0-D Variable: it must keep that shape on every backend.
    X, y = _data()
    fit = dict(batch_size=8, optimizer="adam", lr=0.05, verbose=0, seed=1)
    a = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    a.fit(X, y, epochs=2, **fit)
    a.session.save(tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        assert "layers.0/W/adam_m" in f.files and "layers.0/W/adam_t" in f.files
        assert float(f["layers.0/W/adam_t"]) == 8.0  # 2 epochs x 4 batches
    b = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=42)
    b.fit(X, y, epochs=1, **fit)  # builds the same Adam slots, then is overwritten
    b.session.restore(tmp_path / "ckpt.npz")
    _assert_same_weights(_weights(b), _weights(a))
    a.fit(X, y, epochs=1, **fit)
    b.fit(X, y, epochs=1, **fit)
    _assert_same_weights(_weights(b), _weights(a))


def test_session_save_failure_keeps_the_old_checkpoint(tmp_path, dev, monkeypatch):
    g, w, b = _two_variables()
    sess = xn.Session(g, device=dev)
    sess.save(tmp_path / "ckpt.npz")
    before = (tmp_path / "ckpt.npz").read_bytes()
    sess.set_value(w, np.zeros((2, 3)))
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(Boom):
        sess.save(tmp_path / "ckpt.npz")
    assert (tmp_path / "ckpt.npz").read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
