"""The alarm inbox panel's parts without a browser: what a row says (in both languages,
no internal codes), who gets its buttons, which rows a scope shows, the link picker's
incidents, the bulk results; the panel is on the desk and not on the wall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dashboard import ids
from dashboard.callbacks.inbox import in_scope, incident_options, refused_text, scope_of, ticked
from dashboard.context import Console
from dashboard.layout.console import console_page
from dashboard.layout.inbox import ago_text, may_act, place_text, row_item
from tests.dashboard.test_console_units import component_ids
from tests.dashboard.who import signed_in
from wuwang.city import load_districts
from wuwang.places import crossing_place
from wuwang.settings import Settings

OPERATOR = signed_in("operator1", "operator", None, "值班员")
COMMANDER = signed_in("commander1", "commander", None, "指挥长")
PLANNER = signed_in("planner1", "planner", None, "演练员")
ADMIN = signed_in("admin", "admin", None, "管理员")
FIELD = signed_in("T-FIRE-01", "field", "T-FIRE-01", "队伍")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def row(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "row_id": "IB-3f2a9c0d8e7b6a51",
        "state": "open",
        "source": "video/CAM-1",
        "category": "loitering",
        "alarm_kind": "video",
        "exercise_id": None,
        "first_seen": (NOW - timedelta(minutes=6)).isoformat(),
        "last_seen": (NOW - timedelta(seconds=5)).isoformat(),
        "count": 50,
        "severity": "low",
        "lat": 32.042,
        "lon": 112.144,
        "grid_cell_id": "r1281c4486",
        "flapping": True,
        "reasons": {
            "inbox": {"code": "triage.video_inbox", "params": {},
                      "zh": "视频 徘徊逗留 告警，进入告警收件箱待研判",
                      "en": "video loitering alert: to the alarm inbox"},
            "flapping": {"code": "triage.flapping", "params": {}, "zh": "频繁告警：15 分 00 秒 内 50 次",
                         "en": "flapping: 50 alarms within 15 min 00 s"},
            "review": None,
        },
    }  # fmt: skip
    base.update(over)
    return base


def texts(node: Any) -> str:
    """All the text a component tree shows (and its titles)."""
    out: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, str):
            out.append(n)
        elif isinstance(n, (list, tuple)):
            for c in n:
                walk(c)
        elif hasattr(n, "children"):
            title = getattr(n, "title", None)
            if isinstance(title, str):
                out.append(title)
            for prop in ("children", "options"):
                walk(getattr(n, prop, None))
        elif isinstance(n, dict) and "label" in n:
            out.append(str(n["label"]))

    walk(node)
    return " ".join(out)


def test_a_row_says_what_where_how_often_and_why_in_words() -> None:
    zh = texts(row_item("zh_CN", OPERATOR, row(), NOW, ZONE))
    shown = ("徘徊逗留", "交叉口附近", "×50", "频繁", "视频 · CAM-1", "首次", "6 分钟前", "刚刚", "低")
    for part in shown:
        assert part in zh, (part, zh)
    assert "进入告警收件箱待研判" in zh and "频繁告警" in zh  # the reason, and the badge's
    assert "升级为事件" in zh and "关联到事件" in zh and "排除" in zh
    assert "32.0420" not in zh  # inside the city: the crossing, not the coordinates
    en = texts(row_item("en", OPERATOR, row(), NOW, ZONE))
    for part in (
        "loitering",
        "near the crossing of",
        "×50",
        "flapping",
        "video · CAM-1",
        "6 min ago",
        "just now",
    ):
        assert part in en, (part, en)
    assert "Promote to incident" in en and "Dismiss" in en
    # no internal codes: no rule id, no "triage.", no "inbox." key left untranslated
    for text in (zh, en):
        assert "triage." not in text and "inbox." not in text and "video_inbox" not in text
    assert "loitering" not in zh
    assert "r1281c4486" not in zh and "r1281c4486" not in en  # a grid cell's id is a code


def test_the_place_is_the_nearest_crossing_never_the_cells_id() -> None:
    here = place_text("zh_CN", row())
    # in the incident titles' words: the district and its nearest crossing, no coordinates
    assert here == crossing_place(32.042, 112.144, load_districts()), here
    assert here.startswith("樊城区") and here.endswith("交叉口附近") and "32.04" not in here
    assert place_text("zh_CN", row(grid_cell_id=None)) == here
    en = place_text("en", row())
    assert en.startswith("near the crossing of ") and en.endswith(", 樊城区"), en  # names stay names
    # only a point outside the city gives its coordinates
    assert place_text("zh_CN", row(lat=40.0, lon=116.4)) == "40.0000, 116.4000"
    assert place_text("en", row(lat=None, lon=None)) == "in a grid cell (no coordinates)"
    assert place_text("en", row(grid_cell_id=None, lat=None, lon=None)) == "no position"
    assert ago_text("zh_CN", NOW - timedelta(hours=2, minutes=5), NOW) == "2 小时 5 分钟前"


def test_buttons_only_for_who_may_act() -> None:
    live, drill = row(), row(exercise_id="EX-1")
    assert may_act(OPERATOR, live) and may_act(COMMANDER, live) and may_act(ADMIN, drill)
    assert may_act(PLANNER, drill) and not may_act(PLANNER, live)
    assert not may_act(FIELD, live) and not may_act(FIELD, drill)
    assert "升级为事件" not in texts(row_item("zh_CN", PLANNER, live, NOW, ZONE))
    ident = [i for i in component_ids(row_item("zh_CN", PLANNER, drill, NOW, ZONE)) if isinstance(i, dict)]
    assert {i["type"] for i in ident} == {ids.INBOX_CHECK, ids.INBOX_ACT}


def test_the_scope_follows_exercise_mode() -> None:
    one = {"mode": "one", "id": "EX-1"}
    assert scope_of(OPERATOR, one) == ("live", None)  # an operator: live only, whatever the browser says
    assert scope_of(PLANNER, {"mode": "all", "id": None}) == ("all", None)
    assert scope_of(PLANNER, one) == ("one", "EX-1") and scope_of(ADMIN, one) == ("one", "EX-1")
    assert scope_of(ADMIN, {"mode": "live"}) == ("live", None)
    assert scope_of(PLANNER, {"mode": "one", "id": "bad id!"}) == ("all", None)
    live, drill, other = row(), row(exercise_id="EX-1"), row(exercise_id="EX-2")
    assert [in_scope(r, "live", None) for r in (live, drill, other)] == [True, False, False]
    assert [in_scope(r, "all", None) for r in (live, drill, other)] == [False, True, True]
    assert [in_scope(r, "one", "EX-1") for r in (live, drill, other)] == [False, True, False]


def test_the_link_picker_lists_open_incidents_of_the_rows_scope() -> None:
    incidents = [
        {"id": "INC-1", "title": "人民路火灾", "level": 3, "state": "dispatched", "is_open": True},
        {"id": "INC-2", "title": "演练", "level": 2, "state": "new", "is_open": True, "exercise_id": "EX-1"},
        {"id": "INC-3", "title": "已结案", "level": 4, "state": "closed", "is_open": False},
    ]
    live = incident_options("zh_CN", incidents, None)
    assert [o["value"] for o in live] == ["INC-1"] and "III · 人民路火灾 · 已派遣" in live[0]["label"]
    assert [o["value"] for o in incident_options("en", incidents, "EX-1")] == ["INC-2"]


def test_ticked_rows_and_refusals() -> None:
    assert ticked([["IB-3f2a9c0d8e7b6a51"], [], ["IB-0000000000000001", "junk"]]) == [
        "IB-3f2a9c0d8e7b6a51",
        "IB-0000000000000001",
    ]
    said = refused_text("zh_CN", [{"ok": True}, {"ok": False, "refused": "it is dismissed already"}])
    assert said == "1 条未处理：it is dismissed already"
    assert refused_text("en", [{"ok": True}]) is None


def test_the_panel_is_on_the_desk_above_the_queue_and_not_on_the_wall() -> None:
    console = Console.create(Settings(demo_mode=True, dashboard_streets_file=None))
    desk = component_ids(console_page(console, "zh_CN", OPERATOR, wall=False))
    wall = component_ids(console_page(console, "zh_CN", COMMANDER, wall=True))
    assert ids.INBOX_PANEL in desk and desk.index(ids.INBOX_PANEL) < desk.index(ids.QUEUE)
    assert ids.INBOX_PANEL not in wall and ids.QUEUE in wall


def _triggered(*pairs: tuple[str, Any]) -> Any:
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    return context_value.set(AttributeDict(triggered_inputs=[{"prop_id": p, "value": v} for p, v in pairs]))


def test_a_click_in_the_same_batch_as_a_redraw_is_found_whichever_comes_first() -> None:
    """The inbox buttons' zeros (a redraw) and the operator's click can arrive together;
    the click counts wherever it is in the batch."""
    from dash._callback_context import context_value

    from dashboard.callbacks.common import clicked

    dismiss = '{"action":"dismiss","row":"r.1","type":"inbox-act"}.n_clicks'
    promote = '{"action":"promote","row":"r.2","type":"inbox-act"}.n_clicks'
    token = _triggered((promote, 0), (dismiss, 1))
    try:
        assert clicked() == {"action": "dismiss", "row": "r.1", "type": "inbox-act"}
    finally:
        context_value.reset(token)
    token = _triggered((promote, 0), (dismiss, None))
    try:
        assert clicked() is None  # a redraw alone is no click
    finally:
        context_value.reset(token)
    token = _triggered(("inbox-cancel.n_clicks", 2))
    try:
        assert clicked() == "inbox-cancel"
    finally:
        context_value.reset(token)


def test_an_unchanged_inbox_list_has_the_same_digest_and_a_change_another() -> None:
    from dashboard.callbacks.inbox import rows_digest

    rows = [{"row_id": "a", "count": 3}, {"row_id": "b", "count": 1}]
    same = [{"count": 3, "row_id": "a"}, {"row_id": "b", "count": 1}]
    assert rows_digest("zh_CN", "open", rows) == rows_digest("zh_CN", "open", same)
    assert rows_digest("zh_CN", "open", rows) != rows_digest(
        "zh_CN", "open", [*rows[:1], {"row_id": "b", "count": 2}]
    )
    assert rows_digest("zh_CN", "open", rows) != rows_digest("en", "open", rows)
    assert rows_digest("zh_CN", "open", rows) != rows_digest("zh_CN", "expired", rows)
