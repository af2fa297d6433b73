"""Inbound warnings (外部预警) at the edge: CAP 1.2 from other agencies stored in the
``inbound_warning`` table (migration 0018), Update/Cancel linked to what they reference,
and the active ones for the map. Reading and the rules are command/cap_schema.py and
command/domain/cap.py; the HTTP route and ``python -m command cap import`` both call
:func:`import_cap`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from command import audit
from command.cap_schema import read_cap
from command.domain import cap
from command.domain.warnings import Level
from command.security import Principal

_COLUMNS = (
    "id, sender, identifier, sent, status, msg_type, refs, event, categories, severity, urgency, certainty,"
    " level, headline, onset, expires, infos, areas, state, replaced_by, received_at, received_by"
)


@dataclass(frozen=True)
class Imported:
    """One file's outcome: the stored row (as the API shows it), whether it is new, and
    the ids of the earlier warnings it updated or cancelled."""

    warning: dict[str, Any]
    created: bool
    retired: list[int]


def _body(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("sent", "onset", "expires", "received_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    out["categories"] = list(out["categories"])
    # the standard colour of its level (蓝/黄/橙/红), for the map; none when the agency's
    # severity gave no level (Unknown)
    out["colour"] = Level(out["level"]).colour if out["level"] else None
    return out


async def _by_key(conn: AsyncConnection[Any], sender: str, identifier: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM inbound_warning WHERE sender = %s AND identifier = %s",
            (sender, identifier),
        )
        return await cur.fetchone()


async def store(conn: AsyncConnection[Any], found: cap.Inbound, raw: bytes, who: Principal | str) -> Imported:
    """Insert the warning and retire what it references, in the caller's transaction.
    The same message twice (sender and identifier) is stored once: ``created`` False."""
    alert = found.alert
    cited = alert.references
    first = alert.infos[0]
    areas: list[dict[str, object]] = []
    for info in alert.infos:  # the zh and en blocks usually repeat one area: keep it once
        for area in info.areas:
            shape = cap.area_json(area)
            if not any((a["polygons"], a["circles"]) == (shape["polygons"], shape["circles"]) for a in areas):
                areas.append(shape)
    refs = [{"sender": r.sender, "identifier": r.identifier, "sent": cap.cap_time(r.sent)} for r in cited]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO inbound_warning (sender, identifier, sent, status, msg_type, refs, event,"
            " categories, severity, urgency, certainty, level, headline, onset, expires, infos, areas, state,"
            f" cap_xml, received_by) VALUES ({', '.join(['%s'] * 20)})"
            f" ON CONFLICT (sender, identifier) DO NOTHING RETURNING {_COLUMNS}",
            (
                alert.sender,
                alert.identifier,
                alert.sent,
                alert.status,
                alert.msg_type,
                Jsonb(refs),
                first.event,
                list(first.categories),
                first.severity,
                first.urgency,
                first.certainty,
                found.level,
                first.headline,
                found.onset,
                found.expires,
                Jsonb([cap.info_json(i) for i in alert.infos]),
                Jsonb(areas),
                found.state,
                raw,
                who.user_id if isinstance(who, Principal) else who,
            ),
        )
        row = await cur.fetchone()
    if row is None:
        existing = await _by_key(conn, alert.sender, alert.identifier)
        assert existing is not None  # the conflict was with it
        return Imported(_body(existing), created=False, retired=[])
    retired: list[int] = []
    if found.retires is not None and alert.references:
        async with conn.cursor() as cur:
            await cur.execute(
                "UPDATE inbound_warning SET state = %s, replaced_by = %s"
                " WHERE (sender, identifier) IN (SELECT r->>'sender', r->>'identifier'"
                "   FROM jsonb_array_elements(%s::jsonb) AS r)"
                " AND state = 'active' AND id <> %s RETURNING id",
                (found.retires, row["id"], Jsonb(refs), row["id"]),
            )
            retired = sorted(r[0] for r in await cur.fetchall())
    await audit.record(
        conn,
        who,
        "inbound_warning.import",
        object_type="inbound_warning",
        object_id=str(row["id"]),
        detail={
            "sender": alert.sender,
            "identifier": alert.identifier,
            "msg_type": alert.msg_type,
            "status": alert.status,
            "retired": retired,
        },
    )
    return Imported(_body(row), created=True, retired=retired)


async def import_cap(conn: AsyncConnection[Any], raw: bytes, who: Principal | str) -> Imported:
    """Read (CapRefused with the reason when unreadable or invalid), then store."""
    found = cap.inbound(read_cap(raw))
    async with conn.transaction():
        return await store(conn, found, raw, who)


async def list_active(conn: AsyncConnection[Any], now: datetime, *, limit: int = 500) -> list[dict[str, Any]]:
    """Real (status Actual) warnings neither replaced, cancelled nor expired; the latest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM inbound_warning WHERE state = 'active' AND status = 'Actual'"
            " AND (expires IS NULL OR expires > %s) ORDER BY sent DESC, id DESC LIMIT %s",
            (now, limit),
        )
        return [_body(r) for r in await cur.fetchall()]
