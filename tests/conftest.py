"""Real services for the tests, found or started by the same rule as ``make demo``
(``wuwang.endpoints``): a configured URL, else the local default port, else embedded.

The broker is always a private one on a free port — the project's own Mosquitto
configuration when the binary exists (so ACLs, persistence and queue limits are the
ones we ship), embedded amqtt otherwise — so tests may stop and restart it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import hypothesis
import psycopg
import pytest
import redis
from psycopg import sql

from wuwang import db
from wuwang.endpoints import (
    Endpoints,
    LocalServices,
    ManagedProcess,
    embedded_redis,
    free_port,
    private_mosquitto,
)
from wuwang.mqtt import MqttTarget
from wuwang.settings import Settings

if TYPE_CHECKING:
    from testkit.xdist_order import LongestFirst

_counter = itertools.count()

# No per-example deadline (Hypothesis's default is 200 ms): tests never assert wall-clock
# times, and on two loaded cores a first example that imports or warms something up
# takes longer (test_percentile_matches_numpys_default failed so, "FlakyFailure").
hypothesis.settings.register_profile("suite", deadline=None)
hypothesis.settings.load_profile("suite")


@pytest.fixture(scope="session")
def test_data_dir() -> Iterator[Path]:
    # Not under pytest's tmp dir: as root that is mode 0700, and embedded PostgreSQL
    # runs as another user who could not enter it.
    path = Path(tempfile.mkdtemp(prefix="wuwang-services-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def local_services(test_data_dir: Path) -> Iterator[tuple[Endpoints, LocalServices]]:
    base = Settings(demo_mode=True, data_dir=test_data_dir)
    services = LocalServices(base, database_name="wuwang_test", broker_mode="private")
    endpoints = services.start()
    yield endpoints, services
    services.stop()


@pytest.fixture(scope="session")
def private_redis_server(test_data_dir: Path) -> Iterator[str]:
    """A Redis of the test session's own: tests flush databases and listen on pub/sub
    channels (which span every database of a server), so they never touch a Redis that
    anyone else uses — not the one on 6379, not another test run's."""
    server = embedded_redis(test_data_dir / "redis", free_port())
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture(scope="session")
def endpoints(local_services: tuple[Endpoints, LocalServices], private_redis_server: str) -> Endpoints:
    return dataclasses.replace(local_services[0], redis_url=private_redis_server)


@pytest.fixture(scope="session")
def template_database(endpoints: Endpoints) -> Iterator[str]:
    """A migrated database that each test's database is cloned from (fast).

    Once migrated it is closed to connections: ``CREATE DATABASE … TEMPLATE`` fails while
    anyone is connected to the template, and TimescaleDB's scheduler connects to every
    database that allows it. STORAGE_BACKEND picks the backend, as for ``migrate``."""
    name = f"wuwang_tpl_{os.getpid()}"
    url = _database_url(endpoints.database_url, name)
    _drop_template(endpoints.database_url, name)
    with psycopg.connect(_database_url(endpoints.database_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db.migrate(url, storage=Settings(demo_mode=True).shared.storage_backend)
    with psycopg.connect(_database_url(endpoints.database_url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            )
        )
        # Sessions already in (a Timescale scheduler started while migrating) go now;
        # none can come back.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    yield url
    _drop_template(endpoints.database_url, name)


def _drop_template(admin_url: str, name: str) -> None:
    with psycopg.connect(_database_url(admin_url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
    _drop(admin_url, name)


@pytest.fixture(scope="session")
def clone_database(endpoints: Endpoints, template_database: str) -> Iterator[Callable[[], str]]:
    """Makes freshly migrated, empty databases (clones of the template); all are
    dropped at the end of the session unless dropped earlier."""
    made: list[str] = []
    admin = _database_url(endpoints.database_url, "postgres")
    template = urlsplit(template_database).path.lstrip("/")

    def clone() -> str:
        name = f"wuwang_t_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        made.append(name)
        return _database_url(endpoints.database_url, name)

    yield clone
    for name in made:
        _drop(endpoints.database_url, name)


class DatabaseSupply:
    """Clones of the template for the tests, made one ahead and dropped after use by one
    background thread: a clone and a drop each take a second or more on a busy machine
    (mostly waiting on PostgreSQL's disk), and the test no longer waits for them. One
    thread, in order: never more than one clone ready and one drop pending."""

    def __init__(self, admin_url: str, clone: Callable[[], str]) -> None:
        self._admin_url = admin_url
        self._clone = clone
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._ready: Future[str] = self._work.submit(clone)

    def take(self) -> str:
        url = self._ready.result()
        self._ready = self._work.submit(self._clone)
        return url

    def give_back(self, url: str) -> None:
        self._work.submit(_drop, self._admin_url, urlsplit(url).path.lstrip("/"))

    def close(self) -> None:
        """Wait for the pending work; the spare clone is dropped with the others
        (``clone_database``)."""
        self._work.shutdown(wait=True)


@pytest.fixture(scope="session")
def database_supply(endpoints: Endpoints, clone_database: Callable[[], str]) -> Iterator[DatabaseSupply]:
    supply = DatabaseSupply(endpoints.database_url, clone_database)
    yield supply
    supply.close()


@pytest.fixture
def database_url(database_supply: DatabaseSupply) -> Iterator[str]:
    """A freshly migrated, empty database of this test's own."""
    url = database_supply.take()
    yield url
    database_supply.give_back(url)


@pytest.fixture
def redis_url(endpoints: Endpoints) -> Iterator[str]:
    """Database 9 of the session's private Redis, emptied before and after the test."""
    url = endpoints.redis_url.rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@dataclass
class Broker:
    target: MqttTarget
    protocol: str
    kind: str
    process: ManagedProcess | None
    endpoints: Endpoints

    def url_for(self, account: str) -> str:
        return self.endpoints.mqtt_url_for(account)

    @property
    def is_mosquitto(self) -> bool:
        return self.kind == "mosquitto"


@pytest.fixture(scope="session")
def mqtt_broker(endpoints: Endpoints, local_services: tuple[Endpoints, LocalServices]) -> Broker:
    """The session's private broker (shared; do not stop it — use ``own_mosquitto``)."""
    return Broker(
        endpoints.mqtt, endpoints.mqtt_protocol, endpoints.broker, local_services[1].broker_process, endpoints
    )


@contextmanager
def mosquitto_of_its_own(endpoints: Endpoints, workdir: Path) -> Iterator[Broker]:
    """A Mosquitto with the project's configuration in ``workdir``, stopped on leaving."""
    workdir.chmod(0o755)
    port = free_port()
    proc = private_mosquitto(workdir / "mosquitto", port)
    proc.start()
    target = MqttTarget("127.0.0.1", port, None, None, False)
    own = Endpoints(endpoints.database_url, endpoints.redis_url, target, "5", "mosquitto")
    try:
        yield Broker(target, "5", "mosquitto", proc, own)
    finally:
        proc.stop()


@pytest.fixture
def own_mosquitto(endpoints: Endpoints, tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of this test's own (project configuration), free to kill and restart."""
    if endpoints.broker != "mosquitto":
        pytest.skip("needs the mosquitto binary (apt-get install mosquitto)")
    with mosquitto_of_its_own(endpoints, tmp_path) as broker:
        yield broker


@pytest.fixture(scope="module")
def module_broker(
    endpoints: Endpoints, mqtt_broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """A Mosquitto of this module's own, where the session's would carry another
    stack's traffic too; the session's broker when it is embedded amqtt (one a session)."""
    if endpoints.broker != "mosquitto":
        yield mqtt_broker
        return
    with mosquitto_of_its_own(endpoints, tmp_path_factory.mktemp("module-broker")) as broker:
        yield broker


@pytest.fixture
def make_settings(database_url: str, redis_url: str, mqtt_broker: Broker) -> object:
    """Settings for a service under test: demo secrets allowed, real endpoints."""

    def build(account: str = "ingest", broker: Broker | None = None, **overrides: object) -> Settings:
        chosen = broker or mqtt_broker
        values: dict[str, object] = {
            "demo_mode": True,
            "database_url": database_url,
            "redis_url": redis_url,
            "mqtt_url": chosen.url_for(account),
            "mqtt_protocol": chosen.protocol,
            "ingest_shared_group": "ingest" if chosen.kind != "amqtt" else "",
            "ingest_client_id": f"ingest-test-{os.getpid()}-{next(_counter)}",
            "alarm_stream": f"test:alarms:{os.getpid()}:{next(_counter)}",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


def _database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(_database_url(admin_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LongestFirst | None:
    """``make test`` (``-n 2 --dist load``): the long files (the browser journeys) whole,
    longest first, to the first worker, every other test on its own to the other; each
    takes the other kind when its own runs out, so both finish together
    (testkit/xdist_order.py). Each worker has its own services and, for its browser
    files, its own console stack (session-scoped: one a worker, its browser tests one
    after another on it). Module fixtures are torn down whenever a worker
    moves on to another file, so two modules' services never overlap on one worker."""
    if config.getvalue("dist") != "load":
        return None
    from testkit.xdist_order import LongestFirst  # xdist is there: it calls this hook

    return LongestFirst(config, log)
