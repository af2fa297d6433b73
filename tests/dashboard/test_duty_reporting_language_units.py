"""The duty tab (值班) and an incident's reporting tab (信息报送) in one language at a time,
without a browser: the panels are drawn from bodies shaped as the command service
answers (a shift on duty, a duty log with typed and automatic lines, an instruction, a
handover, a level II fire's clocks and reports), and every text, placeholder and title
is read with the leak finder of test_language_browser.py — the English panels hold no
Chinese except names and what people typed, the Chinese ones no English word and no
internal code (a kind, a state, a catalogue key)."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from command.users import demo_users
from dashboard.api import Me
from dashboard.callbacks import duty as desk
from dashboard.i18n import Lang, catalogue
from dashboard.layout import duty as duty_layout
from dashboard.layout import reporting
from tests.dashboard.test_language_browser import leaks

ZONE = ZoneInfo("Asia/Shanghai")
RULE: dict[str, str] = {
    "title": "湖北省突发事件信息报送规定（示例）",
    "report_to": "湖北省应急管理厅总值班室",
}
INCIDENT: dict[str, Any] = {"id": "INC-20261207-0001", "title": "樊城区 高层建筑火灾", "exercise_id": None}
#: What people typed or named, kept as written in either language.
TYPED = [
    "接市应急局电话，要求加强夜间值守",
    "市应急管理局 王局长",
    "全力搜救被困人员",
    "消防救援支队",
    "已调派两个中队增援",
    "关注夜间天气",
    "启动Ⅱ级响应",
    "消防救援队",
    str(INCIDENT["title"]),
    *RULE.values(),
]
NAMES = sorted({u.display_name for u in demo_users([])} | set(TYPED), key=len, reverse=True)

EVERYTHING = frozenset(
    {
        "duty.read", "duty.log_write", "duty.instruction", "duty.handover_draw", "duty.handover_sign",
        "duty.roster_set", "upward_report.read", "upward_report.draft", "upward_report.approve",
        "upward_report.send", "upward_report.receipt",
    }
)  # fmt: skip
ME = Me(user_id="operator1", role="operator", team_id=None, display_name="张伟", actions=EVERYTHING)


def person(user_id: str, name: str) -> dict[str, str]:
    return {"user_id": user_id, "name": name}


SHIFT: dict[str, Any] = {
    "shift_id": "DS-20261207-day",
    "starts_at": "2026-12-07T00:00:00+00:00",
    "ends_at": "2026-12-07T12:00:00+00:00",
    "leader": person("commander1", "王强"),
    "officers": [person("operator1", "张伟")],
}
NIGHT: dict[str, Any] = {**SHIFT, "shift_id": "DS-20261207-night", "starts_at": SHIFT["ends_at"]}
SAY_SENT = {
    "key": "upward.log.report_sent",
    "words": {"kind": "upward.kind.first", "how": "upward.how.written"},
    "values": {"title": INCIDENT["title"], "n": 1, "to": RULE["report_to"], "by": "王强"},
}
SAY_OVERDUE = {
    "key": "upward.log.clock_overdue",
    "words": {"clock": "upward.clock.phone"},
    "values": {"title": INCIDENT["title"], "due": "12-07 09:15"},
}


def entry(kind: str, text: str, actor: str = "system", **detail: Any) -> dict[str, Any]:
    return {"at": "2026-12-07T01:00:00+00:00", "kind": kind, "text": text, "actor": actor, "detail": detail}


LOG = [
    entry("incident_opened", INCIDENT["title"], "operator1", incident_id=INCIDENT["id"]),
    entry("incident_closed", INCIDENT["title"], "commander1", state="closed"),
    entry("report_sent", "信息报送：…", report_id=f"{INCIDENT['id']}-R01", say=SAY_SENT),
    entry("clock_overdue", "报送超时：…", say=SAY_OVERDUE),
    entry("instruction_followed", "已调派两个中队增援", "commander1", state="followed_up"),
    entry("free", TYPED[0], "operator1"),
]
ACTORS = {
    "operator1": {"name": "张伟", "role": "operator"},
    "commander1": {"name": "王强", "role": "commander"},
}
INSTRUCTION = {
    "instruction_id": "DI-0001",
    "exercise_id": None,
    "received_at": "2026-12-07T01:10:00+00:00",
    "issued_by": "市应急管理局 王局长",
    "text": "全力搜救被困人员",
    "passed_to": ["消防救援支队"],
    "state": "passed_on",
    "next_state": "followed_up",
    "follow_up": "",
    "overdue": True,
}
HANDOVER = {
    "handover_id": "DH-0001",
    "exercise_id": None,
    "outgoing": SHIFT,
    "incoming": NIGHT,
    "drawn_up_at": "2026-12-07T11:30:00+00:00",
    "snapshot": {
        "open": {"incidents": [INCIDENT], "inbox_waiting": 2, "warnings": []},
        "overdue": [{"ref": INCIDENT["id"], "title": INCIDENT["title"]}],
        "follow": {"items": ["关注夜间天气"], "instructions": [INSTRUCTION]},
    },
    "notes": "",
    "outgoing_signed_by": "commander1",
    "incoming_signed_by": None,
    "sealed": False,
}
CLOCKS = [
    {"kind": "phone", "state": "overdue", "remaining_s": -300, "due_at": "2026-12-07T01:15:00+00:00"},
    {"kind": "written", "state": "running", "remaining_s": 1200, "due_at": "2026-12-07T01:35:00+00:00"},
    {"kind": "follow_up", "state": "met", "remaining_s": 0, "due_at": "2026-12-07T09:00:00+00:00"},
    {"kind": "final", "state": "met_late", "remaining_s": 0, "due_at": "2026-12-08T01:00:00+00:00"},
]
CONTENT = {
    "figures": {"deaths": 0, "missing": 0, "injured": 2},
    "measures": "启动Ⅱ级响应",
    "teams": ["消防救援队"],
}
REPORTS = [
    {
        "number": 1,
        "kind": "first",
        "state": "acknowledged",
        "versions": [{"content": CONTENT, "changes": []}],
    },
    {
        "number": 2,
        "kind": "follow_up",
        "state": "draft",
        "versions": [
            {"content": CONTENT, "changes": [{"element": "figures.injured", "before": 0, "after": 2}]}
        ],
    },
]


def texts(node: Any) -> list[str]:
    """Every text of a Dash component tree: its strings and what it says in placeholders,
    titles and options."""
    if node is None or isinstance(node, bool):
        return []
    if isinstance(node, str | int | float):
        return [str(node)]
    if isinstance(node, list | tuple):
        return [t for n in node for t in texts(n)]
    found: list[str] = []
    for prop in ("placeholder", "title", "aria-label"):
        value = getattr(node, prop, None)
        if isinstance(value, str):
            found.append(value)
    for option in getattr(node, "options", None) or []:
        if isinstance(option, dict):
            found += texts(option.get("label"))
    return found + texts(getattr(node, "children", None))


def duty_tab(lang: Lang) -> list[str]:
    now = {"at": "2026-12-07T02:00:00+00:00", "current": SHIFT, "next": NIGHT}
    return [
        *texts(duty_layout.duty_panel(lang, ME)),
        *texts(duty_layout.wall_strip(lang)),
        *texts(desk.on_duty(lang, now, ZONE)),
        *texts(desk.export_links(lang, SHIFT["shift_id"], "2026-12-07")),
        *texts(desk.handover_view(lang, ME, [HANDOVER], ZONE)),
        *texts(desk.instruction_items(lang, ME, [INSTRUCTION], ZONE)),
        *texts(desk.log_list(lang, LOG, ZONE, ACTORS)),
    ]


def reporting_tab(lang: Lang) -> list[str]:
    body = {"rule": RULE, "covered": True, "clocks": CLOCKS, "reports": REPORTS}
    # more clocks than the wall shows, so its "N more" line is read too
    wall = [
        {**c, "title": INCIDENT["title"], "incident_id": INCIDENT["id"]}
        for c in CLOCKS * (reporting.WALL_ROWS // len(CLOCKS) + 1)
    ]
    return [
        *texts(reporting.reporting_tab(lang, ME, INCIDENT, body, ZONE)),
        *texts(reporting.wall_strip(lang)),
        *texts(reporting.wall_rows(lang, wall, ZONE)),
    ]


def codes(all_texts: list[str]) -> list[str]:
    """Texts that show an internal code: a catalogue key, a snake_case value (a kind, a
    state, a clock) or a user's account id instead of their name."""
    keys = set(catalogue("en"))
    accounts = {u.id for u in demo_users([])}
    found = set()
    for text in all_texts:
        tokens = re.findall(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*", text)
        if any(tok in keys or tok in accounts or re.fullmatch(r"[a-z]+_[a-z_]+", tok) for tok in tokens):
            found.add(text)
    return sorted(found)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
@pytest.mark.parametrize("panel", [duty_tab, reporting_tab], ids=["duty", "reporting"])
def test_the_duty_and_reporting_tabs_speak_one_language(lang: Lang, panel: Any) -> None:
    said = panel(lang)
    assert len(said) > 15  # the panel was drawn, with its parts
    assert leaks(said, lang, NAMES) == []
    assert codes(said) == []


def test_the_duty_log_names_who_wrote_each_line_in_the_readers_language() -> None:
    cases: list[tuple[Lang, str, str]] = [
        ("zh_CN", "张伟（值班员）", "王强（指挥长）"),
        ("en", "张伟 (Operator)", "王强 (Commander)"),
    ]
    for lang, operator, commander in cases:
        said = texts(desk.log_list(lang, LOG, ZONE, ACTORS))
        assert operator in said and commander in said
        assert "operator1" not in said and "system" not in said
    # an account the service did not name (none of the log's users) shows as recorded
    assert "someone" in texts(desk.log_list("en", [entry("free", "x", "someone")], ZONE, ACTORS))


def test_automatic_report_lines_are_said_again_in_english() -> None:
    said = " ".join(texts(desk.log_list("en", LOG, ZONE, ACTORS)))
    assert "report 1 (" in said and "王强" in said
    assert "escalated to the leader on duty" in said
    zh = " ".join(texts(desk.log_list("zh_CN", LOG, ZONE, ACTORS)))
    assert "已提请带班领导" in zh and "第1报" in zh


def test_the_code_finder_sees_keys_codes_and_accounts() -> None:
    assert codes(["duty.actor", "report_sent", "签发人 commander1", "Acknowledged", "INC-20261207-0001"]) == [
        "duty.actor",
        "report_sent",
        "签发人 commander1",
    ]


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_wall_says_how_many_clocks_it_leaves_out(lang: Lang) -> None:
    clock = {**CLOCKS[0], "title": INCIDENT["title"], "incident_id": INCIDENT["id"]}
    shown = reporting.wall_rows(lang, [clock] * reporting.WALL_ROWS, ZONE)
    assert len(shown) == reporting.WALL_ROWS and "more" not in str(getattr(shown[-1], "className", ""))
    cut = reporting.wall_rows(lang, [clock] * (reporting.WALL_ROWS + 3), ZONE)
    assert len(cut) == reporting.WALL_ROWS + 1
    assert "more" in str(getattr(cut[-1], "className", "")) and "3" in " ".join(texts(cut[-1]))
