"""One language at a time (Chromium through Playwright against a whole stack, like
test_console_browser.py).

The desk (the open incident with its plan, recommendations, boards and the stats
chart), the wall, a field team's page with its order and an incident's after-action
report are drawn in Chinese and in English. Every visible text node (and every
placeholder and tooltip title) is read from the page: the English pages must hold no
CJK character, the Chinese pages no Latin word except an id (INC-…, a team's id), a
unit of measure, a level numeral or a brand name (:data:`LATIN_ALLOWED`). The language
switch names each language in its own words (中文 / English) and is not checked.

Switching the language keeps the open incident and the map's view; the KPI tiles are
filled again right after the switch; the stats chart's time axis has hour-and-minute
ticks. Screenshots: desk-en.png, desk-record-en.png (the record's reasons),
desk-charts-en.png, wall-display-en.png, field-page-en.png, after-action-report-en.png.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from command.users import demo_users
from testkit.feeds import wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import call_110, incident_of, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

#: Every visible text (and placeholders, titles) of the page, except the language switch.
TEXTS = """
() => {
  const out = [];
  const seen = (el) => {
    for (let e = el; e; e = e.parentElement) {
      if (e.closest && e.closest('.lang-switch, script, style, noscript')) return false;
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden') return false;
    }
    return true;
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const text = node.textContent.trim();
    if (text && node.parentElement && seen(node.parentElement)) out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (!seen(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label']) {
      const v = el.getAttribute(a);
      if (v) out.push(v.trim());
    }
  }
  for (const o of document.querySelectorAll('select option')) {
    if (seen(o.parentElement)) out.push(o.textContent.trim());
  }
  return out;
}
"""

#: The map's view: [lat, lon, zoom] (dash-leaflet reports its centre as [lat, lon] or
#: {lat, lng}).
VIEW = """
() => {
  const p = window.wuwang.getProps('map'), c = p.center;
  return Array.isArray(c) ? [c[0], c[1], p.zoom] : [c.lat, c.lng, p.zoom];
}
"""

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
#: A token: letters and digits joined by - _ : . / # — an id when it holds a digit
#: (INC-20261207-0001, T-FIRE-03, LOT-GOV-CITY-04-medical_mask-2, operator1): the name
#: of a thing, not a word.
TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_:./#][A-Za-z0-9]+)*")
#: Capitals joined by - or _ are an id too, digits or not (a camera CAM-PAECDFD, T-FIRE).
CAPS_ID = re.compile(r"[A-Z]+(?:[-_][A-Z0-9]+)+")
WORD = re.compile(r"[A-Za-z]+")
#: Latin words a Chinese screen may show: units of measure, level numerals (Ⅰ–Ⅳ级 are
#: written with Latin letters on Chinese screens too), brand and standard names.
LATIN_ALLOWED = {
    "km", "m", "s", "min", "h", "kg", "t", "L", "mL", "ms", "px",
    "I", "II", "III", "IV",
    "GCJ", "WGS", "ID", "SOS", "CSV", "HTML", "Plotly", "Leaflet", "OpenStreetMap", "PMTiles",
    "NFPA", "UTC", "p50", "p90", "p99",
    "AM", "PM",
}  # fmt: skip


def proper_names(stack: Stack, token: str, *also: str) -> list[str]:
    """Names that stay as they were written, whatever the language: the city's teams,
    districts, roads and warehouses, the users' names, the named places on the map and
    what a caller said (``also``). Longest first. (The holders of a plan's roles are not
    among them: the plans name them in both languages, ``held_by_en``.)"""
    names = {t.name for t in stack.city.teams} | {d.name for d in stack.city.districts}
    names |= {v.name for v in stack.city.venues}  # the basemap's named places
    names |= {road for d in stack.city.districts for road in d.info.roads}  # the map's street names
    names |= {str(w["name"]) for w in stack.api("GET", "/reserve/warehouses", token)}
    names |= {u.display_name for u in demo_users([])}
    names |= set(also)
    return sorted(names, key=len, reverse=True)


def _is_id(token: str) -> bool:
    return any(c.isdigit() for c in token) or CAPS_ID.fullmatch(token) is not None


def leaks(texts: list[str], lang: str, names: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """The texts that speak the other language (a proper name is no language)."""
    if lang == "en":
        found = set()
        for text in texts:
            bare = text
            for name in names:
                bare = bare.replace(name, " ")
            if CJK.search(bare):
                found.add(text)
        return sorted(found)
    found = set()
    for text in texts:
        bare = TOKEN.sub(lambda m: " " if _is_id(m.group()) else m.group(), text)
        words = WORD.findall(bare)
        if any(w not in LATIN_ALLOWED for w in words):
            found.add(text)
    return sorted(found)


def test_the_leak_finder_tells_the_languages_apart() -> None:
    assert leaks(["事件队列", "INC-20261207-0001 交通事故", "3.2 km", "Ⅰ级", "I 级"], "zh_CN") == []
    assert leaks(["视频 · CAM-PAECDFD"], "zh_CN") == []  # a camera's id, digits or not
    assert leaks(["video/CAM-PAECDFD"], "zh_CN") == ["video/CAM-PAECDFD"]  # a feed's name is a word
    assert leaks(["traffic_accident v1", "locate_scene✓", "flood: 内涝"], "zh_CN") == [
        "flood: 内涝",
        "locate_scene✓",
        "traffic_accident v1",
    ]
    assert leaks(["Incident queue", "T-FIRE-003 · 2.1 km"], "en") == []
    assert leaks(["Incident 交通事故"], "en") == ["Incident 交通事故"]
    assert leaks(["Team 樊城区米公消防救援站 — 2.1 km"], "en", ["樊城区米公消防救援站"]) == []


def texts_of(page: Any) -> list[str]:
    return list(page.evaluate(TEXTS))


def switch(page: Any, lang: str) -> None:
    page.click("text=English" if lang == "en" else "text=中文")


@pytest.mark.usefixtures("clean_desk")  # only this test's incidents on the desk
def test_every_screen_speaks_one_language(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack = console_stack
    commander = stack.login("commander1")
    address = "樊城区长虹路与人民路口"
    inc = incident_of(
        stack, commander, call_110(stack, category="traffic", lat=32.0431, lon=112.1448, address=address)
    )
    names = proper_names(stack, commander, address)
    iid = inc["id"]

    page = desk.page
    page.set_viewport_size({"width": 1920, "height": 1080})
    login(page, stack, "commander1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    row = f'.qrow[data-incident="{iid}"]'
    page.wait_for_selector(row, timeout=30_000)
    page.click(row)
    page.wait_for_selector(f'.detail-head:has-text("{iid}")', timeout=20_000)
    page.get_by_role("button", name="启动预案").click()  # the plan's steps, the recommendations
    page.wait_for_selector(".checklist .check", timeout=20_000)
    page.click('.detail-tab:has-text("队伍")')  # teams: assigned and recommended
    first = page.locator(".dispatch-button").first
    first.wait_for(timeout=20_000)
    team_id = json.loads(first.get_attribute("id") or "{}")["team"]
    first.click()
    page.wait_for_selector(f'#feedback:has-text("{team_id}")', timeout=20_000)
    page.wait_for_selector('.kpi[data-kpi="p90"]', timeout=30_000)

    found: dict[str, list[str]] = {}
    for lang in ("zh_CN", "en"):
        if lang == "en":
            page.evaluate(
                "() => window.wuwang.setProps('map', {viewport: {center: [32.03, 112.16], zoom: 14}})"
            )
            page.wait_for_timeout(800)
            view = page.evaluate(VIEW)
            switch(page, "en")
            page.wait_for_selector("text=Incident queue", timeout=15_000)
            # the open incident and the map's view stay; the KPI tiles are there at once
            page.wait_for_selector(f'.detail-head:has-text("{iid}")', timeout=20_000)
            page.wait_for_selector('.kpi[data-kpi="p90"]', timeout=20_000)

            def zoom_kept(zoom: float = view[2]) -> bool:
                return bool(page.evaluate(VIEW)[2] == zoom)

            wait_for(zoom_kept, 10, 0.2, "the map's zoom kept")
            kept = page.evaluate(VIEW)
            assert abs(kept[0] - view[0]) < 1e-3 and abs(kept[1] - view[1]) < 1e-3, (kept, view)
        page.wait_for_selector(".detail-tab", timeout=20_000)
        page.set_viewport_size({"width": 1920, "height": 1700})
        page.wait_for_timeout(1200)
        texts = texts_of(page)
        if lang == "en":
            shot(page, artifacts, "desk-en")
        # every tab of the detail: the plan, teams, supplies, the record (with the reasons
        # the system wrote: the correlator's, "verified on dispatch") and the sources
        tabs = page.locator(".detail-tab")
        for i in range(tabs.count()):
            tabs.nth(i).click()
            page.wait_for_timeout(700)
            texts += texts_of(page)
            if lang == "en" and tabs.nth(i).inner_text().startswith("Record"):
                shot(page, artifacts, "desk-record-en")
            if tabs.nth(i).inner_text().startswith(("Sources", "警情来源")):
                shot(page, artifacts, f"desk-sources-{lang}")  # with why triage promoted the call
        record = [x for x in texts if "—" in x]  # the record's "who — why" lines
        assert any(("verified on dispatch" if lang == "en" else "派遣即立案") in x for x in record), record
        # why triage made the call an incident (the sources tab), in the page's language
        promoted = (
            "every 110 call opens an incident (to be verified) (rule call_110, v"
            if lang == "en"
            else "110 报警一律立事件（待核实）（规则 call_110，v"
        )
        assert any(x.startswith(promoted) for x in texts), [x for x in texts if "110" in x]
        tabs.nth(0).click()
        for tab in ("teams", "reserve", "charts"):
            page.click(f"#side-tabs label:has(input[value='{tab}'])")
            page.wait_for_timeout(1500)
            texts += texts_of(page)
        # the stats chart's time axis: hour-and-minute ticks across its window
        page.wait_for_selector("#chart-calls .xtick", timeout=20_000)
        ticks = [t.text_content() or "" for t in page.query_selector_all("#chart-calls .xtick")]
        assert len(ticks) >= 3 and all(re.fullmatch(r"\d\d:\d\d", t) for t in ticks), ticks
        if lang == "en":
            shot(page, artifacts, "desk-charts-en")
        page.click("#side-tabs label:has(input[value='detail'])")
        page.set_viewport_size({"width": 1920, "height": 1080})
        found[f"desk {lang}"] = leaks(texts, lang, names)

    # The wall, in each language.
    wall_ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    wall = wall_ctx.new_page()
    login(wall, stack, "commander1", "/wall")
    for lang in ("zh_CN", "en"):
        if lang == "en":
            switch(wall, "en")
            wall.wait_for_selector("text=Incident queue", timeout=15_000)
        wall.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
        wall.wait_for_selector(row, timeout=30_000)
        wall.wait_for_selector('.kpi[data-kpi="p90"]', timeout=30_000)
        wall.wait_for_timeout(1500)
        if lang == "en":
            shot(wall, artifacts, "wall-display-en")
        found[f"wall {lang}"] = leaks(texts_of(wall), lang, names)
    wall_ctx.close()

    # The dispatched team's phone, in each language.
    field_ctx = chromium.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": 32.0433, "longitude": 112.1450},
        permissions=["geolocation"],
    )
    field = field_ctx.new_page()
    login(field, stack, team_id)
    for lang in ("zh_CN", "en"):
        if lang == "en":
            switch(field, "en")
        field.wait_for_selector(".field-page .connection.ok", timeout=30_000)
        field.wait_for_selector(f'#field-order:has-text("{iid}")', timeout=30_000)
        field.wait_for_timeout(1000)
        if lang == "en":
            shot(field, artifacts, "field-page-en")
        found[f"field {lang}"] = leaks(texts_of(field), lang, names)
    field_ctx.close()

    # The incident's after-action report, opened from the desk in each language.
    for lang in ("en", "zh_CN"):
        if lang == "zh_CN":
            switch(page, "zh_CN")
            page.wait_for_selector("text=事件队列", timeout=15_000)
        page.wait_for_selector(f'.detail-head:has-text("{iid}")', timeout=20_000)
        with page.context.expect_page(timeout=30_000) as popup:
            page.click(".report-link.btn-primary")
        report = popup.value
        report.wait_for_selector("section#events", timeout=60_000)
        report.wait_for_timeout(1500)
        if lang == "en":
            report.set_viewport_size({"width": 1280, "height": 1400})
            shot(report, artifacts, "after-action-report-en")
        found[f"report {lang}"] = leaks(texts_of(report), lang, names)
        report.close()

    # No exception for the record's reasons: those the system wrote (the correlator's,
    # dispatch's "verified on dispatch") are codes each screen says in its language.
    (artifacts / "language-leaks.json").write_text(json.dumps(found, ensure_ascii=False, indent=1))
    assert {k: v for k, v in found.items() if v} == {}
    assert desk.errors == [], desk.errors
    assert desk.foreign() == [], desk.foreign()
