"""What every server-side callback does first: find the token in the session store
and ask the command service whose it is. No identity is ever taken from the browser:
not a user id, not a role, not a team id — only the token, which the command service
verifies."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from dash import ClientsideFunction, Dash, ctx
from dash.exceptions import PreventUpdate

from dashboard.api import DEFAULT_RETRY_AFTER_S, ApiError, Me
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t


def token_of(session: Any) -> str | None:
    if isinstance(session, dict):
        token = session.get("token")
        if isinstance(token, str) and token:
            return token
    return None


async def who(console: Console, session: Any) -> Me | None:
    """The logged-in user, or None (no token, expired, refused, or the command
    service is unreachable — then nobody is trusted)."""
    try:
        return await console.api.me(token_of(session))
    except ApiError:
        return None


async def require(console: Console, session: Any) -> tuple[Me, str]:
    """The user and token, or stop this callback (nothing is updated)."""
    me = await who(console, session)
    token = token_of(session)
    if me is None or token is None:
        raise PreventUpdate
    return me, token


async def require_staff(console: Console, session: Any) -> tuple[Me, str]:
    me, token = await require(console, session)
    if not me.works_the_desk:
        raise PreventUpdate
    return me, token


def clicked() -> dict[str, Any] | str | None:
    """The id of the button that was really clicked, or None. Pattern-matching
    buttons are drawn again with n_clicks 0 whenever their panel is redrawn; that
    fires the callback too, and must not count as a click. A click that lands while
    a redraw is in flight comes in the same batch as the redrawn buttons' zeros, and
    not necessarily first: every trigger is looked at, not only the first."""
    for trig in ctx.triggered or ():
        if not trig.get("value"):
            continue
        prop_id = str(trig.get("prop_id", ""))
        key = prop_id.rsplit(".", 1)[0]
        if key.startswith("{"):
            try:
                found = json.loads(key)
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
        elif key:
            return key
    return None


def clientside(app: Dash, function: str | ClientsideFunction, *dependencies: Any, **options: Any) -> None:
    """``app.clientside_callback`` (untyped in dash) with a typed signature."""
    app.clientside_callback(function, *dependencies, **options)  # type: ignore[no-untyped-call]


def browser(name: str) -> ClientsideFunction:
    """A function of ``window.dash_clientside.wuwang`` (assets/20-wuwang-live.js)."""
    return ClientsideFunction(namespace="wuwang", function_name=name)


def drill_of(config: Any, me: Me) -> str | None:
    """The drill a drills-only user (a planner) works in, from the console's config store;
    None for everyone else, who works live."""
    exercise = config.get("exercise_id") if isinstance(config, dict) else None
    return str(exercise) if exercise and me.drills_only else None


def tz(console: Console) -> ZoneInfo:
    try:
        return ZoneInfo(console.settings.command.timezone)
    except Exception:  # a bad zone name must not break the page
        return ZoneInfo("Asia/Shanghai")


def error_text(lang: Lang, exc: ApiError) -> str:
    if exc.status == 0:
        return t(lang, "error.unreachable")
    if exc.unavailable:  # the command service's own detail is English and technical
        return t(lang, "error.unavailable", retry=exc.retry_after or DEFAULT_RETRY_AFTER_S)
    if exc.status == 401:
        return t(lang, "error.expired")
    if exc.status == 403:
        return t(lang, "error.forbidden", detail=exc.detail)
    if exc.status == 409:
        return t(lang, "error.conflict", detail=exc.detail)
    if exc.missing_route:
        return t(lang, "error.missing_route")
    return t(lang, "error.refused", status=exc.status, detail=exc.detail)


__all__ = [
    "browser",
    "clicked",
    "clientside",
    "drill_of",
    "error_text",
    "lang_of",
    "require",
    "require_staff",
    "token_of",
    "tz",
    "who",
]
