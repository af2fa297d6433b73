"""Users of the console, their sessions, and the demo accounts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, Connection

from command.domain.vocabulary import Role
from command.security import Principal, hash_password

DEMO_PASSWORD = "demo"  # noqa: S105 - listed in wuwang.settings.DEMO_SECRETS, demo mode only


@dataclass(frozen=True)
class NewUser:
    id: str
    display_name: str
    role: Role
    password: str
    team_id: str | None = None


def demo_users(field_team_ids: list[str]) -> list[NewUser]:
    users = [
        # A person's name only: the console says the role beside it, in its language.
        NewUser("operator1", "张伟", Role.OPERATOR, DEMO_PASSWORD),
        NewUser("operator2", "李娜", Role.OPERATOR, DEMO_PASSWORD),
        NewUser("commander1", "王强", Role.COMMANDER, DEMO_PASSWORD),
        NewUser("planner1", "陈静", Role.PLANNER, DEMO_PASSWORD),
        NewUser("admin1", "赵敏", Role.ADMIN, DEMO_PASSWORD),
    ]
    users += [NewUser(t, f"队伍 {t}", Role.FIELD, DEMO_PASSWORD, team_id=t) for t in field_team_ids]
    return users


_UPSERT = (
    "INSERT INTO app_user (id, display_name, role, team_id, password_hash) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, role = EXCLUDED.role,"
    " team_id = EXCLUDED.team_id, password_hash = EXCLUDED.password_hash"
)


#: Makes a password's stored hash: argon2 with a fresh salt for every user. The test
#: harness passes one that hashes each password once per process (testkit/users.py).
Hasher = Callable[[str], str]


def _rows(users: list[NewUser], hashed: Hasher) -> list[tuple[Any, ...]]:
    return [(u.id, u.display_name, str(u.role), u.team_id, hashed(u.password)) for u in users]


def upsert_users(conn: Connection[Any], users: list[NewUser], hashed: Hasher = hash_password) -> None:
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, _rows(users, hashed))


async def upsert_users_async(
    conn: AsyncConnection[Any], users: list[NewUser], hashed: Hasher = hash_password
) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(_UPSERT, _rows(users, hashed))


# Sessions (wuwang/migrations/0010_auth_sessions.sql). A token is only as good as its
# session: these are the checks every request and every open /ws make.

REVOKED = "session ended: log in again"
ACCOUNT_CHANGED = "the account changed: log in again"
NO_SESSION = "invalid token"


async def open_session(
    conn: AsyncConnection[Any], session_id: str, user_id: str, signed_in_at: datetime, ends_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO auth_session (id, user_id, signed_in_at, ends_at) VALUES (%s, %s, %s, %s)",
        (session_id, user_id, signed_in_at, ends_at),
    )
    # Sessions long over are of no use; a login is a good moment to forget a few.
    await conn.execute(
        "DELETE FROM auth_session WHERE id IN (SELECT id FROM auth_session"
        " WHERE ends_at < now() - interval '7 days' LIMIT 100)"
    )


async def revoke_session(conn: AsyncConnection[Any], session_id: str, reason: str) -> bool:
    cur = await conn.execute(
        "UPDATE auth_session SET revoked_at = now(), revoked_reason = %s"
        " WHERE id = %s AND revoked_at IS NULL",
        (reason, session_id),
    )
    return cur.rowcount > 0


async def revoke_user_sessions(conn: AsyncConnection[Any], user_id: str, reason: str) -> int:
    """End every session of a user (a password change, a lost device)."""
    cur = await conn.execute(
        "UPDATE auth_session SET revoked_at = now(), revoked_reason = %s"
        " WHERE user_id = %s AND revoked_at IS NULL",
        (reason, user_id),
    )
    return cur.rowcount


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    user_id: str
    role: str
    team_id: str | None
    disabled: bool
    revoked: bool
    ends_at: datetime


def standing_of(who: Principal, row: SessionRow | None, now: datetime) -> str | None:
    """Why ``who``'s token no longer counts, or None when it does (pure)."""
    if row is None or row.user_id != who.user_id:
        return NO_SESSION
    if row.revoked or now >= row.ends_at:
        return REVOKED
    if row.disabled or row.role != str(who.role) or row.team_id != who.team_id:
        return ACCOUNT_CHANGED
    return None


_SESSIONS = (
    "SELECT s.id, s.user_id, u.role, u.team_id, u.disabled, s.revoked_at IS NOT NULL, s.ends_at"
    " FROM auth_session s JOIN app_user u ON u.id = s.user_id WHERE s.id = ANY(%s)"
)


async def sessions(conn: AsyncConnection[Any], session_ids: list[str]) -> dict[str, SessionRow]:
    cur = await conn.execute(_SESSIONS, (session_ids,))
    return {r[0]: SessionRow(*r) for r in await cur.fetchall()}


async def session_standing(
    conn: AsyncConnection[Any], who: Principal, now: datetime | None = None
) -> str | None:
    """Why the token of ``who`` no longer counts (revoked, disabled, changed), or None."""
    if who.session_id is None:
        return NO_SESSION
    rows = await sessions(conn, [who.session_id])
    return standing_of(who, rows.get(who.session_id), now or datetime.now(UTC))
