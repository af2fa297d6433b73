"""Message catalogues: every word the console shows comes from here.

Two catalogues, ``zh_CN.json`` (the default) and ``en.json``, with the same flat keys
(``"queue.title"``). Python code calls :func:`t`; the browser's clientside code gets
the catalogue of the chosen language in the ``i18n`` store and looks keys up the same
way (``wuwang.t``). ``tests/dashboard/test_i18n.py`` checks that both catalogues hold
the same keys with the same ``{placeholders}`` and that every key the code uses exists.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

Lang = Literal["zh_CN", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh_CN", "en")
DEFAULT_LANG: Lang = "zh_CN"


@cache
def catalogue(lang: Lang) -> dict[str, str]:
    """The whole catalogue of ``lang`` (read once)."""
    text = resources.files(__package__).joinpath(f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"catalogue {lang}.json must be a flat object of strings")
    return cast(dict[str, str], data)


def lang_of(value: Any) -> Lang:
    """A language from an untrusted value (a browser store): unknown → the default."""
    return cast(Lang, value) if value in LANGUAGES else DEFAULT_LANG


def t(lang: Lang, key: str, **values: Any) -> str:
    """The text for ``key`` in ``lang``, with ``{name}`` placeholders filled.

    A key missing from the catalogue shows as the key itself (visible, never a crash);
    the test-suite makes sure none is missing."""
    text = catalogue(lang).get(key)
    if text is None:
        return key
    return text.format(**values) if values else text


def has(lang: Lang, key: str) -> bool:
    return key in catalogue(lang)
