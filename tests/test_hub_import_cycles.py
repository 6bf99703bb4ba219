"""No import circle among the hub's modules (PKG/hub and PKG/hub/web).

The graph is read from the source (AST), not by importing, so it is fast and sees every import: at module level,
under `if TYPE_CHECKING:` and inside functions (a lazy import hides a circle, it does not break it). Shared pieces
go in a module both sides import (hub/api_common.py for the HTTP handlers, hub/store_tables.py for the store's
interface, state.LiveConnection for what the hub knows of a /cable connection).
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tentacles" / "Trading" / "Mode" / "remote_trading_signals_trading_mode"
HUB = PKG / "hub"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parents(name: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path = HUB) -> dict[str, set[str]]:
    """module -> the modules of `root` it imports (names relative to the package: "hub.api")."""
    sources = {_module_name(p): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:  # absolute: octobot_signals.hub.x, or a third-party module (ignored below)
                    module = (node.module or "").removeprefix("octobot_signals.")
                for alias in node.names:
                    submodule = f"{module}.{alias.name}"
                    targets.add(submodule if submodule in sources else module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name.removeprefix("octobot_signals.") for alias in node.names)
        for target in list(targets):
            targets.update(_parents(target))
        graph[name] = {t for t in targets if t in sources and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_checker_sees_the_hub_imports_and_finds_a_circle() -> None:
    graph = import_graph()
    assert {"hub.api", "hub.ws", "hub.state", "hub.store", "hub.store_pg", "hub.web.app"} <= set(graph)
    assert "hub.api_common" in graph["hub.api"]
    assert "hub.api_common" in graph["hub.ws"]  # json_error, no longer a lazy import of api
    assert "hub.store_tables" in graph["hub.store_pg"]
    assert "hub.store_pg" in graph["hub.store"]  # the lazy import inside AsyncStore is seen
    assert "hub.performance_service" in graph["hub.ws"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_hub_modules() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import circles among the hub's modules: " + "; ".join(" <-> ".join(c) for c in cycles)
