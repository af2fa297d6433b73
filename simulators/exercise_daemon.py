"""The exercise daemon and the import/replay command lines.

``python -m simulators exercises`` runs the exercises the command API registers: it
claims ``planned`` rows of kind ``replay`` or ``scenario`` from table ``exercise``
(``SELECT … FOR UPDATE SKIP LOCKED``, so several daemons never run one exercise twice),
turns each into timed items — a scenario file (simulators/scenario.py) or a replay
source (simulators/replay.py) — and runs it with ``run_exercise``
(simulators/exercise_run.py), a few at a time (``--workers``).

A claimed exercise is marked in ``stats.runner`` and guarded by a PostgreSQL session
advisory lock held while it runs; a daemon starting (and every minute) marks
``failed`` the marked exercises still ``running``/``paused`` whose lock nobody holds —
their runner died — instead of leaving them running forever.

``python -m simulators import`` and ``python -m simulators replay`` are the same pieces
from a terminal (docs/exercises.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from simulators.exercise_clock import check_speed
from simulators.exercise_run import Item, RunReport, run_exercise
from simulators.importer import DatasetExists, ImportFileError, MappingError, import_csv, load_mapping
from simulators.replay import (
    Point,
    ReplayError,
    ReplaySource,
    ReplaySourceError,
    build_items,
    parse_replay_source,
)
from wuwang.exercises import MAX_SPEED, MIN_SPEED, ExerciseKind, ExerciseStatus, valid_exercise_id
from wuwang.service import EXIT_CONFIG, ConfigError, Service, load_settings, run, setup_logging
from wuwang.settings import DEFAULT_DATABASE_URL, Settings

log = logging.getLogger("simulators.exercises")

#: First key of the two-key advisory locks that say "a runner is running this exercise".
RUNNER_LOCK_CLASS = 0x5758  # "WX"
SWEEP_EVERY_S = 60.0
COMMANDS = ("exercises", "import", "replay")


def _database_url(settings: Settings) -> str:
    return settings.shared.database_url or DEFAULT_DATABASE_URL


def _runner_mark() -> dict[str, Any]:
    return {"runner": {"host": socket.gethostname(), "pid": os.getpid(),
                       "claimed_at": datetime.now(UTC).isoformat(timespec="seconds")}}


# --- claiming, locking, sweeping -------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: str
    name: str
    kind: str
    source: str
    speed: float
    created_by: str


_CLAIM = (
    "SELECT id, name, kind, source, speed, created_by FROM exercise "
    "WHERE status = 'planned' AND kind IN ('replay', 'scenario') "
    "ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)


def claim_next(conn: psycopg.Connection[Any]) -> Claimed | None:
    """Claim the oldest planned exercise: lock it for this session, mark it running.

    ``conn`` is the runner's own autocommit connection: the advisory lock taken here
    belongs to its session and says "being run" until :func:`release` (or the session
    ends — a dead runner's lock goes with it). Taken before COMMIT, so no sweep ever
    sees the claimed row running without the lock.
    """
    with conn.transaction():
        row = conn.execute(_CLAIM).fetchone()
        if row is None:
            return None
        claimed = Claimed(row[0], row[1], row[2], row[3], float(row[4]), row[5])
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (RUNNER_LOCK_CLASS, claimed.id))
        conn.execute(
            "UPDATE exercise SET status = 'running', started_at = now(), stats = stats || %s WHERE id = %s",
            (Jsonb(_runner_mark()), claimed.id),
        )
    return claimed


def release(conn: psycopg.Connection[Any], exercise_id: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (RUNNER_LOCK_CLASS, exercise_id))


def fail(conn: psycopg.Connection[Any], exercise_id: str, reason: str) -> None:
    """Mark an exercise failed with the reason in ``stats.error`` (shown on the console)."""
    conn.execute(
        "UPDATE exercise SET status = 'failed', finished_at = now(), stats = stats || %s WHERE id = %s",
        (Jsonb({"error": reason[:1000]}), exercise_id),
    )


def sweep_orphans(conn: psycopg.Connection[Any]) -> list[str]:
    """Mark failed the runner-marked exercises still running or paused whose runner is
    gone (nobody holds their lock). Returns their ids."""
    rows = conn.execute(
        "SELECT id FROM exercise WHERE status IN ('running', 'paused') "
        "AND kind IN ('replay', 'scenario') AND stats ? 'runner'"
    ).fetchall()
    swept = []
    for (exercise_id,) in rows:
        got = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (RUNNER_LOCK_CLASS, exercise_id)
        ).fetchone()
        if got is None or not got[0]:
            continue  # alive: some runner holds it
        try:
            cur = conn.execute(
                "UPDATE exercise SET status = 'failed', finished_at = now(), stats = stats || %s "
                "WHERE id = %s AND status IN ('running', 'paused')",
                (Jsonb({"error": "the exercise runner stopped before the end (process gone)"}), exercise_id),
            )
            if cur.rowcount:
                swept.append(exercise_id)
                log.warning("exercise %s: its runner is gone; marked failed", exercise_id)
        finally:
            release(conn, exercise_id)
    return swept


# --- what to run ------------------------------------------------------------------------


class PlanError(ValueError):
    """The exercise cannot be turned into items (bad source, unknown scenario or dataset)."""


@dataclass(frozen=True)
class Plan:
    items: Sequence[Item]
    sim_start: datetime | None


def plan_exercise(conn: psycopg.Connection[Any], kind: str, source: str) -> Plan:
    """The items of a scenario (``source`` = file name in simulators/scenarios) or of a
    replay (``source`` = the JSON of simulators.replay.ReplaySource). Raises PlanError."""
    if kind == ExerciseKind.REPLAY:
        try:
            replay = build_items(conn, parse_replay_source(source))
        except (ReplaySourceError, ReplayError) as exc:
            raise PlanError(str(exc)) from None
        return Plan(replay.items, replay.sim_start)
    if kind == ExerciseKind.SCENARIO:
        # Imported here: the scenario world pulls in the demo city, plans and reserve.
        from simulators.scenario import demo_world, expand, load_scenario, scenario_path

        try:
            world = demo_world()
            return Plan(expand(load_scenario(scenario_path(source), world), world), None)
        except ValueError as exc:  # ScenarioError is one: its text lists file:line problems
            raise PlanError(str(exc)) from None
    raise PlanError(f"an exercise of kind {kind!r} is not run")


def run_claimed(settings: Settings, conn: psycopg.Connection[Any], claimed: Claimed,
                stop: threading.Event) -> RunReport | None:
    """Plan and run one claimed exercise; a failure is recorded on its row, never raised."""
    try:
        check_speed(claimed.speed)
        plan = plan_exercise(conn, claimed.kind, claimed.source)
    except (PlanError, ValueError) as exc:
        log.error("exercise %s (%s %s) cannot run: %s", claimed.id, claimed.kind, claimed.source[:200], exc)
        fail(conn, claimed.id, str(exc))
        return None
    if not plan.items:
        log.warning("exercise %s: nothing to send (empty window or dataset)", claimed.id)
    try:
        return run_exercise(
            settings, claimed.id, plan.items, speed=claimed.speed, stop=stop, name=claimed.name,
            kind=claimed.kind, source=claimed.source, created_by=claimed.created_by, sim_start=plan.sim_start,
            virtual_crews=True,  # the drill's dispatch orders are answered by virtual crews
        )
    except Exception as exc:  # run_exercise has marked the row failed where it could
        log.exception("exercise %s failed", claimed.id)
        conn.execute(
            "UPDATE exercise SET status = 'failed', finished_at = now(), stats = stats || %s "
            "WHERE id = %s AND status IN ('running', 'paused')",
            (Jsonb({"error": f"{type(exc).__name__}: {exc}"[:1000]}), claimed.id),
        )
        return None


def _worker(settings: Settings, stop: threading.Event, poll_s: float, n: int) -> None:
    while not stop.is_set():
        try:
            with psycopg.connect(_database_url(settings), autocommit=True, connect_timeout=5) as conn:
                while not stop.is_set():
                    claimed = claim_next(conn)
                    if claimed is None:
                        stop.wait(poll_s)
                        continue
                    log.info("worker %d: running %s %s (%s) at ×%g", n, claimed.kind, claimed.id,
                             claimed.source[:200], claimed.speed)
                    try:
                        run_claimed(settings, conn, claimed, stop)
                    finally:
                        release(conn, claimed.id)
        except psycopg.OperationalError as exc:
            log.warning("worker %d: database unreachable (%s); retrying", n, exc)
            stop.wait(max(poll_s, 2.0))


def serve(settings: Settings, stop: threading.Event, *, workers: int = 2, poll_s: float = 1.0) -> int:
    """Run planned exercises until ``stop``: ``workers`` at a time."""
    threads = [
        threading.Thread(target=_worker, args=(settings, stop, poll_s, k + 1), name=f"exercises-{k + 1}")
        for k in range(workers)
    ]
    for t in threads:
        t.start()
    log.info("exercise runner: %d workers, polling every %.1f s", workers, poll_s)
    while not stop.is_set():
        try:
            with psycopg.connect(_database_url(settings), autocommit=True, connect_timeout=5) as conn:
                sweep_orphans(conn)
        except psycopg.Error as exc:
            log.warning("sweep of orphaned exercises failed: %s", exc)
        stop.wait(SWEEP_EVERY_S)
    for t in threads:
        t.join()
    return 0


# --- command lines ----------------------------------------------------------------------


def _speed(value: str) -> float:
    try:
        return check_speed(float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number within {MIN_SPEED:g}–{MAX_SPEED:g}") from None


def _aware(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a UTC offset, e.g. 2026-03-01T08:00:00+08:00")
    return t


def _point(value: str) -> Point:
    try:
        lat, lon = (float(v) for v in value.split(","))
        return Point(lat=lat, lon=lon)
    except ValueError:
        raise argparse.ArgumentTypeError("LAT,LON, e.g. 32.01,112.12") from None


def add_subcommands(sub: Any) -> None:
    """Add ``exercises``, ``import`` and ``replay`` to ``python -m simulators``."""
    e = sub.add_parser("exercises", help="run the exercises the command API registers (daemon)")
    e.add_argument("--workers", type=int, default=2, help="exercises run at once (default 2)")
    e.add_argument("--poll", type=float, default=1.0, help="seconds between looks for new exercises")

    i = sub.add_parser("import", help="import historical call records from CSV as a dataset")
    i.add_argument("csv", type=Path)
    i.add_argument("--mapping", type=Path, required=True, help="mapping YAML (simulators/mappings/)")
    i.add_argument("--dataset-id", default=None, help="default: DS-<file>-<UTC time>")
    i.add_argument("--name", default=None, help="default: the file name")
    i.add_argument("--created-by", default=os.environ.get("USER") or "import")
    i.add_argument("--dry-run", action="store_true", help="read and report only; store nothing")

    r = sub.add_parser("replay", help="replay a recorded window or an imported dataset as an exercise")
    r.add_argument("--dataset", default=None, help="an imported dataset's id (else a recorded window)")
    r.add_argument("--start", type=_aware, default=None,
                   help="ISO 8601 with offset; a recorded window needs --start and --end")
    r.add_argument("--end", type=_aware, default=None, help="ISO 8601 with offset (exclusive)")
    r.add_argument("--speed", type=_speed, default=10.0, help="×1–×100 (default 10)")
    r.add_argument("--exercise-id", default=None, help="default: EX-<time>-replay-<random>")
    r.add_argument("--name", default=None)
    r.add_argument("--system-id", default=None, help="datasets: the 110 system's source id (sys110)")
    r.add_argument("--relocate-to", type=_point, default=None, metavar="LAT,LON",
                   help="datasets: move the calls' centre here (e.g. the demo city)")
    r.add_argument("--dry-run", action="store_true", help="print the items; publish nothing")


def cmd_import(ns: argparse.Namespace) -> int:
    try:
        mapping = load_mapping(ns.mapping)
    except MappingError as exc:
        print(f"broken mapping: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if ns.dry_run:
            from simulators.importer import read_calls

            with ns.csv.open(encoding=mapping.encoding, newline="") as f:
                _, report = read_calls(f, mapping, ns.csv.name)
            print(report.summary())
            return 0
        settings = load_settings()
        dataset_id, report = import_csv(_database_url(settings), ns.csv, mapping, dataset_id=ns.dataset_id,
                                        name=ns.name, created_by=ns.created_by)
    except ImportFileError as exc:
        print(f"{ns.csv}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (DatasetExists, OSError, ValueError, ConfigError, psycopg.Error) as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"dataset {dataset_id}: replay it with "
          f"python -m simulators replay --dataset {dataset_id} --speed 10")
    return 0


def _replay_source(ns: argparse.Namespace) -> ReplaySource:
    fields: dict[str, Any] = {"start": ns.start, "end": ns.end, "dataset_id": ns.dataset,
                              "relocate_to": ns.relocate_to}
    if ns.system_id:
        fields["system_id"] = ns.system_id
    try:
        return ReplaySource.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{key + ': ' if key else ''}{first['msg'].removeprefix('Value error, ')}") from None


@contextmanager
def registered(conn: psycopg.Connection[Any], exercise_id: str, name: str, source: ReplaySource,
               speed: float, created_by: str) -> Iterator[None]:
    """The replay's exercise row, inserted running (so no daemon claims it) and locked for
    the duration, like a daemon's claim."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (RUNNER_LOCK_CLASS, exercise_id))
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, speed, created_by, started_at, stats) "
            "VALUES (%s, %s, 'replay', %s, 'running', %s, %s, now(), %s)",
            (exercise_id, name, source.to_source(), speed, created_by, Jsonb(_runner_mark())),
        )
    try:
        yield
    finally:
        release(conn, exercise_id)


def cmd_replay(svc: Service, ns: argparse.Namespace) -> int:
    try:
        source = _replay_source(ns)
    except ValueError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    exercise_id = ns.exercise_id or f"EX-{datetime.now(UTC):%Y%m%d-%H%M}-replay-{secrets.token_hex(3)}"
    if not valid_exercise_id(exercise_id):
        print(f"replay: not an exercise id: {exercise_id!r}", file=sys.stderr)
        return EXIT_CONFIG
    with psycopg.connect(_database_url(svc.settings), autocommit=True, connect_timeout=5) as conn:
        try:
            plan = build_items(conn, source)
        except ReplayError as exc:
            print(f"replay: {exc}", file=sys.stderr)
            return 1
        span = f"{plan.sim_start.isoformat() if plan.sim_start else '?'} … " \
               f"{plan.sim_end.isoformat() if plan.sim_end else '?'}"
        print(f"replay {exercise_id}: {len(plan.items)} messages over {span} at ×{ns.speed:g}", flush=True)
        if ns.dry_run:
            for item in plan.items:
                print(f"{item.offset_s:10.3f}  {item.topic}  {item.label}")
            return 0
        name = ns.name or (f"回放：{source.dataset_id}" if source.dataset_id else f"回放：{span}")
        try:
            with registered(conn, exercise_id, name, source, ns.speed, os.environ.get("USER") or "cli"):
                report = run_exercise(svc.settings, exercise_id, plan.items, speed=ns.speed, stop=svc.stop,
                                      name=name, kind=ExerciseKind.REPLAY, source=source.to_source(),
                                      sim_start=plan.sim_start, virtual_crews=True)
        except psycopg.errors.UniqueViolation:
            print(f"replay: exercise {exercise_id} already exists", file=sys.stderr)
            return 1
    d = report.drift
    print(f"{report.status}: sent {report.sent} (acked {report.acked}, refused {report.refused}), "
          f"skipped {report.skipped}, wall {report.wall_s:.1f} s; timing drift p50 {d.p50:.1f} ms, "
          f"p95 {d.p95:.1f} ms, p99 {d.p99:.1f} ms, max {d.max:.1f} ms")
    return 0 if report.status == ExerciseStatus.FINISHED and not report.refused else 1


def main(ns: argparse.Namespace, *, setup_log: bool = True) -> int:
    """Run one of COMMANDS (argparse namespace from ``python -m simulators``);
    ``setup_log``: set up this process's logging for ``import`` (wuwang.service)."""
    if ns.cmd == "import":
        if setup_log:
            setup_logging("simulators-import", "WARNING")
        return cmd_import(ns)
    if ns.cmd == "replay":
        return run("simulators-replay", lambda svc: cmd_replay(svc, ns))
    if ns.cmd == "exercises":
        if ns.workers < 1:
            print("--workers must be at least 1", file=sys.stderr)
            return EXIT_CONFIG
        return run("simulators-exercises",
                   lambda svc: serve(svc.settings, svc.stop, workers=ns.workers, poll_s=ns.poll))
    raise ValueError(f"not an exercise command: {ns.cmd}")
