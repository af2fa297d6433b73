"""A command service told to stop stops: every part of the lifespan's shutdown is bounded.

A worker whose ``stop()`` never returns is left behind with a warning naming it; the
workers started before it are still stopped, and the lifespan exits (real PostgreSQL and
Redis, the app's own lifespan under a TestClient, as the route tests run it).
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from fastapi.testclient import TestClient

from command import app as command_app
from command.app import create_app, stop_within
from command.state import CommandState
from wuwang.settings import Settings

#: The bound the test sets: short, so a hang shows as a failure and not as a slow test.
BOUND_S = 0.5


class QuietWorker:
    """Stops at once; records that it was asked."""

    name = "quiet"

    def __init__(self) -> None:
        self.stopped = False

    async def start(self, state: CommandState) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def healthy(self) -> bool:
        return True


class StuckWorker:
    """Told to stop, waits for ever (a lost broker, a join on a task that never ends)."""

    name = "stuck"

    def __init__(self) -> None:
        self.asked_to_stop = False

    async def start(self, state: CommandState) -> None:
        pass

    async def stop(self) -> None:
        self.asked_to_stop = True
        await asyncio.Event().wait()

    def healthy(self) -> bool:
        return True


@pytest.mark.timeout(120)
def test_a_worker_that_never_stops_does_not_keep_the_app_from_shutting_down(
    command_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(command_app, "STOP_TIMEOUT_S", BOUND_S)
    quiet, stuck = QuietWorker(), StuckWorker()
    app = create_app(command_settings, workers=[lambda state: quiet, lambda state: stuck])
    with caplog.at_level(logging.WARNING, logger="command.app"):
        with TestClient(app) as client:
            assert client.app_state["command"].workers == [quiet, stuck]
            leaving = time.monotonic()
        took = time.monotonic() - leaving
    assert stuck.asked_to_stop and quiet.stopped  # stopped in reverse order, past the stuck one
    assert took < BOUND_S + 10, took  # the bound, plus closing the pool and Redis
    warned = [r for r in caplog.records if r.name == "command.app" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [
        f"worker stuck did not stop within {BOUND_S:.1f} s: left behind, shutdown goes on"
    ]


def test_stop_within_says_whether_a_stop_ended_and_passes_its_failure_on() -> None:
    async def ends() -> None:
        await asyncio.sleep(0)

    async def never() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise RuntimeError("broken stop")

    async def run() -> tuple[bool, bool, float]:
        began = time.monotonic()
        left = await stop_within("never", never(), 0.2)
        return await stop_within("ends", ends(), 5), left, time.monotonic() - began

    ended, left, took = asyncio.run(run())
    assert ended is True and left is False
    assert 0.2 <= took < 2, took
    with pytest.raises(RuntimeError, match="broken stop"):
        asyncio.run(stop_within("fails", fails(), 5))
