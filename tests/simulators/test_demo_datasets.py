"""The demo's imported dataset: loaded once by ``make demo``, idempotent, optional."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from simulators.demo_datasets import CSV_PATH, DATASET_ID, load_demo_datasets


@pytest.mark.skipif(not CSV_PATH.is_file(), reason=f"{CSV_PATH} is not beside the repository")
def test_the_demo_dataset_is_imported_once(database_url: str) -> None:
    first = load_demo_datasets(database_url)
    assert first.startswith(f"dataset {DATASET_ID}:")
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT e.kind, e.status, count(c.*) FROM exercise e JOIN imported_call c ON c.dataset_id = e.id"
            " WHERE e.id = %s GROUP BY 1, 2",
            (DATASET_ID,),
        ).fetchone()
    assert row is not None and row[0] == "import" and row[1] == "finished"
    assert f"{row[2]} calls" in first
    assert load_demo_datasets(database_url) == f"dataset {DATASET_ID} already imported"
    with psycopg.connect(database_url) as conn:
        again = conn.execute(
            "SELECT count(*) FROM imported_call WHERE dataset_id = %s", (DATASET_ID,)
        ).fetchone()
    assert again is not None and again[0] == row[2]


def test_without_the_file_the_demo_goes_on(database_url: str, tmp_path: Path) -> None:
    line = load_demo_datasets(database_url, tmp_path / "missing.csv")
    assert "no imported dataset" in line
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM exercise").fetchone() == (0,)
