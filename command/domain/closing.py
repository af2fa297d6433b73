"""Closing guards (结案把关): what is still open when an incident is resolved or closed.

Resolving (处置完毕) or closing (结案) an incident while plan checklist items are undone,
teams are still out (assigned and not released) or supplies are still reserved for it
is refused with what is open, unless a commander overrides with a reason — which goes
on the record and into the audit log. Pure: the edge gathers the pending checklist and
the reserved supplies; the teams come from the incident itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from command.domain.incidents import (
    Actor,
    DomainError,
    Incident,
    InvalidCommand,
    authorise_closing_override,
)
from wuwang import i18n


@dataclass(frozen=True, slots=True)
class OpenChecklistItem:
    plan_id: str
    item_id: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class OpenTeam:
    team_id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OpenSupply:
    item_code: str
    reserved: int
    name: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class OpenWork:
    """What stands between an incident and its resolution or closing."""

    checklist: tuple[OpenChecklistItem, ...] = ()
    teams: tuple[OpenTeam, ...] = ()
    supplies: tuple[OpenSupply, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.checklist or self.teams or self.supplies)

    def as_body(self) -> dict[str, list[dict[str, object]]]:
        """The ``open`` member of the 409 body (docs/incidents.md §3.1)."""
        return {
            "checklist": [
                {"plan_id": c.plan_id, "item_id": c.item_id, "zh": c.zh, "en": c.en} for c in self.checklist
            ],
            "teams": [{"team_id": t.team_id, "name": t.name} for t in self.teams],
            "supplies": [
                {"item_code": s.item_code, "name": s.name, "unit": s.unit, "reserved": s.reserved}
                for s in self.supplies
            ],
        }

    def summary(self, lang: i18n.Lang = i18n.DEFAULT_LANG) -> str:
        """The open work in a few words (the catalogue's ``closing.*``)."""
        listed = i18n.text(lang, "why.list_separator").join
        parts = []
        if self.checklist:
            parts.append(i18n.text(lang, "closing.open_checklist", n=len(self.checklist)))
        if self.teams:
            parts.append(i18n.text(lang, "closing.open_teams", teams=listed(t.team_id for t in self.teams)))
        if self.supplies:
            supplies = listed(f"{s.item_code}×{s.reserved}" for s in self.supplies)
            parts.append(i18n.text(lang, "closing.open_supplies", supplies=supplies))
        return i18n.text(lang, "closing.separator").join(parts)


def open_work(
    incident: Incident,
    *,
    pending_checklist: Iterable[OpenChecklistItem] = (),
    reserved_supplies: Iterable[OpenSupply] = (),
    team_names: Mapping[str, str] | None = None,
) -> OpenWork:
    """The open work of ``incident``: the checklist items its active plan still has
    undone (given), its teams not released (from the record), and the supplies still
    reserved for it (given; zero reservations are not open)."""
    names = team_names or {}
    return OpenWork(
        checklist=tuple(pending_checklist),
        teams=tuple(OpenTeam(t, names.get(t)) for t in incident.active_team_ids),
        supplies=tuple(s for s in reserved_supplies if s.reserved > 0),
    )


class ClosingBlocked(DomainError):
    """Resolving or closing with open work and no override (HTTP 409 with ``open``)."""

    def __init__(self, reason: str, work: OpenWork) -> None:
        super().__init__(reason)
        self.work = work


@dataclass(frozen=True, slots=True)
class Overridden:
    """A commander's override of open work: goes into the event's reason and the audit."""

    reason: str
    work: OpenWork

    def record_text(self, lang: i18n.Lang = i18n.DEFAULT_LANG) -> str:
        return i18n.text(lang, "closing.override", reason=self.reason, work=self.work.summary(lang))


def check_closing(
    incident: Incident,
    what: str,
    work: OpenWork,
    *,
    actor: Actor,
    override_reason: str | None,
) -> Overridden | None:
    """Whether ``what`` ("resolve" or "close") may go ahead on ``incident`` given its
    open ``work``: ``None`` when nothing is open (an override then changes nothing);
    :class:`Overridden` when a commander overrides; raises ``Forbidden`` for an override
    by anyone else, ``InvalidCommand`` for a blank override reason, and
    :class:`ClosingBlocked` for open work without an override."""
    if override_reason is not None:
        authorise_closing_override(incident, actor, what)
        if not override_reason.strip():
            raise InvalidCommand(f"an override of the closing guard needs a reason to {what}")
    if work.empty:
        return None
    if override_reason is None:
        raise ClosingBlocked(
            f"cannot {what} incident {incident.incident_id}: {_open_text(work)}; "
            "finish them, or a commander may override with a reason",
            work,
        )
    return Overridden(override_reason.strip(), work)


def _open_text(work: OpenWork) -> str:
    parts = []
    if work.checklist:
        parts.append(f"{len(work.checklist)} checklist item(s) open")
    if work.teams:
        parts.append("team(s) still out: " + ", ".join(t.team_id for t in work.teams))
    if work.supplies:
        parts.append(
            "supplies still reserved: " + ", ".join(f"{s.item_code} ×{s.reserved}" for s in work.supplies)
        )
    return "; ".join(parts)
