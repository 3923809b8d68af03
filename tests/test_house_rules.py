"""The engine's house rules (the second draft's promises), checked on the source itself:
no function in ``xpnn/`` longer than 60 lines of code (its docstring not counted), no
backend named outside ``xpnn/devices/``, no benchmark figure in the code, and no
import circle between xpnn's modules anywhere in the code (imports inside functions too)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xpnn"
SOURCES = sorted(PACKAGE.rglob("*.py"))
COMPARISON = re.compile(r"backend\w*\s*(==|!=|\bin\b|\bnot in\b)|(==|!=)\s*\S*backend")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def code_lines(fn: ast.FunctionDef) -> int:
    lines = fn.end_lineno - fn.lineno + 1
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    code_lines(node) > 60:
                long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} "
                            f"({code_lines(node)} lines)")
    assert not long, "split these functions: " + ", ".join(long)


# A backend's name as code: its library, its array-api-compat test, or a string naming it.
LIBRARY = re.compile(r"\b(torch|jax|cupy|array_api_strict)\b|\bis_\w+_(array|namespace)\b")


def backend_names(path: Path, root: Path = PACKAGE) -> list[str]:
    """Where ``path`` names a backend in code (comments and docstrings are prose)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    found = []
    for before, token in zip([None, *tokens], tokens):
        docstring = token.type == tokenize.STRING and (before is None or before.type in (
            tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT))
        code = token.type == tokenize.NAME or (token.type == tokenize.STRING and not docstring)
        if code and LIBRARY.search(token.string) or token.type == tokenize.NAME and \
                token.string == "backend" and COMPARISON.search(token.line):
            found.append(f"{path.relative_to(root)}:{token.start[0]}: {token.line.strip()}")
    return found


def test_nothing_outside_devices_names_a_backend():
    """Backends are folders of ``xpnn/devices/``; the rest of xpnn asks the Device."""
    found = [hit for path in SOURCES if path.relative_to(PACKAGE).parts[0] != "devices"
             for hit in backend_names(path)]
    assert not found, "ask the Device (or the array's devices/ folder) instead: " + \
        "; ".join(found)


# A measured time or speed-up: it goes stale in code; benchmarks/README.md keeps figures.
FIGURE = re.compile(r"\b\d+(\.\d+)? ?(ms|us|µs|ns)\b|\b\d+(\.\d+)?x (faster|slower)\b"
                    r"|\b\d+(\.\d+)?% (less|more) time\b")


def test_no_benchmark_figures_in_the_code():
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in SOURCES
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if FIGURE.search(line)]
    assert not found, "move these figures to benchmarks/README.md: " + "; ".join(found)


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The xpnn modules ``path`` imports, anywhere in it: an import inside a function only
    hides a circle until that function runs."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for target in [base, *(f"{base}.{alias.name}" for alias in node.names)]:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    # A package importing its own submodules is how packages are made, not a circle.
    return {m for m in found & modules if m != name and not m.startswith(name + ".")}


def test_no_import_circle():
    modules = {module_name(p): p for p in SOURCES}
    graph = {m: module_imports(p, set(modules)) for m, p in modules.items()}
    state: dict[str, str] = {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                pytest.fail("import circle: " + " -> ".join([*trail, module, target]))
            if target not in state:
                visit(target, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_the_graph_imports_no_device():
    """graph.py is pure symbols: nothing it imports, directly or not, is a device module."""
    modules = {module_name(p): p for p in SOURCES}
    devices = {m for m in modules if m.split(".")[:2] == ["xpnn", "devices"]}
    assert {"xpnn.devices", "xpnn.devices.numpy.kernels"} <= devices
    reached, todo = set(), ["xpnn.graph"]
    while todo:
        module = todo.pop()
        reached.add(module)
        todo += [m for m in module_imports(modules[module], set(modules)) if m not in reached]
    assert not reached & devices, f"xpnn.graph imports {sorted(reached & devices)}"


def test_the_checks_can_fail(tmp_path):
    """The rules above would see a breach: a long function, a name comparison, a circle
    (through an import inside a function too)."""
    assert COMPARISON.search('if device.backend == "numpy":')
    (tmp_path / "named.py").write_text('"""Runs on torch."""\nimport torch  # on torch\n'
                                        'if device.backend == "x":\n    pass\n'
                                        'flag = array_api_compat.is_jax_array(x)\n')
    hits = backend_names(tmp_path / "named.py", tmp_path)
    assert [hit.split(":")[1] for hit in hits] == ["2", "3", "5"]
    assert COMPARISON.search('if "cupy" != self.backend_name:')
    assert not COMPARISON.search('if os.environ.get("XPNN_BLAS") == "numpy":')
    assert FIGURE.search("(4x faster on the CPU)") and FIGURE.search("25 against 41 us")
    assert not FIGURE.search("a timeout of 30 s, 32 MiB of heap, 2x2 windows")
    long = ast.parse("def f():\n" + "    x = 1\n" * 61).body[0]
    assert code_lines(long) == 62
    documented = ast.parse('def f():\n    """doc\n    more"""\n    return 1\n').body[0]
    assert code_lines(documented) == 2
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import thing\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, package
    try:
        modules = {"pkg.a", "pkg.b"}
        assert module_imports(package / "a.py", modules) == {"pkg.b"}
        assert module_imports(package / "b.py", modules) == {"pkg.a"}
    finally:
        PACKAGE = saved


# The graph's classes: only ops/__init__.py's attach_to_node sets anything on them.
CORE_CLASSES = {"Node", "Placeholder", "Variable", "Constant", "Operation", "Update", "Graph",
                "Session", "TensorShape"}


def attributes_set_on_core_classes(path: Path) -> list[str]:
    """``Node.x = ...`` and ``setattr(Node, ...)`` in ``path``, as "file:line Class.name"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "setattr" and node.args:
            targets = [ast.Attribute(value=node.args[0], attr=ast.unparse(node.args[1]))]
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                    and target.value.id in CORE_CLASSES:
                found.append(f"{path.name}:{node.lineno} {target.value.id}.{target.attr}")
    return found


def test_only_ops_attaches_anything_to_the_graphs_classes():
    """Node's operators come from one function, ``xpnn.ops.attach_to_node``; no other module
    (compat.v1 included) sets an attribute on Node or another core class."""
    found = [hit for path in SOURCES if path != PACKAGE / "ops" / "__init__.py"
             for hit in attributes_set_on_core_classes(path)]
    assert not found, "define these in the class, or in ops.attach_to_node: " + "; ".join(found)
    attached = attributes_set_on_core_classes(PACKAGE / "ops" / "__init__.py")
    assert any("Node.__getitem__" in hit for hit in attached)  # the check sees what it looks for
