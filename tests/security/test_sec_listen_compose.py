"""docker-compose publishes the services on the host's loopback unless ``*_HOST`` says
otherwise, and the services inside their containers listen where the published port
reaches them. No Docker engine runs here, so the file is read (as tests/deploy/test_compose.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from wuwang.settings import ENV_NAMES, REPO_ROOT

#: service → (its *_HOST setting, container port)
PUBLISHED = {
    "command": ("COMMAND_HOST", 8000),
    "dashboard": ("DASHBOARD_HOST", 8050),
    "ingest": ("INGEST_METRICS_HOST", 9101),
    "ingest-2": ("INGEST_METRICS_HOST", 9101),
}
_DEFAULT = re.compile(r"^\$\{(?P<var>[A-Z_]+):-(?P<default>[^}]*)\}$")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return dict(data["services"])


def host_side(entry: str) -> tuple[str, str]:
    """(host address as written, container port) of a ``ports:`` entry."""
    address, rest = entry.split("}:", 1) if entry.startswith("${") else ("", entry)
    address = address + "}" if address else ""
    parts = rest.split(":")
    if not address and len(parts) == 3:
        address = parts[0]
    return address, parts[-1]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_on_loopback_unless_host_setting_says(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    setting, container_port = PUBLISHED[name]
    assert setting.lower() in ENV_NAMES
    entries = [str(e) for e in services[name].get("ports", [])]
    assert entries, f"{name} publishes no port"
    for entry in entries:
        address, port = host_side(entry)
        assert port == str(container_port), entry
        written = _DEFAULT.match(address)
        assert written is not None, f"{name}: {entry!r} publishes on every host address"
        assert (written["var"], written["default"]) == (setting, "127.0.0.1"), entry


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_inside_the_container_the_service_listens_for_its_published_port(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """A container's loopback is its own: a service bound there is unreachable through
    the published port. Inside, it listens on the container's interfaces."""
    setting, _ = PUBLISHED[name]
    env = {str(k): str(v) for k, v in (services[name].get("environment") or {}).items()}
    assert env.get(setting) == "0.0.0.0"


def test_dashboard_gets_a_real_secret_and_the_command_service(services: dict[str, dict[str, Any]]) -> None:
    env = {str(k): str(v) for k, v in (services["dashboard"].get("environment") or {}).items()}
    # Outside demo mode the dashboard refuses to start without one.
    assert re.fullmatch(r"\$\{DASHBOARD_SECRET:\?[^}]+\}", env.get("DASHBOARD_SECRET", ""))
    # Its own container's 127.0.0.1 is not the command service.
    assert env.get("DASHBOARD_COMMAND_URL") == "http://command:8000"
