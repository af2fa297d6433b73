"""Upward reporting (信息报送) at the edge: the reports, their versions, the figures, the
outbox to the upper level, receipts (回执), instructions (批示) and escalated clocks
(migration 0019). The rules and the clocks are command/domain/reporting.py.

* A draft is filled from the incident's record: when and where, type and level, the
  latest figures, the plan and teams committed, the supplies reserved for it.
* Sending puts the exchange form (wuwang/exchange.py) into ``upward_outbox`` in the same
  transaction as the report's ``sent`` state; :class:`UpwardLink` posts it to the upper
  level's platform (``COMMAND_UPPER_URL``), retried with the report id as the
  idempotency key, records the receipt it answers with, fetches the instructions issued
  since the last one, and escalates overdue clocks to the leader on duty.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from command import audit
from command.domain import reporting as rp
from command.domain.duty import EntryKind, receive_instruction
from command.domain.incidents import Event, IllegalTransition, Incident
from command.domain.vocabulary import IncidentType, ResponseLevel
from command.security import Principal
from command.services import incident_store
from command.services.duty import display_names, insert_instruction, record_duty_event
from command.services.tasks import Periodic
from command.state import CommandState
from wuwang import exchange, i18n
from wuwang.scope import Scope
from wuwang.settings import Settings

log = logging.getLogger(__name__)

#: The role an overdue clock escalates to: the leader on duty (带班领导).
LEADER_ON_DUTY = "commander"
#: Back-off between attempts to send one report (seconds), the last one repeated.
RETRY_S = (5.0, 15.0, 60.0, 300.0)
#: How often overdue clocks are looked for (and escalated once each).
ESCALATE_EVERY_S = 30.0
#: Receipts are fetched again this far back: one signed late with an earlier time is not missed
#: (each is recorded once by its id, whatever is fetched twice).
RECEIPTS_OVERLAP = timedelta(minutes=10)


@cache
def _rules(directory: Path) -> dict[str, rp.Rule]:
    return rp.parse_rules({p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.yaml"))})


def rule_of(settings: Settings) -> rp.Rule:
    """The rule this centre reports under; a bad rule file or an unknown jurisdiction
    raises (the lifespan calls this, so start-up stops)."""
    rules = _rules(settings.command.report_rules_dir)
    name = settings.command.report_jurisdiction
    if name not in rules:
        raise rp.RuleError([f"COMMAND_REPORT_JURISDICTION={name!r}: no such rule (have {sorted(rules)})"])
    return rules[name]


# --- the incident's facts ---------------------------------------------------------------


def facts(inc: Incident, events: Sequence[Event]) -> rp.IncidentFacts:
    """First receipt, level history and end, from the incident's record."""
    steps: list[rp.LevelStep] = []
    for e in events:
        kind = e.data.kind
        if kind == "opened":
            steps.append(rp.LevelStep(e.at, e.data.level))  # type: ignore[union-attr]
        elif kind == "level_changed":
            steps.append(rp.LevelStep(e.at, e.data.to_level))  # type: ignore[union-attr]
    ended = inc.resolved_at or inc.ended_at
    return rp.IncidentFacts(
        incident_type=inc.incident_type,
        received_at=min(inc.first_alarm_at, inc.opened_at),
        levels=tuple(steps) or (rp.LevelStep(inc.opened_at, inc.level),),
        ended_at=ended,
    )


async def draft_content(conn: AsyncConnection[Any], settings: Settings, inc: Incident) -> rp.Content:
    """A report's first version from what the record says; the desk edits the rest."""
    async with conn.cursor(row_factory=dict_row) as cur:
        place_row = None
        if inc.grid_cell_id is not None:
            await cur.execute(
                "SELECT g.name AS cell, d.name AS district, d.adcode FROM grid_cell g"
                " JOIN district d ON d.adcode = g.district_adcode WHERE g.id = %s",
                (inc.grid_cell_id,),
            )
            place_row = await cur.fetchone()
        if place_row is None and inc.lat is not None and inc.lon is not None:
            await cur.execute(
                "SELECT NULL AS cell, name AS district, adcode FROM district"
                " ORDER BY (center_lat - %s)^2 + (center_lon - %s)^2 LIMIT 1",
                (inc.lat, inc.lon),
            )
            place_row = await cur.fetchone()
        team_ids = list(dict.fromkeys(t.team_id for t in inc.teams))
        await cur.execute("SELECT id, name FROM team WHERE id = ANY(%s)", (team_ids,))
        names = {r["id"]: r["name"] for r in await cur.fetchall()}
        await cur.execute(
            "SELECT i.name_zh, i.unit_zh, sum(a.reserved + a.issued) AS qty FROM stock_allocation a"
            " JOIN stock_lot l ON l.id = a.lot_id JOIN reserve_item i ON i.code = l.item_code"
            " WHERE a.incident_id = %s GROUP BY i.name_zh, i.unit_zh HAVING sum(a.reserved + a.issued) > 0"
            " ORDER BY i.name_zh",
            (inc.incident_id,),
        )
        supplies = tuple(f"{r['name_zh']} {r['qty']}{r['unit_zh']}" for r in await cur.fetchall())
    summary = next((s.summary for s in inc.sources if s.summary), "")
    where = f"{place_row['district']}{place_row['cell'] or ''}" if place_row else ""
    place = _zh("upward.draft.place_separator").join(x for x in (where, summary) if x) or inc.title
    area_code = str(place_row["adcode"]) if place_row else settings.command.report_area_code
    measures = []
    if inc.active_plan is not None:
        level = _zh(f"level.{inc.active_plan.level.value}")
        measures.append(_zh("upward.draft.plan", plan=inc.active_plan.plan_id, level=level))
    if inc.teams:
        measures.append(_zh("upward.draft.teams", n=len(team_ids)))
    history = await figure_history(conn, inc.incident_id)
    return rp.Content(
        title=inc.title,
        occurred_at=inc.first_alarm_at,
        place=place,
        area_code=area_code,
        lat=inc.lat,
        lon=inc.lon,
        incident_type=inc.incident_type,
        level=inc.level,
        figures=rp.latest_figures(history),
        measures=_zh("upward.draft.separator").join(measures),
        teams=tuple(names.get(t, t) for t in team_ids),
        supplies=supplies,
    )


# --- storage ------------------------------------------------------------------------------


def content_json(c: rp.Content) -> dict[str, Any]:
    return {
        "title": c.title,
        "occurred_at": c.occurred_at.isoformat() if c.occurred_at else None,
        "place": c.place,
        "area_code": c.area_code,
        "lat": c.lat,
        "lon": c.lon,
        "incident_type": str(c.incident_type),
        "level": c.level.value,
        "figures": c.figures.as_dict(),
        "cause": c.cause,
        "measures": c.measures,
        "teams": list(c.teams),
        "supplies": list(c.supplies),
        "trend": c.trend,
        "aftermath": c.aftermath,
        "notes": c.notes,
    }


def content_of(d: dict[str, Any]) -> rp.Content:
    return rp.Content(
        title=d["title"],
        occurred_at=datetime.fromisoformat(d["occurred_at"]) if d.get("occurred_at") else None,
        place=d["place"],
        area_code=d["area_code"],
        lat=d.get("lat"),
        lon=d.get("lon"),
        incident_type=IncidentType(d["incident_type"]),
        level=ResponseLevel(d["level"]),
        figures=rp.Figures(**d["figures"]),
        cause=d.get("cause", ""),
        measures=d.get("measures", ""),
        teams=tuple(d.get("teams", ())),
        supplies=tuple(d.get("supplies", ())),
        trend=d.get("trend", ""),
        aftermath=d.get("aftermath", ""),
        notes=d.get("notes", ""),
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """A report with what the table keeps beside the domain's record."""

    report: rp.Report
    exercise_id: str | None
    jurisdiction: str
    changes: dict[int, list[dict[str, Any]]]  # version → its changes since the last report sent


async def reports_of(
    conn: AsyncConnection[Any], incident_id: str, *, for_update: bool = False
) -> list[Stored]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM upward_report WHERE incident_id = %s ORDER BY number"
            + (" FOR UPDATE" if for_update else ""),
            (incident_id,),
        )
        heads = await cur.fetchall()
        await cur.execute(
            "SELECT * FROM upward_report_version WHERE incident_id = %s ORDER BY number, n", (incident_id,)
        )
        versions = await cur.fetchall()
    out = []
    for h in heads:
        mine = [v for v in versions if v["number"] == h["number"]]
        report = rp.Report(
            incident_id=h["incident_id"],
            number=h["number"],
            kind=rp.ReportKind(h["kind"]),
            channel=rp.Channel(h["channel"]),
            state=rp.ReportState(h["state"]),
            versions=tuple(
                rp.Version(v["n"], content_of(v["content"]), v["edited_by"], v["edited_at"], v["note"])
                for v in mine
            ),
            approved_version=h["approved_version"],
            approved_by=h["approved_by"],
            approved_at=h["approved_at"],
            sent_at=h["sent_at"],
            acknowledged_at=h["acknowledged_at"],
            receipt_by=h["receipt_by"],
        )
        out.append(Stored(report, h["exercise_id"], h["jurisdiction"], {v["n"]: v["changes"] for v in mine}))
    return out


def changes_json(changes: Sequence[rp.Change]) -> list[dict[str, Any]]:
    return [{"element": c.element, "before": c.before, "after": c.after} for c in changes]


def changes_for(report: rp.Report, earlier: Sequence[rp.Report], content: rp.Content) -> list[rp.Change]:
    previous = rp.last_sent(earlier, report.number)
    return rp.changes_since(previous.approved.content if previous and previous.approved else None, content)


async def insert(
    conn: AsyncConnection[Any],
    report: rp.Report,
    *,
    inc: Incident,
    jurisdiction: str,
    changes: list[rp.Change],
) -> None:
    v = report.current
    await conn.execute(
        "INSERT INTO upward_report (incident_id, number, report_id, exercise_id, jurisdiction, kind, channel,"
        " state, drafted_by, drafted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'draft', %s, %s)",
        (
            report.incident_id,
            report.number,
            report.report_id,
            inc.exercise_id,
            jurisdiction,
            str(report.kind),
            str(report.channel),
            v.by,
            v.at,
        ),
    )
    await add_version(conn, report, changes)


async def add_version(conn: AsyncConnection[Any], report: rp.Report, changes: list[rp.Change]) -> None:
    v = report.current
    await conn.execute(
        "INSERT INTO upward_report_version (incident_id, number, n, content, changes, edited_by, edited_at,"
        " note)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            report.incident_id,
            report.number,
            v.n,
            Jsonb(content_json(v.content)),
            Jsonb(changes_json(changes)),
            v.by,
            v.at,
            v.note,
        ),
    )


async def save_state(conn: AsyncConnection[Any], report: rp.Report) -> None:
    await conn.execute(
        "UPDATE upward_report SET state = %s, approved_version = %s, approved_by = %s, approved_at = %s,"
        " sent_at = %s, acknowledged_at = %s, receipt_by = %s WHERE incident_id = %s AND number = %s",
        (
            str(report.state),
            report.approved_version,
            report.approved_by,
            report.approved_at,
            report.sent_at,
            report.acknowledged_at,
            report.receipt_by,
            report.incident_id,
            report.number,
        ),
    )


async def step_audit(
    conn: AsyncConnection[Any], who: Principal | str, step: str, report: rp.Report, **detail: Any
) -> None:
    await audit.record(
        conn,
        who,
        f"upward_report.{step}",
        object_type="upward_report",
        object_id=report.report_id,
        detail={"state": str(report.state), "version": report.current.n, **detail},
    )


# --- the duty log (值班日志) --------------------------------------------------------------


def _zh(key: str, **values: Any) -> str:
    """The report's and the duty log's words: the centre's language (zh-CN, the default)."""
    return i18n.text(i18n.DEFAULT_LANG, key, **values)


def _log_line(key: str, words: dict[str, str], **values: Any) -> tuple[str, dict[str, Any]]:
    """A duty log line as stored (zh-CN) and how to say it again in the reader's language
    (``detail.say``, read by wuwang.dutylog.entry_line): ``words`` are catalogue keys
    (the report's kind, the clock), ``values`` are names and numbers as they are."""
    text = _zh(key, **values, **{name: _zh(word) for name, word in words.items()})
    return text, {"key": key, "words": words, "values": values}


async def log_sent(conn: AsyncConnection[Any], rule: rp.Rule, s: Stored, title: str) -> None:
    r = s.report
    approver = r.approved_by or ""
    names = await display_names(conn, [approver])  # the leader by name, not by account
    text, say = _log_line(
        "upward.log.report_sent", {"kind": f"upward.kind.{r.kind}", "how": f"upward.how.{r.channel}"},
        title=title, n=r.number, to=rule.report_to, by=names.get(approver, approver),
    )  # fmt: skip
    await record_duty_event(
        conn, Scope.of(s.exercise_id), EntryKind.REPORT_SENT, r.report_id, text,
        at=r.sent_at, detail={"report_id": r.report_id, "incident_id": r.incident_id, "say": say},
    )  # fmt: skip


async def log_receipt(conn: AsyncConnection[Any], exercise_id: str | None, r: rp.Report, ref: str) -> None:
    text, say = _log_line(
        "upward.log.receipt", {"kind": f"upward.kind.{r.kind}"}, report_id=r.report_id, n=r.number,
        by=r.receipt_by,
    )  # fmt: skip
    await record_duty_event(
        conn, Scope.of(exercise_id), EntryKind.RECEIPT_RECEIVED, ref, text,
        at=r.acknowledged_at, detail={"report_id": r.report_id, "incident_id": r.incident_id, "say": say},
    )  # fmt: skip


# --- figures ------------------------------------------------------------------------------


async def figure_history(conn: AsyncConnection[Any], incident_id: str) -> list[rp.FigureEntry]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT at, recorded_by, source, figures FROM incident_figures WHERE incident_id = %s"
            " ORDER BY at, id",
            (incident_id,),
        )
        rows = await cur.fetchall()
    return [rp.FigureEntry(r["at"], r["recorded_by"], rp.Figures(**r["figures"]), r["source"]) for r in rows]


async def record_figures(
    conn: AsyncConnection[Any], inc: Incident, entry: rp.FigureEntry, who: Principal
) -> None:
    await conn.execute(
        "INSERT INTO incident_figures (incident_id, exercise_id, at, recorded_by, source, figures)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (inc.incident_id, inc.exercise_id, entry.at, entry.by, entry.source, Jsonb(entry.figures.as_dict())),
    )
    await audit.record(
        conn,
        who,
        "upward_report.figures",
        object_type="incident",
        object_id=inc.incident_id,
        detail={"figures": entry.figures.as_dict(), "source": entry.source},
    )


# --- bodies -------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def clock_body(c: rp.Clock, now: datetime, escalated: datetime | None = None) -> dict[str, Any]:
    state = c.state(now)
    return {
        "key": c.key,
        "kind": str(c.kind),
        "level": c.level.value,
        "started_at": _iso(c.started_at),
        "due_at": _iso(c.due_at),
        "state": str(state),
        "remaining_s": round(c.remaining_s(now), 1),
        "met_by": c.met_by,
        "met_at": _iso(c.met_at),
        "escalated_to": LEADER_ON_DUTY if state is rp.ClockState.OVERDUE else None,
        "escalated_at": _iso(escalated),
    }


def report_body(s: Stored) -> dict[str, Any]:
    r = s.report
    return {
        "report_id": r.report_id,
        "incident_id": r.incident_id,
        "number": r.number,
        "kind": str(r.kind),
        "channel": str(r.channel),
        "state": str(r.state),
        "exercise_id": s.exercise_id,
        "jurisdiction": s.jurisdiction,
        "approved_version": r.approved_version,
        "approved_by": r.approved_by,
        "approved_at": _iso(r.approved_at),
        "sent_at": _iso(r.sent_at),
        "acknowledged_at": _iso(r.acknowledged_at),
        "receipt_by": r.receipt_by,
        "versions": [
            {
                "n": v.n,
                "by": v.by,
                "at": _iso(v.at),
                "note": v.note,
                "content": content_json(v.content),
                "changes": s.changes.get(v.n, []),
            }
            for v in r.versions
        ],
    }


def figures_body(history: Sequence[rp.FigureEntry]) -> dict[str, Any]:
    return {
        "current": rp.latest_figures(history).as_dict(),
        "history": [
            {"at": _iso(e.at), "by": e.by, "source": e.source, "figures": e.figures.as_dict()}
            for e in history
        ],
        "changes": [
            {"name": c.name, "before": c.before, "after": c.after, "at": _iso(c.at)}
            for c in rp.figure_history_changes(history)
        ],
    }


def sent_of(stored: Sequence[Stored]) -> list[rp.SentReport]:
    out = []
    for s in stored:
        r = s.report
        if r.sent_at is not None and r.approved is not None:
            out.append(rp.SentReport(r.number, r.kind, r.channel, r.approved.content.level, r.sent_at))
    return out


async def incident_clocks(
    conn: AsyncConnection[Any], rule: rp.Rule, inc: Incident, events: Sequence[Event], now: datetime
) -> list[rp.Clock]:
    return rp.clocks(rule, facts(inc, events), sent_of(await reports_of(conn, inc.incident_id)), now)


async def escalations(
    conn: AsyncConnection[Any], incident_ids: Sequence[str]
) -> dict[tuple[str, str], datetime]:
    cur = await conn.execute(
        "SELECT incident_id, clock_key, escalated_at FROM upward_clock_escalation"
        " WHERE incident_id = ANY(%s)",
        (list(incident_ids),),
    )
    return {(r[0], r[1]): r[2] for r in await cur.fetchall()}


async def board(
    conn: AsyncConnection[Any], rule: rp.Rule, scope: Scope, now: datetime
) -> list[dict[str, Any]]:
    """Every clock still wanting a report in ``scope``: open incidents, and ended ones
    whose final report is not yet sent — most urgent first (the desk and the wall)."""
    cur = await conn.execute(
        sql.SQL(
            "SELECT i.id FROM incident i WHERE {} AND (i.is_open OR (i.ended_at > %(since)s AND EXISTS"
            " (SELECT 1 FROM upward_report r WHERE r.incident_id = i.id) AND NOT EXISTS (SELECT 1 FROM"
            " upward_report r WHERE r.incident_id = i.id AND r.kind = 'final' AND r.sent_at IS NOT NULL)))"
            " ORDER BY i.opened_at"
        ).format(scope.where("i", name="ex")),
        {**scope.named("ex"), "since": now - timedelta(days=7)},
    )
    ids = [r[0] for r in await cur.fetchall()]
    escalated = await escalations(conn, ids)
    out = []
    for incident_id in ids:
        inc, events = await incident_store.load(conn, incident_id)
        for c in rp.running(await incident_clocks(conn, rule, inc, events, now), now):
            out.append(
                {
                    "incident_id": incident_id,
                    "title": inc.title,
                    "incident_type": inc.incident_type.value,
                    "incident_level": inc.level.value,
                    "exercise_id": inc.exercise_id,
                    **clock_body(c, now, escalated.get((incident_id, c.key))),
                }
            )
    return sorted(out, key=lambda b: str(b["due_at"]))


async def deliveries(conn: AsyncConnection[Any], incident_id: str) -> dict[str, dict[str, Any]]:
    """Report id → where its sending stands (queued, attempts, delivered, last error)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT o.report_id, o.queued_at, o.attempts, o.delivered_at, o.last_error FROM upward_outbox o"
            " JOIN upward_report r ON r.report_id = o.report_id WHERE r.incident_id = %s",
            (incident_id,),
        )
        rows = await cur.fetchall()
    return {
        r["report_id"]: {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows
    }


# --- the exchange -------------------------------------------------------------------------


def exchange_form(settings: Settings, rule: rp.Rule, s: Stored, previous: rp.Report | None) -> dict[str, Any]:
    """The exchange form (wuwang/exchange.py) of an approved report, as it is sent."""
    r = s.report
    v = r.approved
    if v is None or r.approved_at is None or r.approved_by is None:
        raise IllegalTransition(f"report {r.report_id} is not approved: it has no exchange form yet")
    c = v.content
    f = c.figures
    form = exchange.EventReport(
        formVersion="1.0",
        reportId=r.report_id,
        reportKind=str(r.kind),
        reportKindName=exchange.KIND_NAMES[str(r.kind)],
        channel=str(r.channel),
        sequence=r.number,
        previousReportId=previous.report_id if previous else None,
        status="exercise" if s.exercise_id else "actual",
        sender=exchange.Unit(
            name=settings.command.report_unit or _zh("upward.unit_default"),
            areaCode=settings.command.report_area_code,
        ),
        receiver=exchange.Unit(name=rule.report_to, areaCode=rule.area_code),
        reporter=v.by,
        approver=r.approved_by,
        approvedTime=r.approved_at,
        sendTime=r.sent_at or r.approved_at,
        event=exchange.EventInfo(
            eventId=r.incident_id,
            eventName=c.title,
            eventTypeCode=rp.EVENT_CODES[c.incident_type],
            eventTypeName=i18n.text("zh_CN", f"type.{c.incident_type}"),
            severity=rp.SEVERITY_CODES[c.level],
            severityName=exchange.SEVERITY_NAMES[rp.SEVERITY_CODES[c.level]],
            occurTime=c.occurred_at,
            receiveTime=r.versions[0].at if c.occurred_at is None else min(c.occurred_at, r.versions[0].at),
            areaCode=c.area_code,
            address=c.place or c.title,
            longitude=c.lon,
            latitude=c.lat,
            casualties=exchange.Casualties(
                deaths=f.deaths,
                missing=f.missing,
                injured=f.injured,
                trapped=f.trapped,
                evacuated=f.evacuated,
                directLoss=f.direct_loss_10k_yuan,
            ),
            cause=c.cause,
            measures=c.measures,
            teams=list(c.teams),
            supplies=list(c.supplies),
            trend=c.trend,
            aftermath=c.aftermath,
        ),
        changes=[exchange.Change(**ch) for ch in s.changes.get(v.n, [])],
    )
    return form.model_dump(mode="json")


def eido(settings: Settings, s: Stored) -> dict[str, Any]:
    """The report as NENA EIDO JSON (NENA-STA-021): one incident component, its location,
    the report's text as notes, the teams as emergency resources — for systems that speak
    EIDO rather than the Chinese form."""
    r = s.report
    v = r.approved or r.current
    c = v.content
    updated = r.sent_at or r.approved_at or v.at
    location_id = f"{r.report_id}-L"
    notes = [
        ("title", c.title), ("measures", c.measures), ("cause", c.cause), ("trend", c.trend),
        ("aftermath", c.aftermath),
        ("figures", ", ".join(f"{k}={x}" for k, x in c.figures.as_dict().items() if x is not None)),
    ]  # fmt: skip
    return {
        "$schema": "https://raw.githubusercontent.com/NENA911/EIDO-JSON/main/Schema/EIDO-JSON.schema.json",
        "eidoMessageIdentifier": f"urn:emergency:uid:eido:{r.report_id}:v{v.n}",
        "lastUpdateTimeStamp": updated.isoformat(),
        "sendingSystemIdentifier": f"urn:wuwang:command:{settings.command.report_area_code}",
        "incidentComponent": [
            {
                "componentIdentifier": r.report_id,
                "incidentTrackingIdentifier": f"urn:emergency:uid:incidentid:{r.incident_id}",
                "lastUpdateTimeStamp": updated.isoformat(),
                "incidentTypeCommonRegistryText": [rp.EVENT_CODES[c.incident_type], str(c.incident_type)],
                "incidentStatusCommonRegistryText": ["Exercise" if s.exercise_id else "Actual", str(r.state)],
                "incidentPriorityCommonRegistryText": str(c.level.value),
                "locationReference": location_id,
            }
        ],
        "locationComponent": [
            {
                "$id": location_id,
                "componentIdentifier": location_id,
                "locationByValue": {
                    "civicAddressText": c.place,
                    "country": "CN",
                    "administrativeAreaCode": c.area_code,
                    "geo": None
                    if c.lat is None or c.lon is None
                    else {"type": "Point", "coordinates": [c.lon, c.lat]},
                },
            }
        ],
        "notesComponent": [
            {
                "componentIdentifier": f"{r.report_id}-N{i}",
                "noteDateTimeStamp": updated.isoformat(),
                "noteText": f"{k}: {t}",
            }
            for i, (k, t) in enumerate(notes, 1)
            if t
        ],
        "emergencyResourceComponent": [
            {"componentIdentifier": f"{r.report_id}-T{i}", "resourceName": team}
            for i, team in enumerate(c.teams, 1)
        ],
    }


async def queue(conn: AsyncConnection[Any], report_id: str, payload: dict[str, Any], now: datetime) -> None:
    """Into the outbox with the report's ``sent`` state (a second queueing fails: the key)."""
    await conn.execute(
        "INSERT INTO upward_outbox (report_id, payload, queued_at, next_attempt_at) VALUES (%s, %s, %s, %s)",
        (report_id, Jsonb(payload), now, now),
    )


# --- what comes back ----------------------------------------------------------------------


async def record_receipt(
    conn: AsyncConnection[Any], receipt: exchange.Receipt, *, actor: Principal | str
) -> bool:
    """A 回执 against its report (once per receipt id); False if the report is unknown
    or the receipt was recorded before."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT incident_id FROM upward_report WHERE report_id = %s", (receipt.reportId,))
        row = await cur.fetchone()
    if row is None:
        return False
    cur2 = await conn.execute(
        "INSERT INTO upward_receipt (receipt_id, report_id, received_at, signed_by, body)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING receipt_id",
        (
            receipt.receiptId,
            receipt.reportId,
            receipt.receivedTime,
            receipt.signedBy,
            Jsonb(receipt.model_dump(mode="json")),
        ),
    )
    if await cur2.fetchone() is None:
        return False
    if receipt.status != "received":
        return True
    stored = await reports_of(conn, row["incident_id"], for_update=True)
    report = next(s.report for s in stored if s.report.report_id == receipt.reportId)
    if report.state is rp.ReportState.SENT:
        after = rp.acknowledge(report, by=f"{receipt.unit.name} {receipt.signedBy}", at=receipt.receivedTime)
        await save_state(conn, after)
        await step_audit(conn, actor, "receipt", after, receipt_id=receipt.receiptId)
        exercise_id = next(s.exercise_id for s in stored if s.report.report_id == receipt.reportId)
        await log_receipt(conn, exercise_id, after, receipt.receiptId)
    return True


async def record_instruction(conn: AsyncConnection[Any], ins: exchange.Instruction, now: datetime) -> bool:
    """A 批示 from the upper level, once per instruction id; audited."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT exercise_id, title FROM incident WHERE id = %s", (ins.eventId,))
        inc = await cur.fetchone()
    cur2 = await conn.execute(
        "INSERT INTO upward_instruction (instruction_id, report_id, incident_id, exercise_id, from_unit,"
        " issued_by, text, issued_at, received_at) VALUES (%s,"
        " (SELECT report_id FROM upward_report WHERE report_id = %s),"
        " %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING instruction_id",
        (
            ins.instructionId,
            ins.reportId,
            ins.eventId,
            inc["exercise_id"] if inc else None,
            ins.fromUnit.name,
            ins.issuedBy,
            ins.text,
            ins.issuedTime,
            now,
        ),
    )
    if await cur2.fetchone() is None:
        return False
    # on the duty desk like the leader's own: passed on and followed up there (docs/duty-and-reporting.md)
    desk_id = "DI-UP-" + re.sub(r"[^0-9A-Za-z-]", "-", ins.instructionId)[:57]
    await insert_instruction(
        conn,
        receive_instruction(
            instruction_id=desk_id, exercise_id=inc["exercise_id"] if inc else None, received_at=now,
            issued_by=f"{ins.fromUnit.name} {ins.issuedBy}".strip()[:100], text=ins.text,
            recorded_by="system:upward", incident_id=ins.eventId,
        ),
        "system:upward",
    )  # fmt: skip
    await audit.record(
        conn, "system", "upward_report.instruction", object_type="incident", object_id=ins.eventId,
        detail={"instruction_id": ins.instructionId, "from": ins.fromUnit.name, "text": ins.text},
    )  # fmt: skip
    return True


async def instructions(conn: AsyncConnection[Any], scope: Scope, limit: int = 200) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT instruction_id, report_id, incident_id, exercise_id, from_unit, issued_by, text,"
                " issued_at,"
                " received_at, passed_to, follow_up FROM upward_instruction WHERE {}"
                " ORDER BY received_at DESC LIMIT %(limit)s"
            ).format(scope.where(name="ex")),
            {**scope.named("ex"), "limit": limit},
        )
        rows = await cur.fetchall()
    return [{k: (_iso(v) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]


# --- the link to the upper level ------------------------------------------------------------


class UpwardLink(Periodic):
    """Each round: send what the outbox holds (retried with back-off), fetch new
    instructions, and escalate clocks that went overdue (once each) to the leader on
    duty. Without ``COMMAND_UPPER_URL`` only the escalations run."""

    name = "upward-link"

    def __init__(self, interval_s: float = 5.0, escalate_every_s: float = ESCALATE_EVERY_S) -> None:
        super().__init__(interval_s)
        self.instructions_since: datetime | None = None
        self.receipts_since: datetime | None = None
        self.escalate_every_s = escalate_every_s
        self.escalated_at: datetime | None = None

    async def round(self, state: CommandState) -> int:
        at = datetime.now(UTC)
        done = 0
        # the sweep reads every open incident: not at the sending's pace
        if self.escalated_at is None or (at - self.escalated_at).total_seconds() >= self.escalate_every_s:
            done += await escalate(state, at)
            self.escalated_at = at
        url = state.settings.command.upper_url
        if url:
            async with httpx2.AsyncClient(
                base_url=url, timeout=state.settings.command.upper_timeout_s
            ) as client:
                done += await send_due(state, client)
                done += await self.fetch_receipts(state, client)
                done += await self.fetch_instructions(state, client)
        return done

    async def fetch_receipts(self, state: CommandState, client: httpx2.AsyncClient) -> int:
        """回执 the upper level signed after it took the report (answered 202): recorded
        against their reports, once per receipt id."""
        since = self.receipts_since - RECEIPTS_OVERLAP if self.receipts_since else None
        try:
            response = await client.get(
                exchange.RECEIPTS_PATH, params={"since": since.isoformat()} if since else {}
            )
            if response.status_code == 404:  # a platform that answers every report at once
                return 0
            response.raise_for_status()
            items, refused = exchange.each_valid(exchange.Receipt, response.json())
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("upper level: receipts not fetched: %s", exc)
            return 0
        for why in refused:
            log.warning("upper level: a receipt refused: %s", why)
        count = 0
        async with state.pool.connection() as conn, conn.transaction():
            for receipt in items:
                count += await record_receipt(conn, receipt, actor="system")
        if items:
            self.receipts_since = max(r.receivedTime for r in items)
        return count

    async def fetch_instructions(self, state: CommandState, client: httpx2.AsyncClient) -> int:
        params = {"since": self.instructions_since.isoformat()} if self.instructions_since else {}
        try:
            response = await client.get(exchange.INSTRUCTIONS_PATH, params=params)
            response.raise_for_status()
            items, refused = exchange.each_valid(exchange.Instruction, response.json())
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("upper level: instructions not fetched: %s", exc)
            return 0
        for why in refused:
            log.warning("upper level: an instruction refused: %s", why)
        count = 0
        now = datetime.now(UTC)
        async with state.pool.connection() as conn, conn.transaction():
            for ins in items:
                count += await record_instruction(conn, ins, now)
        if items:
            self.instructions_since = max(i.issuedTime for i in items)
        return count


async def send_due(state: CommandState, client: httpx2.AsyncClient) -> int:
    """Post every queued report that is due; a receipt in the answer is recorded (a 202
    answer is delivered too: its receipt is fetched later)."""
    now = datetime.now(UTC)
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT report_id, payload, attempts FROM upward_outbox WHERE delivered_at IS NULL"
            " AND next_attempt_at <= %s ORDER BY queued_at LIMIT 20",
            (now,),
        )
        due = await cur.fetchall()
    sent = 0
    for report_id, payload, attempts in due:
        error: str | None = None
        receipt: exchange.Receipt | None = None
        try:
            response = await client.post(
                exchange.REPORTS_PATH, json=payload, headers={"Idempotency-Key": report_id}
            )
            if response.status_code >= 500:
                error = f"HTTP {response.status_code}"
            elif response.status_code != 202:  # 202: taken, its receipt comes later (fetch_receipts)
                receipt = exchange.Receipt.model_validate(response.json())
        except (httpx2.HTTPError, ValueError, ValidationError) as exc:
            error = str(exc) or type(exc).__name__
        async with state.pool.connection() as conn, conn.transaction():
            if error is not None:
                delay = RETRY_S[min(attempts, len(RETRY_S) - 1)]
                await conn.execute(
                    "UPDATE upward_outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s"
                    " WHERE report_id = %s",
                    (error, now + timedelta(seconds=delay), report_id),
                )
                continue
            await conn.execute(
                "UPDATE upward_outbox SET attempts = attempts + 1, delivered_at = %s, last_error = %s"
                " WHERE report_id = %s",
                (now, receipt.reason if receipt and receipt.status == "rejected" else None, report_id),
            )
            if receipt is not None:
                await record_receipt(conn, receipt, actor="system")
            sent += 1
    return sent


async def escalate(state: CommandState, now: datetime) -> int:
    """Record each clock that is overdue (once) as escalated to the leader on duty, with
    its line in the duty log; whether it is met since is the clocks' own answer."""
    rule = rule_of(state.settings)
    zone = ZoneInfo(state.settings.command.timezone)
    count = 0
    async with state.pool.connection() as conn, conn.transaction():
        for scope_row in await (
            await conn.execute(
                "SELECT DISTINCT exercise_id FROM incident WHERE is_open OR ended_at > %s",
                (now - timedelta(days=7),),  # ended ones may still owe their final report
            )
        ).fetchall():
            for b in await board(conn, rule, Scope.of(scope_row[0]), now):
                if b["state"] != str(rp.ClockState.OVERDUE):
                    continue
                cur = await conn.execute(
                    "INSERT INTO upward_clock_escalation (incident_id, clock_key, exercise_id, clock_kind,"
                    " due_at,"
                    " escalated_at, escalated_to) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    " RETURNING clock_key",
                    (
                        b["incident_id"],
                        b["key"],
                        b["exercise_id"],
                        b["kind"],
                        b["due_at"],
                        now,
                        LEADER_ON_DUTY,
                    ),
                )
                if await cur.fetchone() is not None:
                    count += 1
                    due = datetime.fromisoformat(b["due_at"]).astimezone(zone).strftime("%m-%d %H:%M")
                    text, say = _log_line(
                        "upward.log.clock_overdue", {"clock": f"upward.clock.{b['kind']}"},
                        title=b["title"], due=due,
                    )  # fmt: skip
                    await record_duty_event(
                        conn, Scope.of(b["exercise_id"]),
                        EntryKind.CLOCK_OVERDUE, f"{b['incident_id']}:{b['key']}", text, at=now,
                        detail={
                            "incident_id": b["incident_id"], "clock": b["key"], "to": LEADER_ON_DUTY,
                            "say": say,
                        },
                    )  # fmt: skip
                    await audit.record(
                        conn, "system", "upward_report.escalate",
                        object_type="incident", object_id=b["incident_id"],
                        detail={"clock": b["key"], "due_at": b["due_at"], "to": LEADER_ON_DUTY},
                    )  # fmt: skip
    return count
