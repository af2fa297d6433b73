"""The shell every page shares: the URL, the session and language stores, and the
page container the router fills."""

from __future__ import annotations

from dash import dcc, html

from dashboard import ids


def shell(token_check_s: float = 60.0) -> html.Div:
    return html.Div(
        id="shell",
        children=[
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            # The token lives in the tab (sessionStorage): closing the tab logs out, and a
            # callback receives it as State — no cookie, so no cross-site request forgery.
            dcc.Store(id=ids.SESSION, storage_type="session"),
            dcc.Store(id=ids.LANG, storage_type="local"),
            dcc.Store(id=ids.SESSION_NOTE, storage_type="memory"),
            # Tokens live 15 minutes; a wall display runs a whole shift. Once a minute the
            # token is renewed when it is near its end, without redrawing the page.
            dcc.Interval(id=ids.TOKEN_TICK, interval=int(token_check_s * 1000)),
            dcc.Store(id=ids.RENDERED_FOR, storage_type="memory"),
            dcc.Store(id=ids.TOKEN_SYNC, storage_type="memory"),
            html.Div(id=ids.PAGE, className="page"),
        ],
    )
