"""The project's Mosquitto configuration (deploy/mosquitto/), on a real Mosquitto.

Every test gets a broker of its own started from that very file (``own_mosquitto``):
passwords, ACLs, the offline queue limit and persistence are the ones we ship.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from tests.broker_peers import FIELD_PASSWORD, NOT_AUTHORIZED, Peer
from wuwang.contract import SOURCE_ID_PATTERN
from wuwang.endpoints import conf_listener_ports, render_mosquitto_conf
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, SERVICE_ACCOUNTS
from wuwang.settings import REPO_ROOT

pytestmark = pytest.mark.mosquitto


class MakePeer(Protocol):
    def __call__(
        self,
        user: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
        session_expiry: int = 0,
        connect: bool = True,
    ) -> Peer: ...


@pytest.fixture
def broker(own_mosquitto: Any) -> Any:
    """conftest's ``Broker``: a Mosquitto of this test's own (skips without the binary)."""
    return own_mosquitto


@pytest.fixture
def peers(broker: Any) -> Iterator[MakePeer]:
    made: list[Peer] = []

    def make(
        user: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
        session_expiry: int = 0,
        connect: bool = True,
    ) -> Peer:
        if password is None and user is not None:
            password = DEMO_MQTT_ACCOUNTS.get(user, FIELD_PASSWORD)
        # Services log in on the internal listener, field accounts on the field listener.
        port = broker.process.internal_port if user in SERVICE_ACCOUNTS else broker.target.port
        peer = Peer(
            port,
            user,
            password,
            client_id or f"t-{user}-{len(made)}",
            session_expiry=session_expiry,
        )
        made.append(peer)
        if connect:
            assert peer.connect().value == 0, f"{user} could not log in"
        return peer

    yield make
    for peer in made:
        peer.close()


def test_wrong_password_refused(peers: MakePeer) -> None:
    peer = peers("ingest", "not-the-password", connect=False)
    assert peer.connect().value == NOT_AUTHORIZED


def test_anonymous_refused(peers: MakePeer) -> None:
    peer = peers(None, connect=False)
    assert peer.connect().value == NOT_AUTHORIZED


def test_device_publishes_only_under_its_own_source_id(peers: MakePeer) -> None:
    make = peers
    ingest = make("ingest")
    assert ingest.subscribe("wuwang/v1/+/+/+").value == 1
    assert ingest.subscribe("teams/v1/+/status").value == 1
    device = make("sensor/SEN-0001")

    assert device.publish("wuwang/v1/community/sensor/SEN-0002", b"forged").value == NOT_AUTHORIZED
    assert device.publish("teams/v1/T-FIRE-01/status", b"forged").value == NOT_AUTHORIZED
    assert device.publish("wuwang/v1/community/sensor/SEN-0001", b"own").value == 0
    assert ingest.expect() == ("wuwang/v1/community/sensor/SEN-0001", b"own")
    time.sleep(0.2)
    assert ingest.received.empty(), "a refused message was delivered"


def test_team_writes_its_own_topics_and_reads_only_its_own_dispatch(peers: MakePeer) -> None:
    make = peers
    ingest = make("ingest")
    assert ingest.subscribe("teams/v1/+/status").value == 1
    team = make("T-FIRE-01")
    team.subscribe("teams/v1/T-FIRE-01/dispatch")
    team.subscribe("teams/v1/T-OTHER/dispatch")  # granted, but nothing may be delivered
    command = make("command")

    assert team.publish("teams/v1/T-OTHER/status", b"forged").value == NOT_AUTHORIZED
    assert team.publish("teams/v1/T-FIRE-01/status", b'{"status":"en_route"}').value == 0
    assert ingest.expect() == ("teams/v1/T-FIRE-01/status", b'{"status":"en_route"}')

    command.publish("teams/v1/T-OTHER/dispatch", b"not for T-FIRE-01")
    command.publish("teams/v1/T-FIRE-01/dispatch", b"order")
    assert team.expect() == ("teams/v1/T-FIRE-01/dispatch", b"order")
    time.sleep(0.2)
    assert team.received.empty(), "a team read another team's dispatch"
    assert ingest.received.empty()


def test_only_the_drill_runner_publishes_exercise_topics(peers: MakePeer) -> None:
    """exercise/v1/<id>/...: the simulator (drill runner) writes, ingest reads it all,
    command reads the exercise's team statuses only; devices and teams cannot write there."""
    make = peers
    ingest = make("ingest")
    assert ingest.subscribe("exercise/v1/+/wuwang/v1/+/+/+").value == 1
    assert ingest.subscribe("exercise/v1/+/teams/v1/+/status").value == 1
    command = make("command")
    assert command.subscribe("exercise/v1/+/teams/v1/+/status").value == 1
    assert command.subscribe("exercise/v1/+/wuwang/v1/+/+/+").value == 1  # granted, nothing delivered
    call = "exercise/v1/EX-1/wuwang/v1/police/call/sys110"
    status = "exercise/v1/EX-1/teams/v1/T-FIRE-01/status"

    sensor = "exercise/v1/EX-1/wuwang/v1/community/sensor/SEN-0001"
    forgers = (
        ("call/sys110", call),
        ("sensor/SEN-0001", sensor),
        ("T-FIRE-01", status),
        ("ingest", call),
        ("command", status),
    )
    for user, topic in forgers:
        assert make(user).publish(topic, b"forged").value == NOT_AUTHORIZED, user
    sim = make("simulator")
    assert sim.publish("exercise/v2/EX-1/wuwang/v1/police/call/sys110", b"not v1").value == NOT_AUTHORIZED

    assert sim.publish(call, b"drill call").value == 0
    assert ingest.expect() == (call, b"drill call")
    assert sim.publish(status, b"drill status").value == 0
    assert ingest.expect() == (status, b"drill status")
    assert command.expect() == (status, b"drill status")
    time.sleep(0.2)
    assert ingest.received.empty(), "a refused message was delivered"
    assert command.received.empty(), "command read an exercise's feed other than team statuses"


def test_drill_orders_reach_the_virtual_crews_only_and_their_answers_reach_command(peers: MakePeer) -> None:
    """A drill's order: command writes exercise/v1/<id>/teams/v1/<team>/dispatch, only
    the drill runner (simulator) reads it — never the real team's device; the crew's
    ack, position and status reach command; nobody else may forge an order there."""
    make = peers
    team = make("T-FIRE-01")
    assert team.subscribe("exercise/v1/+/teams/v1/T-FIRE-01/dispatch").value == 1  # granted, never delivered
    assert team.subscribe("teams/v1/T-FIRE-01/dispatch").value == 1
    runner = make("simulator")
    assert runner.subscribe("exercise/v1/EX-1/teams/v1/+/dispatch").value == 1
    command = make("command")
    for leaf in ("ack", "position", "status"):
        assert command.subscribe(f"exercise/v1/+/teams/v1/+/{leaf}").value == 1
    order = "exercise/v1/EX-1/teams/v1/T-FIRE-01/dispatch"

    for user in ("T-FIRE-01", "call/sys110", "ingest"):
        assert make(user).publish(order, b"forged").value == NOT_AUTHORIZED, user
    assert command.publish("exercise/v1/EX-1/teams/v1/T-FIRE-01/ack", b"forged").value == NOT_AUTHORIZED
    assert command.publish(order, b"drill order").value == 0
    assert runner.expect() == (order, b"drill order")
    for leaf in ("ack", "position", "status"):
        topic = f"exercise/v1/EX-1/teams/v1/T-FIRE-01/{leaf}"
        assert runner.publish(topic, leaf.encode()).value == 0
        assert command.expect() == (topic, leaf.encode())
    time.sleep(0.2)
    assert team.received.empty(), "a real team's device read a drill order"
    assert runner.received.empty() and command.received.empty()


def test_warnings_reach_each_field_account_only_its_own(peers: MakePeer) -> None:
    """warnings/v1/<account>: command writes, a team and a grid worker read only their
    own (a subscription to another's is granted but nothing is delivered); nobody else
    may write there; a drill's copy reaches the drill runner only."""
    make = peers
    # first: a field account's client id is its name, so a second login would take over
    for user in ("T-FIRE-01", "report/GW-0001", "ingest", "simulator"):
        forger = make(user)
        assert forger.publish("warnings/v1/T-FIRE-01", b"forged").value == NOT_AUTHORIZED, user
        forger.close()
    team = make("T-FIRE-01")
    worker = make("report/GW-0001")
    for peer, own, other in (
        (team, "warnings/v1/T-FIRE-01", "warnings/v1/T-OTHER"),
        (worker, "warnings/v1/report/GW-0001", "warnings/v1/report/GW-0002"),
    ):
        assert peer.subscribe(own).value == 1
        assert peer.subscribe(other).value == 1  # granted, never delivered
    assert team.subscribe("exercise/v1/+/warnings/v1/T-FIRE-01").value == 1
    runner = make("simulator")
    assert runner.subscribe("exercise/v1/EX-1/warnings/v1/#").value == 1
    command = make("command")

    for topic in ("warnings/v1/T-OTHER", "warnings/v1/report/GW-0002"):
        assert command.publish(topic, b"not yours").value in (0, 16)  # 16: no matching subscribers
    assert command.publish("warnings/v1/T-FIRE-01", b"red").value == 0
    assert command.publish("warnings/v1/report/GW-0001", b"orange").value == 0
    assert command.publish("exercise/v1/EX-1/warnings/v1/T-FIRE-01", b"drill").value == 0
    assert team.expect() == ("warnings/v1/T-FIRE-01", b"red")
    assert worker.expect() == ("warnings/v1/report/GW-0001", b"orange")
    assert runner.expect() == ("exercise/v1/EX-1/warnings/v1/T-FIRE-01", b"drill")
    time.sleep(0.2)
    assert team.received.empty() and worker.received.empty(), "a field account read another's warning"


def test_a_team_counts_shelter_occupancy_under_its_own_id_only(peers: MakePeer) -> None:
    """teams/v2/<team>/shelter (v2 beside v1, docs/mqtt-contract.md §12): a team writes
    under its own id, command reads it; another team, a device, ingest and command
    itself cannot write there, and nothing deeper is allowed. The demo's simulator
    writes for its simulated teams."""
    make = peers
    command = make("command")
    assert command.subscribe("$share/command/teams/v2/+/shelter", qos=1).value == 1
    for user, topic in (
        ("T-FIRE-01", "teams/v2/T-OTHER/shelter"),
        ("T-FIRE-01", "teams/v2/T-FIRE-01/shelter/extra"),
        ("T-FIRE-01", "teams/v2/T-FIRE-01/status"),
        ("report/GW-0001", "teams/v2/report/GW-0001/shelter"),
        ("ingest", "teams/v2/ingest/shelter"),
        ("command", "teams/v2/command/shelter"),
    ):
        forger = make(user)
        assert forger.publish(topic, b"forged").value == NOT_AUTHORIZED, (user, topic)
        forger.close()
    team = make("T-FIRE-01")
    assert team.publish("teams/v2/T-FIRE-01/shelter", b"count").value == 0
    assert command.expect() == ("teams/v2/T-FIRE-01/shelter", b"count")
    # the demo's simulator speaks for its simulated teams, as on teams/v1 (demo only)
    sim = make("simulator")
    assert sim.publish("teams/v2/T-FIRE-02/shelter/extra", b"forged").value == NOT_AUTHORIZED
    assert sim.publish("teams/v2/T-FIRE-02/shelter", b"sim count").value == 0
    assert command.expect() == ("teams/v2/T-FIRE-02/shelter", b"sim count")
    time.sleep(0.2)
    assert command.received.empty(), "a refused count was delivered"


def test_ingest_shared_subscription(peers: MakePeer) -> None:
    make = peers
    first = make("ingest", client_id="ingest-1")
    second = make("ingest", client_id="ingest-2")
    for worker in (first, second):
        assert worker.subscribe("$share/ingest/wuwang/v1/+/+/+").value == 1
    sim = make("simulator")
    for i in range(20):
        assert sim.publish(f"wuwang/v1/video/video/CAM-{i:04d}", str(i)).value == 0
    got = first.drain(20, timeout=0.5) + second.drain(20, timeout=0.5)
    assert sorted(int(p) for p in got) == list(range(20)), "each message exactly once across the group"
    assert first.drain(1, timeout=0.05) == []


def _publish_many(sim: Peer, n: int) -> None:
    mids = [sim.client.publish("wuwang/v1/community/sensor/SEN-0001", str(i), qos=1).mid for i in range(n)]
    assert all(rc.value in (0, 16) for rc in sim.wait_acks(mids, timeout=60))


def _away_subscriber(make: MakePeer, client_id: str) -> Peer:
    """A persistent ingest session (MQTT 5, session expiry 1 h, QoS 1) that goes away.

    It connects with clean start off even the first time, as ingest does: Mosquitto
    2.0 writes to its persistence file only sessions that connected that way."""
    sub = make("ingest", client_id=client_id, session_expiry=3600, connect=False)
    assert sub.connect(clean_start=False).value == 0
    assert sub.subscribe("wuwang/v1/+/+/+").value == 1
    sub.close()
    return sub


def test_offline_queue_keeps_2000_messages(peers: MakePeer) -> None:
    """Mosquitto's default max_queued_messages (1000) would silently drop half."""
    _away_subscriber(peers, "ingest-away")
    _publish_many(peers("simulator"), 2000)
    back = peers("ingest", client_id="ingest-away", session_expiry=3600, connect=False)
    assert back.connect(clean_start=False).value == 0
    got = back.drain(2000, timeout=30)
    assert len(got) == 2000
    assert sorted(int(p) for p in got) == list(range(2000))


def _root_broker_cannot_persist() -> bool:
    """Started as root, Mosquitto switches to the user 'mosquitto' (its default ``user``),
    which cannot write the root-owned data directory the test harness makes for it."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        conf = render_mosquitto_conf(Path(tmp), 1883).read_text(encoding="utf-8")
        data_owner = (Path(tmp) / "data").stat().st_uid
    return data_owner == 0 and not any(line.startswith("user ") for line in conf.splitlines())


@pytest.mark.xfail(
    _root_broker_cannot_persist(),
    strict=True,
    reason="wuwang.endpoints.render_mosquitto_conf: as root the private broker drops to user "
    "'mosquitto' and cannot write its persistence file (needs 'user root' or a chown)",
)
def test_queued_messages_survive_a_broker_restart(peers: MakePeer, broker: Any) -> None:
    _away_subscriber(peers, "ingest-restart")
    sim = peers("simulator")
    _publish_many(sim, 500)
    sim.close()
    assert broker.process is not None
    broker.process.restart()  # SIGTERM: Mosquitto writes its persistence file, then starts again
    back = peers("ingest", client_id="ingest-restart", session_expiry=3600, connect=False)
    assert back.connect(clean_start=False).value == 0
    got = back.drain(500, timeout=10)
    assert sorted(int(p) for p in got) == list(range(500))


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="needs mosquitto_sub (mosquitto-clients)")
def test_compose_healthcheck_command(broker: Any) -> None:
    """The mosquitto healthcheck in docker-compose.yml logs in and subscribes."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert "-p 1883" in command and "-p 1884" in command, "checks both listeners"
    command = command.replace("$$", "$").replace("-p 1883", f"-p {broker.target.port}")
    command = command.replace("-p 1884", f"-p {broker.process.internal_port}")
    env = {**os.environ, "MQTT_INGEST_PASSWORD": DEMO_MQTT_ACCOUNTS["ingest"]}
    ok = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=20, check=False)
    assert ok.returncode == 0, ok.stderr
    env["MQTT_INGEST_PASSWORD"] = "wrong"
    bad = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=20, check=False)
    assert bad.returncode != 0


# --- the shipped account files (no broker needed) -----------------------------------------

MOSQUITTO = REPO_ROOT / "deploy" / "mosquitto"
DEVICE_KINDS = ("sensor", "video", "call", "report")


def _accounts(name: str) -> list[str]:
    text = (MOSQUITTO / name).read_text(encoding="utf-8")
    return [line.split(":", 1)[0] for line in text.splitlines() if line.strip()]


def test_the_internal_listener_knows_the_services_only() -> None:
    assert set(_accounts("passwd-internal")) == SERVICE_ACCOUNTS
    assert set(_accounts("passwd")) >= SERVICE_ACCOUNTS


def test_field_account_names_say_their_kind_and_can_never_be_a_service_client_id() -> None:
    """On the field listener the client id is the user name: a field account called
    ``ingest-1`` would hold the ingest worker's session. Device accounts are
    ``<feed>/<source_id>`` (the ACL's ``wuwang/v1/+/%u``), teams their team id."""
    source_id = re.compile(SOURCE_ID_PATTERN)
    for name in set(_accounts("passwd")) - SERVICE_ACCOUNTS:
        kind, _, own = name.rpartition("/")
        if kind:
            assert kind in DEVICE_KINDS and source_id.fullmatch(own), name
        else:
            assert source_id.fullmatch(name), name
        assert not any(name.startswith(f"{service}-") for service in SERVICE_ACCOUNTS), name
        assert not name.startswith("wuwang-"), name


def test_the_shipped_configuration_binds_client_ids_on_the_field_listener_only() -> None:
    conf = (MOSQUITTO / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    assert "per_listener_settings true" in conf
    sections = "\n".join(conf).split("\nlistener ")[1:]
    field, internal = sections[0], sections[1].split("\n\n# ")[0]
    assert field.startswith("1883\n") and "use_username_as_clientid true" in field
    assert "password_file /mosquitto/config/passwd\n" in field
    assert internal.startswith("1884\n") and "use_username_as_clientid" not in internal
    assert "password_file /mosquitto/config/passwd-internal" in internal
    with tempfile.TemporaryDirectory() as tmp:
        rendered = render_mosquitto_conf(Path(tmp), 40001, internal_port=40002)
        assert conf_listener_ports(rendered) == [40001, 40002]
