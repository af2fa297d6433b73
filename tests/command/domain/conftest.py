"""What the domain tests share: the home position (襄阳 樊城区) and an alarm as ingest
raises it there."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from wuwang.contract import Alarm, AlarmKind, Network

CST = timezone(timedelta(hours=8))
HOME = (32.0420, 112.1440)  # 襄阳 樊城区

#: The network each kind of alarm arrives on.
NETWORK_OF: dict[str, Network] = {
    "call": Network.POLICE,
    "video": Network.VIDEO,
    "sensor": Network.VENUE,
    "report": Network.COMMUNITY,
}


def grid_alarm(
    n: int,
    kind: AlarmKind,
    category: str,
    *,
    source: str,
    ts: datetime,
    lat: float | None,
    lon: float | None,
    summary: str,
    details: dict[str, Any],
) -> Alarm:
    """Alarm ``n`` of ``source`` (id ``source#n``), in grid cell G-420606-001."""
    return Alarm(
        alarm_id=f"{source}#{n}",
        kind=kind,
        source=source,
        msg_id=str(n),
        network=NETWORK_OF[kind],
        ts=ts,
        lat=lat,
        lon=lon,
        grid_cell_id="G-420606-001",
        category=category,
        summary=summary,
        details=details,
    )
