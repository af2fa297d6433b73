"""The command service's side of MQTT: four workers around one :class:`MqttLink`.

* :class:`LinkWorker` ("mqtt") owns the link (``state.mqtt``): client id
  ``COMMAND_MQTT_CLIENT_ID``, persistent session, subscriptions:

  ========================================  =====  ==========================================
  ``$share/command/teams/v1/+/ack``         QoS 1  each ack handled once among the command
  ``$share/command/teams/v1/+/status``      QoS 1  processes; kept by the broker while one
                                                   restarts; PUBACK only after the commit
  ``teams/v1/+/position``                   QoS 0  every process sees every position; no
                                                   backlog of stale fixes after an outage
  ``$share/command/exercise/v1/+/teams/``   QoS 1  team statuses inside a drill →
  ``v1/+/status``                                  ``exercise_team_state`` (never ``team``);
                                                   ``on_scene`` with an ``incident_id`` of
                                                   that drill records the arrival
  ``$share/command/exercise/v1/+/teams/``   QoS 1  virtual crews' acks of a drill's orders
  ``v1/+/ack``                                     (the live ack path, same exercise only)
  ``exercise/v1/+/teams/v1/+/position``     QoS 0  a drill's team positions → a ``team``
                                                   change with ``exercise_id`` (planners'
                                                   map); never Redis GEO or the team row
  ``$share/command/teams/v2/+/shelter``     QoS 1  a team's shelter count (v2, §12) →
                                                   ``risk.report_occupancy``, once per id
  ========================================  =====  ==========================================

  Positions are not shared because Redis is shared anyway (the newer-only Lua write makes
  N writers harmless and only the first publishes the change), a lost fix is replaced by
  the next one within a minute, and a QoS 0 subscription keeps the broker from queueing
  an outage's worth of stale positions. (Measured with Mosquitto 2.0.11: a shared
  subscription also hands messages to *offline* members with a persistent session — a
  decommissioned command process keeps taking its share of acks until its session
  expires. Give each process a stable client id, and end the session of one removed for
  good: ``COMMAND_MQTT_FORGET_SESSION_ON_STOP=1`` on its last run.)

* :class:`TeamFeed` ("team-feed") reads the link's inbox on the event loop: acks →
  ``dispatch.apply_ack``, statuses → ``rosters.apply_status_report``, positions →
  ``rosters.PositionWriter`` (and a team that moved into an issued warning's area gets
  it, once: ``warnings.Retargeting``), shelter counts → ``risk.report_occupancy`` (a
  count that cannot be applied is a dead letter with its reason); acknowledges each
  message to the broker after its commit.
  Unreadable messages are logged, counted and acknowledged (they never block the
  feed); a database or Redis outage is waited out with the message held.

* :class:`OutboxRelay` ("outbox") publishes ``mqtt_outbox`` rows in id order at QoS 1
  and sets ``sent_at`` only after the PUBACK, at most ``COMMAND_OUTBOX_WINDOW`` rows in
  flight and never more than the broker's Receive Maximum (``MqttLink.send_window``);
  while the broker is down it waits with a jittered back-off and the rows stay unsent,
  so an order goes out once the broker is back. One relay among the command processes
  is the leader (a PostgreSQL advisory lock on a connection of its own, which also
  LISTENs for new rows and for the dispatch trigger's notices); the others stand by.

* :class:`AckWatchdog` ("ack-watchdog") raises an alert, once, for every order sent
  more than ``COMMAND_ACK_TIMEOUT_S`` ago and not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import redis.exceptions
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from command.domain.incidents import DomainError, Event, Incident, actor_of, decide_team_arrived
from command.domain.risk import RiskError
from command.domain.vocabulary import Role
from command.security import Principal
from command.services import dead_letters, dispatch, exercises, rosters, team_record
from command.services import incident_store as store
from command.services import risk as shelters
from command.services import warnings as warnings_service
from command.services.live import Change, publish
from command.services.tasks import Periodic, stop_task
from wuwang.contract import (
    CONTRACT_VERSION,
    SHELTER_SUBSCRIPTION,
    ContractError,
    TeamPosition,
    TeamStatus,
    TeamStatusUpdate,
    TsWindow,
    parse_message,
    parse_shelter_report,
    shelter_team_of,
    team_topic,
)
from wuwang.exercises import EXERCISE_PREFIX
from wuwang.mqtt import Backoff, MqttTarget
from wuwang.mqttlink import Delivery, LinkObserver, MqttLink, Published
from wuwang.scope import Scope
from wuwang.settings import Settings

if TYPE_CHECKING:
    from command.state import CommandState, Worker

log = logging.getLogger(__name__)

#: The outbox relay's advisory lock ("OUTBOX").
_RELAY_LOCK = 0x4F55_5442_4F58
#: Trouble that is waited out (the message is kept and retried), not dropped.
_TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


def subscriptions(group: str | None) -> list[tuple[str, int]]:
    def shared(topic: str) -> str:
        return f"$share/{group}/{topic}" if group else topic

    return [
        (shared(team_topic("+", "ack")), 1),
        (shared(team_topic("+", "status")), 1),
        (team_topic("+", "position"), 0),
        # team statuses inside a running exercise: exercise_team_state only, never the live row
        (shared(f"{EXERCISE_PREFIX}/+/{team_topic('+', 'status')}"), 1),
        # the drill runner's virtual crews answering a drill's orders
        (shared(f"{EXERCISE_PREFIX}/+/{team_topic('+', 'ack')}"), 1),
        (f"{EXERCISE_PREFIX}/+/{team_topic('+', 'position')}", 0),
        # v2 beside v1: a team's count of the people in a shelter (docs/mqtt-contract.md §12)
        (shared(SHELTER_SUBSCRIPTION), 1),
    ]


def link_of(state: CommandState) -> MqttLink | None:
    return state.mqtt


class LinkCounters(LinkObserver):
    """The link's losses as the command service's Prometheus metrics (``/metrics``): what
    an alert rule sees of a broker that keeps disconnecting us, or of another process
    taking our session (the link logs each at WARNING, a takeover at ERROR)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._losses = Counter(
            "command_mqtt_reconnects", "Broker connections lost (then retried)", registry=registry
        )
        self._disconnects = Counter(
            "command_mqtt_broker_disconnects",
            "DISCONNECTs the broker sent us, by reason code (e.g. 0x8E session taken over, 0x8B server"
            " shutting down)",
            ["reason"],
            registry=registry,
        )
        self._taken_over = Counter(
            "command_mqtt_session_taken_over",
            "Times another client connected with COMMAND_MQTT_CLIENT_ID and took the session (0x8E)",
            registry=registry,
        )

    def connection_lost(self) -> None:
        self._losses.inc()

    def broker_disconnected(self, reason_code: int) -> None:
        self._disconnects.labels(reason=f"0x{reason_code:02X}").inc()

    def session_taken_over(self) -> None:
        self._taken_over.inc()


def command_link(
    settings: Settings, registry: CollectorRegistry, *, backoff: Backoff | None = None
) -> MqttLink:
    """The command service's link: orders out, acks, statuses, positions and shelter counts
    in, under its persistent session. Not started."""
    if not settings.shared.mqtt_url:
        raise ValueError("MQTT_URL is not set")
    return MqttLink(
        MqttTarget.from_url(settings.shared.mqtt_url),
        settings.command.mqtt_client_id,
        protocol=settings.shared.mqtt_protocol,
        subscriptions=subscriptions(settings.command.shared_group),
        persistent=True,
        session_expiry_s=settings.command.mqtt_session_expiry_s,
        keepalive=settings.shared.mqtt_keepalive,
        backoff=backoff,
        name="command",
        observer=LinkCounters(registry),
    )


class LinkWorker:
    """Owns the MQTT link for the service's lifetime."""

    name = "mqtt"

    def __init__(self, *, connect_wait_s: float = 5.0) -> None:
        self.link: MqttLink | None = None
        self._connect_wait_s = connect_wait_s
        self._forget = False

    async def start(self, state: CommandState) -> None:
        s = state.settings
        if not s.shared.mqtt_url:
            log.warning("MQTT_URL is not set: no dispatch orders go out and no acks come in")
            return
        self._forget = s.command.mqtt_forget_session_on_stop
        self.link = command_link(s, state.metrics)
        self.link.attach()
        self.link.start()
        state.mqtt = self.link
        # Up to a few seconds for the first connection, so /healthz is right from the
        # start; a broker that is down does not stop the service from starting.
        if not await asyncio.to_thread(self.link.wait_connected, self._connect_wait_s):
            log.warning("MQTT broker not reachable yet (%s); orders wait in the outbox", self.link.last_error)

    async def stop(self) -> None:
        if self.link is not None:
            await asyncio.to_thread(self.link.stop, 5.0, forget_session=self._forget)

    def healthy(self) -> bool:
        # A session taken over (0x8E) means another process uses our client id: /healthz
        # says so until a connection has stayed up again.
        return self.link is None or (self.link.alive and not self.link.taken_over)


def _team_of(topic: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "teams" and parts[1] == CONTRACT_VERSION:
        return parts[2], parts[3]
    return None


def _exercise_team_of(topic: str) -> tuple[str, str, str] | None:
    """``exercise/v1/<exercise>/teams/v1/<team>/<leaf>`` → (exercise, team, leaf)."""
    scope = Scope.of_topic(topic)
    if scope.exercise_id is None:
        return None
    where = _team_of(scope.live_topic(topic))
    return (scope.exercise_id, *where) if where is not None else None


def _reason(exc: ContractError | ValidationError) -> str:
    """Why a team's message could not be read, in the dead letter's words."""
    if isinstance(exc, ContractError):
        return exc.reason
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _door(state: CommandState) -> TsWindow:
    """The ingest's time window: a status or position it dead-letters (a clock far off) is
    not applied to the team either (the dead letter is the ingest's: it reads them too)."""
    s = state.settings
    return TsWindow.of(s.shared.retention_days, s.ingest.clock_skew_s)


async def _dead_letter(state: CommandState, delivery: Delivery, reason: str) -> None:
    await dead_letters.record(state, delivery.topic, delivery.payload, delivery.received_at, reason)


def _motion(p: TeamPosition) -> dict[str, float | int]:
    """The optional parts of a position report that were sent."""
    return {k: v for k, v in (("speed", p.speed), ("heading", p.heading), ("seq", p.seq)) if v is not None}


class TeamFeed:
    """Acks, statuses and positions from the field, handled on the event loop."""

    name = "team-feed"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._positions: rosters.PositionWriter | None = None
        self._retarget = warnings_service.Retargeting()
        self._known: set[str] = set()
        self._known_at = 0.0
        self.handled = 0
        self.rejected = 0
        self.ignored = 0

    async def start(self, state: CommandState) -> None:
        link = link_of(state)
        if link is None:
            return
        self._positions = rosters.PositionWriter(state.settings.command.position_db_interval_s)
        with contextlib.suppress(Exception):  # Redis down: rebuilt on the next start
            await rosters.rebuild_geo(state)
        self._task = asyncio.create_task(self._run(state, link), name="team-feed")

    async def stop(self) -> None:
        await stop_task(self._task)

    def healthy(self) -> bool:
        return self._task is None or not self._task.done()

    async def _run(self, state: CommandState, link: MqttLink) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            delivery = await link.receive()
            while True:
                try:
                    await self.handle(state, delivery)
                    backoff.reset()
                    break
                except asyncio.CancelledError:
                    raise
                except _TRANSIENT as exc:
                    delay = backoff.next_delay()
                    log.warning(
                        "team feed: %s on %s; retrying in %.1f s", type(exc).__name__, delivery.topic, delay
                    )
                    await asyncio.sleep(delay)
                except Exception:
                    self.rejected += 1
                    log.exception("team feed: cannot handle message on %s; dropped", delivery.topic)
                    break
            link.ack(delivery)

    async def _known_team(self, state: CommandState, team_id: str) -> bool:
        """Teams of the roster (cached; refreshed on a miss at most every second), so that
        positions of unknown ids never reach the GEO set."""
        loop = asyncio.get_running_loop()
        if team_id not in self._known and loop.time() - self._known_at > 1.0:
            async with state.pool.connection() as conn:
                cur = await conn.execute("SELECT id FROM team")
                self._known = {r[0] for r in await cur.fetchall()}
            self._known_at = loop.time()
        return team_id in self._known

    async def handle(self, state: CommandState, delivery: Delivery) -> None:
        if delivery.topic.startswith(f"{EXERCISE_PREFIX}/"):
            return await self._exercise_message(state, delivery)
        if shelter_team_of(delivery.topic) is not None:
            return await self._shelter_count(state, delivery)
        where = _team_of(delivery.topic)
        if where is None:
            self.ignored += 1
            return
        team_id, leaf = where
        try:
            if leaf == "ack":
                ack = dispatch.OrderAck.model_validate_json(delivery.payload)
                outcome = await dispatch.apply_ack(state, team_id, ack, delivery.received_at)
                log.info("ack from %s for %s: %s", team_id, ack.order_id, outcome.why)
            elif leaf in ("status", "position"):
                msg = parse_message(delivery.topic, delivery.payload, delivery.received_at, _door(state))
                if not await self._known_team(state, team_id):
                    self.ignored += 1
                    return
                # A device clock ahead of ours must not pin the team in the future.
                at = min(msg.ts, delivery.received_at)
                if isinstance(msg.payload, TeamStatusUpdate):
                    p = msg.payload
                    result = await rosters.apply_status_report(
                        state, team_id, p.status, p.seq, at, p.incident_id, p.id
                    )
                    if not result.applied:
                        log.info("status %s from %s ignored: %s", p.id, team_id, result.why)
                elif isinstance(msg.payload, TeamPosition) and self._positions is not None:
                    p2 = msg.payload
                    if await self._positions.apply(state, team_id, p2.lat, p2.lon, at, _motion(p2)):
                        # moved into a warning's area after it was issued: it gets it now, once
                        await self._retarget.team_moved(state, team_id, p2.lat, p2.lon, at)
            else:
                self.ignored += 1
                return
        except (ContractError, ValidationError) as exc:
            self.rejected += 1
            reason = _reason(exc)
            log.warning("unreadable %s from %s (%s): %r", leaf, team_id, reason, delivery.payload[:200])
            if leaf == "ack":  # statuses and positions are the ingest's to dead-letter
                await _dead_letter(state, delivery, reason)
            return
        self.handled += 1

    async def _shelter_count(self, state: CommandState, delivery: Delivery) -> None:
        """``teams/v2/<team>/shelter``: a team's count of the people in a shelter, applied
        with the registry's rules once per (team, id); what cannot be applied is a dead
        letter with its reason (docs/mqtt-contract.md §12)."""
        reason: str | None = None
        try:
            msg = parse_shelter_report(delivery.topic, delivery.payload, delivery.received_at)
            if not await self._known_team(state, msg.team_id):
                reason = f"unknown team {msg.team_id}"
            else:
                r = msg.report
                _body, applied = await shelters.report_occupancy(
                    state,
                    msg.team_id,
                    r.shelter_id,
                    r.occupancy,
                    status=r.status,
                    msg_id=r.id,
                    channel="mqtt",
                    reported_at=msg.ts,
                )
                if not applied:
                    log.info("shelter count %s from %s: a repeat, applied before", r.id, msg.team_id)
        except ContractError as exc:
            reason = exc.reason
        except (shelters.NotFound, RiskError) as exc:
            reason = str(exc)
        if reason is not None:
            self.rejected += 1
            log.warning("shelter count on %s refused: %s", delivery.topic, reason)
            await dead_letters.record(state, delivery.topic, delivery.payload, delivery.received_at, reason)
            return
        self.handled += 1

    async def _exercise_message(self, state: CommandState, delivery: Delivery) -> None:
        """``exercise/v1/<id>/teams/v1/<team>/status|ack|position``: a team inside that
        drill (in practice the drill runner's virtual crew). Never the live team row."""
        where = _exercise_team_of(delivery.topic)
        if where is None:
            self.ignored += 1
            return
        exercise_id, team_id, leaf = where
        try:
            if leaf == "ack":
                ack = dispatch.OrderAck.model_validate_json(delivery.payload)
                outcome = await dispatch.apply_ack(
                    state, team_id, ack, delivery.received_at, scope=Scope.drill(exercise_id)
                )
                log.info(
                    "exercise %s: ack from %s for %s: %s", exercise_id, team_id, ack.order_id, outcome.why
                )
                self.handled += 1
                return
            msg = parse_message(delivery.topic, delivery.payload, delivery.received_at, _door(state))
        except (ContractError, ValidationError) as exc:
            self.rejected += 1
            reason = _reason(exc)
            log.warning("unreadable exercise %s on %s (%s)", leaf, delivery.topic, reason)
            if leaf == "ack":
                await _dead_letter(state, delivery, reason)
            return
        at = min(msg.ts, delivery.received_at)
        if isinstance(msg.payload, TeamStatusUpdate):
            await self._exercise_status(state, exercise_id, team_id, msg.payload, at)
        elif isinstance(msg.payload, TeamPosition) and await self._known_team(state, team_id):
            await _publish_exercise_position(state, exercise_id, team_id, msg.payload, at)
        else:
            self.ignored += 1
            return
        self.handled += 1

    async def _exercise_status(
        self, state: CommandState, exercise_id: str, team_id: str, p: TeamStatusUpdate, at: datetime
    ) -> None:
        """The team's status in that drill; ``on_scene`` with an incident of the same drill
        is also its arrival there (as ``POST /incidents/{id}/arrived`` by the team)."""
        result = await exercises.apply_team_status(state, exercise_id, team_id, p.status, at, p.id)
        if not result.applied:
            log.info("exercise status %s of %s ignored: %s", p.id, team_id, result.why)
            if result.why != "stale":  # unknown or purged exercise, unknown team
                return
        else:
            await publish(
                state.redis,
                Change(
                    "team",
                    team_id,
                    {
                        "id": team_id,
                        "kind": "status",
                        "status": p.status.value,
                        "status_at": at.isoformat(),
                        "incident_id": p.incident_id,
                        "exercise_id": exercise_id,
                    },
                    exercise_id=exercise_id,
                    team_id=team_id,
                ),
            )
        if p.status is TeamStatus.ON_SCENE and p.incident_id:
            await _exercise_arrival(state, exercise_id, team_id, p.incident_id, at)
        elif p.status is TeamStatus.EN_ROUTE and result.applied:
            await team_record.record_en_route(state, team_id, at, Scope.drill(exercise_id))


async def _exercise_arrival(
    state: CommandState, exercise_id: str, team_id: str, incident_id: str, at: datetime
) -> None:
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT exercise_id FROM incident WHERE id = %s", (incident_id,))
        row = await cur.fetchone()
    if row is None or row[0] != exercise_id:  # a crew never reaches a live or another drill's incident
        log.warning(
            "exercise %s: %s on scene of %s, not an incident of this exercise",
            exercise_id,
            team_id,
            incident_id,
        )
        return
    crew = Principal(team_id, Role.FIELD, team_id)

    def arrived(incident: Incident) -> list[Event]:
        return decide_team_arrived(incident, team_id=team_id, actor=actor_of(crew), at=at)

    try:
        await store.run_command(state, crew, incident_id, arrived, "incident.team_arrived")
    except DomainError as exc:  # e.g. released meanwhile, or the incident is closed
        log.info("exercise %s: arrival of %s at %s not recorded: %s", exercise_id, team_id, incident_id, exc)


async def _publish_exercise_position(
    state: CommandState, exercise_id: str, team_id: str, p: TeamPosition, at: datetime
) -> None:
    """A drill's position goes to the planners' map only (``visible_to``: planners and
    admins); Redis GEO and the team row stay the live team's."""
    position = {"lat": p.lat, "lon": p.lon, "at": at.isoformat(), "source": "exercise", **_motion(p)}
    await publish(
        state.redis,
        Change(
            "team",
            team_id,
            {"id": team_id, "kind": "position", "exercise_id": exercise_id, "position": position},
            exercise_id=exercise_id,
            team_id=team_id,
        ),
    )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class _InFlight:
    row_id: int
    order_id: str | None
    future: asyncio.Future[Published]


class OutboxRelay:
    """mqtt_outbox → broker, QoS 1, ``sent_at`` after the PUBACK; one leader at a time."""

    name = "outbox"

    def __init__(self, *, poll_s: float = 0.5, standby_poll_s: float = 2.0) -> None:
        self._poll_s = poll_s
        self._standby_poll_s = standby_poll_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.role = "starting"  # leader, standby, down
        self.sent = 0
        self.failed = 0

    async def start(self, state: CommandState) -> None:
        state.outbox = self
        self._task = asyncio.create_task(self._run(state), name="outbox-relay")
        for _ in range(60):  # leader or standby within moments, so /healthz is right from the start
            if self.role != "starting":
                break
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await stop_task(self._task)

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done() and self.role in ("leader", "standby")

    def wake(self) -> None:
        self._wake.set()

    async def _run(self, state: CommandState) -> None:
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    state.settings.shared.database_url or "", autocommit=True, connect_timeout=5
                ) as conn:
                    while True:
                        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_RELAY_LOCK,))
                        row = await cur.fetchone()
                        if row is not None and row[0]:
                            break
                        self.role = "standby"
                        await asyncio.sleep(self._standby_poll_s)
                    self.role = "leader"
                    backoff.reset()
                    await conn.execute("LISTEN wuwang_outbox")
                    await conn.execute("LISTEN wuwang_dispatch")
                    log.info("outbox relay: leader")
                    listener = asyncio.create_task(self._listen(state, conn), name="outbox-listen")
                    relay = asyncio.create_task(self._relay(state), name="outbox-publish")
                    try:
                        done, _ = await asyncio.wait({listener, relay}, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            task.result()  # raises what ended it
                    finally:
                        await stop_task(listener)
                        await stop_task(relay)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.role = "down"
                delay = backoff.next_delay()
                log.warning("outbox relay interrupted; retrying in %.1f s", delay, exc_info=True)
                await asyncio.sleep(delay)

    async def _listen(self, state: CommandState, conn: psycopg.AsyncConnection[Any]) -> None:
        async for note in conn.notifies():
            if note.channel == "wuwang_outbox":
                self.wake()
            elif note.channel == "wuwang_dispatch":
                await self._dispatch_notice(state, note.payload)

    async def _dispatch_notice(self, state: CommandState, payload: str) -> None:
        """The trigger released an order or recorded an arrival (possibly through another
        service's route): publish the order and the team as they now are."""
        try:
            notice = json.loads(payload)
            if notice.get("order_id"):
                await dispatch.publish_order(state, notice["order_id"])
            if notice.get("team_id"):
                await rosters.publish_team(state, notice["team_id"])
        except Exception:
            log.warning("could not publish the changes of dispatch notice %s", payload[:200], exc_info=True)

    async def _relay(self, state: CommandState) -> None:
        window = state.settings.command.outbox_window
        inflight: dict[int, _InFlight] = {}
        done_unmarked: list[_InFlight] = []
        # Short: while the broker is down this only polls the link's own state (the link
        # reconnects with its own back-off); after a failed publish it spaces the retries.
        backoff = Backoff(base=0.2, cap=2.0)
        while True:
            link = link_of(state)
            if done_unmarked:
                await self._mark(state, done_unmarked)  # a database error here restarts the relay
                done_unmarked.clear()
            if link is None or not link.connected.is_set():
                # Broker down: rows stay unsent; what was handed over stays in flight (paho
                # resends it on reconnect). Jittered, so many services do not pile back in.
                delay = backoff.next_delay()
                await self._wait(list(inflight.values()), delay)
            else:
                backoff.reset()
                # Never more than the broker takes (its CONNACK Receive Maximum, which the
                # link honours): more would only wait in the link's memory, not the outbox.
                room = min(window, link.send_window) - len(inflight)
                if room > 0:
                    for row_id, topic, payload, order_id in await self._unsent(state, list(inflight), room):
                        future = asyncio.wrap_future(link.publish(topic, bytes(payload), qos=1))
                        future.add_done_callback(_retrieve)  # a relay restart may abandon it
                        inflight[row_id] = _InFlight(row_id, order_id, future)
                await self._wait(list(inflight.values()), self._poll_s)
            failed = False
            for item in [i for i in inflight.values() if i.future.done()]:
                del inflight[item.row_id]
                if item.future.exception() is None:
                    done_unmarked.append(item)
                else:
                    failed = True
                    self.failed += 1
                    log.warning(
                        "outbox row %d not delivered: %s; will retry", item.row_id, item.future.exception()
                    )
                    await self._count_attempt(state, item.row_id)
            if failed:
                await asyncio.sleep(backoff.next_delay())

    async def _wait(self, inflight: list[_InFlight], timeout: float) -> None:
        waker: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        waiting: list[asyncio.Future[Any]] = [waker, *(i.future for i in inflight)]
        try:
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waker
        self._wake.clear()

    @staticmethod
    async def _unsent(state: CommandState, exclude: list[int], limit: int) -> list[tuple[Any, ...]]:
        async with state.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, topic, payload, order_id FROM mqtt_outbox"
                " WHERE sent_at IS NULL AND NOT (id = ANY(%s)) ORDER BY id LIMIT %s",
                (exclude, limit),
            )
            return list(await cur.fetchall())

    @staticmethod
    async def _count_attempt(state: CommandState, row_id: int) -> None:
        with contextlib.suppress(Exception):
            async with state.pool.connection() as conn:
                await conn.execute("UPDATE mqtt_outbox SET attempts = attempts + 1 WHERE id = %s", (row_id,))

    async def _mark(self, state: CommandState, items: list[_InFlight]) -> None:
        """PUBACK received: the rows are sent, and their orders with them (one transaction)."""
        from command import audit

        orders = [i.order_id for i in items if i.order_id]
        async with state.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE mqtt_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)",
                ([i.row_id for i in items],),
            )
            marked: list[str] = []
            if orders:
                cur = await conn.execute(
                    "UPDATE dispatch_order SET sent_at = coalesce(sent_at, now()),"
                    " status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END"
                    " WHERE order_id = ANY(%s) RETURNING order_id, incident_id, team_id",
                    (orders,),
                )
                for order_id, incident_id, team_id in await cur.fetchall():
                    marked.append(order_id)
                    await audit.record(
                        conn,
                        "system:outbox",
                        "dispatch.sent",
                        object_type="dispatch_order",
                        object_id=order_id,
                        detail={"incident_id": incident_id, "team_id": team_id},
                    )
        self.sent += len(items)
        for order_id in marked:
            await dispatch.publish_order(state, order_id)


class AckWatchdog(Periodic):
    """Raises the "order not acknowledged" alert once per order, checking a quarter of
    the ack timeout apart (0.2–5 s)."""

    name = "ack-watchdog"

    async def start(self, state: CommandState) -> None:
        self.interval_s = min(max(state.settings.command.ack_timeout_s / 4, 0.2), 5.0)
        await super().start(state)

    async def round(self, state: CommandState) -> int:
        return len(await dispatch.raise_overdue_acks(state, state.settings.command.ack_timeout_s))


def worker_factories() -> list[Callable[[CommandState], Worker]]:
    """The MQTT side's workers, in start order (the link first, stopped last)."""
    return [
        lambda state: LinkWorker(),
        lambda state: TeamFeed(),
        lambda state: OutboxRelay(),
        lambda state: AckWatchdog(),
    ]
