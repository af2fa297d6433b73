"""``python -m simulators drill run|validate|list``: scripted exercises from a terminal.

- ``drill run <file> --speed N [--exercise-id ID] [--api URL] [--user U --password P]``
  runs a scenario (a file, or the name of one in simulators/scenarios) as an exercise
  and prints its report (sent, injects, timing drift); ``--dry-run`` prints the expanded
  timeline instead. Ctrl-C stops it cleanly (the exercise is marked finished, stopped).
- ``drill validate <file>...`` exits 2 and prints ``file:line: path: problem`` lines.
- ``drill list`` lists the shipped scenarios.

Hooked into simulators/__main__.py; kept apart so ``feeds`` starts without the scenario
machinery (the demo registries take a second to build).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

COMMAND = "drill"


def add_subcommand(sub: argparse._SubParsersAction[Any]) -> None:
    d = sub.add_parser(COMMAND, help="scripted exercises (演练): run, validate, list scenarios")
    dsub = d.add_subparsers(dest="drill_cmd", required=True)
    r = dsub.add_parser("run", help="run a scenario as an exercise")
    r.add_argument("file", help="a scenario YAML file, or the name of one in simulators/scenarios")
    r.add_argument("--speed", type=float, default=1.0, help="times real time, 1-100 (default 1)")
    r.add_argument("--exercise-id", default=None, help="default: EX-<date>-<time>-<scenario>")
    r.add_argument("--api", default=None, help="command API URL (default: DRILL_API_URL, else the console's)")
    r.add_argument("--user", default=None, help="drill planner (default: DRILL_USER, else planner1)")
    r.add_argument("--password", default=None, help="default: DRILL_PASSWORD (demo mode: the demo one)")
    r.add_argument("--dry-run", action="store_true", help="print the expanded timeline, send nothing")
    r.add_argument("--no-virtual-crews", dest="virtual_crews", action="store_false",
                   help="do not answer the drill's dispatch orders with virtual crews (模拟队伍)")
    v = dsub.add_parser("validate", help="check scenario files (exit 2 with file:line errors)")
    v.add_argument("files", nargs="+")
    dsub.add_parser("list", help="the shipped scenarios")


def main(ns: argparse.Namespace) -> int:
    from simulators.exercise_run import InjectApi, TimedInject, TimedMessage, run_exercise
    from simulators.feeds import CST
    from simulators.scenario import (
        ScenarioError,
        demo_world,
        expand,
        format_offset,
        load_scenario,
        scenario_path,
        shipped_scenarios,
    )
    from wuwang.exercises import ExerciseKind, ExerciseStatus
    from wuwang.settings import get_settings

    world = demo_world()
    if ns.drill_cmd == "list":
        for path in shipped_scenarios():
            try:
                s = load_scenario(path, world)
            except ScenarioError as exc:
                print(f"{path.name:28} INVALID: {exc.problems[0]}")
                continue
            print(f"{path.name:28} {format_offset(s.duration_s):>6} {len(s.injects):3d} injects  {s.name}")
        return 0
    if ns.drill_cmd == "validate":
        bad = 0
        for name in ns.files:
            try:
                s = load_scenario(name, world)
            except ScenarioError as exc:
                bad += 1
                print("\n".join(exc.problems), file=sys.stderr)
                continue
            n = len(expand(s, world))
            print(f"{Path(name).name}: ok — {s.name}: {len(s.injects)} injects, {n} items "
                  f"over {format_offset(s.duration_s)}")
        return 2 if bad else 0

    path = Path(ns.file)
    if not path.exists():
        try:
            path = scenario_path(ns.file)
        except ValueError as exc:
            print(f"{ns.file}: {exc}", file=sys.stderr)
            return 2
    try:
        scenario = load_scenario(path, world)
    except ScenarioError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    items = expand(scenario, world)
    if ns.dry_run:
        for it in items:
            if isinstance(it, TimedMessage):
                what, data = it.topic, it.payload
            else:
                what, data = "POST /exercises/{id}/injects", it.body
            print(f"{format_offset(it.offset_s)}\t{it.label}\t{what}\t{json.dumps(data, ensure_ascii=False)}")
        return 0
    if not 1.0 <= ns.speed <= 100.0:
        print("--speed must be within 1-100", file=sys.stderr)
        return 2
    exercise_id = ns.exercise_id or f"EX-{datetime.now(CST):%Y%m%d-%H%M%S}-{path.stem}"[:64]
    try:
        settings = get_settings()
        api = None
        if any(isinstance(it, TimedInject) for it in items):
            api = InjectApi.from_settings(settings, ns.api, ns.user, ns.password)
    except ValueError as exc:  # pydantic's ValidationError is one
        print(f"bad settings: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"[drill] {exercise_id}: {scenario.name} — {len(items)} items over "
          f"{format_offset(scenario.duration_s)} at ×{ns.speed:g}", file=sys.stderr, flush=True)
    report = run_exercise(
        settings, exercise_id, items, speed=ns.speed, api=api, stop=stop, name=scenario.name,
        kind=ExerciseKind.SCENARIO, source=path.name, created_by=api.username if api else None,
        virtual_crews=ns.virtual_crews,  # on unless --no-virtual-crews
    )
    d = report.drift
    print(f"[drill] {exercise_id} {report.status}: sent {report.sent} (acked {report.acked}, refused "
          f"{report.refused}), injects {report.injects} (failed {report.injects_failed}), skipped "
          f"{report.skipped}, crews {report.crew_orders} orders ({report.crew_sent} messages); "
          f"drift ms p50 {d.p50:.1f} p95 {d.p95:.1f} p99 {d.p99:.1f} max {d.max:.1f}",
          file=sys.stderr)
    for err in report.errors:
        print(f"[drill]   {err}", file=sys.stderr)
    ok = report.status == ExerciseStatus.FINISHED and not report.injects_failed and not report.refused
    return 0 if ok else 1
