"""The import graph of src/wasmbuild, built from the AST: every import of a wasmbuild module counts (module level,
inside functions, under TYPE_CHECKING). It has no cycle, and only the command line (cli/) imports wasmbuild modules
inside functions (start-up time: each command imports what it needs); elsewhere an in-function import would only
hide a cycle (README, "Layers")."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import wasmbuild

PACKAGE = Path(wasmbuild.__file__).parent
# Where imports inside functions are allowed: the command line's modules.
START_UP_ROOM = "wasmbuild.cli"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: bool


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: dict[str, Path]) -> list[str]:
    """The wasmbuild modules an import statement names (`from a import b` names a.b when that is a module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")[: len(module.split(".")) - (0 if is_package else 1)]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join([*base, *([node.module] if node.module else [])])
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix for alias in node.names]
    out = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_edges(package: Path = PACKAGE) -> list[Edge]:
    known = module_names(package)
    edges = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        inside = {id(n) for f in functions for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _resolve(module, path.name == "__init__.py", node, known):
                    if target != module:
                        edges.append(Edge(module, target, node.lineno, id(node) in inside))
    return edges


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    found = cycles(import_edges())
    assert not found, "import cycles (move the shared concept down to its owner): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_only_the_command_line_imports_wasmbuild_modules_inside_functions():
    hidden = [f"{e.source}:{e.line} imports {e.target}" for e in import_edges()
              if e.in_function and not (e.source == START_UP_ROOM or e.source.startswith(START_UP_ROOM + "."))]
    assert not hidden, "imports inside functions outside cli/ (import at module level): " + "; ".join(hidden)


def test_the_checks_see_what_they_are_meant_to(tmp_path):
    """The graph builder itself: a cycle through an in-function and a TYPE_CHECKING import is one."""
    pkg = tmp_path / "wasmbuild"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wasmbuild.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from wasmbuild import a\n")
    (pkg / "c.py").write_text("from .sub.b import f\n")
    edges = import_edges(pkg)
    assert cycles(edges) == [["wasmbuild.a", "wasmbuild.sub.b"]]
    assert [(e.source, e.target) for e in edges if e.in_function] == [("wasmbuild.sub.b", "wasmbuild.a")]
    assert ("wasmbuild.c", "wasmbuild.sub.b") in [(e.source, e.target) for e in edges]
