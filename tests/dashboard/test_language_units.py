"""One language at a time, without a browser: data values in the console's language
(dashboard/i18n/data.py), the timeline's plan words, the stats charts' time axis and
Plotly's locale, the report links in the console's language, and no ticket or token in
the dashboard's access log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
from fastapi.testclient import TestClient

from dashboard.api import CommandApi, Me
from dashboard.app import create_app
from dashboard.charts import TimeWindow, figure, graph_config
from dashboard.data.aggregates import Series
from dashboard.i18n import Lang, catalogue
from dashboard.i18n import data as words
from dashboard.layout.detail import DetailData, timeline
from dashboard.layout.exercise import report_links
from tests.dashboard.test_exercise_console import FakeCommand
from wuwang.redact import RedactTokens
from wuwang.settings import Settings

ZONE = ZoneInfo("Asia/Shanghai")
ASSETS = Path(__file__).resolve().parents[2] / "dashboard" / "assets"


def texts(node: Any) -> str:
    """Every string in a Dash component tree."""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list | tuple):
        return " ".join(texts(n) for n in node)
    children = getattr(node, "children", None)
    return texts(children) if children is not None else ""


def test_units_are_said_in_the_language_with_the_items_own_counter_word() -> None:
    assert words.measure("zh_CN", "piece", "顶") == "顶"  # a tent is counted in 顶
    assert words.measure("zh_CN", "piece") == "件"
    assert words.measure("zh_CN", "kg") == "千克"
    assert words.measure("en", "piece", "顶") == "piece"
    assert words.measure("en", "L", "升") == "L"
    assert words.measure("zh_CN", "furlong") == "furlong"  # unknown: as it came


def test_items_plans_and_steps_in_the_chosen_language_with_fallbacks() -> None:
    item = {"item_code": "tent", "name_zh": "救灾帐篷", "name_en": "Relief tent (12 m²)"}
    assert words.item_name("zh_CN", item) == "救灾帐篷"
    assert words.item_name("en", item) == "Relief tent (12 m²)"
    assert words.item_name("en", {"item_code": "tent", "name_zh": "救灾帐篷"}) == "救灾帐篷"
    assert words.item_name("en", {"item_code": "tent"}) == "tent"
    assert words.bilingual("en", {"title_zh": "火灾预案", "title_en": "Fire plan"}, "title") == "Fire plan"


def test_the_command_service_is_named_in_words_and_users_by_their_id() -> None:
    assert words.actor("zh_CN", "system:correlator") == "系统（事件关联）"
    assert words.actor("en", "system:correlator") == "system (correlation)"
    assert words.actor("en", "system:something_new") == "system"
    assert words.actor("en", "operator1") == "operator1"


def test_incident_titles_and_alarm_summaries_made_in_chinese_are_said_in_english() -> None:
    inc = {"id": "INC-1", "type": "traffic_accident", "title": "交通事故（110报警）：110报警 交通: 长虹路"}
    assert words.incident_title("zh_CN", inc) == inc["title"]
    assert words.incident_title("en", inc) == "Traffic accident"
    titled = {**inc, "title": "交通事故 · 樊城区长虹路158号"}  # what · where (command's title_for)
    assert words.incident_title("en", titled) == "Traffic accident · 樊城区长虹路158号"
    assert (
        words.incident_title("en", {**inc, "title": "Pile-up on the ring road"}) == "Pile-up on the ring road"
    )
    src = {"kind": "call", "category": "traffic", "summary": "110报警 交通: 长虹路"}
    assert words.alarm_summary("zh_CN", src) == "110报警 交通: 长虹路"
    assert words.alarm_summary("en", src) == "110 call"


def test_a_team_account_is_named_by_its_team_in_the_language() -> None:
    team = Me(user_id="T-FIRE-01", role="field", team_id="T-FIRE-01", display_name="队伍 T-FIRE-01")
    person = Me(user_id="commander1", role="commander", team_id=None, display_name="王强")
    assert words.user_label("en", team) == "Team T-FIRE-01"
    assert words.user_label("zh_CN", team) == "队伍 T-FIRE-01"
    assert words.user_label("en", person) == "王强"  # a name is a name


def test_the_timeline_names_the_plan_and_its_steps_never_their_codes() -> None:
    data = DetailData(incident={"id": "INC-1"}, timeline=[])  # the events are set below
    data.plans = [
        {"id": "traffic_accident", "title_zh": "道路交通事故预案", "title_en": "Road accident plan"}
    ]
    data.plan = {
        "active": True,
        "activation": {
            "plan_id": "traffic_accident",
            "title_zh": "道路交通事故预案",
            "title_en": "Road accident plan",
            "checklist": [
                {"id": "locate_scene", "text_zh": "核实现场位置", "text_en": "Confirm the location"}
            ],
        },
    }
    at = datetime(2026, 12, 7, 6, 0, tzinfo=UTC).isoformat()
    activated = {"plan_id": "traffic_accident", "plan_version": 1}
    ticked = {"item_id": "locate_scene", "done": True}
    events = [
        {"kind": "plan_activated", "at": at, "actor": "commander1", "data": activated},
        {"kind": "checklist_item_ticked", "at": at, "actor": "commander1", "data": ticked},
        {"kind": "opened", "at": at, "actor": "system:correlator", "data": {}},
    ]
    cases: tuple[tuple[Lang, str, str, str], ...] = (
        ("en", "Road accident plan (version 1)", "Confirm the location ✓", "system (correlation)"),
        ("zh_CN", "道路交通事故预案（第 1 版）", "核实现场位置 ✓", "系统（事件关联）"),
    )
    for lang, plan, step, system in cases:
        data.timeline = events
        shown = texts(timeline(lang, data, ZONE))
        assert plan in shown and step in shown and system in shown, shown
        assert "traffic_accident" not in shown and "locate_scene" not in shown and "system:" not in shown


def test_the_stats_charts_time_axis_spans_its_window_in_hours_and_minutes() -> None:
    end = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    window = TimeWindow(end - timedelta(hours=24), end + timedelta(hours=1), timedelta(hours=1))
    one_bar = [Series("police", ["2026-12-07 14:00:00"], [3])]  # one bar: Plotly alone ranges a millisecond
    fig = figure("zh_CN", one_bar, kind="network", empty_key="chart.no_data", window=window, tz=ZONE)
    axis = fig["layout"]["xaxis"]
    assert axis["range"] == ["2026-12-06 14:00:00", "2026-12-07 15:00:00"]  # the wall clock, +08:00
    assert axis["tickformat"] == "%H:%M"
    assert fig["data"][0]["width"] == [3600 * 1000 * 0.9]  # an hour's bar, not a hairline
    assert fig["layout"]["yaxis"]["dtick"] == 1  # three calls: 0, 1, 2, 3 — not 0.5 steps
    many = [Series("police", ["2026-12-07 14:00:00"], [30]), Series("venue", ["2026-12-07 14:00:00"], [12])]
    assert figure("en", many, kind="network", empty_key="chart.no_data")["layout"]["yaxis"]["dtick"] == 9
    assert graph_config("zh_CN")["locale"] == "zh-CN" and graph_config("en")["locale"] == "en"


def test_plotlys_chinese_locale_is_served_from_the_assets_with_its_licence() -> None:
    text = (ASSETS / "vendor" / "plotly-locale-zh-cn.js").read_text(encoding="utf-8")
    assert "MIT License" in text and "Plotly Technologies Inc." in text
    assert "name: 'zh-CN'" in text and "PlotlyLocales" in text and "'十二月'" in text
    assert "http" not in text.split("*/", 1)[1]  # loads nothing from anywhere


def test_report_links_ask_for_the_consoles_language() -> None:
    langs: tuple[tuple[Lang, str], ...] = (("zh_CN", "zh"), ("en", "en"))
    for lang, tongue in langs:
        hrefs = [a.href for a in report_links(lang, "incident", "INC-1")]
        assert hrefs == [
            f"/report/incident/INC-1.html?lang={tongue}",
            f"/report/incident/INC-1.html?lang={tongue}&download=1",
            f"/report/incident/INC-1.csv?lang={tongue}",
        ]


class LangRecordingCommand(FakeCommand):
    """The fake command service, recording each report request's language."""

    def __init__(self) -> None:
        super().__init__()
        self.langs: list[str | None] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith(("/report.html", "/report.csv")):
            self.langs.append(request.url.params.get("lang"))
        return super().__call__(request)


@pytest.fixture
def recording() -> LangRecordingCommand:
    return LangRecordingCommand()


@pytest.fixture
def client(recording: LangRecordingCommand) -> Iterator[TestClient]:
    api = CommandApi("http://command.test", transport=httpx2.MockTransport(recording))
    app = create_app(Settings(demo_mode=True, dashboard_streets_file=None), api=api)
    with TestClient(app.server) as c:
        yield c


def test_a_report_is_fetched_in_the_language_its_link_asks_for(
    client: TestClient, recording: LangRecordingCommand
) -> None:
    planner = {"Authorization": "Bearer planner"}
    for path in ("/report/exercise/EX-1.html?lang=en", "/report/exercise/EX-1.html?lang=zh&download=1"):
        r = client.post("/report/ticket", headers=planner, json={"path": path})
        assert r.status_code == 200, r.text
        assert client.get(r.json()["url"]).status_code == 200
    assert client.get("/report/exercise/EX-1.csv", headers=planner).status_code == 200
    assert recording.langs == ["en", "zh", None]  # none asked: the command service's default
    for bad in (
        "/report/exercise/EX-1.html?lang=fr",
        "/report/exercise/EX-1.html?lang=en&x=1",
        "/report/exercise/EX-1.html?&download=1",
    ):
        assert client.post("/report/ticket", headers=planner, json={"path": bad}).status_code == 422


def test_the_dashboards_access_log_never_shows_a_ticket_or_a_token(client: TestClient) -> None:
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactTokens) for f in access.filters)  # create_app put it there
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/report/incident/INC-1.html?lang=en&ticket=s3cr3t-Tick3t", "1.1", 200),
        None,
    )  # fmt: skip
    for f in access.filters:
        if isinstance(f, RedactTokens):
            f.filter(record)
    line = record.getMessage()
    assert "s3cr3t-Tick3t" not in line and "ticket=[redacted]" in line and "lang=en" in line
    bearer = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Authorization: Bearer abc.def", None, None
    )
    RedactTokens().filter(bearer)
    assert "abc.def" not in bearer.getMessage()


def test_the_new_catalogue_keys_exist_in_both_languages() -> None:
    zh, en = catalogue("zh_CN"), catalogue("en")  # the shared catalogues (wuwang/i18n)
    for key in (
        "measure.piece",
        "actor.system",
        "leaflet.zoom_in",
        "leaflet.layers",
        "app.lang_tag",
        "user.team",
    ):
        assert zh[key] and en[key] and zh[key] != en[key], key
