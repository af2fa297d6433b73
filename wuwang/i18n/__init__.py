"""The message catalogues: every word the console, the API's reasons and the reports say.

One catalogue per language, ``zh_CN.json`` (the default) and ``en.json``, with the same
flat keys (``"queue.title"``) and the same ``{placeholders}``. They live in the shared
package because the command service (reports, reasons) and the dashboard (screens) both
read them, and services never import each other. The browser gets the catalogue of its
language whole and looks keys up the same way (``wuwang.t`` in the dashboard's assets).

Pure: the catalogues are package data, read once. Code keeps codes; words are asked for
here by key (``state.<code>``, ``reason.<code>`` …).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

Lang = Literal["zh_CN", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh_CN", "en")
DEFAULT_LANG: Lang = "zh_CN"


@cache
def catalogue(lang: Lang) -> dict[str, str]:
    """The whole catalogue of ``lang`` (read once)."""
    raw = resources.files(__package__).joinpath(f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"catalogue {lang}.json must be a flat object of strings")
    return cast(dict[str, str], data)


def lang_of(value: Any) -> Lang:
    """A language from an untrusted value (a browser store, a query): unknown → the default."""
    return cast(Lang, value) if value in LANGUAGES else DEFAULT_LANG


def has(lang: Lang, key: str) -> bool:
    return key in catalogue(lang)


def text(lang: Lang, key: str, **values: Any) -> str:
    """The words for ``key`` in ``lang``, with ``{name}`` placeholders filled.

    A key missing from the catalogue shows as the key itself (visible, never a crash);
    the test-suite makes sure none is missing."""
    template = catalogue(lang).get(key)
    if template is None:
        return key
    return template.format(**values) if values else template


def name_of(lang: Lang, prefix: str, code: str) -> str:
    """A code's name (``name_of("en", "state", "on_scene")`` → ``On scene``); the code
    itself when the catalogue has no name for it."""
    key = f"{prefix}.{code}"
    return text(lang, key) if has(lang, key) else code


def placeholders(template: str) -> set[str]:
    """The parameter names a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def duration(lang: Lang, seconds: float) -> str:
    """Seconds as the reasons say them: ``42 秒``, ``6 分 14 秒``, ``2 小时 05 分``."""
    s = round(seconds)
    if s < 60:
        return text(lang, "unit.duration_s", s=s)
    if s < 3600:
        return text(lang, "unit.duration_min_s", m=s // 60, s=s % 60)
    return text(lang, "unit.duration_h_min", h=s // 3600, m=s % 3600 // 60)


#: Reason parameters said by name rather than printed: the catalogue prefix of their values.
_NAMED_PARAMS: Mapping[str, str] = {
    "status": "team_status",
    "kind": "warehouse",
    "alarm_kind": "inbox.kind",
}
#: Parameters holding incident types (``types``: several, comma-separated).
_TYPE_PARAMS = frozenset({"incident_type", "types"})


def is_shown(name: str) -> bool:
    """Whether a reason parameter is shown by its words rather than printed as it is."""
    return name.endswith("_s") or name in _NAMED_PARAMS or name in _TYPE_PARAMS


def shown_value(lang: Lang, name: str, value: Any) -> Any:
    """A reason's parameter as its text shows it: ``*_s`` seconds as a duration, ``status``
    a team status, ``kind`` a warehouse kind, ``alarm_kind`` an alarm kind and
    ``incident_type``/``types`` incident types by their names; anything else as it is."""
    if name.endswith("_s"):
        return duration(lang, value) if isinstance(value, (int, float)) else value
    if name in _NAMED_PARAMS:
        return name_of(lang, _NAMED_PARAMS[name], str(value))
    if name in _TYPE_PARAMS:
        names = [name_of(lang, "type", code.strip()) for code in str(value).split(",")]
        return text(lang, "why.list_separator").join(names)
    return value


def reason(lang: Lang, prefix: str, code: str, params: Mapping[str, Any]) -> str | None:
    """A coded reason in ``lang`` (``reason.<code>`` the recommender's, ``why.<code>`` one
    the system wrote on a record), its parameters shown as :func:`shown_value` says;
    None when the catalogue does not know the code or the parameters do not fit."""
    key = f"{prefix}.{code}"
    if not has(lang, key):
        return None
    try:
        return text(lang, key, **{k: shown_value(lang, k, v) for k, v in params.items()})
    except (KeyError, ValueError, IndexError):  # a parameter missing or of another kind
        return None
