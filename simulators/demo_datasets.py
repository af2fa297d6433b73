"""``python -m simulators.demo_datasets``: the demo's imported call records.

Loads ``../shared/data/sf_fire_calls.csv`` (real San Francisco fire-department calls,
April 2020) with the shipped mapping as dataset ``DS-SF-FIRE-2020-04``, so a drill
planner can replay an imported day from the console at once (relocated onto the demo
city by the replay). Idempotent: a dataset already there is left as it is; a missing
file is said and skipped (the demo runs without it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import psycopg

from simulators.importer import import_csv, load_mapping
from wuwang.service import setup_logging
from wuwang.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

DATASET_ID = "DS-SF-FIRE-2020-04"
DATASET_NAME = "旧金山消防接警 2020年4月（导入示例）"
CSV_PATH = REPO_ROOT.parent / "shared" / "data" / "sf_fire_calls.csv"
MAPPING_PATH = Path(__file__).resolve().parent / "mappings" / "sf_fire_calls.yaml"


def load_demo_datasets(database_url: str, csv_path: Path = CSV_PATH) -> str:
    """Import the demo dataset unless it is there; returns one line for the launcher."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status FROM exercise WHERE id = %s AND kind = 'import'", (DATASET_ID,)
        ).fetchone()
    if row is not None and row[0] != "purged":
        return f"dataset {DATASET_ID} already imported"
    if not csv_path.is_file():
        return f"no {csv_path} here: no imported dataset (replays of recorded windows still work)"
    dataset_id, report = import_csv(
        database_url,
        csv_path,
        load_mapping(MAPPING_PATH),
        dataset_id=DATASET_ID if row is None else None,  # a purged id stays purged
        name=DATASET_NAME,
        created_by="demo",
    )
    return (
        f"dataset {dataset_id}: {report.imported} calls from {report.rows_read} rows"
        f" ({report.folded} unit rows folded, {len(report.problems)} skipped)"
    )


def main() -> int:
    setup_logging("demo-datasets", "INFO")
    settings = Settings()
    if not settings.shared.database_url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    print(load_demo_datasets(settings.shared.database_url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
