"""Tests for saving and loading: xpnn.io (.npz, no pickle, atomic writes), NNClassifier
save / load / load_weights and Session.save / restore, on each backend and across them."""

from __future__ import annotations

import errno
import os
import re
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

import xpnn as xn
from tests.conftest import peak_memory_of_failure
from xpnn import devices, dtypes, io
from xpnn.host import to_numpy

CPU = devices.resolve("cpu")
STRICT = devices.resolve("device1", backend="array_api_strict")


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


@pytest.mark.parametrize("savez", [np.savez, np.savez_compressed], ids=["savez", "compressed"])
def test_load_reads_what_numpy_writes(tmp_path, savez):
    # Checkpoints written before xpnn wrote its own .npz members came from numpy.savez.
    arrays = {
        "c": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "big_endian": np.arange(5, dtype=">i4"),
        "empty": np.zeros((0, 3)),
        "scalar": np.asarray(2.5),
        "mask": np.array([True, False]),
        "text": np.asarray("relu"),
    }
    savez(tmp_path / "old.npz", **arrays)
    back = io.load_arrays(tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz", allow_pickle=False) as plain:
        assert list(back) == plain.files
        for name in plain.files:
            expected = plain[name]
            assert back[name].dtype == expected.dtype and back[name].shape == expected.shape
            assert back[name].flags.f_contiguous == expected.flags.f_contiguous
            np.testing.assert_array_equal(back[name], expected)
    back["c"][0, 0] = -1.0  # a normal, writable array


def test_npz_suffix_is_added_and_found(tmp_path):
    io.save_arrays(tmp_path / "weights", {"a": np.ones(2)})
    assert os.listdir(tmp_path) == ["weights.npz"]
    np.testing.assert_array_equal(io.load_arrays(tmp_path / "weights")["a"], [1.0, 1.0])
    np.testing.assert_array_equal(io.load_arrays(str(tmp_path / "weights.npz"))["a"], [1, 1])


def test_save_and_restore_without_suffix_use_the_same_file(tmp_path):
    np.savez(tmp_path / "old.npz", w=np.array([5.0]))
    os.rename(tmp_path / "old.npz", tmp_path / "model")  # an older file named just "model"
    with xn.Graph().as_default():
        w = xn.Variable([1.0], name="w")
        sess = xn.Session()
        sess.save(tmp_path / "model")  # writes model.npz
        sess.set_value(w, [0.0])
        with pytest.raises(ValueError, match=r"both .*model and .*model\.npz exist"):
            sess.restore(tmp_path / "model")  # which one? refuse rather than read the stale one
        assert sess.run(w).tolist() == [0.0]
        sess.restore(tmp_path / "model.npz")
        assert sess.run(w).tolist() == [1.0]
    os.remove(tmp_path / "model.npz")
    assert io.load_arrays(tmp_path / "model")["w"].tolist() == [5.0]  # only one: read it


def test_npz_suffix_in_any_case_is_kept(tmp_path):
    io.save_arrays(tmp_path / "m.NPZ", {"a": np.ones(2)})
    assert os.listdir(tmp_path) == ["m.NPZ"]
    np.testing.assert_array_equal(io.load_arrays(tmp_path / "m.NPZ")["a"], [1.0, 1.0])


def test_save_through_a_symlink_updates_its_target_and_keeps_the_link(tmp_path):
    real, link = tmp_path / "real" / "real.npz", tmp_path / "link.npz"
    io.save_arrays(real, {"w": np.zeros(2)})
    link.symlink_to(real)
    (real.parent / ".real.npz.k1l2m3n4.tmp").write_bytes(b"a killed writer's")
    long_ago = time.time() - 3600
    os.utime(real.parent / ".real.npz.k1l2m3n4.tmp", (long_ago, long_ago))
    io.save_arrays(link, {"w": np.ones(2)})
    assert link.is_symlink() and link.resolve() == real.resolve()
    np.testing.assert_array_equal(io.load_arrays(real)["w"], [1.0, 1.0])
    assert os.listdir(real.parent) == ["real.npz"]  # its stale temporary removed, no new one
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real"]


def test_save_under_a_file_names_the_checkpoint(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    for path in (tmp_path / "file" / "c.npz", tmp_path / "file" / "sub" / "c.npz"):
        message = f"could not write {path}: {tmp_path / 'file'} is a file, not a folder"
        with pytest.raises(OSError, match=re.escape(message)):
            io.save_arrays(path, {"w": np.zeros(1)})


def test_save_creates_missing_folders_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "b" / "w.npz"
    io.save_arrays(path, {"x": np.zeros(3)})
    io.save_arrays(path, {"x": np.ones(3)})  # overwrite
    assert os.listdir(path.parent) == ["w.npz"]
    np.testing.assert_array_equal(io.load_arrays(path)["x"], np.ones(3))


class Boom(RuntimeError):
    pass


def _failing_write(f, arrays):
    f.write(b"half a file")
    raise Boom("disk full")


def test_failing_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    io.save_arrays(path, {"x": np.arange(3.0)})
    before = path.read_bytes()
    monkeypatch.setattr(io, "_write_npz", _failing_write)
    with pytest.raises(Boom, match="disk full"):
        io.save_arrays(path, {"x": np.zeros(3)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(io.load_arrays(path)["x"], [0.0, 1.0, 2.0])


def test_failing_write_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_write_npz", _failing_write)
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
    assert dtypes.dtype_name(loaded.layers[0].W.dtype) == "float64"
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


def test_load_weights_reads_a_session_checkpoint(tmp_path, dev):
    """model.session.save writes every Variable under its own name, Adam's slots too:
    load_weights takes the model's weights from it and skips the slots."""
    X, y = _data()
    model = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    model.fit(X, y, epochs=2, batch_size=8, optimizer="adam", learning_rate=0.05, verbose=0)
    model.session.save(tmp_path / "ckpt.npz")
    assert len(xn.io.load_arrays(tmp_path / "ckpt.npz")) > 4  # the slots are in the file
    other = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=99)
    other.load_weights(tmp_path / "ckpt.npz")
    _assert_same_weights(_weights(other), _weights(model))
    np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))
    wider = _trained(units=(2, 10, 2), device=dev, seed=3)
    before = _weights(wider)
    with pytest.raises(ValueError, match=r"'layers\.0/W' has shape \(2, 10\) in the model"):
        wider.load_weights(tmp_path / "ckpt.npz")
    _assert_same_weights(_weights(wider), before)


def test_failing_model_save_keeps_the_old_file(tmp_path, dev, monkeypatch):
    path = tmp_path / "m.npz"
    first = _trained(device=dev)
    first.save(path)
    second = _trained(device=dev, seed=1)
    monkeypatch.setattr(io, "_write_npz", _failing_write)
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
        ({"w": np.ones((2, 3), np.float32), "b": np.array(["x", "y", "z"])},
         r"bad\.npz.*parameter 'b' holds <U1 data in the file, not numbers"),
    ],
    ids=["wrong-shape-second", "wrong-shape-first", "missing", "extra", "text-second"],
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
    # Adam's powers of beta are 0-D Variables: they must keep that shape on every backend.
    X, y = _data()
    fit = dict(batch_size=8, optimizer="adam", lr=0.05, verbose=0, seed=1)
    a = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    a.fit(X, y, epochs=2, **fit)
    a.session.save(tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        assert "layers.0/W/adam_m" in f.files and "layers.0/W/adam_beta1_power" in f.files
        power = f["layers.0/W/adam_beta1_power"]
        expected = np.float32(0.9)
        for _ in range(8):  # 2 epochs x 4 batches, each multiplying by beta1 in float32
            expected = expected * np.float32(0.9)
        assert power.shape == () and power == expected
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
    monkeypatch.setattr(io, "_write_npz", _failing_write)
    with pytest.raises(Boom):
        sess.save(tmp_path / "ckpt.npz")
    assert (tmp_path / "ckpt.npz").read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_load_weights_with_a_text_parameter_changes_nothing(tmp_path, dev):
    path = tmp_path / "m.npz"
    _trained(device=dev).save(path)
    _rewrite(path, layers__1__b=np.array(["x", "y"]))  # the last parameter loaded
    target = _trained(device=dev, seed=5)
    before = _weights(target)
    with pytest.raises(ValueError, match=r"m\.npz.*'layers\.1\.b' holds <U1 data"):
        target.load_weights(path)
    _assert_same_weights(_weights(target), before)


# --------------------------------------------------------------------------------------------
# Session.save / restore with var_list (TF1 Saver semantics)


def test_restore_a_training_checkpoint_into_an_inference_model(tmp_path, dev):
    X, y = _data()
    trained = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    trained.fit(X, y, epochs=1, batch_size=8, optimizer="adam", lr=0.05, verbose=0)
    trained.session.save(tmp_path / "train.npz")
    model = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=7)  # never fitted: no Adam slots
    before = _weights(model)
    with pytest.raises(ValueError) as info:
        model.session.restore(tmp_path / "train.npz")
    message = str(info.value)
    assert "train.npz" in message
    assert "unexpected parameters ['layers.0/W/adam_beta1_power'," in message
    assert "missing" not in message and "[]" not in message
    assert "var_list=graph.trainable_variables()" in message
    _assert_same_weights(_weights(model), before)
    model.session.restore(tmp_path / "train.npz", var_list=model.graph.trainable_variables())
    _assert_same_weights(_weights(model), _weights(trained))
    np.testing.assert_array_equal(model.predict_proba(X), trained.predict_proba(X))


def test_session_save_and_restore_a_var_list(tmp_path, dev):
    g, w, b = _two_variables()
    sess = xn.Session(g, device=dev)
    w0, b0 = to_numpy(sess.get_value(w)), to_numpy(sess.get_value(b))
    sess.save(tmp_path / "w.npz", var_list=[w])
    assert sorted(io.load_arrays(tmp_path / "w.npz")) == ["w"]
    sess.set_value(w, np.zeros((2, 3)))
    sess.set_value(b, np.zeros(3))
    with pytest.raises(ValueError, match=r"w\.npz.*: missing parameters \['b'\]; to restore "
                                         r"only some Variables pass restore\(path, var_list="):
        sess.restore(tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"missing parameters \['b'\]$"):  # asked for, absent
        sess.restore(tmp_path / "w.npz", var_list=[w, b])
    np.testing.assert_array_equal(to_numpy(sess.get_value(w)), np.zeros((2, 3)))
    sess.restore(tmp_path / "w.npz", var_list=[w])
    np.testing.assert_array_equal(to_numpy(sess.get_value(w)), w0)
    np.testing.assert_array_equal(to_numpy(sess.get_value(b)), np.zeros(3))  # not asked for

    # A dict names the entries in the file; a larger file restores just the ones asked for.
    sess.set_value(b, b0)
    sess.save(tmp_path / "renamed.npz", var_list={"weights": w, "bias": b})
    assert sorted(io.load_arrays(tmp_path / "renamed.npz")) == ["bias", "weights"]
    sess.set_value(w, np.zeros((2, 3)))
    sess.set_value(b, np.zeros(3))
    sess.restore(tmp_path / "renamed.npz", var_list={"bias": b})
    np.testing.assert_array_equal(to_numpy(sess.get_value(b)), b0)
    np.testing.assert_array_equal(to_numpy(sess.get_value(w)), np.zeros((2, 3)))


def test_var_list_mistakes_are_named(tmp_path):
    g, w, b = _two_variables()
    sess = xn.Session(g)
    with xn.Graph().as_default():
        stranger = xn.Variable([1.0], name="s")
    path = tmp_path / "ckpt.npz"
    sess.save(path)
    for call in (sess.save, sess.restore):
        with pytest.raises(TypeError, match=r"var_list holds 'b', not a Variable"):
            call(path, var_list=[w, "b"])
        with pytest.raises(ValueError, match=r"s belongs to another graph"):
            call(path, var_list=[stranger])
        for empty in ([], {}):
            with pytest.raises(ValueError, match=r"var_list is empty"):
                call(path, var_list=empty)
        with pytest.raises(ValueError, match=r"two Variables are named 'w'.*dict"):
            call(path, var_list=[w, w])
        with pytest.raises(TypeError, match=r"names must be strings, got 1 for b"):
            call(path, var_list={1: b})
        with pytest.raises(TypeError, match=r"got w alone: pass \[w\]"):
            call(path, var_list=w)
    np.testing.assert_array_equal(io.load_arrays(path)["b"], [0.5, -0.5, 2.0])


def test_check_shapes_names_only_the_reasons_that_apply():
    expected = {"a": (2,)}
    with pytest.raises(ValueError) as info:
        io.check_shapes(expected, {"a": np.zeros(2), "c": np.zeros(1)}, "here")
    assert str(info.value) == ("here: the file does not match this model: unexpected "
                               "parameters ['c']")
    with pytest.raises(ValueError) as info:
        io.check_shapes(expected, {}, "here", hint="; do this")
    assert str(info.value) == ("here: the file does not match this model: missing parameters "
                               "['a']; do this")
    io.check_shapes(expected, {"a": np.zeros(2), "c": np.zeros(1)}, "here", extra_ok=True)


# --------------------------------------------------------------------------------------------
# Corrupt and hostile files


def _npy_header(shape, descr="<f8") -> bytes:
    """A .npy header alone: it claims an array of ``shape`` and holds no data."""
    f = BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                             "shape": shape})
    return f.getvalue()


def _npz(path, members: dict, compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                         ids=["stored", "deflated"])
def test_load_refuses_a_shape_the_file_cannot_hold(tmp_path, compression):
    # 1e5 x 1e5 float64 is 80 GB: refused from the header, nothing is allocated.
    path = _npz(tmp_path / "huge.npz", {"w.npy": _npy_header((100_000, 100_000))}, compression)
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"huge\.npz: not a plain \.npz of arrays \(member "
                                         r"'w\.npy' claims shape \(100000, 100000\) float64, "
                                         r"80000000128 bytes with its header, but holds at "
                                         r"most \d+: the file is corrupt\)"):
        io.load_arrays(path)
    g, w, b = _two_variables()
    with pytest.raises(ValueError, match=r"huge\.npz: .*claims shape"):
        xn.Session(g).restore(path)


def test_load_refuses_a_forged_size_in_the_zip_directory(tmp_path):
    # The directory says the member expands to 3.2 GB; deflate cannot make that of ~100 bytes.
    path = _npz(tmp_path / "forged.npz", {"w.npy": _npy_header((20_000, 20_000))},
                zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"PK\x01\x02") + 24  # the central directory's uncompressed size
    raw[at:at + 4] = struct.pack("<I", 3_200_000_128)
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("w.npy").file_size == 3_200_000_128
    with pytest.raises(ValueError, match=r"forged\.npz: .*claims shape \(20000, 20000\) "
                                         r"float64.*holds at most \d+"):
        io.load_arrays(path)


def test_model_file_with_a_huge_layer_size_is_refused_before_building(tmp_path):
    path = tmp_path / "m.npz"
    xn.nn.NNClassifier([4, 8, 3]).save(path)
    arrays = io.load_arrays(path)
    arrays["__units__"] = np.array([4, 10**9, 3])  # a 4 x 1e9 layer: 16 GB of float32
    io.save_arrays(path, arrays)
    with pytest.raises(ValueError, match=r"m\.npz.*'layers\.0\.W' has shape \(4, 1000000000\) in "
                                         r"the model but \(4, 8\) in the file"):
        xn.nn.NNClassifier.load(path)


@pytest.mark.parametrize(
    "units, activation, message",
    [
        (np.array([4.0, 1e9, 3.0]), "relu", r"__units__ must .* float64 \[4\.0, 1000000000\.0"),
        (np.array([4, 0, 3]), "relu", r"__units__ must list two or more positive .* \[4, 0, 3\]"),
        (np.array([4]), "relu", r"__units__ must list two or more"),
        (np.array([[4, 8, 3]]), "relu", r"__units__ must list"),
        (np.array([4, 8, 3]), "gelu", r"__activation__ must be one of .* got 'gelu'"),
        (np.array([4, 8, 3]), None, r"__activation__ must be one of .* got nothing"),
    ],
    ids=["float-units", "zero-units", "one-size", "2-d-units", "unknown-activation",
         "no-activation"],
)
def test_model_file_with_a_bad_architecture_is_named(tmp_path, units, activation, message):
    path = tmp_path / "m.npz"
    xn.nn.NNClassifier([4, 8, 3]).save(path)
    arrays = io.load_arrays(path)
    arrays["__units__"] = units
    del arrays["__activation__"]
    if activation is not None:
        arrays["__activation__"] = np.asarray(activation)
    io.save_arrays(path, arrays)
    with pytest.raises(ValueError, match=r"m\.npz: " + message):
        xn.nn.NNClassifier.load(path)


def test_load_an_empty_file_names_it(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz: not a plain \.npz of arrays \(the file "
                                         r"is empty, 0 bytes"):
        io.load_arrays(tmp_path / "empty.npz")
    g, _, _ = _two_variables()
    with pytest.raises(ValueError, match=r"empty\.npz: .*empty"):
        xn.Session(g).restore(tmp_path / "empty.npz")


@pytest.mark.parametrize("member", ["notes.txt", "b.npy"], ids=["extra", "instead-of-b"])
def test_restore_a_file_with_a_member_that_is_not_npy(tmp_path, dev, member):
    g, w, b = _two_variables()
    sess = xn.Session(g, device=dev)
    sess.save(tmp_path / "ok.npz")
    with zipfile.ZipFile(tmp_path / "ok.npz") as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    members[member] = b"trained for 3 epochs"
    path = _npz(tmp_path / "odd.npz", members)
    sess.set_value(w, np.full((2, 3), 9.0))
    with pytest.raises(ValueError, match=rf"odd\.npz: not a plain \.npz of arrays \(member "
                                         rf"'{member}' is not a \.npy array"):
        sess.restore(path)
    np.testing.assert_array_equal(to_numpy(sess.get_value(w)), np.full((2, 3), 9.0))


def test_load_a_truncated_member_names_the_file(tmp_path):
    path = tmp_path / "cut.npz"
    io.save_arrays(path, {"w": np.arange(1000.0)})
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("w.npy")
    _npz(path, {"w.npy": raw[:-8]})  # a consistent zip, a .npy one value short
    with pytest.raises(ValueError, match=r"cut\.npz: not a plain \.npz of arrays .*'w\.npy'.*"
                                         r"holds at most"):
        io.load_arrays(path)


# --------------------------------------------------------------------------------------------
# Names numpy.savez would misread, and names a .npz cannot hold


def test_session_save_keeps_names_that_are_savez_keywords(tmp_path, dev):
    # np.savez(f, **arrays) took "allow_pickle" as its keyword and choked on "file".
    g = xn.Graph()
    with g.as_default():
        variables = [xn.Variable(np.full(2, i, np.float32), name=name)
                     for i, name in enumerate(["allow_pickle", "file", "w"])]
    sess = xn.Session(g, device=dev)
    path = tmp_path / "ckpt.npz"
    sess.save(path)
    assert sorted(io.load_arrays(path)) == ["allow_pickle", "file", "w"]
    for v in variables:
        sess.set_value(v, np.full(2, 9.0))
    sess.restore(path)
    for i, v in enumerate(variables):
        np.testing.assert_array_equal(to_numpy(sess.get_value(v)), np.full(2, i, np.float32))
    with np.load(path, allow_pickle=False) as plain:  # still what numpy reads
        assert sorted(plain.files) == ["allow_pickle", "file", "w"]


@pytest.mark.parametrize(
    "names, message",
    [(["w\x00one", "w\x00two"], r"named 'w\\x00one' cannot be stored: it holds a NUL"),
     (["x" * 70_000], r"named 'x{40}'\.\.\. \(70000 characters\) cannot be stored: it is "
                      r"70000 bytes long in UTF-8; a \.npz holds names of at most 65531 bytes")],
    ids=["nul", "over-64KB"])
def test_session_save_refuses_a_name_a_npz_cannot_hold(tmp_path, names, message):
    g = xn.Graph()
    with g.as_default():
        variables = [xn.Variable(np.full(2, float(i)), name=n) for i, n in enumerate(names)]
    sess = xn.Session(g)
    path = tmp_path / "ckpt.npz"
    sess.save(path, var_list={f"v{i}": v for i, v in enumerate(variables)})
    before = path.read_bytes()
    with pytest.raises(ValueError, match=rf"cannot save {re.escape(str(path))}: the Variable "
                                         rf"{message}.*rename it, or pass var_list="):
        sess.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_the_longest_name_a_npz_holds_round_trips(tmp_path):
    most = 0xFFFF - len(".npy")  # a zip member's name holds 65535 bytes; ".npy" is added
    longest = "é" * ((most - 1) // 2) + "x"  # 2 bytes each in UTF-8
    assert len(longest.encode("utf-8")) == most
    io.save_arrays(tmp_path / "a.npz", {longest: np.arange(3.0), "w": np.ones(1)})
    back = io.load_arrays(tmp_path / "a.npz")
    assert list(back) == [longest, "w"]
    np.testing.assert_array_equal(back[longest], np.arange(3.0))
    with pytest.raises(ValueError, match=r"named 'éé.*\(32767 characters\).*65532 bytes"):
        io.save_arrays(tmp_path / "a.npz", {longest + "y": np.ones(1)})


def test_a_full_disk_names_the_checkpoint_and_keeps_the_old_one(tmp_path, monkeypatch):
    g, w, b = _two_variables()
    sess = xn.Session(g)
    path = tmp_path / "ckpt.npz"
    sess.save(path)
    before = path.read_bytes()
    sess.set_value(w, np.zeros((2, 3)))

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=rf"could not write {re.escape(str(path))}: No space left "
                                      rf"on device; a file already there is unchanged") as info:
        sess.save(path)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


# --------------------------------------------------------------------------------------------
# Tampered .npz files: refused before anything is allocated


def _forge_central_directory(path, offset, fmt, value):
    """Overwrite the field at ``offset`` of the (only) member's central directory entry."""
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"PK\x01\x02") + offset
    raw[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(raw))


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile's, writing the tampered file
@pytest.mark.parametrize("second", ["w.npy", "w"], ids=["same-member", "same-key"])
def test_load_refuses_duplicate_members(tmp_path, second):
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", _npy_bytes(np.zeros(3)))
        archive.writestr(second, _npy_bytes(np.ones(3)))
    with pytest.raises(ValueError, match=rf"dup\.npz: not a plain \.npz of arrays \(members "
                                         rf"'w\.npy' and '{re.escape(second)}' are both named "
                                         rf"'w'"):
        io.load_arrays(path)


def _npy_bytes(array) -> bytes:
    f = BytesIO()
    np.save(f, array)
    return f.getvalue()


@pytest.mark.parametrize("compression, name", [(zipfile.ZIP_BZIP2, "bzip2"),
                                               (zipfile.ZIP_LZMA, "lzma")], ids=["bzip2", "lzma"])
def test_load_refuses_bzip2_and_lzma_members_before_decompressing(tmp_path, compression, name):
    path = _npz(tmp_path / "bomb.npz", {"w.npy": _npy_bytes(np.zeros(4_000_000))}, compression)
    assert path.stat().st_size < 8000  # 32 MB of zeros
    peak = peak_memory_of_failure(
        lambda: io.load_arrays(path),
        rf"bomb\.npz: not a plain \.npz of arrays \(member 'w\.npy' is compressed with {name} "
        rf"\(method {compression}\); only stored and deflated members are read")
    assert peak < 1 << 20
    # Forged sizes (8 TB claimed by the header and the directory alike) raise the same.
    path = _npz(tmp_path / "forged.npz", {"w.npy": _npy_header((10**6, 10**6))}, compression)
    _forge_central_directory(path, 24, "<I", 0xFFFFFFFF)
    with pytest.raises(ValueError, match=rf"forged\.npz: .*compressed with {name}"):
        io.load_arrays(path)


def test_load_of_a_member_shorter_than_its_forged_size_allocates_only_what_it_reads(tmp_path):
    # The header and the directory both say 32 MB; the deflated data holds 64 KB of it.
    header = _npy_header((4_000_000,))
    noise = np.random.default_rng(0).bytes(1 << 16)  # incompressible: 64 KB on disk
    path = _npz(tmp_path / "short.npz", {"w.npy": header + noise}, zipfile.ZIP_DEFLATED)
    _forge_central_directory(path, 24, "<I", len(header) + 32_000_000)
    peak = peak_memory_of_failure(lambda: io.load_arrays(path), r"short\.npz: not a plain")
    assert peak < 8 << 20


def test_load_refuses_an_encrypted_member(tmp_path):
    path = tmp_path / "locked.npz"
    io.save_arrays(path, {"w": np.ones(3)})
    _forge_central_directory(path, 8, "<H", 0x1)  # general purpose flags: encrypted
    with pytest.raises(ValueError, match=r"locked\.npz: not a plain \.npz of arrays \(member "
                                         r"'w\.npy' is encrypted"):
        io.load_arrays(path)


def _fails_at_once(call, fifo, match):
    """``call()`` raises ValueError matching ``match`` within seconds, where the old code
    blocked opening ``fifo``: a thread that still waits is released by a writer."""
    errors = []

    def run():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY))  # a writer that closes at once: EOF
        thread.join(5)
        pytest.fail(f"reading the FIFO {fifo} blocked")
    assert len(errors) == 1 and isinstance(errors[0], ValueError), errors
    assert re.search(match, str(errors[0])), str(errors[0])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here (Windows)")
def test_load_refuses_a_fifo_without_opening_it(tmp_path):
    fifo = tmp_path / "ckpt.npz"
    os.mkfifo(fifo)
    _fails_at_once(lambda: io.load_arrays(fifo), fifo,
                   r"ckpt\.npz: not a plain \.npz of arrays \(it is a FIFO \(named pipe\), not "
                   r"a regular file\)")
    g, _, _ = _two_variables()
    _fails_at_once(lambda: xn.Session(g).restore(fifo), fifo, r"ckpt\.npz: .*FIFO")


def test_load_refuses_a_directory(tmp_path):
    (tmp_path / "ckpt.npz").mkdir()
    with pytest.raises(ValueError, match=r"ckpt\.npz: not a plain \.npz of arrays \(it is a "
                                         r"directory, not a regular file\)"):
        io.load_arrays(tmp_path / "ckpt.npz")


# --------------------------------------------------------------------------------------------
# Temporaries of writers that were killed


def test_save_removes_stale_temporaries_of_the_same_target(tmp_path):
    long_ago = time.time() - 3600
    stale = [".ckpt.npz.k1l2m3n4.tmp", ".ckpt.npz.abcdefgh.tmp"]
    fresh = [".ckpt.npz.x8y7z6w5.tmp"]  # a writer may still be at work on it
    others = [".other.npz.abcdefgh.tmp", ".ckpt.npz.x.abcdefgh.tmp", "ckpt.npz.abcdefgh.tmp",
              ".ckpt.npz.abcdefgh.tmpx", "keep.txt"]
    for name in stale + fresh + others:
        (tmp_path / name).write_bytes(b"half a file")
    (tmp_path / ".ckpt.npz.a_folder.tmp").mkdir()
    for name in stale + others + [".ckpt.npz.a_folder.tmp"]:
        os.utime(tmp_path / name, (long_ago, long_ago))
    io.save_arrays(tmp_path / "ckpt.npz", {"x": np.zeros(1)})
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["ckpt.npz", ".ckpt.npz.a_folder.tmp"] + fresh + others)


_STALLED_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    from xpnn import io

    def stall(f, arrays):
        f.write(b"half a file")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

    io._write_npz = stall
    io.save_arrays(sys.argv[1], {"x": np.zeros(3)})
""")


def test_a_save_killed_midway_is_cleaned_up_by_a_later_save(tmp_path):
    path = tmp_path / "ckpt.npz"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for _ in range(2):
        child = subprocess.Popen([sys.executable, "-c", _STALLED_SAVE, str(path)],
                                 stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline() == b"writing\n"
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
    left = sorted(p for p in tmp_path.iterdir())
    assert len(left) == 2 and all(p.name.startswith(".ckpt.npz.") for p in left)
    io.save_arrays(path, {"x": np.ones(3)})  # brand new: a writer may not have locked yet
    assert sorted(tmp_path.iterdir()) == sorted(left + [path])
    a_moment_ago = time.time() - 3
    for p in left:
        os.utime(p, (a_moment_ago, a_moment_ago))
    io.save_arrays(path, {"x": np.ones(3)})  # nobody holds their locks: writers are gone
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.skipif(io.fcntl is None, reason="no file locks here (Windows): age alone counts")
def test_a_save_in_progress_keeps_its_temporary(tmp_path):
    path = tmp_path / "ckpt.npz"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    child = subprocess.Popen([sys.executable, "-c", _STALLED_SAVE, str(path)],
                             stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"writing\n"
        (writing,) = tmp_path.iterdir()
        a_moment_ago = time.time() - 3
        os.utime(writing, (a_moment_ago, a_moment_ago))
        io.save_arrays(path, {"x": np.ones(3)})  # the child still holds its lock
        assert sorted(tmp_path.iterdir()) == sorted([writing, path])
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def _bn_stack():
    return [xn.nn.Linear(2, 4, seed=1), xn.nn.ReLU(), xn.nn.BatchNorm(4),
            xn.nn.Linear(4, 2, seed=2)]


def test_load_weights_of_a_checkpoint_from_a_twin_built_in_the_same_graph(tmp_path, dev):
    """The same stack built twice in one graph takes new default layer names (linear_2...):
    a session checkpoint of the first loads into the second by layer order; a stack that
    differs in its layers or shapes is refused naming both sides' layers, and unchanged."""
    X, y = _data()
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier(_bn_stack(), input_shape=(2,), device=dev)
        model.fit(X, y, epochs=2, batch_size=8, optimizer="adam", verbose=0)
        model.session.save(tmp_path / "ckpt.npz")
        twin = xn.nn.NNClassifier(_bn_stack(), input_shape=(2,), device=dev)
        assert twin.net.layers[0].name == "linear_2"
        twin.load_weights(tmp_path / "ckpt.npz")
        np.testing.assert_array_equal(twin.predict_proba(X), model.predict_proba(X))
        for layers in ([xn.nn.Linear(2, 4), xn.nn.ReLU(), xn.nn.Linear(4, 2)],
                       [xn.nn.Linear(2, 3), xn.nn.BatchNorm(3), xn.nn.Linear(3, 2)]):
            other = xn.nn.NNClassifier(layers, input_shape=(2,), device=dev)
            before = [to_numpy(other.session.get_value(v)).copy()
                      for v in other._param_names().values()]
            with pytest.raises(ValueError, match=r"file's layers \['batch_norm', 'linear', "
                                                 r"'linear_1'\] .*this model's \[.*linear_\d.*"
                                                 r"xn\.Graph\(\)\.as_default\(\)"):
                other.load_weights(tmp_path / "ckpt.npz")
            for v, value in zip(other._param_names().values(), before):
                np.testing.assert_array_equal(to_numpy(other.session.get_value(v)), value)
