"""``python -m wuwang``: the one way to start things.

python -m wuwang migrate            apply the schema (idempotent)
python -m wuwang demo [options]     everything on this machine, DEMO_MODE on
python -m wuwang probe URL          health check (docker-compose): http(s):// or tcp://
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit

from wuwang import db
from wuwang.cli import parser_for
from wuwang.endpoints import LocalServices
from wuwang.service import EXIT_CONFIG, ConfigError, load_settings, setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = parser_for("wuwang")  # --help lists the settings too (wuwang.cli)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="apply database migrations (idempotent)")

    demo = sub.add_parser("demo", help="run the console on this machine (DEMO_MODE on)")
    demo.add_argument(
        "--ingest-workers",
        type=int,
        default=2,
        metavar="N",
        help="ingest processes sharing the feeds (1 when the broker has no shared subscriptions); default 2",
    )
    demo.add_argument(
        "--rate", type=float, default=20.0, metavar="R", help="simulated messages per second; default 20"
    )
    demo.add_argument("--seed", type=int, default=1, help="simulator seed; default 1")
    demo.add_argument(
        "--bad-fraction",
        type=float,
        default=0.02,
        metavar="F",
        help="share of malformed messages (they go to the dead-letter store); default 0.02",
    )
    demo.add_argument(
        "--status-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between 'rows stored' lines; default 10",
    )

    probe = sub.add_parser("probe", help="exit 0 when URL answers (http(s)://… below 500, tcp://host:port)")
    probe.add_argument("url")
    probe.add_argument("--timeout", type=float, default=3.0)

    args = parser.parse_args(argv)
    if args.command == "migrate":
        return migrate_command()
    if args.command == "demo":
        from wuwang.launcher import DemoOptions, run_demo

        if args.ingest_workers < 1:
            parser.error("--ingest-workers must be at least 1")
        return run_demo(
            DemoOptions(
                ingest_workers=args.ingest_workers,
                rate=args.rate,
                seed=args.seed,
                bad_fraction=args.bad_fraction,
                status_interval=args.status_interval,
            )
        )
    return probe_command(args.url, args.timeout)


def migrate_command() -> int:
    """Migrate the database ``DATABASE_URL`` names, or the one ``make demo`` would use."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging("migrate", settings.shared.log_level)
    services = LocalServices(settings)
    notes: list[str] = []
    try:
        # Only the database is resolved (same rule as the demo; see wuwang.endpoints).
        url = services._database(settings.shared.data_dir, notes)
        for note in notes:
            print(note)
        try:
            applied = db.migrate(url, storage=settings.shared.storage_backend)
        except (db.StorageBackendError, db.MigrationError) as exc:
            # Said plainly, once; a rerun resumes where this one stopped.
            print(f"migrate: {exc}", file=sys.stderr)
            return EXIT_CONFIG if isinstance(exc, db.StorageBackendError) else 1
        names = {m.version: m.name for m in db.load_migrations()}
        with db.connect(url, autocommit=True) as conn:
            backend = db.backend(conn)
            latest = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            if backend == "timescale":
                db.apply_policies(
                    conn,
                    retention_days=settings.shared.retention_days,
                    compress_after_days=settings.shared.compress_after_days,
                )
        if applied:
            print("applied: " + ", ".join(f"{v}_{names.get(v, '?')}" for v in applied))
        else:
            print(f"nothing to apply: schema is at {latest[0] if latest else '?'}")
        if backend == "timescale":
            storage = settings.shared
            print(
                f"backend: timescale (hypertables, compression after {storage.compress_after_days} d, "
                f"retention {storage.retention_days} d after receipt: chunks dropped when"
                f" {db.keep_after_receipt_days(storage.retention_days)} d old by ts, continuous aggregates)"
            )
        else:
            why = (
                "STORAGE_BACKEND=plain" if settings.shared.storage_backend == "plain"
                else f"TimescaleDB not used: {db.probe_timescale(url).why}"
            )
            print(
                f"backend: plain PostgreSQL ({why}; BRIN indexes, "
                "materialised per-minute counts, retention by scheduled delete)"
            )
        return 0
    finally:
        services.stop()


def probe_command(url: str, timeout: float) -> int:
    parts = urlsplit(url)
    try:
        if parts.scheme == "tcp":
            if not parts.hostname or not parts.port:
                print("probe: tcp URL needs host and port", file=sys.stderr)
                return 2
            socket.create_connection((parts.hostname, parts.port), timeout).close()
            return 0
        if parts.scheme in ("http", "https"):
            try:
                with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - scheme checked
                    return 0
            except urllib.error.HTTPError as exc:
                return 0 if exc.code < 500 else 1
        print(f"probe: unsupported URL scheme {parts.scheme!r}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"probe: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
