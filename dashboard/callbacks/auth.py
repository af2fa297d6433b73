"""Login, logout, the language, and the router that decides which page a user gets:
field users the field page, planners the console showing exercises only (the command
service gives them nothing else), everyone else the operator's desk or the wall."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

from dash import Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import geoserve, ids
from dashboard.api import ApiError, Me
from dashboard.callbacks.common import clientside, error_text, require_staff, token_of
from dashboard.context import Console
from dashboard.i18n import lang_of, t
from dashboard.layout.console import console_page, deferred_panels
from dashboard.layout.field import field_page
from dashboard.layout.login import login_page

log = logging.getLogger(__name__)


async def network_counts(console: Console) -> dict[str, dict[str, int]] | None:
    """Points per network (the legend); None when the registries cannot be read — the
    map then shows what the live stream brings and nothing static."""
    if not console.db.configured:
        return None
    try:
        return (await console.registries.layers()).counts
    except Exception:
        log.warning("the city's registries cannot be read: no static map layers", exc_info=True)
        return None


async def team_name(console: Console, me: Me, token: str) -> str | None:
    """The field user's team by name (its header): the roster's, None while unreachable."""
    if not me.team_id:
        return None
    try:
        team = await console.api.get(f"/teams/{quote(me.team_id, safe='')}", token)
    except ApiError:
        return None
    name = team.get("name") if isinstance(team, dict) else None
    return str(name) if name else None


async def field_urls(console: Console) -> dict[str, str] | None:
    """The static layers' signed URLs for the field page's map (None without a
    database): which of them it draws is the registry's (dashboard/layers.py) — the
    road names an order's address gives, basemap or not, and district outlines and the
    river when there is no basemap, so a team sees where its order is."""
    if await network_counts(console) is None:
        return None
    return geoserve.urls(console)


#: Renew a token once less than this is left of it (the tick runs every minute).
RENEW_BEFORE = timedelta(minutes=5)


def identity(session: Any) -> list[Any] | None:
    """Whose page a session draws; a renewed token for the same user keeps the page."""
    if not isinstance(session, dict) or not session.get("token"):
        return None
    return [session.get("user_id"), session.get("role"), session.get("team_id")]


def renewal_due(session: Any, now: datetime) -> bool:
    if not isinstance(session, dict) or not session.get("token"):
        return False
    try:
        expires = datetime.fromisoformat(str(session.get("expires_at")))
    except ValueError:
        return True  # unknown expiry: ask; the command service decides
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires - now < RENEW_BEFORE


def browser_address() -> str | None:
    """The address the browser's callback request came from (forwarded with a login)."""
    try:
        remote = ctx.remote
    except Exception:  # called outside a request (tests calling the function directly)
        return None
    return str(remote) if remote else None


def session_of(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": body["access_token"],
        # Shown to the user only; every callback asks the command service again.
        "user_id": body.get("user_id"),
        "role": body.get("role"),
        "team_id": body.get("team_id"),
        "expires_at": body.get("expires_at"),
    }


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.PAGE, "children"),
        Output(ids.RENDERED_FOR, "data"),
        Input(ids.URL, "pathname"),
        Input(ids.URL, "search"),
        Input(ids.SESSION, "data"),
        Input(ids.LANG, "data"),
        State(ids.SESSION_NOTE, "data"),
        State(ids.RENDERED_FOR, "data"),
    )
    async def route(
        path: str | None, search: str | None, session: Any, lang_value: Any, note: Any, rendered_for: Any
    ) -> Any:
        if ctx.triggered_id == ids.SESSION and rendered_for is not None and identity(session) == rendered_for:
            raise PreventUpdate  # only the token was renewed: the page stays as it is
        page = await draw(path, search, session, lang_value, note)
        # The login page is drawn for nobody: the next login must draw the user's page.
        return page, None if page.className == "login-page" else identity(session)

    async def draw(path: str | None, search: str | None, session: Any, lang_value: Any, note: Any) -> Any:
        lang = lang_of(lang_value or console.settings.dashboard.language)
        token = token_of(session)
        if token is None:
            return login_page(lang, t(lang, "login.expired") if note == "expired" else None)
        try:
            me = await console.api.me(token)
        except ApiError as exc:
            return login_page(lang, error_text(lang, exc))
        if me is None:
            return login_page(lang, t(lang, "login.expired"))
        if me.reports_from_the_field:
            return field_page(
                console,
                lang,
                me,
                await field_urls(console),
                await team_name(console, me, token),
            )
        if not me.works_the_desk:
            return login_page(lang, t(lang, "login.no_role"))
        wall = (path or "").rstrip("/").endswith("/wall")
        # ?layers=networks switches the five networks on, ?layers=all the grid too
        # (both are off by default: no clutter)
        layers = parse_qs((search or "").lstrip("?")).get("layers", [""])[0]
        counts = await network_counts(console)
        return console_page(
            console,
            lang,
            me,
            wall=wall,
            urls=geoserve.urls(console) if counts else None,
            counts=counts,
            networks_on=layers in ("networks", "all"),
            grid_on=layers == "all",
            deferred=True,
        )

    @app.callback(
        Output(ids.INBOX_SLOT, "children"),
        Output(ids.SIDE_SLOT, "children"),
        Input(ids.MAP_UP, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def panels(up: Any, session: Any, lang_value: Any) -> Any:
        """The desk's inbox and side tabs, once the browser says its map is drawn (the
        page came without them: layout/console.py, ``deferred``)."""
        if not up:
            raise PreventUpdate
        me, _token = await require_staff(console, session)
        return deferred_panels(lang_of(lang_value or console.settings.dashboard.language), me)

    @app.callback(
        Output(ids.SESSION, "data"),
        Output(ids.LOGIN_ERROR, "children"),
        Output(ids.SESSION_NOTE, "data"),
        Input(ids.LOGIN_BUTTON, "n_clicks"),
        Input(ids.LOGIN_PASSWORD, "n_submit"),
        State(ids.LOGIN_USER, "value"),
        State(ids.LOGIN_PASSWORD, "value"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def login(_clicks: Any, _submit: Any, username: Any, password: Any, lang_value: Any) -> Any:
        lang = lang_of(lang_value or console.settings.dashboard.language)
        if not _clicks and not _submit:
            raise PreventUpdate
        if (
            not isinstance(username, str)
            or not username.strip()
            or not isinstance(password, str)
            or not password
        ):
            return no_update, t(lang, "login.missing"), no_update
        try:
            body = await console.api.login(username.strip(), password, browser_address())
        except ApiError as exc:
            if exc.status == 401:
                return no_update, t(lang, "login.refused"), no_update
            if exc.status == 429:
                return no_update, t(lang, "login.rate_limited"), no_update
            return no_update, error_text(lang, exc), no_update  # unreachable, unavailable (503), …
        return session_of(body), html.Span(t(lang, "login.ok")), None

    @app.callback(
        Output(ids.SESSION, "data", allow_duplicate=True),
        Input(ids.TOKEN_TICK, "n_intervals"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    async def renew(_tick: Any, session: Any) -> Any:
        """Renew the token shortly before it runs out. A refusal (a shift is over, the
        account changed) leaves the session alone: it runs out and the page says so."""
        token = token_of(session)
        if token is None or not renewal_due(session, datetime.now(UTC)):
            raise PreventUpdate
        try:
            body = await console.api.refresh(token)
        except ApiError as exc:
            log.info("token not renewed: %s %s", exc.status, exc.detail)
            raise PreventUpdate from None
        renewed = session_of(body)
        if identity(renewed) != identity(session):
            raise PreventUpdate  # never swap users under a drawn page
        return renewed

    clientside(
        app,
        "function (session) { return window.dash_clientside.wuwang.renewToken(session); }",
        Output(ids.TOKEN_SYNC, "data"),
        Input(ids.SESSION, "data"),
        prevent_initial_call=True,
    )

    clientside(
        app,
        "function (value) { return window.dash_clientside.wuwang.setLang(value); }",
        Output(ids.LANG, "data"),
        Input(ids.LANG_SWITCH, "value"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.SESSION, "data", allow_duplicate=True),
        Input(ids.LOGOUT, "n_clicks"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    async def logout(clicks: Any, session: Any) -> Any:
        """End the session at the command service, not only in this tab: the token, its
        renewals and its sockets stop working (the browser's sockets stop when the
        session store empties: ``renewToken``)."""
        if not clicks:
            raise PreventUpdate
        token = token_of(session)
        if token is not None:
            try:
                await console.api.logout(token)
            except ApiError as exc:  # expired already, or unreachable: the tab forgets it anyway
                log.info("logout not confirmed by the command service: %s %s", exc.status, exc.detail)
        return None
