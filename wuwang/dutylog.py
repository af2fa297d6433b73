"""How a duty log entry (值班日志, command/domain/duty.py) reads, in either language: the
command service's exports and the console's duty panel say it the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wuwang import i18n


def kind_label(lang: i18n.Lang, kind: str) -> str:
    """接警, 事件接报, 报送, …: the entry's kind in words."""
    return i18n.text(lang, f"duty.kind.{kind}")


def entry_line(lang: i18n.Lang, kind: str, text: str, detail: Mapping[str, Any]) -> str:
    """The entry's text, with the state an incident ended in or the step an instruction
    reached in the reader's words (the stored text is what was typed or titled)."""
    state = detail.get("state")
    if kind == "incident_closed" and isinstance(state, str) and i18n.has(lang, f"state.{state}"):
        return i18n.text(lang, "duty.line_ended", text=text, state=i18n.text(lang, f"state.{state}"))
    if kind == "instruction_followed" and isinstance(state, str):
        step = i18n.text(lang, f"duty.instruction_state.{state}")
        return i18n.text(lang, "duty.line_step", text=text, state=step)
    said = _said_again(lang, detail.get("say"))
    return text if said is None else said


def writer_label(lang: i18n.Lang, actor: str, people: Mapping[str, Mapping[str, str]]) -> str | None:
    """Who wrote an entry: name and role (王强（指挥长）) from ``people`` (account → name,
    role); the account as recorded when it is unknown; None for an automatic entry (the
    command service writing), which each reader words its own way."""
    if actor == "system" or actor.startswith("system:"):
        return None
    person = people.get(actor)
    if person is None:
        return actor
    return i18n.text(lang, "duty.actor", name=person["name"], role=i18n.text(lang, f"role.{person['role']}"))


def _said_again(lang: i18n.Lang, say: Any) -> str | None:
    """An automatic line (报送, 回执, 超时) in the reader's words, from what it was made of
    (``detail.say``: a catalogue key, catalogue keys for its words, its names and numbers);
    None when the entry carries no such record or it does not fit the catalogue."""
    if not isinstance(say, Mapping):
        return None
    key, words, values = say.get("key"), say.get("words") or {}, say.get("values") or {}
    if not (isinstance(key, str) and key.startswith("upward.log.") and i18n.has(lang, key)):
        return None
    if not (isinstance(words, Mapping) and isinstance(values, Mapping)):
        return None
    if not all(isinstance(w, str) and i18n.has(lang, w) for w in words.values()):
        return None
    filled = {str(k): v for k, v in values.items()} | {
        str(name): i18n.text(lang, str(word)) for name, word in words.items()
    }
    try:
        return i18n.text(lang, key, **filled)
    except (KeyError, IndexError, ValueError):  # a line written under another catalogue
        return None
