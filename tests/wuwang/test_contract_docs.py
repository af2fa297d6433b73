"""docs/mqtt-contract.md and docs/schemas/ agree with wuwang/contract.py.

The page's examples are extracted by their HTML comments:

    Topic: `wuwang/v1/police/call/sys110`
    <!-- example topic=wuwang/v1/police/call/sys110 -->
    ```json
    {...}
    ```

    <!-- bad-example topic=... reason="text the ContractError reason contains" [pending="fix"] -->

``pending`` marks a bad example whose documented reason needs a proposed contract fix;
it is run as ``xfail(strict=True)`` until the fix lands.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from wuwang import schemas_export
from wuwang.contract import (
    MAX_PAYLOAD_BYTES,
    CallCategory,
    ContractError,
    EmergencyCall,
    Feed,
    FieldReport,
    Network,
    SensorReading,
    TeamPosition,
    TeamStatus,
    TeamStatusUpdate,
    VideoAlert,
    json_schemas,
    parse_message,
    parse_topic,
    payload_fields,
    required_fields,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "mqtt-contract.md"
SCHEMA_DIR = ROOT / "docs" / "schemas"
ACL = ROOT / "deploy" / "mosquitto" / "acl"
RECEIVED = datetime(2025, 3, 12, 2, 0, 0, tzinfo=UTC)

MODELS_BY_SCHEMA: dict[str, type[Any]] = {
    "sensor": SensorReading,
    "video": VideoAlert,
    "call": EmergencyCall,
    "report": FieldReport,
    "team-position": TeamPosition,
    "team-status": TeamStatusUpdate,
}

_BLOCK = re.compile(
    r"^<!-- (?P<kind>example|bad-example) (?P<attrs>[^\n]*?) -->\n"
    r"```(?P<lang>json|text)\n(?P<body>.*?)\n```$",
    re.MULTILINE | re.DOTALL,
)
_ATTR = re.compile(r'(\w[\w-]*)=(?:"([^"]*)"|(\S+))')


@dataclass(frozen=True)
class Example:
    kind: str
    topic: str
    body: str
    reason: str | None
    pending: str | None
    line: int

    @property
    def id(self) -> str:
        return f"line{self.line}:{self.topic}"


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _examples() -> list[Example]:
    text = _text()
    found = []
    for m in _BLOCK.finditer(text):
        attrs = {a[1]: a[2] if a[2] is not None else a[3] for a in _ATTR.finditer(m["attrs"])}
        line = text.count("\n", 0, m.start()) + 1
        found.append(
            Example(m["kind"], attrs["topic"], m["body"], attrs.get("reason"), attrs.get("pending"), line)
        )
    return found


EXAMPLES = _examples()
GOOD = [e for e in EXAMPLES if e.kind == "example"]
BAD = [e for e in EXAMPLES if e.kind == "bad-example"]


def _schema_name(topic: str) -> str:
    parsed = parse_topic(topic)
    if parsed.is_team and parsed.feed in (Feed.POSITION, Feed.STATUS):
        return f"team-{parsed.feed}"
    return str(parsed.feed)


def _load_schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return loaded


# --- the page's own shape ---------------------------------------------------------------


def test_page_has_examples_for_every_feed() -> None:
    assert len(GOOD) >= 7
    assert len(BAD) >= 10
    kinds = set()
    for example in GOOD:
        parsed = parse_topic(example.topic)
        kinds.add(("team-" if parsed.is_team else "") + str(parsed.feed))
    assert kinds == {"sensor", "video", "call", "report", "team-position", "team-status", "team-report"}


def test_every_marker_is_well_formed() -> None:
    """No example comment that the extractor silently skipped (a typo in the fence, say)."""
    text = _text()
    assert len(re.findall(r"^<!-- example ", text, re.MULTILINE)) == len(GOOD)
    assert len(re.findall(r"^<!-- bad-example ", text, re.MULTILINE)) == len(BAD)
    for example in BAD:
        assert example.reason, example.id


def test_every_example_is_preceded_by_its_visible_topic_line() -> None:
    lines = _text().splitlines()
    for example in EXAMPLES:
        assert lines[example.line - 2] == f"Topic: `{example.topic}`", example.id


def test_good_example_ids_are_unique() -> None:
    ids = [(parse_topic(e.topic).source, orjson.loads(e.body)["id"]) for e in GOOD]
    assert len(ids) == len(set(ids))


# --- good examples ------------------------------------------------------------------------


@pytest.mark.parametrize("example", GOOD, ids=lambda e: e.id)
def test_good_example_parses(example: Example) -> None:
    orjson.loads(example.body)  # strict JSON (no NaN, no trailing commas)
    msg = parse_message(example.topic, example.body.encode(), RECEIVED)
    assert msg.msg_id == orjson.loads(example.body)["id"]
    assert msg.ts_from_receipt is ("ts" not in orjson.loads(example.body))


@pytest.mark.parametrize("example", GOOD, ids=lambda e: e.id)
def test_good_example_validates_against_its_exported_schema(example: Example) -> None:
    schema = _load_schema(_schema_name(example.topic))
    jsonschema.Draft202012Validator(schema).validate(orjson.loads(example.body))


def test_documented_extra_fields_are_kept() -> None:
    video = next(e for e in GOOD if "model_version" in e.body)
    msg = parse_message(video.topic, video.body.encode(), RECEIVED)
    assert msg.extra == {"model_version": "fs-3.2.1", "channel": 4}


# --- bad examples -------------------------------------------------------------------------


def _bad_params() -> list[Any]:
    params = []
    for example in BAD:
        marks = (
            [pytest.mark.xfail(strict=True, reason=f"pending {example.pending}")] if example.pending else []
        )
        params.append(pytest.param(example, id=example.id, marks=marks))
    return params


@pytest.mark.parametrize("example", _bad_params())
def test_bad_example_is_refused_with_the_documented_reason(example: Example) -> None:
    assert example.reason is not None
    with pytest.raises(ContractError) as info:
        parse_message(example.topic, example.body.encode(), RECEIVED)
    assert example.reason in info.value.reason


@pytest.mark.parametrize("example", BAD, ids=lambda e: e.id)
def test_bad_example_reason_is_in_the_reason_table(example: Example) -> None:
    """Every documented reason of a bad example also appears in the §6 table (first column)."""
    table = re.findall(r"^\| `([^`]+)` \|", _text(), re.MULTILINE)
    assert example.reason is not None
    stem = re.sub(r"'[^']*'.*$", "", example.reason)  # quoted parts vary with the input
    assert any(row.startswith(stem) or stem.startswith(row.split(" (")[0]) for row in table), example.reason


# --- exported schemas ---------------------------------------------------------------------


def test_exported_schemas_are_current() -> None:
    result = subprocess.run(  # the CLI as the lead and CI run it
        [sys.executable, "-m", "wuwang.schemas_export", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + "\nrun: python -m wuwang.schemas_export"


def test_export_check_notices_stale_missing_and_foreign_files(tmp_path: Path) -> None:
    assert schemas_export.main(["--dir", str(tmp_path)]) == 0
    assert schemas_export.main(["--check", "--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.schema.json" for n in json_schemas())

    first = sorted(tmp_path.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    assert schemas_export.check(tmp_path) == [f"stale: {first}"]
    assert schemas_export.main(["--check", "--dir", str(tmp_path)]) == 1

    first.unlink()
    assert schemas_export.check(tmp_path) == [f"missing: {first}"]
    (tmp_path / "alarm.schema.json").write_text("{}\n", encoding="utf-8")
    assert len(schemas_export.check(tmp_path)) == 2

    assert schemas_export.main(["--dir", str(tmp_path)]) == 0  # rewrites and removes
    assert schemas_export.check(tmp_path) == []
    assert not (tmp_path / "alarm.schema.json").exists()


def test_exported_files_are_formatted_as_promised() -> None:
    for name, schema in json_schemas().items():
        text = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
        assert text == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert text.endswith("}\n")
        assert not text.endswith("\n\n")


@pytest.mark.parametrize("name", sorted(MODELS_BY_SCHEMA))
def test_schema_matches_the_model(name: str) -> None:
    schema = _load_schema(name)
    model = MODELS_BY_SCHEMA[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is True  # extra fields are kept
    required = set(required_fields(model))
    assert set(schema["required"]) == required
    assert len(schema["required"]) == len(set(schema["required"]))
    assert set(schema["properties"]) == set(payload_fields(model))


def test_schemas_cover_every_feed() -> None:
    assert set(json_schemas()) == set(MODELS_BY_SCHEMA)
    assert {p.name for p in SCHEMA_DIR.glob("*.schema.json")} == {
        f"{n}.schema.json" for n in MODELS_BY_SCHEMA
    }


# --- what the page states ---------------------------------------------------------------------


def test_acl_lines_quoted_in_the_page_are_in_the_acl_file() -> None:
    text = _text()
    quotes = re.findall(r"<!-- acl-quote:[^\n]*-->\n```text\n(.*?)\n```", text, re.DOTALL)
    assert len(quotes) == text.count("<!-- acl-quote:") >= 2  # §2 (devices, teams), §10 (exercises)
    acl_lines = {line.strip() for line in ACL.read_text(encoding="utf-8").splitlines()}
    for quote in quotes:
        for line in quote.splitlines():
            assert line in acl_lines, line


def test_page_states_the_payload_limit() -> None:
    text = _text()
    assert MAX_PAYLOAD_BYTES == 65536
    assert "65,536 bytes" in text
    assert f"exceeds {MAX_PAYLOAD_BYTES}" in text


def test_page_states_the_dead_letter_cap() -> None:
    from wuwang.settings import field_info

    cap = field_info("dead_letter_raw_cap").default
    assert f"first {cap:,} bytes" in _text()


@pytest.mark.parametrize(
    "value",
    [str(v) for v in (*Network, *CallCategory, *TeamStatus)],
)
def test_page_lists_every_enumerated_value(value: str) -> None:
    assert f"`{value}`" in _text()


@pytest.mark.parametrize("field", sorted({f for m in MODELS_BY_SCHEMA.values() for f in payload_fields(m)}))
def test_page_describes_every_field(field: str) -> None:
    # a row of a field table names it first, or among "`lat`, `lon`"
    assert re.search(rf"^\| (`\w+`, )*`{field}`[ ,]", _text(), re.MULTILINE), field


def _slug(heading: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_internal_links_resolve() -> None:
    text = _text()
    anchors = {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors, target
    for target in re.findall(r"\]\((schemas/[^)]+)\)", text):
        assert (DOC.parent / target).exists(), target
