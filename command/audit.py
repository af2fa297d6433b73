"""The append-only audit log: every state change and every refused authorisation."""

from __future__ import annotations

from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from command.security import Principal

Outcome = Literal["ok", "denied", "error"]


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
        (who, role, action, object_type, object_id, outcome, Jsonb(detail or {})),
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
