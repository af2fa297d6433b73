"""The append-only audit log: every state change and every refused authorisation
(refused logins counted and written in aggregate: :class:`RefusedLogins`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from command.security import Principal

log = logging.getLogger(__name__)

Outcome = Literal["ok", "denied", "error"]

#: What a NUL in the caller's input becomes in the log: PostgreSQL cannot store U+0000,
#: and a refusal must be recorded whatever the caller sent.
NUL_SHOWN_AS = "\u2400"  # ␀


def _storable(value: Any) -> Any:
    """``value`` with every NUL (in texts, keys, nested lists) shown as ␀."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_SHOWN_AS)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


async def record(
    conn: AsyncConnection[Any],
    actor: Principal | str,
    action: str,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: Outcome = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit row on ``conn`` — in the caller's transaction, so a state change
    and its audit record commit or vanish together."""
    who, role = (actor.user_id, str(actor.role)) if isinstance(actor, Principal) else (actor, None)
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_role, action, object_type, object_id, outcome, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            _storable(who),
            role,
            _storable(action),
            _storable(object_type),
            _storable(object_id),
            outcome,
            Jsonb(_storable(detail or {})),
        ),
    )


async def record_denied(
    pool: AsyncConnectionPool,
    actor: Principal | str,
    action: str,
    reason: str,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
) -> None:
    """A refused authorisation, in a transaction of its own (the request's is rolled back)."""
    async with pool.connection() as conn:
        await record(
            conn,
            actor,
            action,
            object_type=object_type,
            object_id=object_id,
            outcome="denied",
            detail={"reason": reason},
        )


@dataclass
class _Refusals:
    count: int
    first_at: datetime
    last_at: datetime


class RefusedLogins:
    """Refused logins counted in memory and written as one audit row per (user name,
    address, reason) every ``flush_s`` and when the service stops: a password-guessing
    burst of 1,500 requests is a handful of rows that say how many, not 1,500 rows.
    Bounded: past ``max_keys`` distinct keys (names sprayed at random), new ones are
    folded into one ``*`` row per address."""

    name = "refused-logins"

    def __init__(self, flush_s: float, max_keys: int = 10_000) -> None:
        self._flush_s = flush_s
        self._max_keys = max_keys
        self._pending: dict[tuple[str, str, str], _Refusals] = {}
        self._pool: AsyncConnectionPool | None = None
        self._task: asyncio.Task[None] | None = None
        self.rows_written = 0

    def count(self, user: str, address: str, reason: str, at: datetime | None = None) -> None:
        now = at or datetime.now(UTC)
        key = (user, address, reason)
        if key not in self._pending and len(self._pending) >= self._max_keys:
            key = ("*", address, reason)
        seen = self._pending.get(key)
        if seen is None:
            self._pending[key] = _Refusals(1, now, now)
        else:
            seen.count += 1
            seen.last_at = now

    @property
    def pending(self) -> int:
        return sum(r.count for r in self._pending.values())

    async def flush(self) -> None:
        if not self._pending or self._pool is None:
            return
        batch, self._pending = self._pending, {}
        try:
            async with self._pool.connection() as conn:
                for (user, address, reason), seen in batch.items():
                    await record(
                        conn,
                        user,
                        "auth.login",
                        outcome="denied",
                        detail={
                            "reason": reason,
                            "address": address,
                            "count": seen.count,
                            "first_at": seen.first_at.isoformat(),
                            "last_at": seen.last_at.isoformat(),
                        },
                    )
            self.rows_written += len(batch)
        except Exception:
            # PostgreSQL unreachable: keep the counts for the next flush (merged).
            log.warning("refused logins not written to the audit log yet", exc_info=True)
            for key, seen in batch.items():
                held = self._pending.get(key)
                if held is None:
                    self._pending[key] = seen
                else:
                    held.count += seen.count
                    held.first_at = min(held.first_at, seen.first_at)

    async def start(self, state: Any) -> None:
        self._pool = state.pool
        state.refused_logins = self
        self._task = asyncio.create_task(self._run(), name="refused-logins")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()
