"""The house: arrows only point down (face -> SDK -> exporters -> collector -> base), no circles, and
small modules and functions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import REPO

FOLDERS = {"tracing": "tracehouse", "exporters": "tracehouse.exporters", "collector": "tracehouse.collector",
           "evals": "tracehouse.evals"}  # fmt: skip
BASE = {"tracehouse._errors", "tracehouse._version", "tracehouse._internal_errors", "tracehouse._semconv",
        "tracehouse._json", "tracehouse._deferred", "tracehouse._numbers", "tracehouse._retry"}  # fmt: skip
SDK = ("tracehouse.spans", "tracehouse.reads", "tracehouse.tracking", "tracehouse.sweeps", "tracehouse.integrations")
RANKS = {"base": 0, "collector": 1, "exporters": 2, "sdk": 3, "face": 4}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def layer(module: str) -> str:
    """The layer a module belongs to."""
    if module in BASE:
        return "base"
    for prefix, name in (("tracehouse.collector", "collector"), ("tracehouse.exporters", "exporters")):
        if module == prefix or module.startswith(prefix + "."):
            return name
    if any(module == p or module.startswith(p + ".") for p in SDK):
        return "sdk"
    return "face"  # tracehouse itself, cli, testing, pytest_plugin, __main__, evals


def _is_type_checking(node: ast.If) -> bool:
    return (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING") or (
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules of the package that `tree` imports at run time (type-checking-only imports left out)."""
    found: set[str] = set()
    package = module if is_package else module.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in modules.items()
    }


def test_arrows_only_point_down() -> None:
    wrong = sorted(
        f"{a} ({layer(a)}) -> {b} ({layer(b)})"
        for a, targets in _graph().items()
        for b in targets
        if RANKS[layer(b)] > RANKS[layer(a)]
    )
    assert wrong == [], "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for folder in (*FOLDERS, "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            source = path.read_text()
            lines = source.count("\n")
            if lines > 500:
                too_big.append(f"{path.relative_to(REPO)}: {lines} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > 80:
                        too_big.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {length} lines")
    assert too_big == [], "\n".join(too_big)
