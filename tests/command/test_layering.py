"""The command service's layers (docs/architecture.md, "Inside the command service"):
the domain imports no service, route, state or client library; services lean on the
domain and the stores, so the import chain between service modules stays short."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "command"

#: The longest chain of service modules importing each other (it was 10 before the
#: services were put on the domain and the stores; see docs/architecture.md).
MAX_SERVICE_CHAIN = 6

#: What the pure domain never imports.
NOT_IN_DOMAIN = ("command.services", "command.routes", "command.state", "command.app", "psycopg", "redis")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def service_graph() -> dict[str, set[str]]:
    services = {p.stem: p for p in (ROOT / "services").glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name, path in services.items():
        names = imported(path)
        graph[name] = {other for other in services if other != name and f"command.services.{other}" in names}
    return graph


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    @functools.cache
    def from_(name: str) -> tuple[str, ...]:
        below = [from_(d) for d in graph[name]]
        return (name, *max(below, key=len, default=()))

    longest: tuple[str, ...] = max((from_(n) for n in graph), key=len)
    return list(longest)


def test_the_domain_imports_no_service_and_no_client() -> None:
    offending = {
        path.name: sorted(n for n in imported(path) if n.startswith(NOT_IN_DOMAIN))
        for path in (ROOT / "domain").glob("*.py")
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_service_imports_stay_shallow() -> None:
    graph = service_graph()
    chain = longest_chain(graph)  # an import cycle fails here too (RecursionError)
    assert len(chain) <= MAX_SERVICE_CHAIN, " → ".join(chain)


def test_the_chain_is_measured_as_documented() -> None:
    graph = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": set()}
    assert longest_chain(graph) == ["a", "b", "c"]
