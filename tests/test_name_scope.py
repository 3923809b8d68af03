"""``xn.name_scope``: TF1's naming (nesting, uniquifying, re-entering, Variables), and names
outside every scope exactly as before."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn as xn


@pytest.fixture
def graph():
    with xn.Graph().as_default() as g:
        yield g


def test_nested_scopes_join_with_a_slash(graph):
    with xn.name_scope("layer1") as outer:
        x = xn.placeholder(name="x")
        with xn.name_scope("dense") as inner:
            y = x * 2.0
            z = xn.relu(y, name="act")
    assert (outer, inner) == ("layer1/", "layer1/dense/")
    assert x.name == "layer1/x" and x.scope == "layer1"
    assert y.name == "layer1/dense/Multiply" and y.scope == "layer1/dense"
    assert z.name == "layer1/dense/act"
    assert y.inputs[1].name == "layer1/dense/Constant"  # the 2.0 becomes a scoped constant


def test_a_reused_scope_name_gets_a_number_like_tf1(graph):
    scopes = []
    for _ in range(3):
        with xn.name_scope("layer") as scope:
            scopes.append(scope)
            with xn.name_scope("dense") as inner:
                scopes.append(inner)
    assert scopes == ["layer/", "layer/dense/", "layer_1/", "layer_1/dense/",
                      "layer_2/", "layer_2/dense/"]
    with xn.name_scope("a"):
        with xn.name_scope("b") as first, xn.name_scope("c"):
            pass
        with xn.name_scope("b") as second:
            pass
    assert (first, second) == ("a/b/", "a/b_1/")


def test_names_inside_a_scope_are_unique_as_in_tf1(graph):
    with xn.name_scope("s"):
        a, b = xn.placeholder(name="x"), xn.placeholder(name="x")
        c, d = xn.relu(a), xn.relu(b)
        e = xn.placeholder(name="x_1")  # taken by b: TF1 moves on to x_1_1
        f = xn.placeholder(name="X")    # TF1 compares names ignoring case
    assert [n.name for n in (a, b, c, d, e, f)] == [
        "s/x", "s/x_1", "s/Relu", "s/Relu_1", "s/x_1_1", "s/X_2"]


def test_a_scope_avoids_a_name_already_given_outside_scopes(graph):
    xn.placeholder(name="layer")
    with xn.name_scope("layer") as scope:
        pass
    assert scope == "layer_1/"


def test_variables_get_the_prefix(graph):
    with xn.name_scope("layer1"):
        w = xn.Variable([[1.0]], name="w")
        v = xn.Variable([1.0])
    assert (w.name, v.name) == ("layer1/w", "layer1/Variable")
    assert graph.trainable_variables() == [w, v]
    sess = xn.Session()
    assert sess.run(w).tolist() == [[1.0]]


def test_optimizer_slots_are_named_after_their_variable_not_the_open_scope(graph):
    with xn.name_scope("layer1"):
        w = xn.Variable([1.0, 2.0], name="w")
    with xn.name_scope("train"):
        step = xn.train.MomentumOptimizer(0.1).minimize(xn.reduce_sum(w * w))
    slot = next(v for v in graph.variables if not v.trainable)
    assert (slot.name, slot.scope) == ("layer1/w/momentum", "")
    assert step.name == "train/ApplyGradients" and step.scope == "train"


def test_names_outside_scopes_do_not_change(graph):
    x = xn.placeholder(name="x")
    x_again = xn.placeholder(name="x")  # never made unique outside a scope (as before)
    y = x + 1.0
    w = xn.Variable([1.0])
    with xn.name_scope("s"):
        pass
    after = xn.relu(y)
    assert [n.name for n in (x, x_again, y, w, after)] == ["x", "x", None, None, None]
    assert after.label == f"Relu#{after.index}" and y.inputs[1].name is None
    assert {n.scope for n in graph.nodes} == {""}


def test_scope_none_returns_to_the_top_and_a_trailing_slash_reenters(graph):
    with xn.name_scope("a") as a:
        with xn.name_scope(None) as top:
            top_node = xn.placeholder(name="t")
        with xn.name_scope("") as empty:
            unnamed = xn.placeholder()
    with xn.name_scope(a) as again:
        inside = xn.placeholder(name="t")
    assert (top, empty, again) == ("", "", "a/")
    assert (top_node.name, unnamed.name, inside.name) == ("t", None, "a/t")


def test_scopes_belong_to_one_graph(graph):
    other = xn.Graph()
    with other.as_default():
        u = xn.placeholder(name="u")
    with xn.name_scope("s"):
        v = xn.relu(u)  # built in u's graph, where no scope is open
    assert (v.graph, v.name) == (other, None)
    with xn.name_scope(None, default_name="d", values=[u]) as scope:
        w = xn.relu(u)
    assert scope == "d/" and w.name == "d/Relu"
    with xn.name_scope("d") as here:  # the default graph has no "d" yet
        pass
    assert here == "d/"


def test_bad_scope_names_are_refused_and_the_scope_is_restored(graph):
    with pytest.raises(ValueError, match="name_scope\\('my layer'\\)"):
        with xn.name_scope("my layer"):
            pass
    with pytest.raises(ValueError, match="top level"):
        with xn.name_scope("_private"):
            pass
    with xn.name_scope("a"), xn.name_scope("_inner") as inner:  # allowed when nested
        pass
    assert inner == "a/_inner/"
    with pytest.raises(TypeError, match="string or None"):
        with xn.name_scope(3):
            pass
    with pytest.raises(RuntimeError), xn.name_scope("b"):
        raise RuntimeError("inside the block")
    assert xn.placeholder(name="after").name == "after"


def test_training_inside_scopes_gives_the_same_numbers():
    def train(scoped):
        with xn.Graph().as_default():
            with xn.name_scope("model" if scoped else None):
                x = xn.placeholder("float32", (None, 2), name="x")
                w = xn.Variable([[0.5], [-0.25]], name="w")
                loss = xn.reduce_sum(xn.square(x @ w - 1.0))
            with xn.name_scope("train" if scoped else None):
                step = xn.train.AdamOptimizer(0.1).minimize(loss)
            sess = xn.Session()
            for _ in range(5):
                sess.run(step, {x: [[1.0, 2.0], [3.0, -1.0]]})
            return sess.run(w, to_numpy=True)

    np.testing.assert_array_equal(train(True), train(False))
