"""Why the recommender ranked or skipped something, and why the system did what it wrote
on a record: reason codes with parameters.

The recommender (:mod:`command.domain.recommend`) says *why* as :class:`Reason` values
— a stable code and a few parameters — never as sentences. This module lists those codes
and the parameters each carries; their words are in the shared catalogues
(``reason.<code>`` and ``why.<code>`` in ``wuwang/i18n``), the same words the console
shows. :func:`render` turns a reason into the text the API's text fields and the
after-action report carry (zh-CN unless asked otherwise).

Parameters are plain numbers and strings (JSON as they are). Some are shown rather than
printed as they are (:func:`wuwang.i18n.shown_value`), here and in the console alike:

* a name ending in ``_s`` is a number of seconds, shown as a duration (``6 min 14 s``,
  ``6 分 14 秒``);
* ``status`` is a team status (``en_route``), shown by its name (在途);
* ``kind`` is a warehouse kind (``production_capacity``), shown by its name (产能储备);
* ``alarm_kind`` an alarm's kind, ``incident_type`` and ``types`` incident types.

Pure: no I/O (the catalogues are package data, read once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from wuwang import i18n
from wuwang.i18n import DEFAULT_LANG, LANGUAGES, Lang, placeholders

__all__ = [
    "CATALOGUE",
    "CODES",
    "DEFAULT_LANG",
    "LANGUAGES",
    "WHY",
    "Lang",
    "Param",
    "Reason",
    "ReasonText",
    "Said",
    "duration",
    "placeholders",
    "render",
    "shown_value",
]

Param = str | int | float

_NO_PARAMS: Mapping[str, Param] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: a code of :data:`CATALOGUE` and the values its texts need."""

    code: str
    params: Mapping[str, Param] = field(default_factory=lambda: _NO_PARAMS)

    def __hash__(self) -> int:  # params is a mapping: hash its items
        return hash((self.code, tuple(sorted(self.params.items()))))

    def text(self, lang: Lang = DEFAULT_LANG) -> str:
        return render(self, lang)


@dataclass(frozen=True, slots=True)
class Said:
    """A reason the system writes on a record: its code (shown in the reader's language)
    and the text kept for the API, the audit and readers that know no codes."""

    text: str
    why: Reason

    @classmethod
    def of(cls, why: Reason) -> Said:
        return cls(render(why), why)


@dataclass(frozen=True, slots=True)
class ReasonText:
    """The parameters a code carries; its words are ``<prefix>.<code>`` in the catalogues."""

    prefix: str
    code: str
    params: tuple[str, ...]

    def template(self, lang: Lang) -> str:
        """The code's words in ``lang`` (``str.format`` templates; numbers may carry a
        format spec, ``{route_km:.1f}``)."""
        return i18n.text(lang, f"{self.prefix}.{self.code}")


def _codes(prefix: str, params: Mapping[str, str]) -> Mapping[str, ReasonText]:
    return MappingProxyType(
        {code: ReasonText(prefix, code, tuple(names.split())) for code, names in params.items()}
    )


#: Every code the recommender emits, with its parameters. Adding one: here, in both
#: catalogues (``reason.<code>``) and in docs/reserve-and-rosters.md; the tests check all three.
CATALOGUE: Mapping[str, ReasonText] = _codes(
    "reason",
    {
        "travel.great_circle": "straight_km road_factor route_km speed_kmh",
        "eta": "eta_s",
        "team.position_age": "age_s",
        "team.from_base.no_position": "",
        "team.from_base.stale_position": "age_s",
        "team.on_shift_until": "until",
        "team.skipped.excluded": "",
        "team.skipped.busy": "status",
        "team.skipped.off_duty": "",
        "team.skipped.not_on_shift": "",
        "team.skipped.no_position": "",
        "team.skipped.stale_position": "age_s",
        "warehouse.stock.covers": "kind available",
        "warehouse.stock.partial": "kind available quantity",
        "warehouse.lead_time": "lead_time_s",
        "warehouse.production": "kind per_day lead_time_s quantity ready_s",
        "warehouse.skipped.expired": "",
        "warehouse.skipped.reserved": "",
        "warehouse.skipped.expired_or_reserved": "",
    },
)

CODES: frozenset[str] = frozenset(CATALOGUE)

#: Why the system did what it wrote on an incident's record (the ``reason_code`` and
#: ``reason_args`` of an event): the correlator, the alarm inbox, a team's report, a
#: dispatch. Adding one: here, in both catalogues (``why.<code>``) and in
#: docs/incidents.md; the tests check all three.
WHY: Mapping[str, ReasonText] = _codes(
    "why",
    {
        "correlation.joined": "alarm_kind incident_type incident_id distance_m gap_s within_m window_s",
        "correlation.joined_same_source": "alarm_kind incident_type incident_id source gap_s",
        "correlation.opened": "alarm_kind incident_type types within_m window_s",
        "correlation.opened_no_position": "alarm_kind incident_type source",
        "report.to_order": "team order_id incident_id",
        "inbox.opened": "row_id count",
        "inbox.opened_note": "row_id count note",
        "inbox.joined": "row_id count",
        "dispatch.verified": "",
        "release.all_recalled": "",
    },
)


def duration(seconds: float, lang: Lang = DEFAULT_LANG) -> str:
    """Seconds as the reasons say them: ``42 s``, ``6 min 14 s``, ``2 h 05 min``."""
    return i18n.duration(lang, seconds)


def shown_value(name: str, value: Param, lang: Lang) -> Param:
    """A parameter as a text shows it (durations and vocabulary names, see above)."""
    shown: Param = i18n.shown_value(lang, name, value)
    return shown


def render(reason: Reason, lang: Lang = DEFAULT_LANG) -> str:
    """The reason's text in ``lang``. An unknown code (a travel model of one's own), or
    parameters its words cannot take, show as the code with its parameters — visible,
    never a crash."""
    entry = CATALOGUE.get(reason.code) or WHY.get(reason.code)
    said = i18n.reason(lang, entry.prefix, reason.code, reason.params) if entry is not None else None
    if said is None:
        return " ".join([reason.code, *(f"{k}={v}" for k, v in reason.params.items())])
    return said
