"""The background tasks of the command service's parts (workers, feeds, links)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

#: How often a cancelled task that is still running is cancelled again while we wait.
_RECANCEL_S = 0.5


async def stop_task(task: asyncio.Task[None] | None, *, within_s: float = 5.0) -> None:
    """Cancel ``task`` (if any) and wait until it has ended, at most ``within_s``.

    A cancellation can be lost: a library that wraps a read in a timeout may turn a
    cancel that arrives together with its own timeout into an ordinary timeout, and a
    loop that retries after timeouts then runs on (seen with Redis pub/sub reads under
    load: a test's shutdown waited 300 s). So the task is cancelled again until it ends;
    one that still runs after ``within_s`` is left behind with a warning."""
    if task is None or task.done():
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not task.done():
        task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.warning("task %s did not end within %.1f s of being cancelled", task.get_name(), within_s)
            return
        await asyncio.wait({task}, timeout=min(_RECANCEL_S, left))
    if not task.cancelled() and task.exception() is not None:
        log.warning("task %s ended with an error", task.get_name(), exc_info=task.exception())
