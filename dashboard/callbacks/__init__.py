"""Callbacks, one module per feature. Each server-side callback receives the session
store as State and asks the command service who its token belongs to before doing
anything (:func:`dashboard.callbacks.common.require`); every call it then makes to the
command API carries that token, so the command service authorises each act."""

from __future__ import annotations

from dash import Dash

from dashboard.context import Console


def register_all(app: Dash, console: Console) -> None:
    from dashboard.callbacks import (
        auth,
        charts,
        close_guard,
        duty,
        exercise,
        inbox,
        incident,
        kpis,
        live,
        map,
        reporting,
        reserve,
        teams,
        warnings,
    )

    for module in (
        auth,
        live,
        map,
        incident,
        close_guard,
        inbox,
        kpis,
        teams,
        reserve,
        charts,
        exercise,
        warnings,
        duty,
        reporting,
    ):
        module.register(app, console)
