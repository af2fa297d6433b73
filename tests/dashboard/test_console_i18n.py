"""The message catalogues: both languages say everything, with the same placeholders,
and every key the code asks for exists (Python and the browser code)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from command.domain.incidents import IncidentState
from command.domain.reasons import CATALOGUE, CODES, WHY
from command.domain.vocabulary import IncidentType, TeamType
from dashboard.i18n import LANGUAGES, catalogue, lang_of, t
from dashboard.layout.field import FIELD_STATUSES, REPORT_CATEGORIES
from wuwang.contract import Network, TeamStatus

PACKAGE = Path(__file__).resolve().parents[2] / "dashboard"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_catalogues_hold_the_same_keys_and_placeholders() -> None:
    zh, en = catalogue("zh_CN"), catalogue("en")
    assert set(zh) == set(en), set(zh) ^ set(en)
    for key in zh:
        assert placeholders(zh[key]) == placeholders(en[key]), key
        assert zh[key].strip() or key == "rec.action", f"{key} is empty in zh_CN"


def literal_keys() -> set[str]:
    keys: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        keys |= set(re.findall(r"""\bt\(\s*lang,\s*"([a-z_]+\.[A-Za-z0-9_.-]+)\"""", path.read_text()))
    for path in (PACKAGE / "assets").glob("*.js"):
        keys |= set(re.findall(r"""W\.t\("([a-z_]+\.[A-Za-z0-9_.-]+)\"""", path.read_text()))
    return keys


def test_every_key_the_code_uses_exists() -> None:
    used = literal_keys()
    assert len(used) > 100  # the scan works
    missing = sorted(k for k in used if k not in catalogue("zh_CN"))
    assert missing == []


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("state", [str(s) for s in IncidentState]),
        ("type", [str(s) for s in IncidentType]),
        ("team_type", [str(s) for s in TeamType]),
        ("team_status", [str(s) for s in TeamStatus]),
        ("network", [str(n) for n in Network]),
        ("level", ["1", "2", "3", "4"]),
        ("act", ["verify", "resolve", "close", "cancel", "false-alarm", "reopen"]),
        ("done", ["verify", "resolve", "close", "cancel", "false-alarm", "reopen"]),
        ("order", ["pending", "sent", "acked", "released", "refused"]),
        ("outbox", ["waiting", "sending", "rejected", "held"]),
        ("report", list(REPORT_CATEGORIES)),
        ("team_status", list(FIELD_STATUSES)),
        ("warehouse", ["government_stock", "commercial_agreement", "production_capacity"]),
        ("role", ["operator", "commander", "planner", "admin", "field"]),
        ("reason", sorted(CODES)),
        ("why", sorted(WHY)),
        (
            "event",
            [
                "opened",
                "source_linked",
                "source_split",
                "merged_into",
                "absorbed",
                "state_changed",
                "level_changed",
                "reclassified",
                "plan_activated",
                "checklist_item_ticked",
                "team_dispatched",
                "team_arrived",
                "team_released",
                "note_added",
                "team_acknowledged",
                "team_en_route",
                "held",
                "resumed",
            ],
        ),
    ],
)
def test_every_value_of_the_domain_has_words(prefix: str, values: list[str]) -> None:
    for lang in LANGUAGES:
        missing = [v for v in values if f"{prefix}.{v}" not in catalogue(lang)]
        assert missing == [], (lang, prefix)


def test_every_reason_code_is_said_with_the_command_sides_parameters() -> None:
    """The console says the recommender's reasons itself (``reason.<code>``): with exactly
    the parameters the command service sends, and nothing else under ``reason.``."""
    for lang in LANGUAGES:
        said = {k.removeprefix("reason.") for k in catalogue(lang) if k.startswith("reason.")}
        assert said == set(CODES), (lang, said ^ set(CODES))
        for code, entry in CATALOGUE.items():
            assert placeholders(catalogue(lang)[f"reason.{code}"]) == set(entry.params), (lang, code)


def test_every_system_reason_is_said_with_the_command_sides_parameters() -> None:
    """The reasons the system writes on a record (``why.<code>``, docs/incidents.md):
    every code the command side has, with exactly its parameters, and no other."""
    for lang in LANGUAGES:
        said = {k.removeprefix("why.") for k in catalogue(lang) if k.startswith("why.")} - {"list_separator"}
        assert said == set(WHY), (lang, said ^ set(WHY))
        for code, entry in WHY.items():
            assert placeholders(catalogue(lang)[f"why.{code}"]) == set(entry.params), (lang, code)


def test_translation_fills_placeholders_and_never_crashes() -> None:
    assert t("zh_CN", "unit.seconds", n=42) == "42 秒"
    assert t("en", "unit.seconds", n=42) == "42 s"
    assert t("en", "no.such.key") == "no.such.key"
    assert lang_of("en") == "en"
    assert lang_of("fr") == "zh_CN"  # an untrusted value from the browser
    assert lang_of(None) == "zh_CN"
