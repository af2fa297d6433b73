"""The writer thread: batches from the inbox, one transaction per batch, acks after commit.

Per batch, in one transaction:

a. parse (``wuwang.contract.parse_message``; done once, before any retry) and dedupe
   inside the batch by (source, msg_id);
b. COPY the keys into a temporary staging table and insert them into
   ``message_ledger`` with ON CONFLICT DO NOTHING RETURNING — what comes back is new;
c. COPY only the new messages into their feed tables;
d. COPY dead letters (unreadable or unstorable messages: topic, capped raw bytes,
   size, reason, and the exercise id when the topic's exercise prefix was readable);
e. sensor hysteresis: lock the batch's (scope, publisher, device, kind) rows of
   ``sensor_alarm_state`` (scope: '' live, else the exercise id; publisher: the topic's
   source_id), apply the rule in time order (a ts never later than its receipt), update;
f. alarms of new messages into ``alarm_outbox`` (ON CONFLICT (alarm_id) DO NOTHING).

Only after COMMIT are the batch's messages acknowledged — new, duplicate and
dead-lettered alike. A connection error rolls back, is retried with a jittered
back-off on a new connection, with the same batch: nothing lost, nothing doubled,
and meanwhile the full queue and the broker's in-flight window hold the feeds back.
A batch the database refuses for its content is split up, and the one message it
refuses is dead-lettered with the database's reason; the ingest never stops on a
message.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import orjson
import psycopg
from psycopg import postgres, sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ingest import alarms as rules
from ingest.metrics import IngestMetrics
from ingest.ratelog import RateLimitedLog, truncated
from ingest.rows import (
    TABLE_COLUMNS,
    DevicePositions,
    Place,
    Subject,
    Unstorable,
    foreign_subject,
    place_of,
    row_for,
    subject_of,
)
from wuwang.contract import (
    MAX_PAYLOAD_BYTES,
    Alarm,
    ContractError,
    Message,
    SensorReading,
    TsWindow,
    parse_message,
    parse_topic,
    topic_exercise_id,
)
from wuwang.mqtt import Backoff
from wuwang.mqttlink import Delivery
from wuwang.settings import Settings

log = logging.getLogger(__name__)

#: Queues the PUBACK of (connection generation, packet id): ``MqttLink.ack_mid``.
AckFn = Callable[[int, int], None]

#: While a batch's window is open, the writer looks at the inbox this often (rather than
#: being woken by every message put into it).
FILL_POLL_S = 0.005

#: sensor_alarm_state.changed_at of a pair never seen before (any reading is newer).
NEVER = datetime(1900, 1, 1, tzinfo=UTC)

_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_keys ("
    " source text NOT NULL, msg_id text NOT NULL, feed text NOT NULL) ON COMMIT DELETE ROWS"
)
_LEDGER = (
    "INSERT INTO message_ledger (source, msg_id, feed)"
    " SELECT source, msg_id, feed FROM ingest_keys ORDER BY source, msg_id"
    " ON CONFLICT DO NOTHING RETURNING source, msg_id"
)
# Hysteresis state is keyed (scope, publisher, device, kind): scope '' is live, else an
# exercise id, so a drill's readings on a real device id never raise or clear the live
# state; the publisher (the topic's source_id, bound to the account by the broker's ACL)
# so that one account can never raise, clear or hold another one's alarm (migration 0009).
_STATE_ENSURE = (
    "INSERT INTO sensor_alarm_state (scope, source_id, device_id, kind, raised, changed_at)"
    " SELECT s, p, d, k, false, %s"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]) AS u(s, p, d, k)"
    " ORDER BY s, p, d, k ON CONFLICT (scope, source_id, device_id, kind) DO NOTHING"
)
# Only the rows a reading may change are locked: every row of a key with a reading at its
# raise level (``h``), and a raised row of any other key (a reading below the raise level
# can only clear). A row neither raised nor "hot" stays as it is, so it is neither created
# nor locked: most of a batch is routine readings of quiet sensors.
#: The batch's keys go as one JSON array of [scope, publisher, device, kind, hot] (orjson
#: writes it in C; psycopg's array dumper is a Python loop per element: a fifth of the
#: writer's CPU per message with a key per reading).
_STATE_LOCK = (
    "SELECT s.scope, s.source_id, s.device_id, s.kind, s.raised, extract(epoch FROM s.changed_at)::float8"
    " FROM sensor_alarm_state s"
    " JOIN (SELECT e->>0 AS sc, e->>1 AS p, e->>2 AS d, e->>3 AS k, (e->>4)::bool AS h"
    " FROM json_array_elements(%s::json) AS e) AS u"
    " ON s.scope = u.sc AND s.source_id = u.p AND s.device_id = u.d AND s.kind = u.k"
    " WHERE s.raised OR u.h"
    " ORDER BY s.scope, s.source_id, s.device_id, s.kind FOR UPDATE OF s"
)
_STATE_UPDATE = (
    "UPDATE sensor_alarm_state s SET raised = u.r, changed_at = u.c"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bool[], %b::timestamptz[])"
    " AS u(sc, p, d, k, r, c)"
    " WHERE s.scope = u.sc AND s.source_id = u.p AND s.device_id = u.d AND s.kind = u.k"
)
#: ingest_keys' columns, for its binary COPY (text: length and bytes, nothing escaped).
_KEY_TYPES = ("text", "text", "text")
LIVE_SCOPE = ""  # sensor_alarm_state.scope of live readings
# %b: arrays go in binary; the text array format escapes every element with a regex.
_OUTBOX = (
    "INSERT INTO alarm_outbox (alarm_id, payload)"
    " SELECT a, p::jsonb FROM unnest(%b::text[], %b::text[]) WITH ORDINALITY AS u(a, p, n) ORDER BY n"
    " ON CONFLICT (alarm_id) DO NOTHING RETURNING payload->>'kind'"
)

#: Each feed table's column types in TABLE_COLUMNS order, for binary COPY (read from the
#: catalogue once per connection: the schema is the truth, not a copy of it here).
_COLUMN_TYPES = (
    "SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(%s::text[]) WITH ORDINALITY AS c(name, n)"
    " JOIN pg_attribute a ON a.attrelid = %s::regclass AND a.attname = c.name ORDER BY c.n"
)


class JsonTextBinaryDumper(Dumper):
    """A jsonb value the row builder already serialised (``extra``, ``bbox``: JSON text) in
    jsonb's binary form — version byte 1, then the text — without parsing it again."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
        return b"\x01" + text.encode()


class Inbox(Protocol):
    """Where the writer takes its messages from, in order: the link's ``queue.Queue``, or
    the writer process's :class:`ingest.writerproc.ChunkInbox`."""

    def get(self, block: bool = True, timeout: float | None = None) -> Delivery: ...

    def get_nowait(self) -> Delivery: ...

    def empty(self) -> bool: ...


Key = tuple[str, str]
StateKey = tuple[str, str, str, str]  # sensor_alarm_state: (scope, source_id, device_id, kind)


#: A message's row: (its place, its feed table, the values in TABLE_COLUMNS order).
Built = tuple[Place, str, tuple[object, ...]]


class Parsed(msgspec.Struct, frozen=True, gc=False):
    """A message as the writer thread hands it on (a Struct: one per message; nothing
    refers back to it, so it never closes a cycle and the collector can skip it)."""

    item: Delivery
    msg: Message | None
    reason: str | None  # why it is a dead letter (msg is None)
    feed: str  # metrics label
    built: Built | None = None  # its row, when the writer thread could build it already


@dataclass
class Outcome:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (feed, outcome) → n
    alarms: Counter[str] = field(default_factory=Counter)  # alarm kind → n

    def merge(self, other: Outcome) -> None:
        self.counts.update(other.counts)
        self.alarms.update(other.alarms)


def record_commit(metrics: IngestMetrics, outcome: Outcome, seconds: float, size: int) -> None:
    """The metrics of one committed batch (in the process that serves them)."""
    metrics.commit_seconds.observe(seconds)
    metrics.batch_size.observe(size)
    for (feed, result), n in outcome.counts.items():
        metrics.messages.labels(feed=feed, outcome=result).inc(n)
    for kind, n in outcome.alarms.items():
        metrics.alarms.labels(kind=kind).inc(n)


def feed_label(topic: str) -> str:
    try:
        return str(parse_topic(topic).feed)
    except ContractError:
        return "unknown"


def _clean(text: str) -> str:
    """Text PostgreSQL accepts (no NUL, valid UTF-8) for topic and reason columns."""
    return text.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered device (table ``device``) or camera (table ``camera``) as the ingest uses it."""

    position: tuple[float, float]
    publisher: str  # the source id that speaks for it: its gateway, else its own id


#: One round trip for both registries: the subject's field says which table answered.
_REGISTERED = (
    "SELECT 'device_id', id, lat, lon, coalesce(gateway_id, id) FROM device WHERE id = ANY(%s)"
    " UNION ALL"
    " SELECT 'camera_id', id, lat, lon, coalesce(gateway_id, id) FROM camera WHERE id = ANY(%s)"
)


class Registry:
    """Registered devices and cameras (tables ``device``, ``camera``), cached: sensors that
    leave out lat/lon get their device's position, and a live reading or alert is taken
    only from its publisher. Both may be empty. A change is seen within ``TTL_S`` (one
    registered since its id was last missed: ``MISS_TTL_S``)."""

    TTL_S = 300.0
    MISS_TTL_S = 60.0
    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self._cache: dict[Subject, tuple[float, Registration | None]] = {}

    def cached(self, subject: Subject) -> tuple[bool, Registration | None]:
        """(known, its registration) from the cache alone: known is False when only
        ``lookup`` can say (never asked, or asked too long ago)."""
        entry = self._cache.get(subject)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def lookup(self, conn: psycopg.Connection, subjects: set[Subject]) -> dict[Subject, Registration]:
        now = time.monotonic()
        missing = [s for s in subjects if s not in self._cache or self._cache[s][0] < now]
        if missing:
            if len(self._cache) > self.MAX_ENTRIES:
                self._cache.clear()
                missing = list(subjects)  # the batch's cached ones went with the rest
            devices = [i for f, i in missing if f == "device_id"]
            cameras = [i for f, i in missing if f == "camera_id"]
            found = {
                (str(r[0]), str(r[1])): Registration((float(r[2]), float(r[3])), str(r[4]))
                for r in conn.execute(_REGISTERED, (devices, cameras))
            }
            for s in missing:
                reg = found.get(s)
                self._cache[s] = (now + (self.TTL_S if reg else self.MISS_TTL_S), reg)
        return {s: reg for s in subjects if (reg := self._cache[s][1]) is not None}


def _state_time(msg: Message) -> datetime:
    """When a reading counts in the alarm state: its ``ts``, but never later than its
    receipt. A clock running ahead (within the door's skew) must not make the readings
    after it "older than the last change" — that would hold the state until it passed."""
    return min(msg.ts, msg.received_at)


class BatchWriter:
    def __init__(self, settings: Settings, inbox: Inbox, ack: AckFn, metrics: IngestMetrics,
                 *, on_alarms: Callable[[], None] | None = None,
                 on_abandoned: Callable[[], None] | None = None) -> None:
        if not settings.shared.database_url:
            raise ValueError("DATABASE_URL is not set")
        self._settings = settings
        self._url = settings.shared.database_url
        self._inbox = inbox
        self._ack = ack
        self._metrics = metrics
        self._on_alarms = on_alarms
        self._on_abandoned = on_abandoned
        self._thresholds = rules.thresholds(settings.ingest.sensor_thresholds)
        # The door: what retention would delete within the hour, or what claims to come from
        # the future, is never stored (docs/ingest.md, "The time window").
        self._window = TsWindow.of(settings.shared.retention_days, settings.ingest.clock_skew_s)
        self._registry = Registry()
        self._grid_deg = settings.shared.grid_cell_deg
        self._badlog = RateLimitedLog(log)
        self._conn: psycopg.Connection | None = None
        self._types: dict[str, list[str]] = {}  # feed table → column types (binary COPY)
        self._draining = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._committer = threading.Thread(
            target=self._commit_batches, name="ingest-writer-commit", daemon=True
        )
        self._turn = threading.Condition()  # guards the hand-over: _next, _writing, _filled_all
        self._next: list[Parsed] | None = None  # handed over, not yet taken by the committer
        self._filling = 0  # messages in the batch the writer thread is filling
        self._writing = 0  # messages handed to the committer and not yet committed
        self._filled_all = False  # the writer thread has ended: the committer ends when idle

    # --- control -------------------------------------------------------------------

    def start(self) -> None:
        self._committer.start()
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self._committer.is_alive()

    @property
    def pending(self) -> int:
        """Messages taken from the inbox and not yet committed: the batch filling and the
        batch being written."""
        return self._filling + self._writing

    def drain(self, timeout: float) -> bool:
        """Write what is in the inbox, then stop. False when the timeout ran out first
        (the rest stays unacknowledged: the broker redelivers it to the next start)."""
        until = time.monotonic() + timeout
        self._draining.set()
        self._thread.join(timeout)
        self._committer.join(max(0.0, until - time.monotonic()))
        if self._thread.is_alive() or self._committer.is_alive():
            self._abort.set()
            with self._turn:
                self._turn.notify_all()
            self._thread.join(10)
            self._committer.join(10)
        drained = not self.alive and self.pending == 0 and self._inbox.empty()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        return drained

    # --- the threads ---------------------------------------------------------------
    #
    # Two threads, one batch each: the writer thread takes messages from the inbox, parses
    # them and fills the next batch while the committer thread writes the previous one in
    # PostgreSQL. A batch is handed over only when the committer is idle, so the writer
    # holds at most two batches (one filling, one being written), they are committed one
    # after the other in the order taken, and their acks are released in that order.

    def _run(self) -> None:
        try:
            self._fill()
        finally:
            with self._turn:
                self._filled_all = True
                self._turn.notify_all()

    def _fill(self) -> None:
        batch: list[Parsed] = []
        urgent = False  # the batch holds a message that may raise an alarm: commit at once
        deadline = 0.0  # time.monotonic() by which the current batch is written
        flush_s = self._settings.ingest.flush_ms / 1000
        size = self._settings.ingest.batch_size
        inbox = self._inbox
        while not self._abort.is_set():
            if not batch:
                try:
                    item = inbox.get(timeout=0.05)
                except queue.Empty:
                    if self._draining.is_set() and inbox.empty():
                        return
                    continue
                deadline = self._deadline(item, flush_s)
                first = self._parse(item)
                urgent = self._urgent(first)
                batch.append(first)
            # Parsed as taken: the window's wait does the parsing, and shows the alarms.
            while len(batch) < size:
                try:
                    taken = self._parse(inbox.get_nowait())
                except queue.Empty:
                    break
                urgent = urgent or self._urgent(taken)
                batch.append(taken)
            self._filling = len(batch)
            full = len(batch) >= size
            if not full and not urgent and not self._draining.is_set():
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    # Let the window fill up without taking messages one by one: a writer
                    # blocked in inbox.get() is woken by every put (a thread switch per
                    # message). Look again every FILL_POLL_S, or at once when draining.
                    self._draining.wait(min(remaining, FILL_POLL_S))
                    continue
            with self._turn:
                if self._next is not None or self._writing:
                    # Due, but the previous batch is still being written: go on filling this
                    # one (it leaves with the next turn), or wait when it is full.
                    self._turn.wait(0.05 if full else FILL_POLL_S)
                    continue
                self._next = batch
                self._writing = len(batch)
                self._turn.notify_all()
            batch = []
            urgent = False
            self._filling = 0

    def _commit_batches(self) -> None:
        """The committer thread: writes the batches the writer thread hands over, in order."""
        while True:
            with self._turn:
                while self._next is None and not self._filled_all and not self._abort.is_set():
                    self._turn.wait()
                batch, self._next = self._next, None
                if batch is None:
                    return
            try:
                committed = self._write_parsed(batch)
            except Exception:  # a bug must not kill the writer; the batch is redelivered
                log.exception("unexpected error writing a batch of %d; left unacknowledged", len(batch))
                committed = False
                self._abandoned(len(batch))
                self._abort.wait(1.0)
            if not committed and self._abort.is_set():
                return  # aborted before its commit: it stays pending (unacknowledged)
            with self._turn:
                self._writing = 0
                self._turn.notify_all()

    def _urgent(self, parsed: Parsed) -> bool:
        """An operator waits for this one: a call, a report, a confident video alert, a
        sensor reading at its raise level (docs/ingest.md, *Alarms do not wait*)."""
        msg = parsed.msg
        return msg is not None and rules.may_alarm(
            msg, self._thresholds, video_confidence=self._settings.ingest.video_alarm_confidence)

    @staticmethod
    def _deadline(first: Delivery, flush_s: float) -> float:
        """When a batch that starts with ``first`` is due: ``INGEST_FLUSH_MS`` after that
        message was *received* (``received_at``, set by the network thread), not after the
        writer took it — a message that waited in the queue while the previous batch was
        written has used up part of its window already. Never later than a full window
        from now (a wall clock that stepped back cannot hold a batch up)."""
        now_mono = time.monotonic()
        waited = max(0.0, time.time() - first.received_at.timestamp())
        return now_mono + max(0.0, flush_s - waited)

    def write(self, batch: Sequence[Delivery]) -> bool:
        """Write one batch and queue its acks. False if aborted before commit."""
        return self._write_parsed([self._parse(item) for item in batch])

    def _write_parsed(self, parsed: list[Parsed]) -> bool:
        started = time.monotonic()
        outcome = self._commit_with_retry(parsed)
        if outcome is None:
            return False
        self._committed([p.item for p in parsed], outcome, time.monotonic() - started)
        return True

    def _committed(self, batch: Sequence[Delivery], outcome: Outcome, seconds: float) -> None:
        """After COMMIT: count, release the acks, wake the relay. A writer in a process of
        its own (``ingest.writerproc``) sends this to the receiving process instead."""
        record_commit(self._metrics, outcome, seconds, len(batch))
        for item in batch:
            if item.qos > 0:
                self._ack(item.generation, item.mid)
        if outcome.alarms and self._on_alarms is not None:
            self._on_alarms()

    def _db_error(self, kind: str) -> None:
        self._metrics.db_errors.labels(kind=kind).inc()

    def _abandoned(self, messages: int) -> None:
        """A batch of ``messages`` given up on: never acknowledged, so the broker must send
        them again (``on_abandoned``: the link reconnects)."""
        if self._on_abandoned is not None:
            self._on_abandoned()

    def _parse(self, item: Delivery) -> Parsed:
        if item.size > MAX_PAYLOAD_BYTES:  # the link kept only its head
            reason = f"payload of {item.size} bytes exceeds {MAX_PAYLOAD_BYTES}"
            self._bad(item, reason)
            return Parsed(item, None, reason, feed_label(item.topic))
        try:
            msg = parse_message(item.topic, item.payload, item.received_at, self._window)
        except ContractError as exc:
            self._bad(item, exc.reason)
            return Parsed(item, None, exc.reason, feed_label(item.topic))
        feed = str(msg.feed)
        # The row is built here too (the writer thread, while the committer waits for the
        # database) when the registry's cache knows what the message speaks for; else the
        # committer builds it after the batch's registry lookup.
        subject = subject_of(msg.payload)
        registration = None
        if subject is not None:
            known, registration = self._registry.cached(subject)
            if not known:
                return Parsed(item, msg, None, feed)
        return self._built(item, msg, feed, subject, registration)

    def _built(self, item: Delivery, msg: Message, feed: str, subject: Subject | None,
               registration: Registration | None) -> Parsed:
        """The message with its row, or a dead letter: another source's registered device
        or camera (``foreign_subject``), or text the database cannot store."""
        devices: DevicePositions = {}
        if registration is not None and subject is not None:
            foreign = foreign_subject(msg, {subject: registration.publisher})
            if foreign is not None:
                self._bad(item, foreign)
                return Parsed(item, None, foreign, feed)
            if subject[0] == "device_id":
                devices = {subject[1]: registration.position}
        place = place_of(msg, self._grid_deg, devices)
        try:
            table, row = row_for(msg, place)
        except Unstorable as exc:
            self._bad(item, exc.reason)
            return Parsed(item, None, exc.reason, feed)
        return Parsed(item, msg, None, feed, (place, table, row))

    def _bad(self, item: Delivery, reason: str) -> None:
        self._badlog.log(logging.WARNING, "bad message on %r: %s; payload %s", item.topic, reason,
                         truncated(item.payload))

    # --- database ------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=5,
                application_name=f"ingest {self._settings.ingest.client_id}"[:63],
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            )
            conn.execute(_STAGING)
            # Feed rows go in COPY's binary format (bench/ingest/ledger.py: 12.0 → 9.3 µs of
            # the writer's CPU per row to format them, the backend's the same).
            conn.adapters.register_dumper(None, JsonTextBinaryDumper)
            self._types = {
                table: [str(r[0]) for r in conn.execute(_COLUMN_TYPES, (list(columns), table))]
                for table, columns in TABLE_COLUMNS.items()
            }
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _commit_with_retry(self, parsed: list[Parsed]) -> Outcome | None:
        backoff = Backoff(base=0.1, cap=5.0)
        while not self._abort.is_set():
            try:
                return self._commit(self._connection(), parsed)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                # Connection lost, server restarting, deadlock, serialization: retry as is.
                self._db_error("retry")
                if self._conn is None or self._conn.broken or self._conn.closed:
                    self._drop_connection()
                delay = backoff.next_delay()
                log.warning("database unavailable (%s: %s); batch of %d retried in %.1f s",
                            type(exc).__name__, str(exc).strip()[:200], len(parsed), delay)
                self._abort.wait(delay)
            except Exception as exc:
                # The database refused the content of the batch (or our code choked on it):
                # find the message that causes it, and keep that one as a dead letter.
                if isinstance(exc, psycopg.Error):
                    self._db_error("refused")
                    reason = f"refused by the database: {type(exc).__name__}: {str(exc).strip()[:300]}"
                else:
                    self._db_error("ingest_error")
                    log.exception("error while writing a batch")
                    reason = f"ingest could not store it: {type(exc).__name__}: {str(exc).strip()[:300]}"
                if len(parsed) > 1:
                    log.error("%s; writing the batch of %d one by one", reason, len(parsed))
                    total = Outcome()
                    for one in parsed:
                        outcome = self._commit_with_retry([one])
                        if outcome is None:
                            return None
                        total.merge(outcome)
                    return total
                only = parsed[0]
                if only.msg is None:
                    # Even its dead letter is refused: not the message's fault (schema?).
                    delay = backoff.next_delay()
                    log.error("cannot write a dead letter (%s); retrying in %.1f s", reason, delay)
                    self._abort.wait(delay)
                    continue
                self._bad(only.item, reason)
                parsed = [Parsed(only.item, None, reason, only.feed)]
        return None

    def _commit(self, conn: psycopg.Connection, parsed: list[Parsed]) -> Outcome:
        settings = self._settings
        outcome = Outcome()
        dead: list[Parsed] = [p for p in parsed if p.msg is None]
        with conn.transaction(), conn.cursor() as cur:
            need = {
                s for p in parsed
                if p.built is None and p.msg is not None and (s := subject_of(p.msg.payload)) is not None
            }
            registry = self._registry.lookup(conn, need) if need else {}

            # (a) rows (those the writer thread could not build yet), foreign or unstorable →
            # dead letters, dedupe inside the batch
            seen: set[Key] = set()
            candidates: list[tuple[Message, Place, str, tuple[object, ...], Key, str]] = []
            for p in parsed:
                msg = p.msg
                if msg is None:
                    continue
                built = p.built
                if built is None:
                    subject = subject_of(msg.payload)
                    registration = None if subject is None else registry.get(subject)
                    p = self._built(p.item, msg, p.feed, subject, registration)
                    if p.built is None:
                        dead.append(p)
                        continue
                    built = p.built
                place, table, row = built
                key = (msg.topic.source, msg.payload.id)
                if key in seen:
                    outcome.counts[(p.feed, "duplicate")] += 1
                    continue
                seen.add(key)
                candidates.append((msg, place, table, row, key, p.feed))

            # (b) the ledger says which are new
            fresh: list[tuple[Message, Place, str, tuple[object, ...], Key, str]] = []
            if candidates:
                with cur.copy("COPY ingest_keys (source, msg_id, feed) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_KEY_TYPES)
                    write_row = copy.write_row
                    for c in candidates:
                        write_row((*c[4], c[5]))
                cur.execute(_LEDGER)
                new: set[Key] = {(r[0], r[1]) for r in cur.fetchall()}
                stored: Counter[str] = Counter()
                duplicate: Counter[str] = Counter()
                for c in candidates:
                    if c[4] in new:
                        stored[c[5]] += 1
                        fresh.append(c)
                    else:
                        duplicate[c[5]] += 1
                for feed, n in stored.items():
                    outcome.counts[(feed, "stored")] += n
                for feed, n in duplicate.items():
                    outcome.counts[(feed, "duplicate")] += n

            # (c) feed rows
            by_table: dict[str, list[tuple[object, ...]]] = defaultdict(list)
            for c in fresh:
                by_table[c[2]].append(c[3])
            for table, rows in by_table.items():
                stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, TABLE_COLUMNS[table]))
                )
                with cur.copy(stmt) as copy:
                    copy.set_types(self._types[table])
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)

            # (d) dead letters
            if dead:
                cap = settings.ingest.dead_letter_raw_cap
                with cur.copy(
                    "COPY dead_letter (received_at, topic, payload, payload_size, reason, exercise_id)"
                    " FROM STDIN"
                ) as copy:
                    for p in dead:
                        copy.write_row((p.item.received_at, _clean(p.item.topic), p.item.payload[:cap],
                                        p.item.size, _clean(p.reason or "unreadable"),
                                        topic_exercise_id(p.item.topic)))
                        outcome.counts[(p.feed, "dead_letter")] += 1

            # (e, f) alarms
            new_alarms = self._alarms(cur, [(c[0], c[1]) for c in fresh])
            if new_alarms:
                new_alarms.sort(key=lambda a: a.ts)
                cur.execute(_OUTBOX, (
                    [a.alarm_id for a in new_alarms],
                    [a.encode().decode() for a in new_alarms],
                ))
                outcome.alarms.update(r[0] for r in cur.fetchall())
        return outcome

    def _alarms(self, cur: psycopg.Cursor[Any],
                fresh: list[tuple[Message, Place]]) -> list[Alarm]:
        found: list[Alarm] = []
        readings: dict[StateKey, list[tuple[Message, Place]]] = defaultdict(list)
        hot: set[StateKey] = set()  # a reading at its raise level: the state may be raised
        thresholds = self._thresholds
        for msg, place in fresh:
            p = msg.payload
            if isinstance(p, SensorReading):
                t = thresholds.get(p.kind)
                if t is not None:
                    key = (msg.topic.exercise_id or LIVE_SCOPE, msg.topic.source_id, p.device_id, p.kind)
                    readings[key].append((msg, place))
                    if p.value >= t.raise_at:
                        hot.add(key)
                continue
            confidence = self._settings.ingest.video_alarm_confidence
            alarm = rules.message_alarm(msg, place, video_confidence=confidence)
            if alarm is not None:
                found.append(alarm)
        if not readings:
            return found

        keys = sorted(readings)
        if hot:
            ensure = sorted(hot)
            cur.execute(_STATE_ENSURE, (NEVER, *([k[i] for k in ensure] for i in range(4))))
        cur.execute(_STATE_LOCK, (orjson.dumps([(*k, k in hot) for k in keys]).decode(),))
        state: dict[StateKey, tuple[bool, float]] = {
            (str(r[0]), str(r[1]), str(r[2]), str(r[3])): (bool(r[4]), float(r[5])) for r in cur.fetchall()
        }
        changed: list[tuple[str, str, str, str, bool, datetime]] = []
        for key in keys:
            if key not in state:
                continue  # neither raised nor hot: below the raise level nothing changes
            raised, changed_epoch = state[key]
            threshold = thresholds[key[3]]
            changed_at: datetime | None = None
            pairs = readings[key]
            if len(pairs) > 1:
                pairs.sort(key=lambda mp: (_state_time(mp[0]), mp[0].ts))  # stable: as the original sorted()
            for msg, place in pairs:
                at = _state_time(msg)
                if at.timestamp() < changed_epoch:
                    continue  # older than the last change (late delivery): no say in the state
                assert isinstance(msg.payload, SensorReading)
                after, fires = rules.step(raised, msg.payload.value, threshold)
                if fires:
                    found.append(rules.sensor_alarm(msg, place, threshold))
                if after != raised:
                    raised, changed_at, changed_epoch = after, at, at.timestamp()
            if changed_at is not None:
                changed.append((*key, raised, changed_at))
        if changed:
            cur.execute(_STATE_UPDATE, tuple(list(col) for col in zip(*changed, strict=True)))
        return found
