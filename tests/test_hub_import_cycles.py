"""No import circle among the hub's modules (PKG/hub and PKG/hub/web), and the tentacle folder's top-level
packages import one way: bench/ and chaos/ may import demo/, demo/ imports neither, chaos/ never imports bench/,
the offline simulator/ none of them, and what a bot runs (core/, feed/, follower/, the mode) none of the tools.

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
        package = (name.split(".") if name else []) if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:  # absolute: octobot_signals.hub.x, or a third-party module (ignored below)
                    module = (node.module or "").removeprefix("octobot_signals.")
                for alias in node.names:
                    submodule = f"{module}.{alias.name}" if module else alias.name
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


# ---------------------------------------------------------------------------------------------------------------
# the tentacle folder's top-level packages
TOOLS = frozenset({"demo", "bench", "chaos"})  # pip-side: `octobot-signals demo | bench | chaos`
PIP_SIDE = TOOLS | {"cli", "hub", "local_exchange"}
BOT_RUNS = ("core", "feed", "follower", "remote_trading_signals_trading_mode", "remote_trading_signals_trading")


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """top-level package (or module) of PKG -> the other top-level packages its modules import."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        top = module.split(".")[0]
        packages.setdefault(top, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != top)
    return packages


def test_the_checker_sees_the_top_level_packages_imports() -> None:
    packages = package_graph(import_graph(PKG))
    assert {"demo", "bench", "chaos", "simulator", "follower", "tests"} <= set(packages)
    assert {"demo", "simulator", "chaos"} <= packages["bench"]  # bench/replicas.py runs on chaos/pg.py's PostgreSQL
    assert "demo" in packages["chaos"]  # hub_admin, signal_bundles, octobot_bots.free_port
    assert "simulator" in packages["demo"] and "simulator" in packages["tests"]  # the tentacle's own tests
    assert {"demo", "bench", "chaos", "simulator"} <= packages["cli"]
    assert {"feed", "remote_trading_signals_trading_mode"} <= packages[""]  # the lazy __getattr__ of PKG/__init__
    assert find_cycles(package_graph({"a.x": {"b.y"}, "b.y": {"a.z"}, "a.z": set()})) == [["a", "b"]]


def test_demo_bench_chaos_and_the_simulator_import_one_way() -> None:
    packages = package_graph(import_graph(PKG))
    assert not packages["demo"] & {"bench", "chaos"}, packages["demo"]
    assert "bench" not in packages["chaos"], packages["chaos"]
    assert not packages["simulator"] & PIP_SIDE, packages["simulator"]
    for shipped in BOT_RUNS:
        assert not packages[shipped] & (PIP_SIDE | {"simulator"}), (shipped, packages[shipped])
    # cli/ is the way back: it dispatches to every command, and demo/ and bench/ reuse two of its modules
    # (package_cmd.build_package, replay.quiet_octobot_logs); leaving it out, the packages form no circle
    assert find_cycles({p: t - {"cli"} for p, t in packages.items() if p != "cli"}) == []


def test_no_import_circle_through_the_tools_the_cli_or_the_simulator() -> None:
    cycles = [c for c in find_cycles(import_graph(PKG))
              if any(m.split(".")[0] in TOOLS | {"cli", "simulator"} for m in c)]
    assert cycles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)
