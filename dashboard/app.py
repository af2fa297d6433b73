"""``create_app(settings)``: the Dash application (FastAPI backend, served by uvicorn).

Everything the browser loads is served from here — Dash's and dash-leaflet's bundles,
``assets/`` (styles, the font stack, the live and field scripts) — and a Content
Security Policy tells the browser to load nothing from anywhere else: the console
works air-gapped. The only other origins allowed are the command service's WebSocket
and, when configured, the deployment's tile service (the demo's own basemap is served
here, ``dashboard.tiles``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from dash import Dash
from fastapi import FastAPI, Request, Response
from starlette.middleware.gzip import GZipMiddleware

from dashboard import field_api, geoserve, photo_proxy, report_proxy, tiles
from dashboard.api import CommandApi
from dashboard.callbacks import register_all
from dashboard.context import Console, ws_url
from dashboard.i18n import t
from dashboard.layout.shell import shell
from dashboard.tiles import VECTOR_GRID_ASSET, tile_kind
from wuwang.bodylimit import BodyLimit
from wuwang.redact import redact_tokens_in_logs
from wuwang.settings import Settings, dashboard_secret

ASSETS = Path(__file__).resolve().parent / "assets"

INDEX = """<!DOCTYPE html>
<html lang="zh-CN">
  <head>
    {%metas%}
    <title>{%title%}</title>
    {%favicon%}
    {preload}
    {%css%}
  </head>
  <body class="theme-dark">
    <noscript>{noscript}</noscript>
    {%app_entry%}
    <footer>
      {%config%}
      {%scripts%}
      {%renderer%}
    </footer>
  </body>
</html>"""


#: What the renderer asks for once its scripts have run (the layout, the callbacks) and
#: the chunks the desk's first page needs (its map layers, the language and tab
#: switches): fetched while the bundles load instead of one after the other.
PRELOAD_FETCH = ("_dash-layout", "_dash-dependencies")
PRELOAD_SCRIPTS = (
    "_dash-component-suites/dash_leaflet/async-GeoJSON.js",
    # the warning's drawing tools on the desk's map (asked for only once the map mounts)
    "_dash-component-suites/dash_leaflet/async-EditControl.ts.js",
    "_dash-component-suites/dash/dcc/async-dropdown.js",
    "_dash-component-suites/dash/dcc/async-slider.js",
)
GZIP_LEVEL = 1
#: Assets whose URL carries their modification time (``?m=``) never change under it.
FINGERPRINTED = "public, max-age=31536000, immutable"


def preload_links(prefix: str) -> str:
    """``<link rel=preload>`` for :data:`PRELOAD_FETCH` and :data:`PRELOAD_SCRIPTS`; the
    fetches are made as the renderer makes them (CORS mode, same-origin credentials), so
    its requests are answered from them."""
    fetches = [f'<link rel="preload" href="{prefix}{path}" as="fetch" crossorigin>' for path in PRELOAD_FETCH]
    scripts = [f'<link rel="preload" href="{prefix}{path}" as="script">' for path in PRELOAD_SCRIPTS]
    return "\n    ".join(fetches + scripts)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings, script_hashes: list[str]) -> str:
    """Load only from here; talk only to here and the command service's WebSocket;
    images also from the basemap (when one is configured) and data: URLs (photos);
    vector tiles are fetched, so their service is talked to as well."""
    connect = ["'self'", _origin(ws_url(settings))]
    images = ["'self'", "data:", "blob:"]
    if settings.dashboard.tile_url:
        tiles = _origin(settings.dashboard.tile_url.replace("{s}", "a"))
        images.append(tiles)
        if tile_kind(settings) == "vector":
            connect.append(tiles)
    scripts = ["'self'", "'unsafe-eval'", *script_hashes]  # the hashes come quoted
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {' '.join(scripts)}",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {' '.join(images)}",
            "font-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'self'",
            "form-action 'self'",
        ]
    )


def create_app(settings: Settings, *, api: CommandApi | None = None) -> Dash:
    """The console for ``settings`` (``api`` replaces the command client in tests)."""
    console = Console.create(settings, api)
    app = Dash(
        __name__,
        backend="fastapi",
        title=t(settings.dashboard.language, "app.title"),
        assets_folder=str(ASSETS),
        # loaded by assets/11-wuwang-basemap.js only for a vector basemap
        assets_ignore=VECTOR_GRID_ASSET,
        serve_locally=True,
        suppress_callback_exceptions=True,
        update_title=None,  # type: ignore[arg-type]  # None: leave the title alone
        meta_tags=[
            {"name": "viewport", "content": "width=device-width, initial-scale=1"},
            {"name": "theme-color", "content": "#0b1220"},
        ],
    )
    app.index_string = INDEX.replace("{noscript}", t(settings.dashboard.language, "app.noscript")).replace(
        "{preload}", preload_links(app.config.requests_pathname_prefix)
    )
    server = cast(FastAPI, app.server)
    # Signs the per-page-load tokens Dash hands out (dash._callback_signing): every
    # dashboard process must share it, and outside demo mode it must be a real secret.
    server.secret_key = dashboard_secret(settings)  # type: ignore[attr-defined]
    server.state.wuwang_console = console
    server.router.lifespan_context = _lifespan(console, server.router.lifespan_context)
    app.layout = shell(settings.dashboard.token_check_s)
    register_all(app, console)
    # Dash finds assets/ (styles, scripts) on its first request to one of its own routes;
    # a first request to any other page (a wall display reopening /wall after a restart)
    # was served without them. Set the server up now instead.
    app._setup_server()  # type: ignore[no-untyped-call]  # dash is untyped here
    # gzip for everything the page loads: the bundles and the map's files are a quarter
    # of their size on the wire. Level 1, not Dash's 9 (``compress=True``): each
    # response is compressed as it is sent, on the server's one event loop, and level 9
    # takes four times the CPU for 17 % fewer bytes (docs/benchmarks.md, "Console").
    server.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=GZIP_LEVEL)
    # Bodies are limited before anything reads them (docs/security.md, "auth").
    server.add_middleware(BodyLimit, default=settings.dashboard.body_limit_bytes)
    # Report links carry a one-time ticket in their query string: never in the access log.
    redact_tokens_in_logs()
    field_api.mount(server, console)
    geoserve.mount(server, console)
    tiles.mount(server, settings)
    report_proxy.mount(server, console)
    photo_proxy.mount(server, console)

    policy: dict[str, str] = {}
    assets_path = f"{app.config.requests_pathname_prefix}assets/"

    @server.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if request.url.path.startswith(assets_path) and request.query_params.get("m"):
            response.headers["Cache-Control"] = FINGERPRINTED
        if response.headers.get("content-type", "").startswith("text/html") and (
            "content-security-policy" not in response.headers  # a report's own (dashboard/report_proxy.py)
        ):
            if "csp" not in policy:
                policy["csp"] = content_security_policy(settings, list(app.csp_hashes()))
            response.headers["Content-Security-Policy"] = policy["csp"]
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
        return response

    return app


def _lifespan(console: Console, inner: Any) -> Any:
    """Dash's own lifespan, then close the console's pools on shutdown (same loop)."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            try:
                yield state
            finally:
                await console.aclose()

    return lifespan


def console_of(app: Dash) -> Console:
    console = cast(FastAPI, app.server).state.wuwang_console
    assert isinstance(console, Console)
    return console
