"""What a new user trips on (issue #24): Variables made from what is not a number, layer
names that repeat, ``xn.assign`` / ``xn.group`` as functions, ``device=0``, and a torch
tensor fed to a NumPy Session. Each mistake gets an error naming what is wrong and what to
do, before anything changes."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn

# ------------------------------------------------------------------------- Variable(...)


@pytest.mark.parametrize("value, kind, words", [
    (None, ValueError, "initial_value is None"),
    ("abc", TypeError, "has dtype <U3, not a number type"),
    (b"abc", TypeError, "not a number type"),
    (object(), TypeError, "has dtype object"),
    ({"a": 1.0}, TypeError, "has dtype object"),
    ([1.0, "a"], TypeError, "not a number type"),
    ([[1.0, 2.0], [3.0]], TypeError, "is not an array of numbers"),
], ids=["None", "str", "bytes", "object", "dict", "mixed", "ragged"])
def test_a_variable_of_what_is_not_numbers_is_refused_by_name(value, kind, words):
    with xn.Graph().as_default() as g:
        with pytest.raises(kind, match=words) as info:
            xn.Variable(value, name="w")
        assert "Variable 'w'" in str(info.value)
        assert not g.nodes and not g.variables  # refused before it joined the graph
        assert xn.Variable([1.0], name="w").name == "w"  # the name is still free


def test_a_variable_of_a_graph_node_says_to_assign_it():
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (2,), name="x")
        doubled = x * 2.0
        c = xn.constant([1.0, 2.0], name="c")
        made = len(g.nodes)
        for node in (x, doubled):
            with pytest.raises(TypeError, match=f"graph node {node.label} .*xn.assign") as info:
                xn.Variable(node, name="w")
            assert "Variable 'w'" in str(info.value)
        with pytest.raises(TypeError, match="constant node c; give its array.*node.value"):
            xn.Variable(c)
        with pytest.raises(TypeError, match="Variable 'q'.*could not convert string"):
            xn.Variable("abc", dtype="float32", name="q")
        assert len(g.nodes) == made and not g.variables
        flags = xn.Variable([True, False], name="flags", trainable=False)  # still made
        counts = xn.Variable(np.array([1, 2], np.int64), name="counts", trainable=False)
    assert (flags.dtype, counts.dtype) == ("bool", "int64")



# ------------------------------------------------------------------------- layer names


def _stack(seed):
    return [xn.nn.Conv2D(1, 2, 3, seed=seed), xn.nn.Conv2D(2, 2, 3, seed=seed + 1),
            xn.nn.Flatten(), xn.nn.Linear(8, 4, seed=seed + 2), xn.nn.ReLU(),
            xn.nn.Linear(4, 3, seed=seed + 3)]


def test_default_layer_names_are_unique_per_graph():
    with xn.Graph().as_default():
        layers = _stack(0) + [xn.nn.BatchNorm(3), xn.nn.BatchNorm(3)]
        with xn.name_scope("head"):
            scoped = xn.nn.Linear(3, 2)
        by_hand = xn.nn.Linear(2, 2, name="linear_2")
        after = xn.nn.Linear(2, 2)
    names = [la.name for la in layers if hasattr(la, "name")]
    assert names == ["conv", "conv_1", "linear", "linear_1", "batch_norm", "batch_norm_1"]
    assert [v.name for v in layers[1].parameters()] == ["conv_1/W", "conv_1/b"]
    assert scoped.weight.name == "head/linear/W"
    assert by_hand.weight.name == "linear_2/W" and after.weight.name == "linear_3/W"
    with xn.Graph().as_default():  # another graph counts afresh
        assert xn.nn.Linear(2, 2).name == "linear"


def test_a_session_checkpoint_of_a_stack_loads_back_into_its_model(tmp_path, dev):
    X = np.random.default_rng(0).standard_normal((5, 6, 6, 1)).astype(np.float32)
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier(_stack(0), input_shape=(6, 6, 1), device=dev)
    with xn.Graph().as_default():
        other = xn.nn.NNClassifier(_stack(10), input_shape=(6, 6, 1), device=dev)
    model.fit(X, [0, 1, 2, 0, 1], epochs=1, batch_size=5, optimizer="adam", verbose=0)
    model.session.save(tmp_path / "ckpt.npz")  # Variables under their own names
    assert not np.allclose(other.predict_proba(X), model.predict_proba(X))
    other.load_weights(tmp_path / "ckpt.npz")
    np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))
    model.load_weights(tmp_path / "ckpt.npz")  # the README's route, into the same model


# ------------------------------------------------------------------------- xn.assign, xn.group


def test_assign_and_group_are_functions_at_the_top_level(dev):
    with xn.Graph().as_default():
        w = xn.Variable([1.0, 2.0], name="w")
        n = xn.Variable(0.0, name="n")
        x = xn.placeholder("float32", (2,), name="x")
        step = xn.group([xn.assign(w, x * 2.0)], xn.assign_add(n, 1.0), name="step")
        nothing = xn.group()
        sess = xn.Session(device=dev)
        assert sess.run(step, {x: [3.0, 4.0]}) is None
        assert sess.run(nothing) is None
        sess.run(xn.assign_sub(n, 0.5))
        w_now, n_now = sess.run([w, n], to_numpy=True)
    assert w_now.tolist() == [6.0, 8.0] and n_now.item() == 0.5
    assert step.name == "step" and isinstance(step, xn.Update)
    with pytest.raises(TypeError, match="only Variables can be assigned"):
        xn.assign(x, [1.0, 2.0])


# ------------------------------------------------------------------------- device=0


@pytest.mark.parametrize("number, wanted", [(0, "cuda:0"), (1, "cuda:1"),
                                            (np.int64(2), "cuda:2")])
def test_a_device_number_is_refused_with_the_string_to_write(number, wanted):
    default = xn.get_default_device()
    with xn.Graph().as_default():
        for make in (lambda: xn.Session(device=number), lambda: xn.devices.resolve(number),
                     lambda: xn.set_default_device(number),
                     lambda: xn.nn.NNClassifier([2, 2], device=number).get_weights()):
            with pytest.raises(TypeError, match=f"write device='{wanted}', for the CPU "
                                                "device='cpu'"):
                make()
    assert xn.get_default_device() == default
    for other in (True, False, -1, 0.0):
        with pytest.raises(TypeError, match="a device is a string"):
            xn.devices.resolve(other)


# ------------------------------------------------------------------------- another library's array


@pytest.mark.parametrize("device, backend", [("cpu", None), ("device1", "array_api_strict")])
def test_a_torch_tensor_fed_to_another_backend_says_to_convert_it(device, backend):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (2,), name="x")
        sess = xn.Session(device=device, backend=backend)
        tensor = torch.ones(2)
        with pytest.raises(TypeError) as info:
            sess.run(x * 2.0, {x: tensor})
        assert sess.run(x * 2.0, {x: tensor.numpy()}, to_numpy=True).tolist() == [2.0, 2.0]
    message = str(info.value)
    assert message.startswith("placeholder x was fed a torch tensor on cpu, but this Session "
                              f"runs on {sess.device.backend} device {device}, which computes")
    assert "tensor.numpy()" in message and "xn.to_numpy" in message
    assert f"an array on {device}" not in message  # the old text, wrong for a CPU tensor


def test_an_array_on_another_device_of_the_same_library_says_which_device():
    xps = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    with xn.Graph().as_default():
        x = xn.placeholder("float32", (2,), name="x")
        sess = xn.Session(device="device1", backend="array_api_strict")
        with pytest.raises(TypeError, match=r"fed an array_api_strict array on .*device2.*, but "
                                            "this Session runs on array_api_strict device "
                                            "device1: feed an array on device1, or NumPy data"):
            sess.run(x, {x: xps.ones(2, device=xps.Device("device2"))})
