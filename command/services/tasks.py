"""The background tasks of the command service's parts (workers, feeds, links)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

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


class Periodic:
    """A worker of the command service that does one round of work every ``interval_s``
    seconds (expire quiet inbox rows, expire warnings, raise overdue acks): a failed round
    is logged and the next one comes on time; stopping cancels it (:func:`stop_task`).
    Subclasses name themselves and say what a round is (:meth:`round`, the number of
    things it changed, summed in :attr:`count`)."""

    name = "periodic"
    #: Whether the first round waits one interval (a round that writes for the whole
    #: city need not run at every start of every process).
    first_after_interval = False

    def __init__(self, interval_s: float = 30.0) -> None:
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.count = 0
        self.rounds = 0  # rounds done (a failed one not counted)

    async def start(self, state: Any) -> None:
        self._task = asyncio.create_task(self._run(state), name=self.name)

    async def stop(self) -> None:
        await stop_task(self._task)

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def round(self, state: Any) -> int:
        raise NotImplementedError

    async def _run(self, state: Any) -> None:
        if self.first_after_interval:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                self.count += await self.round(state)
                self.rounds += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s: a round failed; next in %.1f s", self.name, self.interval_s, exc_info=True)
            await asyncio.sleep(self.interval_s)
