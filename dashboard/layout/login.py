"""The login page: the command service's users (operators, commanders, planners,
admins, and field teams by their team id)."""

from __future__ import annotations

from dash import dcc, html

from dashboard import ids
from dashboard.i18n import Lang, t


def lang_switch(lang: Lang) -> html.Div:
    return html.Div(
        className="lang-switch",
        children=dcc.RadioItems(
            id=ids.LANG_SWITCH,
            options=[{"label": "中文", "value": "zh_CN"}, {"label": "English", "value": "en"}],
            value=lang,
            inline=True,
        ),
    )


def login_page(lang: Lang, note: str | None = None) -> html.Div:
    return html.Div(
        className="login-page",
        children=[
            html.Div(
                className="login-box",
                children=[
                    html.H1(t(lang, "app.title"), className="login-title"),
                    html.P(t(lang, "login.subtitle"), className="login-subtitle"),
                    html.Label(t(lang, "login.username"), htmlFor=ids.LOGIN_USER),
                    dcc.Input(
                        id=ids.LOGIN_USER,
                        type="text",
                        autoComplete="username",
                        debounce=False,
                        className="input",
                        n_submit=0,
                    ),
                    html.Label(t(lang, "login.password"), htmlFor=ids.LOGIN_PASSWORD),
                    dcc.Input(
                        id=ids.LOGIN_PASSWORD,
                        type="password",
                        autoComplete="current-password",
                        className="input",
                        n_submit=0,
                    ),
                    html.Button(
                        t(lang, "login.submit"),
                        id=ids.LOGIN_BUTTON,
                        n_clicks=0,
                        className="btn btn-primary btn-block",
                    ),
                    html.Div(note or "", id=ids.LOGIN_ERROR, className="login-error", role="alert"),
                    html.P(t(lang, "login.hint"), className="login-hint"),
                    lang_switch(lang),
                ],
            )
        ],
    )
