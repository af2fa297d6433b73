"""Parsing and row building alone: the contract's msgspec structs against the pydantic
models they replaced (issue 14).

    python -m bench.ingest.parsing                    # 20,000 messages of the simulator's stream
    python -m bench.ingest.parsing --messages 50000 --baseline 176b455

No database and no broker: the very (topic, payload) pairs of ``python -m bench.ingest``,
read by ``wuwang.contract.parse_message`` and turned into rows by ``ingest.rows.row_for``,
in this process. The baseline is the contract and the row builder as they were at a
commit before the switch (``--baseline``, read with ``git show``, loaded under other
module names): the pydantic models live in the benchmark only, never in the services.
Prints CPU µs per message for the decode alone, for ``parse_message``, and for parse +
row, and the ratios (the two sides take turns every 500 messages). Run it niced, once:
it takes under a minute.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench.ingest.data import build_stream
from ingest import rows
from wuwang import contract
from wuwang.city import build_city

ROOT = Path(__file__).resolve().parents[2]
#: The last commit whose contract was pydantic's.
DEFAULT_BASELINE = "176b455"
GRID_DEG = 0.0025


@dataclass(frozen=True)
class Side:
    """One implementation: its decode alone, ``parse_message``, and ``row_for``."""

    name: str
    decode: Callable[[str, bytes], Any]
    parse: Callable[[str, bytes, datetime], Any]
    row: Callable[[Any], Any]


def _load(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # this repository's own history
    return module


def baseline(rev: str) -> Side:
    """The pydantic contract and row builder of commit ``rev``."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
        ).stdout

    old = _load("_baseline_contract", show("wuwang/contract.py"))
    rows_source = show("ingest/rows.py").replace("wuwang.contract", "_baseline_contract")
    old_rows = _load("_baseline_rows", rows_source)
    models = old.PAYLOAD_MODELS

    def decode(topic: str, payload: bytes) -> Any:
        return models[old.parse_topic(topic).feed].model_validate_json(payload)

    def row(msg: Any) -> Any:
        return old_rows.row_for(msg, old_rows.place_of(msg, GRID_DEG, {}))

    return Side(f"pydantic ({rev})", decode, old.parse_message, row)


def current() -> Side:
    decoders = {spec.feed: msgspec.json.Decoder(spec.model) for spec in contract.FEEDS}

    def decode(topic: str, payload: bytes) -> Any:
        return decoders[contract.parse_topic(topic).feed].decode(payload)

    def row(msg: Any) -> Any:
        return rows.row_for(msg, rows.place_of(msg, GRID_DEG, {}))

    return Side("msgspec (this tree)", decode, contract.parse_message, row)


def stages(side: Side, messages: Sequence[tuple[str, bytes]]) -> dict[str, Callable[[], None]]:
    """What is timed, per stage: one pass over ``messages``."""
    now = datetime.now(UTC)

    def decode() -> None:
        for topic, payload in messages:
            side.decode(topic, payload)

    def parse() -> None:
        for topic, payload in messages:
            side.parse(topic, payload, now)

    def parse_and_row() -> None:
        for topic, payload in messages:
            side.row(side.parse(topic, payload, now))

    return {"decode": decode, "parse_message": parse, "parse + row": parse_and_row}


CHUNK = 500


def measure(
    sides: Sequence[Side], messages: Sequence[tuple[str, bytes]], repeat: int
) -> list[dict[str, float]]:
    """CPU µs per message of each side and stage. The sides take turns every ``CHUNK``
    messages and the time is this process's CPU time, not the wall's: on a shared
    machine the load changes from second to second, and a side must not be judged by
    the moment it happened to run in."""
    chunks = [messages[i : i + CHUNK] for i in range(0, len(messages), CHUNK)]
    runs = [[stages(side, chunk) for chunk in chunks] for side in sides]
    spent = [dict.fromkeys(runs[0][0], 0.0) for _ in sides]
    for _ in range(repeat):
        for stage in spent[0]:
            for k in range(len(chunks)):
                for run, out in zip(runs, spent, strict=True):
                    t0 = time.process_time()
                    run[k][stage]()
                    out[stage] += time.process_time() - t0
    return [{stage: t / (repeat * len(messages)) * 1e6 for stage, t in out.items()} for out in spent]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest.parsing", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help="a commit whose contract was pydantic's")
    args = p.parse_args(argv)
    city = build_city()
    stream = build_stream(city, args.messages)
    messages = stream.messages("p")
    sides = [baseline(args.baseline), current()]
    old, new = measure(sides, messages, args.repeat)
    print(f"{len(messages):,} messages of the simulator's stream, {args.repeat} passes; CPU µs per message")
    print(f"{'':16}" + "".join(f"{s.name:>24}" for s in sides) + f"{'ratio':>10}")
    for stage in old:
        print(f"{stage:16}{old[stage]:>24.2f}{new[stage]:>24.2f}{old[stage] / new[stage]:>9.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
