"""``python -m simulators feeds --rate R --seed S --bad-fraction F [--duration S] [--count N]``
and ``python -m simulators drill run|validate|list`` (scripted exercises, docs/exercises.md).

Publishes every feed (sensors, video alerts, 110 calls, grid reports, team positions and
statuses) over MQTT at R messages per second. The broker comes from MQTT_URL
(``mqtt://user:pass@host:port``; user "simulator" when the URL names none) and
MQTT_PROTOCOL; ``--mqtt-url`` overrides. ``--dry-run`` prints the stream instead.
The city must be the one loaded into the database (``python -m wuwang.city load``): same
``--city-seed`` and sizes, which both default to the demo's.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from simulators import drill, exercise_daemon, registry_import, upper
from simulators.feeds import CST, FeedGenerator, FeedMix
from simulators.publish import BrokerConfig, RunConfig, broker_from_settings, run_processes, run_single
from wuwang.city import DEFAULT_CITY_SEED, CitySize, build_city
from wuwang.cli import parser_for
from wuwang.service import setup_logging
from wuwang.settings import get_settings

log = logging.getLogger("simulators.feeds")


def _start(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    return t if t.tzinfo is not None else t.replace(tzinfo=CST)  # a bare time is China time


def _positive(value: str) -> float:
    v = float(value)
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return v


def _fraction(value: str) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("must be within [0, 1]")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = parser_for("simulators")  # --help lists the settings too (wuwang.cli)
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("feeds", help="publish all feeds over MQTT")
    f.add_argument("--rate", type=_positive, default=50.0, help="messages per second (default 50)")
    f.add_argument("--seed", type=int, default=1, help="the stream's seed (default 1)")
    f.add_argument("--bad-fraction", type=_fraction, default=0.0, help="share of deliberately bad messages")
    f.add_argument("--duration", type=_positive, default=None, help="stop after this many seconds")
    f.add_argument("--count", type=int, default=None, help="stop after this many messages")
    f.add_argument("--processes", type=int, default=1, help="publisher processes (~550 msg/s each)")
    f.add_argument("--report-every", type=float, default=5.0, help="progress line every N s (0: off)")
    f.add_argument("--start", type=_start, default=None,
                   help="simulated start time, ISO 8601 (default: now, China time)")
    f.add_argument("--time-scale", type=_positive, default=1.0,
                   help="simulated seconds per wall second (e.g. 60: an hour a minute)")
    f.add_argument("--busy", type=_positive, default=1.0, help="multiply calls, reports, alerts, dispatches")
    f.add_argument("--mqtt-url", default=None, help="default: MQTT_URL from the settings")
    f.add_argument("--window", type=int, default=1000, help="unacknowledged messages in flight, at most")
    f.add_argument("--dry-run", action="store_true", help="print 'topic<TAB>payload' lines, publish nothing")
    f.add_argument("--city-seed", type=int, default=DEFAULT_CITY_SEED)
    f.add_argument("--shelter-counts", action="store_true",
                   help="teams also count people in the demo's shelters (teams/v2/<team>/shelter)")
    default = CitySize()
    for name in ("venues", "devices", "cameras", "patrol_units", "teams"):
        f.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(default, name))
    # Exercises: the daemon, CSV import and replay (H4, simulators/exercise_daemon.py).
    exercise_daemon.add_subcommands(sub)
    drill.add_subcommand(sub)  # scripted scenarios (H2, simulators/drill.py)
    registry_import.add_subcommand(sub)  # risk sources and shelters from CSV
    upper.add_subcommand(sub)  # the upper level's platform for upward reports (信息报送)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``argv`` None: this process's own, whose logging is set up here
    in the one format, wuwang.service; a caller passing ``argv`` keeps its logging)."""
    ns = build_parser().parse_args(argv)
    own_process = argv is None
    if ns.cmd in exercise_daemon.COMMANDS:
        return exercise_daemon.main(ns, setup_log=own_process)
    if ns.cmd == registry_import.COMMAND:
        return registry_import.main(ns)
    if ns.cmd == upper.COMMAND:
        if own_process:
            setup_logging("simulators-upper", "INFO")
        return upper.main(ns)
    if ns.cmd == drill.COMMAND:
        if own_process:
            setup_logging("simulators-drill", "INFO")
        return drill.main(ns)
    if own_process:
        setup_logging("simulators-feeds", "INFO")
    if ns.processes < 1:
        print("--processes must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = get_settings()
        broker: BrokerConfig | None = None if ns.dry_run else broker_from_settings(ns.mqtt_url)
    except ValueError as exc:  # pydantic's ValidationError is one
        print(f"bad settings: {exc}", file=sys.stderr)
        return 2
    start = ns.start or datetime.now(CST).replace(microsecond=0)
    size = CitySize(ns.venues, ns.devices, ns.cameras, ns.patrol_units, ns.teams)
    mix = replace(FeedMix(), busy=ns.busy)
    budget = ns.rate / ns.time_scale  # messages per simulated second
    city = build_city(ns.city_seed, size, settings.shared.grid_cell_deg)
    probe = FeedGenerator(city, seed=ns.seed, start=start,
                          rate=ns.rate,
                          time_scale=ns.time_scale, mix=mix)
    if budget < probe.demand_per_sim_second():
        log.warning("%.2f msg per simulated second is below the %.2f that calls, reports, video alerts"
                    " and team positions need: they are thinned and sensors get no room (raise --rate or"
                    " lower --time-scale)", budget, probe.demand_per_sim_second())
    if ns.dry_run:
        gen = FeedGenerator(
            probe.city, seed=ns.seed, start=start, rate=ns.rate,
            bad_fraction=ns.bad_fraction, time_scale=ns.time_scale, mix=mix,
        )
        limit = ns.count if ns.count is not None else int((ns.duration or 10) * ns.rate)
        out = sys.stdout.buffer
        for ev in gen.events(limit):
            out.write(ev.topic.encode() + b"\t" + ev.payload[:2000] + b"\n")
        return 0
    assert broker is not None
    cfg = RunConfig(
        broker=broker, rate=ns.rate, seed=ns.seed, start=start, bad_fraction=ns.bad_fraction,
        time_scale=ns.time_scale, count=ns.count, duration=ns.duration, city_seed=ns.city_seed,
        city_size=size, grid_deg=settings.shared.grid_cell_deg, mix=mix, window=ns.window,
        shelter_counts=ns.shelter_counts,
    )
    log.info("%s:%d user=%s MQTT %s QoS 1 rate=%g msg/s seed=%d start=%s processes=%d", broker.host,
             broker.port, broker.username, broker.protocol, ns.rate, ns.seed, start.isoformat(), ns.processes)
    if ns.processes == 1:
        return run_single(cfg, ns.report_every)
    return run_processes(cfg, ns.processes, ns.report_every)


if __name__ == "__main__":
    raise SystemExit(main())
