"""Stopping a part's task: a lost cancellation does not hang the shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from command.services.tasks import stop_task


async def _swallows_cancels(times: int, ticks: list[int]) -> None:
    """Like a retry loop around a read whose timeout turned a cancel into a timeout."""
    swallowed = 0
    while True:
        try:
            await asyncio.sleep(0.05)
            ticks.append(1)
        except asyncio.CancelledError:
            if swallowed == times:
                raise
            swallowed += 1


def test_a_task_that_loses_cancellations_is_cancelled_again_until_it_ends() -> None:
    async def main() -> bool:
        ticks: list[int] = []
        task = asyncio.create_task(_swallows_cancels(2, ticks))
        await asyncio.sleep(0.1)
        await stop_task(task, within_s=5.0)
        return task.cancelled()

    assert asyncio.run(main())


def test_a_task_that_does_not_end_in_time_is_left_behind_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> bool:
        ticks: list[int] = []
        task = asyncio.create_task(_swallows_cancels(5, ticks), name="stubborn")
        await asyncio.sleep(0.1)
        await stop_task(task, within_s=0.3)  # one cancel, swallowed: still running
        still_running = not task.done()
        await stop_task(task, within_s=10.0)  # the rest: it ends
        return still_running and task.cancelled()

    with caplog.at_level(logging.WARNING, logger="command.services.tasks"):
        assert asyncio.run(main())
    assert "stubborn did not end within 0.3 s" in caplog.text


def test_nothing_to_stop() -> None:
    async def main() -> None:
        await stop_task(None)
        finished = asyncio.create_task(asyncio.sleep(0))
        await finished
        await stop_task(finished)

    asyncio.run(main())
