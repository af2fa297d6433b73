"""The wall display's parts without a browser (the browser test is test_wall_browser.py):
its styles touch the wall only, its page indicators and unit board are on the wall only,
the browser gets its paging and overdue settings, and the console's styles and scripts
are served even when a wall display's request to /wall is the first the console gets."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.app import create_app
from dashboard.context import Console
from dashboard.layout import wall
from dashboard.layout.console import queue_panel
from wuwang.settings import Settings

ASSETS = Path(__file__).resolve().parents[2] / "dashboard" / "assets"


def ids_in(component: object) -> set[str]:
    found: set[str] = set()

    def walk(c: object) -> None:
        cid = getattr(c, "id", None)
        if isinstance(cid, str):
            found.add(cid)
        children = getattr(c, "children", None)
        for child in children if isinstance(children, list) else [children]:
            if child is not None and not isinstance(child, str):
                walk(child)

    walk(component)
    return found


def test_every_wall_style_is_scoped_to_the_wall() -> None:
    css = re.sub(r"/\*.*?\*/", "", (ASSETS / "03-wall.css").read_text(), flags=re.S)
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert selectors
    assert [s for s in selectors if not s.startswith(".console.wall")] == []


def test_the_queue_pages_on_the_wall_only() -> None:
    assert wall.QUEUE_PAGER in ids_in(queue_panel("zh_CN", wall=True))
    assert wall.QUEUE_PAGER not in ids_in(queue_panel("zh_CN"))
    board = ids_in(wall.unit_board("en"))
    assert {wall.UNIT_BOARD, wall.UNIT_COUNT, wall.UNIT_PAGER} <= board


def test_the_browser_gets_the_walls_rules() -> None:
    settings = Settings(
        demo_mode=True, dashboard_wall_page_s=7, dashboard_en_route_limit_s=600, command_ack_timeout_s=45
    )
    cfg = Console.create(settings).browser_config("wall")
    assert (cfg["wall_page_s"], cfg["en_route_limit_s"], cfg["ack_timeout_s"]) == (7, 600, 45)


def test_styles_and_scripts_are_served_from_the_first_request() -> None:
    """Dash walks assets/ on the first request to one of its own routes; a wall display
    opening /wall first after a restart got a page without the console's scripts."""
    app = create_app(Settings(demo_mode=True, dashboard_streets_file=None))
    scripts = {s.get("asset_path") for s in app.scripts.get_all_scripts()}  # type: ignore[no-untyped-call]
    styles = {s.get("asset_path") for s in app.css.get_all_css()}  # type: ignore[no-untyped-call]
    assert {"00-wuwang-core.js", "20-wuwang-live.js", "50-wuwang-wall.js"} <= scripts
    assert {"02-console.css", "03-wall.css"} <= styles
