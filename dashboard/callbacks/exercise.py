"""Exercise mode (演练模式): the banner, the scope of the live picture, the exercises
panel (list, start, play/pause/seek/speed/stop, purge) and the report links.

Every server callback asks the command service whose the token is first, and refuses
anyone who may not run exercises (operators: live only). The exercise a browser names
(the ``exercise-watch`` store, a button's id) is never trusted: it must match the id
pattern and the command service must return it to this user's token before it is
shown, scoped to or steered; the command service authorises each act again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError, Me
from dashboard.callbacks.common import clicked, clientside, error_text, require_staff, tz
from dashboard.context import Console
from dashboard.i18n import lang_of, t
from dashboard.layout import exercise as ex
from wuwang.exercises import MAX_SPEED, MIN_SPEED
from wuwang.settings import REPO_ROOT

log = logging.getLogger(__name__)

#: The drill runner's scenario files (docs/exercises.md; the command service checks the
#: name again when an exercise is registered).
SCENARIOS_DIR = REPO_ROOT / "simulators" / "scenarios"
_SCENARIO_CACHE_S = 30.0
_scenarios: dict[str, Any] = {"at": 0.0, "rows": [], "dir": None}


def scenario_files(directory: Path | None = None) -> list[dict[str, str]]:
    """``[{file, name}]`` of the scenario files (name from the file's ``name:``)."""
    now = time.monotonic()
    shipped = directory is None
    directory = directory or SCENARIOS_DIR
    if shipped and _scenarios["dir"] == directory and now - _scenarios["at"] < _SCENARIO_CACHE_S:
        return list(_scenarios["rows"])
    rows: list[dict[str, str]] = []
    for path in sorted(directory.glob("*.y*ml")) if directory.is_dir() else []:
        name = path.stem
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and isinstance(doc.get("name"), str):
                name = doc["name"]
        except (OSError, yaml.YAMLError):
            log.warning("scenario %s cannot be read", path.name)
            continue
        rows.append({"file": path.name, "name": name})
    if shipped:
        _scenarios.update(at=now, rows=rows, dir=directory)
    return rows


def parse_local(value: Any, zone: Any) -> datetime | None:
    """A time typed into the panel ("2026-11-23 19:30", ISO too), in the console's zone
    unless it says otherwise."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("/", "-")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=zone)


def new_exercise_body(
    kind: Any, scenario: Any, dataset: Any, start: Any, end: Any, speed: Any, zone: Any
) -> dict[str, Any] | str:
    """The POST /exercises body from the panel's form, or the i18n key of what is wrong."""
    try:
        pace = float(speed)
    except (TypeError, ValueError):
        return "exercise.err_speed"
    if not MIN_SPEED <= pace <= MAX_SPEED:
        return "exercise.err_speed"
    if kind == "scenario":
        if not isinstance(scenario, str) or not scenario:
            return "exercise.err_scenario"
        return {"kind": "scenario", "scenario": scenario, "speed": pace}
    if kind != "replay":
        return "exercise.err_kind"
    begin, finish = parse_local(start, zone), parse_local(end, zone)
    if (start and begin is None) or (end and finish is None):
        return "exercise.err_time"
    body: dict[str, Any] = {"kind": "replay", "speed": pace}
    dataset_id = ex.valid_exercise_id(dataset)
    if dataset_id:
        body["dataset_id"] = dataset_id
    elif begin is None or finish is None:
        return "exercise.err_window"
    if begin is not None:
        body["start"] = begin.isoformat()
    if finish is not None:
        body["end"] = finish.isoformat()
    if begin is not None and finish is not None and finish <= begin:
        return "exercise.err_window"
    return body


async def fetch_exercise(console: Console, token: str, ident: str | None) -> dict[str, Any] | None:
    """The exercise as the command service shows it to this token, or None."""
    if ident is None:
        return None
    try:
        body = await console.api.get(f"/exercises/{quote(ident, safe='')}", token)
    except ApiError as exc:
        if exc.status in (0, 401) or exc.status >= 500:
            raise
        return None
    return body if isinstance(body, dict) and body.get("id") == ident else None


async def require_runner(console: Console, session: Any) -> tuple[Me, str]:
    """Planners, commanders and admins; anyone else stops here."""
    me, token = await require_staff(console, session)
    if not me.may_run_exercises:
        raise PreventUpdate
    return me, token


def seek_marks(length: float | None) -> tuple[int, dict[int, str]]:
    top = int(length) if length and length > 0 else 3600
    return top, {0: "00:00:00", top: ex.hms(top)}


def register(app: Dash, console: Console) -> None:
    zone = tz(console)

    # --- the banner, the scope and the panel, refreshed -------------------------------------
    @app.callback(
        Output(ex.BANNER, "children"),
        Output(ex.BANNER, "hidden"),
        Output(ex.SCOPE, "data"),
        Output(ex.BANNER_INTERVAL, "disabled"),
        Output(ex.LIST, "children"),
        Output(ex.STATUS, "children"),
        Output(ex.CONTROLS, "style"),
        Output(ex.SEEK, "max"),
        Output(ex.SEEK, "marks"),
        Output(ex.REPORTS, "children"),
        Input(ex.WATCH, "data"),
        Input(ex.INTERVAL, "n_intervals"),
        Input(ex.BANNER_INTERVAL, "n_intervals"),
        Input(ex.TICK, "data"),
        Input(ids.LANG, "data"),
        State(ids.SESSION, "data"),
        State(ex.SCOPE, "data"),
    )
    async def refresh(
        watch: Any, _panel: Any, _banner: Any, _tick: Any, lang_value: Any, session: Any, scope: Any
    ) -> Any:
        me, token = await require_runner(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            chosen = await fetch_exercise(console, token, ex.valid_exercise_id(watch))
        except ApiError:
            raise PreventUpdate from None  # unreachable or expired: leave the screen as it is
        panel_tick = ctx.triggered_id != ex.BANNER_INTERVAL  # the banner's own tick leaves the panel
        rows: list[dict[str, Any]] | None = None
        listing: Any = no_update
        if panel_tick or (me.drills_only and chosen is None):
            try:
                got = await console.api.get("/exercises", token, limit=50)
                rows = [r for r in got if isinstance(r, dict)] if isinstance(got, list) else []
            except ApiError as exc:
                listing = html.P(error_text(lang, exc), className="muted")
        # A planner who has chosen nothing (a wall display, a new tab) follows the newest
        # running exercise: the command service listed it to this token.
        followed = False
        if chosen is None and me.drills_only and rows:
            active = next((r for r in rows if r.get("status") in ("running", "paused")), None)
            if active is not None and ex.valid_exercise_id(active.get("id")):
                chosen, followed = active, True
        visible = chosen is not None and chosen.get("status") != "purged"
        watched = str(chosen["id"]) if chosen is not None and visible else None
        exercise_mode = me.drills_only or (me.may_watch_exercises and watched is not None)
        new_scope = ex.scope_for(me, watched)
        banner = ex.banner_children(lang, chosen if visible else None, zone) if exercise_mode else []
        if chosen is not None:
            banner.append(
                html.Span(hidden=True, **{"data-exercise": chosen["id"], "data-status": chosen.get("status")})
            )
        polling = exercise_mode and (me.drills_only or (chosen or {}).get("status") in ex.ACTIVE)

        panel: list[Any] = [no_update] * 6
        if panel_tick:
            if rows is not None:
                listing = ex.exercise_rows(lang, me, rows, chosen["id"] if chosen else None, zone)
            _position, length = ex.span_of(chosen or {})
            top, marks = seek_marks(length)
            steered = chosen is not None and not followed  # controls act on a chosen exercise only
            status = ex.status_block(lang, chosen, zone)
            if followed:
                status.insert(0, html.P(t(lang, "exercise.following"), className="muted small"))
            panel = [
                listing,
                status,
                {} if steered else {"display": "none"},
                top,
                marks,
                ex.report_links(lang, "exercise", str(chosen["id"])) if steered and chosen else [],
            ]
        return (
            banner,
            not exercise_mode,
            new_scope if new_scope != scope else no_update,
            not polling,
            *panel,
        )

    # --- choosing an exercise (to steer; planners and admins also watch it) ---------------------
    @app.callback(
        Output(ex.WATCH, "data", allow_duplicate=True),
        Output(ex.FEEDBACK, "children", allow_duplicate=True),
        Input({"type": ex.CHOOSE, "id": ALL}, "n_clicks"),
        Input(ex.UNWATCH, "n_clicks"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def choose(_clicks: Any, _unwatch: Any, session: Any, lang_value: Any) -> Any:
        which = clicked()
        if which is None:
            raise PreventUpdate
        _me, token = await require_runner(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        if which == ex.UNWATCH:
            return None, t(lang, "exercise.unwatched")
        ident = ex.valid_exercise_id(which.get("id") if isinstance(which, dict) else None)
        try:
            chosen = await fetch_exercise(console, token, ident)
        except ApiError as exc:
            return no_update, html.Span(error_text(lang, exc), className="error")
        if chosen is None:
            return no_update, html.Span(t(lang, "exercise.not_found"), className="error")
        return chosen["id"], t(lang, "exercise.chosen_msg", id=chosen["id"])

    # --- starting one ---------------------------------------------------------------------------
    @app.callback(
        Output(ex.WATCH, "data", allow_duplicate=True),
        Output(ex.FEEDBACK, "children", allow_duplicate=True),
        Input(ex.NEW_BUTTON, "n_clicks"),
        State(ex.NEW_KIND, "value"),
        State(ex.NEW_SCENARIO, "value"),
        State(ex.NEW_DATASET, "value"),
        State(ex.NEW_START, "value"),
        State(ex.NEW_END, "value"),
        State(ex.NEW_SPEED, "value"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def start(
        n: Any,
        kind: Any,
        scenario: Any,
        dataset: Any,
        begin: Any,
        end: Any,
        speed: Any,
        session: Any,
        lang_value: Any,
    ) -> Any:
        if not n:
            raise PreventUpdate
        _me, token = await require_runner(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        body = new_exercise_body(kind, scenario, dataset, begin, end, speed, zone)
        if isinstance(body, str):
            return no_update, html.Span(t(lang, body), className="error")
        try:
            created = await console.api.post("/exercises", token, body)
        except ApiError as exc:
            return no_update, html.Span(error_text(lang, exc), className="error")
        ident = ex.valid_exercise_id(created.get("id") if isinstance(created, dict) else None)
        if ident is None:
            return no_update, html.Span(t(lang, "exercise.not_found"), className="error")
        return ident, t(lang, "exercise.started_msg", id=ident)

    # --- steering it: play, pause, stop, seek, speed, purge -------------------------------------
    @app.callback(
        Output(ex.FEEDBACK, "children", allow_duplicate=True),
        Output(ex.TICK, "data", allow_duplicate=True),
        Output(ex.WATCH, "data", allow_duplicate=True),
        Input({"type": ex.CONTROL, "action": ALL}, "n_clicks"),
        Input(ex.SEEK_BUTTON, "n_clicks"),
        Input(ex.SPEED_BUTTON, "n_clicks"),
        Input(ex.PURGE_CONFIRM, "submit_n_clicks"),
        State(ex.WATCH, "data"),
        State(ex.SEEK, "value"),
        State(ex.SPEED, "value"),
        State(ex.TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def steer(
        _c: Any,
        _s: Any,
        _v: Any,
        _p: Any,
        watch: Any,
        seek: Any,
        speed: Any,
        tick: Any,
        session: Any,
        lang_value: Any,
    ) -> Any:
        which = clicked()
        if which is None:
            raise PreventUpdate
        _me, token = await require_runner(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        ident = ex.valid_exercise_id(watch)
        if ident is None:
            return html.Span(t(lang, "exercise.choose_hint"), className="error"), no_update, no_update
        bump = (tick or 0) + 1 if isinstance(tick, int) else 1
        path = f"/exercises/{quote(ident, safe='')}"
        try:
            if which == ex.PURGE_CONFIRM:
                done = await console.api.delete(path, token)
                deleted = sum((done or {}).get("deleted", {}).values()) if isinstance(done, dict) else 0
                return t(lang, "exercise.purged", id=ident, n=deleted), bump, None
            if isinstance(which, dict) and which.get("action") in ("play", "pause", "stop"):
                body: dict[str, Any] = {"action": which["action"]}
            elif which == ex.SEEK_BUTTON:
                if not isinstance(seek, (int, float)) or seek < 0:
                    raise PreventUpdate
                body = {"action": "seek", "value": float(seek)}
            elif which == ex.SPEED_BUTTON:
                if not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
                    return html.Span(t(lang, "exercise.err_speed"), className="error"), no_update, no_update
                body = {"action": "speed", "value": float(speed)}
            else:
                raise PreventUpdate
            await console.api.post(f"{path}/control", token, body)
        except ApiError as exc:
            return html.Span(error_text(lang, exc), className="error"), bump, no_update
        return t(lang, f"exercise.sent.{body['action']}", id=ident), bump, no_update

    # --- the form's choices: scenario files, imported datasets ----------------------------------
    @app.callback(
        Output(ex.NEW_SCENARIO, "options"),
        Output(ex.NEW_SCENARIO, "value"),
        Output(ex.NEW_DATASET, "options"),
        Input(ids.SIDE_TABS, "value"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def choices(tab: Any, session: Any, lang_value: Any) -> Any:
        if tab != "exercises":
            raise PreventUpdate
        _me, token = await require_runner(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        files = scenario_files()
        scenarios = [{"label": f"{s['name']} ({s['file']})", "value": s["file"]} for s in files]
        try:
            imports = await console.api.get("/exercises", token, kind="import", limit=100)
        except ApiError:
            imports = []
        datasets = [{"label": t(lang, "exercise.recorded"), "value": ""}] + [
            {"label": f"{d.get('name') or d.get('id')} ({d.get('id')})", "value": d.get("id")}
            for d in (imports if isinstance(imports, list) else [])
            if ex.valid_exercise_id(d.get("id")) and d.get("status") != "purged"
        ]
        return scenarios, (scenarios[0]["value"] if scenarios else None), datasets

    # --- the incident detail's report links -----------------------------------------------------
    @app.callback(
        Output(ex.INCIDENT_REPORTS, "children"),
        Input(ids.SELECTED, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def incident_reports(selected: Any, session: Any, lang_value: Any) -> Any:
        await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        return ex.incident_reports(lang, ex.valid_incident_id(selected))

    # --- in the browser ------------------------------------------------------------------------
    clientside(
        app,
        "function (scope) { return window.dash_clientside.wuwang.applyExerciseScope(scope); }",
        Output(ex.SCOPE_APPLIED, "data"),
        Input(ex.SCOPE, "data"),
    )
    clientside(
        app,
        "function (tab) { return window.dash_clientside.wuwang.exercisePanel(tab); }",
        Output(ex.PANEL, "style"),
        Output(ex.INTERVAL, "disabled"),
        Input(ids.SIDE_TABS, "value"),
        prevent_initial_call=True,
    )
    clientside(
        app,
        "function (kind) { return window.dash_clientside.wuwang.exerciseForm(kind); }",
        Output(ex.NEW_SCENARIO_ROW, "style"),
        Output(ex.NEW_REPLAY_ROW, "style"),
        Input(ex.NEW_KIND, "value"),
    )
    clientside(
        app,
        "function (seconds) { return window.dash_clientside.wuwang.exerciseSeekLabel(seconds); }",
        Output(ex.SEEK_LABEL, "children"),
        Input(ex.SEEK, "value"),
    )
    clientside(
        app,
        "function (n) { return n ? true : window.dash_clientside.no_update; }",
        Output(ex.PURGE_CONFIRM, "displayed"),
        Input(ex.PURGE, "n_clicks"),
        prevent_initial_call=True,
    )
