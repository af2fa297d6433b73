"""The wall display's own parts (the desk never draws them): the unit status board and
the page indicators of the lists that rotate (``assets/50-wuwang-wall.js`` fills both).

The wall's type scales with the viewport (``assets/03-wall.css``): nothing smaller than
1/60 of the screen's height, KPI figures at least 1/15, at 1080p, 4K and a 3×3 video wall.
"""

from __future__ import annotations

from dash import html

from dashboard.i18n import Lang, t
from dashboard.layout import data_attrs

#: The ids the browser code draws into (no Dash children: React never touches them).
UNIT_BOARD = "unit-board"
UNIT_COUNT = "unit-count"
QUEUE_PAGER = "queue-pager"
UNIT_PAGER = "unit-pager"


def pager(element_id: str) -> html.Div:
    """A list's page indicator ("第 2/4 页"), written by the browser as the list rotates."""
    return html.Div(id=element_id, className="pager", role="status")


def unit_board(lang: Lang) -> html.Aside:
    """Every team's name, status, time in that status and incident, grouped by status,
    with overdue states marked (unacknowledged orders, too long en route)."""
    return html.Aside(
        className="unit-panel",
        children=[
            html.H2(
                children=[
                    t(lang, "wall.units_title"),
                    html.Span(id=UNIT_COUNT, className="count"),
                    pager(UNIT_PAGER),
                ]
            ),
            html.Div(id=UNIT_BOARD, className="unit-board", **data_attrs(empty=t(lang, "live.connecting"))),
        ],
    )
