"""救援队伍 at the edge: the roster as the console reads it, team statuses and positions.

* PostgreSQL holds the roster (team, team_member, member_certificate, team_shift) and
  each team's latest status and a throttled copy of its position.
* Redis holds the live positions: a GEO set (``wuwang:teams:geo``) for ``GEOSEARCH``
  and a hash of fix times (``wuwang:teams:geo:at``). A position is written only if it
  is newer than the one stored (one Lua script, so two command processes or a
  reordered redelivery can never move a team back in time). Redis is rebuilt from
  PostgreSQL at start-up (:func:`rebuild_geo`), and again once Redis answers after a
  read of it failed (it may come back empty).
* Redis down or hung: the roster, a team's page, ``/teams/near`` and the recommender
  answer from PostgreSQL's copies (``source: db``); see :func:`live_or_none`.
* Status changes come from the field over MQTT (``apply_status_report``, ordered by the
  device's ``seq``) or through the API (``set_status``); both are audited and published
  to live clients as a ``team`` change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import redis.exceptions
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from command import audit
from command.domain import policy
from command.domain.incidents import Forbidden
from command.domain.policy import Action
from command.domain.rosters import (
    Certificate,
    DutyRoster,
    Member,
    Position,
    Shift,
    Team,
    TeamStatus,
    expired_certificates,
    on_duty,
    team_skills,
)
from command.domain.vocabulary import TeamType
from command.security import Principal
from command.services import team_record
from command.services.incident_store import NotFound
from command.services.live import Change, publish
from command.state import CommandState
from wuwang.geo import haversine_m

log = logging.getLogger(__name__)

GEO_KEY = "wuwang:teams:geo"
GEO_AT_KEY = "wuwang:teams:geo:at"
#: Redis GEO covers the Web-Mercator latitudes only.
_GEO_LAT_LIMIT = 85.05112878

#: KEYS: geo set, fix-time hash. ARGV: team id, lon, lat, fix time (epoch s).
#: Returns 1 when the position was newer and stored, 0 when it was not newer.
_GEO_UPDATE = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and tonumber(old) >= tonumber(ARGV[4]) then return 0 end
redis.call('GEOADD', KEYS[1], ARGV[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return 1
"""

#: A status report whose seq is not above the stored one is normally stale, unless it is
#: this much newer than the stored status: then the device restarted and its seq began
#: again (order is kept by seq, restarts are recognised by time).
SEQ_RESTART_AFTER = timedelta(minutes=5)

#: Certificates expiring within this many days are flagged on the team page.
CERT_WARN_DAYS = 30

ACTIVE_ORDER = "('pending','sent','acked')"


# --- positions in Redis ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LivePosition:
    lat: float
    lon: float
    at: datetime
    source: str  # "live" (Redis, from MQTT) or "db" (the throttled copy in PostgreSQL)


async def store_position(redis: aioredis.Redis, team_id: str, lat: float, lon: float, at: datetime) -> bool:
    """Store a fix in the GEO set if it is newer than the stored one. True when stored."""
    if abs(lat) > _GEO_LAT_LIMIT:
        return False
    stored = await redis.eval(_GEO_UPDATE, 2, GEO_KEY, GEO_AT_KEY, team_id, lon, lat, at.timestamp())
    return bool(stored)


async def live_positions(redis: aioredis.Redis, team_ids: Sequence[str]) -> dict[str, LivePosition]:
    if not team_ids:
        return {}
    coords = await redis.geopos(GEO_KEY, *team_ids)
    ats = await redis.hmget(GEO_AT_KEY, list(team_ids))
    out: dict[str, LivePosition] = {}
    for team_id, coord, at in zip(team_ids, coords, ats, strict=True):
        if coord is None or at is None:
            continue
        lon, lat = coord
        out[team_id] = LivePosition(float(lat), float(lon), datetime.fromtimestamp(float(at), UTC), "live")
    return out


async def rebuild_geo(state: CommandState) -> int:
    """Put PostgreSQL's last known positions into Redis where Redis has nothing newer
    (after a Redis restart or flush). Returns how many were stored."""
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, lat, lon, position_at FROM team WHERE lat IS NOT NULL AND position_at IS NOT NULL"
        )
        rows = await cur.fetchall()
    stored = 0
    for team_id, lat, lon, at in rows:
        stored += await store_position(state.redis, team_id, lat, lon, at)
    return stored


# --- Redis down: answer from PostgreSQL ------------------------------------------------

#: A live read waits this long for Redis; then the answer comes from PostgreSQL's copies
#: (a hung Redis accepts connections and never answers).
LIVE_READ_TIMEOUT_S = 1.0
#: Rebuilding the GEO set after an outage gets longer (one script call per team).
GEO_REBUILD_TIMEOUT_S = 5.0
#: What "Redis is not answering" looks like to a reader.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    TimeoutError,
)


async def _rebuild_if_lost(state: CommandState) -> None:
    if not state.teams_geo_lost:
        return
    async with asyncio.timeout(GEO_REBUILD_TIMEOUT_S):
        stored = await rebuild_geo(state)
    state.teams_geo_lost = False
    log.info("Redis answers again; %d team positions put back from PostgreSQL", stored)


def _redis_failed(state: CommandState, what: str) -> None:
    if not state.teams_geo_lost:
        log.warning("Redis unavailable (%s): teams answered from PostgreSQL's positions", what)
    state.teams_geo_lost = True


async def live_or_none(state: CommandState, team_ids: Sequence[str]) -> dict[str, LivePosition]:
    """The live positions, or none while Redis is down or slow: callers then use
    PostgreSQL's copies (marked ``source: db``). Never raises for Redis."""
    try:
        await _rebuild_if_lost(state)
        async with asyncio.timeout(LIVE_READ_TIMEOUT_S):
            return await live_positions(state.redis, team_ids)
    except REDIS_DOWN:
        _redis_failed(state, "live positions")
        return {}


# --- reading the roster --------------------------------------------------------------


def local_zone(state: CommandState) -> ZoneInfo:
    return ZoneInfo(state.settings.command.timezone)


_TEAM_SQL = f"""
SELECT t.id, t.name, t.team_type, t.district_adcode, d.name AS district, t.base_lat, t.base_lon, t.size,
       t.status, t.status_at, t.status_seq, t.lat, t.lon, t.position_at,
       o.order_id, o.incident_id AS order_incident_id, o.status AS order_status, o.created_at AS order_at
  FROM team t
  LEFT JOIN district d ON d.adcode = t.district_adcode
  LEFT JOIN dispatch_order o ON o.team_id = t.id AND o.status IN {ACTIVE_ORDER} AND o.exercise_id IS NULL
"""


async def _team_rows(
    conn: AsyncConnection[Any], team_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        if team_ids is None:
            await cur.execute(_TEAM_SQL + " ORDER BY t.id")
        else:
            await cur.execute(_TEAM_SQL + " WHERE t.id = ANY(%s) ORDER BY t.id", (list(team_ids),))
        return await cur.fetchall()


async def duty_roster(
    conn: AsyncConnection[Any], now: datetime, team_ids: Sequence[str] | None = None
) -> DutyRoster:
    """Shifts around ``now`` (a week ahead, so a run of back-to-back shifts merges)."""
    where = "ends_at > %(from)s AND starts_at < %(to)s"
    params: dict[str, Any] = {"from": now - timedelta(days=1), "to": now + timedelta(days=7)}
    if team_ids is not None:
        where += " AND team_id = ANY(%(ids)s)"
        params["ids"] = list(team_ids)
    cur = await conn.execute(f"SELECT team_id, starts_at, ends_at FROM team_shift WHERE {where}", params)
    return DutyRoster(Shift(t, s, e) for t, s, e in await cur.fetchall())


# --- the duty roster kept between shift changes (for the recommender) -----------------

#: The kept roster is for a time bucket: it holds the shifts from the bucket's start − 1 day
#: to its end + 7 days, a superset of what :func:`duty_roster` reads for any moment in it.
ROSTER_BUCKET = timedelta(minutes=15)

#: Count and order-free sum of row hashes of the window's shifts: one row back, and any
#: insert, update or delete of a shift in the window changes it.
_SHIFT_FINGERPRINT = """
SELECT count(*), coalesce(sum(hashtextextended(
         team_id || ' ' || extract(epoch FROM starts_at)::text || ' ' || extract(epoch FROM ends_at)::text,
         0)), 0)
  FROM team_shift WHERE ends_at > %(from)s AND starts_at < %(to)s
"""


@dataclass(frozen=True, slots=True)
class KeptRoster:
    window: tuple[datetime, datetime]
    fingerprint: tuple[int, int]
    roster: DutyRoster


def roster_window(now: datetime) -> tuple[datetime, datetime]:
    bucket_s = ROSTER_BUCKET.total_seconds()
    start = datetime.fromtimestamp(now.timestamp() // bucket_s * bucket_s, UTC)
    return start - timedelta(days=1), start + ROSTER_BUCKET + timedelta(days=7)


async def kept_duty_roster(state: CommandState, conn: AsyncConnection[Any], now: datetime) -> DutyRoster:
    """Every team's duty roster for ``now``, rebuilt only when the shifts changed.

    Only shifts are kept: statuses (off duty, dispatched …) and positions are no part of a
    ``DutyRoster`` and the caller reads them fresh, so a kept roster can never put forward
    a busy or off-duty team. Shifts are written by other processes too (the roster loader,
    another command process, SQL), so each call compares the window's fingerprint with the
    kept one. The fingerprint is read before the rows: a change in between costs one more
    rebuild, never a stale roster.
    """
    window = roster_window(now)
    cur = await conn.execute(_SHIFT_FINGERPRINT, {"from": window[0], "to": window[1]})
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns a row
    fingerprint = (int(row[0]), int(row[1]))
    kept = state.duty_roster
    if kept is not None and kept.window == window and kept.fingerprint == fingerprint:
        return kept.roster
    cur = await conn.execute(
        "SELECT team_id, starts_at, ends_at FROM team_shift WHERE ends_at > %s AND starts_at < %s", window
    )
    roster = DutyRoster(Shift(t, s, e) for t, s, e in await cur.fetchall())
    state.duty_roster = KeptRoster(window, fingerprint, roster)
    return roster


def _position(row: dict[str, Any], live: LivePosition | None) -> LivePosition | None:
    stored = (
        LivePosition(row["lat"], row["lon"], row["position_at"], "db")
        if row["lat"] is not None and row["lon"] is not None and row["position_at"] is not None
        else None
    )
    if live is None:
        return stored
    if stored is None or live.at >= stored.at:
        return live
    return stored


def to_team(row: dict[str, Any], position: LivePosition | None) -> Team:
    """The domain's view of a team (for on-duty checks and the recommender)."""
    pos = Position(position.lat, position.lon, position.at) if position is not None else None
    return Team(
        id=row["id"],
        name=row["name"],
        type=TeamType(row["team_type"]),
        base_lat=row["base_lat"],
        base_lon=row["base_lon"],
        size=row["size"],
        status=TeamStatus(row["status"]),
        position=pos,
        district_adcode=row["district_adcode"],
    )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def team_summary(
    row: dict[str, Any],
    position: LivePosition | None,
    roster: DutyRoster,
    now: datetime,
    stale_after_s: float,
) -> dict[str, Any]:
    """A team as the console lists it (GET /teams and live ``team`` changes)."""
    team = to_team(row, position)
    until = roster.duty_until(team.id, now)
    pos = None
    if position is not None:
        age = max(0.0, (now - position.at).total_seconds())
        pos = {
            "lat": position.lat,
            "lon": position.lon,
            "at": position.at.isoformat(),
            "age_s": round(age, 1),
            "stale": age > stale_after_s,
            "source": position.source,
        }
    order = None
    if row["order_id"] is not None:
        order = {
            "order_id": row["order_id"],
            "incident_id": row["order_incident_id"],
            "status": row["order_status"],
            "created_at": _iso(row["order_at"]),
        }
    return {
        "id": team.id,
        "name": team.name,
        "type": team.type.value,
        "district_adcode": row["district_adcode"],
        "district": row["district"],
        "size": team.size,
        "base": {"lat": team.base_lat, "lon": team.base_lon},
        "status": team.status.value,
        "status_at": _iso(row["status_at"]),
        "status_seq": row["status_seq"],
        "position": pos,
        "on_shift": until is not None,
        "on_duty": on_duty(team, roster, now),
        "duty_until": _iso(until),
        "active_order": order,
    }


async def team_summaries(
    state: CommandState, team_ids: Sequence[str] | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    at = now or datetime.now(UTC)
    async with state.pool.connection() as conn:
        rows = await _team_rows(conn, team_ids)
        roster = await duty_roster(conn, at, team_ids)
    live = await live_or_none(state, [r["id"] for r in rows])
    stale = state.settings.command.position_stale_s
    return [team_summary(r, _position(r, live.get(r["id"])), roster, at, stale) for r in rows]


async def teams_with_positions(
    conn: AsyncConnection[Any], redis: aioredis.Redis, types: Iterable[TeamType] | None = None
) -> list[Team]:
    """Domain teams (fresher of the Redis and PostgreSQL positions), for the recommender;
    PostgreSQL's positions alone while Redis is down or slow."""
    rows = await _team_rows(conn)
    if types is not None:
        wanted = {t.value for t in types}
        rows = [r for r in rows if r["team_type"] in wanted]
    try:
        async with asyncio.timeout(LIVE_READ_TIMEOUT_S):
            live = await live_positions(redis, [r["id"] for r in rows])
    except REDIS_DOWN:
        log.warning("Redis unavailable: recommending from PostgreSQL's team positions")
        live = {}
    return [to_team(r, _position(r, live.get(r["id"]))) for r in rows]


def visible_team_ids(who: Principal) -> set[str] | None:
    """None: every team; else the only teams this caller may see."""
    if policy.bound_to_own_team(who.role):
        return {who.team_id} if who.team_id else set()
    return None


async def list_teams(
    state: CommandState,
    who: Principal,
    *,
    team_type: str | None = None,
    status: str | None = None,
    district: int | None = None,
    on_duty_now: bool | None = None,
) -> list[dict[str, Any]]:
    only = visible_team_ids(who)
    teams = await team_summaries(state, sorted(only) if only is not None else None)
    return [
        t
        for t in teams
        if (team_type is None or t["type"] == team_type)
        and (status is None or t["status"] == status)
        and (district is None or t["district_adcode"] == district)
        and (on_duty_now is None or t["on_duty"] == on_duty_now)
    ]


async def team_detail(state: CommandState, team_id: str) -> dict[str, Any]:
    """The team with its members (certificates, expired ones flagged) and today's shifts."""
    now = datetime.now(UTC)
    found = await team_summaries(state, [team_id], now)
    if not found:
        raise NotFound(f"no team {team_id}")
    summary = found[0]
    zone = local_zone(state)
    today = now.astimezone(zone).date()
    day_start = datetime.combine(today, datetime.min.time(), zone)
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT m.id, m.name, m.skills, c.name AS cert, c.expires_on FROM team_member m"
            " LEFT JOIN member_certificate c ON c.member_id = m.id"
            " WHERE m.team_id = %s ORDER BY m.id, c.name",
            (team_id,),
        )
        member_rows = await cur.fetchall()
        await cur.execute(
            "SELECT starts_at, ends_at FROM team_shift WHERE team_id = %s AND ends_at > %s AND starts_at < %s"
            " ORDER BY starts_at",
            (team_id, day_start, day_start + timedelta(days=1)),
        )
        shift_rows = await cur.fetchall()
    members = _members(team_id, member_rows)
    warn = today + timedelta(days=CERT_WARN_DAYS)
    summary["members"] = [
        {
            "id": m.id,
            "name": m.name,
            "skills": sorted(m.skills),
            "certificates": [
                {
                    "name": c.name,
                    "expires_on": c.expires_on.isoformat() if c.expires_on else None,
                    "expired": c.expires_on is not None and c.expires_on < today,
                    "expires_soon": c.expires_on is not None and today <= c.expires_on <= warn,
                }
                for c in m.certificates
            ],
        }
        for m in members
    ]
    summary["member_count"] = len(members)
    summary["skills"] = team_skills(members, today).get(team_id, {})
    summary["certificate_alerts"] = [
        {
            "member_id": a.member_id,
            "member_name": a.member_name,
            "certificate": a.certificate,
            "expires_on": a.expires_on.isoformat(),
            "expired": a.expired,
            "text": a.describe(),
        }
        for a in expired_certificates(members, today, warn_within_days=CERT_WARN_DAYS)
    ]
    summary["shifts_today"] = [
        {
            "starts_at": r["starts_at"].isoformat(),
            "ends_at": r["ends_at"].isoformat(),
            "covers_now": r["starts_at"] <= now < r["ends_at"],
        }
        for r in shift_rows
    ]
    summary["today"] = today.isoformat()
    return summary


def _members(team_id: str, rows: list[dict[str, Any]]) -> list[Member]:
    by_id: dict[str, tuple[str, list[str], list[Certificate]]] = {}
    for r in rows:
        certs = by_id.setdefault(r["id"], (r["name"], list(r["skills"] or []), []))[2]
        if r["cert"] is not None:
            expires: date | None = r["expires_on"]
            certs.append(Certificate(r["cert"], expires))
    return [
        Member(member_id, name, team_id, frozenset(skills), tuple(certs))
        for member_id, (name, skills, certs) in by_id.items()
    ]


async def near(
    state: CommandState, lat: float, lon: float, radius_m: float, limit: int, team_type: str | None = None
) -> list[dict[str, Any]]:
    """Teams whose live position is within ``radius_m`` (Redis GEOSEARCH), nearest first;
    from PostgreSQL's copies of the positions while Redis is down or slow."""
    try:
        await _rebuild_if_lost(state)
        async with asyncio.timeout(LIVE_READ_TIMEOUT_S):
            hits = await _near_live(state.redis, lat, lon, radius_m, limit if team_type is None else None)
    except REDIS_DOWN:
        _redis_failed(state, "GEOSEARCH")
        hits = None
    async with state.pool.connection() as conn:
        if hits is None:
            all_rows = await _team_rows(conn)
            hits = _near_stored(all_rows, lat, lon, radius_m)
            rows = {r["id"]: r for r in all_rows}
        elif not hits:
            return []
        else:
            rows = {r["id"]: r for r in await _team_rows(conn, [h.team_id for h in hits])}
    now = datetime.now(UTC)
    stale_after = state.settings.command.position_stale_s
    out = []
    for hit in hits:
        row = rows.get(hit.team_id)
        if row is None or (team_type is not None and row["team_type"] != team_type):
            continue
        age = (now - hit.at).total_seconds() if hit.at is not None else None
        out.append(
            {
                "id": hit.team_id,
                "name": row["name"],
                "type": row["team_type"],
                "status": row["status"],
                "distance_m": round(hit.distance_m, 1),
                "lat": hit.lat,
                "lon": hit.lon,
                "position_at": _iso(hit.at),
                "age_s": round(age, 1) if age is not None else None,
                "stale": age is None or age > stale_after,
                "active_order": row["order_id"],
            }
        )
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class _NearHit:
    team_id: str
    distance_m: float
    lat: float
    lon: float
    at: datetime | None


async def _near_live(
    redis_client: aioredis.Redis, lat: float, lon: float, radius_m: float, count: int | None
) -> list[_NearHit]:
    found: list[Any] = await redis_client.geosearch(
        GEO_KEY,
        longitude=lon,
        latitude=lat,
        radius=radius_m,
        unit="m",
        sort="ASC",
        withdist=True,
        withcoord=True,
        count=count,
    )
    if not found:
        return []
    ids = [m.decode() if isinstance(m, bytes) else str(m) for m, _d, _c in found]
    ats = await redis_client.hmget(GEO_AT_KEY, ids)
    return [
        _NearHit(
            team_id,
            float(dist),
            float(plat),
            float(plon),
            datetime.fromtimestamp(float(at), UTC) if at is not None else None,
        )
        for team_id, (_m, dist, (plon, plat)), at in zip(ids, found, ats, strict=True)
    ]


def _near_stored(rows: Sequence[dict[str, Any]], lat: float, lon: float, radius_m: float) -> list[_NearHit]:
    """GEOSEARCH's answer from PostgreSQL's last copies of the positions."""
    hits = []
    for r in rows:
        if r["lat"] is None or r["lon"] is None:
            continue
        distance = haversine_m(lat, lon, r["lat"], r["lon"])
        if distance <= radius_m:
            hits.append(_NearHit(r["id"], distance, float(r["lat"]), float(r["lon"]), r["position_at"]))
    return sorted(hits, key=lambda h: h.distance_m)


# --- changing a team's status ------------------------------------------------------


async def publish_team(state: CommandState, team_id: str) -> dict[str, Any] | None:
    """Publish the team as it now is (after a commit); returns it."""
    found = await team_summaries(state, [team_id])
    if not found:
        return None
    await publish(state.redis, Change("team", team_id, found[0], team_id=team_id))
    return found[0]


def _may_set_status(who: Principal, team_id: str) -> str | None:
    """Why ``who`` may not set this team's status, or None."""
    if not policy.allowed(who.role, Action.TEAM_STATUS, drill=False):
        # planners included: the roster is live, drills use exercise incidents
        return f"role {who.role} may not change live team {team_id}'s status"
    if not policy.may_act_on_team(who.role, who.team_id, team_id):
        return f"field user {who.user_id} may set only the status of their own team ({who.team_id})"
    return None


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    applied: bool
    why: str  # "applied", "stale", "unknown team"


def is_stale_report(
    seq: int | None, at: datetime, stored_seq: int | None, stored_at: datetime | None
) -> bool:
    """A terminal's status report whose seq is not above the stored one was reordered or
    resent, unless it is much newer in time (a restarted device counts from 0 again)."""
    return (
        seq is not None
        and stored_seq is not None
        and seq <= stored_seq
        and not (stored_at is not None and at > stored_at + SEQ_RESTART_AFTER)
    )


async def _write_status(
    state: CommandState,
    actor: Principal | str,
    team_id: str,
    status: TeamStatus,
    at: datetime | None,
    seq: int | None,
    detail: dict[str, Any],
) -> StatusOutcome:
    """Store one status change (ordered by the terminal's ``seq`` when it sends one),
    audit it and publish the team. ``at`` None: the database's time."""
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT status, status_seq, status_at, now() FROM team WHERE id = %s FOR UPDATE", (team_id,)
        )
        row = await cur.fetchone()
        if row is None:
            return StatusOutcome(False, "unknown team")
        old_status, old_seq, old_at, db_now = row
        when = at or db_now
        if is_stale_report(seq, when, old_seq, old_at):
            return StatusOutcome(False, "stale")
        await conn.execute(
            "UPDATE team SET status = %s, status_at = %s, status_seq = coalesce(%s, status_seq)"
            " WHERE id = %s",
            (status.value, when, seq, team_id),
        )
        await audit.record(
            conn,
            actor,
            "team.status",
            object_type="team",
            object_id=team_id,
            detail={"from": old_status, "to": status.value, "seq": seq, **detail},
        )
    await publish_team(state, team_id)
    if status is TeamStatus.EN_ROUTE:  # rolling: on the record of the team's incident too
        await team_record.record_en_route(state, team_id, when)
    return StatusOutcome(True, "applied")


async def set_status(
    state: CommandState,
    who: Principal,
    team_id: str,
    status: TeamStatus,
    incident_id: str | None,
    reason: str | None,
    *,
    seq: int | None = None,
    msg_id: str | None = None,
) -> dict[str, Any]:
    """POST /teams/{id}/status: field users for their own team, command staff for any.
    A field page sends its terminal's ``seq`` and a message ``id`` like the MQTT path:
    a resent or overtaken change is not applied again (the answer is the team as it is)."""
    refusal = _may_set_status(who, team_id)
    if refusal is not None:
        await audit.record_denied(
            state.pool, who, "team.status", refusal, object_type="team", object_id=team_id
        )
        raise Forbidden(refusal)
    outcome = await _write_status(
        state,
        who,
        team_id,
        status,
        None,
        seq,
        {"incident_id": incident_id, "reason": reason, "via": "api", "msg_id": msg_id},
    )
    if outcome.why == "unknown team":
        raise NotFound(f"no team {team_id}")
    if not outcome.applied:
        log.info("status %s for %s over the API not applied: %s", msg_id, team_id, outcome.why)
    found = await team_summaries(state, [team_id])
    return found[0]


async def apply_status_report(
    state: CommandState,
    team_id: str,
    status: TeamStatus,
    seq: int | None,
    at: datetime,
    incident_id: str | None,
    msg_id: str,
) -> StatusOutcome:
    """A status from the team's terminal (MQTT), ordered by ``seq``. Audited; published."""
    detail = {"incident_id": incident_id, "via": "mqtt", "msg_id": msg_id}
    return await _write_status(state, team_id, team_id, status, at, seq, detail)


class PositionWriter:
    """Positions from the field: Redis every time (if newer), PostgreSQL at most every
    ``db_interval_s`` per team (the table is a fallback copy, not the live view)."""

    def __init__(self, db_interval_s: float) -> None:
        self._interval = timedelta(seconds=db_interval_s)
        self._written: dict[str, datetime] = {}

    async def apply(
        self, state: CommandState, team_id: str, lat: float, lon: float, at: datetime, extra: dict[str, Any]
    ) -> bool:
        """True when the position was newer than the stored one (and published)."""
        if not await store_position(state.redis, team_id, lat, lon, at):
            return False
        last = self._written.get(team_id)
        if last is None or at >= last + self._interval:
            async with state.pool.connection() as conn:
                await conn.execute(
                    "UPDATE team SET lat = %s, lon = %s, position_at = %s WHERE id = %s"
                    " AND (position_at IS NULL OR position_at <= %s)",
                    (lat, lon, at, team_id, at - self._interval),
                )
            self._written[team_id] = at
        age = max(0.0, (datetime.now(UTC) - at).total_seconds())
        await publish(
            state.redis,
            Change(
                "team",
                team_id,
                {
                    "id": team_id,
                    "kind": "position",
                    "position": {
                        "lat": lat,
                        "lon": lon,
                        "at": at.isoformat(),
                        "age_s": round(age, 1),
                        "stale": age > state.settings.command.position_stale_s,
                        "source": "live",
                        **extra,
                    },
                },
                team_id=team_id,
            ),
        )
        return True


async def snapshot(state: CommandState, who: Principal) -> list[dict[str, Any]]:
    """Teams for a (re)connecting live client: what ``visible_to`` would let through
    (planners too: a drill's recommendations and map start from the real roster)."""
    only = visible_team_ids(who)
    return await team_summaries(state, sorted(only) if only is not None else None)
