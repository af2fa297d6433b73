"""Users of the console and the demo accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, Connection

from command.domain.vocabulary import Role
from command.security import hash_password

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
        NewUser("operator1", "值班员 张伟", Role.OPERATOR, DEMO_PASSWORD),
        NewUser("operator2", "值班员 李娜", Role.OPERATOR, DEMO_PASSWORD),
        NewUser("commander1", "指挥长 王强", Role.COMMANDER, DEMO_PASSWORD),
        NewUser("planner1", "演练策划 陈静", Role.PLANNER, DEMO_PASSWORD),
        NewUser("admin1", "系统管理员", Role.ADMIN, DEMO_PASSWORD),
    ]
    users += [NewUser(t, f"队伍 {t}", Role.FIELD, DEMO_PASSWORD, team_id=t) for t in field_team_ids]
    return users


_UPSERT = (
    "INSERT INTO app_user (id, display_name, role, team_id, password_hash) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, role = EXCLUDED.role,"
    " team_id = EXCLUDED.team_id, password_hash = EXCLUDED.password_hash"
)


def upsert_users(conn: Connection[Any], users: list[NewUser]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            _UPSERT,
            [(u.id, u.display_name, str(u.role), u.team_id, hash_password(u.password)) for u in users],
        )


async def upsert_users_async(conn: AsyncConnection[Any], users: list[NewUser]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            _UPSERT,
            [(u.id, u.display_name, str(u.role), u.team_id, hash_password(u.password)) for u in users],
        )
