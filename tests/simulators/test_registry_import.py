"""Risk sources and shelters from CSV with a mapping file: readable rows upserted by id
(again: no duplicates), GCJ-02 converted, unreadable rows reported by line, a bad
mapping named by its key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from simulators.importer import MappingError
from simulators.registry_import import import_registry_csv, load_registry_mapping
from wuwang.geo import gcj02_to_wgs84
from wuwang.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "simulators" / "mappings" / "registries"  # apart from the call mappings
DATA = ROOT / "tests" / "data"


def test_risk_sources_and_shelters_import_and_import_again(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(account="command")
    sources = load_registry_mapping(MAPPINGS / "cn_risk_sources_example.yaml")
    shelters = load_registry_mapping(MAPPINGS / "cn_shelters_example.yaml")
    with psycopg.connect(settings.shared.database_url or "") as conn:
        report = import_registry_csv(
            conn, DATA / "cn_risk_sources_sample.csv", sources, settings.shared.grid_cell_deg
        )
        assert report.imported == 2
        assert [line for line, _ in report.problems] == [4, 5]
        assert "地下空间" in report.problems[0][1] and "kind_map" in report.problems[0][1]
        again = import_registry_csv(
            conn, DATA / "cn_risk_sources_sample.csv", sources, settings.shared.grid_cell_deg
        )
        assert again.imported == 2
        rows = conn.execute(
            "SELECT id, kind, level, lat, lon, inspection_interval_days, responsible_unit, grid_cell_id"
            " FROM risk_source ORDER BY id"
        ).fetchall()
        assert [(r[0], r[1], r[2], r[5]) for r in rows] == [
            ("RS-XY001", "hazardous_chemicals", "major", 7),
            ("RS-XY002", "gas_station", "large", 30),  # no interval given: the default
        ]
        lat, lon = gcj02_to_wgs84(31.9826, 112.2409)
        assert rows[0][3] == pytest.approx(lat) and rows[0][4] == pytest.approx(lon)
        assert rows[0][6] == "余家湖工业园管委会" and rows[0][7]
        cell_deg = settings.shared.grid_cell_deg
        report = import_registry_csv(conn, DATA / "cn_shelters_sample.csv", shelters, cell_deg)
        assert report.imported == 2 and [line for line, _ in report.problems] == [4]
        got = conn.execute(
            "SELECT id, kind, capacity, facilities, status, lat FROM shelter ORDER BY id"
        ).fetchall()
        assert got == [
            ("SH-XY01", "square", 8000, ["饮用水", "厕所", "电力"], "open", 32.005),
            ("SH-XY02", "park", 15000, ["饮用水", "帐篷"], "closed", 32.04),
        ]


def test_a_bad_mapping_is_named_by_its_key(tmp_path: Path) -> None:
    text = (MAPPINGS / "cn_risk_sources_example.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("hazardous_chemicals", "chemicals"), encoding="utf-8")
    with pytest.raises(MappingError, match="kind_map: chemicals"):
        load_registry_mapping(bad)
    bad.write_text(text.replace("level_map:", "levels_map:"), encoding="utf-8")
    with pytest.raises(MappingError, match="levels_map"):
        load_registry_mapping(bad)
    bad.write_text(text.replace("重大: major", "重大: huge"), encoding="utf-8")
    with pytest.raises(MappingError, match="level_map"):
        load_registry_mapping(bad)


def test_the_command_line_imports_and_reports_skipped_rows(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    from simulators.__main__ import main

    settings = make_settings(account="command")
    args = ["import-registry", str(DATA / "cn_shelters_sample.csv"), "--mapping"]
    url = ["--database-url", settings.shared.database_url or ""]
    assert main([*args, str(MAPPINGS / "cn_shelters_example.yaml"), *url]) == 1  # one row skipped
    out = capsys.readouterr().out
    assert "shelter: 2 imported, 1 skipped" in out and "line 4" in out
    assert main([*args, str(MAPPINGS / "no_such.yaml"), *url]) == 2
