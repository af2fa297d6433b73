"""The whole console for the browser tests and the benchmark (testkit, not the product):
PostgreSQL (a fresh database), Redis, the project's broker, the ingest service, the
command service and the dashboard, the last two served by uvicorn in threads on free
ports, exactly as ``python -m command`` and ``python -m dashboard`` serve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import uvicorn
from psycopg import sql

from command.app import create_app as create_command
from command.demo_reserve import load_demo_reserve
from command.users import demo_users
from dashboard.app import create_app as create_dashboard
from ingest.service import IngestService
from testkit.users import seed_users
from wuwang.city import City, CitySize, build_city, load_city
from wuwang.endpoints import Endpoints, free_port
from wuwang.settings import Settings

SMALL_CITY = CitySize(venues=40, devices=400, cameras=200, patrol_units=12, teams=24)


def database_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def clone_database(endpoints: Endpoints, template_url: str, name: str) -> str:
    admin = database_url(endpoints.database_url, "postgres")
    template = urlsplit(template_url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    return database_url(endpoints.database_url, name)


def drop_database(endpoints: Endpoints, name: str) -> None:
    with psycopg.connect(database_url(endpoints.database_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class ServerThread:
    """An ASGI app served by uvicorn in a thread (its own event loop)."""

    def __init__(self, app: Any, port: int, name: str) -> None:
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"{self.thread.name} did not start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.thread.name} did not start in {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@dataclass
class Stack:
    endpoints: Endpoints
    database_url: str
    redis_url: str
    command_url: str
    dashboard_url: str
    settings: Settings
    city: City
    mqtt_simulator_url: str
    mqtt_protocol: str
    command_settings: Settings
    command_port: int
    parts: list[Any] = field(default_factory=list)

    def stop_command(self) -> None:
        """Stop the command service (its clients' sockets drop)."""
        self.parts[1].stop()

    def restart_command(self) -> None:
        """Start the command service again on the same port (a new process would)."""
        self.parts[1] = ServerThread(create_command(self.command_settings), self.command_port, "command")
        self.parts[1].start()

    @property
    def team_ids(self) -> list[str]:
        return [t.id for t in self.city.teams]

    def login(self, user: str, password: str = "demo") -> str:  # noqa: S107 - the demo password
        req = urllib.request.Request(  # noqa: S310 - the stack's own http URL
            f"{self.command_url}/auth/login",
            method="POST",
            data=json.dumps({"username": user, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local test URL
            return str(json.loads(resp.read())["access_token"])

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        req = urllib.request.Request(  # noqa: S310 - the stack's own http URL
            f"{self.command_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local test URL
            raw = resp.read()
            return json.loads(raw) if raw else None


def seed(url: str, city: City, *, field_users: bool = True) -> None:
    """The city, the demo users (field users for every team when ``field_users``; one
    argon2 hash for them all, testkit/users.py — a 1,000-team benchmark city still skips
    them), a shift for every team covering the next day, and the demo reserve."""
    with psycopg.connect(url) as conn:
        load_city(conn, city)
        seed_users(conn, demo_users([t.id for t in city.teams] if field_users else []))
        now = datetime.now(UTC)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO team_shift (team_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                [(t.id, now - timedelta(hours=2), now + timedelta(hours=22)) for t in city.teams],
            )
        conn.commit()
        load_demo_reserve(conn)


@contextmanager
def running_stack(
    endpoints: Endpoints,
    template_url: str,
    broker_url_for: Any,
    protocol: str,
    broker_kind: str,
    *,
    size: CitySize = SMALL_CITY,
    redis_db: int = 11,
    redis_url: str | None = None,
    field_users: bool = True,
    **overrides: Any,
) -> Iterator[Stack]:
    """The whole console on free ports. ``redis_url``: a Redis of its own (pub/sub
    channels are shared by every database of one server, so a Redis shared with other
    test runs hears their live changes); otherwise database ``redis_db`` of the
    endpoints' Redis."""
    name = f"wuwang_console_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url = clone_database(endpoints, template_url, name)
    redis_url = redis_url or endpoints.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    city = build_city(size=size)
    seed(db_url, city, field_users=field_users)
    command_port, dashboard_port = free_port(), free_port()
    run_id = uuid.uuid4().hex[:8]
    common: dict[str, Any] = {
        "demo_mode": True,
        "database_url": db_url,
        "redis_url": redis_url,
        "mqtt_protocol": protocol,
        "alarm_stream": f"test:alarms:{run_id}",
        "aggregate_refresh_s": 2.0,
        "command_allowed_origins": [
            f"http://127.0.0.1:{dashboard_port}",
            f"http://localhost:{dashboard_port}",
        ],
        "dashboard_command_url": f"http://127.0.0.1:{command_port}",
        "command_mqtt_client_id": f"command-test-{run_id}",
        "command_mqtt_forget_session_on_stop": True,
        "command_recommend_from_base": True,  # teams without a live fix are ranked from their base
        "command_login_limit": "600/minute",  # the tests log the same users in often
        "ingest_client_id": f"ingest-console-{run_id}",
        # Shared-subscription groups of this stack's own: a broker hands a group's messages
        # to every member session, offline ones too, so a group shared with an earlier
        # run's leftover session would lose messages to it.
        "ingest_shared_group": f"ingest{run_id}" if broker_kind != "amqtt" else "",
        "command_shared_group": f"command{run_id}" if broker_kind != "amqtt" else "",
        **overrides,
    }
    ingest_settings = Settings(**{**common, "mqtt_url": broker_url_for("ingest")})
    command_settings = Settings(**{**common, "mqtt_url": broker_url_for("command")})
    dashboard_settings = Settings(**{**common, "mqtt_url": None})
    parts: list[Any] = []
    try:
        ingest = IngestService(ingest_settings, serve_metrics=False)
        ingest.start()
        parts.append(ingest)
        if not ingest.wait_ready(30):
            raise RuntimeError("ingest did not subscribe")
        command = ServerThread(create_command(command_settings), command_port, "command")
        command.start()
        parts.append(command)
        dashboard = ServerThread(create_dashboard(dashboard_settings).server, dashboard_port, "dashboard")
        dashboard.start()
        parts.append(dashboard)
        yield Stack(
            endpoints,
            db_url,
            redis_url,
            f"http://127.0.0.1:{command_port}",
            f"http://127.0.0.1:{dashboard_port}",
            dashboard_settings,
            city,
            broker_url_for("simulator"),
            protocol,
            command_settings,
            command_port,
            parts,
        )
    finally:
        for part in reversed(parts):
            with contextlib.suppress(Exception):  # tear-down goes on
                if isinstance(part, IngestService):
                    part.stop(forget_session=True)  # leave no persistent session behind
                else:
                    part.stop()
        drop_database(endpoints, name)
        redis.Redis.from_url(redis_url).flushdb()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextmanager
def exercise_runner(stack: Stack, *, workers: int = 1, poll_s: float = 0.3) -> Iterator[threading.Thread]:
    """The exercise runner (``python -m simulators exercises``) for ``stack``, in a
    thread: it claims the exercises the command API registers and publishes them with
    the simulator's MQTT account (the only one the broker lets publish exercise topics)."""
    from simulators.exercise_daemon import serve

    settings = stack.command_settings.updated(
        mqtt_url=stack.mqtt_simulator_url, dashboard_command_url=stack.command_url
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(settings, stop),
        kwargs={"workers": workers, "poll_s": poll_s},
        name="exercise-runner",
        daemon=True,
    )
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=30)
