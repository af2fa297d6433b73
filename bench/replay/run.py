"""Replay benchmark: how faithfully the exercise runner keeps a recording's timing.

``python -m bench.replay`` builds a synthetic recorded hour (bench/replay/schedule.py:
Poisson background from the feed simulator plus bursts of 110 calls, about 4,600 valid
contract v1 messages), starts a private Mosquitto (the project's configuration, on a
free port), creates and migrates a scratch database on the local PostgreSQL, and plays
it through ``simulators.exercise_run.run_exercise`` — exercise row, control stream,
ExerciseClock, QoS 1 — at

- ×1 (a few recorded seconds at the onset of a burst),
- ×10 (three recorded minutes around a burst),
- ×100 (the whole hour: 36 s),

while a bare paho subscriber in a process of its own (bench/replay/sink.py) notes when
each message arrives. **Relative timing error** of message *i*: its arrival after the
first message's, minus its scheduled distance from the first message divided by the
speed — what a drill's participants would see, end to end, publisher to broker to
receiver. The runner's own drift (send − due, ``RunReport.drift``) is reported beside it.

**Baseline, same run, same schedules:** a bare loop that sleeps until each due time,
stamps ``ts`` and encodes the payload (as the runner does), and publishes with a bare
paho client at QoS 1 — no clock object, no control stream, no exercise row: the floor of
what Python, paho and the broker do on this machine. Ratios runner ÷ baseline for the
p99 timing error and for the achieved throughput at ×100, and for a *flood* (the first
messages of the hour all due at once: the most messages per second either can send,
i.e. the densest recording that can still be replayed at ×100).

**Control** during a ×10 run: ``pause`` (nothing with an offset past the pause position
may arrive before ``play``), ``play``, then a ``seek`` forward; the timing error within
each stretch and how long after the command the next message came.

Writes the ``replay`` section of docs/benchmarks.md. About two and a half minutes;
``--quick`` is about one.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import redis
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from bench.common import (
    BENCHMARKS_MD,
    REPO_ROOT,
    Machine,
    OtherJobs,
    create_scratch_database,
    describe_machine,
    drop_scratch_database,
    fmt_load,
    fmt_rate,
    fmt_ratio,
    load_average,
    percentile,
    private_redis,
    speed_gauge,
    table,
    utc_now,
    wait_until_quiet,
    write_section,
)
from bench.replay.schedule import RECORDED_START, Recording, build_recording, peak_per_s
from simulators.exercise_run import DriftStats, RunReport, TimedMessage, run_exercise
from simulators.feeds import CST
from simulators.publish import BrokerConfig
from wuwang.contract import encode
from wuwang.endpoints import Endpoints, LocalServices, ManagedProcess, mosquitto_binary
from wuwang.exercises import control_stream, exercise_topic
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, apply_target
from wuwang.settings import Settings


@dataclass(frozen=True)
class Config:
    span_s: float = 3600.0  # the recording, played whole at ×100
    background_per_s: float = 1.2
    bursts: int = 4
    calls_per_burst: int = 80
    x10_window_s: float = 180.0  # recorded seconds played at ×10 (around a burst)
    x1_window_s: float = 12.0  # recorded seconds played at ×1 (a burst's onset)
    flood: int = 3000  # messages all due at once
    control_window_s: float = 240.0  # recorded seconds of the control run at ×10
    pause_at_s: float = 4.0  # wall seconds into the control run
    pause_for_s: float = 2.0
    seek_after_s: float = 3.0  # wall seconds after play
    seek_jump_s: float = 60.0  # recorded seconds jumped over
    seed: int = 20261123


QUICK = Config(
    span_s=600.0,
    bursts=1,
    x10_window_s=60.0,
    x1_window_s=5.0,
    flood=800,
    control_window_s=120.0,
    pause_at_s=2.0,
    pause_for_s=1.0,
    seek_after_s=1.5,
    seek_jump_s=30.0,
)


# --- results ----------------------------------------------------------------------------


@dataclass
class Timing:
    """One schedule played once, by the runner or by the baseline loop."""

    case: str
    who: str  # "runner" | "baseline"
    speed: float
    items: int
    received: int
    duplicates: int
    errors_ms: list[float]  # relative timing error per received message (+ late)
    drift: DriftStats  # send − due, ms (the runner's own measurement, or the loop's)
    span_s: float  # first → last arrival
    scheduled_s: float  # first → last offset, / speed
    peak_1s: int  # most arrivals within one wall second
    scheduled_peak_1s: int
    others: float = float("nan")  # cores other jobs used meanwhile
    sink_cpu_s: float = 0.0

    def p(self, q: float) -> float:
        return percentile(self.errors_ms, q)

    def abs_p(self, q: float) -> float:
        return percentile([abs(e) for e in self.errors_ms], q)

    @property
    def spread(self) -> float:
        """p99 − p1 of the timing error: its width, whatever the first message's own delay."""
        return self.p(99) - self.p(1)

    @property
    def rate(self) -> float:
        return (self.received - 1) / self.span_s if self.span_s > 0 and self.received > 1 else float("nan")

    @property
    def scheduled_rate(self) -> float:
        return (self.items - 1) / self.scheduled_s if self.scheduled_s > 0 else float("nan")


@dataclass
class Control:
    """The ×10 run with pause, play and seek."""

    items: int
    sent: int
    received: int
    skipped: int
    duplicates: int
    paused_position_s: float
    in_flight_at_pause: int  # sent before the pause took effect, arrived after the command
    sent_while_paused: int  # offset past the pause position, arrived before play
    pause_effect_ms: float  # last arrival of an item sent before the pause − pause command
    resume_lag_ms: float  # first arrival after play − when it was due after play
    seek_to_s: float
    seek_lag_ms: float
    before: list[float]  # relative timing error per stretch, ms
    after_resume: list[float]
    after_seek: list[float]
    missing_after_seek: int  # items at or past the seek target that never arrived
    position_still: bool  # the row's position did not move while paused
    drift: DriftStats
    errors: list[str]


@dataclass
class Results:
    config: Config
    machine: Machine
    recording: Recording
    timings: list[Timing] = field(default_factory=list)
    control: Control | None = None
    load_at_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gauge_at_end: float = float("nan")
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def get(self, case: str, who: str) -> Timing:
        return next(t for t in self.timings if t.case == case and t.who == who)


# --- the rig -----------------------------------------------------------------------------


class Rig:
    """A private Mosquitto, a scratch migrated database, Redis; the receiver processes."""

    def __init__(self, endpoints: Endpoints | None = None) -> None:
        self._given = endpoints
        self._services: LocalServices | None = None
        self._redis: ManagedProcess | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="wuwang-bench-replay-"))
        self.tmp.chmod(0o755)
        self.db_name = f"wuwang_bench_replay_{os.getpid()}_{secrets.token_hex(3)}"
        self.admin_url = ""
        self.db_url = ""
        self.endpoints: Endpoints
        self.streams: list[str] = []
        self._n = 0

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
        if self._given is None:
            if mosquitto_binary() is None:
                raise RuntimeError("the benchmark needs mosquitto (apt-get install mosquitto)")
            base = Settings(demo_mode=True, data_dir=self.tmp)
            self._services = LocalServices(base, database_name="postgres", broker_mode="private")
            self.endpoints, self._redis = private_redis(self._services.start(), self.tmp)
        else:
            self.endpoints = self._given
        if self.endpoints.broker != "mosquitto":
            raise RuntimeError(f"the benchmark needs a Mosquitto broker, not {self.endpoints.broker}")
        self.admin_url, self.db_url = create_scratch_database(self.endpoints.database_url, self.db_name)

    def close(self) -> None:
        if self.streams:
            try:
                with redis.Redis.from_url(self.endpoints.redis_url) as r:
                    r.delete(*self.streams)
            except redis.RedisError:
                pass
        if self.admin_url:
            drop_scratch_database(self.admin_url, self.db_name)
        if self._redis is not None:
            self._redis.stop()
        if self._services is not None:
            self._services.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def exercise_id(self, label: str) -> str:
        self._n += 1
        eid = f"BENCH-RP-{os.getpid()}-{self._n}-{label}"
        self.streams.append(control_stream(eid))
        return eid

    def settings(self) -> Settings:
        return Settings(
            demo_mode=True,
            database_url=self.db_url,
            redis_url=self.endpoints.redis_url,
            mqtt_url=self.endpoints.mqtt_url_for("simulator"),
            mqtt_protocol="5",
        )

    def sink(self, exercise_id: str) -> subprocess.Popen[str]:
        m = self.endpoints.target_for("ingest")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.replay.sink",
                "--host",
                m.host,
                "--port",
                str(m.port),
                "--topic",
                f"exercise/v1/{exercise_id}/#",
                "--password",
                DEMO_MQTT_ACCOUNTS["ingest"],
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"replay sink not ready: {line!r}")
        return proc


def collect(proc: subprocess.Popen[str], count: int) -> tuple[list[str], list[float], float]:
    """Tell the sink how many to wait for; its (ids, arrival times, CPU seconds)."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{count}\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()
    data = json.loads(line)
    return list(data["ids"]), [float(t) for t in data["t"]], float(data["cpu_s"])


# --- one schedule, two publishers ------------------------------------------------------------


def _now_rfc3339() -> str:
    return datetime.now(CST).isoformat(timespec="milliseconds")


def baseline(rig: Rig, exercise_id: str, items: Sequence[TimedMessage], speed: float) -> DriftStats:
    """Sleep until each due time, stamp ``ts``, encode, publish at QoS 1 (bare paho)."""
    broker = BrokerConfig.from_url(rig.settings().shared.mqtt_url or "", "5", 30, True)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-replay-base-{os.getpid()}", protocol=mqtt.MQTTv5
    )
    apply_target(client, broker.target)
    client.max_inflight_messages_set(200)  # as the runner
    acked = [0]
    connected = threading.Event()

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, _rc: ReasonCode, _p: Any) -> None:
        connected.set()

    def on_publish(_c: mqtt.Client, _u: Any, _mid: int, _rc: ReasonCode, _p: Any) -> None:
        acked[0] += 1

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(broker.host, broker.port, 30)
    client.loop_start()
    if not connected.wait(15):
        raise RuntimeError("baseline publisher: no CONNACK")
    topics = [exercise_topic(exercise_id, it.topic) for it in items]
    drift: list[float] = []
    t0 = time.monotonic()
    for it, topic in zip(items, topics, strict=True):
        due = t0 + it.offset_s / speed
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        payload = dict(it.payload)
        payload["ts"] = _now_rfc3339()
        payload["exercise_offset_s"] = round(it.offset_s, 3)
        body = encode(payload)
        sent = time.monotonic()
        client.publish(topic, body, qos=1)
        drift.append((sent - due) * 1000.0)
    deadline = time.monotonic() + 10
    while acked[0] < len(items) and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    return DriftStats.of(drift)


def relative_errors(
    offsets: dict[str, float], ids: Sequence[str], times: Sequence[float], speed: float
) -> list[float]:
    """Per arrival: (arrival − first scheduled message's arrival) − (offset − its offset) / speed, ms.
    The reference is the received message with the smallest offset (first arrival among ties)."""
    firsts: dict[str, float] = {}
    for i, t in zip(ids, times, strict=True):
        firsts.setdefault(i, t)
    known = [(offsets[i], t) for i, t in firsts.items() if i in offsets]
    if not known:
        return []
    o0, t0 = min(known, key=lambda p: (p[0], p[1]))
    return [((t - t0) - (o - o0) / speed) * 1000.0 for o, t in known]


def play(rig: Rig, case: str, who: str, items: list[TimedMessage], speed: float) -> Timing:
    eid = rig.exercise_id(f"{case}-{who}")
    sink = rig.sink(eid)
    try:
        with OtherJobs(rig.db_name) as other:
            if who == "runner":
                report = run_exercise(
                    rig.settings(),
                    eid,
                    items,
                    speed=speed,
                    kind="replay",
                    name=f"bench replay {case}",
                    sim_start=RECORDED_START,
                    client_id=f"bench-replay-{os.getpid()}",
                )
                drift, sent = report.drift, report.sent
            else:
                drift, sent = baseline(rig, eid, items, speed), len(items)
            ids, times, cpu = collect(sink, sent)
    except BaseException:
        sink.kill()
        sink.wait()
        raise
    offsets = {str(it.payload["id"]): it.offset_s for it in items}
    offs = [it.offset_s for it in items]
    return Timing(
        case=case,
        who=who,
        speed=speed,
        items=len(items),
        received=len(set(ids)),
        duplicates=len(ids) - len(set(ids)),
        errors_ms=relative_errors(offsets, ids, times, speed),
        drift=drift,
        span_s=(max(times) - min(times)) if times else 0.0,
        scheduled_s=(max(offs) - min(offs)) / speed if offs else 0.0,
        peak_1s=peak_per_s(list(times), 1.0),
        scheduled_peak_1s=peak_per_s(offs, speed),
        others=other.cores,
        sink_cpu_s=cpu,
    )


# --- control: pause, play, seek --------------------------------------------------------------


def _row(conn: psycopg.Connection[Any], eid: str) -> tuple[str, float] | None:
    row = conn.execute(
        "SELECT status, sim_position, sim_start FROM exercise WHERE id = %s", (eid,)
    ).fetchone()
    if row is None or row[1] is None:
        return None
    position: datetime = row[1]
    start: datetime = row[2]
    return str(row[0]), (position - start).total_seconds()


def _wait_row(conn: psycopg.Connection[Any], eid: str, status: str, timeout: float = 2.0) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _row(conn, eid)
        if got is not None and got[0] == status:
            return got[1]
        time.sleep(0.01)
    return None


def control(rig: Rig, cfg: Config, items: list[TimedMessage], speed: float = 10.0) -> Control:
    eid = rig.exercise_id("control")
    stream = control_stream(eid)
    sink = rig.sink(eid)
    result: list[RunReport] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(
                run_exercise(
                    rig.settings(),
                    eid,
                    items,
                    speed=speed,
                    kind="replay",
                    name="bench replay control",
                    sim_start=RECORDED_START,
                    client_id=f"bench-replay-ctl-{os.getpid()}",
                )
            )
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=target, name="bench-replay-control")
    r = redis.Redis.from_url(rig.endpoints.redis_url)
    try:
        with psycopg.connect(rig.db_url, autocommit=True) as conn:
            runner.start()
            if _wait_row(conn, eid, "running", 15.0) is None:
                raise RuntimeError(f"the control run did not start: {failure}")
            started = time.monotonic()
            time.sleep(max(0.0, started + cfg.pause_at_s - time.monotonic()))
            t_pause = time.monotonic()
            r.xadd(stream, {"action": "pause", "value": ""})
            paused_pos = _wait_row(conn, eid, "paused")
            if paused_pos is None:
                raise RuntimeError("the runner did not pause")
            time.sleep(max(0.0, t_pause + cfg.pause_for_s - time.monotonic()))
            still = _row(conn, eid)
            position_still = still is not None and abs(still[1] - paused_pos) < 1e-6
            t_play = time.monotonic()
            r.xadd(stream, {"action": "play", "value": ""})
            time.sleep(cfg.seek_after_s)
            seek_to = round(paused_pos + cfg.seek_after_s * speed + cfg.seek_jump_s, 1)
            t_seek = time.monotonic()
            r.xadd(stream, {"action": "seek", "value": str(seek_to)})
            runner.join(timeout=cfg.control_window_s / speed + 60)
            if runner.is_alive():
                r.xadd(stream, {"action": "stop", "value": ""})
                runner.join(30)
        if failure:
            raise failure[0]
        report = result[0]
        ids, times, _cpu = collect(sink, report.sent)
    except BaseException:
        sink.kill()
        sink.wait()
        raise
    finally:
        r.close()

    offsets = {str(it.payload["id"]): it.offset_s for it in items}
    arrivals: dict[str, float] = {}
    for i, t in zip(ids, times, strict=True):
        arrivals.setdefault(i, t)
    got = sorted((offsets[i], t, i) for i, t in arrivals.items() if i in offsets)
    before = [(o, t, i) for o, t, i in got if o < paused_pos]
    resumed = [(o, t, i) for o, t, i in got if paused_pos <= o < seek_to]
    sought = [(o, t, i) for o, t, i in got if o >= seek_to]

    def rel(part: list[tuple[float, float, str]]) -> list[float]:
        return relative_errors(
            {i: o for o, _t, i in part}, [i for *_x, i in part], [t for _o, t, _i in part], speed
        )

    in_flight = [t for o, t, _i in before if t > t_pause]
    while_paused = [1 for o, t, _i in got if o >= paused_pos and t_pause <= t < t_play]
    resume_lag = (
        (resumed[0][1] - (t_play + (resumed[0][0] - paused_pos) / speed)) * 1000.0
        if resumed
        else float("nan")
    )
    seek_lag = (
        (sought[0][1] - (t_seek + (sought[0][0] - seek_to) / speed)) * 1000.0 if sought else float("nan")
    )
    return Control(
        items=len(items),
        sent=report.sent,
        received=len(arrivals),
        skipped=report.skipped,
        duplicates=len(ids) - len(arrivals),
        paused_position_s=paused_pos,
        in_flight_at_pause=len(in_flight),
        sent_while_paused=len(while_paused),
        pause_effect_ms=(max(in_flight) - t_pause) * 1000.0 if in_flight else 0.0,
        resume_lag_ms=resume_lag,
        seek_to_s=seek_to,
        seek_lag_ms=seek_lag,
        before=rel(before),
        after_resume=rel(resumed),
        after_seek=rel(sought),
        missing_after_seek=sum(1 for it in items if it.offset_s >= seek_to) - len(sought),
        position_still=position_still,
        drift=report.drift,
        errors=report.errors,
    )


# --- the run -------------------------------------------------------------------------------


def _log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def run(cfg: Config, *, endpoints: Endpoints | None = None) -> Results:
    started = time.monotonic()
    recording = build_recording(cfg.span_s, cfg.background_per_s, cfg.bursts, cfg.calls_per_burst, cfg.seed)
    with Rig(endpoints) as rig:
        machine = describe_machine(rig.db_url)
        results = Results(cfg, machine, recording)
        m = rig.endpoints.mqtt
        _log(
            f"database {rig.db_name}, Mosquitto on {m.host}:{m.port}; {len(recording.items):,} messages "
            f"over {cfg.span_s:g} s recorded; load {fmt_load(machine.load_at_start)}"
        )
        burst = recording.bursts[0][0] if recording.bursts else cfg.span_s / 2
        cases: list[tuple[str, list[TimedMessage], float]] = [
            ("x1", recording.window(burst - 2.0, burst - 2.0 + cfg.x1_window_s), 1.0),
            ("x10", recording.window(burst - 30.0, burst - 30.0 + cfg.x10_window_s), 10.0),
            ("x100", recording.window(0.0, cfg.span_s), 100.0),
            ("flood", [replace(it, offset_s=0.0) for it in recording.items[: cfg.flood]], 100.0),
        ]
        for case, items, speed in cases:
            for who in ("runner", "baseline"):
                t = play(rig, case, who, items, speed)
                results.timings.append(t)
                _log(
                    f"{case} ×{speed:g} {who}: {t.received}/{t.items} received, error p50 {t.p(50):.2f} "
                    f"p99 {t.p(99):.2f} max {max(t.errors_ms, default=float('nan')):.2f} ms, "
                    f"{fmt_rate(t.rate)} msg/s (other jobs {t.others:.2f} cores)"
                )
        _log("control run at ×10: pause, play, seek")
        start = max(0.0, burst - 60.0)
        results.control = control(rig, cfg, recording.window(start, start + cfg.control_window_s))
        c = results.control
        _log(
            f"control: {c.sent_while_paused} sent while paused, resume lag {c.resume_lag_ms:.1f} ms, "
            f"seek lag {c.seek_lag_ms:.1f} ms"
        )
        results.load_at_end = load_average()
        results.gauge_at_end = speed_gauge()
    results.elapsed_s = time.monotonic() - started
    return results


# --- the report ------------------------------------------------------------------------------

CASE_NAMES = {
    "x1": "×1, a burst's onset",
    "x10": "×10, around a burst",
    "x100": "×100, the whole hour",
    "flood": "flood: all due at once",
}


def _ms(x: float) -> str:
    return f"{x:.2f}" if x == x else "–"


def _ratio(a: float, b: float) -> str:
    return fmt_ratio(a / b) if b > 0 else "–"


def _stretch(name: str, errors: list[float]) -> list[str]:
    return [
        name,
        str(len(errors)),
        _ms(percentile(errors, 50)),
        _ms(percentile(errors, 99)),
        _ms(max(errors, default=float("nan"))),
    ]


def render(r: Results, command: str) -> str:
    cfg, rec = r.config, r.recording
    feeds = ", ".join(f"{k} {v:,}" for k, v in sorted(rec.feeds.items(), key=lambda kv: -kv[1]))
    rows = []
    for t in r.timings:
        if t.case == "flood":
            continue
        rows.append(
            [
                CASE_NAMES[t.case],
                t.who,
                f"{t.received:,}/{t.items:,}",
                f"{t.scheduled_s:.1f}",
                _ms(t.p(50)),
                _ms(t.p(99)),
                _ms(max(t.errors_ms, default=float("nan"))),
                _ms(min(t.errors_ms, default=float("nan"))),
                f"{t.drift.p50:.2f} / {t.drift.p99:.2f} / {t.drift.max:.2f}",
                f"{t.others:.2f}",
            ]
        )
    timing_rows = []
    for case in ("x1", "x10", "x100"):
        run_, base = r.get(case, "runner"), r.get(case, "baseline")
        timing_rows.append(
            [
                CASE_NAMES[case],
                f"{run_.abs_p(99):.2f}",
                f"{base.abs_p(99):.2f}",
                _ratio(run_.abs_p(99), base.abs_p(99)),
                f"{run_.spread:.2f}",
                f"{base.spread:.2f}",
                _ratio(run_.spread, base.spread),
            ]
        )
    x100r, x100b = r.get("x100", "runner"), r.get("x100", "baseline")
    fr, fb = r.get("flood", "runner"), r.get("flood", "baseline")
    ratio_rows = [
        [
            f"achieved throughput at ×100, first → last arrival (scheduled {fmt_rate(x100r.scheduled_rate)} "
            "msg/s on average)",
            f"{fmt_rate(x100r.rate)} msg/s",
            f"{fmt_rate(x100b.rate)} msg/s",
            fmt_ratio(x100r.rate / x100b.rate),
        ],
        [
            f"busiest wall second at ×100 (scheduled {x100r.scheduled_peak_1s} messages)",
            f"{x100r.peak_1s} msg",
            f"{x100b.peak_1s} msg",
            _ratio(x100r.peak_1s, x100b.peak_1s),
        ],
        [
            f"flood: {fr.items:,} messages due at once, first → last arrival",
            f"{fmt_rate(fr.rate)} msg/s",
            f"{fmt_rate(fb.rate)} msg/s",
            fmt_ratio(fr.rate / fb.rate),
        ],
    ]
    lines = [
        "## Replay timing",
        "",
        f"Written by `bench/replay` on {utc_now()} (`{command}`, {r.elapsed_s:.0f} s).",
        "",
        "Machine:",
        "",
        r.machine.markdown(r.load_at_end, r.gauge_at_end),
        "",
        f"The recording (bench/replay/schedule.py): {cfg.span_s / 60:g} recorded minutes, "
        f"{len(rec.items):,} valid contract v1 messages ({feeds}) — the feed simulator's messages as a "
        f"Poisson process of {cfg.background_per_s:g} per recorded second, plus {len(rec.bursts)} "
        f"bursts of {cfg.calls_per_burst} 110 calls each (gaps from 0.4 s growing to 6 s, times recorded "
        "to the whole second, so several calls are due at the same instant). Played by "
        "`simulators.exercise_run.run_exercise` (exercise row in a scratch database, control stream in "
        "Redis, QoS 1) to a private Mosquitto with the project's configuration; a bare paho subscriber "
        "in its own process notes each arrival. **Timing error** of a message: its arrival after the "
        "first message's arrival minus its scheduled distance from the first message ÷ speed (positive: "
        "late) — end to end, what a drill's receivers see. *Send drift* is the publisher's own "
        "measure: send − due. **Baseline**: a bare loop that sleeps until each due time, stamps `ts`, "
        "encodes and publishes with a bare paho client at QoS 1 (no clock object, no control stream, "
        "no exercise row); same schedule, same broker, same receiver.",
        "",
        "### Relative timing, end to end",
        "",
        table(
            [
                "schedule",
                "publisher",
                "received",
                "scheduled s",
                "error p50 ms",
                "p99",
                "max",
                "min",
                "send drift p50 / p99 / max ms",
                "others, cores",
            ],
            rows,
        ),
        "",
        "### Runner ÷ baseline",
        "",
        "Timing: *p99 \\|error\\|* is the p99 of the absolute timing error above; *spread* is its p99 − p1, "
        "which does not depend on how late the first message itself was (the reference of every other "
        "message's error).",
        "",
        table(
            [
                "schedule",
                "p99 \\|error\\| ms, runner",
                "baseline",
                "runner ÷ baseline",
                "spread ms, runner",
                "baseline",
                "runner ÷ baseline",
            ],
            timing_rows,
        ),
        "",
        table(["throughput", "runner", "baseline", "runner ÷ baseline"], ratio_rows),
    ]
    c = r.control
    if c is not None:
        lines += [
            "",
            "### Control during a ×10 run: pause, play, seek",
            "",
            f"{cfg.control_window_s:g} recorded seconds around a burst ({c.items:,} messages) at ×10: "
            f"`pause` after {cfg.pause_at_s:g} s, `play` {cfg.pause_for_s:g} s later, then after "
            f"{cfg.seek_after_s:g} s a `seek` {cfg.seek_jump_s:g} recorded seconds ahead (to "
            f"{c.seek_to_s:g} s), commands appended to the exercise's Redis stream as the console does.",
            "",
            table(
                ["", "measured"],
                [
                    [
                        "sent while paused (offset past the pause position, arrived before `play`)",
                        f"**{c.sent_while_paused}**",
                    ],
                    [
                        "sent before the pause took effect, arrived after the command",
                        f"{c.in_flight_at_pause}"
                        + (
                            f" (the last {c.pause_effect_ms:.0f} ms after the command)"
                            if c.in_flight_at_pause
                            else ""
                        ),
                    ],
                    ["position while paused", "unchanged" if c.position_still else "**moved**"],
                    [
                        "first message after `play`: arrival − when it was due after the command",
                        f"{c.resume_lag_ms:.1f} ms",
                    ],
                    [
                        "first message after `seek`: arrival − when it was due after the command",
                        f"{c.seek_lag_ms:.1f} ms",
                    ],
                    [
                        "sent / skipped by the seek / received / duplicates",
                        f"{c.sent:,} / {c.skipped:,} / {c.received:,} / {c.duplicates}",
                    ],
                    ["messages at or past the seek target that never arrived", str(c.missing_after_seek)],
                    [
                        "send drift p50 / p99 / max",
                        f"{c.drift.p50:.2f} / {c.drift.p99:.2f} / {c.drift.max:.2f} ms",
                    ],
                ],
            ),
            "",
            "Timing error within each stretch (relative to the stretch's first message):",
            "",
            table(
                ["stretch", "messages", "p50 ms", "p99 ms", "max ms"],
                [
                    _stretch("before the pause", c.before),
                    _stretch("after `play`", c.after_resume),
                    _stretch("after `seek`", c.after_seek),
                ],
            ),
        ]
        if c.errors:
            lines += ["", "Runner errors: " + "; ".join(c.errors[:5])]
    lines += ["", "### What it means for a drill planner", "", planner_note(r)]
    lines += [""]
    return "\n".join(lines)


def planner_note(r: Results) -> str:
    """The numbers above in a drill planner's terms (only what was measured)."""
    x100r, x100b = r.get("x100", "runner"), r.get("x100", "baseline")
    x10r, x1r = r.get("x10", "runner"), r.get("x1", "runner")
    fr, fb = r.get("flood", "runner"), r.get("flood", "baseline")
    worst = max(abs(e) for e in x100r.errors_ms) if x100r.errors_ms else float("nan")
    lost = sum(t.items - t.received for t in r.timings if t.who == "runner")
    text = (
        f"At ×100 a {r.config.span_s / 60:g}-minute recording played in {x100r.span_s:.1f} s (scheduled "
        f"{x100r.scheduled_s:.1f} s) with relative timing within {x100r.abs_p(99):.1f} ms p99 "
        f"({worst:.1f} ms at worst) end to end — {x100r.abs_p(99) * 100 / 1000:.1f} recorded seconds at "
        f"that speed — against {x100b.abs_p(99):.1f} ms p99 for the bare loop; at ×10 the p99 was "
        f"{x10r.abs_p(99):.1f} ms and at ×1 {x1r.abs_p(99):.1f} ms. Where the p50 is far from 0, most of "
        "that is the first message's own delay (every later message looks early against it): the width "
        f"of the error (p99 − p1) at ×100 was {x100r.spread:.1f} ms, the bare loop's {x100b.spread:.1f} ms. "
        + ("Every message arrived. " if lost == 0 else f"{lost} messages did not arrive. ")
        + "The limit is throughput, not timing: with everything due at once the runner sent "
        f"{fmt_rate(fr.rate)} msg/s (bare loop {fmt_rate(fb.rate)}), so a recording that holds more than "
        f"about {fmt_rate(fr.rate / 100)} messages per recorded second for long falls behind at ×100 "
        f"(at ×10: {fmt_rate(fr.rate / 10)}). A live window of the demo at its 500 msg/s, nearly all "
        f"routine sensor readings, can be replayed at up to about ×{max(1.0, fr.rate / 500):.0f}."
    )
    c = r.control
    if c is not None:
        text += (
            f" Pause: {c.sent_while_paused} messages past the pause position were sent while paused; "
            f"after `play` the next message arrived {c.resume_lag_ms:.0f} ms after its due time and "
            f"after `seek` {c.seek_lag_ms:.0f} ms (the runner looks at the control stream every 50 ms "
            "while playing)."
        )
    text += (
        " These are on a shared 2-core machine (see the load and the *others* column): the tails "
        "move with what else runs, the ratios less so."
    )
    return text


def print_summary(r: Results) -> None:
    print(
        table(
            [
                "case",
                "publisher",
                "received",
                "err p50 ms",
                "err p99 ms",
                "err max ms",
                "msg/s",
                "drift p99 ms",
            ],
            [
                [
                    t.case,
                    t.who,
                    f"{t.received}/{t.items}",
                    _ms(t.p(50)),
                    _ms(t.p(99)),
                    _ms(max(t.errors_ms, default=float("nan"))),
                    fmt_rate(t.rate),
                    f"{t.drift.p99:.2f}",
                ]
                for t in r.timings
            ],
        )
    )
    c = r.control
    if c is not None:
        print(
            f"\ncontrol: sent while paused {c.sent_while_paused}, resume lag {c.resume_lag_ms:.1f} ms, "
            f"seek lag {c.seek_lag_ms:.1f} ms, after play p99 {percentile(c.after_resume, 99):.2f} ms, "
            f"after seek p99 {percentile(c.after_seek, 99):.2f} ms"
        )
    print(
        f"load {fmt_load(r.load_at_end)}; speed gauge {r.machine.gauge_us:.1f} → {r.gauge_at_end:.1f} µs; "
        f"{r.elapsed_s:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay", description="Replay timing at ×1–×100.")
    p.add_argument("--quick", action="store_true", help="a 10-minute recording; about a minute")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--doc", default=str(BENCHMARKS_MD))
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS until other jobs use less than half a core",
    )
    ns = p.parse_args(argv)
    if ns.wait_quiet > 0:
        wait_until_quiet(0.5, ns.wait_quiet, window_s=10.0)
    results = run(QUICK if ns.quick else Config())
    print_summary(results)
    if not ns.no_write:
        args = " ".join(argv if argv is not None else sys.argv[1:])
        path = write_section(
            "replay", render(results, f"python -m bench.replay {args}".strip()), Path(ns.doc)
        )
        print(f"\nwrote the replay section of {path}")
    return 0
