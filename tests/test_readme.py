"""README.md's commands work as printed after its own set-up (its first command, which makes
``.venv``): every program is ``.venv/bin/<x>``, ``python3`` (to make the venv) or ``bash``,
each ``<x>`` comes with an extra the README installs, the scripts and nox sessions it names
exist, and the examples it runs accept its options. .ci/run runs the first two commands
exactly as printed."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Programs the set-up puts in .venv/bin only: a bare name runs some other install's, or none.
VENV_ONLY = {"python", "pip", "pytest", "nox", "ruff", "mpiexec", "mpirun"}
# .venv/bin/<program> -> the package that brings it (python and pip come with the venv).
BROUGHT_BY = {"pytest": "pytest", "nox": "nox", "ruff": "ruff", "mpiexec": "mpich"}
SETUP = 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test,examples]"'


def indented_lines(text: str) -> list[str]:
    """The lines of the README's indented blocks (outside ``` fences), dedented, a line
    ending in a backslash joined with the next: what .ci/run's ``grep '^    [^ ]'`` sees."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("    "):
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line.strip()
            else:
                lines.append(line[4:])
    return lines


def is_python(line: str) -> bool:
    try:
        ast.parse(line)
    except SyntaxError:
        return False
    return True


def commands(text: str) -> list[str]:
    """The shell commands among the indented lines (the others are Python or output)."""
    found = []
    for line in indented_lines(text):
        first = line.split()[0]
        if not is_python(line) and (first in VENV_ONLY | {"python3", "bash"} or "/" in first):
            found.append(line)
    return found


def programs(command: str) -> list[tuple[str, list[str]]]:
    """(program, its arguments) of each part of ``command`` (split at && ; |), with the
    program mpiexec starts as a part of its own."""
    words = shlex.split(command, comments=True)
    parts, current = [], []
    for word in [*words, "&&"]:
        if word in ("&&", "||", ";", "|"):
            parts.append(current)
            current = []
        else:
            current.append(word)
    found = []
    for part in filter(None, parts):
        if Path(part[0]).name in ("mpiexec", "mpirun"):
            found.append((part[0], part[1:3]))  # -n N, then the program it starts
            part = part[3:]
        found.append((part[0], part[1:]))
    return found


def extras_installed(text: str) -> set[str]:
    """The packages README's ``.venv/bin/pip install`` commands bring: its extras' and its
    named ones (``torch==2.13.0`` -> ``torch``)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    packages = set()
    for command in commands(text):
        for program, args in programs(command):
            if program != ".venv/bin/pip" or args[:1] != ["install"]:
                continue
            for arg in args[1:]:
                if arg.startswith(".["):
                    for extra in arg[2:-1].split(","):
                        packages |= {re.split(r"[<>=!~ ]", p)[0] for p in extras[extra]}
                elif not arg.startswith("-"):
                    packages.add(re.split(r"[<>=!~ ]", arg)[0])
    return packages


def test_the_first_two_commands_set_up_and_run_the_tests():
    """.ci/run runs these two as printed: the first two indented lines."""
    first_two = [line[4:] for line in README.read_text().splitlines()
                 if re.match(r"^    [^ ]", line)][:2]
    assert first_two == commands(README.read_text())[:2]
    assert first_two[0].startswith(SETUP + " && ")
    assert first_two[1] == ".venv/bin/python -m pytest -q"
    assert "grep -m2 '^    [^ ]' README.md" in (ROOT / ".ci" / "run").read_text()


def program_problem(program: str, args: list[str], installed: set[str]) -> str | None:
    """Why ``program`` would not run after the README's set-up, or None."""
    name = Path(program).name
    if program in VENV_ONLY:
        return f"bare {program!r} is not on PATH after the set-up: write .venv/bin/{program}"
    if program == "python3":
        return None if args[:2] == ["-m", "venv"] else "python3 is only for making .venv"
    if program.startswith(".venv/bin/"):
        if name in ("python", "pip"):
            return None
        if name not in BROUGHT_BY:
            return f"nothing the README installs brings {program}"
        if BROUGHT_BY[name] not in installed:
            return f"{program} needs {BROUGHT_BY[name]}, which no README pip command installs"
        return None
    if program != "bash":
        return f"{program} is not a program the set-up provides"
    return None


def test_every_command_runs_a_program_the_setup_provides():
    text = README.read_text()
    installed = extras_installed(text)
    problems = []
    for command in commands(text):
        for program, args in programs(command):
            problem = program_problem(program, args, installed)
            script = next((a for a in args if a.endswith((".py", ".sh"))), None)
            if problem is None and script and not (ROOT / script).is_file():
                problem = f"{script} does not exist"
            if problem:
                problems.append(f"{command!r}: {problem}")
    assert not problems, "\n".join(problems)
    assert len(commands(text)) >= 10  # the parser found the README's commands


def test_the_mpi_command_starts_the_venv_python_under_the_venv_mpiexec():
    mpi = [c for c in commands(README.read_text()) if "mpiexec" in c]
    assert mpi and all(c.startswith(".venv/bin/mpiexec -n 2 .venv/bin/python ") for c in mpi)


def test_the_nox_sessions_named_exist():
    sessions = {node.name for node in ast.parse((ROOT / "noxfile.py").read_text()).body
                if isinstance(node, ast.FunctionDef) and node.decorator_list}
    named = [args[args.index("-s") + 1].split("(")[0]
             for command in commands(README.read_text())
             for program, args in programs(command) if Path(program).name == "nox"]
    assert named and set(named) <= sessions


def example_commands():
    return [(program, args) for command in commands(README.read_text())
            for program, args in programs(command)
            if program == ".venv/bin/python" and args[:1] and args[0].startswith("examples/")]


@pytest.mark.parametrize("args", [args for _, args in example_commands()],
                         ids=lambda args: " ".join(args))
def test_the_examples_accept_their_options(args):
    """Each example command, its options parsed, then ``--help``: the script imports here
    (without the examples extra too) and knows the options the README gives it."""
    done = subprocess.run([sys.executable, *args, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(default: " in done.stdout


def test_the_test_command_skips_the_doctests_of_absent_backends(tmp_path):
    """Without torch and JAX (hidden by stand-ins that fail to import) the doctests of
    xpnn/devices/torch and xpnn/devices/jax skip, each with the reason."""
    for name in ("torch", "jax"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} hidden')\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "xpnn/devices/torch",
         "xpnn/devices/jax", "tests/test_readme.py::test_the_nox_sessions_named_exist"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(tmp_path), XPNN_XP="numpy"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for folder, library in (("devices/torch", "torch"), ("devices/jax", "jax")):
        assert f"doctests of xpnn/{folder}/__init__.py need {library}" in done.stdout
    assert "1 passed" in done.stdout
