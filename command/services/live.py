"""Live fan-out of changes to WebSocket clients, across command processes.

A change is published to one Redis pub/sub channel after its transaction commits;
every command process runs one pump that reads the channel and offers each change to
its own clients' bounded queues. The pump never waits for a client: a client whose
queue is full is marked overflowed, its socket is closed by its own handler, and the
client resynchronises (new connection → snapshot → changes). So one slow wall display
never stalls the others.

The hub also ends connections that must not go on (each handler closes its own socket
with the code and reason the hub set): a token that expired or a session that was
revoked (the account disabled, changed or logged out) — checked every
``COMMAND_WS_RECHECK_S`` — with 4401; and every client while Redis is unreachable with
1013 (Try Again Later), because no change could reach them: the console backs off and
says the server is unavailable instead of showing a picture that silently stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis import Redis as SyncRedis

from command import users
from command.domain import policy
from command.domain.policy import Action
from command.security import Principal

if TYPE_CHECKING:
    from command.state import CommandState

log = logging.getLogger(__name__)

CHANNEL = "wuwang:live"
UNAVAILABLE_REASON = "server unavailable: live updates paused, retry later"


def channel_of(redis: aioredis.Redis | SyncRedis) -> str:
    """The live channel of the Redis database in use. Pub/sub is server-wide (database
    numbers do not separate it), so the channel carries the database number: two
    consoles, or two test sessions, sharing one Redis server on different databases
    never hear each other's changes."""
    return f"{CHANNEL}:{redis.connection_pool.connection_kwargs.get('db', 0)}"


ChangeType = Literal[
    "incident",
    "alarm",
    "team",
    "stock",
    "order",
    "grid_event",
    "alert",
    "exercise",
    "inbox",
    "risk_source",
    "shelter",
    "warning",
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
    if envelope.get("exercise_id") is not None:
        return policy.allowed(who.role, Action.EXERCISE_WATCH, drill=True)
    if not policy.sees(who.role, drill=False):
        return envelope.get("type") == "team"
    if policy.bound_to_own_team(who.role):
        return (
            envelope.get("team_id") == who.team_id
            or _on_incident(envelope, who.team_id)
            or _warns_team(envelope, who.team_id)
        )
    return True


def _warns_team(envelope: dict[str, Any], team_id: str | None) -> bool:
    """A warning change reaches the field page of every team it was sent to (drafts
    never: they target no one yet)."""
    if envelope.get("type") != "warning" or team_id is None:
        return False
    data = envelope.get("data")
    teams = data.get("target_teams") if isinstance(data, dict) else None
    return isinstance(teams, list) and team_id in teams


def _on_incident(envelope: dict[str, Any], team_id: str | None) -> bool:
    """An incident change reaches the field page of every team still assigned to it, so
    a crew sees its own incident's notes, level and plan as they change."""
    if envelope.get("type") != "incident" or team_id is None:
        return False
    data = envelope.get("data")
    teams = data.get("teams") if isinstance(data, dict) else None
    return any(
        isinstance(t, dict) and t.get("team_id") == team_id and not t.get("released_at") for t in teams or ()
    )


async def publish(redis: aioredis.Redis, change: Change) -> None:
    """Publish after commit. Pub/sub is at-most-once: a client that misses a change
    notices by the object's version and resynchronises."""
    try:
        await redis.publish(channel_of(redis), change.encode())
    except Exception:  # the change is committed; losing its broadcast must not fail the request
        log.warning("could not publish live change %s %s", change.type, change.id, exc_info=True)


#: Close codes of /ws (docs/console.md, docs/security.md).
CLOSE_UNAUTHORISED = 4401  # no, a bad, an expired or a revoked token: log in again
CLOSE_TOO_SLOW = 4408  # fell behind (queue full): reconnect for a fresh snapshot
CLOSE_SEND_TIMEOUT = 4409  # took no data for COMMAND_WS_SEND_TIMEOUT_S: dropped
CLOSE_UNAVAILABLE = 1013  # Try Again Later: Redis is unreachable, no live changes can flow

#: Why the hub dropped a client, as counted in /metrics.
DropReason = Literal["too_slow", "send_timeout", "expired", "revoked", "unavailable"]


@dataclass(eq=False)
class ClientFeed:
    who: Principal
    queue: asyncio.Queue[bytes]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set with ``close_code``/``close_reason`` when the hub ends this connection.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = CLOSE_TOO_SLOW
    close_reason: str = ""

    def end(self, code: int, reason: str) -> bool:
        """Ask the connection's handler to close with ``code``; the first reason wins."""
        if self.ended.is_set():
            return False
        self.close_code, self.close_reason = code, reason
        self.ended.set()
        return True


class LiveHub:
    """The per-process pump from Redis pub/sub to this process's WebSocket clients."""

    name = "live"

    def __init__(self, queue_size: int, *, recheck_s: float = 15.0) -> None:
        self._queue_size = queue_size
        self._recheck_s = recheck_s
        self._clients: set[ClientFeed] = set()
        self._task: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.delivered = 0
        self.dropped_clients = 0
        self._dropped: Counter | None = None

    async def start(self, state: CommandState) -> None:
        state.live = self
        self._recheck_s = state.settings.command.ws_recheck_s
        self._dropped = Counter(
            "wuwang_ws_dropped_total",
            "live (/ws) clients closed by the server, by reason",
            ["reason"],
            registry=state.metrics,
        )
        Gauge(
            "wuwang_ws_clients", "live (/ws) clients connected to this process", registry=state.metrics
        ).set_function(lambda: len(self._clients))
        self._task = asyncio.create_task(self._pump(state.redis), name="live-pump")
        self._checker = asyncio.create_task(self._recheck(state), name="live-recheck")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def stop(self) -> None:
        for task in (self._task, self._checker):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @property
    def available(self) -> bool:
        """Whether changes can reach clients (subscribed to the live channel)."""
        return self._subscribed.is_set()

    def drop(self, feed: ClientFeed, code: int, reason: str, why: DropReason) -> None:
        if feed.end(code, reason):
            self.count_drop(why)

    def count_drop(self, why: DropReason) -> None:
        self.dropped_clients += 1
        if self._dropped is not None:
            self._dropped.labels(why).inc()

    def end_session(self, session_id: str, reason: str) -> None:
        """Close this process's sockets of a session now (a logout here); other
        processes find out at their next check."""
        for feed in list(self._clients):
            if feed.who.session_id == session_id:
                self.drop(feed, CLOSE_UNAUTHORISED, reason, "revoked")

    async def check_sessions(self, state: CommandState, now: datetime | None = None) -> None:
        """End connections whose token ran out or whose session no longer stands."""
        at = now or datetime.now(UTC)
        feeds = list(self._clients)
        for feed in feeds:
            if feed.who.expires_at is not None and at >= feed.who.expires_at:
                self.drop(feed, CLOSE_UNAUTHORISED, "token expired", "expired")
        ids = sorted({f.who.session_id for f in feeds if f.who.session_id and not f.ended.is_set()})
        if not ids:
            return
        async with state.pool.connection() as conn:
            rows = await users.sessions(conn, ids)
        for feed in feeds:
            if feed.ended.is_set():
                continue
            reason = users.standing_of(feed.who, rows.get(feed.who.session_id or ""), at)
            if reason is not None:
                self.drop(feed, CLOSE_UNAUTHORISED, reason, "revoked")

    async def _recheck(self, state: CommandState) -> None:
        while True:
            await asyncio.sleep(self._recheck_s)
            try:
                await self.check_sessions(state)
            except Exception:  # PostgreSQL away: the next round checks again
                log.warning("could not re-check live sessions", exc_info=True)

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
                self.drop(feed, CLOSE_TOO_SLOW, "too slow: reconnect to resynchronise", "too_slow")

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
                # Redis restarted or unreachable: no change can reach anyone. Say so
                # (1013): the console backs off and shows that the server is
                # unavailable; new connections get the same answer until the pump is
                # subscribed again.
                self._subscribed.clear()
                log.warning("live pump lost Redis; retrying in %.1f s", delay, exc_info=True)
                for feed in list(self._clients):
                    self.drop(feed, CLOSE_UNAVAILABLE, UNAVAILABLE_REASON, "unavailable")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


SnapshotProvider = Callable[["CommandState", Principal], Awaitable[Any]]


def snapshot_providers(state: CommandState) -> dict[str, SnapshotProvider]:
    """Features register what a reconnecting client needs first (open incidents,
    teams, stock, ...) under a name; the /ws handler sends them all as one snapshot."""
    return state.snapshots
