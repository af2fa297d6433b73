"""The queue's ranking and what it announces (assets/15-wuwang-queue.js): pure functions of
plain incidents and a given `now`, run in Chromium with no page around them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from command.domain.correlation import title_for
from command.domain.vocabulary import IncidentType
from dashboard.context import type_names_zh
from wuwang.contract import Alarm

pytestmark = pytest.mark.browser

QUEUE_JS = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "15-wuwang-queue.js"
NOW = datetime(2026, 7, 12, 14, 0, tzinfo=UTC)
TARGETS = {"call_target_s": 60, "arrival_target_s": 600}


def incident(
    iid: str,
    state: str,
    level: int,
    alarm_s_ago: float,
    *,
    on_scene: bool = False,
) -> dict[str, Any]:
    first = NOW - timedelta(seconds=alarm_s_ago)
    return {
        "id": iid,
        "state": state,
        "level": level,
        "is_open": True,
        "first_alarm_at": first.isoformat(),
        "opened_at": first.isoformat(),
        "first_on_scene_at": (first + timedelta(seconds=30)).isoformat() if on_scene else None,
    }


def held(inc: dict[str, Any], s_ago: float) -> dict[str, Any]:
    """The incident, held (挂起) since ``s_ago`` seconds before NOW."""
    since = (NOW - timedelta(seconds=s_ago)).isoformat()
    return {**inc, "held": {"reason": "等待增援", "by": "operator1", "at": since}}


@pytest.fixture(scope="module")
def queue(chromium: Any) -> Iterator[Any]:
    page = chromium.new_page()
    page.add_script_tag(content=QUEUE_JS.read_text(encoding="utf-8"))
    yield page
    page.close()


def rank(page: Any, incidents: list[dict[str, Any]], now: datetime = NOW) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([incs, now, targets]) => window.wuwang.queueRank.rank(incs, now, targets)",
        [incidents, now.timestamp() * 1000, TARGETS],
    )
    return result


def ids_by_section(result: dict[str, Any]) -> dict[str, list[str]]:
    return {s["id"]: [r["id"] for r in s["rows"]] for s in result["sections"]}


def test_sections_with_counts_in_the_dispatchers_order(queue: Any) -> None:
    result = rank(
        queue,
        [
            incident("A", "new", 4, 10),
            incident("B", "verified", 4, 100),
            incident("C", "dispatched", 3, 200),
            incident("D", "on_scene", 4, 300, on_scene=True),
            incident("E", "resolved", 2, 400),
            {**incident("F", "closed", 1, 500), "is_open": False},
            held(incident("G", "verified", 4, 50), 20),
        ],
    )
    assert [(s["id"], s["count"]) for s in result["sections"]] == [
        ("awaiting", 1),
        ("active", 4),
        ("held", 1),
    ]
    assert result["total"] == 6  # the closed one is in no section


def test_level_first_then_time_against_the_target_not_age(queue: Any) -> None:
    # awaiting verification: the 60 s call-processing target (NFPA 1225)
    result = rank(
        queue,
        [
            incident("IV-old", "new", 4, 600),  # oldest, but level IV
            incident("II-fresh", "new", 2, 5),
            incident("II-late", "new", 2, 90),  # 30 s past the target
            incident("I", "new", 1, 1),
        ],
    )
    rows = result["sections"][0]["rows"]
    assert [r["id"] for r in rows] == ["I", "II-late", "II-fresh", "IV-old"]
    left = {r["id"]: r["left_s"] for r in rows}
    assert left["II-late"] == pytest.approx(-30) and left["II-fresh"] == pytest.approx(55)


def test_active_incidents_run_against_the_arrival_target_until_a_team_is_there(queue: Any) -> None:
    result = rank(
        queue,
        [
            incident("arrived", "on_scene", 3, 900, on_scene=True),  # no clock any more
            incident("waiting", "dispatched", 3, 300),  # 300 s left
            incident("late", "verified", 3, 700),  # 100 s past the arrival target
        ],
    )
    rows = result["sections"][1]["rows"]
    assert [r["id"] for r in rows] == ["late", "waiting", "arrived"]
    assert rows[0]["left_s"] == pytest.approx(-100) and rows[2]["left_s"] is None


def test_the_active_plans_arrival_target_counts(queue: Any) -> None:
    # the same age: the flood plan gives 20 min, the fire plan 7; without a plan, the default 10
    flood = {
        **incident("flood", "dispatched", 3, 400),
        "active_plan": {"plan_id": "flood", "arrival_target_s": 1200},
    }
    fire = {
        **incident("fire", "dispatched", 3, 400),
        "active_plan": {"plan_id": "fire", "arrival_target_s": 420},
    }
    bare = incident("bare", "dispatched", 3, 400)
    rows = rank(queue, [flood, bare, fire])["sections"][1]["rows"]
    assert [r["id"] for r in rows] == ["fire", "bare", "flood"]
    assert [r["left_s"] for r in rows] == [pytest.approx(20), pytest.approx(200), pytest.approx(800)]


def test_the_order_does_not_change_with_the_clock(queue: Any) -> None:
    incs = [incident(f"X{i}", "new", 1 + i % 4, 7 * i) for i in range(12)]
    early = ids_by_section(rank(queue, incs))
    late = ids_by_section(rank(queue, incs, NOW + timedelta(hours=1)))
    assert early == late
    assert early["awaiting"][0] == "X8"  # level I, the longest waiting of its level


def test_the_wall_gets_one_list_gravest_first(queue: Any) -> None:
    incs = [
        incident("new-IV", "new", 4, 10),
        incident("active-I", "dispatched", 1, 100),
        incident("new-I", "new", 1, 5),
        held(incident("held-II", "verified", 2, 900), 60),
        incident("resolved-II", "resolved", 2, 900),
    ]
    flat = queue.evaluate(
        "([incs, now, t]) => { const q = window.wuwang.queueRank;"
        " return q.flat(q.rank(incs, now, t)).map(r => r.id); }",
        [incs, NOW.timestamp() * 1000, TARGETS],
    )
    assert flat == ["new-I", "active-I", "resolved-II", "held-II", "new-IV"]


def test_the_command_services_type_names_are_the_catalogues() -> None:
    # titles start with the command service's zh name of the type; the console finds it
    # by the zh catalogue's (dashboard/context.py): both are the one shared catalogue
    call = Alarm(
        alarm_id="police/sys110#1", kind="call", source="police/sys110", msg_id="1", network=None,
        ts=NOW, lat=None, lon=None, grid_cell_id=None, category="fire", summary="",
        details={"address": "幸福路12号"},
    )  # fmt: skip
    assert set(type_names_zh()) == {str(t) for t in IncidentType}
    for code, name in type_names_zh().items():
        assert title_for(call, IncidentType(code)) == f"{name} · 幸福路12号", code


@pytest.mark.parametrize(
    ("title", "itype", "expected"),
    [
        ("火灾 · 樊城区人民路12号", "fire", {"type": "fire", "where": "樊城区人民路12号"}),
        # made before a reclassification: the current type is said
        (
            "火灾 · 樊城区人民路12号",
            "high_rise_fire",
            {"type": "high_rise_fire", "where": "樊城区人民路12号"},
        ),
        ("医疗急救", "medical", {"type": "medical", "where": ""}),
        # an operator's own title is shown as written
        ("人民路口 · 两车相撞", "traffic_accident", {"type": None, "where": "人民路口 · 两车相撞"}),
        ("火灾 · ", "fire", {"type": None, "where": "火灾 · "}),
    ],
)
def test_title_parts(queue: Any, title: str, itype: str, expected: dict[str, Any]) -> None:
    parts = queue.evaluate(
        "([t, ty, zh]) => window.wuwang.queueRank.titleParts(t, ty, zh)", [title, itype, type_names_zh()]
    )
    assert parts == expected


@pytest.mark.parametrize(
    ("prev", "nxt", "known", "expected"),
    [
        (None, {"level": 4}, True, "new"),
        (None, {"level": 4}, False, None),  # the first snapshot is the picture, not news
        ({"level": 4}, {"level": 2}, True, "raised"),
        ({"level": 2}, {"level": 3}, True, None),  # lowered: not announced
        ({"level": 3}, {"level": 3}, True, None),
        (None, {"level": 1, "is_open": False}, True, None),
    ],
)
def test_what_is_announced(queue: Any, prev: Any, nxt: Any, known: bool, expected: str | None) -> None:
    assert queue.evaluate(
        "([p, n, k]) => window.wuwang.queueRank.news(p || undefined, n, k)", [prev, nxt, known]
    ) == (expected)


def test_held_incidents_are_in_held_whatever_their_state_and_run_no_clock(queue: Any) -> None:
    result = rank(
        queue,
        [
            held(incident("new-held", "new", 3, 300), 100),
            held(incident("scene-held", "on_scene", 3, 900, on_scene=True), 400),
            held(incident("grave-held", "dispatched", 1, 50), 10),
            incident("new", "new", 3, 300),
            {**held(incident("ended", "cancelled", 1, 50), 10), "is_open": False},
        ],
    )
    by = ids_by_section(result)
    assert by["awaiting"] == ["new"]  # the same call, not held, keeps its clock
    # gravest level first, then the oldest hold
    assert by["held"] == ["grave-held", "scene-held", "new-held"]
    assert all(r["due"] is None and r["left_s"] is None for r in result["sections"][2]["rows"])
    for state, expected in (("new", "held"), ("verified", "held"), ("resolved", "held"), ("closed", None)):
        got = queue.evaluate(
            "inc => window.wuwang.queueRank.sectionOf(inc)",
            {"state": state, "held": {"reason": "x", "by": "a", "at": NOW.isoformat()}},
        )
        assert got == expected, state
    assert queue.evaluate("() => window.wuwang.queueRank.sectionOf('verified')") == "active"
    assert (
        queue.evaluate("() => window.wuwang.queueRank.sectionOf({state: 'on_scene', held: null})") == "active"
    )


def test_resolved_incidents_wait_at_the_bottom_of_active_whatever_their_level(queue: Any) -> None:
    result = rank(
        queue,
        [
            incident("resolved-I", "resolved", 1, 900, on_scene=True),
            incident("scene-IV", "on_scene", 4, 900, on_scene=True),
            incident("dispatched-III", "dispatched", 3, 100),
            incident("resolved-III", "resolved", 3, 1200, on_scene=True),
        ],
    )
    assert ids_by_section(result)["active"] == ["dispatched-III", "scene-IV", "resolved-I", "resolved-III"]
    assert ids_by_section(result)["held"] == []
