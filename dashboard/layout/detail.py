"""The incident detail as components, from what the command API returned (pure: the
callback fetches, this draws). Buttons carry pattern-matching ids handled in
``dashboard.callbacks.incident``; an action ``/auth/me`` does not list is not drawn, and
the command service refuses it anyway."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard import ids
from dashboard.api import Me
from dashboard.i18n import Lang, has, t
from dashboard.i18n import data as words
from dashboard.layout import close_guard, team_text
from dashboard.layout.photos import report_photos
from wuwang import i18n

LEVELS = (1, 2, 3, 4)
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
NEEDS_REASON = frozenset({"cancel", "false-alarm", "reopen", "hold"})
#: Acts drawn elsewhere (a team is dispatched from the teams tab), not as buttons here.
_NOT_BUTTONS = frozenset({"dispatch"})


def next_acts(inc: dict[str, Any]) -> tuple[str, ...]:
    """The acts the command service says the incident takes now (its ``next_acts``, from
    the incident lifecycle), as this console names and draws them: buttons it has words for
    (the API's ``false_alarm`` is the console's ``false-alarm``)."""
    acts = inc.get("next_acts")
    if not isinstance(acts, list):
        return ()
    named = (str(a).replace("_", "-") for a in acts)
    return tuple(a for a in named if a not in _NOT_BUTTONS and has("en", f"act.{a}"))


@dataclass
class DetailData:
    """What the detail callback fetched; a part that failed is None with its error."""

    incident: dict[str, Any]
    timeline: list[dict[str, Any]]
    plan: dict[str, Any] | None = None
    plans: list[dict[str, Any]] = field(default_factory=list)
    recommendations: dict[str, Any] | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    reserve: dict[str, Any] | None = None
    #: GET /incidents/{id}/risk: major risk sources near it, shelters for an evacuation
    risk: dict[str, Any] | None = None
    #: GET /incidents/{id}/reports: 信息报送 clocks, reports, figures
    reporting: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    area_chart: Any = None
    #: A resolve or close the command service refused (the close-guard store), if any.
    refusal: dict[str, Any] | None = None


def team_names(data: DetailData) -> dict[str, str]:
    """Team names by id from what the detail fetched: the incident's orders name every
    team ever dispatched to it, the recommendations the candidates."""
    names: dict[str, str] = {}
    recs = data.recommendations if isinstance(data.recommendations, dict) else {}
    for req in recs.get("teams", []):
        for c in req.get("candidates", []):
            if c.get("team_id") and c.get("name"):
                names[str(c["team_id"])] = str(c["name"])
    for o in data.orders:
        if o.get("team_id") and o.get("team_name"):
            names[str(o["team_id"])] = str(o["team_name"])
    return names


def level_badge(lang: Lang, level: int, *, big: bool = False) -> html.Span:
    return html.Span(
        f"{ROMAN.get(level, '?')} {t(lang, f'level.{level}')}",
        className=f"level-badge level-{level}" + (" big" if big else ""),
    )


def clock(value: str | None, tz: ZoneInfo, *, with_date: bool = False) -> str:
    if not value:
        return "—"
    try:
        when = datetime.fromisoformat(value).astimezone(tz)
    except ValueError:
        return value
    return when.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def minutes(seconds: float | None, lang: Lang) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return t(lang, "unit.seconds", n=round(seconds))
    return t(lang, "unit.minutes", n=round(seconds / 60))


def state_label(lang: Lang, state: str) -> str:
    key = f"state.{state}"
    return t(lang, key) if has(lang, key) else state


def _type_label(lang: Lang, kind: str) -> str:
    key = f"type.{kind}"
    return t(lang, key) if has(lang, key) else kind


def team_type_label(lang: Lang, kind: str) -> str:
    key = f"team_type.{kind}"
    return t(lang, key) if has(lang, key) else kind


def team_status_label(lang: Lang, status: str) -> str:
    key = f"team_status.{status}"
    return t(lang, key) if has(lang, key) else status


def _section(title: str, *children: Any, cls: str = "") -> html.Section:
    return html.Section(className=f"detail-section {cls}".strip(), children=[html.H3(title), *children])


def _error(lang: Lang, data: DetailData, part: str) -> html.P | None:
    if part in data.errors:
        return html.P(t(lang, "detail.part_unavailable", detail=data.errors[part]), className="muted small")
    return None


def summary(lang: Lang, inc: dict[str, Any], tz: ZoneInfo) -> html.Div:
    return html.Div(
        className="detail-head",
        children=[
            level_badge(lang, int(inc.get("level", 4)), big=True),
            html.Div(
                className="detail-title",
                children=[
                    html.H2(words.incident_title(lang, inc)),
                    html.Div(
                        className="detail-meta",
                        children=[
                            html.Span(inc.get("id", ""), className="mono"),
                            html.Span(
                                state_label(lang, str(inc.get("state", ""))),
                                className=f"state state-{inc.get('state')}",
                            ),
                            html.Span(_type_label(lang, str(inc.get("type", "")))),
                            html.Span(
                                t(
                                    lang,
                                    "detail.opened_at",
                                    at=clock(inc.get("opened_at"), tz, with_date=True),
                                )
                            ),
                            html.Span(words.district(inc) or "—"),
                            html.Span(
                                t(lang, "detail.exercise", id=inc["exercise_id"]),
                                className="badge badge-exercise",
                            )
                            if inc.get("exercise_id")
                            else None,
                        ],
                    ),
                ],
            ),
            html.Button(
                "✕",
                id={"type": ids.DETAIL_CLOSE, "panel": "detail"},
                n_clicks=0,
                title=t(lang, "detail.close"),
                className="btn btn-ghost btn-small detail-close",
            ),
        ],
    )


_ACT_CLASS = {"cancel": "btn-danger", "false-alarm": "btn-danger", "hold": "btn-warning"}


def held_banner(lang: Lang, inc: dict[str, Any], tz: ZoneInfo) -> html.Div | None:
    """Why, by whom and since when a held incident is parked (挂起)."""
    held = inc.get("held")
    if not held:
        return None
    return html.Div(
        className="held-banner",
        children=t(
            lang,
            "detail.held",
            reason=str(held.get("reason", "")),
            by=words.actor(lang, held.get("by")),
            at=clock(held.get("at"), tz),
        ),
    )


def actions(lang: Lang, who: Me, inc: dict[str, Any]) -> html.Div | None:
    if not who.may_on("incident.note", inc) or not inc.get("is_open", False):
        return None
    # what the incident takes now (the command service's state machine) and what this
    # user may do (the command service's policy, from /auth/me)
    acts = tuple(a for a in next_acts(inc) if who.may_on(f"incident.{a.replace('-', '_')}", inc))
    buttons = [
        html.Button(
            t(lang, f"act.{a}"),
            id={"type": ids.ACT, "action": a},
            n_clicks=0,
            className="btn " + _ACT_CLASS.get(a, "btn-primary"),
        )
        for a in acts
    ]
    level = None
    if who.may_on("incident.level_change", inc):
        level = html.Div(
            className="row",
            children=[
                dcc.Dropdown(
                    id=ids.detail_input("level"),
                    className="dropdown",
                    clearable=False,
                    value=int(inc.get("level", 4)),
                    options=[
                        {"label": f"{ROMAN[lv]} {t(lang, f'level.{lv}')}", "value": lv} for lv in LEVELS
                    ],
                ),
                html.Button(
                    t(lang, "act.level"),
                    id={"type": ids.ACT, "action": "level"},
                    n_clicks=0,
                    className="btn btn-warning",
                ),
            ],
        )
    return html.Div(
        className="actions",
        children=[
            html.Div(className="row wrap", children=buttons),
            dcc.Input(
                id=ids.detail_input("reason"),
                type="text",
                placeholder=t(lang, "detail.reason_placeholder"),
                className="input",
                maxLength=1000,
            ),
            level,
            html.Div(
                className="row",
                children=[
                    dcc.Input(
                        id=ids.detail_input("note"),
                        type="text",
                        placeholder=t(lang, "detail.note_placeholder"),
                        className="input",
                        maxLength=4000,
                    ),
                    html.Button(
                        t(lang, "act.note"),
                        id={"type": ids.ACT, "action": "note"},
                        n_clicks=0,
                        className="btn",
                    ),
                ],
            ),
        ],
    )


def plan_section(lang: Lang, who: Me, data: DetailData, tz: ZoneInfo) -> html.Section:
    inc = data.incident
    plan = data.plan
    children: list[Any] = []
    err = _error(lang, data, "plan")
    if err is not None:
        children.append(err)
    title_key = "title_zh" if lang == "zh_CN" else "title_en"
    if plan is None or not plan.get("active"):
        covering = set((plan or {}).get("covering_plans", []))
        options = [
            {
                "label": f"{p.get(title_key) or p.get('id')}" + ("" if p.get("id") in covering else " *"),
                "value": p.get("id"),
            }
            for p in sorted(data.plans, key=lambda p: (p.get("id") not in covering, str(p.get("id"))))
        ]
        if who.may_on("plan.activate", inc) and inc.get("is_open") and options:
            children.append(
                html.Div(
                    className="row",
                    children=[
                        dcc.Dropdown(
                            id=ids.detail_input("plan"),
                            className="dropdown",
                            options=options,
                            clearable=False,
                            # a plan of another type is chosen on purpose, never by default
                            value=next((o["value"] for o in options if o["value"] in covering), None),
                            placeholder=t(lang, "plan.choose"),
                        ),
                        html.Button(
                            t(lang, "act.plan"),
                            id={"type": ids.ACT, "action": "plan"},
                            n_clicks=0,
                            className="btn btn-primary",
                        ),
                    ],
                )
            )
            if any(o["value"] not in covering for o in options):
                children.append(html.P(t(lang, "plan.star_note"), className="muted small"))
        elif not inc.get("is_open"):
            children.append(html.P(t(lang, "plan.not_activated"), className="muted"))
        elif not data.plans and "plans" not in data.errors:
            children.append(html.P(t(lang, "plan.none"), className="muted"))
        return _section(t(lang, "detail.plan"), *children)
    act = plan.get("activation") or {}
    children.append(
        html.P(
            className="plan-title",
            children=[
                html.Strong(act.get(title_key) or act.get("plan_id", "")),
                html.Span(
                    " · "
                    + t(
                        lang,
                        "plan.at_level",
                        level=ROMAN.get(int(act.get("level", inc.get("level", 4))), "?"),
                    )
                ),
                html.Span(" · " + t(lang, "plan.pending", n=act.get("pending", 0))),
            ],
        )
    )
    roles = act.get("roles", [])
    role_key, holder_key = ("role_zh", "held_by") if lang == "zh_CN" else ("role_en", "held_by_en")
    if roles:
        children.append(
            html.Ul(
                className="roles",
                children=[
                    html.Li(f"{r.get(role_key, r.get('id'))}: {r.get(holder_key) or '—'}") for r in roles
                ],
            )
        )
    items = []
    for item in act.get("checklist", []):
        done = bool(item.get("done"))
        text = item.get("text_zh" if lang == "zh_CN" else "text_en") or item.get("id")
        who_when = (
            t(lang, "plan.done_by", by=item.get("done_by") or "", at=clock(item.get("done_at"), tz))
            if done
            else ""
        )
        # the mark, the text and who ticked it: one button when it may be ticked (the whole
        # text is the click target), the same three columns as plain text when not
        parts = [
            html.Span("☑" if done else "☐", className="tick" + (" done" if done else "")),
            html.Span(text, className="check-text"),
            html.Span(who_when, className="muted small"),
        ]
        body: Any = html.Div(parts, className="check-body")
        if who.may_on("plan.checklist_tick", inc) and inc.get("is_open") and item.get("applies", True):
            body = html.Button(
                parts,
                title=t(lang, "plan.untick" if done else "plan.tick"),
                id={"type": ids.TICK, "item": str(item.get("id")), "done": not done},
                n_clicks=0,
                className="check-body check-toggle",
            )
        items.append(
            html.Li(
                className="check"
                + (" done" if done else "")
                + ("" if item.get("applies", True) else " stale"),
                children=body,
            )
        )
    children.append(html.Ul(className="checklist", children=items))
    return _section(t(lang, "detail.plan"), *children)


def _eta(lang: Lang, r: dict[str, Any]) -> str:
    """The ETA in the console's language, from ``eta_s`` (the API's ``eta`` text is
    Chinese)."""
    eta = r.get("eta_s")
    return duration(lang, float(eta)) if isinstance(eta, (int, float)) else "—"


def duration(lang: Lang, seconds: float) -> str:
    """Seconds as the recommender's reasons say them: 42 秒, 6 分 14 秒, 2 小时 05 分."""
    return i18n.duration(lang, seconds)


def reason_text(lang: Lang, reason: dict[str, Any], prefix: str = "reason") -> str:
    """One coded reason in the console's language, from its code and parameters: the
    recommender's (``reason.<code>``) or one the system wrote on an incident's record
    (``why.<code>``), said by the shared catalogue as the command service says it; the
    command service's text when the code is one this console does not know, or its
    parameters do not fit."""
    fallback = str(reason.get("text") or reason.get("code") or "")
    params = reason.get("params")
    if not isinstance(params, dict):
        return fallback
    said = i18n.reason(lang, prefix, str(reason.get("code")), params)
    return fallback if said is None else said


def _reasons(lang: Lang, r: dict[str, Any]) -> str:
    coded = r.get("reason_codes")
    if isinstance(coded, list):
        return "; ".join(reason_text(lang, x) for x in coded if isinstance(x, dict))
    reasons = r.get("reasons", r.get("reason", []))  # a command service without codes
    if isinstance(reasons, str):
        return reasons
    return "; ".join(str(x) for x in reasons or [])


def _skip_text(lang: Lang, skipped: dict[str, Any]) -> str:
    """Why a team was skipped: from its code (``team.skipped.*``), else the text."""
    text = str(skipped.get("detail") or skipped.get("reason"))
    if skipped.get("code"):
        return reason_text(lang, {"code": skipped["code"], "params": skipped.get("params"), "text": text})
    return text


def _km(metres: Any) -> str:
    return f"{float(metres) / 1000:.1f} km" if isinstance(metres, (int, float)) else ""


def team_recommendations(lang: Lang, who: Me, data: DetailData) -> html.Section:
    """Per team type the plan (or the type's first response) needs: how many are still
    needed, the candidates ranked by ETA with the recommender's reasons, and a
    dispatch button for each; when nobody qualifies, why the teams were skipped."""
    recs = data.recommendations if isinstance(data.recommendations, dict) else {}
    may = who.may_on("incident.dispatch", data.incident) and bool(data.incident.get("is_open"))
    body: list[Any] = []
    err = _error(lang, data, "recommendations")
    if err is not None:
        body.append(err)
    for req in recs.get("teams", []):
        kind = str(req.get("type", ""))
        needed = int(req.get("needed", 0))
        head = t(
            lang,
            "rec.requirement",
            type=team_type_label(lang, kind),
            count=req.get("count", 0),
            assigned=req.get("assigned", 0),
            needed=needed,
        )
        rows: list[Any] = []
        for c in req.get("candidates", [])[: max(needed, 1) + 2]:
            team_id = str(c.get("team_id", ""))
            rows.append(
                html.Tr(
                    className="suggested" if team_id in req.get("suggested", []) else "",
                    children=[
                        html.Td(
                            [
                                html.Strong(c.get("name") or team_id),
                                html.Div(team_id, className="mono small muted"),
                            ]
                        ),
                        html.Td(
                            [
                                html.Div(_eta(lang, c)),
                                html.Div(_km(c.get("distance_m")), className="small muted"),
                            ],
                            className="num",
                        ),
                        html.Td(_reasons(lang, c), className="small"),
                        html.Td(
                            html.Button(
                                t(lang, "act.dispatch"),
                                id={"type": ids.DISPATCH, "team": team_id},
                                n_clicks=0,
                                className="btn btn-primary btn-small dispatch-button",
                            )
                            if may and team_id
                            else None
                        ),
                    ],
                )
            )
        skipped = req.get("skipped", [])
        if not rows and skipped:
            why: dict[str, int] = {}
            for sk in skipped:
                text = _skip_text(lang, sk)
                why[text] = why.get(text, 0) + 1
            rows.append(
                html.Tr(
                    html.Td(
                        t(
                            lang,
                            "rec.all_skipped",
                            n=len(skipped),
                            why="; ".join(f"{k} × {v}" for k, v in why.items()),
                        ),
                        colSpan=4,
                        className="small muted",
                    )
                )
            )
        body.append(
            html.Table(
                className="table rec-table",
                children=[
                    html.Thead(
                        html.Tr(
                            html.Th(
                                head,
                                colSpan=4,
                                className="rec-head" + (" short" if int(req.get("short", 0)) else ""),
                            )
                        )
                    ),
                    html.Tbody(rows),
                ],
            )
        )
    if not recs.get("teams") and not err:
        body.append(html.P(t(lang, "rec.no_teams"), className="muted"))
    return _section(t(lang, "detail.recommended_teams"), *body, cls="recommendations")


def stock_section(lang: Lang, who: Me, data: DetailData) -> html.Section:
    """Supplies the plan requires that the incident does not hold yet: the warehouses
    the recommender ranked (ETA, reasons) and a reserve button for each line of its
    plan; what is already held."""
    recs = data.recommendations if isinstance(data.recommendations, dict) else {}
    lines = {str(s.get("key")): s for s in (data.plan or {}).get("shortfall", [])}
    may = who.may_on("reserve.reserve", data.incident) and bool(data.incident.get("is_open"))
    body: list[Any] = []
    for need in recs.get("supplies", []):
        item = str(need.get("item", ""))
        line_of = lines.get(item, {})
        unit = words.measure(lang, need.get("unit"), line_of.get("unit_zh"))
        rows: list[Any] = []
        wh_names = {str(c.get("warehouse_id")): c for c in need.get("candidates", [])}
        for line in need.get("plan", []):
            wid = str(line.get("warehouse_id"))
            cand = wh_names.get(wid, {})
            rows.append(
                html.Tr(
                    [
                        html.Td(
                            [
                                html.Div(cand.get("name") or wid),
                                html.Div(
                                    t(lang, f"warehouse.{cand.get('kind')}") if cand.get("kind") else "",
                                    className="small muted",
                                ),
                            ]
                        ),
                        html.Td(f"{line.get('quantity')} {unit}", className="num"),
                        html.Td(
                            [
                                html.Div(_eta(lang, cand if "eta_s" in cand else line)),
                                html.Div(_reasons(lang, cand), className="small"),
                            ]
                        ),
                        html.Td(
                            html.Button(
                                t(lang, "act.reserve"),
                                n_clicks=0,
                                className="btn btn-small reserve-button",
                                id={
                                    "type": ids.RESERVE,
                                    "item": item,
                                    "qty": int(line.get("quantity", 0)),
                                    "wh": wid,
                                },
                            )
                            if may
                            else None
                        ),
                    ]
                )
            )
        head = t(
            lang,
            "stock.requirement",
            item=words.bilingual(lang, {"name_zh": line_of.get("name"), **line_of}, "name", item),
            quantity=need.get("quantity"),
            unit=unit,
            held=need.get("held", 0),
            needed=need.get("needed", 0),
        )
        if int(need.get("short", 0)):
            head += " · " + t(lang, "stock.short", n=need.get("short"), unit=unit)
        body.append(
            html.Table(
                className="table",
                children=[
                    html.Thead(html.Tr(html.Th(head, colSpan=4, className="rec-head"))),
                    html.Tbody(rows),
                ],
            )
        )
    if not recs.get("supplies"):
        active = bool((data.plan or {}).get("active"))
        body.append(
            html.P(t(lang, "stock.nothing_missing" if active else "stock.no_plan"), className="muted")
        )
    held = (data.reserve or {}).get("allocations") or []
    if held:
        body.append(html.P(t(lang, "stock.held", n=len(held)), className="muted small"))
    return _section(t(lang, "detail.stock"), *body)


def teams_on_incident(lang: Lang, data: DetailData, tz: ZoneInfo) -> html.Section:
    teams = data.incident.get("teams", [])
    if not teams:
        return _section(t(lang, "detail.teams"), html.P(t(lang, "detail.no_teams"), className="muted"))
    orders = {o.get("team_id"): o for o in data.orders}
    names = team_names(data)
    rows = []
    for a in teams:
        team_id = str(a.get("team_id", ""))
        order = orders.get(team_id, {})
        status = "released" if a.get("released_at") else ("arrived" if a.get("arrived_at") else "dispatched")
        rows.append(
            html.Tr(
                [
                    html.Td(
                        [
                            html.Strong(names.get(team_id) or team_id),
                            html.Div(team_id, className="mono small muted"),
                        ],
                        className="team-cell",
                    ),
                    html.Td(t(lang, f"assignment.{status}")),
                    html.Td(clock(a.get("dispatched_at"), tz)),
                    html.Td(clock(a.get("arrived_at"), tz)),
                    html.Td(
                        t(lang, f"order.{order['status']}")
                        if has(lang, f"order.{order.get('status')}")
                        else str(order.get("status", "—"))
                    ),
                ]
            )
        )
    return _section(
        t(lang, "detail.teams"),
        html.Table(
            className="table",
            children=[
                html.Thead(
                    html.Tr(
                        [
                            html.Th(t(lang, h))
                            for h in (
                                "teams.team",
                                "teams.state",
                                "teams.dispatched",
                                "teams.arrived",
                                "teams.order",
                            )
                        ]
                    )
                ),
                html.Tbody(rows),
            ],
        ),
    )


def _promotion(lang: Lang, source: dict[str, Any]) -> html.Span | None:
    """Why triage made the alarm an incident, in the console's language (the command
    service says it in both); nothing for a source that did not come through triage, or
    an old record without the English."""
    said = source.get("triage_reason" if lang == "zh_CN" else "triage_reason_en")
    if not isinstance(said, str) or not said:
        return None
    return html.Span(said, className="muted small source-triage")


def sources(lang: Lang, who: Me, data: DetailData, tz: ZoneInfo) -> html.Section:
    inc = data.incident
    names = team_names(data)  # a team's report says the team by name
    items = inc.get("sources", [])
    may_split = who.may_on("incident.split", inc) and inc.get("is_open") and len(items) > 1
    rows = []
    for s in items:
        kind = str(s.get("kind", ""))
        rows.append(
            html.Li(
                className=f"source source-{kind}",
                children=[
                    html.Span(
                        t(lang, f"source.{kind}") if has(lang, f"source.{kind}") else kind, className="tag"
                    ),
                    html.Span(clock(s.get("ts"), tz), className="mono small"),
                    html.Span(words.alarm_summary(lang, s, names)),
                    html.Span(s.get("source", ""), className="muted small mono"),
                    _promotion(lang, s),
                    html.Button(
                        t(lang, "act.split"),
                        id={"type": ids.SPLIT, "alarm": str(s.get("alarm_id"))},
                        n_clicks=0,
                        className="btn btn-small btn-ghost",
                    )
                    if may_split
                    else None,
                ],
            )
        )
    merge = None
    if who.may_on("incident.merge", inc) and inc.get("is_open"):
        merge = html.Div(
            className="row",
            children=[
                dcc.Input(
                    id=ids.detail_input("merge"),
                    type="text",
                    placeholder=t(lang, "detail.merge_placeholder"),
                    className="input mono",
                    maxLength=64,
                ),
                html.Button(
                    t(lang, "act.merge"), id={"type": ids.ACT, "action": "merge"}, n_clicks=0, className="btn"
                ),
            ],
        )
    return _section(
        t(lang, "detail.sources", n=len(items)), html.Ul(className="sources", children=rows), merge
    )


@dataclass(frozen=True)
class RecordWords:
    """What the record names by id, in the operator's words and language: teams by name
    (with the id), the plan by its title, checklist items by their text."""

    teams: dict[str, str]
    plans: dict[str, str]
    items: dict[str, str]

    @classmethod
    def of(cls, lang: Lang, data: DetailData) -> RecordWords:
        plans = {str(p.get("id")): words.bilingual(lang, p, "title") for p in data.plans}
        act = (data.plan or {}).get("activation") or {}
        if act.get("plan_id"):
            plans[str(act["plan_id"])] = words.bilingual(lang, act, "title")
        items = {str(i.get("id")): words.bilingual(lang, i, "text") for i in act.get("checklist", [])}
        return cls(
            team_names(data), {k: v for k, v in plans.items() if v}, {k: v for k, v in items.items() if v}
        )


def _event_text(lang: Lang, e: dict[str, Any], record: RecordWords) -> str:
    d = e.get("data") or {}
    kind = e.get("kind", "")
    if kind == "state_changed":
        return f"{state_label(lang, str(d.get('from_state')))} → {state_label(lang, str(d.get('to_state')))}"
    if kind == "level_changed":
        return f"{ROMAN.get(d.get('from_level', 0), '?')} → {ROMAN.get(d.get('to_level', 0), '?')}"
    if kind in ("team_dispatched", "team_acknowledged", "team_en_route", "team_arrived", "team_released"):
        return team_text(record.teams, str(d.get("team_id", "")))
    if kind == "plan_activated":
        title = record.plans.get(str(d.get("plan_id")), t(lang, "plan.title"))
        return t(lang, "event.plan_text", title=title, version=d.get("plan_version"))
    if kind == "checklist_item_ticked":
        step = record.items.get(str(d.get("item_id")), t(lang, "plan.step"))
        return f"{step} {'✓' if d.get('done', True) else '✗'}"
    if kind == "note_added":
        return str(d.get("text", ""))
    if kind in ("opened", "source_linked"):
        src = d.get("source") or {}
        return words.alarm_summary(lang, src, record.teams) if src else words.incident_title(lang, d)
    if kind == "merged_into":
        return str(d.get("target_incident_id", ""))
    if kind == "absorbed":
        return str(d.get("from_incident_id", ""))
    if kind == "source_split":
        return str(d.get("to_incident_id", ""))
    if kind == "reclassified":
        return f"{_type_label(lang, str(d.get('from_type')))} → {_type_label(lang, str(d.get('to_type')))}"
    return ""


def event_reason(lang: Lang, event: dict[str, Any]) -> str:
    """An event's reason: a system-written one (``reason_code`` in its data) in the
    console's language; what a person typed, or an old record's text, as written."""
    data = event.get("data")
    if not isinstance(data, dict):
        data = {}
    code = data.get("reason_code")
    text = str(event.get("reason") or "")
    if not code:
        return text
    return reason_text(lang, {"code": code, "params": data.get("reason_args") or {}, "text": text}, "why")


def timeline(lang: Lang, data: DetailData, tz: ZoneInfo) -> html.Section:
    events = data.timeline
    record = RecordWords.of(lang, data)
    rows = []
    for e in reversed(events[-200:]):
        kind = str(e.get("kind", ""))
        rows.append(
            html.Li(
                className=f"event event-{kind}",
                children=[
                    html.Span(clock(e.get("at"), tz), className="mono small"),
                    html.Span(
                        t(lang, f"event.{kind}") if has(lang, f"event.{kind}") else kind,
                        className="event-kind",
                    ),
                    html.Span(_event_text(lang, e, record)),
                    html.Span(
                        words.actor(lang, e.get("actor"))
                        + (f" — {why}" if (why := event_reason(lang, e)) else ""),
                        className="muted small",
                    ),
                ],
            )
        )
    return _section(t(lang, "detail.timeline", n=len(events)), html.Ol(className="timeline", children=rows))


def _tab(lang: Lang, value: str, label: str, *children: Any) -> dcc.Tab:
    return dcc.Tab(
        label=label,
        value=value,
        className="detail-tab",
        selected_className="detail-tab--selected",
        children=[c for c in children if c is not None],
    )


def risk_panel(lang: Lang, data: DetailData) -> html.Div | None:
    """What the registries say about the place (docs/risk-and-shelters.md): each major
    risk source within reach and the response level that suggests, and for an
    evacuation the nearest open shelters with room and how far they are."""
    risk = data.risk if isinstance(data.risk, dict) else {}
    near = risk.get("near_major_risk") or []
    rows: list[Any] = [
        html.P(
            t(lang, "risk.near_major", name=n.get("name"), distance_m=n.get("distance_m")), className="notice"
        )
        for n in near
    ]
    level, suggested = risk.get("level"), risk.get("suggested_level")
    if near and isinstance(level, int) and isinstance(suggested, int) and suggested < level:
        rows.append(
            html.P(t(lang, "risk.suggested_level", level=ROMAN.get(suggested, suggested)), className="small")
        )
    if risk.get("evacuation"):
        shelters = risk.get("shelters") or []
        rows.append(html.H4(t(lang, "risk.evacuation")))
        rows.append(
            html.Ul(
                [
                    html.Li(
                        t(
                            lang,
                            "shelter.distance",
                            name=x.get("name"),
                            distance=words.distance_text(lang, float(x.get("distance_m") or 0)),
                            free=x.get("free"),
                        )
                    )
                    for x in shelters
                ]
            )
            if shelters
            else html.P(t(lang, "risk.no_shelter"), className="muted small")
        )
    return html.Div(className="detail-risk", id="detail-risk", children=rows) if rows else None


def _reports_label(lang: Lang, data: DetailData) -> str:
    """The reporting tab's label, with how many report clocks are overdue."""
    clocks = (data.reporting or {}).get("clocks") or []
    late = sum(1 for c in clocks if c.get("state") == "overdue")
    return t(lang, "upward.tab_overdue", n=late) if late else t(lang, "upward.tab")


def incident_detail(lang: Lang, who: Me, data: DetailData, tz: ZoneInfo) -> list[Any]:
    """One screen: the summary and the actions on top, the rest as tabs (the plan's
    checklist, teams, supplies, the record, the sources). The chosen tab is kept while
    the detail is drawn again (persistence) and from one incident to the next."""
    from dashboard.layout.reporting import reporting_tab  # it draws with this module's helpers

    inc = data.incident
    top: list[Any] = [summary(lang, inc, tz)]
    if inc.get("merged_into"):
        top.append(html.P(t(lang, "detail.merged_into", id=inc["merged_into"]), className="notice"))
    top.append(held_banner(lang, inc, tz))
    top.append(risk_panel(lang, data))
    top.append(actions(lang, who, inc))
    refusal = close_guard.applies(data.refusal, inc)
    if refusal is not None:
        work = close_guard.open_work(lang, inc, data.plan, data.reserve, team_names(data))
        top.append(close_guard.guard_panel(lang, who, refusal, work))
    is_open = bool(inc.get("is_open"))
    act = (data.plan or {}).get("activation") or {}
    pending = int(act.get("pending", 0) or 0)
    assigned = len(inc.get("teams", []))
    sources_n = len(inc.get("sources", []))
    tabs = [
        _tab(
            lang,
            "plan",
            t(lang, "detail.tab_plan_pending", n=pending) if pending else t(lang, "detail.tab_plan"),
            plan_section(lang, who, data, tz),
        ),
        _tab(
            lang,
            "teams",
            t(lang, "detail.tab_teams", n=assigned),
            teams_on_incident(lang, data, tz),
            team_recommendations(lang, who, data) if is_open else None,
        ),
        _tab(
            lang,
            "supplies",
            t(lang, "detail.tab_supplies"),
            stock_section(lang, who, data) if is_open else _held_stock(lang, data),
        ),
        _tab(
            lang,
            "reports",
            _reports_label(lang, data),
            reporting_tab(lang, who, inc, data.reporting, tz),
        ),
        _tab(
            lang,
            "timeline",
            t(lang, "detail.tab_timeline", n=len(data.timeline)),
            timeline(lang, data, tz),
        ),
        _tab(
            lang,
            "sources",
            t(lang, "detail.tab_sources", n=sources_n),
            sources(lang, who, data, tz),
            report_photos(lang, inc, team_names(data)),  # None without photos
            _section(t(lang, "chart.area_title"), data.area_chart) if data.area_chart is not None else None,
        ),
    ]
    return [
        html.Div(className="detail-top", children=[p for p in top if p is not None]),
        dcc.Tabs(
            id=ids.DETAIL_TABS,
            value="plan",
            persistence=True,
            persistence_type="memory",
            className="detail-tabs",
            parent_className="detail-tabs-parent",
            content_className="detail-tab-content",
            children=tabs,
        ),
    ]


def _held_stock(lang: Lang, data: DetailData) -> html.Section:
    """A closed incident's supplies: what it still holds (nothing to reserve any more)."""
    held = (data.reserve or {}).get("allocations") or []
    text = t(lang, "stock.held", n=len(held)) if held else t(lang, "stock.none_held")
    return _section(t(lang, "detail.stock"), html.P(text, className="muted"))
