"""Idempotency: the ledger against the feed tables' own unique key, text against binary COPY.

``python -m bench.ingest.ledger [--rows N] [--batch B] [--rounds R]`` writes the same
messages (the bench stream, rows built beforehand) in transactions of ``B`` rows into a
scratch database, four ways, in rounds (interleaved, best round counts):

- **ledger** (what the writer does): the batch's keys COPYed into a temporary table,
  ``INSERT INTO message_ledger … ON CONFLICT DO NOTHING RETURNING`` says which are new,
  only those rows COPYed into their feed tables;
- **ledger, binary COPY**: the same with the feed rows in COPY's binary format;
- **unique key**: a unique index ``(network, source_id, msg_id, ts)`` (``team_id`` for team
  tables) on each feed table instead of the ledger: the rows COPYed into a temporary
  copy of their table, then ``INSERT INTO feed SELECT … ON CONFLICT DO NOTHING
  RETURNING`` per feed (the duplicates are the difference);
- **unique key, binary COPY** into the staging table.

Then the whole stream once more (every message a duplicate), the redelivery case. It
prints rows/s and the PostgreSQL backend's CPU µs per row.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from bench.common import create_scratch_database, drop_scratch_database
from bench.ingest.data import build_stream, device_positions, prebuilt_rows
from ingest.rows import TABLE_COLUMNS
from wuwang.city import build_city, load_city
from wuwang.settings import Settings

Rows = list[tuple[str, tuple[object, ...]]]


def _key_columns(table: str) -> tuple[str, ...]:
    return ("network", "source_id", "msg_id", "ts") if "source_id" in TABLE_COLUMNS[table] else (
        "team_id", "msg_id", "ts")


def _source_key(table: str, row: tuple[object, ...]) -> tuple[str, str]:
    cols = TABLE_COLUMNS[table]
    src = f"{row[cols.index('network')]}/{row[cols.index('source_id')]}" if "source_id" in cols else (
        f"team/{row[cols.index('team_id')]}")
    return src, str(row[cols.index("msg_id")])


def _copy(cur: psycopg.Cursor[Any], table: str, rows: Sequence[tuple[object, ...]], binary: bool,
          types: dict[str, list[str]]) -> None:
    cols = TABLE_COLUMNS[table.removeprefix("stage_")]
    stmt = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(" (FORMAT BINARY)" if binary else ""))
    with cur.copy(stmt) as copy:
        if binary:
            copy.set_types(types[table.removeprefix("stage_")])
        for row in rows:
            copy.write_row(row)


def ledger_batch(cur: psycopg.Cursor[Any], batch: Rows, binary: bool, types: dict[str, list[str]]) -> int:
    with cur.copy("COPY ingest_keys (source, msg_id, feed) FROM STDIN") as copy:
        for table, row in batch:
            copy.write_row((*_source_key(table, row), table))
    cur.execute("INSERT INTO message_ledger (source, msg_id, feed)"
                " SELECT source, msg_id, feed FROM ingest_keys"
                " ORDER BY source, msg_id ON CONFLICT DO NOTHING RETURNING source, msg_id")
    new = {(r[0], r[1]) for r in cur.fetchall()}
    by_table: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    for table, row in batch:
        if _source_key(table, row) in new:
            by_table[table].append(row)
    for table, rows in by_table.items():
        _copy(cur, table, rows, binary, types)
    return len(new)


def unique_batch(cur: psycopg.Cursor[Any], batch: Rows, binary: bool, types: dict[str, list[str]]) -> int:
    by_table: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    for table, row in batch:
        by_table[table].append(row)
    stored = 0
    for table, rows in by_table.items():
        _copy(cur, f"stage_{table}", rows, binary, types)
        cols = sql.SQL(", ").join(map(sql.Identifier, TABLE_COLUMNS[table]))
        cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            sql.Identifier(table), cols, cols, sql.Identifier(f"stage_{table}")))
        stored += cur.rowcount
    return stored


def run_way(url: str, rows: Rows, batch: int, way: Callable[..., int], binary: bool,
            types: dict[str, list[str]], setup: Sequence[str]) -> tuple[float, float, float, int]:
    """(seconds, backend CPU seconds, this process's CPU seconds, rows stored) for ``rows``
    in batches."""
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in setup:
            conn.execute(stmt)
        pid = conn.info.backend_pid
        cpu0 = _cpu(pid)
        own0 = time.process_time()
        t0 = time.perf_counter()
        stored = 0
        with conn.cursor() as cur:
            for start in range(0, len(rows), batch):
                with conn.transaction():
                    stored += way(cur, rows[start:start + batch], binary, types)
        seconds = time.perf_counter() - t0
        return seconds, _cpu(pid) - cpu0, time.process_time() - own0, stored


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest.ledger", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    ns = p.parse_args(argv)
    settings = Settings()
    base_url = settings.shared.database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"wuwang_ledger_{os.getpid()}_{secrets.token_hex(3)}"
    admin, url = create_scratch_database(base_url, name)
    try:
        city = build_city()
        with psycopg.connect(url) as conn:
            load_city(conn, city)
        stream = build_stream(city, ns.rows)
        grid_deg = settings.shared.grid_cell_deg
        rows = prebuilt_rows(stream.messages("k", ns.rows), grid_deg, device_positions(city))
        with psycopg.connect(url, autocommit=True) as conn:
            types = {t: [str(r[0]) for r in conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute a JOIN unnest(%s::text[])"
                " WITH ORDINALITY c(name, n) ON a.attname = c.name WHERE attrelid = %s::regclass ORDER BY n",
                (list(cols), t))] for t, cols in TABLE_COLUMNS.items()}
        staging = ["CREATE TEMP TABLE IF NOT EXISTS ingest_keys (source text NOT NULL, msg_id text NOT NULL,"
                   " feed text NOT NULL) ON COMMIT DELETE ROWS"]
        stages = [f"CREATE TEMP TABLE IF NOT EXISTS stage_{t} (LIKE {t} INCLUDING DEFAULTS)"
                  " ON COMMIT DELETE ROWS" for t in TABLE_COLUMNS]
        unique_on = [f"CREATE UNIQUE INDEX IF NOT EXISTS {t}_key ON {t} ({', '.join(_key_columns(t))})"
                     " NULLS NOT DISTINCT" for t in TABLE_COLUMNS]
        unique_off = [f"DROP INDEX IF EXISTS {t}_key" for t in TABLE_COLUMNS]
        reset = [f"TRUNCATE {', '.join((*TABLE_COLUMNS, 'message_ledger'))}", "CHECKPOINT"]
        ways = {
            "ledger (text COPY)": (ledger_batch, False, [*unique_off, *staging]),
            "ledger (binary COPY)": (ledger_batch, True, [*unique_off, *staging]),
            "unique key (text COPY)": (unique_batch, False, [*unique_on, *stages]),
            "unique key (binary COPY)": (unique_batch, True, [*unique_on, *stages]),
        }
        best: dict[str, tuple[float, float, float, float, float, float]] = {}
        for _ in range(ns.rounds):
            for label, (way, binary, setup) in ways.items():
                with psycopg.connect(url, autocommit=True) as conn:
                    for stmt in reset:
                        conn.execute(stmt)
                s, cpu, own, stored = run_way(url, rows, ns.batch, way, binary, types, setup)
                assert stored == len(rows), (label, stored)
                s2, cpu2, own2, again = run_way(url, rows, ns.batch, way, binary, types, setup)
                assert again == 0, (label, again)
                if label not in best or s < best[label][0]:
                    best[label] = (s, cpu, own, s2, cpu2, own2)
                print(f"[ledger] {label}: {len(rows) / s:,.0f} rows/s", file=sys.stderr)
        n = len(rows)
        print(f"{n:,} rows, batches of {ns.batch}, best of {ns.rounds} rounds\n")
        print("| way | new: rows/s | CPU µs/row, PostgreSQL + client | all duplicates: rows/s |"
              " CPU µs/row, PostgreSQL + client |")
        print("|---|---|---|---|---|")
        for label, (s, cpu, own, s2, cpu2, own2) in best.items():
            print(f"| {label} | {n / s:,.0f} | {cpu / n * 1e6:.1f} + {own / n * 1e6:.1f} | {n / s2:,.0f} |"
                  f" {cpu2 / n * 1e6:.1f} + {own2 / n * 1e6:.1f} |")
    finally:
        drop_scratch_database(admin, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
