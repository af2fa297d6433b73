"""The shared MQTT link against a broker that kicks it and announces small limits.

Reproduces issue 8's link items with a scripted MQTT 5 broker (mqtt5_scripted_broker):
a broker DISCONNECT (0x8E session taken over, 0x8B server shutting down) used to make
the link reconnect at once, uncounted, logged at INFO, with the back-off reset by
every CONNACK; and the link ignored the CONNACK's Maximum Packet Size (one ~340-byte
SUBSCRIBE of the ingest's eight ``$share`` filters) and Receive Maximum (100 QoS 1
publishes in flight whatever the broker said).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.mqtt5_scripted_broker import (
    PACKET_TOO_LARGE,
    SERVER_SHUTTING_DOWN,
    SESSION_TAKEN_OVER,
    ScriptedBroker,
    Session,
)
from wuwang.contract import INGEST_SUBSCRIPTIONS
from wuwang.mqtt import Backoff, MqttTarget
from wuwang.mqttlink import (
    Delivery,
    LinkObserver,
    MqttLink,
    PublishRefused,
    subscribe_batches,
    subscribe_packet_size,
)

BASE, CAP = 0.01, 0.16


class _Ceiling(random.Random):
    """Full jitter picks uniformly in [0, ceiling]; this one always picks the ceiling,
    so that the delays show the exponent the back-off is at."""

    def uniform(self, a: float, b: float) -> float:
        return b


class _Heard(LinkObserver):
    def __init__(self) -> None:
        self.lost = 0
        self.taken_over = 0

    def connection_lost(self) -> None:
        self.lost += 1

    def session_taken_over(self) -> None:
        self.taken_over += 1


def _wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.fixture
def start_broker() -> Iterator[Callable[..., ScriptedBroker]]:
    brokers: list[ScriptedBroker] = []

    def start(**kwargs: object) -> ScriptedBroker:
        broker = ScriptedBroker(**kwargs).start()  # type: ignore[arg-type]
        brokers.append(broker)
        return broker

    yield start
    for broker in brokers:
        broker.stop()


@pytest.fixture
def make_link() -> Iterator[Callable[..., MqttLink]]:
    links: list[MqttLink] = []

    def make(broker: ScriptedBroker, client_id: str = "cmd-1", **kwargs: object) -> MqttLink:
        kwargs.setdefault("backoff", Backoff(base=BASE, cap=CAP, rng=_Ceiling()))
        link = MqttLink(
            MqttTarget("127.0.0.1", broker.port, None, None, False),
            client_id,
            name=client_id,
            **kwargs,  # type: ignore[arg-type]
        )
        links.append(link)
        link.start()
        return link

    yield make
    for link in links:
        link.stop(2.0)


def _kick_first(n: int, reason: int) -> Callable[[Session], int | None]:
    return lambda session: reason if session.number <= n else None


def test_session_taken_over_again_and_again_backs_off_counts_and_alarms(
    start_broker: Callable[..., ScriptedBroker],
    make_link: Callable[..., MqttLink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Six takeovers in a row: six losses, each followed by a longer back-off (the CONNACK
    before each kick does not reset it), an ERROR each, the observer's alarm each."""
    caplog.set_level(logging.INFO, logger="wuwang.mqttlink")
    kicks = 6
    broker = start_broker(after_connack=_kick_first(kicks, SESSION_TAKEN_OVER))
    heard = _Heard()
    link = make_link(broker, observer=heard, subscriptions=[("teams/v1/+/ack", 1)])
    assert link.wait_connected(10), link.last_error
    assert len(broker.sessions) == kicks + 1  # one connect per kick, then one that stays
    assert link.connection_losses == kicks and heard.lost == kicks
    assert link.takeovers == kicks and heard.taken_over == kicks
    assert link.last_disconnect_reason == SESSION_TAKEN_OVER
    # Exponential, capped, never reset by the CONNACKs in between.
    assert list(link.delays) == [min(CAP, BASE * 2**k) for k in range(kicks)]
    assert link.taken_over, "a health flag: someone else uses our client id"
    from command.services.mqtt_side import LinkWorker

    worker = LinkWorker()
    worker.link = link
    assert not worker.healthy(), "the command service's /healthz shows it (mqtt: down)"
    taken = [r for r in caplog.records if "session taken over" in r.getMessage()]
    assert len(taken) == kicks and all(r.levelno == logging.ERROR for r in taken)
    quiet = [r for r in caplog.records if "DISCONNECT" in r.getMessage() and r.levelno < logging.WARNING]
    assert quiet == [], "a broker's DISCONNECT is never logged below WARNING"


def test_a_kick_forever_is_retried_only_after_growing_delays(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    """Kicked on every connect: over a fixed number of kicks, each connect is preceded
    by one back-off delay, and the delays reach the cap (counted in events, not time)."""
    broker = start_broker(after_connack=lambda s: SESSION_TAKEN_OVER)
    link = make_link(broker)
    assert _wait_until(lambda: len(broker.kicks) >= 8)
    link.stop(2.0)
    delays = list(link.delays)
    assert len(broker.sessions) <= len(delays) + 1
    assert delays[:6] == [min(CAP, BASE * 2**k) for k in range(6)]
    assert link.connection_losses >= 7


def test_server_shutting_down_is_a_loss_logged_at_warning_and_the_backoff_resets_only_when_stable(
    start_broker: Callable[..., ScriptedBroker],
    make_link: Callable[..., MqttLink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wuwang.mqttlink")
    broker = start_broker(after_connack=_kick_first(3, SERVER_SHUTTING_DOWN))
    heard = _Heard()
    link = make_link(broker, observer=heard, stable_after_s=3600.0)
    # Three kicks, then a session that stays (seen between a CONNACK and its kick, the
    # first session can look open and subscribed for a moment: wait for the back-offs too)
    assert _wait_until(
        lambda: len(link.delays) >= 3 and len(broker.open_sessions()) == 1 and link.subscribed.is_set()
    )
    assert list(link.delays) == [BASE, 2 * BASE, 4 * BASE]
    assert heard.lost == 3 and heard.taken_over == 0 and not link.taken_over
    lost = [r for r in caplog.records if "0x8B" in r.getMessage()]
    assert lost and all(r.levelno == logging.WARNING for r in lost)
    # Connected, but not for long: the next kick still backs off further.
    broker.kick(SERVER_SHUTTING_DOWN)
    assert _wait_until(lambda: len(link.delays) == 4)
    assert link.delays[-1] == 8 * BASE
    assert link.wait_connected(10)


def test_a_connection_that_stays_up_earns_a_fresh_backoff(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    broker = start_broker(after_connack=_kick_first(3, SESSION_TAKEN_OVER))
    link = make_link(broker, stable_after_s=0.2)
    assert _wait_until(lambda: len(broker.open_sessions()) == 1 and link.subscribed.is_set())
    assert _wait_until(lambda: not link.taken_over), "stable again: the flag clears"
    broker.kick(SERVER_SHUTTING_DOWN)
    # The fourth delay is the one this loss chose (a later failed attempt may add more:
    # waiting for exactly four once missed it on a loaded machine).
    assert _wait_until(lambda: len(link.delays) >= 4, timeout=30)
    assert link.delays[3] == BASE


def _ingest_filters() -> list[tuple[str, int]]:
    return [(f"$share/ingest/{t}", 1) for t in INGEST_SUBSCRIPTIONS]


def test_subscriptions_are_split_under_the_brokers_maximum_packet_size(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    filters = _ingest_filters()
    assert subscribe_packet_size([f for f, _ in filters]) > 300  # the one SUBSCRIBE of today
    broker = start_broker(maximum_packet_size=128)
    link = make_link(broker, "ingest-1", subscriptions=filters)
    assert link.wait_connected(10), link.last_error
    assert broker.oversized == [] and PACKET_TOO_LARGE not in broker.kicks
    sizes = [size for size, _ in broker.subscribe_packets]
    assert len(sizes) > 1 and all(size <= 128 for size in sizes)
    assert [f for _, fs in broker.subscribe_packets for f in fs] == [f for f, _ in filters]
    assert link.connects == 1
    # Every subscription works: a message on each feed's topic arrives.
    topics = [t.replace("+", "X1").replace("#", "x") for t in INGEST_SUBSCRIPTIONS]
    for topic in topics:
        assert broker.deliver(topic, b"{}") == 1
    got: list[Delivery] = []
    while len(got) < len(topics):
        delivery = link.get(timeout=5)
        assert delivery is not None, f"only {[d.topic for d in got]} arrived"
        got.append(delivery)
    assert sorted(d.topic for d in got) == sorted(topics)


def test_a_filter_no_packet_can_hold_is_refused_without_a_reconnect_loop(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    broker = start_broker(maximum_packet_size=64)
    link = make_link(broker, subscriptions=[("teams/v1/+/ack", 1), ("x" * 80, 1)])
    assert _wait_until(lambda: "Maximum Packet Size" in (link.last_error or ""))
    assert _wait_until(lambda: [fs for _, fs in broker.subscribe_packets] == [["teams/v1/+/ack"]])
    assert not link.subscribed.is_set() and link.connects == 1 and broker.oversized == []


def test_split_is_pure_and_keeps_order() -> None:
    subs = [(f"topic/{i:02d}/+", 1) for i in range(10)]
    batches, too_large = subscribe_batches(subs, 40)
    assert too_large == [] and [s for b in batches for s in b] == subs
    assert all(subscribe_packet_size([f for f, _ in b]) <= 40 for b in batches)
    assert subscribe_batches(subs, None) == ([subs], [])


def test_a_publish_over_the_brokers_packet_size_is_refused_not_sent(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    broker = start_broker(maximum_packet_size=128)
    link = make_link(broker)
    assert link.wait_connected(10)
    with pytest.raises(PublishRefused, match="Maximum Packet Size"):
        link.publish("teams/v1/T-1/dispatch", b"x" * 200).result(timeout=5)
    assert link.publish("teams/v1/T-1/dispatch", b"small").result(timeout=5).reason_code == 0
    assert broker.oversized == [] and link.connects == 1


def test_receive_maximum_two_never_sees_more_than_two_unacknowledged(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    broker = start_broker(receive_maximum=2)
    link = make_link(broker)
    assert link.wait_connected(10)
    futures = [link.publish("teams/v1/T-1/dispatch", f"m{i}".encode()) for i in range(40)]
    for future in futures:
        future.result(timeout=10)
    assert link.send_window == 2
    (session,) = broker.sessions
    assert session.max_unacked <= 2  # (Nagle may keep it lower; never past it)
    assert [p for _, p in session.published] == [f"m{i}".encode() for i in range(40)]
    assert link.connects == 1 and broker.kicks == []


def test_the_ingest_counts_takeovers_and_broker_disconnects_and_subscribes_under_the_limit(
    start_broker: Callable[..., ScriptedBroker],
) -> None:
    """The ingest's own link (feed_link): its Prometheus counters hear of each kick,
    and its eight ``$share`` filters reach a broker that takes 128-byte packets."""
    from ingest.metrics import IngestMetrics
    from ingest.subscriber import feed_link
    from wuwang.settings import Settings

    broker = start_broker(after_connack=_kick_first(3, SESSION_TAKEN_OVER), maximum_packet_size=128)
    settings = Settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", ingest_shared_group="ingest")
    metrics = IngestMetrics()
    link = feed_link(settings, metrics, backoff=Backoff(base=BASE, cap=CAP, rng=_Ceiling()))
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        value = metrics.registry.get_sample_value
        assert value("ingest_mqtt_reconnects_total") == 3
        assert value("ingest_mqtt_session_taken_over_total") == 3
        assert value("ingest_mqtt_broker_disconnects_total", {"reason": "0x8E"}) == 3
        assert value("ingest_mqtt_connected") == 1
        assert broker.oversized == [] and len(broker.subscribe_packets) > 1
        assert {f for _, fs in broker.subscribe_packets for f in fs} == {
            f"$share/ingest/{t}" for t in INGEST_SUBSCRIPTIONS
        }
    finally:
        link.stop(2.0)


def test_the_command_service_counts_takeovers_and_broker_disconnects(
    start_broker: Callable[..., ScriptedBroker],
) -> None:
    """The command service's link is the same link: its ``/metrics`` hear of each kick too
    (before, only the ingest counted them; the command service only logged)."""
    from prometheus_client import CollectorRegistry

    from command.services.mqtt_side import command_link
    from wuwang.settings import Settings

    broker = start_broker(
        after_connack=lambda s: {1: SESSION_TAKEN_OVER, 2: SESSION_TAKEN_OVER, 3: SERVER_SHUTTING_DOWN}.get(
            s.number
        ),
        maximum_packet_size=128,
    )
    settings = Settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", command_shared_group="command")
    registry = CollectorRegistry()
    link = command_link(settings, registry, backoff=Backoff(base=BASE, cap=CAP, rng=_Ceiling()))
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        value = registry.get_sample_value
        assert value("command_mqtt_reconnects_total") == 3
        assert value("command_mqtt_session_taken_over_total") == 2
        assert value("command_mqtt_broker_disconnects_total", {"reason": "0x8E"}) == 2
        assert value("command_mqtt_broker_disconnects_total", {"reason": "0x8B"}) == 1
        assert list(link.delays) == [BASE, 2 * BASE, 4 * BASE]
        assert broker.oversized == [] and link.subscribed.wait(10)
    finally:
        link.stop(2.0)


def test_a_smaller_receive_maximum_after_a_reconnect_holds_back_what_paho_would_resend(
    start_broker: Callable[..., ScriptedBroker], make_link: Callable[..., MqttLink]
) -> None:
    """Ten publishes in flight under Receive Maximum 10, never acknowledged; the broker
    restarts announcing 2. paho resends everything it holds on reconnect whatever its
    own cap: the link must trim that to the new window."""
    broker = start_broker(receive_maximum=10, ack_hold_s=3600.0)
    link = make_link(broker)
    assert link.wait_connected(10)
    futures = [link.publish("teams/v1/T-1/dispatch", f"m{i}".encode()) for i in range(10)]
    assert _wait_until(lambda: len(broker.sessions[0].published) == 10)
    assert broker.sessions[0].max_unacked == 10 and link.inflight == 10
    broker.receive_maximum, broker.ack_hold_s = 2, 0.02
    broker.kick(SERVER_SHUTTING_DOWN)
    for future in futures:
        future.result(timeout=10)
    assert link.send_window == 2
    assert len(broker.sessions) == 2 and broker.kicks == [SERVER_SHUTTING_DOWN]
    again = broker.sessions[1]
    assert again.max_unacked <= 2
    assert sorted(p for _, p in again.published) == sorted(f"m{i}".encode() for i in range(10))
