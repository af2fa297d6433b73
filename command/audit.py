"""The append-only audit log: every state change and every refused authorisation."""

from __future__ import annotations

from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from command.security import Principal

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
