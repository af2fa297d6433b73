"""What every callback needs: settings, the command API client, the read-only
database, the cached map layers. One :class:`Console` per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dashboard.api import CommandApi
from dashboard.data.db import ReadOnlyDatabase
from dashboard.data.registries import Registries
from dashboard.geo import map_datum
from dashboard.i18n import catalogue
from dashboard.layers import live_layers
from wuwang.settings import Settings, console_secret


def ws_url(settings: Settings) -> str:
    """The command service's /ws as the browser reaches it."""
    if settings.dashboard.command_ws_url:
        return settings.dashboard.command_ws_url
    parts = urlsplit(settings.dashboard.command_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


def type_names_zh() -> dict[str, str]:
    """Incident type → its zh name (``type.<type>`` of the zh-CN catalogue)."""
    return {k.removeprefix("type."): v for k, v in catalogue("zh_CN").items() if k.startswith("type.")}


@dataclass
class Console:
    settings: Settings
    api: CommandApi
    db: ReadOnlyDatabase
    registries: Registries
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, api: CommandApi | None = None) -> Console:
        db = ReadOnlyDatabase(settings.shared.database_url)
        return cls(
            settings=settings,
            api=api or CommandApi(settings.dashboard.command_url, console_secret=console_secret(settings)),
            db=db,
            registries=Registries(db, map_datum(settings), settings.dashboard.streets_file),
        )

    def browser_config(self, page: str) -> dict[str, Any]:
        """What assets/*.js needs (nothing secret: the token travels separately)."""
        s = self.settings
        return {
            "page": page,
            "ws_url": ws_url(s),
            "datum": map_datum(s),
            "call_target_s": s.dashboard.call_target_s,
            "arrival_target_s": s.dashboard.arrival_target_s,
            # the types' zh names, which start the titles the command service makes: the
            # queue says the type in the console's language (assets/15-wuwang-queue.js)
            "type_zh": type_names_zh(),
            "flush_ms": 250,
            "queue_limit": 200,
            # the wall display: page rotation and the unit board's overdue rules
            "wall_page_s": s.dashboard.wall_page_s,
            "ack_timeout_s": s.command.ack_timeout_s,
            "en_route_limit_s": s.dashboard.en_route_limit_s,
            # which map layer each live feed draws (dashboard/layers.py)
            "live_layers": live_layers(),
        }

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.db.aclose()
