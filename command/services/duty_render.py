"""The duty log (值班日志) as a file: CSV for a spreadsheet and a printable HTML page, per
shift or per day, in Chinese or English (the words are the shared catalogues')."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from jinja2 import Environment, select_autoescape

from command.domain import duty as rules
from command.services.report_render import Lang, said, spreadsheet_text
from wuwang import dutylog, i18n


@dataclass(frozen=True, slots=True)
class LogPeriod:
    """What is exported: a shift (with its people) or a day, and its entries."""

    title: str  # the shift's id, or the day (YYYY-MM-DD)
    start: datetime
    end: datetime
    entries: Sequence[rules.LogEntry]
    shifts: Sequence[rules.DutyShift] = ()
    people: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # writer → name, role


def _tongue(lang: Lang) -> i18n.Lang:
    return "zh_CN" if lang == "zh" else "en"


def kind_label(kind: rules.EntryKind | str, lang: Lang) -> str:
    return dutylog.kind_label(_tongue(lang), str(kind))


def entry_text(entry: rules.LogEntry, lang: Lang) -> str:
    return dutylog.entry_line(_tongue(lang), str(entry.kind), entry.text, entry.detail)


def written_by(entry: rules.LogEntry, period: LogPeriod, lang: Lang) -> str:
    """Who wrote the entry, as the console's duty panel says it (name and role); the
    command service's own entries as "system"."""
    return dutylog.writer_label(_tongue(lang), entry.actor, period.people) or said(lang, "actor.system")


def _local(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def filename(period: LogPeriod, extension: str) -> str:
    return f"duty-log-{period.title}.{extension}"


def to_csv(period: LogPeriod, lang: Lang, tz: tzinfo) -> bytes:
    """One row per entry, local time; every text neutralised for spreadsheets."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([said(lang, f"duty.col.{c}") for c in ("at", "kind", "text", "actor", "ref")])
    for e in period.entries:
        writer.writerow(
            [
                _local(e.at, tz),
                kind_label(e.kind, lang),
                spreadsheet_text(entry_text(e, lang)),
                spreadsheet_text(written_by(e, period, lang)),
                spreadsheet_text(e.ref or ""),
            ]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # the BOM: Excel then reads UTF-8


_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_TEMPLATE = _ENV.from_string(
    """<!doctype html>
<html lang="{{ html_lang }}"><head><meta charset="utf-8"><title>{{ heading }}</title>
<style>
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; margin-bottom: .2em; } .muted { color: #555; }
table { border-collapse: collapse; width: 100%; margin-top: 1em; font-size: .92em; }
th, td { border: 1px solid #999; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #eee; } td.at { white-space: nowrap; }
.signatures { margin-top: 2em; display: flex; gap: 4em; }
@media print { body { margin: 1cm; } th { background: none; } }
</style></head><body>
<h1>{{ heading }}</h1>
<p class="muted">{{ period_text }}</p>
{% for s in shifts %}
<p>{{ s.label }}</p>
{% endfor %}
<table><thead><tr>{% for h in head %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr><td class="at">{{ r[0] }}</td>
<td>{{ r[1] }}</td><td>{{ r[2] }}</td><td>{{ r[3] }}</td></tr>
{% else %}<tr><td colspan="4" class="muted">{{ empty }}</td></tr>{% endfor %}
</tbody></table>
<div class="signatures"><span>{{ signed_leader }}</span><span>{{ signed_officer }}</span></div>
</body></html>
"""
)


def to_html(period: LogPeriod, lang: Lang, tz: tzinfo, names: Mapping[str, str]) -> str:
    """A page to print and sign: the period, who was on duty, every entry."""
    shifts = [
        {
            "label": said(
                lang,
                "duty.export_shift",
                start=_local(s.starts_at, tz),
                end=_local(s.ends_at, tz),
                leader=names.get(s.leader, s.leader),
                officers="、".join(names.get(u, u) for u in s.officers),
            )
        }
        for s in period.shifts
    ]
    return _TEMPLATE.render(
        html_lang="zh-CN" if lang == "zh" else "en",
        heading=said(lang, "duty.export_title", title=period.title),
        period_text=said(
            lang, "duty.export_period", start=_local(period.start, tz), end=_local(period.end, tz)
        ),
        shifts=shifts,
        head=[said(lang, f"duty.col.{c}") for c in ("at", "kind", "text", "actor")],
        rows=[
            (_local(e.at, tz), kind_label(e.kind, lang), entry_text(e, lang), written_by(e, period, lang))
            for e in period.entries
        ],
        empty=said(lang, "duty.log_empty"),
        signed_leader=said(lang, "duty.sign_leader_line"),
        signed_officer=said(lang, "duty.sign_officer_line"),
    )
