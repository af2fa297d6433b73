"""The writer in a process of its own: receiving and storing run on two GILs.

The receiving process keeps the MQTT link (its network thread), the alarm relay, the
maintenance and the metrics. :class:`WriterProcess` is its face of the writer — the same
as :class:`ingest.writer.BatchWriter`'s (``start``, ``alive``, ``pending``, ``drain``) —
and runs two threads:

- *feeder* (``ingest-feeder``): takes what the link put into its inbox and sends it,
  a chunk at a time, down a pipe to the writer process — as columns (topics, payloads,
  receipt times, sizes: one pickle of a few lists, not one tuple per message) — and keeps
  the chunk's Deliveries, in order, until the writer reports them;
- *results* (``ingest-results``): reads what the writer process reports back — the next
  *n* messages committed (with the batch's counts and alarm kinds), a database error, the
  next *n* given up on — and applies it: ``link.ack_mid`` for each of those *n* kept
  Deliveries, the metrics, the relay's wake-up. The writer takes its messages in the
  order they were sent and commits its batches one after the other, so a count says
  which: no packet ids go back and forth.

The writer process (:func:`writer_main`, ``multiprocessing`` *spawn*) runs an unchanged
:class:`~ingest.writer.BatchWriter` over its own inbox: parse, batch, one transaction,
and only after COMMIT the report that releases the PUBACKs. So "acknowledged only after
commit" holds across the pipe, and nothing the writer process had taken is acknowledged
if it dies.

**The writer process dying** (killed, out of memory, a crash): the results thread reads
end-of-file, asks the link to reconnect (``request_redelivery``: the broker resends
every unacknowledged message on the new connection, with new packet ids; the acks of the
old connection still in flight are dropped as stale), and starts a new writer process
after a jittered back-off (``ingest_writer_restarts_total``). Redelivered messages that
the dead writer had committed are duplicates for the ledger. The receiving process
itself dying (kill -9) closes the pipe: the writer process reads end-of-file and exits;
its uncommitted batch is rolled back with its connection, and nothing of it was acked.
"""

from __future__ import annotations

import array
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from ingest.metrics import IngestMetrics
from ingest.writer import AckFn, BatchWriter, Inbox, Outcome, record_commit
from wuwang.mqtt import Backoff
from wuwang.mqttlink import Delivery
from wuwang.service import setup_logging
from wuwang.settings import Settings

log = logging.getLogger(__name__)

#: After the first message of a chunk, the feeder lets the inbox fill this long before it
#: sends: one pipe write per few hundred messages at full rate, not one per message.
FORWARD_POLL_S = 0.002
#: Messages per pipe write, at most.
CHUNK = 1000

#: A writer process that lived this long was not crash-looping: its successor starts
#: after the shortest back-off again.
STABLE_S = 30.0

#: A chunk on the pipe, as columns: ("msgs", topics, payloads, receipt times (an
#: ``array("d")`` of epoch seconds, as bytes), sizes). What the writer needs and nothing
#: else: packet ids, connection generations and QoS stay with the receiving process, which
#: acknowledges. Pickling a datetime per message cost more than the rest of the hand-over.
Chunk = tuple[str, list[str], list[bytes], bytes, list[int]]
Committed = Callable[[list[Delivery]], None]


def _chunk(deliveries: Sequence[Delivery]) -> Chunk:
    stamps = array.array("d", [d.received_at.timestamp() for d in deliveries])
    return ("msgs", [d.topic for d in deliveries], [d.payload for d in deliveries], stamps.tobytes(),
            [d.size for d in deliveries])


def _deliveries(chunk: Chunk) -> list[Delivery]:
    """The writer process's side of ``_chunk`` (the receipt time exact to the microsecond:
    a double holds today's epoch seconds to 0.24 µs). mid, generation and QoS are the
    receiving process's; here they are placeholders nobody reads."""
    _, topics, payloads, raw_stamps, sizes = chunk
    stamps = array.array("d")
    stamps.frombytes(raw_stamps)
    at = datetime.fromtimestamp
    return [Delivery(topic, payload, at(stamp, UTC), 1, 0, 0, size)
            for topic, payload, stamp, size in zip(topics, payloads, stamps, sizes, strict=True)]


class ChunkInbox:
    """The writer process's inbox: filled a chunk at a time from the pipe, read one message
    at a time by the writer thread (``Inbox``) — a deque and an event, instead of a
    ``queue.Queue``'s lock and condition taken twice per message."""

    def __init__(self) -> None:
        self._items: deque[Delivery] = deque()
        self._filled = threading.Event()

    def put_chunk(self, items: Sequence[Delivery]) -> None:
        self._items.extend(items)
        self._filled.set()

    def get_nowait(self) -> Delivery:
        try:
            return self._items.popleft()
        except IndexError:
            raise queue.Empty from None

    def get(self, block: bool = True, timeout: float | None = None) -> Delivery:
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self._items.popleft()
            except IndexError:
                if not block:
                    raise queue.Empty from None
            self._filled.clear()
            if self._items:  # filled between the popleft and the clear
                continue
            left = None if until is None else until - time.monotonic()
            if (left is not None and left <= 0) or not self._filled.wait(left):
                raise queue.Empty

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


# --- the writer process ------------------------------------------------------------


class PipedWriter(BatchWriter):
    """A BatchWriter whose commits, database errors and given-up batches are reported to
    the receiving process through ``conn`` (which releases the acks and keeps the metrics)."""

    def __init__(self, settings: Settings, inbox: Inbox, conn: Connection) -> None:
        self._pipe = conn
        self._send_lock = threading.Lock()
        super().__init__(settings, inbox, lambda _g, _m: None, IngestMetrics())

    def report(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._pipe.send(message)

    def _committed(self, batch: Sequence[Delivery], outcome: Outcome, seconds: float) -> None:
        # The next len(batch) messages in the order they came: the receiving process acks them.
        self.report(("committed", len(batch), dict(outcome.counts), dict(outcome.alarms), seconds))

    def _db_error(self, kind: str) -> None:
        self.report(("db_error", kind))

    def _abandoned(self, messages: int) -> None:
        self.report(("abandoned", messages))


def writer_main(settings: Settings, conn: Connection, log_level: int) -> None:
    """The writer process: Deliveries in, reports out, until told to drain or the
    receiving process has gone (end-of-file: exit without acknowledging anything)."""
    from ingest.service import tune_gc  # here: ingest.service imports this module

    # The receiving process decides when to stop (and sends "drain"): a Ctrl-C or a
    # SIGTERM to the whole process group must not kill the writer under its drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging("ingest-writer", logging.getLevelName(log_level))
    inbox = ChunkInbox()
    writer = PipedWriter(settings, inbox, conn)
    tune_gc()
    writer.start()
    writer.report(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the receiving process is gone: its connection and our acks with it
        if message[0] == "msgs":
            inbox.put_chunk(_deliveries(message))
        elif message[0] == "drain":
            drained = writer.drain(float(message[1]))
            with contextlib.suppress(OSError):
                writer.report(("drained", drained))
            return


# --- the receiving process's side --------------------------------------------------


class WriterProcess:
    """The writer of an ingest worker, in a child process; the face IngestService uses."""

    def __init__(self, settings: Settings, inbox: queue.Queue[Delivery], ack: AckFn, metrics: IngestMetrics,
                 *, on_alarms: Callable[[], None] | None = None,
                 on_abandoned: Callable[[], None] | None = None) -> None:
        if not settings.shared.database_url:
            raise ValueError("DATABASE_URL is not set")
        self._settings = settings
        self._inbox = inbox
        self._ack = ack
        self._metrics = metrics
        self._on_alarms = on_alarms
        self._on_abandoned = on_abandoned
        #: Called with the Deliveries of each committed batch, in the results thread
        #: (the benchmark's latency probe).
        self.on_committed: Committed | None = None
        #: Sent to the current writer process and not yet reported, in the order sent.
        self._sent: deque[Delivery] = deque()
        self._ctx = multiprocessing.get_context("spawn")  # fork would copy the threads' locks
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._conn_lock = threading.Lock()
        self._ready = threading.Event()
        self._up = threading.Event()  # a writer process is there to take messages
        self._draining = threading.Event()
        self._drained = threading.Event()
        self._drained_ok = False
        self._stopped = threading.Event()
        self._drain_until = 0.0
        self._spawned_at = 0.0
        self._restart_backoff = Backoff(base=0.5, cap=10.0)
        self._feeder = threading.Thread(target=self._feed, name="ingest-feeder", daemon=True)
        self._results = threading.Thread(target=self._read_results, name="ingest-results", daemon=True)

    # --- control -------------------------------------------------------------------

    def start(self) -> None:
        self._spawn()
        self._feeder.start()
        self._results.start()

    @property
    def alive(self) -> bool:
        return self._feeder.is_alive() and self._results.is_alive()

    @property
    def pid(self) -> int | None:
        """The writer process's pid (None between a death and the restart)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    @property
    def pending(self) -> int:
        """Messages sent to the writer process and not yet committed."""
        return len(self._sent)

    def wait_ready(self, timeout: float) -> bool:
        """True once the (current) writer process has started and reported in."""
        return self._ready.wait(timeout)

    def drain(self, timeout: float) -> bool:
        """Write what is in the inbox, then stop the writer process. False when the
        timeout ran out first (the rest stays unacknowledged for the broker to redeliver)."""
        until = self._drain_until = time.monotonic() + timeout
        self._draining.set()
        self._feeder.join(max(0.0, until - time.monotonic()))
        self._drained.wait(max(0.0, until - time.monotonic()))
        self._stopped.set()
        proc = self._proc
        if proc is not None:
            proc.join(max(1.0, until - time.monotonic()))
            if proc.is_alive():
                log.warning("writer process %s did not stop; killing it", proc.pid)
                proc.kill()
                proc.join(5)
        self._results.join(5)
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
        return self._drained_ok and self.pending == 0 and self._inbox.empty()

    # --- the writer process's life ---------------------------------------------------

    def _spawn(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=writer_main, name="ingest-writer", daemon=True,
                                 args=(self._settings, child, logging.getLogger().getEffectiveLevel()))
        self._ready.clear()
        self._spawned_at = time.monotonic()
        proc.start()
        child.close()  # ours is closed: end-of-file reaches us when the writer dies
        with self._conn_lock:
            self._conn = parent
            self._proc = proc
            self._sent.clear()  # the dead one's: unacknowledged, the broker resends them
        self._up.set()

    def _restart(self) -> None:
        self._up.clear()  # the feeder holds what it takes until the new writer is there
        proc = self._proc
        code = None
        if proc is not None:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            code = proc.exitcode
        lost = self.pending
        self._metrics.writer_restarts.inc()
        if time.monotonic() - self._spawned_at > STABLE_S:
            self._restart_backoff.reset()  # not a crash loop: start again soon
        # What it had taken is unacknowledged: a new connection makes the broker resend it.
        if self._on_abandoned is not None:
            self._on_abandoned()
        delay = self._restart_backoff.next_delay()
        log.error("writer process ended (exit code %s) with %d messages uncommitted; the broker "
                  "redelivers them; a new writer process starts in %.1f s", code, lost, delay)
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
        if self._stopped.wait(delay):
            return
        self._spawn()

    # --- threads -------------------------------------------------------------------

    def _feed(self) -> None:
        inbox = self._inbox
        # The writer process holds at most two batches (one being written, one filling): the
        # rest waits in the link's bounded inbox, whose being full is what pauses reading from
        # the broker (back-pressure, docs/ingest.md) — an unbounded pipe would hide it.
        backlog = 2 * self._settings.ingest.batch_size
        while True:
            room = backlog - self.pending
            if room <= 0:
                if self._stopped.wait(FORWARD_POLL_S):
                    return
                continue
            try:
                first = inbox.get(timeout=0.05)
            except queue.Empty:
                if self._draining.is_set() and inbox.empty():
                    self._send(("drain", max(1.0, self._drain_until - time.monotonic())))
                    return
                continue
            if not self._draining.is_set():
                time.sleep(FORWARD_POLL_S)
            chunk = [first, *_take(inbox, min(CHUNK, room) - 1)]
            wire = _chunk(chunk)
            while not self._up.wait(0.5):  # between a death and the restart: keep the chunk
                if self._stopped.is_set():
                    return
            if not self._send(wire, chunk) and self._on_abandoned is not None:
                # The writer process died under our feet: these are unacknowledged, and the
                # link's next connection brings them again.
                self._on_abandoned()

    def _send(self, message: tuple[Any, ...], chunk: Sequence[Delivery] = ()) -> bool:
        """Down the pipe to the current writer process; False when it is gone."""
        with self._conn_lock:  # one writer to the pipe, and never across a restart
            conn = self._conn
            if conn is None:
                return False
            # Kept before sending: the writer's report may be read before send() returns. If
            # the writer is gone, its successor's _spawn empties this (under the same lock).
            self._sent.extend(chunk)
            try:
                conn.send(message)
            except (OSError, ValueError):
                return False
        return True

    def _read_results(self) -> None:
        while True:
            conn = self._conn
            try:
                if conn is None:
                    raise EOFError
                message = conn.recv()
            except (EOFError, OSError, ValueError):
                if self._stopped.is_set() or self._drained.is_set():
                    return
                if self._draining.is_set() and not self._feeder.is_alive():
                    self._drained.set()  # died while draining: the rest is redelivered
                    return
                self._restart()
                if self._stopped.is_set():
                    return
                continue
            self._handle(message)

    def _handle(self, message: tuple[Any, ...]) -> None:
        what = message[0]
        if what == "committed":
            _, n, counts, alarms, seconds = message
            batch = self._reported(n)
            record_commit(self._metrics, Outcome(Counter(counts), Counter(alarms)), seconds, n)
            ack = self._ack
            for d in batch:
                if d.qos > 0:
                    ack(d.generation, d.mid)
            if self.on_committed is not None:
                self.on_committed(batch)
            if alarms and self._on_alarms is not None:
                self._on_alarms()
        elif what == "db_error":
            self._metrics.db_errors.labels(kind=message[1]).inc()
        elif what == "abandoned":
            self._reported(message[1])  # never acknowledged: the broker sends them again
            if self._on_abandoned is not None:
                self._on_abandoned()
        elif what == "ready":
            self._ready.set()
            log.info("writer process %s started", message[1])
        elif what == "drained":
            self._drained_ok = bool(message[1])
            self._drained.set()

    def _reported(self, n: int) -> list[Delivery]:
        """The next ``n`` messages sent, which the writer process has just reported on."""
        sent = self._sent
        return [sent.popleft() for _ in range(min(n, len(sent)))]


def _take(inbox: queue.Queue[Delivery], n: int) -> list[Delivery]:
    """Up to ``n`` messages from the link's inbox at once: one turn of its lock, not one per
    message (``queue.Queue``'s own ``mutex``, ``queue`` and ``not_full``: what ``get``
    does, for a run of messages). Its producer waiting for room is woken as ``get`` would."""
    with inbox.mutex:
        items = inbox.queue
        taken = [items.popleft() for _ in range(min(n, len(items)))]
        if taken:
            inbox.not_full.notify(len(taken))
    return taken
