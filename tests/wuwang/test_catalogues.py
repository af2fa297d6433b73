"""One catalogue per language (wuwang/i18n): the console, the API's reasons and the
reports say every word from it, so both languages hold the same keys with the same
``{placeholders}``, the files ship with the package, and no Chinese word is left in the
command service's or the shared package's Python outside the catalogue and proper-name
data."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from wuwang import i18n

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ROOT / "wuwang" / "i18n"

#: Han characters: what a Chinese word is made of (full-width punctuation alone is not a word).
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

#: Where Chinese may stay in command/ and wuwang/ Python, and why: proper names (the demo
#: city, its people, teams, warehouses and events; the product's name), the API's own
#: documentation (OpenAPI summaries that name the field's terms, 立案 or 出库) and the
#: text another service writes that the command service reads.
ALLOWED_FILES = {
    "wuwang/city.py": "the demo city: names of districts, roads, venues, teams",
    "command/demo_rosters.py": "demo data: people's names, certificates",
    "command/demo_reserve.py": "demo data: warehouses and items by name",
    "command/demo_events.py": "demo data: planned events by name",
    "command/demo_risk.py": "demo data: risk sources and shelters by name, their units and contacts",
    "wuwang/demo_shelters.py": "demo data: shelters by name (command and simulators)",
    "command/users.py": "demo data: the demo users' names",
    "wuwang/reserve_layout.py": "demo data: warehouses and agreement suppliers by name",
    "command/domain/cap.py": "GB/T 35965.1 interchange data: the colour words and the parameter "
    "name (预警级别) that CAP files of Chinese agencies carry",
    "command/routes/*.py": "OpenAPI summaries and descriptions glossing the field's terms",
    "wuwang/exchange.py": "GB/T 35965.2-modelled interchange data: the report kinds and grade words the"
    " upward form carries (首报, 重大) and its field glosses",
}
ALLOWED_TEXTS = {
    "五网同构": "the product's name",
    "110报警": "the ingest's call summary, which the correlator reads (command/domain/correlation.py)",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
        # a docstring a factory sets (``decide_verify = _decision(..., doc="立案: …")``)
        if isinstance(node, ast.keyword) and node.arg == "doc":
            found.update(id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return found


def chinese_literals(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module that hold Chinese, docstrings and comments aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            for allowed in ALLOWED_TEXTS:
                text = text.replace(allowed, "")
            if HAN.search(text):
                found.append((node.lineno, node.value))
    return found


def test_the_scan_finds_chinese_and_skips_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""模块说明。"""\nX = "待核实"\nY = f"队伍 {1}"\nZ = "五网同构 console"\nW = "（）："\n',
        encoding="utf-8",
    )
    assert chinese_literals(module) == [(2, "待核实"), (3, "队伍 ")]


def test_no_chinese_words_outside_the_catalogue() -> None:
    left = []
    for package in ("command", "wuwang"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(fnmatch(rel, pattern) for pattern in ALLOWED_FILES):
                continue
            left += [f"{rel}:{line}: {text!r}" for line, text in chinese_literals(path)]
    assert left == [], "words belong in wuwang/i18n/*.json:\n" + "\n".join(left)


def _pairs_without_duplicates(pairs: list[tuple[str, str]]) -> dict[str, str]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert duplicates == [], duplicates
    return dict(pairs)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_each_catalogue_is_a_flat_object_of_strings_without_duplicate_keys(lang: i18n.Lang) -> None:
    raw = (CATALOGUES / f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(raw, object_pairs_hook=_pairs_without_duplicates)
    assert data == i18n.catalogue(lang)
    assert all(isinstance(v, str) for v in data.values())


def test_both_catalogues_hold_the_same_keys_and_placeholders() -> None:
    zh, en = i18n.catalogue("zh_CN"), i18n.catalogue("en")
    assert set(zh) == set(en), sorted(set(zh) ^ set(en))
    differ = [k for k in zh if i18n.placeholders(zh[k]) != i18n.placeholders(en[k])]
    assert differ == []


def test_the_catalogues_ship_with_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["wuwang"]
    for lang in i18n.LANGUAGES:
        assert any(fnmatch(f"i18n/{lang}.json", p) for p in patterns), patterns


def test_words_are_asked_for_by_key() -> None:
    assert i18n.text("zh_CN", "state.on_scene") == "处置中"
    assert i18n.text("en", "state.on_scene") == "On scene"
    assert i18n.text("en", "unit.seconds", n=42) == "42 s"
    assert i18n.text("en", "no.such.key") == "no.such.key"  # visible, never a crash
    assert i18n.name_of("en", "type", "fire") == "Fire"
    assert i18n.name_of("en", "type", "not_a_type") == "not_a_type"
    assert i18n.duration("zh_CN", 374) == "6 分 14 秒" and i18n.duration("en", 7500) == "2 h 05 min"
    assert i18n.lang_of("fr") == "zh_CN" and i18n.lang_of("en") == "en"


def test_a_coded_reason_is_said_the_same_by_the_command_side_and_the_console() -> None:
    from command.domain.reasons import Reason, render
    from dashboard.layout.detail import reason_text

    why = Reason(
        "correlation.opened",
        {"alarm_kind": "video", "incident_type": "fire", "types": "fire,high_rise_fire", "within_m": 500,
         "window_s": 1800},
    )  # fmt: skip
    for lang in i18n.LANGUAGES:
        said = reason_text(lang, {"code": why.code, "params": dict(why.params)}, prefix="why")
        assert said == render(why, lang)
    assert render(why, "en") == (
        "video (Fire): no open incident of a kind it joins (Fire, High-rise fire) "
        "within 500 m / 30 min 00 s; new incident"
    )
    assert (
        render(why)
        == "视频（火灾）：500 米 / 30 分 00 秒 范围内无在办同类事件（火灾、高层建筑火灾），新立事件"
    )
