"""Demo rosters (救援队伍花名册) for every team the demo city loaded.

For each team in table ``team``: members with invented Chinese names, skills and
certificates for its type (some certificates expired, some about to), shifts covering
now ± 2 days — 24-hour duty for fire stations (消防站 24 小时执勤), day and night
shifts (08:00–20:00, 20:00–08:00) for the others — with a few teams on a rest day now
(no shift covers the present), and a demo field user (password ``demo``) per team.
Deterministic for a seed and a moment; running it again gives the same roster.

    DEMO_MODE=1 DATABASE_URL=... python -m command.demo_rosters [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from command.domain.rosters import daily_shifts
from command.users import demo_users, upsert_users
from wuwang.city import chinese_name
from wuwang.service import setup_logging
from wuwang.settings import DEFAULT_DATABASE_URL, get_settings

#: Skills by team type (技能).
SKILLS: dict[str, tuple[str, ...]] = {
    "fire": ("灭火", "破拆", "绳索救援", "高空救援", "急救", "排烟", "危化品处置"),
    "medical": ("急救", "心肺复苏", "创伤处置", "院前急救", "检伤分类"),
    "police": ("现场警戒", "交通管制", "治安处置", "急救", "无人机侦察"),
    "hazmat": ("危化品处置", "侦检", "洗消", "堵漏", "防化"),
    "water_rescue": ("水域救援", "潜水", "冲锋舟驾驶", "绳索救援", "急救"),
    "comprehensive": ("绳索救援", "破拆", "急救", "水域救援", "地震搜救", "搜救犬", "物资转运"),
}

#: Certificates by team type (证书), with whether they expire.
CERTIFICATES: dict[str, tuple[tuple[str, bool], ...]] = {
    "fire": (
        ("消防员职业技能证书", True),
        ("特种车辆驾驶证", True),
        ("高处作业证", True),
        ("急救员证", True),
    ),
    "medical": (("医师执业证书", False), ("护士执业证书", True), ("急救员证", True), ("救护车驾驶证", True)),
    "police": (("人民警察证", False), ("无人机驾驶员执照", True), ("急救员证", True)),
    "hazmat": (("危险化学品救援证", True), ("防化员证", True), ("特种车辆驾驶证", True)),
    "water_rescue": (("潜水员证", True), ("船艇驾驶证", True), ("水域救援技术证", True), ("急救员证", True)),
    "comprehensive": (
        ("应急救援员证", True),
        ("急救员证", True),
        ("绳索救援技术证", True),
        ("潜水员证", True),
    ),
}

#: Share of certificates that have expired (the console flags them).
EXPIRED_SHARE = 0.08
#: Share of teams with no shift covering now (rest day, 轮休).
OFF_DUTY_SHARE = 0.08
COMPREHENSIVE_MIN = 50


@dataclass(frozen=True)
class RosterStats:
    teams: int
    members: int
    certificates: int
    expired_certificates: int
    shifts: int
    off_duty_now: tuple[str, ...]
    users: int

    def line(self) -> str:
        return (
            f"{self.teams} teams, {self.members} members, {self.certificates} certificates "
            f"({self.expired_certificates} expired), {self.shifts} shifts, "
            f"{len(self.off_duty_now)} teams off duty now, {self.users} demo users"
        )


def _shift_rows(
    team_id: str, team_type: str, today: date, zone: ZoneInfo, skip: datetime | None
) -> list[tuple[str, datetime, datetime]]:
    first = today - timedelta(days=3)  # a shift that started 3 days ago at 08:00 may still cover now-2d
    if team_type == "fire":
        shifts = daily_shifts(team_id, time(8), time(8), first, 7, zone)
    else:
        shifts = daily_shifts(team_id, time(8), time(20), first, 7, zone)
        shifts += daily_shifts(team_id, time(20), time(8), first, 7, zone)
    return [
        (s.team_id, s.starts_at, s.ends_at)
        for s in sorted(shifts, key=lambda s: s.starts_at)
        if skip is None or not s.covers(skip)
    ]


#: The centre's own demo duty roster (值班表): 王强 leads, 张伟 by day and 李娜 by night.
CENTRE_SHIFTS = ((time(8), time(20), "D", "operator1"), (time(20), time(8), "N", "operator2"))


def _centre_duty_roster(conn: psycopg.Connection[Any], today: date, zone: ZoneInfo) -> None:
    """The command centre's day and night shifts from yesterday to tomorrow (live), each
    left out where a shift of the roster already covers its time (set by hand, or
    loaded before): running it again adds nothing."""
    rows = [
        (f"DS-DEMO-{s.starts_at:%Y%m%d}-{tag}", s.starts_at, s.ends_at, officer)
        for start, end, tag, officer in CENTRE_SHIFTS
        for s in daily_shifts("centre", start, end, today - timedelta(days=1), 3, zone)
    ]
    with conn.cursor() as cur:
        for shift_id, starts_at, ends_at, officer in sorted(rows, key=lambda r: r[1]):
            cur.execute(
                "INSERT INTO duty_shift (shift_id, starts_at, ends_at, leader, officers, set_by)"
                " SELECT %(id)s, %(starts)s, %(ends)s, 'commander1', ARRAY[%(officer)s], 'demo'"
                " WHERE NOT EXISTS (SELECT 1 FROM duty_shift WHERE exercise_id IS NULL"
                " AND starts_at < %(ends)s AND ends_at > %(starts)s)",
                {"id": shift_id, "starts": starts_at, "ends": ends_at, "officer": officer},
            )


def load_demo_rosters(
    conn: psycopg.Connection[Any],
    seed: int,
    now: datetime,
    *,
    timezone: str = "Asia/Shanghai",
    users: bool = True,
) -> RosterStats:
    """Members, certificates and shifts for every team in ``team``; idempotent for
    (seed, now). Runs in the caller's transaction."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    teams = conn.execute("SELECT id, team_type, size FROM team ORDER BY id").fetchall()
    ids = [t[0] for t in teams]
    resting: set[str] = set()
    if len(ids) >= 5:
        k = max(1, round(len(ids) * OFF_DUTY_SHARE))
        resting = set(random.Random(f"{seed}:rest").sample(ids, k))

    member_rows: list[tuple[str, str, str, list[str]]] = []
    cert_rows: list[tuple[str, str, date | None]] = []
    shift_rows: list[tuple[str, datetime, datetime]] = []
    expired = 0
    for team_id, team_type, size in teams:
        rng = random.Random(f"{seed}:{team_id}")
        count = max(size, COMPREHENSIVE_MIN) if team_type == "comprehensive" else size
        skills, certs = SKILLS[team_type], CERTIFICATES[team_type]
        for n in range(1, count + 1):
            member_id = f"{team_id}-M{n:03d}"
            member_skills = sorted(rng.sample(skills, rng.randint(1, min(3, len(skills)))))
            member_rows.append((member_id, team_id, chinese_name(rng), member_skills))
            for name, expires in rng.sample(certs, rng.randint(1, min(2, len(certs)))):
                expiry: date | None = None
                if expires:
                    if rng.random() < EXPIRED_SHARE:
                        expiry = today - timedelta(days=rng.randint(1, 400))
                        expired += 1
                    else:
                        expiry = today + timedelta(days=rng.randint(5, 1500))
                cert_rows.append((member_id, name, expiry))
        shift_rows += _shift_rows(team_id, team_type, today, zone, now if team_id in resting else None)

    window_start = datetime.combine(today - timedelta(days=3), time(0), zone)
    window_end = datetime.combine(today + timedelta(days=5), time(0), zone)
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM member_certificate WHERE member_id IN"
            " (SELECT id FROM team_member WHERE team_id = ANY(%s))",
            (ids,),
        )
        cur.execute(
            "DELETE FROM team_member WHERE team_id = ANY(%s) AND NOT (id = ANY(%s))",
            (ids, [m[0] for m in member_rows]),
        )
        cur.executemany(
            "INSERT INTO team_member (id, team_id, name, skills) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET team_id = EXCLUDED.team_id, name = EXCLUDED.name,"
            " skills = EXCLUDED.skills",
            member_rows,
        )
        cur.executemany(
            "INSERT INTO member_certificate (member_id, name, expires_on) VALUES (%s, %s, %s)", cert_rows
        )
        cur.execute(
            "DELETE FROM team_shift WHERE team_id = ANY(%s) AND starts_at < %s AND ends_at > %s",
            (ids, window_end, window_start),
        )
        cur.executemany(
            "INSERT INTO team_shift (team_id, starts_at, ends_at) VALUES (%s, %s, %s)", shift_rows
        )
    made = demo_users(ids) if users else []
    if made:
        upsert_users(conn, made)
        _centre_duty_roster(conn, today, zone)
    return RosterStats(
        len(ids),
        len(member_rows),
        len(cert_rows),
        expired,
        len(shift_rows),
        tuple(sorted(resting)),
        len(made),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m command.demo_rosters", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seed", type=int, default=1, help="roster seed; default 1")
    args = parser.parse_args(argv)
    if argv is None:  # this process's own command line: its logging, in the one format
        setup_logging("demo-rosters", "WARNING")
    settings = get_settings()
    if not settings.shared.demo_mode:
        print("refusing to write demo rosters outside DEMO_MODE=1", file=sys.stderr)
        return 2
    with psycopg.connect(settings.shared.database_url or DEFAULT_DATABASE_URL, connect_timeout=5) as conn:
        stats = load_demo_rosters(conn, args.seed, datetime.now(UTC), timezone=settings.command.timezone)
    print(f"demo rosters: {stats.line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
