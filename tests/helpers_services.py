"""Real services started as ``python -m <service>`` from this checkout, for the tests
that need the process itself (its sockets, its log)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from wuwang.endpoints import wait_for_port
from wuwang.settings import REPO_ROOT, Settings

START_TIMEOUT_S = 90.0

MakeSettings = Callable[..., Settings]


@contextmanager
def running(
    module: str, env: Mapping[str, str], port: int, log: Path, args: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m module [args]`` from this checkout, until it listens on
    127.0.0.1:port; its output goes to ``log``. Stopped (terminated, else killed) on
    leaving."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_for_port("127.0.0.1", port, timeout=START_TIMEOUT_S, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            output = log.read_text(errors="replace")
            raise AssertionError(f"{module} did not start: {exc}\n{output}") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def service_env(settings: Settings, *, log_level: str, **extra: str) -> dict[str, str]:
    """The environment ``make demo`` gives a child, from the test's settings."""
    assert settings.shared.database_url and settings.shared.redis_url and settings.shared.mqtt_url
    return {
        "DEMO_MODE": "1",
        "DATABASE_URL": settings.shared.database_url,
        "REDIS_URL": settings.shared.redis_url,
        "MQTT_URL": settings.shared.mqtt_url,
        "MQTT_PROTOCOL": settings.shared.mqtt_protocol,
        "LOG_LEVEL": log_level,
        **extra,
    }


def command_vars(port: int, client_id: str) -> dict[str, str]:
    """A command service's own settings: on ``port``, its MQTT session forgotten on stop."""
    return {
        "COMMAND_PORT": str(port),
        "COMMAND_MQTT_CLIENT_ID": client_id,
        "COMMAND_MQTT_FORGET_SESSION_ON_STOP": "1",
    }


def ingest_vars(settings: Settings, metrics_port: int) -> dict[str, str]:
    """An ingest worker's own settings: the test's client id and group, metrics on ``metrics_port``."""
    return {
        "INGEST_METRICS_PORT": str(metrics_port),
        "INGEST_CLIENT_ID": settings.ingest.client_id,
        "INGEST_SHARED_GROUP": settings.ingest.shared_group or "",
        "INGEST_SESSION_EXPIRY_S": "60",
        "ALARM_STREAM": settings.shared.alarm_stream,
    }
