"""Every service explains itself (wuwang.cli) and logs in one format (wuwang.service).

``python -m <service> --help`` prints the usage and the settings the service reads —
without starting anything, without secrets, with the database unreachable — and a bad
argument is a usage error (exit 2), never a traceback. Every log line of a real
command service and a real ingest worker matches ``LOG_LINE_RE``: the command
service's "unreadable position from T-…" with its logger, uvicorn's own lines, and the
access log with its tokens still redacted (command.security).
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.broker_peers import Peer
from tests.conftest import Broker
from tests.helpers_services import MakeSettings, command_vars, ingest_vars, running, service_env
from wuwang import cli
from wuwang.endpoints import free_port
from wuwang.mqtt import MqttTarget
from wuwang.service import LOG_LINE_RE, LogFormatter, _ServiceNameFilter
from wuwang.settings import ENV_NAMES, GROUPS, REPO_ROOT

SERVICES = ("ingest", "command", "dashboard", "simulators", "wuwang")

#: Environment variables each service's --help must name (a few per service).
NAMED = {
    "ingest": ("DATABASE_URL", "MQTT_URL", "INGEST_CLIENT_ID", "INGEST_METRICS_PORT", "RETENTION_DAYS"),
    "command": (
        "DATABASE_URL", "COMMAND_PORT", "COMMAND_HOST", "COMMAND_TOKEN_SECRET", "COMMAND_ALLOWED_ORIGINS",
    ),
    "dashboard": ("DATABASE_URL", "DASHBOARD_PORT", "DASHBOARD_SECRET", "DASHBOARD_COMMAND_URL", "LOG_LEVEL"),
    "simulators": ("MQTT_URL", "DRILL_USER", "DRILL_PASSWORD", "DATABASE_URL"),
    "wuwang": ("DATABASE_URL", "STORAGE_BACKEND", "COMMAND_PORT", "DASHBOARD_PORT"),
}

#: Values that must never appear in a --help (a password in a URL, the secrets).
PASSWORD = "pw-never-shown-4711"
SECRETS = {
    "COMMAND_TOKEN_SECRET": "token-secret-never-shown-" + "t" * 20,
    "COMMAND_CONSOLE_SECRET": "console-secret-never-shown-" + "c" * 20,
    "DASHBOARD_SECRET": "demo",  # a refused one: --help validates nothing
    "DRILL_PASSWORD": "drill-password-never-shown",
}


@contextmanager
def trap() -> Iterator[socket.socket]:
    """A listening socket standing in for PostgreSQL, Redis and the broker: nothing may
    connect to it."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any setting of the console's, plus ``extra``."""
    names = {n.upper() for n in ENV_NAMES}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_module(
    module: str, *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_help_prints_the_settings_and_starts_nothing(service: str) -> None:
    port = free_port()
    with trap() as sock:
        where = f"127.0.0.1:{sock.getsockname()[1]}"
        env = clean_env(
            DATABASE_URL=f"postgresql://postgres:{PASSWORD}@{where}/wuwang",
            REDIS_URL=f"redis://:{PASSWORD}@{where}/0",
            MQTT_URL=f"mqtt://ingest:{PASSWORD}@{where}",
            COMMAND_PORT=str(port),
            DASHBOARD_PORT=str(port),
            INGEST_METRICS_PORT=str(port),
            **SECRETS,
        )
        started = time.monotonic()
        done = run_module(service, "--help", env=env)
        took = time.monotonic() - started
        assert not connected(sock), f"python -m {service} --help connected to PostgreSQL, Redis or MQTT"
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"usage: python -m {service}"), out
    for name in NAMED[service]:
        assert re.search(rf"^  {name}  default ", out, re.M), f"{name} not in the help of {service}:\n{out}"
    for value in (PASSWORD, *SECRETS.values()):
        if value != "demo":
            assert value not in out + done.stderr
    assert "postgresql://postgres:***@" in out  # the URL is shown, its password is not
    assert "Traceback" not in done.stderr and not done.stderr.strip(), done.stderr
    assert took < 30, f"--help took {took:.1f} s"


@pytest.mark.parametrize("service", SERVICES)
def test_a_bad_argument_is_a_usage_error(service: str) -> None:
    done = run_module(service, "--no-such-option", env=clean_env())
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"usage: python -m {service}"), done.stderr
    assert "error:" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_every_setting_a_service_reads() -> None:
    """``settings.<group>.<field>`` in a service's package is in its --help."""
    for service in ("ingest", "command", "dashboard", "simulators"):
        listed = set(cli.SERVICES[service].fields())
        read: set[str] = set()
        for path in (REPO_ROOT / service).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for group, field in re.findall(r"\bsettings\.([a-z_]+)\.([a-z_]+)", text):
                if group in GROUPS and field in GROUPS[group].model_fields:
                    read.add(GROUPS[group].env_name(field))
        assert read, f"no settings.<group>.<field> found in {service}"
        missing = read - listed
        assert not missing, f"python -m {service} --help does not list {sorted(missing)}"


def test_help_shows_secrets_without_their_value() -> None:
    env = {"COMMAND_TOKEN_SECRET": "x" * 40, "command_port": "9000", "DATABASE_URL": "postgresql://u:pw@h/db"}
    secret = cli.describe_setting("command_token_secret", env)
    assert secret.splitlines()[0].endswith("set here: (set, not shown)")
    assert "set here: 9000" in cli.describe_setting("command_port", env)  # names are not case-sensitive
    assert "postgresql://u:***@h/db" in cli.describe_setting("database_url", env)
    assert "x" * 40 not in cli.settings_epilog("command", env)
    assert cli.mask_url("redis://:s3cret@[::1]:6390/0") == "redis://:***@[::1]:6390/0"
    assert cli.mask_url("mqtt://host:1883") == "mqtt://host:1883"


# --- the one log format --------------------------------------------------------------


def test_the_formatter_writes_the_one_format() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogFormatter())
    handler.addFilter(_ServiceNameFilter("command"))
    logger = logging.getLogger("command.services.mqtt_side.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("unreadable %s from %s (%s): %r", "position", "T-FIRE-01", "not JSON", b"{")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with a traceback")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, *rest = stream.getvalue().splitlines()
    match = LOG_LINE_RE.match(first)
    assert match, first
    assert match["level"] == "WARNING"
    assert match["service"] == "command" and match["pid"] == str(os.getpid())
    assert match["logger"] == "command.services.mqtt_side.test"
    assert match["message"] == "unreadable position from T-FIRE-01 (not JSON): b'{'"
    stamp = time.strptime(match["time"][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(stamp) - time.mktime(time.gmtime())) < 60  # UTC
    assert LOG_LINE_RE.match(rest[0]) and rest[-1] == "ValueError: boom"


def assert_one_format(text: str) -> list[re.Match[str]]:
    lines = text.splitlines()
    assert lines, "no log lines"
    bad = [line for line in lines if not LOG_LINE_RE.match(line)]
    assert not bad, "lines not in the one log format:\n" + "\n".join(bad) + "\n--- whole log:\n" + text
    return [m for m in map(LOG_LINE_RE.match, lines) if m is not None]


def wait_for_text(log: Path, text: str, timeout: float, poke: Callable[[], object] | None = None) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        if poke is not None:
            poke()
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not logged:\n{log.read_text(errors='replace')}")


def test_the_command_service_logs_in_the_one_format(
    make_settings: MakeSettings, mqtt_broker: Broker, tmp_path: Path
) -> None:
    settings = make_settings(account="command")
    port = free_port()
    env = service_env(settings, log_level="INFO", **command_vars(port, f"command-logs-{os.getpid()}"))
    log = tmp_path / "command.log"
    field = MqttTarget.from_url(make_settings(account="simulator").shared.mqtt_url or "")
    peer = Peer(field.port, field.username, field.password, f"sim-logs-{os.getpid()}")
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvcjEifQ.c2lnbmF0dXJlLW5ldmVyLWxvZ2dlZA"
    with running("command", env, port, log) as proc:
        if mqtt_broker.is_mosquitto:  # the peer speaks MQTT 5 (amqtt: 3.1.1 only)
            assert peer.connect().value == 0
            try:
                # Until the command service has subscribed, a publish reaches nobody: repeat it.
                wait_for_text(
                    log, "unreadable position from T-LOG-01", 60,
                    poke=lambda: peer.publish("teams/v1/T-LOG-01/position", b"{not json"),
                )
            finally:
                peer.close()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz?token={token}", timeout=10).status_code < 500
        wait_for_text(log, "/healthz", 10)
        proc.terminate()
        assert proc.wait(30) == 0
    records = assert_one_format(log.read_text(errors="replace"))
    assert all(m["service"] == "command" for m in records)
    loggers = {m["logger"] for m in records}
    assert {"command", "uvicorn.error", "uvicorn.access"} <= loggers, loggers
    if mqtt_broker.is_mosquitto:
        unreadable = [m for m in records if m["message"].startswith("unreadable position from T-LOG-01")]
        assert unreadable[0]["level"] == "WARNING"
        assert unreadable[0]["logger"] == "command.services.mqtt_side"
    access = [m["message"] for m in records if m["logger"] == "uvicorn.access" and "/healthz" in m["message"]]
    assert access and "[redacted]" in access[0], access
    assert token.rsplit(".", 1)[1] not in log.read_text(errors="replace")


def test_an_ingest_worker_logs_in_the_one_format(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings(account="ingest")
    port = free_port()
    env = service_env(settings, log_level="INFO", **ingest_vars(settings, port))
    log = tmp_path / "ingest.log"
    with running("ingest", env, port, log) as proc:
        wait_for_text(log, "client id", 30)
        proc.terminate()
        assert proc.wait(60) == 0
    records = assert_one_format(log.read_text(errors="replace"))
    assert {m["service"] for m in records} == {"ingest"}
    assert any(m["logger"] == "ingest" and m["message"] == "stopped" for m in records)


def test_the_deployment_page_documents_the_settings_per_group() -> None:
    """docs/deployment.md, "Settings, per service": the tables are those of the code now
    (``python -m wuwang.cli`` regenerates them)."""
    text = (REPO_ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    begin, end = text.index(cli.DOC_BEGIN), text.index(cli.DOC_END) + len(cli.DOC_END)
    assert text[begin:end] == cli.settings_tables(), "docs/deployment.md: run python -m wuwang.cli"
    for name in ENV_NAMES:
        assert f"| `{name.upper()}` |" in text[begin:end]
