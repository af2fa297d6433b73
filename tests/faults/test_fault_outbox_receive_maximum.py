"""The command outbox relay against a broker that announces Receive Maximum 2.

Before issue 8 the relay handed the link up to ``COMMAND_OUTBOX_WINDOW`` (50) orders at
once and the link put up to 100 QoS 1 publishes in flight, whatever the broker said:
a strict broker disconnects such a client (0x93 Receive Maximum exceeded).
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import Future
from types import SimpleNamespace

import psycopg
from psycopg_pool import AsyncConnectionPool

from command.services.mqtt_side import OutboxRelay
from tests.faults.mqtt5_scripted_broker import ScriptedBroker
from wuwang.mqtt import Backoff, MqttTarget
from wuwang.mqttlink import MqttLink, Published
from wuwang.settings import Settings

ROWS = 12


class _WatchedLink(MqttLink):
    """Remembers how many publishes were already waiting whenever one more came."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.waiting_at_publish: list[int] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> Future[Published]:
        self.waiting_at_publish.append(self.pending)
        return super().publish(topic, payload, qos, retain)


def test_the_outbox_never_has_more_in_flight_than_the_broker_takes(
    strict_broker: ScriptedBroker, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(ROWS):
            conn.execute(
                "INSERT INTO mqtt_outbox (topic, payload) VALUES (%s, %s)",
                ("teams/v1/T-FIRE-01/dispatch", f"order-{i}".encode()),
            )
    link = _WatchedLink(
        MqttTarget("127.0.0.1", strict_broker.port, None, None, False),
        "command-1",
        backoff=Backoff(base=0.05, cap=0.5, rng=random.Random(1)),
        name="command",
    )
    link.start()
    assert link.wait_connected(10), link.last_error
    settings = Settings(database_url=database_url, command_outbox_window=50)

    async def relay_all() -> None:
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False)
        await pool.open()
        state = SimpleNamespace(settings=settings, pool=pool, mqtt=link)
        relay = OutboxRelay(poll_s=0.05)
        task = asyncio.create_task(relay._relay(state))  # type: ignore[arg-type]
        try:
            for _ in range(400):
                if relay.sent >= ROWS or task.done():
                    break
                await asyncio.sleep(0.05)
            assert relay.sent == ROWS, (relay.sent, relay.failed)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pool.close()

    try:
        asyncio.run(relay_all())
    finally:
        link.stop(2.0)
    (session,) = strict_broker.sessions
    assert session.max_unacked <= 2 and strict_broker.kicks == []
    assert [p for _, p in session.published] == [f"order-{i}".encode() for i in range(ROWS)]
    # The relay handed over a new order only while fewer than the broker's 2 were out.
    assert max(link.waiting_at_publish) < 2
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM mqtt_outbox WHERE sent_at IS NULL").fetchone()
    assert row is not None and row[0] == 0
