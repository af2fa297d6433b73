"""``python -m command cap import FILE…``: CAP 1.2 files from other agencies into the
inbound warnings, the same way ``POST /warnings/cap`` stores them (read with defusedxml,
validated against the OASIS schema, Update/Cancel linked; command/services/inbound_warnings.py).

Run where the command service runs, with its DATABASE_URL. One line per file: stored,
already stored, or refused with the reason. Exit 0 when every file was stored (or was
already), 1 when one was refused or unreadable, 2 for a usage or settings error. The
audit rows name ``--by`` (default ``cap-import``): whoever runs this holds the database's
keys, so the policy's roles do not apply to it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import psycopg

from command.domain.cap import MAX_CAP_BYTES, CapRefused
from command.services import inbound_warnings

COMMAND = "cap"


def add_subcommand(sub: Any) -> None:
    cap = sub.add_parser(COMMAND, help="CAP 1.2 warnings of other agencies (import)")
    actions = cap.add_subparsers(dest="cap_cmd", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="store CAP 1.2 files as inbound warnings (like POST /warnings/cap)",
        description="Store CAP 1.2 files (meteorology, earthquake, water …) as inbound warnings. "
        "DATABASE_URL from the settings. Exit 0: all stored; 1: a file refused; 2: usage.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a CAP 1.2 XML file")
    imp.add_argument("--by", default="cap-import", help="who the audit rows name (default cap-import)")


def _read(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_CAP_BYTES + 1)  # the reader refuses what is larger
    return data


async def import_files(database_url: str, files: list[Path], by: str, out: TextIO) -> int:
    refused = 0
    async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=5) as conn:
        for path in files:
            try:
                imported = await inbound_warnings.import_cap(conn, _read(path), by)
            except OSError as exc:
                refused += 1
                print(f"{path}: unreadable: {exc.strerror or exc}", file=out)
                continue
            except CapRefused as exc:
                refused += 1
                print(f"{path}: refused: {exc.reason}", file=out)
                continue
            w = imported.warning
            what = "stored" if imported.created else "already stored"
            line = f"{path}: {what} #{w['id']} {w['msg_type']} {w['sender']} {w['identifier']}"
            line += f" level={w['level'] or '-'} state={w['state']}"
            if imported.retired:
                line += f" (retired {', '.join(f'#{i}' for i in imported.retired)})"
            print(line, file=out)
    return 1 if refused else 0


def main(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    from wuwang.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError is one
        print(f"bad settings: {exc}", file=sys.stderr)
        return 2
    if not settings.shared.database_url:
        print("DATABASE_URL is not set: where should the warnings go?", file=sys.stderr)
        return 2
    return asyncio.run(import_files(settings.shared.database_url, list(ns.files), ns.by, out or sys.stdout))
