"""The exercise runner: send an exercise's timed items at their exercise time.

``run_exercise(settings, exercise_id, items, speed=…)`` takes what a scenario
(simulators/scenario.py) or a replay expands into — :class:`TimedMessage` (a contract v1
message at an offset from the exercise start) and :class:`TimedInject` (a command-API
inject at an offset) — and, on an :class:`~simulators.exercise_clock.ExerciseClock`:

- publishes each message when it is due to ``exercise/v1/<id>/<v1 topic>`` at QoS 1 as
  the simulator's MQTT user, with ``ts`` the actual send time and the scheduled exercise
  time in the extra field ``exercise_offset_s``;
- POSTs each inject to ``/exercises/{id}/injects`` of the command API with a planner's
  token, in a thread of its own so a slow answer never delays the messages; an
  ``escalate`` answered 404 is tried again for a while (the alarm it names may not have
  joined an incident yet); when that alarm waits in the alarm inbox (a sensor crossing
  or video alert no triage rule promotes), the runner promotes its row first, as the
  planner it logs in as (docs/exercises.md);
- reads control commands (play, pause, seek, speed, stop) from the exercise's Redis
  stream and applies them to the clock;
- keeps the ``exercise`` row (created when missing) up to date: status, speed,
  position, and ``stats`` with the timing drift of every item (actual send minus due
  wall time; p50/p95/p99/max in ms), which :class:`RunReport` carries too.

Each item is sent at most once: a seek forward skips what lies between (counted as
``skipped``), a seek back re-sends nothing already sent and picks up what was skipped.
Publishing happens in this thread only (paho #354); paho's network loop runs in its own.

With ``virtual_crews`` the runner also plays the drill's teams (simulators/virtual_crews.py):
it subscribes to the exercise's dispatch orders (``exercise/v1/<id>/teams/v1/+/dispatch``;
paho's callback only queues them), plans each crew on the exercise clock and publishes
its ack, statuses and positions when due, like any scripted item. The run then ends
when the script is done *and* no crew is still out.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2
import orjson
import paho.mqtt.client as mqtt
import psycopg
import redis
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.exercise_clock import ExerciseClock, check_speed
from simulators.feeds import CST
from simulators.publish import BrokerConfig
from simulators.virtual_crews import CrewConfig, CrewOrder, CrewTeam, StreetRouter, VirtualCrews
from wuwang.city import load_districts
from wuwang.contract import encode, team_topic
from wuwang.exercises import (
    ControlAction,
    ExerciseKind,
    ExerciseStatus,
    control_stream,
    valid_exercise_id,
)
from wuwang.mqtt import apply_target
from wuwang.mqttlink import cap_paho_inflight, receive_maximum
from wuwang.scope import Scope
from wuwang.settings import DEFAULT_DATABASE_URL, DEFAULT_MQTT_URL, DEFAULT_REDIS_URL, DEMO_SECRETS, Settings
from wuwang.stats import percentile

log = logging.getLogger("simulators.exercise")

#: Control commands are looked for at least this often while waiting (seconds).
CONTROL_POLL_S = 0.05
#: QoS 1 messages in flight at most (lower when the broker's Receive Maximum is).
MAX_INFLIGHT = 200
#: The exercise row's position is written at most this often (seconds).
POSITION_WRITE_S = 1.0
DEMO_PLANNER = "planner1"


@dataclass(frozen=True, slots=True)
class TimedMessage:
    offset_s: float  # exercise seconds from the start
    topic: str  # a contract v1 topic WITHOUT the exercise prefix
    payload: dict[str, Any]  # with its ``id``; ``ts`` is stamped at sending
    label: str = ""


@dataclass(frozen=True, slots=True)
class TimedInject:
    offset_s: float
    body: dict[str, Any]  # POSTed to the command API /exercises/{id}/injects
    label: str = ""


Item = TimedMessage | TimedInject


@dataclass(frozen=True)
class InjectApi:
    """Where injects go and as whom: a drill planner's account on the command API."""

    url: str
    username: str
    password: str
    escalate_retry_s: float = 120.0  # how long an escalate answered 404 is tried again
    retry_every_s: float = 2.0
    timeout_s: float = 10.0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> InjectApi:
        """CLI options, else the settings (DRILL_API_URL / DRILL_USER / DRILL_PASSWORD),
        else the command service the console uses and, in demo mode only, the demo planner."""
        url = url or settings.drill.api_url or settings.dashboard.command_url
        username = username or settings.drill.user or DEMO_PLANNER
        password = password or settings.drill.password or ("demo" if settings.shared.demo_mode else "")
        if not password:
            raise ValueError("no password for the drill planner: set DRILL_PASSWORD or pass --password")
        if password in DEMO_SECRETS and not settings.shared.demo_mode:
            raise ValueError(
                "the drill planner's password ships in this repository: set a real one or DEMO_MODE=1"
            )
        return cls(url.rstrip("/"), username, password)


@dataclass(frozen=True)
class DriftStats:
    """Actual send minus due wall time, per item, in milliseconds."""

    count: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> DriftStats:
        if not samples_ms:
            return cls()

        def p(q: float) -> float:
            return round(percentile(samples_ms, q), 3)

        return cls(len(samples_ms), p(50), p(95), p(99), round(max(samples_ms), 3))

    def as_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max}


@dataclass
class RunReport:
    """What a run did; the same numbers are in the exercise row's ``stats``."""

    exercise_id: str
    status: ExerciseStatus = ExerciseStatus.RUNNING
    items: int = 0
    sent: int = 0  # messages published
    acked: int = 0  # … and acknowledged by the broker
    refused: int = 0  # … acknowledged with a failure code (e.g. not authorised)
    skipped: int = 0  # items a seek jumped over and never sent
    injects: int = 0  # injects the command API accepted
    injects_failed: int = 0
    crew_orders: int = 0  # drill orders the virtual crews took
    crew_sent: int = 0  # their acks, statuses and positions published (acked counts these too)
    position_s: float = 0.0
    speed: float = 1.0
    stopped: bool = False
    wall_s: float = 0.0
    drift: DriftStats = field(default_factory=DriftStats)
    errors: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "sent": self.sent,
            "acked": self.acked,
            "refused": self.refused,
            "skipped": self.skipped,
            "injects": self.injects,
            "injects_failed": self.injects_failed,
            "crews": {"orders": self.crew_orders, "sent": self.crew_sent},
            "position_s": round(self.position_s, 3),
            "wall_s": round(self.wall_s, 3),
            "stopped": self.stopped,
            "drift_ms": self.drift.as_dict(),
            "errors": self.errors[-20:],
        }


# --- the exercise row -------------------------------------------------------------------


class _ExerciseRow:
    """The ``exercise`` row of this run (autocommit: every update is visible at once)."""

    def __init__(self, conn: psycopg.Connection[Any], exercise_id: str) -> None:
        self.conn, self.id = conn, exercise_id

    def ensure(self, *, name: str, kind: str, source: str, created_by: str, speed: float) -> datetime:
        """Create the row when missing; refuse one that has run to the end or was purged."""
        # Inserted as running, never planned: the exercise daemon claims planned rows,
        # and must not pick up (and run a second time) a drill started from the CLI.
        self.conn.execute(
            "INSERT INTO exercise (id, name, kind, source, created_by, speed, status)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'running') ON CONFLICT (id) DO NOTHING",
            (self.id, name, kind, source, created_by, speed),
        )
        row = self.conn.execute(
            "SELECT status, created_at FROM exercise WHERE id = %s", (self.id,)
        ).fetchone()
        assert row is not None
        if row[0] in (ExerciseStatus.FINISHED, ExerciseStatus.PURGED):
            raise RuntimeError(f"exercise {self.id} is {row[0]}: start a new exercise instead")
        created: datetime = row[1]
        return created

    def start(self, speed: float, sim_start: datetime, sim_end: datetime) -> None:
        self.conn.execute(
            "UPDATE exercise SET status = 'running', speed = %s, started_at = now(), finished_at = NULL,"
            " sim_start = %s, sim_end = %s, sim_position = %s WHERE id = %s",
            (speed, sim_start, sim_end, sim_start, self.id),
        )

    def progress(self, status: ExerciseStatus, speed: float, position: datetime) -> None:
        self.conn.execute(
            "UPDATE exercise SET status = %s, speed = %s, sim_position = %s WHERE id = %s",
            (str(status), speed, position, self.id),
        )

    def finish(
        self, status: ExerciseStatus, speed: float, position: datetime, stats: Mapping[str, Any]
    ) -> None:
        self.conn.execute(
            "UPDATE exercise SET status = %s, speed = %s, sim_position = %s, finished_at = now(),"
            " stats = stats || %s::jsonb WHERE id = %s",
            (str(status), speed, position, orjson.dumps(dict(stats)).decode(), self.id),
        )


# --- MQTT ---------------------------------------------------------------------------------


class _Publisher:
    """One paho client at QoS 1 that counts acknowledgements. paho reconnects on its own;
    QoS 1 messages published while it is away are kept in memory and sent afterwards."""

    def __init__(self, broker: BrokerConfig, client_id: str, inbox_topic: str | None = None) -> None:
        self.broker = broker
        #: What arrives on ``inbox_topic`` (subscribed on every connect): (topic, payload).
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._inbox_topic = inbox_topic
        protocol = mqtt.MQTTv311 if broker.protocol == "3.1.1" else mqtt.MQTTv5
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        apply_target(self.client, broker.target)
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, m: self.inbox.put((m.topic, bytes(m.payload)))
        self.connected = threading.Event()
        self.connect_error: str | None = None
        self._lock = threading.Lock()
        self.published = self.acked = self.refused = 0

    # Callbacks run in paho's network thread: they count, never publish (paho #354).
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self.connect_error = str(reason)
        else:
            # Never more in flight than the broker's Receive Maximum (paho ignores it).
            cap_paho_inflight(client, min(MAX_INFLIGHT, receive_maximum(props)))
            if self._inbox_topic is not None:  # again after a reconnect (the session is clean)
                client.subscribe(self._inbox_topic, qos=1)
        self.connected.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._lock:
            self.acked += 1
            if reason.is_failure:
                self.refused += 1

    def connect(self, timeout: float) -> None:
        b = self.broker
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.connect(b.host, b.port, b.keepalive)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"cannot reach the MQTT broker at {b.host}:{b.port}: {exc}") from exc
                time.sleep(0.5)
        self.client.loop_start()
        if not self.connected.wait(max(0.1, deadline - time.monotonic())) or self.connect_error:
            self.close()
            raise RuntimeError(
                f"the MQTT broker at {b.host}:{b.port} refused {b.username}: "
                f"{self.connect_error or 'no CONNACK'}"
            )

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)
        self.published += 1

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.published and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- injects over HTTP --------------------------------------------------------------------


@dataclass
class _Pending:
    inject: TimedInject
    first_try: float
    next_try: float
    attempts: int = 0
    promoted: str | None = None  # the inbox row this escalation promoted first


class _InjectSender(threading.Thread):
    """POSTs injects in order of arrival, off the publishing thread."""

    def __init__(
        self, api: InjectApi, exercise_id: str, on_result: Callable[[TimedInject, str | None], None]
    ) -> None:
        super().__init__(name=f"drill-injects-{exercise_id}", daemon=True)
        self.api, self.exercise_id, self.on_result = api, exercise_id, on_result
        self.queue: queue.Queue[TimedInject] = queue.Queue()
        self.closing = threading.Event()
        self.abandon = threading.Event()
        self._token: str | None = None
        self._http = httpx2.Client(base_url=api.url, timeout=api.timeout_s)

    def run(self) -> None:
        pending: list[_Pending] = []
        try:
            while True:
                now = time.monotonic()
                if self.abandon.is_set():
                    for p in pending:
                        self.on_result(p.inject, "abandoned: the exercise was stopped")
                    return
                if self.closing.is_set() and not pending and self.queue.empty():
                    return
                wait = min((p.next_try for p in pending), default=now + 0.2) - now
                try:
                    inj = self.queue.get(timeout=min(max(wait, 0.0), 0.2))
                    pending.append(_Pending(inj, time.monotonic(), time.monotonic()))
                except queue.Empty:
                    pass
                for p in [p for p in pending if p.next_try <= time.monotonic()]:
                    verdict = self._attempt(p)
                    if verdict == "retry":
                        p.next_try = time.monotonic() + self.api.retry_every_s
                    else:
                        pending.remove(p)
                        self.on_result(p.inject, None if verdict == "ok" else verdict)
        finally:
            self._http.close()

    def _login(self) -> None:
        r = self._http.post(
            "/auth/login", json={"username": self.api.username, "password": self.api.password}
        )
        if r.status_code != 200:
            raise _ApiRefused(f"login as {self.api.username} refused: {r.status_code} {r.text[:200]}")
        self._token = str(r.json()["access_token"])

    def _attempt(self, p: _Pending) -> str:
        """'ok', 'retry', or the reason it failed."""
        p.attempts += 1
        body = p.inject.body
        try:
            if self._token is None:
                self._login()
            for fresh in (False, True):
                r = self._http.post(
                    f"/exercises/{self.exercise_id}/injects",
                    json=body,
                    headers={"Authorization": f"Bearer {self._token}"},
                )
                if r.status_code == 401 and not fresh:  # the short-lived token ran out
                    self._login()
                    continue
                break
        except _ApiRefused as exc:
            return str(exc)
        except httpx2.HTTPError as exc:
            # The command service restarting: try again a few times.
            return "retry" if p.attempts < 5 else f"command API unreachable: {exc}"
        if 200 <= r.status_code < 300:
            return "ok"
        late = time.monotonic() - p.first_try
        if r.status_code == 404 and body.get("kind") == "escalate" and late < self.api.escalate_retry_s:
            # The alarm has not joined an incident yet — or it waits in the alarm inbox
            # (a sensor crossing or video alert no triage rule promotes): then promote
            # its row, as the drill's operators would, and escalate the incident.
            if p.promoted is None:
                p.promoted = self._promote_row_of(str(body.get("msg_id") or ""), p.inject.label)
            return "retry"
        return f"{r.status_code} {r.text[:200]}"

    def _promote_row_of(self, msg_id: str, label: str) -> str | None:
        """Promote (立事件) this exercise's inbox row holding the alarm of message
        ``msg_id``, as the drill planner (audited ``inbox.promote``, the note naming the
        escalation). The row's id, or None when no open or expired row holds it (yet);
        nothing here fails the drill: the escalation is simply tried again."""
        if not msg_id or self._token is None:
            return None
        headers = {"Authorization": f"Bearer {self._token}"}
        mark = f"#{msg_id}"
        try:
            for state in ("open", "expired"):
                r = self._http.get(
                    "/inbox",
                    params={"exercise_id": self.exercise_id, "state": state, "limit": 1000},
                    headers=headers,
                )
                if r.status_code != 200:
                    return None
                rows = r.json() if isinstance(r.json(), list) else []
                row = next(
                    (
                        x
                        for x in rows
                        if isinstance(x, dict)
                        and (
                            str(x.get("first_alarm_id", "")).endswith(mark)
                            or any(str(a).endswith(mark) for a in x.get("alarm_ids") or [])
                        )
                    ),
                    None,
                )
                if row is None:
                    continue
                row_id = str(row.get("row_id"))
                done = self._http.post(
                    f"/inbox/{row_id}/promote",
                    json={"note": f"演练脚本：为升级（{label or msg_id}）立事件"},
                    headers=headers,
                )
                if done.status_code in (200, 409):  # 409: someone acted on it first
                    log.info("exercise %s: inbox row %s promoted for %s", self.exercise_id, row_id, label)
                    return row_id
                log.warning(
                    "exercise %s: promoting inbox row %s refused: %s",
                    self.exercise_id,
                    row_id,
                    done.text[:200],
                )
                return None
        except (httpx2.HTTPError, ValueError):
            return None
        return None


class _ApiRefused(Exception):
    pass


# --- the run ------------------------------------------------------------------------------


def _now_rfc3339() -> str:
    return datetime.now(CST).isoformat(timespec="milliseconds")


def _crew_team(
    conn: psycopg.Connection[Any], exercise_id: str, team_id: str
) -> tuple[CrewTeam, tuple[float, float] | None] | None:
    """The team as a crew (type, base, district) and where it last was in this exercise
    (its stored exercise positions: a crew of an earlier run of the runner)."""
    row = conn.execute(
        "SELECT team_type, base_lat, base_lon, district_adcode FROM team WHERE id = %s", (team_id,)
    ).fetchone()
    if row is None:
        return None
    last = conn.execute(
        "SELECT lat, lon FROM team_position WHERE team_id = %s AND exercise_id = %s ORDER BY ts DESC LIMIT 1",
        (team_id, exercise_id),
    ).fetchone()
    return CrewTeam(team_id, row[0], row[1], row[2], row[3]), (last[0], last[1]) if last else None


@dataclass(frozen=True)
class RunOptions:
    """How one run goes (everything of :func:`run_exercise` but the exercise and its items).

    ``sim_start`` is the exercise's own start time (a replayed window's start); default
    now. ``api`` is needed only when there are injects (default: from the settings).
    ``virtual_crews``: answer the exercise's dispatch orders with virtual crews
    (``crew_config``: their delays, report interval and time on scene)."""

    speed: float
    api: InjectApi | None = None
    stop: threading.Event | None = None
    name: str | None = None
    kind: ExerciseKind | str = ExerciseKind.SCENARIO
    source: str = ""
    created_by: str | None = None
    sim_start: datetime | None = None
    client_id: str | None = None
    connect_timeout: float = 15.0
    drain_timeout: float = 10.0
    virtual_crews: bool = False
    crew_config: CrewConfig | None = None


class ExerciseRun:
    """One run of one exercise, in named steps: register the row, connect, start, then
    the loop (control commands, the crews' orders, the next due item or crew action)
    until the script is done and no crew is out (or a stop), then finish — or fail —
    and close. :meth:`run` does them in that order, once."""

    def __init__(
        self, settings: Settings, exercise_id: str, items: Sequence[Item], options: RunOptions
    ) -> None:
        if not valid_exercise_id(exercise_id):
            raise ValueError(f"not an exercise id: {exercise_id[:70]!r}")
        self.settings = settings
        self.exercise_id = exercise_id
        self.scope = Scope.drill(exercise_id)
        self.options = options
        self.clock = ExerciseClock(check_speed(options.speed))
        self.ordered = sorted(items, key=lambda it: it.offset_s)
        self.offsets = [it.offset_s for it in self.ordered]
        self.api = options.api
        if any(isinstance(it, TimedInject) for it in self.ordered) and self.api is None:
            self.api = InjectApi.from_settings(settings)
        self.stop = options.stop or threading.Event()
        self.report = RunReport(exercise_id, items=len(self.ordered), speed=self.clock.speed)
        self.sim_start = options.sim_start or datetime.now(CST).replace(microsecond=0)
        self.sim_end = self.sim_start + timedelta(seconds=self.offsets[-1] if self.offsets else 0.0)
        self._lock = threading.Lock()  # the report, shared with the inject thread
        self._drift: list[float] = []
        self._owned = False  # the row is this run's to mark failed (not when it was refused)
        self._publisher: _Publisher | None = None
        self._sender: _InjectSender | None = None
        self._crews: VirtualCrews | None = None
        self._crew_horizon = 0.0  # the latest exercise time a crew reported at
        self._sent_mark = [False] * len(self.ordered)
        self._cursor = 0
        self._control_from = "0-0"
        self._next_poll = self._next_write = 0.0
        self._dirty = False

    # --- the run ----------------------------------------------------------------------

    def run(self) -> RunReport:
        settings = self.settings
        self._conn = psycopg.connect(settings.shared.database_url or DEFAULT_DATABASE_URL, autocommit=True)
        self._rds = redis.Redis.from_url(settings.shared.redis_url or DEFAULT_REDIS_URL)
        self._row = _ExerciseRow(self._conn, self.exercise_id)
        self._t0 = time.monotonic()
        try:
            self._register()
            self._connect()
            self._start()
            self._loop()
            return self._finish()
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._close()

    def _register(self) -> None:
        """The exercise row, created when missing (refused when finished or purged)."""
        o = self.options
        created = self._row.ensure(
            name=o.name or self.exercise_id,
            kind=str(o.kind),
            source=o.source or self.exercise_id,
            created_by=o.created_by or (self.api.username if self.api else "simulator"),
            speed=self.clock.speed,
        )
        self._owned = True
        # Commands sent since the exercise was registered count (e.g. a pause before the
        # runner picked it up); the ids of a Redis stream are milliseconds since the epoch.
        self._control_from = f"{max(0, int(created.timestamp() * 1000) - 1)}-0"

    def _connect(self) -> None:
        """The MQTT publisher (subscribed to the drill's orders when crews play)."""
        settings, o = self.settings, self.options
        broker = BrokerConfig.from_url(
            settings.shared.mqtt_url or DEFAULT_MQTT_URL,
            settings.shared.mqtt_protocol,
            settings.shared.mqtt_keepalive,
            settings.shared.demo_mode,
        )
        self._publisher = _Publisher(
            broker,
            o.client_id or f"wuwang-drill-{self.exercise_id}-{os.getpid()}",
            self.scope.topic(team_topic("+", "dispatch")) if o.virtual_crews else None,
        )
        self._publisher.connect(o.connect_timeout)
        if o.virtual_crews:
            self._crews = VirtualCrews(
                seed=self.exercise_id, config=o.crew_config, route=StreetRouter(load_districts())
            )

    def _start(self) -> None:
        """The inject thread, the row ``running``, the clock playing."""
        if self.api is not None:
            self._sender = _InjectSender(self.api, self.exercise_id, self._on_inject)
            self._sender.start()
        self._row.start(self.clock.speed, self.sim_start, self.sim_end)
        log.info(
            "exercise %s: %d items over %.0f s of exercise time at ×%g",
            self.exercise_id,
            len(self.ordered),
            self.offsets[-1] if self.offsets else 0.0,
            self.clock.speed,
        )
        self.clock.play(time.monotonic())

    def _loop(self) -> None:
        """Until the script is done and no crew is out, or a stop: each turn applies the
        control commands due a look, writes the position due a write, takes the crews'
        new orders, then waits for, or sends, what is due next."""
        clock, report, crews = self.clock, self.report, self._crews
        while not report.stopped and not self.stop.is_set():
            now = time.monotonic()
            if now >= self._next_poll:
                self._poll()
                self._next_poll = now + CONTROL_POLL_S
                if report.stopped:
                    break
            if self._dirty or now >= self._next_write:
                status = ExerciseStatus.RUNNING if clock.playing else ExerciseStatus.PAUSED
                self._row.progress(
                    status, clock.speed, self.sim_start + timedelta(seconds=clock.position(now))
                )
                self._dirty, self._next_write = False, now + POSITION_WRITE_S
            while self._cursor < len(self.ordered) and self._sent_mark[self._cursor]:
                self._cursor += 1
            if crews is not None:
                self._take_orders(clock.position(now))
            crew_next = crews.next_offset() if crews is not None else None
            if self._cursor >= len(self.ordered) and crew_next is None:
                break  # the script is done and no crew is out
            if not clock.playing:
                self._poll(block_ms=int(CONTROL_POLL_S * 1000 * 4))  # paused: wait for a command
                continue
            next_offset = min(
                o
                for o in (
                    self.ordered[self._cursor].offset_s if self._cursor < len(self.ordered) else None,
                    crew_next,
                )
                if o is not None
            )
            due = clock.wall_time_of(next_offset)
            assert due is not None
            wait = due - time.monotonic()
            if wait > 0:
                self.stop.wait(min(wait, max(0.0, self._next_poll - time.monotonic()), POSITION_WRITE_S))
                continue
            if crew_next is not None and crew_next <= next_offset:
                self._send_crew_actions(crew_next)
                continue
            self._send_item(due)

    # --- steps of the loop ------------------------------------------------------------

    def _poll(self, block_ms: int | None = None) -> None:
        got: Any = self._rds.xread(
            {control_stream(self.exercise_id): self._control_from}, count=100, block=block_ms
        )
        for _stream, entries in got or []:
            self._apply_control(entries)

    def _apply_control(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        clock, report = self.clock, self.report
        for entry_id, fields in entries:
            self._control_from = entry_id.decode()
            action = fields.get(b"action", b"").decode()
            value = fields.get(b"value", b"").decode()
            now = time.monotonic()
            try:
                if action == ControlAction.PLAY:
                    clock.play(now)
                elif action == ControlAction.PAUSE:
                    clock.pause(now)
                elif action == ControlAction.SEEK:
                    clock.seek(float(value), now)
                    self._cursor = bisect.bisect_left(self.offsets, clock.position(now))
                elif action == ControlAction.SPEED:
                    clock.set_speed(float(value), now)
                elif action == ControlAction.STOP:
                    report.stopped = True
                else:
                    raise ValueError(f"unknown action {action!r}")
            except ValueError as exc:
                report.errors.append(f"control {action} {value}: {exc}")
                log.warning("exercise %s: control %s %s refused: %s", self.exercise_id, action, value, exc)
                continue
            log.info(
                "exercise %s: %s %s (position %.1f s)", self.exercise_id, action, value, clock.position(now)
            )
            self._dirty = True

    def _take_orders(self, position_s: float) -> None:
        """The drill's orders paho queued: each becomes a crew's plan from now on."""
        crews, publisher, report = self._crews, self._publisher, self.report
        assert crews is not None and publisher is not None
        while True:
            try:
                topic, raw = publisher.inbox.get_nowait()
            except queue.Empty:
                return
            team_id = topic.split("/")[-2]
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError:
                payload = None
            order = CrewOrder.from_payload(team_id, payload) if isinstance(payload, dict) else None
            found = _crew_team(self._conn, self.exercise_id, team_id) if order is not None else None
            if order is None or found is None:
                report.errors.append(f"crew {team_id}: not an order for a known team on {topic}")
                continue
            team, last = found
            if crews.order(order, team, position_s, start=last):
                report.crew_orders += 1
                log.info(
                    "exercise %s: crew %s takes %s to %s",
                    self.exercise_id,
                    team_id,
                    order.order_id,
                    order.incident_id,
                )

    def _send_crew_actions(self, crew_next: float) -> None:
        """What the crews do at ``crew_next`` (their acks, statuses, positions)."""
        crews, publisher = self._crews, self._publisher
        assert crews is not None and publisher is not None
        # max(): the float round trip offset → wall time → offset may fall just short
        for action in crews.due(max(self.clock.position(time.monotonic()), crew_next)):
            payload = {
                **action.payload,
                "ts": _now_rfc3339(),
                "exercise_offset_s": round(action.offset_s, 3),
            }
            publisher.publish(self.scope.topic(team_topic(action.team_id, action.leaf)), encode(payload))
            self.report.crew_sent += 1
            self._crew_horizon = max(self._crew_horizon, action.offset_s)

    def _send_item(self, due: float) -> None:
        """The script's next item (a message, or an inject for the inject thread); its
        drift is the send time minus ``due``."""
        item = self.ordered[self._cursor]
        if isinstance(item, TimedMessage):
            assert self._publisher is not None
            payload = dict(item.payload)
            payload["ts"] = _now_rfc3339()
            payload["exercise_offset_s"] = round(item.offset_s, 3)
            body = encode(payload)
            sent_at = time.monotonic()
            self._publisher.publish(self.scope.topic(item.topic), body)
            self.report.sent += 1
        else:
            sent_at = time.monotonic()
            assert self._sender is not None
            self._sender.queue.put(item)
        self._drift.append((sent_at - due) * 1000.0)
        self._sent_mark[self._cursor] = True
        self._cursor += 1

    def _on_inject(self, inj: TimedInject, error: str | None) -> None:
        """The inject thread's word on one inject."""
        with self._lock:
            if error is None:
                self.report.injects += 1
            else:
                self.report.injects_failed += 1
                self.report.errors.append(f"{inj.label or inj.body.get('kind')}: {error}")
                log.warning("exercise %s: inject %s failed: %s", self.exercise_id, inj.label, error)

    # --- the end ----------------------------------------------------------------------

    def _finish(self) -> RunReport:
        """Drain what is in flight, wait for the inject thread, record the report."""
        clock, report, publisher, sender, api = (
            self.clock,
            self.report,
            self._publisher,
            self._sender,
            self.api,
        )
        assert publisher is not None
        end = time.monotonic()
        report.position_s = min(
            clock.position(end), max(self.offsets[-1] if self.offsets else 0.0, self._crew_horizon)
        )
        if report.stopped or self.stop.is_set():
            report.stopped = True
        publisher.drain(self.options.drain_timeout)
        if sender is not None:
            if report.stopped:
                sender.abandon.set()
            sender.closing.set()
            sender.join(timeout=(api.escalate_retry_s if api else 0) + 30.0)
        with self._lock:
            report.skipped = self._sent_mark.count(False)
            report.acked, report.refused = publisher.acked, publisher.refused
            report.drift = DriftStats.of(self._drift)
            report.speed = clock.speed
            report.wall_s = time.monotonic() - self._t0
            report.status = ExerciseStatus.FINISHED
        self._row.finish(
            report.status, clock.speed, self.sim_start + timedelta(seconds=report.position_s), report.stats()
        )
        log.info(
            "exercise %s finished: sent %d (acked %d), injects %d (failed %d), skipped %d, "
            "drift p50 %.1f ms p99 %.1f ms max %.1f ms",
            self.exercise_id,
            report.sent,
            report.acked,
            report.injects,
            report.injects_failed,
            report.skipped,
            report.drift.p50,
            report.drift.p99,
            report.drift.max,
        )
        return report

    def _fail(self, exc: BaseException) -> None:
        """The run failed: say so in the report and, when the row is this run's, in it."""
        report = self.report
        report.status = ExerciseStatus.FAILED
        report.errors.append(f"{type(exc).__name__}: {exc}")
        report.drift = DriftStats.of(self._drift)
        report.wall_s = time.monotonic() - self._t0
        if self._sender is not None:
            self._sender.abandon.set()
        try:
            if self._owned:
                self._row.finish(
                    report.status,
                    self.clock.speed,
                    self.sim_start + timedelta(seconds=report.position_s),
                    report.stats(),
                )
        except psycopg.Error:
            log.exception("exercise %s: could not record the failure", self.exercise_id)

    def _close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
        self._rds.close()
        self._conn.close()


def run_exercise(
    settings: Settings,
    exercise_id: str,
    items: Sequence[Item],
    *,
    speed: float,
    api: InjectApi | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
    kind: ExerciseKind | str = ExerciseKind.SCENARIO,
    source: str = "",
    created_by: str | None = None,
    sim_start: datetime | None = None,
    client_id: str | None = None,
    connect_timeout: float = 15.0,
    drain_timeout: float = 10.0,
    virtual_crews: bool = False,
    crew_config: CrewConfig | None = None,
) -> RunReport:
    """Run one exercise to its end (or a stop). See the module docstring and
    :class:`RunOptions` for the options; :class:`ExerciseRun` for the steps."""
    options = RunOptions(
        speed=speed,
        api=api,
        stop=stop,
        name=name,
        kind=kind,
        source=source,
        created_by=created_by,
        sim_start=sim_start,
        client_id=client_id,
        connect_timeout=connect_timeout,
        drain_timeout=drain_timeout,
        virtual_crews=virtual_crews,
        crew_config=crew_config,
    )
    return ExerciseRun(settings, exercise_id, items, options).run()
