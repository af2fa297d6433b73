"""Fixtures for the console's tests: a whole stack (testkit/stack.py) for the
browser tests, and Chromium through Playwright (Debian's /usr/bin/chromium; the
browser tests are skipped without it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.error
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from simulators.basemap import build_archive
from testkit.stack import Stack, running_stack
from wuwang.endpoints import embedded_redis, free_port

CHROMIUM = os.environ.get("WUWANG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=zh-CN",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


class Watched:
    """A page with every request, WebSocket and console error recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def foreign(self) -> list[str]:
        return [
            u
            for u in self.urls
            if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname not in LOCAL_HOSTS
        ]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Per module, not per session: Playwright's sync API keeps an event loop running in the
# main thread while it is open, and every later test that calls asyncio.run() would
# fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def desk(chromium: Any) -> Iterator[Watched]:
    """A desk-sized page (1920×1080, zh-CN), watched."""
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    yield Watched(ctx.new_page())
    ctx.close()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of the console tests' own: pub/sub channels span every database of a
    server, so on a shared Redis the stack would hear other test runs' live changes
    (and they would hear ours)."""
    workdir = tmp_path_factory.mktemp("console-redis")
    workdir.chmod(0o755)
    server = embedded_redis(workdir, free_port())
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture(scope="session")
def basemap_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's offline basemap, built for the tests (zooms 8–14: a few seconds), so
    the browser tests see the map as `make demo` shows it whatever is in .wuwang/."""
    path = tmp_path_factory.mktemp("basemap") / "basemap.mbtiles"
    build_archive(path, 8, 14)
    return path


def console_of(
    endpoints: Any, template_database: str, broker: Any, redis_url: str, basemap_file: Path
) -> AbstractContextManager[Stack]:
    """The browser tests' console stack on ``broker`` and the Redis at ``redis_url``."""
    return running_stack(
        endpoints,
        template_database,
        broker.url_for,
        broker.protocol,
        broker.kind,
        redis_url=redis_url,
        dashboard_token_check_s=1.0,  # token renewal is tested without waiting minutes
        command_inbox_expiry_interval_s=1.0,  # a quiet inbox row expires without waiting 30 s
        dashboard_basemap_file=basemap_file,
    )


@pytest.fixture(scope="session")
def console_stack(
    endpoints: Any, template_database: str, mqtt_broker: Any, private_redis: str, basemap_file: Path
) -> Iterator[Stack]:
    """The stack the browser tests of one worker share, one after another."""
    with console_of(endpoints, template_database, mqtt_broker, private_redis, basemap_file) as stack:
        yield stack


@pytest.fixture(scope="module")
def own_console_stack(
    endpoints: Any,
    template_database: str,
    module_broker: Any,
    basemap_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A console stack of the module's own, beside the worker's shared one if that is
    up: its own broker (both stacks' services subscribe to the same topics) and Redis
    server (pub/sub spans a server), so neither hears the other."""
    workdir = tmp_path_factory.mktemp("own-console-redis")
    workdir.chmod(0o755)
    server = embedded_redis(workdir, free_port())
    server.start()
    try:
        with console_of(
            endpoints, template_database, module_broker, f"redis://127.0.0.1:{server.port}/0", basemap_file
        ) as stack:
            yield stack
    finally:
        server.stop()


def clear_open_incidents(stack: Stack, token: str) -> None:
    """Cancel every open live incident of the shared stack: a test that counts what the
    wall shows starts from an empty queue, and leaves none of its own for the next
    test's correlation to join (the stack is shared by all the browser tests)."""
    for inc in stack.api("GET", "/incidents?open=true&limit=1000", token):
        if inc.get("exercise_id"):
            continue
        # teams still out, or moved on meanwhile: it is left as it is
        with contextlib.suppress(urllib.error.HTTPError):
            stack.api(
                "POST",
                f"/incidents/{inc['id']}/cancel",
                token,
                {"expected_version": inc["version"], "reason": "测试结束，清理"},
            )


@pytest.fixture
def clean_desk(console_stack: Stack) -> Iterator[None]:
    """An empty live queue before the test and after it, and every team back on duty."""
    token = console_stack.login("commander1")
    clear_open_incidents(console_stack, token)
    yield
    clear_open_incidents(console_stack, token)
    for team_id in console_stack.team_ids:
        with contextlib.suppress(urllib.error.HTTPError):  # a team kept off duty stays so
            console_stack.api("POST", f"/teams/{team_id}/status", token, {"status": "available"})
