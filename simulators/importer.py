"""Import historical call records (历史警情) from CSV, for replay into an exercise.

A CSV from another system (a city's 110 export, an open-data portal) has its own
columns, time format, time zone, datum and category names. A *mapping file* (YAML,
validated here, errors name the key) says which column holds what and how to read it;
nothing in this module knows any one file's layout.

Two halves:

- the pure core (``load_mapping``/``parse_mapping``, ``iter_calls``, ``read_calls``):
  reads a text stream with the csv module, one record at a time, and turns each record
  into an ``ImportedCall`` or a ``RowProblem`` (physical line number + reason). No I/O
  beyond the stream it is handed.
- the database edge (``import_csv``): COPYs the readable rows into ``imported_call``
  and writes the dataset's ``exercise`` row (kind ``import``, its report in ``stats``)
  in one transaction — a dataset is there completely or not at all.

Line numbers are physical lines of the file (the header is line 1); a record whose
quoted field spans lines is reported at the line where it starts.
"""

from __future__ import annotations

import csv
import math
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import psycopg
import yaml
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wuwang.contract import CallCategory
from wuwang.exercises import EXERCISE_ID_RE, ExerciseKind, ExerciseStatus
from wuwang.geo import gcj02_to_wgs84

#: What the contract lets a call carry (wuwang.contract.EmergencyCall); longer text is cut.
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500

# --- the mapping file ---------------------------------------------------------


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the key (or the column)."""


class _Spec(BaseModel):
    # extra="forbid": a misspelt key ("timzone") is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeSpec(_Spec):
    column: str = Field(min_length=1)
    format: str = Field(
        default="iso", description='"iso" (ISO 8601, offset optional) or a strptime format'
    )
    timezone: str = Field(description="IANA zone for times written without an offset")

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value != "iso" and "%" not in value:
            raise ValueError('must be "iso" or a strptime format such as "%m/%d/%Y %I:%M:%S %p"')
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value


class LocationSpec(_Spec):
    """Either two columns (``lat_column``, ``lon_column``) or one column holding a point
    such as ``"(37.73, -122.42)"``, ``"37.73,-122.42"`` or ``"POINT (-122.42 37.73)"``."""

    lat_column: str | None = None
    lon_column: str | None = None
    point_column: str | None = None
    order: Literal["lat_lon", "lon_lat"] = Field(
        default="lat_lon", description="order of the two numbers in point_column"
    )

    @model_validator(mode="after")
    def _one_way(self) -> LocationSpec:
        pair = self.lat_column is not None or self.lon_column is not None
        if pair and self.point_column is not None:
            raise ValueError("give either lat_column and lon_column, or point_column, not both")
        if pair and (self.lat_column is None or self.lon_column is None):
            raise ValueError("lat_column and lon_column go together")
        if not pair and self.point_column is None:
            raise ValueError("give lat_column and lon_column, or point_column")
        return self


class CategorySpec(_Spec):
    column: str = Field(min_length=1)
    map: dict[str, CallCategory] = Field(description="source value → one of the eight 110 categories")
    default: CallCategory | None = Field(
        default=None, description="for values not in map; null reports them as unknown and skips them"
    )

    @field_validator("map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `110: criminal` with an integer key; a source code is text. Booleans
        # (YAML 1.1 reads an unquoted `No:` as false) stay wrong, so pydantic names them.
        if isinstance(value, dict):
            return {
                (str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k): v
                for k, v in value.items()
            }
        return value


class DescriptionSpec(_Spec):
    columns: list[str] = Field(min_length=1)
    template: str | None = Field(
        default=None,
        description='str.format template over the columns, e.g. "{Call Type} ({Unit Type})"; '
        'without one, the non-empty values joined with " / "',
    )

    @model_validator(mode="after")
    def _template_fields(self) -> DescriptionSpec:
        if self.template is None:
            return self
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None}
        except ValueError as exc:
            raise ValueError(f"template: {exc}") from None
        unknown = sorted(n for n in names if n not in self.columns)
        if unknown or "" in names:
            named = unknown or ["{}"]
            raise ValueError(f"template: fields must be named columns from `columns`, not {named}")
        return self


class CallMapping(_Spec):
    """How to read one kind of CSV as 110 call records."""

    name: str | None = None
    encoding: str = Field(default="utf-8-sig", description="utf-8-sig also reads a file without BOM")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    time: TimeSpec
    location: LocationSpec
    datum: Literal["wgs84", "gcj02"] = Field(default="wgs84", description="gcj02: converted to WGS-84")
    category: CategorySpec
    description: DescriptionSpec
    address_column: str | None = None
    id_column: str | None = Field(default=None, description="the source's own call/incident number")
    dedupe_on: list[str] = Field(
        default_factory=list,
        description="columns that identify one call: later rows with the same values are folded",
    )
    extra_columns: list[str] = Field(default_factory=list, description="kept in the record's extra")

    @field_validator("dedupe_on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            "".encode(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None
        return value

    def columns(self) -> list[str]:
        """Every column this mapping reads (each once, in a stable order)."""
        loc = self.location
        wanted = [
            self.time.column,
            *(c for c in (loc.lat_column, loc.lon_column, loc.point_column) if c is not None),
            self.category.column,
            *self.description.columns,
            *(c for c in (self.address_column, self.id_column) if c is not None),
            *self.dedupe_on,
            *self.extra_columns,
        ]
        return list(dict.fromkeys(wanted))


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{key}: {'missing' if e['type'] == 'missing' else msg}")
    more = len(err.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _nul_key(data: Any, where: str = "") -> str | None:
    """The key of the first text holding NUL (YAML writes it as "\\0"), or None: a column
    name or template with one would put it into every row, which PostgreSQL refuses."""
    if isinstance(data, str):
        return (where or "(top level)") if "\x00" in data else None
    items: Any = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        here = f"{where}.{key}" if where else str(key)
        found = _nul_key(key, here) or _nul_key(value, here)
        if found is not None:
            return found
    return None


def parse_mapping(data: Any) -> CallMapping:
    """A mapping from already-loaded YAML/JSON data. Raises MappingError naming the key."""
    if not isinstance(data, dict):
        raise MappingError("the mapping must be a YAML mapping (key: value lines)")
    nul = _nul_key(data)
    if nul is not None:
        where = nul.replace("\x00", "\\x00")  # a NUL in a key itself
        raise MappingError(f"{where}: text must not contain NUL (U+0000)")
    try:
        return CallMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(_describe(exc)) from None


def load_mapping(path: str | Path) -> CallMapping:
    """Read and validate a mapping file. Raises MappingError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML ({exc})") from None
    try:
        return parse_mapping(data)
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from None


# --- rows --------------------------------------------------------------------


class Problem(StrEnum):
    """Why a row was skipped. Stable words: they are counted and shown to planners."""

    BAD_TIME = "bad time"
    MISSING_LOCATION = "missing location"
    BAD_LOCATION = "unreadable location"
    ZERO_LOCATION = "(0, 0) location"
    OUT_OF_RANGE = "location out of range"
    UNKNOWN_CATEGORY = "unknown category"
    MISSING_COLUMN = "missing column"
    UNREADABLE_ROW = "unreadable row"


@dataclass(frozen=True, slots=True)
class RowProblem:
    line_no: int  # physical line where the record starts (header = 1)
    reason: Problem
    detail: str  # the offending value or column, for the planner who fixes the file

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason} ({self.detail})"


@dataclass(frozen=True, slots=True)
class ImportedCall:
    """One readable call record, as table ``imported_call`` keeps it."""

    line_no: int
    ts: datetime  # aware
    lat: float  # WGS-84
    lon: float
    category: CallCategory
    description: str
    address: str
    external_id: str | None
    extra: dict[str, str]


class ImportFileError(ValueError):
    """The file as a whole cannot be read with this mapping (no header, a mapped column
    absent from the header, wrong encoding). Nothing is imported."""


#: Lines kept per reason in the stored report (the counts are always exact).
STORED_LINES_PER_REASON = 1000


@dataclass
class ImportReport:
    """What an import did. ``rows_read == imported + folded + len(problems)``."""

    source: str
    rows_read: int = 0  # records after the header; blank lines are not records
    imported: int = 0
    folded: int = 0  # same call as an earlier row (dedupe_on): one call imports once
    folded_lines: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    out_of_order: int = 0  # imported rows earlier than a row above them in the file
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    dedupe_on: list[str] = field(default_factory=list)
    datum: str = "wgs84"
    categories: dict[str, int] = field(default_factory=dict)  # imported calls per category

    def problems_by_reason(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for p in self.problems:
            out.setdefault(str(p.reason), []).append(p.line_no)
        return out

    def as_json(self, max_lines: int = STORED_LINES_PER_REASON) -> dict[str, Any]:
        """The report as stored in ``exercise.stats`` (``{"import": ...}``)."""
        by_reason = self.problems_by_reason()
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "folded": self.folded,
            "folded_on": self.dedupe_on,
            "folded_lines": self.folded_lines[:max_lines],
            "skipped": len(self.problems),
            "problems": {
                reason: {"count": len(lines), "lines": lines[:max_lines]}
                for reason, lines in by_reason.items()
            },
            "first_problems": [
                {"line": p.line_no, "reason": str(p.reason), "detail": p.detail} for p in self.problems[:50]
            ],
            "out_of_order": self.out_of_order,
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
            "datum": self.datum,
            "categories": dict(sorted(self.categories.items())),
        }

    def summary(self, first_problems: int = 20) -> str:
        """What the CLI prints: counts, then the first problems with their line numbers."""
        span = (
            f"{self.first_ts.isoformat()} … {self.last_ts.isoformat()}"
            if self.first_ts and self.last_ts else "no calls"
        )
        lines = [
            f"{self.source}: {self.rows_read} rows read, {self.imported} calls imported, "
            f"{self.folded} rows folded into an earlier row of the same call"
            + (f" ({', '.join(self.dedupe_on)})" if self.dedupe_on else "")
            + f", {len(self.problems)} skipped",
            f"time span {span}; {self.out_of_order} rows out of time order (imported; replay orders by time)",
        ]
        if self.categories:
            lines.append("categories: " + ", ".join(f"{k} {v}" for k, v in sorted(self.categories.items())))
        for reason, found in self.problems_by_reason().items():
            shown = ", ".join(str(n) for n in found[:10]) + (" …" if len(found) > 10 else "")
            lines.append(f"skipped, {reason}: {len(found)} (lines {shown})")
        for p in self.problems[:first_problems]:
            lines.append(f"  {p}")
        return "\n".join(lines)


class _RowError(Exception):
    def __init__(self, reason: Problem, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _clip(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class _RowReader:
    """Reads one record's fields with one mapping (pure)."""

    def __init__(self, mapping: CallMapping, header: list[str]) -> None:
        self.m = mapping
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(name.strip().lstrip("\ufeff"), i)  # first of duplicate names wins
        missing = [c for c in mapping.columns() if c not in index]
        if missing:
            raise ImportFileError(
                f"columns not in the file's header: {', '.join(repr(c) for c in missing)} "
                f"(header: {', '.join(repr(h) for h in list(index)[:40])})"
            )
        self.index = index
        self.zone = ZoneInfo(mapping.time.timezone)
        self.by_casefold = {k.strip().casefold(): v for k, v in mapping.category.map.items()}

    def value(self, fields: list[str], column: str) -> str:
        i = self.index[column]
        if i >= len(fields):
            raise _RowError(Problem.MISSING_COLUMN, f"the row ends before column {column!r}")
        return fields[i].strip()

    def time(self, fields: list[str]) -> datetime:
        spec = self.m.time
        raw = self.value(fields, spec.column)
        if not raw:
            raise _RowError(Problem.BAD_TIME, f"{spec.column} is empty")
        try:
            ts = datetime.fromisoformat(raw) if spec.format == "iso" else datetime.strptime(raw, spec.format)
        except ValueError:
            want = "ISO 8601" if spec.format == "iso" else spec.format
            raise _RowError(Problem.BAD_TIME, f"{_clip(raw)!r} is not {want}") from None
        if ts.tzinfo is not None:
            return ts
        local = ts.replace(tzinfo=self.zone)
        # A wall time skipped by a daylight-saving change does not exist: say so instead of
        # guessing. (A repeated one is read as the first, fold=0.)
        if local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != ts:
            raise _RowError(Problem.BAD_TIME, f"{raw!r} does not exist in {spec.timezone} (clock change)")
        return local

    def location(self, fields: list[str]) -> tuple[float, float]:
        loc = self.m.location
        if loc.point_column is not None:
            raw = self.value(fields, loc.point_column)
            numbers = _NUMBER_RE.findall(raw)
            if not numbers:
                if raw.strip(" ()[]").strip() == "" or raw.upper() in {"NULL", "NONE", "NAN", "POINT EMPTY"}:
                    raise _RowError(Problem.MISSING_LOCATION, f"{loc.point_column} is empty")
                raise _RowError(Problem.BAD_LOCATION, f"{loc.point_column} {_clip(raw)!r}")
            if len(numbers) != 2:
                raise _RowError(Problem.BAD_LOCATION, f"{loc.point_column} {_clip(raw)!r} is not two numbers")
            a, b = float(numbers[0]), float(numbers[1])
            lat, lon = (a, b) if loc.order == "lat_lon" else (b, a)
        else:
            assert loc.lat_column is not None and loc.lon_column is not None  # validated
            raw_lat, raw_lon = self.value(fields, loc.lat_column), self.value(fields, loc.lon_column)
            if not raw_lat or not raw_lon:
                empty = loc.lat_column if not raw_lat else loc.lon_column
                raise _RowError(Problem.MISSING_LOCATION, f"{empty} is empty")
            try:
                lat, lon = float(raw_lat), float(raw_lon)
            except ValueError:
                raise _RowError(Problem.BAD_LOCATION, f"({_clip(raw_lat)!r}, {_clip(raw_lon)!r})") from None
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise _RowError(Problem.BAD_LOCATION, f"({lat}, {lon})")
        if lat == 0 and lon == 0:
            # The classic placeholder of a geocoder that found nothing: a point in the sea.
            raise _RowError(Problem.ZERO_LOCATION, "lat 0, lon 0")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise _RowError(Problem.OUT_OF_RANGE, f"lat {lat}, lon {lon}")
        if self.m.datum == "gcj02":
            lat, lon = gcj02_to_wgs84(lat, lon)
        return lat, lon

    def category(self, fields: list[str]) -> CallCategory:
        spec = self.m.category
        raw = self.value(fields, spec.column)
        found = spec.map.get(raw)
        if found is None:
            found = self.by_casefold.get(raw.casefold())  # "ALARMS" for "Alarms"
        if found is None:
            found = spec.default
        if found is None:
            raise _RowError(Problem.UNKNOWN_CATEGORY, f"{spec.column} {_clip(raw)!r} is not in the map")
        return found

    def description(self, fields: list[str]) -> str:
        spec = self.m.description
        values = {c: self.value(fields, c) for c in spec.columns}
        if spec.template is not None:
            text = spec.template.format_map(values).strip()
        else:
            text = " / ".join(v for v in values.values() if v)
        return text[:MAX_DESCRIPTION]

    def call(self, fields: list[str], line_no: int) -> ImportedCall:
        m = self.m
        ts = self.time(fields)
        lat, lon = self.location(fields)
        category = self.category(fields)
        description = self.description(fields)
        address = self.value(fields, m.address_column)[:MAX_ADDRESS] if m.address_column else ""
        external_id = (self.value(fields, m.id_column) or None) if m.id_column else None
        extra = {c: v for c in m.extra_columns if (v := self.value(fields, c))}
        return ImportedCall(line_no, ts, lat, lon, category, description, address, external_id, extra)

    def dedupe_key(self, fields: list[str]) -> tuple[str, ...] | None:
        if not self.m.dedupe_on:
            return None
        key = tuple(self.value(fields, c) for c in self.m.dedupe_on)
        return None if not any(key) else key  # rows without a call number are never folded


def _nul_column(fields: list[str], header: list[str]) -> str | None:
    """The first column of a record holding a NUL character, as the header names it, or None."""
    for i, value in enumerate(fields):
        if "\x00" in value:
            name = header[i].strip() if i < len(header) else f"field {i + 1}"
            return f"column {_clip(name)!r}"  # repr: a NUL in the header itself shows as \x00
    return None


def iter_calls(stream: Iterable[str], mapping: CallMapping, report: ImportReport) -> Iterator[ImportedCall]:
    """Read records one at a time (streaming) and yield the readable calls, in file order.

    ``report`` is filled as the rows go by and complete when the iterator is exhausted.
    ``stream`` yields lines as a file opened with ``newline=""`` does (csv's rule, so
    that quoted fields may hold line breaks). Raises ImportFileError.
    """
    report.dedupe_on = list(mapping.dedupe_on)
    report.datum = mapping.datum
    reader = csv.reader(stream, delimiter=mapping.delimiter)
    try:
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)  # blank lines before the header
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read the header: {exc}") from None
    if header is None:
        raise ImportFileError("the file is empty (no header line)")
    rows = _RowReader(mapping, header)
    seen: set[tuple[str, ...]] = set()
    latest: datetime | None = None
    ended = reader.line_num  # physical lines consumed so far
    while True:
        start = ended + 1  # the record begins on the line after the previous one ended
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): skip the record, keep going
            report.rows_read += 1
            report.problems.append(RowProblem(start, Problem.UNREADABLE_ROW, str(exc)))
            ended = reader.line_num
            continue
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"line {ended + 1}: not valid {mapping.encoding} text ({exc.reason}); "
                "set `encoding` in the mapping (e.g. gb18030)"
            ) from None
        ended = reader.line_num
        if not any(f.strip() for f in fields):
            continue  # a blank line is not a record
        report.rows_read += 1
        nul = _nul_column(fields, header)
        if nul is not None:
            # Python's csv reads NUL since 3.11, PostgreSQL text and jsonb refuse it: one such
            # row would fail the whole COPY. A NUL is a sign of a damaged row: skip all of it.
            report.problems.append(RowProblem(start, Problem.UNREADABLE_ROW, f"NUL byte (U+0000) in {nul}"))
            continue
        try:
            call = rows.call(fields, start)
            key = rows.dedupe_key(fields)
        except _RowError as err:
            report.problems.append(RowProblem(start, err.reason, err.detail))
            continue
        if key is not None:
            if key in seen:
                report.folded += 1
                report.folded_lines.append(start)
                continue
            seen.add(key)
        report.imported += 1
        report.categories[call.category] = report.categories.get(call.category, 0) + 1
        if latest is not None and call.ts < latest:
            report.out_of_order += 1
        else:
            latest = call.ts
        if report.first_ts is None or call.ts < report.first_ts:
            report.first_ts = call.ts
        if report.last_ts is None or call.ts > report.last_ts:
            report.last_ts = call.ts
        yield call


def read_calls(
    stream: Iterable[str], mapping: CallMapping, source: str = "<stream>"
) -> tuple[list[ImportedCall], ImportReport]:
    """All readable calls in time order (ties: file order), and the report."""
    report = ImportReport(source=source)
    calls = sorted(iter_calls(stream, mapping, report), key=lambda c: (c.ts, c.line_no))
    return calls, report


# --- the database edge ---------------------------------------------------------

_COPY = (
    "COPY imported_call (dataset_id, line_no, ts, lat, lon, category, description, address, "
    "external_id, extra) FROM STDIN"
)


class DatasetExists(ValueError):
    pass


def default_dataset_id(csv_path: str | Path, now: datetime) -> str:
    """``DS-<file stem>-<UTC time>``, within the exercise id alphabet and length."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(csv_path).stem).strip("-.") or "calls"
    dataset_id = f"DS-{stem[:40]}-{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    assert EXERCISE_ID_RE.fullmatch(dataset_id)
    return dataset_id


def import_csv(
    database_url: str,
    csv_path: str | Path,
    mapping: CallMapping,
    *,
    dataset_id: str | None = None,
    name: str | None = None,
    created_by: str = "import",
) -> tuple[str, ImportReport]:
    """Import a CSV file as a dataset: returns (dataset id, report).

    One transaction: the ``exercise`` row (kind ``import``, status ``finished``, source =
    the file name, sim_start/sim_end = the calls' time span, stats = ``{"import": report}``)
    and every readable row, COPYed straight from the stream (replay orders by ts, so the
    file's order does not matter). Raises ImportFileError, DatasetExists, OSError.
    """
    path = Path(csv_path)
    dataset_id = dataset_id or default_dataset_id(path, datetime.now(UTC))
    if not EXERCISE_ID_RE.fullmatch(dataset_id):
        raise ValueError(f"dataset id must match {EXERCISE_ID_RE.pattern}: {dataset_id!r}")
    report = ImportReport(source=path.name)
    with psycopg.connect(database_url) as conn, conn.transaction():
        try:
            conn.execute(
                "INSERT INTO exercise (id, name, kind, source, status, created_by, started_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, now())",
                (dataset_id, name or path.name, ExerciseKind.IMPORT, path.name,
                 ExerciseStatus.PLANNED, created_by),
            )
        except psycopg.errors.UniqueViolation:
            raise DatasetExists(f"an exercise or dataset {dataset_id!r} already exists") from None
        with (
            path.open(encoding=mapping.encoding, newline="") as stream,
            conn.cursor() as cur,
            cur.copy(_COPY) as copy,
        ):
            for c in iter_calls(stream, mapping, report):
                copy.write_row((
                    dataset_id, c.line_no, c.ts, c.lat, c.lon, str(c.category), c.description,
                    c.address, c.external_id, orjson.dumps(c.extra).decode(),
                ))
        conn.execute(
            "UPDATE exercise SET status = %s, finished_at = now(), sim_start = %s, sim_end = %s, "
            "stats = %s WHERE id = %s",
            (ExerciseStatus.FINISHED, report.first_ts, report.last_ts,
             Jsonb({"import": report.as_json()}), dataset_id),
        )
    return dataset_id, report
