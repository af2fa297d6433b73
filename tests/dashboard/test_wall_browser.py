"""The wall display, readable from across the room (Chromium through Playwright against a
whole stack, like test_console_browser.py).

At 1920×1080, 3840×2160 and a 3×3 video wall (5760×3240) every visible text node is
measured from the browser's computed styles — nothing is taken from the code's
constants: its font size must be at least 1/60 of the viewport's height (KPI figures
1/15), and its colour must meet WCAG AA (4.5:1) against the background behind it (the
ancestors' background colours blended down to the first opaque one). The queue pages
itself so that every open incident is seen within a cycle, the level I/II incidents
pinned on every page; the unit board lists every team grouped by status, an overdue
one marked.

Screenshots: wall-display.png (1080p), wall-display-4k.png, wall-display-videowall.png.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from testkit.stack import Stack
from tests.dashboard.test_console_browser import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

VIEWPORTS = [
    (1920, 1080, "wall-display"),
    (3840, 2160, "wall-display-4k"),
    (5760, 3240, "wall-display-videowall"),  # a 3×3 wall of 1080p panels
]
MIN_TEXT = 1 / 60  # of the viewport's height
MIN_KPI = 1 / 15
AA = 4.5

#: Every visible text node: its font size, its colour and the background behind it,
#: from computed styles. Hidden, zero-size, off-screen and aria-hidden text is skipped;
#: map canvas text is not text nodes (out of scope).
MEASURE = """
() => {
  const vw = window.innerWidth, vh = window.innerHeight;
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {  // top (with alpha) over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const lin = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const ratio = (a, b) => {
    const x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];  // the canvas, when nothing is opaque
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const opacity = (el) => {
    let o = 1;
    for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
    return o;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const text = node.textContent.trim();
    if (!text) continue;
    const el = node.parentElement;
    if (!el || el.closest('[aria-hidden="true"], script, style, noscript, title')) continue;
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    if (r.right <= 0 || r.bottom <= 0 || r.left >= vw || r.top >= vh) continue;
    const cs = getComputedStyle(el);
    const fg = parse(cs.color);
    fg[3] *= opacity(el);
    const bg = background(el);
    const cls = typeof el.className === "string" ? el.className.trim() : "";
    const where = el.id ? "#" + el.id : cls ? "." + cls.split(/\\s+/).join(".") : el.tagName;
    out.push({ text: text.slice(0, 40), where: where, size: parseFloat(cs.fontSize),
               ratio: Math.round(ratio(over(fg, bg), bg) * 100) / 100,
               kpi: !!el.closest(".kpi-value") });
  }
  return { vw: vw, vh: vh, texts: out };
}
"""


#: Rows shown but cut off at the bottom of their panel (the pages must fit).
CLIPPED = """() => {
  const out = [];
  for (const box of ["#queue", "#unit-board"]) {
    const b = document.querySelector(box).getBoundingClientRect();
    [...document.querySelector(box).children].forEach(r => {
      if (r.hidden) return;
      const x = r.getBoundingClientRect();
      if (x.bottom > b.bottom + 1) out.push(box + " " + r.textContent.slice(0, 30));
    });
  }
  return out;
}"""


#: Incidents spread over the city (襄阳市), titles as a dispatcher writes them.
PLACES = [
    ("樊城区", 32.046, 112.138),
    ("襄城区", 32.010, 112.153),
    ("襄州区", 32.087, 112.201),
    ("高新区", 32.080, 112.090),
    ("东津新区", 32.000, 112.260),
    ("鱼梁洲", 32.040, 112.190),
]
KINDS = [
    ("fire", "商铺起火"),
    ("traffic_accident", "两车相撞"),
    ("medical", "老人晕倒"),
    ("public_order", "聚集纠纷"),
]


def open_incidents(stack: Stack, token: str, n: int) -> list[dict[str, Any]]:
    made = []
    for i in range(n):
        district, lat, lon = PLACES[i % len(PLACES)]
        kind, what = KINDS[i % len(KINDS)]
        level = 1 if i == 0 else 2 if i in (1, 2) else 3 if i % 3 == 0 else 4
        made.append(
            stack.api(
                "POST",
                "/incidents",
                token,
                {
                    "type": kind,
                    "level": level,
                    "title": f"{district}{what}（{i + 1} 号）",
                    "lat": lat + (i % 7) * 0.004,
                    "lon": lon + (i % 5) * 0.004,
                    "reason": "大屏测试",
                },
            )
        )
    return made


@pytest.mark.usefixtures("clean_desk")
def test_wall_is_readable_from_across_the_room(console_stack: Stack, chromium: Any, artifacts: Path) -> None:
    stack = console_stack
    commander = stack.login("commander1")
    made = open_incidents(stack, commander, 40)
    teams = stack.team_ids
    # Teams in every status: one en route for an hour and one dispatched five minutes ago
    # without acknowledging (both overdue on the board).
    statuses = ["en_route", "en_route", "on_scene", "on_scene", "returning", "off_duty", "dispatched"]
    for team_id, status in zip(teams, statuses, strict=False):
        stack.api("POST", f"/teams/{team_id}/status", commander, {"status": status})
    # (the wall reads the roster from its /ws snapshot, so the stored time is what it sees)
    with psycopg.connect(stack.database_url) as conn:
        now = datetime.now(UTC)
        conn.execute("UPDATE team SET status_at = %s WHERE id = %s", (now - timedelta(hours=1), teams[0]))
        conn.execute("UPDATE team SET status_at = %s WHERE id = %s", (now - timedelta(minutes=5), teams[6]))

    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, stack, "commander1", "/wall")
    page.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
    page.wait_for_selector(".legend-row", timeout=30_000)
    page.wait_for_selector('.kpi[data-kpi="p90"]', timeout=30_000)
    page.wait_for_selector(".unit-row", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.qrow').length >= 40", timeout=30_000)

    failures: list[str] = []
    for width, height, name in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(1200)  # the resize re-pages the lists
        page.evaluate("() => window.wuwang.wall.redraw()")
        page.wait_for_timeout(300)
        found = page.evaluate(MEASURE)
        assert found["vh"] == height
        texts = found["texts"]
        assert len(texts) > 40, texts
        smallest = min(texts, key=lambda x: x["size"])
        lowest = min(texts, key=lambda x: x["ratio"])
        kpis = [x for x in texts if x["kpi"]]
        assert len(kpis) >= 5
        print(
            f"{width}×{height}: {len(texts)} texts, smallest {smallest['size']:.1f}px ({smallest['where']}"
            f" {smallest['text']!r}; bound {height * MIN_TEXT:.1f}), KPI figures ≥"
            f" {min(x['size'] for x in kpis):.1f}px (bound {height * MIN_KPI:.1f}), lowest contrast"
            f" {lowest['ratio']}:1 ({lowest['where']} {lowest['text']!r})"
        )
        failures += [
            f"{width}×{height} {x['where']} {x['text']!r}: {x['size']}px < {height * MIN_TEXT:.1f}"
            for x in texts
            if x["size"] < height * MIN_TEXT - 0.01
        ]
        failures += [
            f"{width}×{height} KPI {x['text']!r}: {x['size']}px < {height * MIN_KPI:.1f}"
            for x in kpis
            if x["size"] < height * MIN_KPI - 0.01
        ]
        failures += [
            f"{width}×{height} {x['where']} {x['text']!r}: contrast {x['ratio']}:1"
            for x in texts
            if x["ratio"] < AA
        ]
        # Nothing shown is cut off: the rows on a page fit their panel.
        clipped = page.evaluate(CLIPPED)
        failures += [f"{width}×{height} cut off: {c}" for c in clipped]
        shot(page, artifacts, name)
    assert failures == [], "\n".join(failures[:40])

    # The queue pages: every open incident seen within a cycle, levels I/II on every page.
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(1200)
    page.evaluate("() => window.wuwang.wall.redraw()")
    pages = int(page.get_attribute("#queue-pager", "data-pages") or "0")
    assert pages >= 2, "40 incidents fit no 1080p page"
    urgent = {inc["id"] for inc in made if inc["level"] <= 2}
    seen: set[str] = set()
    # The pager also turns by itself: each page is read in one go (rows, indicator and
    # page number together), and a page it turned past on its own is met again on the
    # next round — two rounds at most.
    for k in range(2 * pages):
        now = page.evaluate(
            "() => ({shown: [...document.querySelectorAll('#queue > .qrow')].filter(r => !r.hidden)"
            ".map(r => r.dataset.incident), text: document.querySelector('#queue-pager').innerText,"
            " page: document.querySelector('#queue-pager').dataset.page})"
        )
        assert urgent <= set(now["shown"]), f"read {k + 1}: the urgent rows are pinned"
        assert now["text"] == f"第 {int(now['page'] or 0)}/{pages} 页"
        seen |= set(now["shown"])
        if {inc["id"] for inc in made} <= seen:
            break
        page.evaluate("() => window.wuwang.wall.queue.next()")
    assert {inc["id"] for inc in made} <= seen
    # … and turns the pages by itself (every DASHBOARD_WALL_PAGE_S, 10 s).
    before = page.get_attribute("#queue-pager", "data-page")
    page.wait_for_function(
        "p => document.querySelector('#queue-pager').dataset.page !== p", arg=before, timeout=15_000
    )

    # The unit board: every team, grouped by status; the long-en-route team overdue.
    board = page.evaluate(
        "() => [...document.querySelectorAll('#unit-board .unit-row')].map(r => "
        "({team: r.dataset.team, status: r.dataset.status, overdue: r.classList.contains('overdue'),"
        " text: r.innerText}))"
    )
    assert {b["team"] for b in board} == set(teams)
    first = next(b for b in board if b["team"] == teams[0])
    assert first["status"] == "en_route" and first["overdue"] and "在途超时" in first["text"], first
    assert all(b["team"] in b["text"] for b in board), board  # by name with the id
    unacked = next(b for b in board if b["team"] == teams[6])
    assert unacked["status"] == "dispatched" and unacked["overdue"], unacked
    assert "超时未接令" in unacked["text"], unacked
    assert not next(b for b in board if b["team"] == teams[1])["overdue"]
    assert [b["status"] for b in board] == sorted(
        (b["status"] for b in board),
        key=["dispatched", "en_route", "on_scene", "returning", "available", "off_duty"].index,
    )
    # In English too: the words change, the bounds hold.
    page.click("text=English")
    page.wait_for_selector("#queue-pager:has-text('Page')", timeout=15_000)
    page.wait_for_selector(".unit-row", timeout=15_000)
    page.wait_for_timeout(800)
    english = page.evaluate(MEASURE)["texts"]
    assert min(x["size"] for x in english) >= 1080 * MIN_TEXT - 0.01, min(english, key=lambda x: x["size"])
    assert min(x["ratio"] for x in english) >= AA, min(english, key=lambda x: x["ratio"])
    assert page.evaluate(CLIPPED) == []
    shot(page, artifacts, "wall-display-en")
    page.click("text=中文")
    page.wait_for_selector("#queue-pager:has-text('页')", timeout=15_000)
    assert errors == [], errors
    ctx.close()
