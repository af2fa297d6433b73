"""``python -m command cap import FILE…`` (command/cap_cli.py) as a process: files stored
as the API stores them, Update linked, refusals named with the reason, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from command.domain.cap import Reference, SenderCode, WarningText, cap_from_warning, gb_identifier, to_cap_xml

REPO = Path(__file__).resolve().parents[2]
MET = SenderCode("420600", "416", "000", "00")


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "DEMO_MODE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "command", "cap", "import", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _write(
    tmp: Path, name: str, at: datetime, msg_type: str = "Alert", refs: list[Reference] | None = None
) -> Reference:
    ident = gb_identifier(MET, at, 1)
    alert = cap_from_warning(
        identifier=ident,
        sender=str(MET),
        sent=at,
        level="红",
        event_type="11B04",
        texts=[WarningText("zh-CN", "暴雨", "暴雨红色预警", "降雨量将达100毫米以上。")],
        expires=at + timedelta(hours=3),
        msg_type=msg_type,  # type: ignore[arg-type]
        references=refs or [],
        polygons=[[(32.0, 112.1), (32.1, 112.1), (32.1, 112.2), (32.0, 112.1)]],
    )
    (tmp / name).write_bytes(to_cap_xml(alert))
    return Reference(alert.sender, ident, at)


def test_cap_import_stores_links_and_refuses(database_url: str, tmp_path: Path) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    ref = _write(tmp_path, "alert.xml", t)
    _write(tmp_path, "update.xml", t + timedelta(seconds=1), "Update", [ref])
    (tmp_path / "xxe.xml").write_text(
        f'<!DOCTYPE alert [<!ENTITY x SYSTEM "file://{tmp_path}/alert.xml">]>'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>'
    )
    done = _cli(
        database_url,
        str(tmp_path / "alert.xml"),
        str(tmp_path / "update.xml"),
        str(tmp_path / "xxe.xml"),
        str(tmp_path / "missing.xml"),
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    assert "alert.xml: stored #" in lines[0] and "level=red state=active" in lines[0]
    assert "update.xml: stored #" in lines[1] and "(retired #" in lines[1]
    assert "xxe.xml: refused: DTDs and entities are refused" in lines[2]
    assert "missing.xml: unreadable" in lines[3]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT msg_type, state, received_by FROM inbound_warning ORDER BY id").fetchall()
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'inbound_warning.import'"
        ).fetchone()
    assert rows == [("Alert", "updated", "cap-import"), ("Update", "active", "cap-import")]
    assert audited == (2,)

    again = _cli(database_url, str(tmp_path / "alert.xml"), "--by", "duty-officer")
    assert again.returncode == 0, again.stderr
    assert ": already stored #" in again.stdout


def test_cap_import_needs_a_file(database_url: str) -> None:
    done = _cli(database_url)
    assert done.returncode == 2
    assert "FILE" in done.stderr
