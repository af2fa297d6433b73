"""Data values in the console's language.

The command service sends some data in both languages (an item's ``name_zh`` and
``name_en``, a plan's ``title_zh`` and ``title_en``, a checklist step's ``text_zh`` and
``text_en``) and some as codes (a unit ``piece``, an actor ``system:correlator``). These
helpers choose the words for one language, so that no code and no word of the other
language reaches a screen. Proper names (of teams, places, warehouses and people) and
what people typed (addresses, notes) are shown as they were written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dashboard.i18n import Lang, has, t


def bilingual(lang: Lang, row: Mapping[str, Any], field: str, fallback: str = "") -> str:
    """``row[field + "_zh"]`` or ``row[field + "_en"]`` by language (the other one, then
    ``fallback``, when the chosen one is missing)."""
    mine, other = ("_zh", "_en") if lang == "zh_CN" else ("_en", "_zh")
    for key in (field + mine, field + other):
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
    return fallback


def measure(lang: Lang, unit: Any, unit_zh: Any = None) -> str:
    """A unit of a quantity: the item's own Chinese counter word (``unit_zh``, 个/套/顶 …)
    when it has one, else the catalogue's ``measure.<unit>`` (件, 套, 千克 …)."""
    code = str(unit or "")
    if lang == "zh_CN" and isinstance(unit_zh, str) and unit_zh:
        return unit_zh
    return t(lang, f"measure.{code}") if has(lang, f"measure.{code}") else code


def item_name(lang: Lang, row: Mapping[str, Any], code_field: str = "item_code") -> str:
    """A supply item's name (``name_zh``/``name_en``), its code only when it has none."""
    return bilingual(lang, row, "name", str(row.get(code_field) or ""))


def actor(lang: Lang, who: Any) -> str:
    """Who did something: a user's id as it is; the command service itself
    (``system:correlator``, ``system:plans`` …) in words."""
    text = str(who or "")
    if text == "system" or text.startswith("system:"):
        part = text.partition(":")[2]
        return (
            t(lang, f"actor.system_{part}") if has(lang, f"actor.system_{part}") else t(lang, "actor.system")
        )
    return text


_HAN = re.compile(r"[\u3400-\u9fff]")


def distance_text(lang: Lang, metres: float) -> str:
    """ "1.2 km" / "850 m" in ``lang``, as the browser says it (``W.distanceText``)."""
    if metres < 1000:
        return t(lang, "unit.m", n=round(metres / 10) * 10)
    return t(lang, "unit.km", n=f"{metres / 1000:.{1 if metres < 10_000 else 0}f}")


def incident_title(lang: Lang, inc: Mapping[str, Any]) -> str:
    """An incident's title in ``lang``: the command service writes the titles it makes
    in Chinese (``火灾 · 樊城区人民路12号``); in English the incident's type says what it
    is and the place (a name) stays. A title without Chinese (typed so) is shown as it
    is. The browser says the same (``W.incidentTitle``, assets/00-wuwang-core.js)."""
    title = str(inc.get("title") or "")
    ident = str(inc.get("id") or inc.get("incident_id") or "")
    if lang == "zh_CN" or not _HAN.search(title):
        return title or ident
    kind = inc.get("type") or inc.get("incident_type")
    if not (kind and has(lang, f"type.{kind}")):
        return ident
    # "火灾 · 樊城区人民路12号": what, then where; the place is a name and stays as written
    _what, sep, where = title.partition(" · ")
    return t(lang, f"type.{kind}") + (f" · {where}" if sep and where else "")


def user_label(lang: Lang, who: Any) -> str:
    """Who is logged in, for the header: a team's account as "队伍 T-FIRE-01" / "Team
    T-FIRE-01" (its display name was made by the system, in one language), a person
    by the name they are registered with."""
    team = getattr(who, "team_id", None)
    if team:
        return t(lang, "user.team", team=team)
    return str(getattr(who, "display_name", "") or getattr(who, "user_id", ""))


def alarm_summary(lang: Lang, src: Mapping[str, Any], teams: Mapping[str, str] | None = None) -> str:
    """An alarm's one-line summary: the ingest writes it in Chinese (``110报警 交通:
    …``); in English the alarm's kind says what it was. A field report is said from its
    parts (:func:`report_summary`)."""
    if src.get("kind") == "report":
        return report_summary(lang, src, teams or {})
    summary = str(src.get("summary") or "")
    if lang == "zh_CN" or (summary and not _HAN.search(summary)):
        return summary or str(src.get("category") or "")
    kind = f"inbox.kind.{src.get('kind')}"
    return t(lang, kind) if has(lang, kind) else ""


def district(row: Mapping[str, Any]) -> str | None:
    """The district a row's point lies in (its name as written: a proper name)."""
    from dashboard.layout.inbox import district_of

    lat, lon = row.get("lat"), row.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return district_of(float(lat), float(lon))
    return None


def report_category(lang: Lang, category: str) -> str:
    """A report's category in words: the field page's (``report.<code>``), a grid
    worker's (``grid.category.<code>``), a category typed in Chinese as it is; any other
    code is "other", never shown as a code."""
    for key in (f"report.{category}", f"grid.category.{category}"):
        if has(lang, key):
            return t(lang, key)
    return category if _HAN.search(category) else t(lang, "report.other")


def report_summary(lang: Lang, src: Mapping[str, Any], teams: Mapping[str, str]) -> str:
    """A field report as a source of an incident: who (a team by name with its id, or a
    grid worker), its category in words and what was written. The ingest's summary
    (``队伍 T-1 上报 flood: 已到达``, ingest/alarms.py) holds the written text after its
    first ": "; the rest of it is said again from the source and the category."""
    from dashboard.layout import team_text

    source = str(src.get("source") or "")
    parent, _, last = source.rpartition("/")
    who = (
        team_text(dict(teams), last)
        if parent == "team" or parent.endswith("/team")
        else t(lang, "source.grid_worker")
    )
    summary = str(src.get("summary") or "")
    _head, sep, written = summary.partition(": ")
    return t(
        lang,
        "source.report_line",
        who=who,
        what=report_category(lang, str(src.get("category") or "")),
        text=written if sep else summary,
    )
