"""Reads the alarms ingest raises (a Redis stream) and hands each to a handler.

A consumer group, so several command processes share the stream and a restarted one
misses nothing: an entry is acknowledged (XACK) only after the handler's transaction
committed; entries a dead process left pending are claimed after ``claim_idle_ms``.
Delivery is at least once: the handler is idempotent by ``alarm_id``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from command.services.tasks import stop_task
from wuwang.contract import Alarm, ContractError

if TYPE_CHECKING:
    from command.state import CommandState

log = logging.getLogger(__name__)

AlarmHandler = Callable[["CommandState", Alarm], Awaitable[None]]


class AlarmFeed:
    name = "alarms"

    def __init__(self, handle: AlarmHandler, *, batch: int = 100, claim_idle_ms: int = 30_000) -> None:
        self._handle = handle
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._task: asyncio.Task[None] | None = None
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.handled = 0
        self.rejected = 0
        self._ok = False

    async def start(self, state: CommandState) -> None:
        self._task = asyncio.create_task(self._run(state), name="alarm-feed")

    async def stop(self) -> None:
        await stop_task(self._task)

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done() and self._ok

    async def _ensure_group(self, redis: aioredis.Redis, stream: str, group: str) -> None:
        try:
            await redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _run(self, state: CommandState) -> None:
        stream, group = state.settings.shared.alarm_stream, state.settings.command.alarm_group
        delay = 0.2
        while True:
            try:
                await self._ensure_group(state.redis, stream, group)
                self._ok = True
                # First what this consumer had pending (a restart), then claims, then new.
                await self._consume(state, stream, group, "0", block=None)
                await self._claim_stale(state, stream, group)
                while True:
                    n = await self._consume(state, stream, group, ">", block=1000)
                    if n == 0:
                        await self._claim_stale(state, stream, group)
                    delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                self._ok = False
                log.warning("alarm feed interrupted; retrying in %.1f s", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _consume(
        self, state: CommandState, stream: str, group: str, start: str, block: int | None
    ) -> int:
        total = 0
        while True:
            reply: Any = await state.redis.xreadgroup(
                group, self._consumer, {stream: start}, count=self._batch, block=block
            )
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                await self._one(state, stream, group, entry_id, fields)
            total += len(entries)
            # Pending entries ("0") are read until none are left; new ones one batch a call.
            if start == ">" or not entries:
                return total

    async def _claim_stale(self, state: CommandState, stream: str, group: str) -> None:
        reply: Any = await state.redis.xautoclaim(
            stream,
            group,
            self._consumer,
            min_idle_time=self._claim_idle_ms,
            start_id="0-0",
            count=self._batch,
        )
        claimed = reply[1]
        for entry_id, fields in claimed:
            if fields:  # an entry deleted by MAXLEN trimming comes back empty
                await self._one(state, stream, group, entry_id, fields)
            else:
                await state.redis.xack(stream, group, entry_id)

    async def _one(
        self, state: CommandState, stream: str, group: str, entry_id: Any, fields: dict[Any, Any]
    ) -> None:
        raw = fields.get(b"payload") or fields.get("payload")
        try:
            alarm = Alarm.from_json(raw or b"")
        except ContractError as exc:
            # Never blocks the stream: logged with a truncated copy, acknowledged.
            self.rejected += 1
            log.warning(
                "unreadable alarm %s on %s: %s; payload %r",
                entry_id,
                stream,
                exc.reason,
                (raw or b"")[:200],
            )
            await state.redis.xack(stream, group, entry_id)
            return
        await self._handle(state, alarm)  # raises → not acked → redelivered
        await state.redis.xack(stream, group, entry_id)
        self.handled += 1
