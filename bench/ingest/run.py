"""Ingest benchmark: MQTT → PostgreSQL, against baselines taken in the same run.

``python -m bench.ingest`` starts a private
Mosquitto from the project's configuration on a free port, creates a fresh database on
the local PostgreSQL (or DATABASE_URL's server, or an embedded one), migrates it, loads
the demo city (device registry), and measures on that one machine and broker:

1. **raw COPY** of pre-built rows into the feed tables, in transactions of the writer's
   batch size (and, for reference, in one transaction);
2. **row-by-row INSERT** of the same rows: one transaction per message (what an ingest
   that stores each message as it arrives does) and 1,000 per transaction;
3. **the writer stage alone**: ``ingest.writer.BatchWriter`` — parse, ledger, COPY,
   hysteresis, outbox, commit — fed pre-received messages through its inbox, no MQTT;
4. **bare paho**: an empty-callback QoS 1 subscriber fed by several ``mosquitto_pub -l``;
5. **full pipeline**, one ingest worker: the same publishers → rows counted in PostgreSQL;
6. **two ingest workers** in one ``$share`` group;
7. **latency** publish → committed at half the one-worker rate (publish time embedded in
   each payload, commit time recorded by the worker after the writer's COMMIT).

Each throughput stage runs ``--repeat`` times (interleaved with the others) and the best
run counts. Then it prints a table and writes its section of docs/benchmarks.md. Sizes
fit a 2-core machine (the whole run takes about two minutes); ``--quick`` is smaller.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import queue
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import psycopg
from psycopg import sql

from bench.common import (
    BENCHMARKS_MD,
    REPO_ROOT,
    Machine,
    OtherJobs,
    children_cpu_s,
    create_scratch_database,
    describe_machine,
    drop_scratch_database,
    fmt_load,
    fmt_rate,
    fmt_ratio,
    load_average,
    percentile,
    private_redis,
    process_cpu_s,
    speed_gauge,
    table,
    utc_now,
    wait_until_quiet,
    write_section,
)
from bench.ingest.data import (
    SIM_RATE,
    SIM_TIME_SCALE,
    Stream,
    build_stream,
    device_positions,
    inbound,
    prebuilt_rows,
)
from ingest.metrics import IngestMetrics
from ingest.rows import TABLE_COLUMNS
from ingest.service import tune_gc
from ingest.subscriber import Inbound
from ingest.writer import BatchWriter
from wuwang.city import City, build_city, load_city
from wuwang.contract import PAYLOAD_MODELS, parse_message, parse_topic
from wuwang.endpoints import Endpoints, LocalServices, ManagedProcess, mosquitto_binary
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS
from wuwang.settings import Settings

#: The ingest's batch window as shipped (``INGEST_FLUSH_MS``), which the pipeline stages run with.
FLUSH_MS = Settings().ingest.flush_ms

FEED_TABLES = tuple(TABLE_COLUMNS)
RESET_TABLES = (*FEED_TABLES, "message_ledger", "dead_letter", "alarm_outbox", "sensor_alarm_state")

TARGETS = {
    "writer_vs_copy": 0.5,
    "writer_vs_insert": 10.0,
    "pipeline_vs_paho": 0.8,
    "two_vs_one": 1.5,
    "latency_p99_ms": 150.0,
}


@dataclass(frozen=True)
class Config:
    copy_rows: int = 100_000  # raw COPY and the writer stage
    insert_rows: int = 5_000  # row-by-row INSERT (rate extrapolated)
    mqtt_messages: int = 60_000  # bare paho and the pipeline stages
    latency_seconds: float = 10.0
    repeat: int = 2  # each throughput stage runs this often; the best run counts
    sensor_publishers: int = 3  # mosquitto_pub processes for sensor topics (others: one per kind)
    inflight: int = 100  # mosquitto_pub -M
    batch: int = 1000  # the ingest's INGEST_BATCH_SIZE (the default)
    seed: int = 7
    stage_timeout_s: float = 180.0
    poll_s: float = 0.1
    # A run during which other jobs used more than this many cores is disturbed: wait for a
    # quieter moment and run it again (at most ``retries`` times; the last attempt stands).
    max_others: float = 0.5
    retries: int = 2

    @property
    def stream_size(self) -> int:
        return max(self.copy_rows, self.insert_rows, self.mqtt_messages)


QUICK = Config(copy_rows=20_000, insert_rows=1_000, mqtt_messages=15_000, latency_seconds=4.0, repeat=1)


@dataclass
class Stage:
    key: str
    what: str
    messages: int
    seconds: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    runs: list[float] = field(default_factory=list)  # msg/s of every run (best first kept in rate)
    cpu_us: dict[str, float] = field(default_factory=dict)  # component → CPU µs per message
    others: float = float("nan")  # cores used by other jobs during the best run
    lock_wait: float = float("nan")  # share of sampled writer backends waiting for a lock
    threads_us: dict[str, float] = field(default_factory=dict)  # worker thread → CPU µs per message

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class Latency:
    rate: float  # msg/s offered
    achieved: float
    messages: int
    stored_ms: list[float]
    received_ms: list[float]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    batches: int = 0
    batch_size_p50: float = float("nan")
    newest_wait_ms_p50: float = float("nan")  # last message received → its batch committed
    oldest_wait_ms_p50: float = float("nan")  # first message received → its batch committed
    others: float = float("nan")  # cores other jobs used while publishing

    def p(self, which: str, q: float) -> float:
        return percentile(self.stored_ms if which == "stored" else self.received_ms, q)


@dataclass
class Results:
    config: Config
    machine: Machine
    feeds: dict[str, int]
    stages: dict[str, Stage] = field(default_factory=dict)
    latency: Latency | None = None
    parse_us: float = float("nan")  # wuwang.contract.parse_message per message, measured alone
    validate_us: float = float("nan")  # of which msgspec's decode of the payload struct
    row_us: float = float("nan")  # parse + row building per message
    load_at_end: tuple[float, float, float] | None = None
    gauge_at_end: float = float("nan")
    elapsed_s: float = 0.0

    def rate(self, key: str) -> float:
        stage = self.stages.get(key)
        return stage.rate if stage else float("nan")

    def ratio(self, a: str, b: str) -> float:
        return self.rate(a) / self.rate(b)


# --- the rig: services, database, processes ---------------------------------------------


class Rig:
    """A private Mosquitto, a fresh migrated database, Redis; what the stages share."""

    def __init__(
        self,
        cfg: Config,
        endpoints: Endpoints | None = None,
        broker_pid: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self._given = endpoints
        self._services: LocalServices | None = None
        self._redis: ManagedProcess | None = None
        self._own_tmp = workdir is None
        self.tmp = workdir or Path(tempfile.mkdtemp(prefix="wuwang-bench-"))
        self.tmp.chmod(0o755)
        self.broker_pid = broker_pid
        self.db_name = f"wuwang_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.endpoints: Endpoints
        self.db_url = ""
        self.admin_url = ""
        self.city: City | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._n = 0

    # -- lifecycle

    def __enter__(self) -> Rig:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if shutil.which("mosquitto_pub") is None or mosquitto_binary() is None:
            raise RuntimeError(
                "the benchmark needs mosquitto and mosquitto_pub (apt-get install mosquitto "
                "mosquitto-clients)"
            )
        if self._given is None:
            base = Settings(demo_mode=True, data_dir=self.tmp)
            self._services = LocalServices(base, database_name="postgres", broker_mode="private")
            self.endpoints, self._redis = private_redis(self._services.start(), self.tmp)
            if self._services.broker_process is not None and self._services.broker_process.proc is not None:
                self.broker_pid = self._services.broker_process.proc.pid
        else:
            self.endpoints = self._given
        if self.endpoints.broker != "mosquitto":
            raise RuntimeError(f"the benchmark needs a Mosquitto broker, not {self.endpoints.broker}")
        self.admin_url, self.db_url = create_scratch_database(self.endpoints.database_url, self.db_name)

    def load_city(self, city: City) -> None:
        self.city = city
        with psycopg.connect(self.db_url) as conn:
            load_city(conn, city)

    def register_gateways(self, gateways: dict[str, str], platforms: dict[str, str]) -> None:
        """Register each sensor behind the gateway, and each camera behind the video
        platform, the stream publishes it from (the ingest takes a registered device's
        readings and a registered camera's alerts from its publisher only)."""
        with psycopg.connect(self.db_url) as conn, conn.cursor() as cur:
            cur.executemany("UPDATE device SET gateway_id = %s WHERE id = %s",
                            [(g, d) for d, g in gateways.items()])
            cur.executemany("UPDATE camera SET gateway_id = %s WHERE id = %s",
                            [(p, c) for c, p in platforms.items()])

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            close_pipes(proc)
        self._procs.clear()
        if self.admin_url:
            drop_scratch_database(self.admin_url, self.db_name)
        if self._redis is not None:
            self._redis.stop()
        if self._services is not None:
            self._services.stop()
        if self._own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- database

    def settings(self, client_id: str = "bench-writer", **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "demo_mode": True,
            "database_url": self.db_url,
            "redis_url": self.endpoints.redis_url,
            "mqtt_url": self.endpoints.mqtt_url_for("ingest"),
            "ingest_client_id": client_id,
            "ingest_batch_size": self.cfg.batch,
        }
        values.update(overrides)
        return Settings(**values)

    def reset(self) -> None:
        """Empty feed tables, ledger and alarm state; checkpoint, so that every stage starts
        from the same state (the first change of a page after a checkpoint is WAL-logged
        in full)."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, RESET_TABLES))))
            conn.execute("ANALYZE")
            with contextlib.suppress(psycopg.Error):  # needs superuser or pg_checkpoint
                conn.execute("CHECKPOINT")

    def stored(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM message_ledger").fetchone()
        return int(row[0]) if row else 0

    def feed_rows(self) -> int:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            total = 0
            for t in FEED_TABLES:
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()
                total += int(row[0]) if row else 0
            dead = conn.execute("SELECT count(*) FROM dead_letter").fetchone()
        if dead and dead[0]:
            raise RuntimeError(f"{dead[0]} messages were dead-lettered: the benchmark's payloads are wrong")
        return total

    def backend_cpu_s(self, conn: psycopg.Connection[Any]) -> float:
        """CPU seconds of this database's server processes other than ``conn``'s own
        (only meaningful when PostgreSQL runs on this machine)."""
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        return sum(process_cpu_s(p) or 0.0 for p in pids)

    def writer_waits(self, conn: psycopg.Connection[Any]) -> tuple[int, int]:
        """(writer backends waiting for a lock, writer backends) right now: the writers'
        connections are named ``ingest <client id>`` (the relay's and maintenance's are not)."""
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'ingest bench-%'"
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def broker_cpu_s(self) -> float | None:
        return process_cpu_s(self.broker_pid) if self.broker_pid else None

    # -- processes

    def _spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        stdin: IO[bytes] | int | None = None,
        log: str,
    ) -> subprocess.Popen[bytes]:
        logf = (self.tmp / log).open("ab")
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=logf,
            env=env,
            cwd=REPO_ROOT,
        )
        logf.close()
        self._procs.append(proc)
        return proc

    def log_tail(self, log: str, lines: int = 20) -> str:
        path = self.tmp / log
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def publishers(self, files: Sequence[tuple[str, Path, int]]) -> list[subprocess.Popen[bytes]]:
        """One ``mosquitto_pub -l`` per file, each on its own topic, QoS 1, MQTT 5."""
        procs = []
        for topic, path, _lines in files:
            with path.open("rb") as fh:
                procs.append(self._spawn(self._pub_argv(topic), stdin=fh, log="mosquitto_pub.log"))
        return procs

    def pipe_publishers(self, topics: Sequence[str]) -> list[subprocess.Popen[bytes]]:
        return [
            self._spawn(self._pub_argv(t), stdin=subprocess.PIPE, log="mosquitto_pub.log") for t in topics
        ]

    def _pub_argv(self, topic: str) -> list[str]:
        self._n += 1
        binary = shutil.which("mosquitto_pub") or "mosquitto_pub"
        m = self.endpoints.target_for("simulator")  # a service: its own client id per publisher
        return [
            binary,
            "-h",
            m.host,
            "-p",
            str(m.port),
            "-u",
            "simulator",
            "-P",
            DEMO_MQTT_ACCOUNTS["simulator"],
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-M",
            str(self.cfg.inflight),
            "-i",
            f"bench-pub-{os.getpid()}-{self._n}",
            "-t",
            topic,
            "-l",
            "--quiet",
        ]

    def sink(self, count: int) -> subprocess.Popen[bytes]:
        m = self.endpoints.target_for("ingest")
        proc = self._spawn(
            [
                sys.executable,
                "-m",
                "bench.ingest.sink",
                "--host",
                m.host,
                "--port",
                str(m.port),
                "--count",
                str(count),
                "--timeout",
                str(self.cfg.stage_timeout_s),
            ],
            env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
            log="sink.log",
        )
        ready = read_json(proc, 30)
        if not ready.get("ready"):
            raise RuntimeError(f"paho sink not ready: {ready}; {self.log_tail('sink.log')}")
        return proc

    def workers(
        self, n: int, label: str, *, latency_out: Path | None = None
    ) -> list[subprocess.Popen[bytes]]:
        """``n`` ingest workers in one fresh ``$share`` group, each ready (subscribed)."""
        group = f"bench-{label}-{secrets.token_hex(2)}"
        procs = []
        for i in range(n):
            env = os.environ | {
                "PYTHONPATH": str(REPO_ROOT),
                "DEMO_MODE": "1",
                "DATABASE_URL": self.db_url,
                "REDIS_URL": self.endpoints.redis_url,
                "MQTT_URL": self.endpoints.mqtt_url_for("ingest"),
                "MQTT_PROTOCOL": "5",
                "INGEST_CLIENT_ID": f"{group}-{i}",
                "INGEST_SHARED_GROUP": group,
                "INGEST_METRICS_PORT": "0",
                "INGEST_BATCH_SIZE": str(self.cfg.batch),
                "INGEST_SESSION_EXPIRY_S": "300",
                "ALARM_STREAM": f"bench:alarms:{os.getpid()}",
                "ALARM_STREAM_MAXLEN": "10000",
                "LOG_LEVEL": "WARNING",
            }
            if latency_out is not None:
                env["BENCH_LATENCY_OUT"] = str(latency_out)
            procs.append(
                self._spawn([sys.executable, "-m", "bench.ingest.worker"], env=env, log="worker.log")
            )
        for proc in procs:
            ready = read_json(proc, 60)
            if not ready.get("ready"):
                raise RuntimeError(f"ingest worker not ready: {ready}; {self.log_tail('worker.log')}")
        return procs


def read_json(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The next JSON line the process prints on stdout ({} on timeout or exit)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                continue
            line = proc.stdout.readline()
            if not line:
                return {}
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    return parsed
        return {}
    finally:
        sel.close()


def stop(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 60) -> list[dict[str, Any]]:
    """SIGTERM, then each one's last JSON line."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    out = []
    for p in procs:
        out.append(read_json(p, timeout))
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return out


def close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def wait_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(max(0.1, deadline - time.monotonic()))
        if p.returncode != 0:
            raise RuntimeError(f"{p.args!r} exited with {p.returncode}")


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


# --- database stages -----------------------------------------------------------------------


Row = tuple[str, tuple[object, ...]]


@dataclass(frozen=True)
class Run:
    seconds: float  # the timed part
    cpu_us: dict[str, float]  # component → CPU µs per message
    others: float  # cores other jobs used meanwhile (bench.common.OtherJobs)
    lock_wait: float = float("nan")  # share of sampled writer backends waiting for a lock
    threads_us: dict[str, float] = field(default_factory=dict)  # worker thread → CPU µs per message


def _copy_stmt(table: str) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, TABLE_COLUMNS[table]))
    )


def _insert_stmt(table: str) -> sql.Composed:
    cols = TABLE_COLUMNS[table]
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )


def _grouped(rows: Sequence[Row]) -> list[tuple[str, list[tuple[object, ...]]]]:
    by: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    for tbl, row in rows:
        by[tbl].append(row)
    return list(by.items())


def raw_copy(rig: Rig, rows: Sequence[Row], batch: int | None) -> Run:
    """COPY ``rows`` in transactions of ``batch`` rows (None: one)."""
    rig.reset()
    chunks = [_grouped(c) for c in _chunks(rows, batch or len(rows))]
    stmts = {t: _copy_stmt(t) for t in FEED_TABLES}
    with psycopg.connect(rig.db_url, autocommit=True) as conn, OtherJobs(rig.db_name) as other:
        t0 = time.perf_counter()
        for chunk in chunks:
            with conn.transaction(), conn.cursor() as cur:
                for table, trows in chunk:
                    with cur.copy(stmts[table]) as copy:
                        for r in trows:
                            copy.write_row(r)
        seconds = time.perf_counter() - t0
    stored = rig.feed_rows()
    if stored != len(rows):
        raise RuntimeError(f"raw COPY stored {stored} of {len(rows)} rows")
    return Run(seconds, {}, other.cores)


def row_insert(rig: Rig, rows: Sequence[Row], per_transaction: int) -> Run:
    """Seconds to INSERT ``rows`` one statement per row, ``per_transaction`` per commit."""
    rig.reset()
    stmts = {t: _insert_stmt(t) for t in FEED_TABLES}
    with psycopg.connect(rig.db_url, autocommit=True) as conn, OtherJobs(rig.db_name) as other:
        t0 = time.perf_counter()
        if per_transaction <= 1:
            for table, row in rows:
                conn.execute(stmts[table], row)
        else:
            for chunk in _chunks(rows, per_transaction):
                with conn.transaction():
                    for table, row in chunk:
                        conn.execute(stmts[table], row)
        seconds = time.perf_counter() - t0
    stored = rig.feed_rows()
    if stored != len(rows):
        raise RuntimeError(f"row INSERT stored {stored} of {len(rows)} rows")
    return Run(seconds, {}, other.cores)


def writer_alone(rig: Rig, items: Sequence[Inbound], timeout: float) -> Run:
    """Seconds for ``BatchWriter`` to write and acknowledge ``items`` put in its inbox
    beforehand (its own thread, its own batching); CPU µs/msg of this process and of
    its PostgreSQL backend."""
    rig.reset()
    inbox: queue.Queue[Inbound] = queue.Queue()
    for item in items:
        inbox.put_nowait(item)
    n = len(items)
    acked = 0
    done = threading.Event()

    def ack(_generation: int, _mid: int) -> None:
        nonlocal acked
        acked += 1
        if acked >= n:
            done.set()

    writer = BatchWriter(rig.settings(), inbox, ack, IngestMetrics())
    with tuned_gc():
        return _writer_alone(rig, writer, done, n, timeout, lambda: acked)


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    """The collector as in an ingest process (``ingest.service.tune_gc``): this process's
    own data (the stream, the rows, the filled inbox) frozen out of its way."""
    thresholds = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _writer_alone(
    rig: Rig, writer: BatchWriter, done: threading.Event, n: int, timeout: float, acked: Callable[[], int]
) -> Run:
    with psycopg.connect(rig.db_url, autocommit=True) as probe:
        with OtherJobs(rig.db_name) as other:
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            writer.start()
            finished = done.wait(timeout)
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
        pg = rig.backend_cpu_s(probe)
        writer.drain(10)
    if not finished:
        raise RuntimeError(f"the writer acknowledged {acked()} of {n} within {timeout} s")
    stored = rig.feed_rows()
    if stored != n:
        raise RuntimeError(f"the writer stored {stored} of {n}")
    cpu_us = {"writer process": cpu / n * 1e6, "PostgreSQL backends": pg / n * 1e6}
    return Run(seconds, cpu_us, other.cores)


def parse_cost(
    messages: Sequence[tuple[str, bytes]], grid_deg: float, devices: Any
) -> tuple[float, float, float]:
    """µs per message: msgspec's struct decode alone, the contract's ``parse_message``, and
    ``parse_message`` + row building (what the writer does before touching the database),
    with the collector tuned as in the writer (``tuned_gc``: with Python's default thresholds
    the parsed messages kept set off full collections, which the ingest never sees).
    ``python -m bench.ingest.parsing`` compares these with the pydantic contract's."""
    with tuned_gc():
        return _parse_cost(messages, grid_deg, devices)


def _parse_cost(
    messages: Sequence[tuple[str, bytes]], grid_deg: float, devices: Any
) -> tuple[float, float, float]:
    now = datetime.now(UTC)
    n = max(1, len(messages))
    decoders = {feed: msgspec.json.Decoder(model) for feed, model in PAYLOAD_MODELS.items()}
    found = [decoders[parse_topic(topic).feed] for topic, _ in messages]
    t0 = time.perf_counter()
    for decoder, (_topic, payload) in zip(found, messages, strict=True):
        decoder.decode(payload)
    validate = time.perf_counter() - t0
    t0 = time.perf_counter()
    for topic, payload in messages:
        parse_message(topic, payload, now)
    parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    prebuilt_rows(messages, grid_deg, devices)
    rows = time.perf_counter() - t0
    return validate / n * 1e6, parse / n * 1e6, rows / n * 1e6


# --- MQTT stages ---------------------------------------------------------------------------


def bare_paho(rig: Rig, files: Sequence[tuple[str, Path, int]], n: int) -> Run:
    sink = rig.sink(n)
    broker0 = rig.broker_cpu_s()
    children0 = children_cpu_s()
    with OtherJobs(rig.db_name) as other:
        t0 = time.time()
        pubs = rig.publishers(files)
        wait_all(pubs, rig.cfg.stage_timeout_s)
        pub_cpu = children_cpu_s() - children0
        result = read_json(sink, rig.cfg.stage_timeout_s)
    broker1 = rig.broker_cpu_s()
    sink.wait(10)
    if result.get("count", 0) < n:
        raise RuntimeError(f"the paho sink received {result.get('count')} of {n}; {rig.log_tail('sink.log')}")
    cpu = {"receiver process": result["cpu_s"] / n * 1e6, "mosquitto_pub": pub_cpu / n * 1e6}
    if broker0 is not None and broker1 is not None:
        cpu["Mosquitto"] = (broker1 - broker0) / n * 1e6
    return Run(float(result["done_at"]) - t0, cpu, other.cores)


def pipeline(rig: Rig, files: Sequence[tuple[str, Path, int]], n: int, workers: int, label: str) -> Run:
    """Seconds from the publishers' start until ``n`` messages are in the ledger."""
    rig.reset()
    procs = rig.workers(workers, label)
    try:
        with psycopg.connect(rig.db_url, autocommit=True) as conn:
            broker0 = rig.broker_cpu_s()
            pg0 = rig.backend_cpu_s(conn)
            children0 = children_cpu_s()
            with OtherJobs(rig.db_name) as other:
                t0 = time.time()
                pubs = rig.publishers(files)
                deadline = time.monotonic() + rig.cfg.stage_timeout_s
                stored = 0
                waiting = sampled = 0
                while True:
                    stored = rig.stored(conn)
                    if stored >= n:
                        break
                    w, a = rig.writer_waits(conn)
                    waiting, sampled = waiting + w, sampled + a
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{stored} of {n} stored after {rig.cfg.stage_timeout_s} s; "
                            f"{rig.log_tail('worker.log')}"
                        )
                    time.sleep(rig.cfg.poll_s)
                seconds = time.time() - t0
            wait_all(pubs, 30)
            pub_cpu = children_cpu_s() - children0
            pg = rig.backend_cpu_s(conn) - pg0
            broker1 = rig.broker_cpu_s()
    finally:
        finals = stop(procs)
    if any(not f.get("drained") for f in finals):
        raise RuntimeError(f"a worker did not stop cleanly: {finals}; {rig.log_tail('worker.log')}")
    stored_rows = rig.feed_rows()
    if stored_rows != n:
        raise RuntimeError(f"{stored_rows} feed rows for {n} messages")
    cpu = {
        "ingest worker(s)": sum(float(f["cpu_s"]) for f in finals) / n * 1e6,
        "PostgreSQL backends": pg / n * 1e6,
        "mosquitto_pub": pub_cpu / n * 1e6,
    }
    if broker0 is not None and broker1 is not None:
        cpu["Mosquitto"] = (broker1 - broker0) / n * 1e6
    threads: dict[str, float] = defaultdict(float)
    for f in finals:
        for name, cpu_s in f.get("threads_cpu_s", {}).items():
            threads[name] += float(cpu_s) / n * 1e6
    return Run(seconds, cpu, other.cores, waiting / sampled if sampled else float("nan"), dict(threads))


def latency(rig: Rig, stream: Stream, rate: float, seconds: float) -> Latency:
    """Publish at ``rate`` msg/s for ``seconds`` through ``mosquitto_pub -l`` pipes, each
    payload stamped with the time it is handed to the publisher; the worker records when
    the batch holding it was committed."""
    rig.reset()
    n = max(1, int(rate * seconds))
    templates = stream.stamped_templates(f"L{secrets.token_hex(2)}-", n)
    out = rig.tmp / "latency.json"
    out.unlink(missing_ok=True)
    load0 = load_average()
    procs = rig.workers(1, "latency", latency_out=out)
    other = OtherJobs(rig.db_name)
    try:
        pubs = rig.pipe_publishers(stream.topics)
        pipes = [p.stdin for p in pubs]
        time.sleep(0.5)  # let every mosquitto_pub connect
        buffers: list[list[bytes]] = [[] for _ in pubs]
        other.__enter__()
        t0 = time.time()
        sent = 0
        while sent < n:
            now = time.time()
            due = min(n, int((now - t0) * rate) + 1)
            if due > sent:
                stamp = f"{now:.6f}".encode()
                for g, head, tail in templates[sent:due]:
                    buffers[g].append(head + stamp + tail + b"\n")
                sent = due
                for g, buf in enumerate(buffers):
                    if buf:
                        pipe = pipes[g]
                        assert pipe is not None
                        pipe.write(b"".join(buf))
                        pipe.flush()
                        buf.clear()
            time.sleep(0.002)
        offered_s = time.time() - t0
        other.__exit__(None, None, None)
        for pipe in pipes:
            assert pipe is not None
            pipe.close()
        wait_all(pubs, 60)
        with psycopg.connect(rig.db_url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while rig.stored(conn) < n and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        finals = stop(procs)
    load1 = load_average()
    if not out.exists():
        raise RuntimeError(f"the worker wrote no latency samples: {finals}; {rig.log_tail('worker.log')}")
    samples = json.loads(out.read_text(encoding="utf-8"))
    if len(samples) != n:
        raise RuntimeError(f"{len(samples)} latency samples for {n} messages")
    stored_ms = [(done - pub) * 1000 for pub, _recv, done in samples]
    received_ms = [(recv - pub) * 1000 for pub, recv, _done in samples]
    # One commit time per batch: what the batches looked like.
    by_batch: dict[float, list[float]] = defaultdict(list)
    for _pub, recv, done in samples:
        by_batch[done].append(recv)
    return Latency(
        rate,
        n / offered_s,
        n,
        stored_ms,
        received_ms,
        load0,
        load1,
        batches=len(by_batch),
        batch_size_p50=percentile([len(v) for v in by_batch.values()], 50),
        newest_wait_ms_p50=percentile([(d - max(v)) * 1000 for d, v in by_batch.items()], 50),
        oldest_wait_ms_p50=percentile([(d - min(v)) * 1000 for d, v in by_batch.items()], 50),
        others=other.cores,
    )


# --- the run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    key: str
    what: str
    messages: int
    fn: Callable[[], Run]


def _stages(results: Results, specs: Sequence[Spec], repeat: int) -> None:
    """Run every stage ``repeat`` times, interleaved (A B C A B C: a burst of other work
    hits all of them alike), and keep each stage's best run."""
    runs: dict[str, list[Run]] = {spec.key: [] for spec in specs}
    loads: dict[str, list[tuple[float, float, float]]] = {spec.key: [] for spec in specs}
    cfg = results.config
    for i in range(repeat):
        for spec in specs:
            for attempt in range(cfg.retries + 1):
                load0 = load_average()
                run_ = spec.fn()
                print(
                    f"[bench] {spec.key}: run {i + 1}/{repeat}: {spec.messages / run_.seconds:,.0f} msg/s "
                    f"(load {fmt_load(load_average())}, other jobs {run_.others:.2f} cores)",
                    file=sys.stderr,
                    flush=True,
                )
                if run_.others <= cfg.max_others or attempt == cfg.retries:
                    break
                print(f"[bench] {spec.key}: disturbed by other jobs; again when quieter", file=sys.stderr)
                wait_until_quiet(cfg.max_others / 2, 120)
            runs[spec.key].append(run_)
            loads[spec.key] += [load0, load_average()]
    for spec in specs:
        best_i = min(range(repeat), key=lambda i: runs[spec.key][i].seconds)
        best = runs[spec.key][best_i]
        load0, load1 = loads[spec.key][2 * best_i], loads[spec.key][2 * best_i + 1]
        rates = [spec.messages / r.seconds for r in runs[spec.key]]
        results.stages[spec.key] = Stage(
            spec.key,
            spec.what,
            spec.messages,
            best.seconds,
            load0,
            load1,
            rates,
            best.cpu_us,
            best.others,
            best.lock_wait,
            best.threads_us,
        )


def run(
    cfg: Config,
    *,
    endpoints: Endpoints | None = None,
    broker_pid: int | None = None,
    city: City | None = None,
) -> Results:
    started = time.monotonic()
    with Rig(cfg, endpoints, broker_pid) as rig:
        machine = describe_machine(rig.db_url)
        print(
            f"[bench] database {rig.db_name}, Mosquitto on "
            f"{rig.endpoints.mqtt.host}:{rig.endpoints.mqtt.port}; "
            f"load {fmt_load(machine.load_at_start)}",
            file=sys.stderr,
            flush=True,
        )
        city = city or build_city()
        rig.load_city(city)
        grid_deg = rig.settings().shared.grid_cell_deg
        stream = build_stream(city, cfg.stream_size, seed=cfg.seed, sensor_publishers=cfg.sensor_publishers)
        rig.register_gateways(stream.sensor_gateways, stream.camera_platforms)
        results = Results(cfg, machine, dict(stream.feed_counts()))
        devices = device_positions(city)

        # Database stages: the same messages, as rows or as received messages.
        messages = stream.messages("d", cfg.copy_rows)
        rows = prebuilt_rows(messages, grid_deg, devices)
        items = inbound(messages)
        sample = messages[: min(len(messages), 20_000)]
        results.validate_us, results.parse_us, results.row_us = parse_cost(sample, grid_deg, devices)
        n_ins = min(cfg.insert_rows, len(rows))
        repeat = max(1, cfg.repeat)
        db_specs = [
            Spec(
                "copy",
                f"raw COPY, {cfg.batch:,} rows per transaction",
                len(rows),
                lambda: raw_copy(rig, rows, cfg.batch),
            ),
            Spec("copy_one", "raw COPY, one transaction", len(rows), lambda: raw_copy(rig, rows, None)),
            Spec(
                "insert",
                "row-by-row INSERT, one transaction per message",
                n_ins,
                lambda: row_insert(rig, rows[:n_ins], 1),
            ),
            Spec(
                "insert_tx",
                f"row-by-row INSERT, {cfg.batch:,} per transaction",
                n_ins,
                lambda: row_insert(rig, rows[:n_ins], cfg.batch),
            ),
            Spec(
                "writer",
                "ingest writer alone (parse, ledger, COPY, alarms, commit)",
                len(items),
                lambda: writer_alone(rig, items, cfg.stage_timeout_s),
            ),
        ]
        _stages(results, db_specs, repeat)

        # MQTT stages: the same payload files for each.
        n_mq = min(cfg.mqtt_messages, len(stream))
        sub = Stream(
            stream.topics, stream.groups[:n_mq], stream.bodies[:n_mq], stream.sensor_gateways,
            stream.camera_platforms,
        )
        files = sub.write_files(rig.tmp / "payloads", "m")
        mqtt_specs = [
            Spec(
                "paho",
                f"bare paho subscriber (QoS 1) ← {len(files)} × mosquitto_pub -l",
                n_mq,
                lambda: bare_paho(rig, files, n_mq),
            ),
            Spec(
                "one",
                "full pipeline, 1 ingest worker (publish → rows in PostgreSQL)",
                n_mq,
                lambda: pipeline(rig, files, n_mq, 1, "one"),
            ),
            Spec(
                "two",
                "full pipeline, 2 ingest workers ($share)",
                n_mq,
                lambda: pipeline(rig, files, n_mq, 2, "two"),
            ),
        ]
        _stages(results, mqtt_specs, repeat)

        half = results.rate("one") / 2
        print(
            f"[bench] latency at {half:,.0f} msg/s for {cfg.latency_seconds:g} s", file=sys.stderr, flush=True
        )
        for attempt in range(cfg.retries + 1):
            results.latency = latency(rig, stream, half, cfg.latency_seconds)
            if results.latency.others <= cfg.max_others or attempt == cfg.retries:
                break
            print("[bench] latency: disturbed by other jobs; again when quieter", file=sys.stderr)
            wait_until_quiet(cfg.max_others / 2, 120)
        results.load_at_end = load_average()
        results.gauge_at_end = speed_gauge()
    results.elapsed_s = time.monotonic() - started
    return results


# --- the report -----------------------------------------------------------------------------


def _verdict(value: float, target: float, *, at_most: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    ok = value <= target if at_most else value >= target
    return "**met**" if ok else "**missed**"


def targets(r: Results) -> list[tuple[str, str, str, str]]:
    rows = [
        (
            "writer alone ÷ raw COPY",
            fmt_ratio(r.ratio("writer", "copy")),
            f"≥ {TARGETS['writer_vs_copy']}×",
            _verdict(r.ratio("writer", "copy"), TARGETS["writer_vs_copy"]),
        ),
        (
            "writer alone ÷ row INSERT (one commit per message)",
            fmt_ratio(r.ratio("writer", "insert")),
            f"≥ {TARGETS['writer_vs_insert']:g}×",
            _verdict(r.ratio("writer", "insert"), TARGETS["writer_vs_insert"]),
        ),
        (
            "full pipeline (1 worker) ÷ bare paho",
            fmt_ratio(r.ratio("one", "paho")),
            f"≥ {TARGETS['pipeline_vs_paho']}×",
            _verdict(r.ratio("one", "paho"), TARGETS["pipeline_vs_paho"]),
        ),
        (
            "2 workers ÷ 1 worker",
            fmt_ratio(r.ratio("two", "one")),
            f"≥ {TARGETS['two_vs_one']}×",
            _verdict(r.ratio("two", "one"), TARGETS["two_vs_one"]),
        ),
    ]
    if r.latency is not None:
        p99 = r.latency.p("stored", 99)
        rows.append(
            (
                "latency publish → committed, p99",
                f"{p99:.0f} ms",
                f"≤ {TARGETS['latency_p99_ms']:g} ms",
                _verdict(p99, TARGETS["latency_p99_ms"], at_most=True),
            )
        )
    return rows


_THREAD_ROWS = (
    ("receiving: network thread (`mqtt-ingest`: paho, queue, acks), feeder and results (pipe)", "network"),
    ("writer process (`ingest-writer`: parse, write, commit)", "writer"),
    ("other threads (relay, maintenance, metrics)", "other"),
)


def _thread_group(name: str) -> str:
    if name.startswith("mqtt-") or name in ("ingest-feeder", "ingest-results"):
        return "network"
    if name == "ingest-writer":
        return "writer"
    return "other"


def _threads(stage: Stage, group: str) -> float:
    return sum(v for t, v in stage.threads_us.items() if _thread_group(t) == group)


def _cpu_table(r: Results) -> str:
    keys = [k for k in ("writer", "paho", "one", "two") if k in r.stages and r.stages[k].cpu_us]
    components: list[str] = []
    for k in keys:
        for c in r.stages[k].cpu_us:
            if c not in components:
                components.append(c)
    body = []
    for c in components:
        body.append([c] + [f"{r.stages[k].cpu_us[c]:.0f}" if c in r.stages[k].cpu_us else "–" for k in keys])
        if c == "ingest worker(s)":
            for label, group in _THREAD_ROWS:
                body.append(
                    [f"&nbsp;&nbsp;↳ {label}"]
                    + [f"{_threads(r.stages[k], group):.0f}" if r.stages[k].threads_us else "–" for k in keys]
                )
    totals = [sum(r.stages[k].cpu_us.values()) for k in keys]
    body.append(["**total**"] + [f"**{t:.0f}**" for t in totals])
    body.append(["2 cores ÷ total = ceiling, msg/s"] + [f"{2e6 / t:,.0f}" if t else "–" for t in totals])
    body.append(["measured, msg/s"] + [fmt_rate(r.rate(k)) for k in keys])
    body.append(
        ["cores busy with it (total × rate)"]
        + [f"{t * r.rate(k) / 1e6:.2f}" for t, k in zip(totals, keys, strict=True)]
    )
    body.append(["other jobs, cores"] + [f"{r.stages[k].others:.2f}" for k in keys])
    body.append(
        ["writer backends waiting for a lock, share of samples"]
        + [f"{r.stages[k].lock_wait:.0%}" if math.isfinite(r.stages[k].lock_wait) else "–" for k in keys]
    )
    names = {"writer": "writer alone", "paho": "bare paho", "one": "1 worker", "two": "2 workers"}
    return table(["CPU µs per message", *(names[k] for k in keys)], body)


def notes(r: Results) -> list[str]:
    """What the numbers say where a target was met (the missed ones are explained below)."""
    out = []
    one, two = r.stages.get("one"), r.stages.get("two")
    if one and two and r.ratio("two", "one") >= TARGETS["two_vs_one"]:
        worker_us = one.cpu_us.get("ingest worker(s)", float("nan"))
        out.append(
            f"- **2 workers ÷ 1 ({fmt_ratio(r.ratio('two', 'one'))}).** One worker (a receiving and a "
            f"writer process) used {worker_us:.0f} µs of CPU per message, "
            f"{worker_us * one.rate / 1e6:.2f} of a core at {fmt_rate(one.rate)} msg/s. A "
            "second worker brings two more processes; the two shared the machine's "
            f"{r.machine.cores} cores with PostgreSQL, Mosquitto and the publishers "
            f"({sum(two.cpu_us.values()) * two.rate / 1e6:.2f} cores busy with the pipeline). Their "
            "writers' backends were found waiting for a lock in "
            f"{two.lock_wait:.0%} of the samples: the workers do not hold each other up."
        )
    return out


def explanations(r: Results) -> list[str]:
    out = []
    cores = r.machine.cores
    w, copy, ins = r.stages.get("writer"), r.stages.get("copy"), r.stages.get("insert")
    one, two, paho = r.stages.get("one"), r.stages.get("two"), r.stages.get("paho")
    w_cpu = w.cpu_us.get("writer process", float("nan")) if w else float("nan")
    w_pg = w.cpu_us.get("PostgreSQL backends", float("nan")) if w else float("nan")
    if w and copy and r.ratio("writer", "copy") < TARGETS["writer_vs_copy"]:
        writer_us, copy_us = 1e6 / w.rate, 1e6 / copy.rate
        budget = copy_us / TARGETS["writer_vs_copy"]
        compare = (
            f"less than parsing and building the row alone ({r.row_us:.0f} µs)"
            if budget < r.row_us
            else f"of which parsing and building the row alone take {r.row_us:.0f} µs"
        )
        out.append(
            f"- **Writer ÷ raw COPY ({fmt_ratio(r.ratio('writer', 'copy'))}, target ≥ "
            f"{TARGETS['writer_vs_copy']:g}×).** Raw COPY "
            f"takes {copy_us:.0f} µs of wall time per message here: it writes rows that were built "
            f"beforehand. The writer takes {writer_us:.0f} µs: its two threads (the writer thread parsing "
            f"and building rows, the committer writing) used {w_cpu:.0f} µs of CPU per message and its "
            f"PostgreSQL backend {w_pg:.0f} µs; the backend's work overlaps the next batch's parsing, but "
            "the two threads' Python shares one GIL. Measured "
            f"alone, reading a payload against the contract costs {r.parse_us:.0f} µs (of which "
            f"msgspec's struct decode {r.validate_us:.0f} µs; the rest is a second decode into plain "
            "values for the extra fields, the RFC 3339 check of `ts`, the byte scan for NUL/huge "
            "integers and the `Message` itself — "
            "topics are parsed once per distinct topic) and building its row "
            f"{r.row_us - r.parse_us:.0f} µs more — together {r.row_us / w_cpu:.0%} of the writer's CPU "
            "(the collector tuned as in `python -m ingest`, `ingest.service.tune_gc`). The rest is "
            "psycopg formatting the rows and the ledger keys for COPY, the ledger itself (every key "
            "COPYed into a staging table, then `INSERT … ON CONFLICT DO NOTHING RETURNING` into its "
            "B-tree: a second indexed row per message), the sensor-hysteresis rules (the state rows a "
            "reading may change, locked and updated: raised ones, and those of a reading at its raise "
            "level), "
            f"and the alarm outbox. {TARGETS['writer_vs_copy']:g}× would need the writer's whole work "
            f"within {budget:.0f} µs per message, {compare}. What would reach it: still fewer Python "
            "steps per message (the contract's decoder, psycopg's formatting of the rows), or parsing "
            "in a process of its own (a GIL each for parsing and writing). The ledger costs the backend "
            "no more than the feed tables' own unique key would (`python -m bench.ingest.ledger`, "
            "docs/ingest.md) and stays."
        )
    if w and ins and r.ratio("writer", "insert") < TARGETS["writer_vs_insert"]:
        out.append(
            f"- **Writer ÷ row INSERT ({fmt_ratio(r.ratio('writer', 'insert'))}, target ≥ 10×).** One "
            f"INSERT and one COMMIT per message runs at {fmt_rate(ins.rate)} msg/s on this machine "
            f"({1e6 / ins.rate:.0f} µs each, WAL flush included: this virtual disk flushes fast), so the "
            f"baseline is strong. 10× would be {fmt_rate(10 * ins.rate)} msg/s, beyond what the writer's "
            "own CPU per message allows (above); the same changes would close the gap. Against INSERTs "
            "batched "
            f"{r.config.batch:,} per transaction the writer is {fmt_ratio(r.ratio('writer', 'insert_tx'))}."
        )
    if one and paho and r.ratio("one", "paho") < TARGETS["pipeline_vs_paho"]:
        worker_us = one.cpu_us.get("ingest worker(s)", float("nan"))
        sink_us = paho.cpu_us.get("receiver process", float("nan"))
        net_us, wr_us = _threads(one, "network"), _threads(one, "writer")
        busy = worker_us * one.rate / 1e6
        out.append(
            f"- **Pipeline ÷ bare paho ({fmt_ratio(r.ratio('one', 'paho'))}, target ≥ 0.8×).** Receiving "
            f"is not free in Python: the bare subscriber used {sink_us:.0f} µs of CPU per message for "
            "paho to read the packet, build the message and send the PUBACK. An ingest worker's receiving "
            f"process does that plus the hand-over ({net_us:.0f} µs per message: paho, the receipt time, "
            "the queue, the chunk of columns down the pipe to the writer process, and the acks of the "
            "messages it reports committed), and its writer "
            f"process parses and writes ({wr_us:.0f} µs) — two processes, two GILs, {worker_us:.0f} µs "
            f"in all, {busy:.2f} of a core busy at the measured rate. The receiving process alone could "
            f"go to about {fmt_rate(1e6 / net_us) if net_us > 0 else '–'} msg/s and the writer process "
            f"alone to about {fmt_rate(1e6 / wr_us) if wr_us > 0 else '–'} msg/s; on {cores} cores shared "
            "with PostgreSQL, Mosquitto and the publishers the sum of the CPU per message bounds the rate "
            "(table above). What would reach 0.8×: a core per process of the pipeline, and fewer "
            "Python steps per message in the writer."
        )
    if one and two and r.ratio("two", "one") < TARGETS["two_vs_one"]:
        total_one, total_two = sum(one.cpu_us.values()), sum(two.cpu_us.values())
        out.append(
            f"- **2 workers ÷ 1 ({fmt_ratio(r.ratio('two', 'one'))}, target ≥ 1.5×).** With one worker the "
            f"processes of the pipeline already used {total_one:.0f} µs of CPU per message, i.e. "
            f"{total_one * one.rate / 1e6:.1f} of the {cores} cores at {fmt_rate(one.rate)} msg/s; with "
            f"two, {total_two:.0f} µs per message and {total_two * two.rate / 1e6:.1f} cores at "
            f"{fmt_rate(two.rate)} msg/s, while other jobs on this machine took {two.others:.2f} cores "
            f"(with one worker: {one.others:.2f}). A second worker can only use the CPU that is left, and it "
            "brings its own PostgreSQL backend. The workers do not wait for each other: their writers' "
            "backends were found waiting for a lock (the raised or raising sensor-state rows both lock) in "
            f"{two.lock_wait:.0%} of the samples. The design scales out — the ledger, the sensor state and "
            "the outbox are in PostgreSQL, the workers share nothing else — but by cores: ≥ 1.5× needs "
            "a core for each worker with PostgreSQL and Mosquitto elsewhere (4+ cores, or the "
            "docker-compose deployment with the database on its own host)."
        )
    lat = r.latency
    if lat is not None and lat.p("stored", 99) > TARGETS["latency_p99_ms"]:
        out.append(
            f"- **Latency p99 ({lat.p('stored', 99):.0f} ms, target ≤ {TARGETS['latency_p99_ms']:g} ms).** "
            "Publish → received is "
            f"p50 {lat.p('received', 50):.0f} / p99 {lat.p('received', 99):.0f} ms: the broker and the "
            "network thread are quick; the rest is the writer's batching. Per batch (median of "
            f"{lat.batches}, {lat.batch_size_p50:.0f} messages each) the newest message waited "
            f"{lat.newest_wait_ms_p50:.0f} ms from receipt to commit — the time to parse and write the "
            f"batch on this machine (other jobs took {lat.others:.2f} of its {cores} cores meanwhile) — "
            f"and the oldest {lat.oldest_wait_ms_p50:.0f} ms: the window (`INGEST_FLUSH_MS`, counted "
            "from the first message's receipt) plus that write; the bench's stream is 98 % routine "
            "sensor readings, which wait out the window (a batch holding a call, a report, a confident "
            "video alert or a reading at its raise level is committed at once). What would reach it: "
            f"a shorter `INGEST_FLUSH_MS` than {FLUSH_MS} (at this rate batches are far from 1,000 "
            "messages, so a shorter window costs little), and a writer that spends fewer µs per "
            "message (above), which shortens the write itself."
        )
    return out


def _busy_note(r: Results) -> list[str]:
    others = [s.others for s in r.stages.values() if math.isfinite(s.others)]
    if r.latency is not None and math.isfinite(r.latency.others):
        others.append(r.latency.others)
    if not others:
        return []
    peak = max(others)
    note = (
        f"- CPU used by other jobs while the stages were timed (processes not ours, measured from "
        f"`/proc`): {min(others):.2f}–{peak:.2f} of the {r.machine.cores} cores (column *others* below)"
    )
    if peak > 0.25:
        note += (
            ". The machine was shared: absolute rates are lower than on a quiet machine, and ratios "
            "between stages timed at different moments carry that noise"
        )
    return [note + "."]


def render(r: Results, command: str) -> str:
    cfg = r.config
    lines = [
        "## Ingest",
        "",
        f"Written by `bench/ingest` on {utc_now()} (`{command}`, {r.elapsed_s:.0f} s). One run, one machine, "
        "one private Mosquitto (the project's `deploy/mosquitto/mosquitto.conf` on a free port), one fresh "
        "migrated database on the local PostgreSQL with the demo city's registry loaded.",
        "",
        "Machine:",
        "",
        r.machine.markdown(r.load_at_end, r.gauge_at_end),
        *_busy_note(r),
        "",
        f"Messages: the feed simulator's stream (demo budget {SIM_RATE:g} msg/s at time scale "
        f"{SIM_TIME_SCALE:g}), ids made unique: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(r.feeds.items(), key=lambda kv: -kv[1]))
        + f" (of {sum(r.feeds.values()):,}). Each throughput stage ran {cfg.repeat}×, interleaved with "
        "the others of its group, and its best run counts (every run under *all runs*; *load* and "
        "*others* are for the best run).",
        "",
        "### Throughput",
        "",
    ]
    body = []
    for s in r.stages.values():
        body.append(
            [
                s.what,
                f"{s.messages:,}",
                f"{s.seconds:.2f}",
                f"**{fmt_rate(s.rate)}**",
                " / ".join(fmt_rate(x) for x in s.runs),
                f"{s.load_before[0]:.1f} → {s.load_after[0]:.1f}",
                f"{s.others:.2f}",
            ]
        )
    header = ["stage", "messages", "seconds", "msg/s", "all runs, msg/s", "load (1 min)", "others, cores"]
    lines.append(table(header, body))
    lines += ["", "### Against the targets", ""]
    lines.append(table(["ratio", "measured", "target", ""], targets(r)))
    if r.latency is not None:
        lat = r.latency
        lines += [
            "",
            "### Latency",
            "",
            f"{lat.messages:,} messages offered at {fmt_rate(lat.rate)} msg/s (half the one-worker rate; "
            f"achieved {fmt_rate(lat.achieved)}) for {lat.messages / lat.rate:.0f} s through the same "
            "`mosquitto_pub -l` "
            "processes, fed line by line; each payload carries the time it was handed to the publisher "
            "(`bench_t`, an extra field the contract keeps); the worker records the time its writer "
            "process's report of the COMMIT of the batch holding it arrived (when the acks are "
            f"released). Load {fmt_load(lat.load_before)} → "
            f"{fmt_load(lat.load_after)}; other jobs used {lat.others:.2f} cores meanwhile.",
            "",
            table(
                ["publish →", "p50 ms", "p90 ms", "p99 ms", "max ms"],
                [
                    [
                        w,
                        f"{lat.p(k, 50):.0f}",
                        f"{lat.p(k, 90):.0f}",
                        f"{lat.p(k, 99):.0f}",
                        f"{max(lat.stored_ms if k == 'stored' else lat.received_ms):.0f}",
                    ]
                    for w, k in (
                        ("received by the ingest (`on_message`)", "received"),
                        ("committed in PostgreSQL", "stored"),
                    )
                ],
            ),
            "",
            f"The worker committed {lat.batches} batches of {lat.batch_size_p50:.0f} messages (median); "
            f"in the median batch the newest message waited {lat.newest_wait_ms_p50:.0f} ms from receipt "
            f"to commit and the oldest {lat.oldest_wait_ms_p50:.0f} ms (`INGEST_FLUSH_MS` is {FLUSH_MS}).",
        ]
    lines += [
        "",
        "### Where the CPU goes",
        "",
        "CPU time per message of each process involved (from `/proc`), for the best run of each stage. "
        "With everything on one machine the sum bounds the rate: 2 cores give 2,000,000 µs per second.",
        "",
        _cpu_table(r),
    ]
    observed = notes(r)
    if observed:
        lines += ["", "### Notes", "", *observed]
    why = explanations(r)
    if why:
        lines += ["", "### Targets missed: why, and what would reach them", "", *why]
    lines += [
        "",
        "### Method",
        "",
        "- Raw COPY: the messages parsed and turned into rows beforehand (not timed), then "
        "`COPY … FROM STDIN` "
        f"with psycopg's `write_row`, {cfg.batch:,} rows per transaction (the writer's batch size), grouped "
        "per feed table — the baseline for the writer. The one-transaction COPY is shown for reference.",
        f"- Row INSERT: the first {min(cfg.insert_rows, cfg.copy_rows):,} of the same rows, one `INSERT` "
        "per row "
        "(psycopg prepares it after 5 uses), committed per message (what an ingest that stores each message "
        f"as it arrives and acknowledges after commit must do) and, for reference, {cfg.batch:,} per "
        "transaction. The rate is extrapolated from the smaller count.",
        "- Writer alone: `ingest.writer.BatchWriter` with its own thread and batching, its inbox filled "
        "with the messages as the network thread would hand them over (`Inbound`, QoS 1) before the clock "
        "starts; the clock stops when the last acknowledgement is released (after its COMMIT). The garbage "
        "collector is set as `python -m ingest` sets it (`ingest.service.tune_gc`), this process's own "
        "data (stream, rows, the filled inbox) frozen out of its way.",
        "- Bare paho: `bench/ingest/sink.py`, paho MQTT 5, QoS 1, "
        "automatic PUBACK, `loop_start`, a callback that only counts. Fed by one `mosquitto_pub -l -q 1 "
        f"-M {cfg.inflight} -V mqttv5` per topic ({cfg.sensor_publishers} sensor topics and one per other "
        "kind of message), started together; the clock runs from their start to the last message received.",
        "- Full pipeline: the same publishers and files; the worker is `IngestService` in its own process "
        "(`bench/ingest/worker.py`, the same code and settings as `python -m ingest`: batch 1,000, flush "
        f"{FLUSH_MS} ms, queue 20,000, Redis relay and maintenance running). The clock stops when "
        "`count(*)` of "
        f"`message_ledger` (polled every {cfg.poll_s * 1000:.0f} ms) reaches the number published; then the "
        "feed rows are counted (exactly one per message, no dead letters) and the workers stopped.",
        "- Every stage starts from empty feed tables and ledger (`TRUNCATE`, `CHECKPOINT`).",
        f"- Other jobs share this machine. A run during which they used more than {cfg.max_others:g} "
        f"cores (*others*: CPU time of every process that is not ours, from `/proc`) was run again "
        f"after waiting for a quieter moment, up to {cfg.retries} times; the last attempt stands.",
        "- Not measured here: TimescaleDB (no package for it here: the plain-PostgreSQL schema is what "
        "runs; the suite itself was run against TimescaleDB 2.28.3 built from source, "
        "docs/deployment.md), TLS, a broker or database on another host.",
    ]
    return "\n".join(lines) + "\n"


def print_summary(r: Results) -> None:
    rows = [
        [
            s.key,
            s.what,
            f"{s.messages:,}",
            f"{s.seconds:.2f}",
            fmt_rate(s.rate),
            f"{s.load_before[0]:.1f}→{s.load_after[0]:.1f}",
        ]
        for s in r.stages.values()
    ]
    print(table(["stage", "what", "n", "s", "msg/s", "load"], rows))
    print()
    print(table(["ratio", "measured", "target", ""], targets(r)))
    if r.latency is not None:
        lat = r.latency
        print(
            f"\nlatency at {fmt_rate(lat.rate)} msg/s: publish→received p50 {lat.p('received', 50):.0f} ms "
            f"p99 {lat.p('received', 99):.0f} ms; publish→committed p50 {lat.p('stored', 50):.0f} ms "
            f"p99 {lat.p('stored', 99):.0f} ms"
        )
    print(
        f"\nload average at the end: {fmt_load(r.load_at_end or load_average())}; speed gauge "
        f"{r.machine.gauge_us:.1f} → {r.gauge_at_end:.1f} µs; run took {r.elapsed_s:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    p.add_argument("--copy-rows", type=int)
    p.add_argument("--insert-rows", type=int)
    p.add_argument("--mqtt-messages", type=int)
    p.add_argument("--latency-seconds", type=float)
    p.add_argument("--repeat", type=int)
    p.add_argument("--inflight", type=int, help="mosquitto_pub -M (default 100)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--doc", type=Path, default=BENCHMARKS_MD)
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS until other jobs use less than a quarter of a core",
    )
    ns = p.parse_args(argv)
    cfg = QUICK if ns.quick else Config()
    overrides = {
        k: v
        for k, v in (
            ("copy_rows", ns.copy_rows),
            ("insert_rows", ns.insert_rows),
            ("mqtt_messages", ns.mqtt_messages),
            ("latency_seconds", ns.latency_seconds),
            ("repeat", ns.repeat),
            ("inflight", ns.inflight),
        )
        if v is not None
    }
    cfg = replace(cfg, **overrides)
    if ns.wait_quiet > 0:
        wait_until_quiet(cfg.max_others / 2, ns.wait_quiet, window_s=15.0)
    results = run(cfg)
    print_summary(results)
    if not ns.no_write:
        command = (
            "python -m bench.ingest" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
        )
        path = write_section("ingest", render(results, command.strip()), ns.doc)
        print(f"\nwrote the ingest section of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
