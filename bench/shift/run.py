"""Shift benchmark: a busy peak hour of the demo city with a known ground truth, through
the real ingest → command triage → inbox / incidents, scored against the truth.

``python -m bench.shift [--minutes 60] [--speed 30] [--seed 9] [--json FILE]``

1. A scratch stack: PostgreSQL (the local server or an embedded one) with a scratch
   database created, migrated and dropped here — never the shared data — a private
   Mosquitto and a private Redis; the ingest and the command service in this process.
2. The demo city (wuwang.city), its users, and the window's planned event (大型活动).
3. :func:`simulators.ground_truth.peak_hour` makes the window's messages; they are
   published over MQTT at ``--speed`` times real time, each stamped with its own time
   in the window (``ts``). Triage follows the messages' clocks (windows, radii), so the
   compressed replay decides as the real hour would. The inbox expiry worker, which
   runs on the wall clock, is left out (it would expire rows of a compressed hour early).
4. Once the command service has taken every alarm, the ledger, incidents and inbox rows
   are read and scored (bench/shift/score.py); the JSON goes to ``--json``, the section
   to docs/benchmarks.md (``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.common import (
    BENCHMARKS_MD,
    create_scratch_database,
    drop_scratch_database,
    fmt_load,
    load_average,
    private_redis,
    table,
    utc_now,
    write_section,
)
from bench.shift.score import InboxRowSeen, LedgerAlarm, Observed, Score, score, start_for
from command.app import create_app, default_workers
from command.domain.triage import DEFAULT_RULES_FILE, parse_rules
from ingest.service import IngestService
from simulators.ground_truth import Mix, ShiftTruth, peak_hour
from testkit.feeds import Publisher
from testkit.stack import ServerThread, seed
from wuwang.city import City, CitySize, build_city
from wuwang.endpoints import Endpoints, LocalServices, free_port
from wuwang.settings import Settings


def log(msg: str) -> None:
    print(f"[bench.shift] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Config:
    minutes: float = 60.0
    speed: float = 30.0
    seed: int = 9
    city: CitySize | None = None  # None: the demo city
    mix: Mix | None = None
    settle_timeout_s: float = 120.0


@dataclass
class Run:
    config: Config
    truth: ShiftTruth
    score: Score
    load: tuple[float, float, float]
    replay_s: float
    settle_s: float


@contextlib.contextmanager
def scratch_stack(workdir: Path, city: City) -> Iterator[tuple[str, str, Endpoints]]:
    """A migrated scratch database seeded with ``city``, a private broker and Redis, the
    ingest and the command service (without the wall-clock inbox expiry). Yields the
    database URL, the simulator's MQTT URL and the endpoints."""
    local = LocalServices(
        Settings(demo_mode=True, data_dir=workdir),
        database_name="wuwang_bench_shift_base",
        broker_mode="private",
    )
    endpoints = local.start()
    name = f"wuwang_bench_shift_{uuid.uuid4().hex[:8]}"
    admin_url, db_url = "", ""
    redis_server = None
    parts: list[Any] = []
    try:
        endpoints, redis_server = private_redis(endpoints, workdir)
        admin_url, db_url = create_scratch_database(endpoints.database_url, name)
        seed(db_url, city, field_users=False)
        run_id = uuid.uuid4().hex[:8]
        common: dict[str, Any] = {
            "demo_mode": True,
            "database_url": db_url,
            "redis_url": endpoints.redis_url,
            "mqtt_protocol": endpoints.mqtt_protocol,
            "alarm_stream": f"bench:shift:{run_id}",
            "command_mqtt_client_id": f"command-shift-{run_id}",
            "command_mqtt_forget_session_on_stop": True,
            "ingest_client_id": f"ingest-shift-{run_id}",
            "ingest_shared_group": f"ingest{run_id}" if endpoints.broker != "amqtt" else "",
            "command_shared_group": f"command{run_id}" if endpoints.broker != "amqtt" else "",
        }
        ingest = IngestService(
            Settings(**{**common, "mqtt_url": endpoints.mqtt_url_for("ingest")}), serve_metrics=False
        )
        ingest.start()
        parts.append(ingest)
        if not ingest.wait_ready(30):
            raise RuntimeError("ingest did not subscribe")
        workers = default_workers(inbox_expiry=False)
        command_settings = Settings(**{**common, "mqtt_url": endpoints.mqtt_url_for("command")})
        command = ServerThread(create_app(command_settings, workers), free_port(), "command")
        command.start()
        parts.append(command)
        yield db_url, endpoints.mqtt_url_for("simulator"), endpoints
    finally:
        for part in reversed(parts):
            with contextlib.suppress(Exception):
                if isinstance(part, IngestService):
                    part.stop(forget_session=True)
                else:
                    part.stop()
        if admin_url:
            drop_scratch_database(admin_url, name)
            drop_scratch_database(admin_url, "wuwang_bench_shift_base")
        if redis_server is not None:
            redis_server.stop()
        local.stop()


def register_planned(db_url: str, truth: ShiftTruth, start: datetime) -> None:
    with psycopg.connect(db_url) as conn:
        for p in truth.planned:
            conn.execute(
                "INSERT INTO planned_event (event_id, name, place, lat, lon, radius_m, starts_at, ends_at,"
                " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'bench')",
                (
                    p.event_id,
                    p.name,
                    p.name,
                    p.lat,
                    p.lon,
                    p.radius_m,
                    start + timedelta(seconds=p.starts_at_s),
                    start + timedelta(seconds=p.ends_at_s),
                ),
            )
        conn.commit()


def replay(truth: ShiftTruth, start: datetime, speed: float, mqtt_url: str, protocol: str) -> float:
    """Publish every signal at its time (÷ speed), stamped with its time in the window."""
    publisher = Publisher(mqtt_url, protocol=protocol)
    began = time.monotonic()
    try:
        i = 0
        signals = truth.signals
        while i < len(signals):
            due = began + signals[i].at_s / speed
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            batch = []
            now = time.monotonic()
            while i < len(signals) and began + signals[i].at_s / speed <= now + 0.01:
                s = signals[i]
                ts = (start + timedelta(seconds=s.at_s)).isoformat()
                batch.append((s.topic, orjson.dumps({**s.payload, "ts": ts})))
                i += 1
            publisher.publish_all(batch)
    finally:
        publisher.close()
    return time.monotonic() - began


def observe(db_url: str) -> Observed:
    with psycopg.connect(db_url) as conn:
        ledger = [
            LedgerAlarm(a, datetime.fromisoformat(ts), row, rule)
            for a, ts, row, rule in conn.execute(
                "SELECT alarm_id, payload->>'ts', triage_row_id, triage_rule FROM alarm_inbox"
                " WHERE exercise_id IS NULL"
            ).fetchall()
        ]
        sources: dict[str, list[str]] = {}
        for inc, alarm_id in conn.execute(
            "SELECT i.id, s.alarm_id FROM incident i LEFT JOIN incident_source s ON s.incident_id = i.id"
            " WHERE i.exercise_id IS NULL"
        ).fetchall():
            sources.setdefault(inc, [])
            if alarm_id is not None:
                sources[inc].append(alarm_id)
        rows = [
            InboxRowSeen(*r)
            for r in conn.execute(
                "SELECT row_id, state, acted_role, incident_id FROM triage_row WHERE exercise_id IS NULL"
            ).fetchall()
        ]
    return Observed(ledger, sources, rows)


def settle(db_url: str, expected: int, timeout_s: float) -> int:
    """Wait until the command service has taken ``expected`` alarms (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    taken = 0
    while time.monotonic() < deadline:
        with psycopg.connect(db_url) as conn:
            found = conn.execute("SELECT count(*) FROM alarm_inbox").fetchone()
        taken = int(found[0]) if found else 0
        if taken >= expected:
            time.sleep(1.0)  # the last alarm's transaction and its story links
            return taken
        time.sleep(0.5)
    return taken


def run(cfg: Config) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="wuwang-bench-shift-"))
    workdir.chmod(0o755)
    try:
        city = build_city(size=cfg.city) if cfg.city else build_city()
        truth = peak_hour(city, seed=cfg.seed, minutes=cfg.minutes, mix=cfg.mix)
        log(f"{len(truth.signals)} messages, {len(truth.alarms)} alarms, {len(truth.events)} true events")
        with scratch_stack(workdir, city) as (db_url, mqtt_url, endpoints):
            start = start_for(datetime.now(UTC), cfg.minutes, cfg.speed)
            register_planned(db_url, truth, start)
            log(f"replaying {cfg.minutes:g} min at ×{cfg.speed:g}")
            replay_s = replay(truth, start, cfg.speed, mqtt_url, endpoints.mqtt_protocol)
            t0 = time.monotonic()
            taken = settle(db_url, len(truth.alarms), cfg.settle_timeout_s)
            settle_s = time.monotonic() - t0
            log(f"the command service took {taken} of {len(truth.alarms)} alarms")
            load = load_average()
            result = score(truth, start, observe(db_url))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Run(cfg, truth, result, load, replay_s, settle_s)


def as_json(r: Run) -> dict[str, Any]:
    return {
        "benchmark": "shift",
        "when": utc_now(),
        "config": {"minutes": r.config.minutes, "speed": r.config.speed, "seed": r.config.seed},
        "rules_version": rules_version(),
        "replay_s": round(r.replay_s, 1),
        "settle_s": round(r.settle_s, 1),
        "load_average": list(r.load),
        "true_events_by_kind": _kinds(r.truth),
        **r.score.as_json(),
    }


def rules_version() -> int:
    """The version of the triage rules the command service ran with (the shipped file)."""
    return parse_rules(DEFAULT_RULES_FILE.read_text(encoding="utf-8"), str(DEFAULT_RULES_FILE)).version


def _kinds(truth: ShiftTruth) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in truth.events:
        out[e.kind] = out.get(e.kind, 0) + 1
    return dict(sorted(out.items()))


def _alarm_mix(truth: ShiftTruth) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for s in truth.alarms:
        key = "true event" if s.event_id else s.label.split(" (")[0]
        if s.event_id is None and s.label.startswith("single "):
            key = "single low-confidence alert"
        elif s.event_id is None and s.label.endswith(" blip"):
            key = "sensor blip"
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


METHOD = (
    "**Method.** `simulators/ground_truth.py` makes a busy peak hour of the demo city where every"
    " message knows what it is. True events: plain 110 calls (disputes, thefts, medical …),"
    " fires (a smoke detector, then a camera and callers), traffic accidents (a camera, then"
    " callers within a minute), gas leaks (a gas detector), persons down (a confident camera),"
    " fights (a camera and a caller or a second camera), floods (two water-level sensors), a"
    " crowd surge at a registered planned event (大型活动); a second caller now and then. Noise:"
    " loitering storms (one camera every 4–20 s for 10–25 min), flapping cameras, single"
    " low-confidence alerts of every video event (0.80–0.89), sensor blips (one crossing, then"
    " clear; smoke, gas and CO detectors too) and a flapping temperature sensor. Modelling"
    " assumption: a real event's detector reads 1.6–4× its alarm level, a nuisance blip"
    " 1.0–1.4×. The messages go over MQTT at `--speed` × real time, each stamped with its own"
    " time in the hour, through the real ingest and command service on a scratch stack"
    " (scratch database created and dropped, private Mosquitto and Redis; the wall-clock inbox"
    " expiry is off, the hour being compressed). Scoring (bench/shift/score.py): an incident"
    " *matches* a true event when one of its alarms (sources, or alarms of inbox rows linked to"
    " it) belongs to the event; an event is *surfaced* when an incident holds one of its alarms"
    " ≤ 60 s after its first signal (the messages' own times); *operator items* are the"
    " incidents plus the inbox rows an operator must look at (all rows but those the system"
    " itself linked into an incident).",
)


def render(r: Run, command: str) -> str:
    s = r.score
    met = s.targets_met
    ok = {True: "met", False: "**missed**"}
    lines = [
        "## Shift",
        "",
        *METHOD,
        "",
        f"`{command}` — {utc_now()}; {s.minutes:g} simulated minutes replayed at ×{r.config.speed:g}"
        f" in {r.replay_s:.0f} s (load average {fmt_load(r.load)}), seed {r.config.seed}.",
        "",
        f"The rules measured: command/triage/rules.yaml version {rules_version()} (docs/triage.md).",
        "",
        table(
            ["measure", "value", "target", ""],
            [
                ["raw alarms (taken by the command service)", s.raw_alarms, "", ""],
                ["true events", s.true_events, "", ""],
                [
                    "true events surfaced as an incident ≤ 60 s after their first signal",
                    f"{s.true_events_surfaced} ({s.recall_true_events:.0%})",
                    "100 %",
                    ok[met["recall_true_events"]],
                ],
                [
                    "110 calls in an incident",
                    f"{s.calls_surfaced} of {s.calls} ({s.recall_calls:.0%})",
                    "100 %",
                    ok[met["recall_calls"]],
                ],
                [
                    "incidents matching a true event",
                    f"{s.incidents_matching_true_events} of {s.incidents} ({s.matching_ratio:.0%})",
                    "≥ 90 %",
                    ok[met["incidents_matching_ratio"]],
                ],
                ["duplicate incidents (a 2nd incident of one true event)", s.duplicate_incidents, "", ""],
                [
                    "inbox rows (all / for the operator)",
                    f"{s.inbox_rows} / {s.inbox_rows_for_operator}",
                    "",
                    "",
                ],
                [
                    "operator items (incidents + inbox rows for the operator)",
                    f"{s.operator_items} = {s.items_per_raw_alarm:.1%} of raw alarms;"
                    f" {s.operator_items_per_hour:.0f} per hour",
                    "≤ 20 %",
                    ok[met["operator_items_per_raw_alarm"]],
                ],
            ],
        ),
        "",
        "The hour's alarms: "
        + ", ".join(f"{k} {v}" for k, v in _alarm_mix(r.truth))
        + ". True events: "
        + ", ".join(f"{k} {v}" for k, v in _kinds(r.truth).items())
        + ".",
        "",
        "Promotions by rule (alarms): "
        + ", ".join(f"`{k}` {v}" for k, v in sorted(s.promoted_by.items()))
        + ".",
    ]
    if s.surfaced_after_s:
        worst = max(s.surfaced_after_s)
        lines += ["", f"Surfaced after their first signal: at worst {worst:.0f} s."]
    if s.missed:
        lines += ["", "Missed: " + "; ".join(json.dumps(m, ensure_ascii=False) for m in s.missed) + "."]
    if s.false_incidents:
        lines += [
            "",
            "Incidents of no true event (what opened them): "
            + "; ".join(", ".join(f["alarms"]) for f in s.false_incidents)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    # the docstring's first paragraph, a whole sentence (its first line stops mid-sentence)
    summary = " ".join((__doc__ or "").split("\n\n", 1)[0].split())
    parser = argparse.ArgumentParser(prog="python -m bench.shift", description=summary)
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes (default 60)")
    parser.add_argument("--speed", type=float, default=30.0, help="replay speed, × real time (default 30)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    ns = parser.parse_args(argv)
    if ns.minutes <= 0 or ns.speed < 1:
        parser.error("--minutes must be > 0 and --speed ≥ 1")
    cfg = replace(Config(), minutes=ns.minutes, speed=ns.speed, seed=ns.seed)
    r = run(cfg)
    out = as_json(r)
    if ns.json:
        ns.json.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        log(f"results in {ns.json}")
    if not ns.no_doc:
        command = "python -m bench.shift " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section("shift", render(r, command.strip()), BENCHMARKS_MD)
        log(f"section written to {BENCHMARKS_MD}")
    print(json.dumps(out["ratios"] | {"targets_met": out["targets_met"]}, ensure_ascii=False))
    return 0
