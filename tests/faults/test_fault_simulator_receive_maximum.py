"""The feed simulator against a broker that announces Receive Maximum 2.

Before issue 8 the simulator kept up to ``window`` (1,000) QoS 1 messages in flight
whatever the broker announced; a strict broker disconnects such a client (0x93), and
paho resends the lot on every reconnect.
"""

from __future__ import annotations

from datetime import datetime

from simulators.feeds import CST
from simulators.publish import BrokerConfig, Publisher, RunConfig
from tests.faults.mqtt5_scripted_broker import ScriptedBroker
from wuwang.city import CitySize
from wuwang.mqtt import MqttTarget

COUNT = 60


def test_the_simulator_never_has_more_in_flight_than_the_broker_takes(strict_broker: ScriptedBroker) -> None:
    cfg = RunConfig(
        broker=BrokerConfig(MqttTarget("127.0.0.1", strict_broker.port, None, None, False), "5"),
        rate=5000.0,
        seed=3,
        start=datetime(2026, 5, 1, 8, 0, tzinfo=CST),
        count=COUNT,
        city_size=CitySize(venues=20, devices=100, cameras=40, patrol_units=5, teams=12),
        client_id_prefix="sim-strict",
        connect_timeout=5.0,
    )
    assert cfg.window == 1000  # the configured window is far above what this broker takes
    publisher = Publisher(cfg)
    assert publisher.run() == 0
    assert publisher.window == 2
    assert publisher.counters.published == COUNT and publisher.counters.acked == COUNT
    (session,) = strict_broker.sessions
    assert session.max_unacked <= 2 and strict_broker.kicks == []
    assert len(session.published) == COUNT


def test_the_drill_runner_publisher_never_has_more_in_flight_than_the_broker_takes(
    strict_broker: ScriptedBroker,
) -> None:
    """The drill runner's publisher leaves its window to paho (200 in flight), which
    ignores the broker's Receive Maximum: capped on the CONNACK now."""
    from simulators.exercise_run import _Publisher

    publisher = _Publisher(
        BrokerConfig(MqttTarget("127.0.0.1", strict_broker.port, None, None, False), "5"), "drill-strict"
    )
    publisher.connect(5.0)
    try:
        for i in range(30):
            publisher.publish("exercise/v1/EX-1/sensors/v1/x/reading", f"r{i}".encode())
        publisher.drain(10.0)
    finally:
        publisher.close()
    assert publisher.acked == 30
    (session,) = strict_broker.sessions
    assert session.max_unacked <= 2 and strict_broker.kicks == []
    assert [p for _, p in session.published] == [f"r{i}".encode() for i in range(30)]
