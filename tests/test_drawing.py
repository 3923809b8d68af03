"""The graph picture: autodiff's marks on gradient nodes, and ``xn.to_dot`` / ``xn.draw_graph``
(DOT structure checked by parsing the text; rendering only where Graphviz's ``dot`` exists)."""

from __future__ import annotations

import contextlib
import html
import re
import shutil
import subprocess

import numpy as np
import pytest

import xpnn as xn

# ------------------------------------------------------------------------- gradient marks


def test_every_node_gradients_adds_is_marked_with_its_forward_node():
    with xn.Graph().as_default() as g:
        x = xn.placeholder("float32", (None, 2), name="x")
        w = xn.Variable([[1.0], [2.0]], name="w")
        z = x @ w
        loss = xn.reduce_sum(xn.square(z))
        forward = list(g.nodes)
        (dw,) = xn.gradients(loss, [w])
        result = xn.Session().run(dw, {x: [[1.0, 1.0]]}, to_numpy=True)
    added = g.nodes[len(forward):]
    assert added and all(n.gradient_of is not None for n in added)
    assert all(n.gradient_of is None for n in forward)
    assert all(n.gradient_of in forward for n in added)
    assert dw.gradient_of is z  # dloss/dw = x^T dz comes from the MatMul's backward
    seed = next(n for n in added if isinstance(n, xn.Constant))
    assert seed.gradient_of is loss
    np.testing.assert_allclose(result, [[6.0], [6.0]])  # 2 z x^T with z = 3


def test_gradient_sums_are_marked_with_the_node_whose_gradient_they_sum():
    with xn.Graph().as_default():
        x = xn.Variable(3.0, name="x")
        y = xn.relu(x) + xn.square(x)  # two paths into x
        (dx,) = xn.gradients(y, [x])
        value = xn.Session().run(dx).item()
    assert isinstance(dx, xn.Operation) and dx.type == "Add"
    assert dx.gradient_of is x and value == 7.0


def test_second_order_nodes_point_at_the_gradient_nodes_they_differentiate():
    with xn.Graph().as_default() as g:
        x = xn.Variable(3.0)
        (dy,) = xn.gradients(x * x, [x])
        first = set(g.nodes)
        (d2y,) = xn.gradients(dy, [x])
        value = xn.Session().run(d2y).item()
    second = [n for n in g.nodes if n not in first]
    assert second and all(n.gradient_of is not None for n in second)
    assert any(n.gradient_of.gradient_of is not None for n in second)
    assert value == 2.0


def test_a_node_a_gradient_function_reuses_keeps_its_own_mark():
    class Twice(xn.Operation):
        def forward(self, xp, a):
            return a + a

        def backward(self, grad):
            return [self.inputs[0] * 0.0 + grad + grad]

    with xn.Graph().as_default():
        a = xn.Variable(1.0)
        out = Twice(a)
        xn.gradients(out, [a])
    assert a.gradient_of is None and out.gradient_of is None


# ------------------------------------------------------------------------- DOT text

NODE = re.compile(r'^\s*(n\d+) \[(.*)\];$')
EDGE = re.compile(r'^\s*(n\d+) -> (n\d+)(?: \[(.*)\])?;$')
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s]+)')
CLUSTER = re.compile(r'^\s*subgraph "(cluster_(?:[^"\\]|\\.)*)" \{$')


def attrs(text):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in ATTR.findall(text or "")}


def parse(text):
    """{'nodes': id -> attrs (+ 'cluster': the enclosing cluster ids), 'edges': [(a, b, attrs)],
    'clusters': id -> label, 'extra': other statements}, checking the braces balance."""
    lines = text.splitlines()
    assert lines[0].startswith("digraph ") and lines[0].endswith("{") and lines[-1] == "}"
    nodes, edges, clusters, extra, stack = {}, [], {}, [], []
    for line in lines[1:-1]:
        if m := CLUSTER.match(line):
            stack.append(m.group(1))
            clusters[m.group(1)] = None
        elif line.strip() == "}":
            stack.pop()
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2), attrs(m.group(3))))
        elif m := NODE.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} stated twice"
            nodes[m.group(1)] = {**attrs(m.group(2)), "cluster": tuple(stack)}
        elif stack and line.strip().startswith("label="):
            clusters[stack[-1]] = attrs(line)["label"]
        else:
            extra.append(line.strip())
    assert not stack, "unbalanced braces"
    return {"nodes": nodes, "edges": edges, "clusters": clusters, "extra": extra}


def label_lines(label):
    """A DOT label back to its lines of text, undoing to_dot's escapes."""
    out, k = [""], 0
    while k < len(label):
        if label[k] == "\\":
            nxt = label[k + 1]
            if nxt == "n":
                out.append("")
            else:
                out[-1] += nxt
            k += 2
        else:
            out[-1] += label[k]
            k += 1
    return [html.unescape(line) for line in out]


def node_id(node):
    return f"n{node.index}"


def small_graph():
    """x -> matmul(w) + b -> relu -> sum, with a constant; plus an unrelated branch."""
    g = xn.Graph()
    with g.as_default():
        x = xn.placeholder("float32", (None, 2), name="x")
        w = xn.Variable(np.ones((2, 3), np.float32), name="w")
        b = xn.constant([0.5, 0.5, 0.5], name="b")
        y = xn.reduce_sum(xn.relu(x @ w + b))
        other = xn.negative(xn.placeholder("float64", (4,), name="unrelated"))
    return g, dict(x=x, w=w, b=b, y=y, other=other)


def test_each_kind_has_its_own_shape_and_a_label_with_name_type_shape_dtype():
    g, n = small_graph()
    dot = parse(xn.to_dot(g))
    shapes = {k: dot["nodes"][node_id(n[k])]["shape"] for k in ("x", "w", "b", "y")}
    assert len(set(shapes.values())) == 4, shapes
    assert label_lines(dot["nodes"][node_id(n["x"])]["label"]) == [
        "x", "Placeholder", "(None, 2) float32"]
    assert label_lines(dot["nodes"][node_id(n["w"])]["label"]) == [
        "w", "Variable", "(2, 3) float32"]
    assert label_lines(dot["nodes"][node_id(n["y"])]["label"]) == [
        f"ReduceSum#{n['y'].index}", "ReduceSum", "() float32"]
    assert label_lines(dot["nodes"][node_id(n["other"])]["label"])[2] == "(4,) float64"
    assert len(dot["nodes"]) == len(g.nodes)
    inputs = {(node_id(i), node_id(node)) for node in g.nodes for i in node.inputs}
    assert {(a, b) for a, b, _ in dot["edges"]} == inputs


def test_gradient_nodes_have_the_second_colour_and_name_their_forward_node():
    g, n = small_graph()
    with g.as_default():
        xn.gradients(n["y"], [n["w"]])
    dot = parse(xn.to_dot(g))
    fills = {}
    for node in g.nodes:
        attrs_, lines = dot["nodes"][node_id(node)], label_lines(
            dot["nodes"][node_id(node)]["label"])
        fills.setdefault(node.gradient_of is not None, set()).add(attrs_["fillcolor"])
        if node.gradient_of is not None:
            assert lines[-1] == f"grad of {node.gradient_of.label}"
        else:
            assert not any(line.startswith("grad of") for line in lines)
    assert len(fills[True]) == 1 and not fills[True] & fills[False]
    into_gradients = [e for e in dot["edges"] if e[1] in
                      {node_id(m) for m in g.nodes if m.gradient_of is not None}]
    assert into_gradients and all(e[2].get("color") for e in into_gradients)


def test_the_update_node_is_distinct_and_points_at_the_variables_it_writes():
    g, n = small_graph()
    with g.as_default():
        step = xn.train.MomentumOptimizer(0.1).minimize(n["y"])
    dot = parse(xn.to_dot(g))
    update = dot["nodes"][node_id(step)]
    assert update["shape"] not in {dot["nodes"][node_id(m)]["shape"] for m in g.nodes
                                   if m is not step}
    assert label_lines(update["label"]) == [
        step.label, "MomentumOptimizer step", "writes 2 Variables"]
    writes = [(a, b) for a, b, e in dot["edges"] if e.get("label") == "writes"]
    assert sorted(writes) == sorted((node_id(step), node_id(v)) for v in step.targets)
    assert {v.name for v in step.targets} == {"w", "w/momentum"}
    assert all(e.get("style") == "dashed" for _, _, e in dot["edges"] if e.get("label"))


def test_name_scopes_are_nested_clusters():
    with xn.Graph().as_default() as g:
        x = xn.placeholder(name="x")
        with xn.name_scope("layer1"):
            w = xn.Variable([[1.0]], name="w")
            with xn.name_scope("inner"):
                h = xn.relu(x @ w)
        with xn.name_scope("layer1"):  # a second one: layer1_1
            out = xn.negative(h)
    dot = parse(xn.to_dot(g))
    assert dot["clusters"] == {"cluster_layer1": "layer1", "cluster_layer1/inner": "inner",
                               "cluster_layer1_1": "layer1_1"}
    cluster = {node: dot["nodes"][node_id(node)]["cluster"] for node in (x, w, h, out)}
    assert cluster == {x: (), w: ("cluster_layer1",),
                       h: ("cluster_layer1", "cluster_layer1/inner"),
                       out: ("cluster_layer1_1",)}


def test_fetches_draw_only_what_they_depend_on():
    g, n = small_graph()
    dot = parse(xn.to_dot(n["y"]))
    wanted = {node_id(m) for m in g.nodes if m is not n["other"] and m.name != "unrelated"}
    assert set(dot["nodes"]) == wanted
    both = parse(xn.to_dot([n["y"], n["other"]]))
    assert set(both["nodes"]) == {node_id(m) for m in g.nodes}
    only = parse(xn.to_dot(n["w"]))
    assert set(only["nodes"]) == {node_id(n["w"])} and not only["edges"]


def test_an_update_fetched_brings_the_variables_it_writes():
    with xn.Graph().as_default() as g:
        w = xn.Variable([1.0, 2.0], name="w")
        target = xn.Variable([0.0, 0.0], name="written_only", trainable=False)
        grad = xn.constant([1.0, 1.0])
        step = xn.Update([target], grad, name="copy")
    dot = parse(xn.to_dot(step))
    assert node_id(target) in dot["nodes"] and node_id(w) not in dot["nodes"]
    assert (node_id(step), node_id(target)) in {(a, b) for a, b, _ in dot["edges"]}
    assert len(g.nodes) == 4
    capped = parse(xn.to_dot(step, max_nodes=2))  # the Variable comes last: left out
    assert set(capped["nodes"]) == {node_id(grad), node_id(step)}
    assert [(a, b) for a, b, _ in capped["edges"]] == [(node_id(grad), node_id(step))]
    assert 'label="1 more nodes not drawn (max_nodes=2): 1 variable"' in capped["extra"][-1]


def test_a_cap_draws_the_first_nodes_and_counts_the_rest_by_kind():
    g, n = small_graph()
    with g.as_default():
        xn.train.GradientDescentOptimizer(0.1).minimize(n["y"])
    kinds = ["update" if isinstance(m, xn.Update) else "gradient" if m.gradient_of
             else m.kind for m in g.nodes]
    cap = 5
    dot = parse(xn.to_dot(g, max_nodes=cap))
    assert list(dot["nodes"]) == [node_id(m) for m in g.nodes[:cap]]
    drawn = set(dot["nodes"])
    assert all(a in drawn and b in drawn for a, b, _ in dot["edges"])
    (summary,) = [line for line in dot["extra"] if line.startswith("omitted ")]
    text = attrs(summary)["label"]
    left = kinds[cap:]
    order = ["placeholder", "variable", "constant", "op", "gradient", "update"]
    parts = ", ".join(f"{left.count(k)} {k}" for k in order if left.count(k))
    assert text == f"{len(left)} more nodes not drawn (max_nodes={cap}): {parts}"
    assert left.count("gradient") > 0 and left.count("update") == 1
    full = parse(xn.to_dot(g, max_nodes=len(g.nodes)))
    assert len(full["nodes"]) == len(g.nodes)
    assert not any(line.startswith("omitted") for line in full["extra"])
    with pytest.raises(ValueError, match="max_nodes"):
        xn.to_dot(g, max_nodes=0)


NASTY = 'say "hi" \\ back\\n <b>bold</b> &lt; & >\nsecond line'


def test_text_is_escaped_for_dot():
    with xn.Graph().as_default() as g:
        x = xn.placeholder(name=NASTY)
        xn.relu(x, name="plain")
    text = xn.to_dot(g, title='a "title"')
    assert text.splitlines()[0] == 'digraph "a \\"title\\"" {'
    dot = parse(text)
    lines = label_lines(dot["nodes"][node_id(x)]["label"])
    assert lines[:2] == NASTY.split("\n")
    raw = dot["nodes"][node_id(x)]["label"]
    assert "<" not in raw and ">" not in raw and "&lt;b&gt;" in raw and "&amp;lt;" in raw


def test_to_dot_refuses_what_is_not_a_graph_or_nodes():
    g, n = small_graph()
    with pytest.raises(TypeError, match="Graph, a node or a list"):
        xn.to_dot("y")
    with pytest.raises(TypeError, match="fetch 1 is a int"):
        xn.to_dot([n["y"], 3])
    with xn.Graph().as_default():
        elsewhere = xn.placeholder(name="elsewhere")
    with pytest.raises(ValueError, match="fetch 1 \\(elsewhere\\) belongs to another graph"):
        xn.to_dot([n["y"], elsewhere])


def test_to_dot_without_arguments_draws_the_default_graph():
    g, n = small_graph()
    with g.as_default():
        assert xn.to_dot() == xn.to_dot(g)


# ------------------------------------------------------------------------- files

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt install graphviz)")


def test_draw_graph_writes_dot_text_without_graphviz(tmp_path, monkeypatch):
    g, n = small_graph()
    monkeypatch.setenv("PATH", "")
    path = xn.draw_graph(n["y"], tmp_path / "sub" / "graph.dot", max_nodes=3)
    assert path == tmp_path / "sub" / "graph.dot"
    assert path.read_text() == xn.to_dot(n["y"], max_nodes=3)


def test_draw_graph_says_how_to_get_dot_when_it_is_missing(tmp_path, monkeypatch):
    g, n = small_graph()
    monkeypatch.setenv("PATH", "")
    with pytest.raises(xn.GraphvizNotFoundError, match="apt install graphviz") as info:
        xn.draw_graph(g, tmp_path / "graph.svg")
    assert "`dot`" in str(info.value) and "graph.dot" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert not any(tmp_path.iterdir())


def test_draw_graph_reports_a_failing_dot(tmp_path, monkeypatch):
    g, n = small_graph()
    monkeypatch.setattr(shutil, "which", lambda name: "/bin/false")
    with pytest.raises(RuntimeError, match="-Tpng` failed with exit status 1"):
        xn.draw_graph(g, tmp_path / "graph.png")
    assert not any(tmp_path.iterdir())


def test_draw_graph_refuses_an_unknown_suffix(tmp_path):
    g, _ = small_graph()
    with pytest.raises(ValueError, match="name the file .dot, .svg, .png or .pdf"):
        xn.draw_graph(g, tmp_path / "graph.jpeg")
    with pytest.raises(ValueError, match="name the file"):
        xn.draw_graph(g, tmp_path / "graph")


@needs_dot
def test_draw_graph_renders_svg_and_png(tmp_path):
    g, n = small_graph()
    with g.as_default():
        with xn.name_scope("train"):
            xn.train.AdamOptimizer(0.1).minimize(n["y"])
    svg = xn.draw_graph(g, tmp_path / "graph.svg").read_text()
    assert "<svg" in svg and "cluster_train" in svg
    assert svg.count('class="node"') == len(g.nodes)
    png = xn.draw_graph(g, tmp_path / "graph.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@needs_dot
def test_graphviz_shows_escaped_names_as_typed(tmp_path):
    with xn.Graph().as_default() as g:
        xn.placeholder(name=NASTY)
    svg = xn.draw_graph(g, tmp_path / "graph.svg").read_text()
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert texts[:2] == NASTY.split("\n")


# ------------------------------------------------------------------------- hostile names

QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def check_dot_limits(text):
    """What Graphviz's reader needs: UTF-8 text, no control character but line ends, and
    every quoted string under its 16384-byte limit."""
    data = text.encode("utf-8")  # a lone surrogate would raise here
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text)
    longest = max(len(q.encode("utf-8")) for q in QUOTED.findall(text))
    assert longest < 16384, longest
    return data


def deep_graph(depth):
    g = xn.Graph()
    with g.as_default():
        x = xn.placeholder(name="x")
        with contextlib.ExitStack() as scopes:
            for _ in range(depth):
                scopes.enter_context(xn.name_scope("s"))
            y = xn.relu(x, name="deep")
    return g, x, y


def test_scopes_nested_deeper_than_the_recursion_limit_are_drawn():
    depth = 1200
    g, x, y = deep_graph(depth)
    text = xn.to_dot(g)
    dot = parse(text)
    assert dot["nodes"][node_id(x)]["cluster"] == ()
    assert len(dot["nodes"][node_id(y)]["cluster"]) == depth
    assert set(dot["clusters"].values()) == {"s"} and len(dot["clusters"]) == depth
    assert label_lines(dot["nodes"][node_id(y)]["label"])[0].endswith("/s/s/deep")
    check_dot_limits(text)


LONG_A, LONG_B = "a" * 50_000 + "A" + "a" * 50_000, "a" * 50_000 + "B" + "a" * 50_000
ODD = "bell\x07 nul\x00 tab\t del\x7f sep\u2028 surrogate\ud800 end"


def hostile_graph():
    g = xn.Graph()
    with g.as_default():
        a = xn.placeholder(name=LONG_A)
        b = xn.placeholder(name=LONG_B)
        odd = xn.placeholder(name=ODD)
        with xn.name_scope("scope" * 20_000):
            inner = xn.relu(a + b + odd, name="inner")
    return g, dict(a=a, b=b, odd=odd, inner=inner)


def test_long_and_control_character_names_give_valid_dot():
    g, n = hostile_graph()
    text = xn.to_dot(g, title=LONG_B)
    check_dot_limits(text)
    dot = parse(text)
    assert len(dot["nodes"]) == len(g.nodes)
    inputs = {(node_id(i), node_id(node)) for node in g.nodes for i in node.inputs}
    assert {(a, b) for a, b, _ in dot["edges"]} == inputs  # the ids stay whole and distinct
    for k in ("a", "b"):  # the labels are cut, showing both ends
        name = label_lines(dot["nodes"][node_id(n[k])]["label"])[0]
        assert len(name) <= 80 and "…" in name and name.startswith("aaaa") and name[-4:] == "aaaa"
    assert label_lines(dot["nodes"][node_id(n["odd"])]["label"])[0] == (
        "bell\\x07 nul\\x00 tab\\t del\\x7f sep\\u2028 surrogate\\ud800 end")
    (cluster,) = dot["clusters"]
    assert "…" in cluster and len(dot["clusters"][cluster]) <= 80
    assert dot["nodes"][node_id(n["inner"])]["cluster"] == (cluster,)


@needs_dot
def test_graphviz_reads_hostile_and_deep_graphs(tmp_path):
    for g in (hostile_graph()[0], deep_graph(1200)[0]):
        result = subprocess.run(["dot", "-Tcanon"], input=xn.to_dot(g).encode("utf-8"),
                                capture_output=True, check=False)
        assert result.returncode == 0 and not result.stderr, result.stderr.decode()[:500]
    svg = xn.draw_graph(hostile_graph()[0], tmp_path / "graph.svg").read_text()
    assert "surrogate\\ud800" in svg


def test_a_loop_and_a_cond_are_drawn_with_their_bodies_inside_boxes():
    with xn.Graph().as_default():
        x = xn.placeholder(name="x")
        _, y = xn.while_loop(
            lambda i, v: i < 3,
            lambda i, v: [i + 1, xn.cond(v > 1.0, lambda: xn.sqrt(v), lambda: v * v)],
            [xn.constant(0, "int32"), x], name="loop")
        text = xn.to_dot(y)
    loop = next(n for n in y.graph.nodes if n.name == "loop")
    for title in ("loop: cond", "loop: body"):
        assert f'label="{title}"' in text
    assert "Sqrt" in text and "Square" not in text  # the branches' ops, drawn
    # the cond inside the body gets its own boxes, nested in the body's box
    body_box = text.index('label="loop: body"')
    assert text.index(": true_fn", body_box) > body_box
    assert f"-> n{loop.index} [style=dashed]" in text
