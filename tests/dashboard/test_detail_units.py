"""The incident detail drawn from plain inputs (dashboard/layout/detail.py and
layout/close_guard.py): one screen with tabs, teams by name with their id, no default
plan for a type no plan covers, whole-text checklist targets that keep their columns
when closed, and the close guard's explanation and override."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html
from dash.development.base_component import Component

from dashboard import ids
from dashboard.api import ApiError, Me
from dashboard.context import Console
from dashboard.layout import close_guard
from dashboard.layout.detail import DetailData, event_reason, incident_detail
from dashboard.layout.field import field_page
from tests.dashboard.test_console_units import COMMANDER, FIELD, OPERATOR, sample, texts_of
from wuwang.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")


def find(tree: Any, keep: Callable[[Any], bool]) -> list[Any]:
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, Component):
            if keep(node):
                found.append(node)
            walk(getattr(node, "children", None))
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    walk(tree)
    return found


def with_plan(data: DetailData) -> DetailData:
    """The sample with its plan active: one item done, one open, one that no longer applies."""
    data.plan = {
        "active": True,
        "covering_plans": ["high_rise_fire"],
        "activation": {
            "plan_id": "high_rise_fire",
            "title_zh": "高层建筑火灾应急预案",
            "level": 4,
            "pending": 1,
            "checklist": [
                {
                    "id": "c1",
                    "text_zh": "疏散着火楼层及上下两层人员",
                    "text_en": "Evacuate",
                    "done": True,
                    "done_by": "operator1",
                    "done_at": "2025-01-01T00:02:00+00:00",
                },
                {"id": "c2", "text_zh": "设置警戒区，禁止无关人员进入", "text_en": "Cordon", "done": False},
                {
                    "id": "c3",
                    "text_zh": "已不适用的一项",
                    "text_en": "Stale",
                    "done": False,
                    "applies": False,
                },
            ],
        },
    }
    return data


def dispatched(data: DetailData) -> DetailData:
    """The sample with T-1 (消防一站) dispatched and its order sent."""
    data.incident.update(
        state="dispatched",
        teams=[{"team_id": "T-1", "dispatched_at": "2025-01-01T00:03:00+00:00"}],
    )
    data.orders = [{"team_id": "T-1", "team_name": "消防一站", "status": "sent"}]
    data.timeline.append(
        {
            "seq": 2,
            "kind": "team_dispatched",
            "at": "2025-01-01T00:03:00+00:00",
            "actor": "operator1",
            "data": {"team_id": "T-1"},
        }
    )
    return data


def test_the_detail_is_a_summary_with_actions_over_six_tabs() -> None:
    tree = html.Div(incident_detail("zh_CN", OPERATOR, sample(), TZ))
    tabs = find(tree, lambda c: getattr(c, "id", None) == ids.DETAIL_TABS)
    assert len(tabs) == 1
    assert tabs[0].persistence  # the chosen tab survives the detail being drawn again
    values = [tab.value for tab in find(tabs[0], lambda c: isinstance(c, dcc.Tab))]
    assert values == ["plan", "teams", "supplies", "reports", "timeline", "sources"]
    top = find(tree, lambda c: getattr(c, "className", None) == "detail-top")[0]
    assert find(top, lambda c: getattr(c, "id", None) == {"type": ids.DETAIL_CLOSE, "panel": "detail"})
    assert find(top, lambda c: getattr(c, "id", None) == {"type": ids.ACT, "action": "verify"})
    assert not find(top, lambda c: getattr(c, "id", None) == ids.DETAIL_TABS)


def plan_dropdown(data: DetailData) -> Any:
    tree = html.Div(incident_detail("zh_CN", OPERATOR, data, TZ))
    return find(tree, lambda c: getattr(c, "id", None) == ids.detail_input("plan"))[0]


def test_a_covering_plan_is_preselected_and_nothing_when_no_plan_covers_the_type() -> None:
    data = sample()
    data.plans = [
        {"id": "crowd_crush", "title_zh": "大型活动踩踏应急预案"},
        {"id": "high_rise_fire", "title_zh": "高层建筑火灾应急预案"},
    ]
    assert plan_dropdown(data).value == "high_rise_fire"
    data.incident["type"] = "dispute"
    data.plan = {"active": False, "covering_plans": []}
    dropdown = plan_dropdown(data)
    assert dropdown.value is None  # never the crowd-crush plan by default
    assert dropdown.placeholder == "选择预案…"
    assert {o["value"] for o in dropdown.options} == {"crowd_crush", "high_rise_fire"}  # still choosable


def test_a_checklist_item_is_one_button_with_its_whole_text() -> None:
    tree = html.Div(incident_detail("zh_CN", OPERATOR, with_plan(sample()), TZ))
    buttons = find(tree, lambda c: isinstance(getattr(c, "id", None), dict) and c.id.get("type") == ids.TICK)
    assert [b.id for b in buttons] == [
        {"type": ids.TICK, "item": "c1", "done": False},  # ticked: the click unticks
        {"type": ids.TICK, "item": "c2", "done": True},
    ]
    assert "设置警戒区，禁止无关人员进入" in texts_of(buttons[1])
    assert "☐" in texts_of(buttons[1]) and "☑" in texts_of(buttons[0])


def test_a_closed_incidents_checklist_keeps_the_open_ones_columns() -> None:
    data = with_plan(sample())
    data.incident.update(state="closed", is_open=False)
    tree = html.Div(incident_detail("zh_CN", COMMANDER, data, TZ))
    items = find(
        tree,
        lambda c: getattr(c, "className", "").startswith("check ") or getattr(c, "className", "") == "check",
    )
    assert len(items) == 3
    for item in items:
        body: Any = item.children
        assert (
            isinstance(body, html.Div) and getattr(body, "className", "") == "check-body"
        )  # nothing to click
        mark, text, _who = body.children
        assert mark.className.startswith("tick") and text.className == "check-text"
    assert items[0].children.children[1].children == "疏散着火楼层及上下两层人员"


def test_teams_are_shown_by_name_with_their_id() -> None:
    tree = html.Div(incident_detail("zh_CN", OPERATOR, dispatched(sample()), TZ))
    cells = find(tree, lambda c: getattr(c, "className", None) == "team-cell")
    assert len(cells) == 1 and texts_of(cells[0]) == ["消防一站", "T-1"]
    events = find(tree, lambda c: getattr(c, "className", None) == "event event-team_dispatched")
    assert "消防一站 · T-1" in texts_of(events[0])


def test_the_record_names_plans_and_checklist_items_in_the_operators_words() -> None:
    data = with_plan(sample())
    at = "2025-01-01T00:02:00+00:00"
    data.timeline += [
        {
            "seq": 2,
            "kind": "plan_activated",
            "at": at,
            "actor": "operator1",
            "data": {"plan_id": "high_rise_fire", "plan_version": 2},
        },
        {
            "seq": 3,
            "kind": "checklist_item_ticked",
            "at": at,
            "actor": "operator1",
            "data": {"item_id": "c1", "done": True},
        },
    ]
    tree = html.Div(incident_detail("zh_CN", OPERATOR, data, TZ))
    text = texts_of(find(tree, lambda c: getattr(c, "className", None) == "timeline")[0])
    assert "高层建筑火灾应急预案（第 2 版）" in text
    assert "疏散着火楼层及上下两层人员 ✓" in text
    assert not [x for x in text if "high_rise_fire" in x or x.startswith("c1")]  # no ids on screen


def test_the_field_pages_header_names_the_team() -> None:
    console = Console.create(Settings(demo_mode=True, dashboard_streets_file=None))
    page = field_page(console, "zh_CN", FIELD, team_name="樊城区消防救援站")
    header = find(page, lambda c: getattr(c, "className", None) == "field-team")[0]
    assert texts_of(header) == ["樊城区消防救援站", "T-FIRE-01"]


# --- the close guard ---------------------------------------------------------------------


def test_a_409_on_resolve_or_close_is_a_refusal_kept_with_its_version() -> None:
    meta = {"id": "INC-1", "version": 7}
    refused = close_guard.refusal("close", ApiError(409, "仍有未完成事项"), meta)
    assert refused == {"incident_id": "INC-1", "version": 7, "action": "close", "detail": "仍有未完成事项"}
    assert close_guard.refusal("close", ApiError(422, "x"), meta) is None
    assert close_guard.refusal("verify", ApiError(409, "x"), meta) is None
    assert close_guard.applies(refused, {"id": "INC-1", "version": 7}) == refused
    assert close_guard.applies(refused, {"id": "INC-1", "version": 8}) is None  # it moved on
    assert close_guard.applies(refused, {"id": "INC-2", "version": 7}) is None


def test_what_is_open_checklist_teams_still_out_and_supplies_still_held() -> None:
    data = dispatched(with_plan(sample()))
    data.incident["teams"].append({"team_id": "T-9", "released_at": "2025-01-01T01:00:00+00:00"})
    reserve = {
        "allocations": [
            {
                "item_code": "sandbag",
                "name_zh": "沙袋",
                "unit": "袋",
                "warehouse_name": "一号库",
                "reserved": 40,
                "outstanding": 60,
            },
            {
                "item_code": "pump",
                "name_zh": "水泵",
                "unit": "台",
                "warehouse_name": "二号库",
                "reserved": 0,
                "outstanding": 0,
            },
        ]
    }
    work = close_guard.open_work("zh_CN", data.incident, data.plan, reserve, {"T-1": "消防一站"})
    assert work.checklist == ("设置警戒区，禁止无关人员进入",)  # not the done one, not the stale one
    assert work.teams == ("消防一站 · T-1",)  # the released team is no longer out
    assert work.supplies == ("沙袋 100 袋（一号库）",)
    assert close_guard.open_work("zh_CN", {"teams": []}, None, None, {}).empty


def guard_of(who: Me, data: DetailData) -> list[Any]:
    tree = html.Div(incident_detail("zh_CN", who, data, TZ))
    return find(tree, lambda c: getattr(c, "className", None) == "close-guard")


def test_the_detail_explains_a_refusal_and_only_a_commander_may_override() -> None:
    data = dispatched(with_plan(sample()))
    data.incident.update(state="on_scene")
    assert guard_of(COMMANDER, data) == []  # nothing refused: nothing to explain
    data.refusal = {"incident_id": "INC-1", "version": 3, "action": "resolve", "detail": "仍有未完成事项"}
    for who, may in ((OPERATOR, False), (COMMANDER, True)):
        guard = guard_of(who, data)
        assert len(guard) == 1
        text = texts_of(guard[0])
        assert "无法标记处置完毕：仍有未完成事项" in text and "仍有未完成事项" in text
        assert "预案待办 1 项" in text and "设置警戒区，禁止无关人员进入" in text
        assert "1 支队伍尚未撤回" in text and "消防一站 · T-1" in text
        override = find(
            guard[0], lambda c: getattr(c, "id", None) == {"type": ids.CLOSE_OVERRIDE, "action": "resolve"}
        )
        assert bool(override) == may
        assert ("如需强制处理，请指挥长操作" in text) == (not may)
    data.incident["version"] = 4  # the refusal was of an older version
    assert guard_of(COMMANDER, data) == []


def test_a_long_list_of_open_items_is_cut_with_a_count() -> None:
    lines = tuple(f"事项 {n}" for n in range(10))
    panel = close_guard.guard_panel(
        "zh_CN", OPERATOR, {"action": "close", "detail": "x"}, close_guard.OpenWork(checklist=lines)
    )
    text = texts_of(panel)
    assert "预案待办 10 项" in text and "事项 3" in text and "事项 4" not in text
    assert "…另有 6 项" in text


def test_the_record_says_system_written_reasons_in_the_consoles_language() -> None:
    """A reason the system wrote (``reason_code`` in the event's data) is said from the
    console's catalogue, its codes (alarm kind, incident types) by their names; what a
    person typed, and an old record without a code, stay as written."""
    opened = {
        "kind": "opened",
        "reason": "110报警（交通事故）：…",
        "data": {
            "reason_code": "correlation.opened",
            "reason_args": {
                "alarm_kind": "call",
                "incident_type": "traffic_accident",
                "types": "traffic_accident,fire",
                "within_m": 300,
                "window_s": 1200,
            },
        },
    }
    en = event_reason("en", opened)
    assert en == (
        "110 call (Traffic accident): no open incident of a kind it joins (Traffic accident, Fire) "
        "within 300 m / 20 min 00 s; new incident"
    )
    zh = event_reason("zh_CN", opened)
    assert zh == "110报警（交通事故）：300 米 / 20 分 00 秒 范围内无在办同类事件（交通事故、火灾），新立事件"
    assert "traffic_accident" not in en + zh
    verified = {"kind": "state_changed", "reason": "派遣即立案", "data": {"reason_code": "dispatch.verified"}}
    assert event_reason("en", verified) == "verified on dispatch"
    assert event_reason("zh_CN", verified) == "派遣即立案"
    # typed by a person, or an old record: as written
    assert event_reason("en", {"reason": "现场确认", "data": {}}) == "现场确认"
    assert event_reason("en", {"reason": "verified on dispatch", "data": {}}) == "verified on dispatch"
    # a code this console does not know: the record's text, never the code
    unknown = {"reason": "某原因", "data": {"reason_code": "no.such", "reason_args": {}}}
    assert event_reason("en", unknown) == "某原因"


def test_role_holders_and_the_promotion_are_said_in_the_consoles_language() -> None:
    """Issue 10's leftovers: who holds a plan's role (the plan's ``held_by_en``) and why
    triage made an alarm an incident (the source's ``triage_reason_en``) in English."""
    data = sample()
    data.plan = {
        "active": True,
        "title_zh": "火灾预案",
        "title_en": "Fire plan",
        "activation": {
            "level": 4,
            "pending": 0,
            "roles": [
                {"id": "commander", "role_zh": "总指挥", "role_en": "Commander", "held_by": "市长",
                 "held_by_en": "Mayor"},
            ],
            "checklist": [],
        },
    }  # fmt: skip
    source = {
        **data.incident["sources"][0],
        "triage_rule": "call_110",
        "triage_reason": "110 报警一律立事件（待核实）（规则 call_110，v1）",
        "triage_reason_en": "every 110 call opens an incident (to be verified) (rule call_110, v1)",
    }
    data.incident = {**data.incident, "sources": [source]}
    zh = texts_of(html.Div(incident_detail("zh_CN", OPERATOR, data, TZ)))
    en = texts_of(html.Div(incident_detail("en", OPERATOR, data, TZ)))
    assert "总指挥: 市长" in zh and "Commander: Mayor" in en
    assert source["triage_reason"] in zh and source["triage_reason"] not in en
    assert source["triage_reason_en"] in en and source["triage_reason_en"] not in zh


def test_the_detail_says_a_major_risk_source_is_near_and_lists_shelters() -> None:
    from dashboard.layout.detail import DetailData, risk_panel

    data = DetailData(
        incident={"id": "INC-1", "level": 3},
        timeline=[],
        risk={
            "near_major_risk": [{"id": "RS-1", "name": "人民路加油站", "distance_m": 330}],
            "level": 3,
            "suggested_level": 2,
            "evacuation": True,
            "shelters": [{"id": "SH-1", "name": "人民广场", "distance_m": 480, "free": 1200}],
        },
    )
    text = str(risk_panel("zh_CN", data))
    assert "附近有重大风险源：人民路加油站（330 米）" in text
    assert "建议响应级别提升至 II 级" in text
    assert "人民广场：480 米，空余 1200" in text
    en = str(risk_panel("en", data))
    assert "Major risk source nearby" in en and "Evacuation: nearest open shelters" in en
    none = DetailData(
        incident={}, timeline=[], risk={"near_major_risk": [], "evacuation": True, "shelters": []}
    )
    assert "附近无有空位的开放避难场所" in str(risk_panel("zh_CN", none))
    assert risk_panel("zh_CN", DetailData(incident={}, timeline=[])) is None


def test_a_team_report_among_the_sources_names_the_team_and_its_category_in_words() -> None:
    """The ingest writes "队伍 T-1 上报 flood: …": the desk says the team by name with its
    id and the category in the operator's words, never the code."""
    from ingest import alarms
    from ingest.rows import NOWHERE
    from tests.ingest.test_ingest_rules import msg
    from wuwang.contract import team_topic

    def report(category: str, text: str) -> dict[str, Any]:
        message = msg(
            team_topic("T-1", "report"),
            {
                "id": f"r-{category}",
                "reporter": "张三",
                "category": category,
                "description": text,
                "lat": 1.0,
                "lon": 2.0,
            },
        )
        alarm = alarms.message_alarm(message, NOWHERE, video_confidence=0.8)
        assert alarm is not None
        return {
            "alarm_id": alarm.alarm_id,
            "kind": "report",
            "source": alarm.source,
            "category": alarm.category,
            "summary": alarm.summary,
            "ts": "2025-01-01T00:04:00+00:00",
        }

    data = dispatched(sample())
    data.incident["sources"] = [report("flood", "途中发现道路积水，已绕行"), report("on_scene", "已到达")]
    lines = {
        lang: [
            " ".join(texts_of(li))
            for li in find(
                incident_detail(lang, OPERATOR, data, TZ),
                lambda c: "source-report" in str(getattr(c, "className", "")),
            )
        ]
        for lang in ("zh_CN", "en")
    }
    assert "消防一站 · T-1 上报积水内涝：途中发现道路积水，已绕行" in lines["zh_CN"][0]
    assert "消防一站 · T-1 上报到场：已到达" in lines["zh_CN"][1]
    assert "消防一站 · T-1 reported: Flooding — 途中发现道路积水，已绕行" in lines["en"][0]
    assert "消防一站 · T-1 reported: Arrival on scene — 已到达" in lines["en"][1]
    for said in lines["zh_CN"] + lines["en"]:
        assert "flood:" not in said and "on_scene" not in said, said
    # the report's photo is described by the same words
    data.incident["sources"][0]["photo_url"] = f"/field/photos/{'a' * 64}.jpg"
    tree = incident_detail("en", OPERATOR, data, TZ)
    [img] = find(tree, lambda c: isinstance(c, html.Img))
    assert img.alt == "Scene photo: 消防一站 · T-1 reported: Flooding — 途中发现道路积水，已绕行"
