"""The graph as a picture (TensorBoard's graph tab, for teaching): DOT text for Graphviz, or an
SVG/PNG/PDF file drawn by Graphviz's ``dot`` program where it is installed.

Placeholders, Variables, constants and ops each get a shape; gradient nodes a second colour
and the forward node they differentiate; an optimizer's update node its own shape, with dashed
edges to the Variables it writes; each name scope a box (a DOT cluster); a cond's branches
and a loop's body each a box of their own, beside the op that runs them.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder("float32", (None, 2), name="x")
...     with xn.name_scope("layer"):
...         y = xn.relu(x)
>>> print(xn.to_dot(y), end="")  # doctest: +NORMALIZE_WHITESPACE
digraph "xpnn" {
  node [fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9, color="#555555"];
  n0 [label="x\\nPlaceholder\\n(None, 2) float32", shape=invhouse, style=filled,
      fillcolor="#fff2cc"];
  subgraph "cluster_layer" {
    label="layer"; style="rounded,dashed"; color="#888888";
    n1 [label="layer/Relu\\nRelu\\n(None, 2) float32", shape=ellipse, style=filled,
        fillcolor="#ffffff"];
  }
  n0 -> n1;
}
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections import Counter
from pathlib import Path

from .autodiff import topological_order
from .graph import Constant, Graph, Node, Operation, Update, get_default_graph

# What a node is decides its shape and fill; every gradient node shares one fill and outline.
SHAPES = {"placeholder": "invhouse", "variable": "cylinder", "constant": "note",
          "op": "ellipse", "update": "doubleoctagon"}
FILLS = {"placeholder": "#fff2cc", "variable": "#dae8fc", "constant": "#eeeeee",
         "op": "#ffffff", "update": "#b9e0a5"}
GRADIENT_FILL, GRADIENT_LINE, WRITE_LINE = "#f8cecc", "#b85450", "#2e7d32"
KINDS = ("placeholder", "variable", "constant", "op", "gradient", "update")  # summary order
RENDERED = ("svg", "png", "pdf")
# Graphviz reads quoted strings of at most 16384 bytes: each label line is cut to MAX_LABEL
# characters (escaped, at most 7 bytes each). Clusters indent at most MAX_INDENT levels.
MAX_LABEL, MAX_INDENT = 80, 16


class GraphvizNotFoundError(RuntimeError):
    """Rendering SVG/PNG/PDF needs Graphviz's ``dot`` program, and it is not on PATH."""


def to_dot(fetches_or_graph=None, *, max_nodes: int = 200, title: str = "xpnn") -> str:
    """DOT text of a graph (default: the default graph), or of only the nodes that fetches (a
    node or a list) depend on, the Variables their updates write included. Beyond
    ``max_nodes`` it draws the first ones (graph order, or inputs before consumers for
    fetches) and a dashed box counting the rest by kind. Labels cut names over 80 characters
    to their two ends joined by "…" and show control characters as escapes.

    >>> import xpnn as xn
    >>> with xn.Graph().as_default() as g:
    ...     w = xn.Variable([1.0, 2.0], name="w")
    ...     step = xn.train.GradientDescentOptimizer(0.1).minimize(xn.reduce_sum(w * w))
    >>> text = xn.to_dot(g)
    >>> "grad of" in text, 'label="writes"' in text
    (True, True)
    >>> xn.to_dot(g, max_nodes=2).splitlines()[-2].split('"')[1]
    '7 more nodes not drawn (max_nodes=2): 1 op, 5 gradient, 1 update'
    """
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"to_dot: max_nodes must be an int >= 1, got {max_nodes!r}")
    nodes = _nodes(fetches_or_graph)
    drawn, left = nodes[:max_nodes], nodes[max_nodes:]
    ids = {node: f"n{node.index}" for node in drawn}
    lines = [f"digraph {_quote(_shorten(title))} {{",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    lines += _scope_lines(drawn, ids)
    lines += _edge_lines(drawn, ids)
    lines += _body_lines(drawn, ids)
    if left:
        counts = Counter(_kind(node) for node in left)
        parts = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
        text = f"{len(left)} more nodes not drawn (max_nodes={max_nodes}): {parts}"
        lines.append(f"  omitted [label={_quote(text)}, shape=box, style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(fetches_or_graph, path, *, max_nodes: int = 200, title: str = "xpnn") -> Path:
    """Write :func:`to_dot`'s picture to ``path``: ``.dot`` (or ``.gv``) as text; ``.svg``,
    ``.png`` or ``.pdf`` drawn by Graphviz's ``dot``, which raises
    :class:`GraphvizNotFoundError` where it is not installed. Returns the path.

    >>> import os, tempfile, xpnn as xn
    >>> with xn.Graph().as_default():
    ...     y = xn.relu(xn.placeholder(name="x"))
    >>> path = xn.draw_graph(y, os.path.join(tempfile.mkdtemp(), "graph.dot"))
    >>> path.read_text().startswith('digraph "xpnn"')
    True
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("dot", "gv", *RENDERED):
        raise ValueError(f"draw_graph({str(path)!r}): name the file .dot, .svg, .png or .pdf")
    text = to_dot(fetches_or_graph, max_nodes=max_nodes, title=title)
    if fmt in ("dot", "gv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            f"draw_graph({str(path)!r}): drawing .{fmt} needs Graphviz's `dot` program, which "
            "is not on PATH. Install Graphviz (Debian/Ubuntu: `apt install graphviz`; macOS: "
            "`brew install graphviz`; conda: `conda install graphviz`), or write DOT text "
            "instead: draw_graph(..., 'graph.dot')"
        )
    result = subprocess.run([program, f"-T{fmt}"], input=text.encode("utf-8"),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"draw_graph({str(path)!r}): `{program} -T{fmt}` failed with exit "
                           f"status {result.returncode}: {result.stderr.decode().strip()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(result.stdout)
    return path


def _nodes(fetches_or_graph) -> list[Node]:
    """The nodes to draw, in drawing order."""
    if fetches_or_graph is None:
        fetches_or_graph = get_default_graph()
    if isinstance(fetches_or_graph, Graph):
        return list(fetches_or_graph.nodes)
    if isinstance(fetches_or_graph, Node):
        fetches = [fetches_or_graph]
    elif isinstance(fetches_or_graph, (list, tuple)):
        fetches = list(fetches_or_graph)
    else:
        raise TypeError(f"to_dot takes a Graph, a node or a list of nodes, got "
                        f"{type(fetches_or_graph).__name__}")
    for position, node in enumerate(fetches):
        if not isinstance(node, Node):
            raise TypeError(f"to_dot: fetch {position} is a {type(node).__name__}, not a node")
        if node.graph is not fetches[0].graph:
            raise ValueError(f"to_dot: fetch {position} ({node.label}) belongs to another graph "
                             f"than {fetches[0].label}; draw one graph at a time")
    order = topological_order(fetches)
    seen = set(order)
    for node in [n for n in order if isinstance(n, Update)]:  # with the Variables it writes
        for target in node.targets:
            if target not in seen:
                seen.add(target)
                order.append(target)
    return order


def _kind(node: Node) -> str:
    if isinstance(node, Update):
        return "update"
    if node.gradient_of is not None:
        return "gradient"
    return node.kind if node.kind in SHAPES else "op"


def _node_line(node: Node, ids) -> str:
    kind = node.kind if node.kind in SHAPES else "op"
    type_name = node.type if isinstance(node, Operation) else type(node).__name__
    shape = "?" if node.shape is None else str(node.shape)
    lines = [node.label, type_name]
    if isinstance(node, Update):  # its value is None: say what it does instead
        lines.append(f"writes {len(node.targets)} Variable{'s' * (len(node.targets) != 1)}")
    else:
        lines.append(f"{shape} {node.dtype or '?'}")
    if isinstance(node, Constant) and node.value.size == 1:
        value = node.value.item()
        lines.append(f"value {value:.6g}" if isinstance(value, float) else f"value {value}")
    attrs = f"shape={SHAPES[kind]}, style=filled"
    if node.gradient_of is not None:
        lines.append(f"grad of {node.gradient_of.label}")
        attrs += f', fillcolor="{GRADIENT_FILL}", color="{GRADIENT_LINE}"'
    else:
        attrs += f', fillcolor="{FILLS[kind]}"'
    label = '"' + "\\n".join(_escape(_shorten(line)) for line in lines) + '"'
    return f"{ids[node]} [label={label}, {attrs}];"


def _scope_lines(drawn, ids) -> list[str]:
    """Node statements, each inside the clusters of its name scope and the scopes above;
    walked with a stack, not recursion, since scopes may nest thousands deep."""
    members: dict[str, list[Node]] = {}
    for node in drawn:
        members.setdefault(getattr(node, "scope", ""), []).append(node)
    scopes = set()
    for scope in members:
        parts = scope.split("/") if scope else []
        scopes.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))
    children: dict[str, list[str]] = {}
    cluster_ids = {}
    for number, scope in enumerate(sorted(scopes)):
        children.setdefault(scope.rpartition("/")[0], []).append(scope)
        cluster_ids[scope] = _cluster_id(scope, number)

    lines = ["  " + _node_line(node, ids) for node in members.get("", [])]
    stack = [iter(children.get("", []))]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            if stack:  # close the cluster opened at this depth
                lines.append("  " * min(len(stack), MAX_INDENT) + "}")
            continue
        indent = "  " * min(len(stack), MAX_INDENT)  # bounded: deep nests stay linear in size
        lines.append(f"{indent}subgraph {_quote(cluster_ids[child])} {{")
        lines.append(f"{indent}  label={_quote(_shorten(child.rpartition('/')[2]))}; "
                     'style="rounded,dashed"; color="#888888";')
        lines += [f"{indent}  {_node_line(node, ids)}" for node in members.get(child, [])]
        stack.append(iter(children.get(child, [])))
    return lines


def _cluster_id(scope: str, number: int) -> str:
    """``cluster_<scope>``; a long scope shortened and numbered, to stay unique (scope names
    hold no "…", so a shortened id never equals a whole one)."""
    if len(scope) <= MAX_LABEL:
        return "cluster_" + scope
    return f"cluster_{number}_{_shorten(scope)}"


def _edge_lines(drawn, ids) -> list[str]:
    """Input -> consumer (gradient colour into gradient nodes), update -> Variable written."""
    lines = []
    for node in drawn:
        colour = f' [color="{GRADIENT_LINE}"]' if node.gradient_of is not None else ""
        lines += [f"  {ids[i]} -> {ids[node]}{colour};" for i in node.inputs if i in ids]
        for target in node.targets if isinstance(node, Update) else ():
            if target in ids:
                lines.append(f'  {ids[node]} -> {ids[target]} [style=dashed, '
                             f'color="{WRITE_LINE}", label="writes", constraint=false];')
    return lines


def _body_lines(drawn, ids, depth=1) -> list[str]:
    """Each control-flow op's bodies (a cond's branches, a loop's condition and body) as a
    box of their own holding the body's nodes, with a dashed edge from each of its
    outputs into the op; bodies inside bodies nest."""
    lines = []
    for op in drawn:
        for title, body in getattr(op, "bodies", ()):
            nodes = topological_order(body.outputs)
            prefix = f"{ids[op]}_{title.replace(' ', '_')}_"
            inner = {node: prefix + str(node.index) for node in nodes}
            indent = "  " * min(depth, MAX_INDENT)
            lines.append(f"{indent}subgraph {_quote('cluster_' + prefix)} {{")
            lines.append(f"{indent}  label={_quote(_shorten(f'{op.label}: {title}'))}; "
                         'style="rounded"; color="#6c8ebf";')
            lines += [f"{indent}  {_node_line(node, inner)}" for node in nodes]
            lines += [indent + line.strip() for line in _edge_lines(nodes, inner)]
            lines += _body_lines(nodes, inner, depth + 1)
            lines.append(indent + "}")
            lines += [f"{indent}{inner[out]} -> {ids[op]} [style=dashed];"
                      for out in dict.fromkeys(body.outputs)]
    return lines


def _shorten(text: str) -> str:
    """At most ``MAX_LABEL`` characters: a longer text keeps its start and its end (where a
    scoped name differs), joined by an ellipsis."""
    if len(text) <= MAX_LABEL:
        return text
    head = (MAX_LABEL - 1) // 2
    return text[:head] + "…" + text[len(text) - (MAX_LABEL - 1 - head):]


def _visible(char: str) -> str:
    """A control character, line or paragraph separator or lone surrogate as its Python
    escape (``\\x07``, ``\\ud800``): Graphviz rejects or mangles them, and a lone surrogate
    cannot be written as UTF-8."""
    if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
        return char.encode("unicode_escape").decode("ascii")
    return char


def _escape(text: str) -> str:
    """Text inside a DOT string: backslashes and quotes escaped; &, < and > as
    entities, which Graphviz decodes in every label (so a name holding "&lt;" shows as typed);
    line breaks as DOT's centred ``\\n``; other control characters as visible escapes."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = ["".join(_visible(c) for c in line) for line in text.split("\n")]
    text = "\n".join(lines).replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\n", "\\n")


def _quote(text: str) -> str:
    return f'"{_escape(text)}"'
