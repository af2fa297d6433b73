"""Write the contract's JSON Schemas to ``docs/schemas/<feed>.schema.json``.

    python -m wuwang.schemas_export            # (re)write the files
    python -m wuwang.schemas_export --check    # exit 1 if a file is missing, stale or extra

The schemas come from the feed specification, ``wuwang.contract.FEEDS.json_schemas()``
(one per feed; the payload models are the truth), and what the console sends to the
field beyond orders from ``wuwang.outbound`` (into ``docs/schemas/outbound/``) and the
v2 messages beside v1 (``docs/schemas/v2/``), both with the default directory only; the
files are what the other teams read. Sorted keys, 2-space indent, UTF-8, trailing
newline, so that the output is stable and diffs stay small.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wuwang import exchange, outbound
from wuwang.contract import FEEDS, FeedSpecs, shelter_json_schema

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"
OUTBOUND_DIR = DEFAULT_DIR / "outbound"
V2_DIR = DEFAULT_DIR / "v2"  # version 2 beside version 1 (docs/mqtt-contract.md §12)
EXCHANGE_DIR = DEFAULT_DIR / "exchange"  # the upward reporting form (docs/duty-and-reporting.md)
SUFFIX = ".schema.json"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files(feeds: FeedSpecs = FEEDS) -> dict[str, str]:
    """File name → content, for every feed."""
    return {f"{name}{SUFFIX}": render(schema) for name, schema in sorted(feeds.json_schemas().items())}


def outbound_files() -> dict[str, str]:
    """File name → content, for every outbound message (docs/schemas/outbound/)."""
    return {f"{name}{SUFFIX}": render(schema) for name, schema in sorted(outbound.json_schemas().items())}


def v2_files() -> dict[str, str]:
    """File name → content, for every v2 inbound message (docs/schemas/v2/)."""
    return {f"team-shelter{SUFFIX}": render(shelter_json_schema())}


def exchange_files() -> dict[str, str]:
    """File name → content, for the upward reporting form (docs/schemas/exchange/)."""
    return {f"{name}{SUFFIX}": render(schema) for name, schema in sorted(exchange.json_schemas().items())}


def check(directory: Path, feeds: FeedSpecs = FEEDS, wanted: dict[str, str] | None = None) -> list[str]:
    """What differs between ``directory`` and the contract (empty when current)."""
    problems = []
    wanted = expected_files(feeds) if wanted is None else wanted
    for name, content in wanted.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"stale: {path}")
    if directory.is_dir():
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if path.name not in wanted:
                problems.append(f"not in the contract: {path}")
    return problems


def write(directory: Path, feeds: FeedSpecs = FEEDS, wanted: dict[str, str] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = expected_files(feeds) if wanted is None else wanted
    for name, content in wanted.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            written.append(path)
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        if path.name not in wanted:  # a feed that left the contract must not linger in docs
            path.unlink()
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wuwang.schemas_export",
        description="Write the MQTT contract's JSON Schemas to docs/schemas/.",
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the files differ")
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help="target directory (default: docs/schemas)"
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir
    with_outbound = directory.resolve() == DEFAULT_DIR.resolve()
    if args.check:
        problems = check(directory)
        if with_outbound:
            problems += check(OUTBOUND_DIR, wanted=outbound_files())
            problems += check(V2_DIR, wanted=v2_files())
            problems += check(EXCHANGE_DIR, wanted=exchange_files())
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python -m wuwang.schemas_export", file=sys.stderr)
            return 1
        print(f"{directory}: {len(expected_files())} schemas are current")
        return 0
    changed = write(directory)
    if with_outbound:
        changed += write(OUTBOUND_DIR, wanted=outbound_files())
        changed += write(V2_DIR, wanted=v2_files())
        changed += write(EXCHANGE_DIR, wanted=exchange_files())
    for path in changed:
        print(f"wrote {path}" if path.exists() else f"removed {path}")
    if not changed:
        print(f"{directory}: {len(expected_files())} schemas already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
