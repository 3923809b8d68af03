"""The engine's house rules (the second draft's promises), checked on the source itself:
no function in ``xpnn/`` longer than 60 lines of code (its docstring not counted), no
backend name compared outside ``backend.py``, no benchmark figure in the code, and no
import circle between xpnn's modules anywhere in the code (imports inside functions too)."""

from __future__ import annotations

import ast
import re
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


def test_backend_names_are_compared_in_backend_py_only():
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in SOURCES if path.name != "backend.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if COMPARISON.search(line) and not line.lstrip().startswith("#")]
    assert not found, "ask the Device instead: " + "; ".join(found)


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


# Arrows known to run upward, each inside a function, until #25's devices/ layout loads
# each device's package by name: the device-string parser opening the CuPy stand-in.
KNOWN_UPWARD = {"xpnn.backend": {"xpnn.cupy_fast", "xpnn.cupy_fast.standin"}}


def test_no_import_circle():
    modules = {module_name(p): p for p in SOURCES}
    graph = {m: module_imports(p, set(modules)) for m, p in modules.items()}
    for source, targets in KNOWN_UPWARD.items():
        assert targets <= graph[source], f"{source} no longer imports {targets}: drop it above"
        graph[source] -= targets
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
    devices = {"xpnn.backend"} | {m for m in modules
                                  if any(part.endswith("_fast") for part in m.split("."))}
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
