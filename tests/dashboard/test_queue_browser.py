"""The incident queue on the desk in a real browser (Chromium) against a whole stack:

- sections 待核实 / 处置中 / 挂起, each with the count of its rows;
- ranked by level, then time against the target (not by age): a level I call that came
  last is above the level IV ones that came first, and is the sticky top row;
- titles say what and where (火灾 · address), the source as a tag (110);
- a new incident and a level raise flash their row until acknowledged (opening the
  incident, or its 知道了 button), and sound once the operator has enabled the tone;
  the mute toggle is kept in localStorage.

Screenshot: test-artifacts/dashboard/queue-desk.png (1920×1080; also docs/screenshots/
with WUWANG_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from testkit.feeds import wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import call_110, incident_of, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

ORDER_JS = """() => [...document.querySelectorAll('#queue > .qsection, #queue > .qrow')].map(e =>
  e.classList.contains('qsection') ? 'section:' + e.dataset.section : e.dataset.incident)"""


def sections_in_dom(page: Any) -> dict[str, tuple[int, list[str]]]:
    """section → (its count as shown, the incident ids drawn under it, in order)."""
    out: dict[str, tuple[int, list[str]]] = {}
    current = None
    for item in page.evaluate(ORDER_JS):
        if item.startswith("section:"):
            current = item.split(":", 1)[1]
            count = int(page.inner_text(f'#queue .qsection[data-section="{current}"] .count'))
            out[current] = (count, [])
        elif current is not None:
            out[current][1].append(item)
    return out


def row(iid: str) -> str:
    return f'#queue .qrow[data-incident="{iid}"]'


@pytest.mark.usefixtures("clean_desk")  # only this test's incidents on the desk
def test_sections_ranking_titles_and_announcements(
    console_stack: Stack, desk: Watched, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    commander = stack.login("commander1")
    tag = uuid.uuid4().hex[:4]
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector("#queue-sound", timeout=30_000)

    # The tone: off until the operator enables it (browsers block autoplay); mute per desk.
    assert page.get_attribute("html", "data-sound") == "off"
    page.click("#queue-sound")
    page.wait_for_selector('html[data-sound="on"]', timeout=10_000)
    assert page.evaluate("() => sessionStorage.getItem('wuwang.queue.sound')") == "1"
    page.click("#queue-mute")
    page.wait_for_selector('html[data-mute="on"]', timeout=5_000)
    assert page.evaluate("() => localStorage.getItem('wuwang.queue.mute')") == "1"
    assert "已静音" in page.inner_text("#queue-mute")
    page.click("#queue-mute")
    page.wait_for_selector('html[data-mute="off"]', timeout=5_000)

    # Three 110 calls, far apart: two level IV first, then one the commander raises to I.
    calls = [
        ("medical", 32.0870, 112.2010, f"襄州区航空路社区{tag}号"),
        ("traffic", 32.0098, 112.1532, f"襄城区环城南路{tag}号"),
        ("fire", 32.0465, 112.1380, f"樊城区人民广场东侧{tag}号"),
    ]
    incs = [
        incident_of(stack, commander, call_110(stack, category=c, lat=lat, lon=lon, address=addr))
        for c, lat, lon, addr in calls
    ]
    medical, traffic, fire = (i["id"] for i in incs)
    for iid in (medical, traffic, fire):
        page.wait_for_selector(row(iid), timeout=20_000)

    # Titles: what, then where; the source as a tag, not in the title.
    assert incs[2]["title"] == f"火灾 · 樊城区人民广场东侧{tag}号"
    title = page.inner_text(f"{row(fire)} .qtitle")
    assert page.inner_text(f"{row(fire)} .src-tag.src-call") == "110"
    assert f"火灾 · 樊城区人民广场东侧{tag}号" in title and "110报警" not in title

    # Announced: each new incident's row flashes, and the tone sounded.
    for iid in (medical, traffic, fire):
        page.wait_for_selector(f"{row(iid)}.announce.announce-new", timeout=10_000)
    assert page.inner_text(f"{row(fire)} .announce-tag") == "新事件"
    assert page.evaluate("() => window.wuwang.announce.stats.played") >= 1

    # Acknowledged by opening the row; the 知道了 button acknowledges without opening.
    page.click(f"{row(medical)} .qtext")
    page.wait_for_selector(f"{row(medical)}:not(.announce)", timeout=10_000)
    page.click(f'{row(traffic)} button[data-ack="{traffic}"]')
    page.wait_for_selector(f"{row(traffic)}:not(.announce)", timeout=10_000)
    assert page.evaluate("() => window.wuwang.live.selected") == medical
    page.click(f"{row(fire)} .qtext")
    page.wait_for_selector(f"{row(fire)}:not(.announce)", timeout=10_000)

    # A level raise is announced again; the raised call ranks first though it came last.
    played = page.evaluate("() => window.wuwang.announce.stats.played")
    fresh = stack.api("GET", f"/incidents/{fire}", commander)["incident"]
    stack.api(
        "POST",
        f"/incidents/{fire}/level",
        commander,
        {"expected_version": fresh["version"], "level": 1, "reason": "现场报告有人被困"},
    )
    page.wait_for_selector(f"{row(fire)}.level-1.announce.announce-raised", timeout=15_000)
    assert page.inner_text(f"{row(fire)} .announce-tag") == "级别提升"
    wait_for(
        lambda: page.evaluate("() => window.wuwang.announce.stats.played") > played,
        5,
        0.1,
        "the tone for the raise",
    )

    # One of the level IV calls is verified: it moves to 处置中.
    fresh = stack.api("GET", f"/incidents/{traffic}", commander)["incident"]
    stack.api("POST", f"/incidents/{traffic}/verify", commander, {"expected_version": fresh["version"]})
    page.wait_for_selector(f'#queue .qrow.section-active[data-incident="{traffic}"]', timeout=15_000)

    shown = sections_in_dom(page)
    assert list(shown) == ["awaiting", "active", "held"]
    for section, (count, ids) in shown.items():
        assert count == len(ids), section  # the count says what is under it
    awaiting, active = shown["awaiting"][1], shown["active"][1]
    assert traffic in active and traffic not in awaiting
    # level I first of all, whatever its age; the level IV call waits below it
    assert awaiting.index(fire) < awaiting.index(medical)
    levels = page.evaluate(
        "() => [...document.querySelectorAll('#queue .qrow.section-awaiting')]"
        ".map(e => window.wuwang.live.incidents.get(e.dataset.incident).level)"
    )
    assert levels == sorted(levels) and levels[0] == 1
    # the most urgent stays on screen: the first row is sticky, and it is the level I call
    assert page.get_attribute("#queue .qrow.top", "data-incident") == awaiting[0]
    assert (
        page.evaluate("() => getComputedStyle(document.querySelector('#queue .qrow.top')).position")
        == "sticky"
    )
    page.wait_for_timeout(600)
    shot(page, artifacts, "queue-desk")

    # Acknowledge the raise, then the English desk: the sections and tags in English.
    page.click(f'{row(fire)} button[data-ack="{fire}"]')
    page.wait_for_selector(f"{row(fire)}:not(.announce)", timeout=10_000)
    page.click("text=English")
    page.wait_for_selector("text=Incident queue", timeout=15_000)
    page.wait_for_selector(row(fire), timeout=15_000)
    assert (
        page.inner_text('#queue .qsection[data-section="awaiting"] .qsection-name') == "Awaiting verification"
    )
    assert page.inner_text(f"{row(fire)} .qsub .qwords").startswith("New · ")
    # the what in English, the where as the caller said it; the source tag in English too
    assert page.inner_text(f"{row(fire)} .qtext") == f"Fire · 樊城区人民广场东侧{tag}号"
    assert page.inner_text(f"{row(medical)} .src-tag") == "110"
    assert "Enable alert sound" in page.inner_text("#queue-sound") or "Alert sound on" in page.inner_text(
        "#queue-sound"
    )
    page.screenshot(path=str(artifacts / "queue-desk-en.png"))
    page.click("text=中文")
    page.wait_for_selector("text=事件队列", timeout=15_000)
    assert desk.errors == [], desk.errors


def test_an_order_not_acknowledged_in_time_flashes_its_row(console_stack: Stack, desk: Watched) -> None:
    """The command service's ack watchdog (COMMAND_ACK_TIMEOUT_S, 60 s here) raises an
    ``ack_overdue`` alert for an order nobody acknowledged: its incident's row flashes.
    The order is made the timeout old in the database instead of waited out (the
    watchdog compares the stored send time with its clock, nothing else)."""
    stack, page = console_stack, desk.page
    commander = stack.login("commander1")
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    inc = incident_of(
        stack,
        commander,
        call_110(
            stack,
            category="rescue",
            lat=32.0650,
            lon=112.1700,
            address=f"樊城区清河口{uuid.uuid4().hex[:4]}号",
        ),
    )
    iid = inc["id"]
    page.wait_for_selector(f"{row(iid)}.announce-new", timeout=20_000)
    page.click(f'{row(iid)} button[data-ack="{iid}"]')
    page.wait_for_selector(f"{row(iid)}:not(.announce)", timeout=10_000)

    verified = stack.api("POST", f"/incidents/{iid}/verify", commander, {"expected_version": inc["version"]})
    # a team no field page answers for (the console tests' field page is the last one's)
    busy = {stack.team_ids[-1]}
    team = next(
        t["id"]
        for t in stack.api("GET", "/teams", commander)
        if t.get("status") == "available" and t["id"] not in busy
    )
    sent = stack.api(
        "POST",
        f"/incidents/{iid}/dispatch",
        commander,
        {"team_id": team, "expected_version": verified["version"]},
    )
    # Nothing flashes before the timeout: the watchdog runs every 5 s at most.
    page.wait_for_timeout(6_000)
    assert page.query_selector(f"{row(iid)}.announce-overdue") is None
    timeout_s = stack.command_settings.command.ack_timeout_s
    with psycopg.connect(stack.database_url) as conn:
        aged = conn.execute(
            "UPDATE dispatch_order SET sent_at = sent_at - make_interval(secs => %s)"
            " WHERE incident_id = %s AND team_id = %s AND status = 'sent'",
            (timeout_s + 1, iid, team),
        ).rowcount
    assert aged == 1
    page.wait_for_selector(f"{row(iid)}.announce-overdue", timeout=30_000)
    assert page.inner_text(f"{row(iid)} .announce-tag") == "指令超时未接令"
    page.click(f"{row(iid)} .qtext")  # opening it acknowledges
    page.wait_for_selector(f"{row(iid)}:not(.announce)", timeout=10_000)
    stack.api(
        "POST",
        f"/incidents/{iid}/release",
        commander,
        {"team_id": team, "expected_version": sent["incident"]["version"], "reason": "测试结束，收队"},
    )
    assert desk.errors == [], desk.errors
