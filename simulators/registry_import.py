"""Import risk sources (风险源) and emergency shelters (应急避难场所) from CSV, with the
mapping mechanism of the call importer (simulators/importer.py): a YAML mapping file,
validated with errors that name the key, says which column holds what, the datum of
the coordinates and how the source's words map to our codes (wuwang.risk).

    python -m simulators import-registry FILE.csv \
        --mapping simulators/mappings/registries/cn_risk_sources_example.yaml

Every readable row is upserted by its id (a second import updates, never duplicates);
an unreadable row is reported with its line and reason and skipped; the grid cell is
computed here from the position (wuwang.lattice), the district from the registered
cell. One transaction: a file is in completely or not at all.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from simulators.importer import LocationSpec, MappingError, _describe, _nul_key, _Spec
from wuwang.geo import gcj02_to_wgs84
from wuwang.lattice import grid_cell_id
from wuwang.risk import RiskKind, RiskLevel, ShelterKind, ShelterStatus

Registry = Literal["risk_source", "shelter"]
_PREFIX = {"risk_source": "RS-", "shelter": "SH-"}


def _text_keys(value: Any) -> Any:
    # YAML reads `1: major` with an integer key; a source's code is text.
    if isinstance(value, dict):
        return {
            (str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k): v
            for k, v in value.items()
        }
    return value


class RegistryMapping(_Spec):
    name: str = Field(min_length=1, description="what layout this is, for people")
    registry: Registry
    encoding: str = "utf-8-sig"
    id_column: str = Field(min_length=1, description="the source's own id; RS-/SH- is put before it")
    name_column: str = Field(min_length=1)
    location: LocationSpec
    datum: Literal["wgs84", "gcj02"] = "wgs84"
    kind_column: str = Field(min_length=1)
    kind_map: dict[str, str] = Field(description="source value → our kind code")
    # risk sources
    level_column: str | None = None
    level_map: dict[str, RiskLevel] = Field(default_factory=dict)
    unit_column: str | None = None
    contact_column: str | None = None
    interval_days_column: str | None = None
    default_interval_days: int = Field(default=30, ge=1, le=366)
    # shelters
    capacity_column: str | None = None
    facilities_column: str | None = None
    facilities_separator: str = Field(default="、", min_length=1)
    status_column: str | None = None
    status_map: dict[str, ShelterStatus] = Field(default_factory=dict)

    _keys = field_validator("kind_map", "level_map", "status_map", mode="before")(_text_keys)

    @model_validator(mode="after")
    def _fits_its_registry(self) -> RegistryMapping:
        kinds = {k.value for k in (RiskKind if self.registry == "risk_source" else ShelterKind)}
        wrong = sorted(v for v in self.kind_map.values() if v not in kinds)
        if wrong:
            raise ValueError(f"kind_map: {', '.join(wrong)} not among {', '.join(sorted(kinds))}")
        if self.registry == "risk_source" and self.level_column is None:
            raise ValueError("level_column: a risk source needs its level")
        if self.registry == "shelter" and self.capacity_column is None:
            raise ValueError("capacity_column: a shelter needs its capacity")
        return self


def load_registry_mapping(path: str | Path) -> RegistryMapping:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path}: the mapping must be a YAML mapping (key: value lines)")
    if (nul := _nul_key(data)) is not None:
        raise MappingError(f"{path}: {nul}: text must not contain NUL (U+0000)")
    try:
        return RegistryMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{path}: {_describe(exc)}") from None


@dataclass
class RegistryReport:
    imported: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _cell(row: dict[str, str], column: str | None, line: int) -> str:
    if column is None:
        return ""
    if column not in row:
        raise ValueError(f"no column {column!r}")
    return (row[column] or "").strip()


def _position(row: dict[str, str], m: RegistryMapping, line: int) -> tuple[float, float]:
    loc = m.location
    if loc.point_column is not None:
        parts = [
            p for p in _cell(row, loc.point_column, line).strip("()POINT ").replace(",", " ").split() if p
        ]
        if len(parts) != 2:
            raise ValueError(f"{loc.point_column}: not a point")
        a, b = float(parts[0]), float(parts[1])
        lat, lon = (a, b) if loc.order == "lat_lon" else (b, a)
    else:
        lat, lon = float(_cell(row, loc.lat_column, line)), float(_cell(row, loc.lon_column, line))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"position {lat}, {lon} out of range")
    return gcj02_to_wgs84(lat, lon) if m.datum == "gcj02" else (lat, lon)


def read_rows(stream: Iterable[str], m: RegistryMapping, report: RegistryReport) -> Iterator[dict[str, Any]]:
    """Each readable row as the registry's columns (pure: the stream it is handed only)."""
    reader = csv.DictReader(stream)
    for row in reader:
        line = reader.line_num
        try:
            ident = _cell(row, m.id_column, line)
            if not ident or not all(c.isalnum() or c == "-" for c in ident) or len(ident) > 38:
                raise ValueError(f"{m.id_column}: {ident!r} is no usable id")
            name = _cell(row, m.name_column, line)
            if not name or len(name) > 100:
                raise ValueError(f"{m.name_column}: empty or longer than 100")
            lat, lon = _position(row, m, line)
            raw_kind = _cell(row, m.kind_column, line)
            if raw_kind not in m.kind_map:
                raise ValueError(f"{m.kind_column}: {raw_kind!r} is not in kind_map")
            out: dict[str, Any] = {
                "id": _PREFIX[m.registry] + ident,
                "name": name,
                "kind": m.kind_map[raw_kind],
                "lat": lat,
                "lon": lon,
            }
            if m.registry == "risk_source":
                raw_level = _cell(row, m.level_column, line)
                if raw_level not in m.level_map:
                    raise ValueError(f"{m.level_column}: {raw_level!r} is not in level_map")
                interval = _cell(row, m.interval_days_column, line)
                out |= {
                    "level": str(m.level_map[raw_level]),
                    "responsible_unit": _cell(row, m.unit_column, line)[:100],
                    "contact": _cell(row, m.contact_column, line)[:100],
                    "inspection_interval_days": int(interval) if interval else m.default_interval_days,
                }
                if not 1 <= out["inspection_interval_days"] <= 366:
                    raise ValueError(f"{m.interval_days_column}: 1 to 366 days")
            else:
                capacity = int(_cell(row, m.capacity_column, line))
                if capacity <= 0:
                    raise ValueError(f"{m.capacity_column}: a capacity is more than 0")
                raw_status = _cell(row, m.status_column, line)
                facilities = _cell(row, m.facilities_column, line)
                out |= {
                    "capacity": capacity,
                    "facilities": [f.strip() for f in facilities.split(m.facilities_separator) if f.strip()][
                        :20
                    ],
                    "status": str(m.status_map.get(raw_status, ShelterStatus.CLOSED)),
                }
        except (ValueError, KeyError) as exc:
            report.problems.append((line, str(exc)))
            continue
        yield out


_UPSERT = {
    "risk_source": (
        "INSERT INTO risk_source (id, name, kind, lat, lon, grid_cell_id, district_adcode, level,"
        " responsible_unit, contact, inspection_interval_days)"
        " SELECT %(id)s, %(name)s, %(kind)s, %(lat)s, %(lon)s, %(cell)s,"
        " (SELECT district_adcode FROM grid_cell WHERE id = %(cell)s), %(level)s, %(responsible_unit)s,"
        " %(contact)s, %(inspection_interval_days)s"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, lat = EXCLUDED.lat,"
        " lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
        " district_adcode = EXCLUDED.district_adcode,"
        " level = EXCLUDED.level, responsible_unit = EXCLUDED.responsible_unit, contact = EXCLUDED.contact,"
        " inspection_interval_days = EXCLUDED.inspection_interval_days, updated_at = now()"
    ),
    "shelter": (
        "INSERT INTO shelter (id, name, kind, lat, lon, grid_cell_id, district_adcode, capacity, facilities,"
        " status)"
        " SELECT %(id)s, %(name)s, %(kind)s, %(lat)s, %(lon)s, %(cell)s,"
        " (SELECT district_adcode FROM grid_cell WHERE id = %(cell)s),"
        " %(capacity)s, %(facilities)s, %(status)s"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, lat = EXCLUDED.lat,"
        " lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
        " district_adcode = EXCLUDED.district_adcode,"
        " capacity = EXCLUDED.capacity, facilities = EXCLUDED.facilities, status = EXCLUDED.status,"
        " updated_at = now()"
    ),
}


def import_registry_csv(
    conn: psycopg.Connection[Any], csv_path: str | Path, m: RegistryMapping, cell_deg: float
) -> RegistryReport:
    """Upsert the file's readable rows in one transaction; the report lists the rest."""
    report = RegistryReport()
    with open(csv_path, encoding=m.encoding, newline="") as stream, conn.transaction(), conn.cursor() as cur:
        for row in read_rows(stream, m, report):
            cur.execute(_UPSERT[m.registry], {**row, "cell": grid_cell_id(row["lat"], row["lon"], cell_deg)})
            report.imported += 1
    return report


COMMAND = "import-registry"


def add_subcommand(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(COMMAND, help="import risk sources or shelters from CSV with a mapping file")
    p.add_argument("csv", type=Path, help="the CSV file")
    p.add_argument("--mapping", type=Path, required=True, help="the mapping file (simulators/mappings/)")
    p.add_argument("--database-url", default=None, help="default: DATABASE_URL from the settings")


def main(ns: argparse.Namespace) -> int:
    """Exit 0 when every row was read, 1 when some were reported, 2 for a bad mapping."""
    from wuwang.settings import get_settings

    settings = get_settings()
    url = ns.database_url or settings.shared.database_url
    if not url:
        print("DATABASE_URL is not set (or pass --database-url postgresql://…)", file=sys.stderr)
        return 2
    try:
        mapping = load_registry_mapping(ns.mapping)
    except MappingError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        with psycopg.connect(url) as conn:
            report = import_registry_csv(conn, ns.csv, mapping, settings.shared.grid_cell_deg)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {ns.csv}: {exc}", file=sys.stderr)
        return 2
    print(f"{mapping.registry}: {report.imported} imported, {len(report.problems)} skipped")
    for line, reason in report.problems:
        print(f"  line {line}: {reason}")
    return 1 if report.problems else 0
