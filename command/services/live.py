"""Live fan-out of changes to WebSocket clients, across command processes.

A change is published to one Redis pub/sub channel after its transaction commits;
every command process runs one pump that reads the channel and offers each change to
its own clients' bounded queues. The pump never waits for a client: a client whose
queue is full is marked overflowed, its socket is closed by its own handler, and the
client resynchronises (new connection → snapshot → changes). So one slow wall display
never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson
import redis.asyncio as aioredis
from redis import Redis as SyncRedis

from command.domain.vocabulary import Role
from command.security import Principal

if TYPE_CHECKING:
    from command.state import CommandState

log = logging.getLogger(__name__)

CHANNEL = "wuwang:live"


def channel_of(redis: aioredis.Redis | SyncRedis) -> str:
    """The live channel of the Redis database in use. Pub/sub is server-wide (database
    numbers do not separate it), so the channel carries the database number: two
    consoles, or two test sessions, sharing one Redis server on different databases
    never hear each other's changes."""
    return f"{CHANNEL}:{redis.connection_pool.connection_kwargs.get('db', 0)}"

ChangeType = Literal[
    "incident", "alarm", "team", "stock", "order", "grid_event", "alert", "exercise", "inbox"
]


@dataclass(frozen=True)
class Change:
    """One thing that changed, as the console receives it."""

    type: ChangeType
    id: str
    data: dict[str, Any]
    version: int | None = None
    exercise_id: str | None = None
    team_id: str | None = None  # set when the change concerns one team (field users see these)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "type": self.type,
                "id": self.id,
                "version": self.version,
                "exercise_id": self.exercise_id,
                "team_id": self.team_id,
                "data": self.data,
            }
        )


def visible_to(who: Principal, envelope: dict[str, Any]) -> bool:
    """Who sees which change: planners exercises, plus the live roster (teams) that a
    drill works on top of; everyone else only live data; field users only what concerns
    their own team."""
    is_exercise = envelope.get("exercise_id") is not None
    if who.role == Role.PLANNER:
        return is_exercise or envelope.get("type") == "team"
    if is_exercise:
        return who.role == Role.ADMIN
    if who.role == Role.FIELD:
        return envelope.get("team_id") == who.team_id
    return True


async def publish(redis: aioredis.Redis, change: Change) -> None:
    """Publish after commit. Pub/sub is at-most-once: a client that misses a change
    notices by the object's version and resynchronises."""
    try:
        await redis.publish(channel_of(redis), change.encode())
    except Exception:  # the change is committed; losing its broadcast must not fail the request
        log.warning("could not publish live change %s %s", change.type, change.id, exc_info=True)


@dataclass(eq=False)
class ClientFeed:
    who: Principal
    queue: asyncio.Queue[bytes]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class LiveHub:
    """The per-process pump from Redis pub/sub to this process's WebSocket clients."""

    name = "live"

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._clients: set[ClientFeed] = set()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.delivered = 0
        self.dropped_clients = 0

    async def start(self, state: CommandState) -> None:
        state.parts["live"] = self
        self._task = asyncio.create_task(self._pump(state.redis), name="live-pump")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done() and self._subscribed.is_set()

    def register(self, who: Principal) -> ClientFeed:
        feed = ClientFeed(who, asyncio.Queue(self._queue_size))
        self._clients.add(feed)
        return feed

    def unregister(self, feed: ClientFeed) -> None:
        self._clients.discard(feed)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def offer(self, raw: bytes) -> None:
        envelope = orjson.loads(raw)
        for feed in list(self._clients):
            if feed.overflowed.is_set() or not visible_to(feed.who, envelope):
                continue
            try:
                feed.queue.put_nowait(raw)
                self.delivered += 1
            except asyncio.QueueFull:
                feed.overflowed.set()
                self.dropped_clients += 1

    async def _pump(self, redis: aioredis.Redis) -> None:
        delay = 0.2
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(channel_of(redis))
                    self._subscribed.set()
                    delay = 0.2
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            self.offer(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis restarted or unreachable: clients keep their sockets; they may
                # have missed changes, so tell them to resynchronise.
                self._subscribed.clear()
                log.warning("live pump lost Redis; retrying in %.1f s", delay, exc_info=True)
                for feed in list(self._clients):
                    feed.overflowed.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


SnapshotProvider = Callable[["CommandState", Principal], Awaitable[Any]]


def snapshot_providers(state: CommandState) -> dict[str, SnapshotProvider]:
    """Features register what a reconnecting client needs first (open incidents,
    teams, stock, ...) under a name; the /ws handler sends them all as one snapshot."""
    providers: dict[str, SnapshotProvider] = state.parts.setdefault("snapshots", {})
    return providers
