"""Exercise mode (演练模式) in a real browser against the whole stack, with the exercise
runner: a planner starts a short scenario (tests/data/scenarios/console_short_drill.yaml)
at high speed from the console, sees the 演练 EXERCISE banner and the exercise's
incident, pauses it, speeds it up and lets it finish; an operator's console at the same
time shows no exercise object and unchanged KPI tiles; the planner opens the
after-action report (its sections) and downloads the CSV; then purges the exercise.

Screenshots: test-artifacts/dashboard/exercise-mode.png, exercise-wall.png,
after-action-report.png (and docs/screenshots/ with WUWANG_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import command.services.exercises as command_exercises
import dashboard.callbacks.exercise as console_exercises
import simulators.scenario as scenarios
from testkit.feeds import wait_for
from testkit.stack import Stack, exercise_runner
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

TEST_SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"
SCENARIO = "console_short_drill.yaml"
KPIS = ("open-1", "open-2", "open-3", "open-4", "teams-available", "p90", "closure", "low-stock", "expiring")


@pytest.fixture
def drills(console_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test's scenario directory for the command service, the runner and the
    console (they run in this process), and the exercise runner itself."""
    monkeypatch.setattr(command_exercises, "SCENARIOS_DIR", TEST_SCENARIOS)
    monkeypatch.setattr(scenarios, "SCENARIO_DIR", TEST_SCENARIOS)
    monkeypatch.setattr(console_exercises, "SCENARIOS_DIR", TEST_SCENARIOS)
    with exercise_runner(console_stack):
        yield


def kpi_values(page: Any) -> dict[str, str]:
    return {
        k: page.inner_text(f'.kpi[data-kpi="{k}"] .kpi-value')
        for k in KPIS
        if page.query_selector(f'.kpi[data-kpi="{k}"] .kpi-value')
    }


def banner_status(page: Any) -> str | None:
    el = page.query_selector("#exercise-banner [data-status]")
    return el.get_attribute("data-status") if el else None


def test_a_short_drill_at_speed_is_marked_isolated_and_reported(
    console_stack: Stack, chromium: Any, artifacts: Path, drills: None
) -> None:
    stack = console_stack
    # --- an operator's console, live: the baseline -------------------------------------------
    op_ctx = chromium.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    op = Watched(op_ctx.new_page())
    login(op.page, stack, "operator1")
    op.page.wait_for_selector(".connection.ok", timeout=30_000)
    op.page.wait_for_selector('.kpi[data-kpi="p90"]', timeout=30_000)
    op.page.wait_for_selector('.kpi[data-kpi="open-1"]', timeout=30_000)
    op.page.wait_for_timeout(2500)  # the KPI fetch after the snapshot is debounced
    live_kpis = kpi_values(op.page)
    live_ids = set(op.page.evaluate("() => Array.from(window.wuwang.live.incidents.keys())"))
    assert op.page.is_hidden("#exercise-banner")
    assert op.page.query_selector('input[value="exercises"]') is None  # no exercises tab

    # --- the planner starts the short scenario at ×10 ------------------------------------------
    pl_ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    pl = Watched(pl_ctx.new_page())
    pl.page.on("dialog", lambda d: d.accept())  # the purge's confirmation
    login(pl.page, stack, "planner1")
    pl.page.wait_for_selector(".connection.ok", timeout=30_000)
    pl.page.wait_for_selector("#exercise-banner:not([hidden])", timeout=20_000)
    assert "演练 EXERCISE" in pl.page.inner_text("#exercise-banner")
    pl.page.click("label:has(input[value='exercises'])")
    pl.page.wait_for_selector("#panel-exercises:visible", timeout=10_000)
    pl.page.wait_for_selector("#exercise-new-scenario:has-text('控制台测试短演练')", timeout=20_000)
    pl.page.fill("#exercise-new-speed", "10")
    pl.page.click("#exercise-new-button")
    pl.page.wait_for_selector("#exercise-feedback:has-text('已登记演练')", timeout=20_000)
    pl.page.wait_for_selector("#exercise-banner [data-exercise]", state="attached", timeout=20_000)
    exercise_id = pl.page.get_attribute("#exercise-banner [data-exercise]", "data-exercise")
    assert exercise_id and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", exercise_id)
    wait_for(lambda: banner_status(pl.page) == "running", 30, 0.2, "the runner to start the exercise")
    assert exercise_id in pl.page.inner_text("#exercise-banner")

    # --- its incident appears on the planner's console --------------------------------------------
    planner = stack.login("planner1")
    pl.page.wait_for_selector(".qrow[data-incident]", timeout=30_000)
    incident_id = pl.page.get_attribute(".qrow[data-incident]", "data-incident")
    assert incident_id
    assert stack.api("GET", f"/incidents/{incident_id}", planner)["incident"]["exercise_id"] == exercise_id
    assert "演练" in pl.page.inner_text(f'.qrow[data-incident="{incident_id}"]')

    # --- pause, speed ×100, play: the runner follows ------------------------------------------------
    pl.page.click("button:has-text('暂停')")
    wait_for(lambda: banner_status(pl.page) == "paused", 20, 0.2, "the exercise paused")
    pl.page.wait_for_selector(".exercise-state.status-paused", timeout=10_000)
    pl.page.click(f'.qrow[data-incident="{incident_id}"]')
    pl.page.wait_for_selector(f'.detail-head:has-text("{incident_id}")', timeout=20_000)
    pl.page.click("label:has(input[value='exercises'])")
    pl.page.wait_for_timeout(1200)
    shot(pl.page, artifacts, "exercise-mode")
    # --- a wall in exercise mode: the planner's wall follows the running exercise -----------------
    wall_ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    wall = Watched(wall_ctx.new_page())
    login(wall.page, stack, "planner1", "/wall")
    wall.page.wait_for_selector(".console.wall #exercise-banner:not([hidden])", timeout=30_000)
    wall.page.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
    wall.page.wait_for_selector(
        f'#exercise-banner [data-exercise="{exercise_id}"]', state="attached", timeout=20_000
    )
    wall.page.wait_for_selector(f'.qrow[data-incident="{incident_id}"]', timeout=20_000)
    wall.page.wait_for_timeout(1500)
    shot(wall.page, artifacts, "exercise-wall")
    assert wall.errors == [], wall.errors
    wall_ctx.close()

    pl.page.fill("#exercise-speed", "100")
    pl.page.click("#exercise-speed-button")
    pl.page.wait_for_selector("#exercise-feedback:has-text('倍速')", timeout=10_000)
    pl.page.click("button:has-text('继续')")
    wait_for(lambda: banner_status(pl.page) == "finished", 60, 0.3, "the exercise to finish at ×100")
    pl.page.wait_for_selector(".exercise-speed:has-text('×100')", timeout=10_000)

    # --- isolation: the operator saw none of it -----------------------------------------------------
    operator = stack.login("operator1")
    assert op.page.is_hidden("#exercise-banner")
    seen = op.page.evaluate(
        "() => Array.from(window.wuwang.live.incidents.values()).filter(i => i.exercise_id).length"
    )
    assert seen == 0
    assert op.page.query_selector(f'.qrow[data-incident="{incident_id}"]') is None
    assert set(op.page.evaluate("() => Array.from(window.wuwang.live.incidents.keys())")) == live_ids
    assert all(i.get("exercise_id") is None for i in stack.api("GET", "/incidents?open=false", operator))
    op.page.wait_for_timeout(2500)
    assert kpi_values(op.page) == live_kpis
    refused = op.page.evaluate(
        """id => fetch('/report/ticket', {method: 'POST', headers: {'Content-Type': 'application/json',
              Authorization: 'Bearer ' + window.wuwang.live.token}, body: JSON.stringify({path:
              '/report/exercise/' + id + '.html'})}).then(r => r.status)""",
        exercise_id,
    )
    assert refused == 403
    op.errors[:] = [e for e in op.errors if "403 (Forbidden)" not in e]  # that refusal, logged by Chromium

    # --- the after-action report: a new tab, and the CSV as a file -------------------------------
    with pl_ctx.expect_page(timeout=30_000) as popup:
        pl.page.click("#exercise-reports a:has-text('复盘报告')")
    report = popup.value
    report.wait_for_selector("section#events", timeout=60_000)
    for section in ("summary", "kpis", "timeline", "map", "plots", "events"):
        assert report.query_selector(f"section#{section}") is not None, section
    assert exercise_id in report.inner_text("section#summary")
    assert "ticket=" in report.url and planner not in report.url
    report.wait_for_timeout(1500)  # the plots draw (inline scripts, in the report's sandbox)
    report.set_viewport_size({"width": 1280, "height": 1400})
    shot(report, artifacts, "after-action-report")
    report.close()
    with pl.page.expect_download(timeout=30_000) as download:
        pl.page.click("#exercise-reports a:has-text('下载事件')")
    csv_path = download.value.path()
    assert download.value.suggested_filename.endswith(".csv")
    header = next(csv.reader(io.StringIO(Path(csv_path).read_text(encoding="utf-8-sig"))))
    assert header[:2] == ["at", "incident_id"]

    # --- purge: everything the exercise produced goes -------------------------------------------------
    pl.page.click("#exercise-purge")
    pl.page.wait_for_selector("#exercise-feedback:has-text('已清除')", timeout=30_000)
    with psycopg.connect(stack.database_url) as conn:
        left = conn.execute("SELECT count(*) FROM incident WHERE exercise_id = %s", (exercise_id,)).fetchone()
    assert left is not None and left[0] == 0
    pl.page.wait_for_selector(f'.qrow[data-incident="{incident_id}"]', state="detached", timeout=20_000)

    assert pl.errors == [], pl.errors
    assert op.errors == [], op.errors
    assert pl.foreign() == [] and op.foreign() == []
    pl_ctx.close()
    op_ctx.close()
