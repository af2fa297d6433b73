"""docker-compose.yml agrees with the code: settings, ports, Mosquitto files, secrets.

No Docker engine runs here, so the file is checked by reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from wuwang.settings import DEFAULT_MQTT_URL, DEMO_SECRETS, ENV_NAMES, REPO_ROOT, field_info

COMPOSE = REPO_ROOT / "docker-compose.yml"
SECRET_REF = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")
_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::([?-])([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} → default, ${VAR:?msg} / ${VAR} → <VAR> (a marker)."""
    return _VAR.sub(lambda m: m.group(3) if m.group(2) == "-" else f"<{m.group(1)}>", value)


def strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that run this repository's image (its environment is our Settings)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def raw_environment(svc: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (svc.get("environment") or {}).items()}


def published(svc: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) pairs."""
    out = []
    for entry in svc.get("ports", []):
        parts = str(entry).split(":")
        out.append((int(parts[-2]), int(parts[-1])))
    return out


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "db", "redis", "mosquitto", "migrate", "ingest", "ingest-2", "command", "dashboard", "exercises"
    }
    assert expected <= set(services)


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        check = svc.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name}'s healthcheck is disabled"


def test_every_dependency_waits_on_a_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep == "migrate" else "service_healthy"
            assert spec.get("condition") == expected, f"{name} → {dep}"
    assert services["migrate"].get("restart") == "no"


def test_app_services_wait_for_migrate(services: dict[str, dict[str, Any]]) -> None:
    for name in ("ingest", "ingest-2", "command", "dashboard", "exercises"):
        assert set(services[name]["depends_on"]) >= {"db", "redis", "mosquitto", "migrate"}, name


def test_ports_agree_with_settings_defaults(services: dict[str, dict[str, Any]]) -> None:
    command_port = field_info("command_port").default
    dashboard_port = field_info("dashboard_port").default
    metrics_port = field_info("ingest_metrics_port").default
    assert (command_port, dashboard_port, metrics_port) == (8000, 8050, 9101)

    assert (command_port, command_port) in published(services["command"])
    assert (dashboard_port, dashboard_port) in published(services["dashboard"])
    assert [p[1] for p in published(services["ingest"])] == [metrics_port]
    assert [p[1] for p in published(services["ingest-2"])] == [metrics_port]
    assert urlsplit(DEFAULT_MQTT_URL).port == 1883
    # the field listener is published; the services' internal listener (1884) is not
    assert published(services["mosquitto"]) == [(1883, 1883)]

    for name in ("ingest", "ingest-2"):
        env = environment(services[name])
        assert env["INGEST_METRICS_PORT"] == str(metrics_port)
        assert str(metrics_port) in str(services[name]["healthcheck"]["test"])
    assert environment(services["command"])["COMMAND_PORT"] == str(command_port)
    assert environment(services["dashboard"])["DASHBOARD_PORT"] == str(dashboard_port)
    assert str(command_port) in str(services["command"]["healthcheck"]["test"])
    assert str(dashboard_port) in str(services["dashboard"]["healthcheck"]["test"])


def test_app_environment_is_made_of_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    fields = {name.upper() for name in ENV_NAMES}
    apps = app_services(services)
    assert set(apps) == {"migrate", "ingest", "ingest-2", "command", "dashboard", "exercises"}
    for name, svc in apps.items():
        unknown = set(environment(svc)) - fields
        assert not unknown, f"{name} sets {sorted(unknown)}, which Settings does not read"


def test_app_services_connect_to_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in app_services(services).items():
        env = environment(svc)
        assert urlsplit(env["DATABASE_URL"]).hostname == "db", name
        assert urlsplit(env["REDIS_URL"]).hostname == "redis", name
        if "MQTT_URL" in env:
            url = urlsplit(env["MQTT_URL"])
            # ingest and command on the internal listener, where they choose their client
            # ids; the drill runner on the field listener, bound to its user name
            port = 1883 if name == "exercises" else 1884
            assert (url.hostname, url.port, url.scheme) == ("mosquitto", port, "mqtt"), name
    ingest, ingest2 = environment(services["ingest"]), environment(services["ingest-2"])
    assert (ingest["INGEST_CLIENT_ID"], ingest2["INGEST_CLIENT_ID"]) == ("ingest-1", "ingest-2")
    assert ingest["INGEST_SHARED_GROUP"] == ingest2["INGEST_SHARED_GROUP"] == "ingest"
    assert urlsplit(ingest["MQTT_URL"]).username == "ingest"
    assert urlsplit(environment(services["command"])["MQTT_URL"]).username == "command"
    # the drill runner is the only account the ACL lets publish on exercise/v1/#
    assert urlsplit(environment(services["exercises"])["MQTT_URL"]).username == "simulator"
    # one connection at a time: on the field listener a second one would take the first's id
    assert services["exercises"]["command"][-2:] == ["--workers", "1"]
    assert urlsplit(environment(services["exercises"])["DRILL_API_URL"]).hostname == "command"


def test_mosquitto_mounts_exactly_the_project_files(services: dict[str, dict[str, Any]]) -> None:
    shipped = {p.name for p in (REPO_ROOT / "deploy" / "mosquitto").iterdir() if p.name != "README.md"}
    mounted = {}
    for volume in services["mosquitto"]["volumes"]:
        source, target, *_ = str(volume).split(":")
        if source.startswith("./"):
            assert (REPO_ROOT / source).is_file(), f"{source} does not exist"
            mounted[Path(source).name] = target
    assert set(mounted) == shipped == {"mosquitto.conf", "passwd", "passwd-internal", "acl"}
    assert all(target == f"/mosquitto/config/{name}" for name, target in mounted.items())
    assert any(str(v).endswith(":/mosquitto/data") for v in services["mosquitto"]["volumes"])
    conf = (REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    assert "password_file /mosquitto/config/passwd\n" in conf
    assert "password_file /mosquitto/config/passwd-internal\n" in conf
    assert "acl_file /mosquitto/config/acl" in conf
    assert "persistence_location /mosquitto/data/" in conf


def test_no_secret_literal(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    secrets = DEMO_SECRETS - {"wuwang"}  # also the project's and the database's name
    for text in strings(compose):
        for word in re.split(r"[\s:@/\"'=]+", text):
            assert word not in secrets, f"demo secret {word!r} in {text!r}"
    for name, svc in services.items():
        for key, value in raw_environment(svc).items():
            if re.search("PASSWORD|SECRET|TOKEN|AUTH", key):
                assert SECRET_REF.match(value), f"{name}.{key} must come from ${{VAR:?message}}"
            if "://" in value:
                password = urlsplit(interpolate(value)).password
                if password is not None:
                    assert re.fullmatch(r"<[A-Z0-9_]+>", password), f"{name}.{key}: literal password"
                    var = password.strip("<>")
                    assert re.search(rf"\$\{{{var}:\?[^}}]+\}}", value), f"{name}.{key}: use ${{{var}:?...}}"
    # Secrets on command lines too.
    redis_cmd = services["redis"]["command"]
    assert SECRET_REF.match(redis_cmd[redis_cmd.index("--requirepass") + 1])
    assert '-P "$$MQTT_INGEST_PASSWORD"' in str(services["mosquitto"]["healthcheck"]["test"])


def test_database_is_timescale(services: dict[str, dict[str, Any]]) -> None:
    assert services["db"]["image"].startswith("timescale/timescaledb-ha:")
    assert services["redis"]["image"].startswith("redis:7")
    assert "--appendonly" in services["redis"]["command"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")


def test_dockerfile_runs_as_non_root() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile
    assert "requirements.lock" in dockerfile
    user_lines = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user_lines
    assert user_lines[-1].split()[1] not in ("root", "0")
