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

