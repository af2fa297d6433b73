"""Two command processes and two dashboard processes on one PostgreSQL, one Redis and one
broker (docs/scaling.md): what must hold when the console runs past one process.

- a dispatch race across the processes has exactly one winner (the database decides);
- a console connected to either command process sees every change, whichever process
  made it (the live channel is Redis pub/sub);
- a report ticket issued by one dashboard is good — once — at the other (tickets live in
  Redis), so the proxy in front needs no sticky sessions.

Every process is ``python -m command`` / ``python -m dashboard`` from this checkout,
started together (the start-up is most of the test's time).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.command.conftest import FIELD_TEAM, _seed_minimal_city
from tests.helpers_services import START_TIMEOUT_S, command_vars, service_env
from wuwang.endpoints import free_port, wait_for_port
from wuwang.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Pair:
    """Two processes of one service: ``urls[i]`` is process i."""

    urls: tuple[str, str]

    @classmethod
    def on(cls, ports: tuple[int, int]) -> Pair:
        return cls((f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"))


@contextmanager
def started(processes: list[tuple[str, dict[str, str], int]], logs: Path) -> Iterator[None]:
    """``python -m <module>`` for each (module, env, port), all at once; on leaving,
    every one is stopped (terminated, else killed)."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, (module, env, _port) in enumerate(processes):
            with (logs / f"{module}-{i}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", module],
                        cwd=REPO_ROOT,
                        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        for i, ((module, _env, port), proc) in enumerate(zip(processes, procs, strict=True)):
            try:
                wait_for_port("127.0.0.1", port, timeout=START_TIMEOUT_S, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                output = (logs / f"{module}-{i}.log").read_text(errors="replace")
                raise AssertionError(f"{module} {i} did not start: {exc}\n{output}") from None
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def two_of_each(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[tuple[Pair, Pair, Settings]]:
    """(commands, dashboards, settings): each dashboard talks to its own command process."""
    run = f"{os.getpid()}-{secrets.token_hex(3)}"
    settings = make_settings(account="command", alarm_stream=f"test:alarms:scale:{run}")
    assert settings.shared.database_url
    _seed_minimal_city(settings.shared.database_url)
    command_ports, dashboard_ports = (free_port(), free_port()), (free_port(), free_port())
    shared = service_env(settings, log_level="WARNING", ALARM_STREAM=settings.shared.alarm_stream)
    dashboard_secret = secrets.token_urlsafe(32)  # the processes behind one address share it
    processes = [
        (
            "command",
            {
                **shared,
                **command_vars(port, f"command-scale-{run}-{i}"),
                "COMMAND_SHARED_GROUP": f"cmdscale{run}".replace("-", ""),
            },
            port,
        )
        for i, port in enumerate(command_ports)
    ] + [
        (
            "dashboard",
            {
                **shared,
                "DASHBOARD_PORT": str(port),
                "DASHBOARD_COMMAND_URL": f"http://127.0.0.1:{command_port}",
                "DASHBOARD_SECRET": dashboard_secret,
            },
            port,
        )
        for port, command_port in zip(dashboard_ports, command_ports, strict=True)
    ]
    with started(processes, tmp_path):
        yield Pair.on(command_ports), Pair.on(dashboard_ports), settings


def call(url: str, method: str = "GET", body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """(status, JSON body or text) of one request; an HTTP error is an answer too."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw, kind = resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        status, raw, kind = err.code, err.read(), err.headers.get("content-type", "")
    text = raw.decode("utf-8", "replace")
    return status, json.loads(text) if "json" in kind and text else text


def login(command_url: str, user: str) -> str:
    status, body = call(f"{command_url}/auth/login", "POST", {"username": user, "password": "demo"})
    assert status == 200, body
    return str(body["access_token"])


def open_incident(command_url: str, token: str, title: str) -> dict[str, Any]:
    status, body = call(
        f"{command_url}/incidents",
        "POST",
        {"type": "fire", "level": 4, "title": title, "lat": 32.042, "lon": 112.144},
        token,
    )
    assert status == 201, body
    return dict(body)


def live(command_url: str, token: str) -> ClientConnection:
    """A console's live channel on one command process, past its snapshot."""
    ws = connect(command_url.replace("http://", "ws://") + "/ws", open_timeout=30)
    ws.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(ws.recv(timeout=30))["type"] == "snapshot"
    return ws


def changes_until(ws: ClientConnection, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(type, id) of the changes received until every one of ``wanted`` came."""
    seen: set[tuple[str, str]] = set()
    while not wanted <= seen:
        change = json.loads(ws.recv(timeout=30))
        seen.add((change.get("type"), change.get("id")))
    return seen


def test_two_command_and_two_dashboard_processes_share_one_truth(
    two_of_each: tuple[Pair, Pair, Settings],
) -> None:
    commands, dashboards, _settings = two_of_each
    tokens = [login(url, "operator1") for url in commands.urls]  # a session on each process
    consoles = [live(url, token) for url, token in zip(commands.urls, tokens, strict=True)]
    try:
        # Incidents opened on either process.
        incidents = [open_incident(url, tokens[i], f"火情 {i}") for i, url in enumerate(commands.urls)]

        # The race: 10 dispatches of one team, at once, half through each process.
        start = threading.Barrier(10)

        def attempt(i: int) -> int:
            incident = incidents[i % 2]
            start.wait()
            status, _ = call(
                f"{commands.urls[i % 2]}/incidents/{incident['id']}/dispatch",
                "POST",
                {"team_id": FIELD_TEAM, "expected_version": incident["version"]},
                tokens[i % 2],
            )
            return status

        with ThreadPoolExecutor(10) as pool:
            codes = Counter(pool.map(attempt, range(10)))
        assert codes == {201: 1, 409: 9}, codes

        # Every console saw both incidents (opened on different processes) and the team go out.
        wanted = {("incident", inc["id"]) for inc in incidents} | {("team", FIELD_TEAM)}
        for console in consoles:
            assert wanted <= changes_until(console, wanted)
    finally:
        for console in consoles:
            console.close()

    # A report ticket from either dashboard opens the report at the other, once.
    report = f"/report/incident/{incidents[0]['id']}.html"
    for issuer, opener in ((0, 1), (1, 0)):
        status, body = call(f"{dashboards.urls[issuer]}/report/ticket", "POST", {"path": report}, tokens[0])
        assert status == 200, body
        status, page = call(f"{dashboards.urls[opener]}{body['url']}")
        assert status == 200 and "<html" in page.lower(), (status, str(page)[:300])
        status, _ = call(f"{dashboards.urls[issuer]}{body['url']}")
        assert status == 401  # taken already, whichever process took it
