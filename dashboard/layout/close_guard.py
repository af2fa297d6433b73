"""The close guard on the incident desk: when the command service refuses to resolve or
close an incident (409) because checklist items are open, teams are still out or
supplies are still reserved, the detail says what is open and gives a commander an
override form that asks for a reason (the command service audits it). Pure: the act
callback records the refusal (``dashboard.callbacks.close_guard``), this draws it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.api import ApiError, Me
from dashboard.i18n import Lang, t
from dashboard.layout import team_text

#: The acts the guard stands in front of.
GUARDED = ("resolve", "close")
OVERRIDE_INPUT = "override_reason"


@dataclass(frozen=True)
class OpenWork:
    """What still holds an incident open, each as a line the operator can read."""

    checklist: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    supplies: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.checklist or self.teams or self.supplies)


def open_work(
    lang: Lang,
    incident: dict[str, Any],
    plan: dict[str, Any] | None,
    reserve: dict[str, Any] | None,
    team_names: dict[str, str],
) -> OpenWork:
    """Open checklist items (that still apply), teams dispatched and not released, and
    stock reserved or issued and not yet returned or consumed."""
    act = (plan or {}).get("activation") or {}
    text_key = "text_zh" if lang == "zh_CN" else "text_en"
    checklist = tuple(
        str(item.get(text_key) or item.get("id"))
        for item in act.get("checklist", [])
        if not item.get("done") and item.get("applies", True)
    )
    teams = tuple(
        team_text(team_names, str(a.get("team_id")))
        for a in incident.get("teams", [])
        if not a.get("released_at")
    )
    supplies = []
    for a in (reserve or {}).get("allocations") or []:
        held = int(a.get("reserved") or 0) + int(a.get("outstanding") or 0)
        if held > 0:
            name = a.get("name_zh" if lang == "zh_CN" else "name_en")  # as the reserve board names items
            supplies.append(
                t(
                    lang,
                    "guard.supply_line",
                    item=name or a.get("item_code"),
                    n=held,
                    unit=a.get("unit") or "",
                    warehouse=a.get("warehouse_name") or a.get("warehouse_id") or "",
                )
            )
    return OpenWork(checklist, teams, tuple(supplies))


def refusal(action: str, exc: ApiError, meta: dict[str, Any]) -> dict[str, Any] | None:
    """A 409 on resolve or close, kept with the version it was decided on (a stale
    version's 409 is followed by a new version, so :func:`layout.close_guard.applies`
    drops it at once)."""
    if exc.status != 409 or action not in GUARDED:
        return None
    return {
        "incident_id": meta.get("id"),
        "version": meta.get("version"),
        "action": action,
        "detail": exc.detail,
    }


def applies(refusal: Any, incident: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded refusal if it was made on this incident as it is now: once the
    incident moved on (a new version), the operator decides again."""
    if not isinstance(refusal, dict) or refusal.get("action") not in GUARDED:
        return None
    if refusal.get("incident_id") != incident.get("id") or refusal.get("version") != incident.get("version"):
        return None
    return refusal


#: Lines shown of each kind of open work: the count says the rest, the tabs show it all.
SHOWN = 4


def _list(lang: Lang, key: str, lines: tuple[str, ...]) -> html.Div | None:
    if not lines:
        return None
    shown = [html.Li(line) for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(html.Li(t(lang, "guard.more", n=len(lines) - SHOWN), className="muted"))
    return html.Div(
        className="guard-group", children=[html.Strong(t(lang, key, n=len(lines))), html.Ul(shown)]
    )


def guard_panel(lang: Lang, who: Me, refusal: dict[str, Any] | None, work: OpenWork) -> html.Div | None:
    """The refusal in the command service's words, what is open, and — for those who may
    override — the reason field and the override button."""
    if refusal is None:
        return None
    action = str(refusal["action"])
    children: list[Any] = [
        html.Strong(t(lang, f"guard.refused_{action}")),
        html.P(str(refusal.get("detail") or ""), className="guard-detail"),
        _list(lang, "guard.open_checklist", work.checklist),
        _list(lang, "guard.open_teams", work.teams),
        _list(lang, "guard.open_supplies", work.supplies),
    ]
    if who.may_override_close:
        children.append(
            html.Div(
                className="row guard-override",
                children=[
                    dcc.Input(
                        id=ids.detail_input(OVERRIDE_INPUT),
                        type="text",
                        placeholder=t(lang, "guard.override_placeholder"),
                        className="input",
                        maxLength=1000,
                    ),
                    html.Button(
                        t(lang, f"guard.override_{action}"),
                        id={"type": ids.CLOSE_OVERRIDE, "action": action},
                        n_clicks=0,
                        className="btn btn-warning",
                    ),
                ],
            )
        )
    else:
        children.append(html.P(t(lang, "guard.ask_commander"), className="muted small"))
    return html.Div(className="close-guard", role="alert", children=children)
