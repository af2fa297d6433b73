"""The alarm inbox panel (告警收件箱) on the operator's desk, above the incident queue.

Sensor crossings and video alerts that no triage rule promoted wait here, folded per
source and category (docs/command-api-inbox.md): one row per inbox row — the category
in the operator's words and the place, the source, ×count, first and last seen, the
severity, a 频繁 (flapping) badge and the triage reason — with the acts on it: promote
(升级为事件), link to an open incident (关联到事件), dismiss with a reason (排除), one row at
a time or the ticked rows in bulk. A switch shows the review list (待复核, expired rows),
where the same acts work.

The rows are drawn by the server (callbacks/inbox.py) from ``GET /inbox`` with the
user's token, again whenever the live stream reports an ``inbox`` change (the browser
bumps ``inbox-tick``, assets/20-wuwang-live.js). Not on the wall display.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard import ids
from dashboard.api import Me
from dashboard.i18n import Lang, has, t
from dashboard.layout import data_attrs
from wuwang.places import crossing_place, district_at

VIEWS = ("open", "expired")
ROW_ID = re.compile(r"IB-[0-9a-f]{16}")
DISMISS_REASONS = ("false_alarm", "duplicate", "test", "other")
SEVERITIES = ("critical", "high", "medium", "low")
ACTIONS = ("promote", "link", "dismiss")


def may_act(who: Me, row: dict[str, Any]) -> bool:
    """Whether ``who`` gets the row's buttons: the action in the row's scope (live or
    its drill) as ``/auth/me`` lists it — today operators, commanders and admins on any
    row, planners on exercise rows only, field users never (docs/security.md "Who may do
    what"). The command service checks every act again."""
    return who.may_on("inbox.dismiss", row)


@cache
def _districts() -> tuple[Any, ...]:
    from wuwang.city import load_districts

    try:
        return tuple(load_districts())
    except Exception:  # the place falls back to the coordinates
        return ()


def district_of(lat: float, lon: float) -> str | None:
    """The name of the district the point lies in (None outside the city)."""
    found = district_at(lat, lon, _districts())
    return None if found is None else str(found.name)


def place_text(lang: Lang, row: dict[str, Any]) -> str:
    """Where, in the words of the incident titles (``wuwang.places.crossing_place``, one
    rule for both): the nearest crossing of named main roads and its district; the
    coordinates only outside the city; else 位置不明. A grid cell's id (r1269c4486) is a
    code, not a place: it is never shown."""
    lat, lon = row.get("lat"), row.get("lon")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        where = crossing_place(float(lat), float(lon), _districts(), lang)
        return where or f"{float(lat):.4f}, {float(lon):.4f}"
    return t(lang, "inbox.place_cell_only" if row.get("grid_cell_id") else "inbox.place_unknown")


def category_text(lang: Lang, category: Any) -> str:
    key = f"inbox.cat.{category}"
    return t(lang, key) if has(lang, key) else str(category or "")


def kind_text(lang: Lang, kind: Any) -> str:
    key = f"inbox.kind.{kind}"
    return t(lang, key) if has(lang, key) else str(kind or "")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def ago_text(lang: Lang, at: datetime | None, now: datetime) -> str:
    """ "3 分钟前" (the browser keeps it current: assets/20-wuwang-live.js, data-ago)."""
    if at is None:
        return "—"
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 60:
        return t(lang, "inbox.ago_now")
    if seconds < 3600:
        return t(lang, "inbox.ago_min", n=seconds // 60)
    return t(lang, "inbox.ago_hour", h=seconds // 3600, m=seconds % 3600 // 60)


def _reason(row: dict[str, Any], name: str, lang: Lang) -> str | None:
    reason = (row.get("reasons") or {}).get(name)
    if not isinstance(reason, dict):
        return None
    text = reason.get("zh" if lang == "zh_CN" else "en")
    return str(text) if text else None


def _when(label: str, lang: Lang, at: datetime | None, now: datetime, zone: ZoneInfo) -> html.Span:
    ms = int(at.timestamp() * 1000) if at else ""
    return html.Span(
        className="inbox-when",
        title=at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if at else None,
        children=[
            html.Span(label, className="muted"),
            " ",
            html.Span(ago_text(lang, at, now), className="ago", **data_attrs(ago=ms)),
        ],
    )


def row_item(
    lang: Lang, who: Me, row: dict[str, Any], now: datetime, zone: ZoneInfo, checked: bool = False
) -> html.Div:
    row_id = str(row.get("row_id"))
    severity = str(row.get("severity") or "low")
    source = str(row.get("source") or "")
    device = source.split("/", 1)[1] if "/" in source else source
    flapping = bool(row.get("flapping"))
    why = _reason(row, "review", lang) if row.get("state") == "expired" else _reason(row, "inbox", lang)
    head: list[Any] = []
    actor = may_act(who, row)
    if actor:
        head.append(
            dcc.Checklist(
                id={"type": ids.INBOX_CHECK, "row": row_id},
                options=[{"label": "", "value": row_id}],
                value=[row_id] if checked else [],
                className="inbox-check",
            )
        )
    head += [
        html.Span(
            t(lang, f"inbox.sev.{severity}"),
            className=f"sev sev-{severity}",
            title=t(lang, "inbox.severity", sev=t(lang, f"inbox.sev.{severity}")),
        ),
        html.Span(
            className="inbox-what",
            children=[
                html.Strong(category_text(lang, row.get("category"))),
                html.Span(" · "),
                html.Span(place_text(lang, row), className="inbox-place"),
            ],
        ),
        html.Span(t(lang, "inbox.count", n=row.get("count", 0)), className="inbox-count"),
    ]
    if flapping:
        head.append(
            html.Span(
                t(lang, "inbox.flapping"),
                className="badge badge-flapping",
                title=_reason(row, "flapping", lang),
            )
        )
    first, last = parse_time(row.get("first_seen")), parse_time(row.get("last_seen"))
    meta: list[Any] = [
        html.Span(f"{kind_text(lang, row.get('alarm_kind'))} · {device}", className="tag", title=device),
        _when(t(lang, "inbox.first"), lang, first, now, zone),
        _when(t(lang, "inbox.last"), lang, last, now, zone),
    ]
    if row.get("exercise_id"):
        meta.append(html.Span(t(lang, "app.exercise"), className="tag tag-exercise"))
    children: list[Any] = [
        html.Div(className="inbox-head", children=head),
        html.Div(className="inbox-meta", children=meta),
    ]
    if why:
        children.append(html.Div(why, className="inbox-reason"))
    if actor:
        children.append(
            html.Div(
                className="inbox-actions",
                children=[
                    html.Button(
                        t(lang, f"inbox.{action}"),
                        id={"type": ids.INBOX_ACT, "action": action, "row": row_id},
                        n_clicks=0,
                        className="btn btn-small" + (" btn-primary" if action == "promote" else ""),
                    )
                    for action in ACTIONS
                ],
            )
        )
    return html.Div(
        className=f"inbox-row sev-{severity}" + (" flapping" if flapping else ""),
        **data_attrs(
            inbox_row=row_id, source=source, count=row.get("count", 0), flapping="1" if flapping else "0"
        ),
        children=children,
    )


def rows_view(
    lang: Lang,
    who: Me,
    rows: list[dict[str, Any]],
    view: str,
    zone: ZoneInfo,
    checked: set[str] | None = None,
) -> list[Any]:
    if not rows:
        return [
            html.Div(
                t(lang, "inbox.review_empty" if view == "expired" else "inbox.empty"), className="muted empty"
            )
        ]
    now = datetime.now(UTC)
    return [row_item(lang, who, r, now, zone, r.get("row_id") in (checked or set())) for r in rows]


def action_form(lang: Lang) -> html.Div:
    """The one form for link and dismiss (a row's button or the bulk bar opens it)."""
    return html.Div(
        id=ids.INBOX_FORM,
        className="inbox-form",
        hidden=True,
        children=[
            html.Div(id=ids.INBOX_FORM_TITLE, className="inbox-form-title"),
            html.Div(
                id=ids.INBOX_LINK_PART,
                children=dcc.Dropdown(
                    id=ids.INBOX_INCIDENT,
                    options=[],
                    placeholder=t(lang, "inbox.pick_incident"),
                    clearable=False,
                    className="dropdown",
                ),
            ),
            html.Div(
                id=ids.INBOX_DISMISS_PART,
                children=[
                    html.Span(t(lang, "inbox.reason_label"), className="muted"),
                    dcc.RadioItems(
                        id=ids.INBOX_REASON,
                        inline=True,
                        className="inbox-reasons",
                        options=[
                            {"label": t(lang, f"inbox.reason.{r}"), "value": r} for r in DISMISS_REASONS
                        ],
                        value=None,
                    ),
                ],
            ),
            dcc.Input(
                id=ids.INBOX_NOTE,
                type="text",
                maxLength=1000,
                placeholder=t(lang, "inbox.note_placeholder"),
                className="input inbox-note",
                debounce=False,
            ),
            html.Div(
                className="row",
                children=[
                    html.Button(
                        t(lang, "inbox.confirm"),
                        id=ids.INBOX_CONFIRM,
                        n_clicks=0,
                        className="btn btn-primary btn-small",
                    ),
                    html.Button(
                        t(lang, "inbox.cancel"),
                        id=ids.INBOX_CANCEL,
                        n_clicks=0,
                        className="btn btn-ghost btn-small",
                    ),
                ],
            ),
        ],
    )


def bulk_bar(lang: Lang) -> html.Div:
    return html.Div(
        id=ids.INBOX_BULK,
        className="inbox-bulk",
        hidden=True,
        children=[
            html.Span(id=ids.INBOX_SELECTED, className="inbox-selected"),
            *[
                html.Button(
                    t(lang, f"inbox.{action}"),
                    id={"type": ids.INBOX_BULK_ACT, "action": action},
                    n_clicks=0,
                    className="btn btn-small" + (" btn-primary" if action == "promote" else ""),
                )
                for action in ACTIONS
            ],
        ],
    )


def inbox_panel(lang: Lang, who: Me) -> html.Section:
    """The panel (desk only). Field users never reach the desk."""
    return html.Section(
        className="inbox-panel",
        id=ids.INBOX_PANEL,
        children=[
            dcc.Store(id=ids.INBOX_TICK, data=0),
            dcc.Store(id=ids.INBOX_PENDING),
            dcc.Store(id=ids.INBOX_SHOWN),
            dcc.Store(id=ids.INBOX_DRAWN),
            dcc.Store(id=ids.INBOX_OPENED),
            dcc.Store(id=ids.INBOX_OPENED_APPLIED),
            html.Div(
                className="inbox-top",
                children=[
                    html.H2(
                        children=[
                            t(lang, "inbox.title"),
                            html.Span(id=ids.INBOX_COUNTS, className="count"),
                        ]
                    ),
                    html.Button(
                        t(lang, "inbox.select_all"),
                        id=ids.INBOX_SELECT_ALL,
                        n_clicks=0,
                        className="btn btn-ghost btn-small inbox-select-all",
                        hidden=not who.works_the_desk,
                    ),
                    dcc.RadioItems(
                        id=ids.INBOX_VIEW,
                        className="tabs inbox-views",
                        inline=True,
                        value="open",
                        options=[
                            {"label": t(lang, "inbox.view_open"), "value": "open"},
                            {"label": t(lang, "inbox.view_review"), "value": "expired"},
                        ],
                    ),
                ],
            ),
            html.Div(id=ids.INBOX_FEEDBACK, className="feedback inbox-feedback", role="status"),
            bulk_bar(lang),
            action_form(lang),
            html.Div(
                id=ids.INBOX_ROWS,
                className="inbox-rows",
                children=html.Div(t(lang, "common.loading"), className="muted empty"),
            ),
        ],
    )
