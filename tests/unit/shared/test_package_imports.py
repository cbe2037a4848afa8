"""No import cycle among the modules of lookout_shared.

Read from the source (ast), not by importing: an import inside a function counts too,
since it runs the other module's import all the same, only later, and deferring it is how
a cycle usually hides (``logs`` and ``telemetry`` once imported each other that way).
Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lookout_shared

PACKAGE = Path(lookout_shared.__file__).parent
NAME = "lookout_shared"


def _modules() -> dict[str, Path]:
    return {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """The lookout_shared modules one import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level:  # relative: from . import x, from .x import y
        base = node.module or ""
        names = [base] if base else [alias.name for alias in node.names]
        names = [f"{NAME}.{name}" for name in names]
    elif node.module == NAME:
        names = [f"{NAME}.{alias.name}" for alias in node.names]
    else:
        names = [node.module or ""]
    found = set()
    for name in names:
        head, _, rest = name.partition(".")
        module = rest.split(".")[0]
        if head == NAME and module in modules:
            found.add(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = set().union(
            *(_imported(node, set(modules)) for node in _runtime_imports(tree))
        ) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the path that closes it (first module repeated), or None."""
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            cycle = walk(imported, [*path, module])
            if cycle is not None:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = walk(module, [])
        if cycle is not None:
            return cycle
    return None


def test_no_import_cycle_among_lookout_shared_modules() -> None:
    graph = import_graph()
    assert "broker" in graph and "publisher" in graph["broker"]  # the graph is read at all
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_through_a_deferred_import_is_found() -> None:
    source = {
        "logs": "from lookout_shared.telemetry import current_ids\n",
        "telemetry": "def setup():\n    from lookout_shared.logs import configure_logging\n",
        "envelope": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from lookout_shared import logs\n",
    }
    graph = {
        name: set().union(*(_imported(n, set(source)) for n in _runtime_imports(ast.parse(text))))
        for name, text in source.items()
    }
    assert graph == {"logs": {"telemetry"}, "telemetry": {"logs"}, "envelope": set()}
    assert find_cycle(graph) == ["logs", "telemetry", "logs"]
