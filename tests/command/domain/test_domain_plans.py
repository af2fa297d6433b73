"""The plan library: loading and validation, level suggestion, activation and re-evaluation."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.plans import (
    CATALOGUE_FILE,
    DEFAULT_PLAN_DIR,
    LEVELS_LIGHT_TO_GRAVE,
    IncidentFacts,
    PlanLibrary,
    PlanLibraryError,
    Requirements,
    SupplyRequirement,
    TeamRequirement,
    activate,
    build_library,
    load_plans,
    matched_triggers,
    reevaluate,
    shortfall,
    suggest_level,
    tick,
    untick,
)
from command.domain.vocabulary import IncidentType, ResponseLevel, TeamType

T0 = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
PLAN_TYPES = {
    IncidentType.HIGH_RISE_FIRE,
    IncidentType.HAZMAT_LEAK,
    IncidentType.FLOOD,
    IncidentType.CROWD_CRUSH,
    IncidentType.TRAFFIC_ACCIDENT,
    IncidentType.EARTHQUAKE,
    IncidentType.PUBLIC_HEALTH,
    IncidentType.UTILITY_OUTAGE,
}


@pytest.fixture(scope="module")
def library() -> PlanLibrary:
    return load_plans(DEFAULT_PLAN_DIR)


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in Path(DEFAULT_PLAN_DIR).glob("*.yaml")}


def _mutated(sources: dict[str, str], name: str, change: Any) -> dict[str, str]:
    """The catalogue, the files changed so far and ``name`` changed (other plans left out:
    validating the whole library for every case would only slow the tests down)."""
    pristine = _pristine()
    data = yaml.safe_load(sources.get(name, pristine[name]))
    change(data)
    out = {k: v for k, v in sources.items() if k == CATALOGUE_FILE or v != pristine.get(k)}
    out[name] = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return out


def _pristine() -> dict[str, str]:
    if "src" not in _SRC_CACHE:
        _SRC_CACHE["src"] = {
            p.name: p.read_text(encoding="utf-8") for p in Path(DEFAULT_PLAN_DIR).glob("*.yaml")
        }
    return _SRC_CACHE["src"]


_SRC_CACHE: dict[str, dict[str, str]] = {}


def _problems(srcs: dict[str, str]) -> list[str]:
    with pytest.raises(PlanLibraryError) as info:
        build_library(srcs)
    return info.value.problems


# --- the shipped library ------------------------------------------------------------


def test_library_has_the_eight_plans(library: PlanLibrary) -> None:
    assert len(library) >= 8
    for t in PLAN_TYPES:
        plans = library.for_type(t)
        assert len(plans) == 1, t
    assert library.for_type("hazmat_leak")[0].id == "hazmat_leak"
    assert library.for_type(IncidentType.DISPUTE) == []


def test_every_plan_is_complete_and_bilingual(library: PlanLibrary) -> None:
    for plan in library:
        assert plan.title_zh and plan.title_en and plan.basis
        assert len(plan.checklist) >= 8
        for action in plan.checklist:
            assert action.zh.strip() and action.en.strip()
            # at least one CJK character in the Chinese text, none required in English
            assert any("\u4e00" <= ch <= "\u9fff" for ch in action.zh), action.id
        for level in ResponseLevel:
            spec = plan.level(level)
            assert spec.teams, (plan.id, level)
            assert spec.supplies, (plan.id, level)
            assert spec.triggers.machine_conditions()
            for need in spec.supplies:
                assert library.items[need.item].unit == need.unit
            # someone commands at every level
            assert any(r.id == "commander" for r in activate(plan, level).roles)


def test_requirements_are_monotone(library: PlanLibrary) -> None:
    for plan in library:
        for lighter, graver in itertools.pairwise(LEVELS_LIGHT_TO_GRAVE):
            lo, hi = plan.level(lighter), plan.level(graver)
            hi_teams = {t.type: t.count for t in hi.teams}
            hi_items = {s.item: s.quantity for s in hi.supplies}
            assert all(hi_teams.get(t.type, 0) >= t.count for t in lo.teams), (plan.id, graver)
            assert all(hi_items.get(s.item, 0) >= s.quantity for s in lo.supplies), (plan.id, graver)
            assert len(activate(plan, graver).checklist) >= len(activate(plan, lighter).checklist)


def test_versions_are_int_or_semver(library: PlanLibrary, sources: dict[str, str]) -> None:
    for plan in library:
        assert isinstance(plan.version, int) or plan.version.count(".") in (1, 2)

    def semver(d: dict[str, Any]) -> None:
        d["version"] = "2.1.0"

    assert build_library(_mutated(sources, "flood.yaml", semver)).get("flood").version == "2.1.0"

    def bad(d: dict[str, Any]) -> None:
        d["version"] = "v2"

    assert any(p.startswith("flood.yaml: version") for p in _problems(_mutated(sources, "flood.yaml", bad)))


# --- validation errors name the file and the field --------------------------------------


def test_unknown_field_is_refused_with_its_path(sources: dict[str, str]) -> None:
    def typo(d: dict[str, Any]) -> None:
        d["levels"]["II"]["teams"][0]["cuont"] = 3

    problems = _problems(_mutated(sources, "flood.yaml", typo))
    assert any(p.startswith("flood.yaml: levels.II.teams[0].cuont") and "Extra inputs" in p for p in problems)


def test_unknown_team_type_is_refused(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["levels"]["IV"]["teams"][0]["type"] = "firemen"

    problems = _problems(_mutated(sources, "high_rise_fire.yaml", bad))
    assert any("high_rise_fire.yaml: levels.IV.teams[0].type" in p for p in problems)


def test_number_written_as_string_is_refused(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["levels"]["IV"]["teams"][0]["count"] = "3"

    assert any("levels.IV.teams[0].count" in p for p in _problems(_mutated(sources, "flood.yaml", bad)))


def test_every_plan_names_an_arrival_target_in_range(library: PlanLibrary, sources: dict[str, str]) -> None:
    targets = {p.id: p.arrival_target_s for p in library}
    assert all(t is not None and 60 <= t <= 240 * 60 for t in targets.values()), targets
    assert targets["high_rise_fire"] == 7 * 60  # 5 min to the district's edge after the order, plus 2

    def bad(d: dict[str, Any]) -> None:
        d["arrival_target_min"] = 0

    assert any(
        p.startswith("flood.yaml: arrival_target_min")
        for p in _problems(_mutated(sources, "flood.yaml", bad))
    )


def test_missing_level_is_refused(sources: dict[str, str]) -> None:
    problems = _problems(_mutated(sources, "earthquake.yaml", lambda d: d["levels"].pop("III")))
    assert any(p.startswith("earthquake.yaml: levels.III") and "required" in p.lower() for p in problems)


def test_non_monotone_requirement_is_refused(sources: dict[str, str]) -> None:
    def shrink(d: dict[str, Any]) -> None:
        d["levels"]["I"]["teams"][0]["count"] = 1

    problems = _problems(_mutated(sources, "hazmat_leak.yaml", shrink))
    assert any("level I needs 1 hazmat team(s), fewer than level II (6)" in p for p in problems)


def test_dropped_supply_at_graver_level_is_refused(sources: dict[str, str]) -> None:
    def drop(d: dict[str, Any]) -> None:
        d["levels"]["I"]["supplies"] = [s for s in d["levels"]["I"]["supplies"] if s["item"] != "sandbag"]

    problems = _problems(_mutated(sources, "flood.yaml", drop))
    assert any("level I needs 0 bag of sandbag" in p for p in problems)


def test_trigger_thresholds_must_not_fall(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["levels"]["II"]["triggers"]["deaths_min"] = 2

    problems = _problems(_mutated(sources, "high_rise_fire.yaml", bad))
    assert any(
        "trigger deaths_min: level II threshold 2 is below level III threshold 3" in p for p in problems
    )


def test_unknown_item_and_wrong_unit_are_refused(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["levels"]["IV"]["supplies"][0]["item"] = "sandbags"
        d["levels"]["IV"]["supplies"][1]["unit"] = "pump"

    problems = _problems(_mutated(sources, "flood.yaml", bad))
    assert any("levels.IV.supplies[0].item: 'sandbags' is not in _items.yaml" in p for p in problems)
    assert any("levels.IV.supplies[1].unit" in p for p in problems)


def test_unknown_sensor_kind_and_unit_are_refused(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["levels"]["IV"]["triggers"]["sensors"][0] = {"kind": "water_lvl", "value_min": 0.1, "unit": "m"}
        d["levels"]["III"]["triggers"]["sensors"][0]["unit"] = "cm"

    problems = _problems(_mutated(sources, "flood.yaml", bad))
    assert any("levels.IV.triggers.sensors[0]" in p and "unknown measurement kind" in p for p in problems)
    assert any("levels.III.triggers.sensors[0]" in p and "not 'cm'" in p for p in problems)


def test_checklist_role_must_exist_and_be_staffed(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["checklist"][0]["role"] = "nobody"
        # info_group is not staffed at IV in this plan; an action for it at IV is an error
        d["checklist"][1]["role"] = "info_group"

    problems = _problems(_mutated(sources, "crowd_crush.yaml", bad))
    assert any("role 'nobody' is not defined" in p for p in problems)
    assert any("role 'info_group' is not staffed at level(s) IV" in p for p in problems)


def test_duplicate_yaml_key_is_refused(sources: dict[str, str]) -> None:
    text = sources["traffic_accident.yaml"].replace("version: 1\n", "version: 1\nversion: 2\n", 1)
    problems = _problems({**sources, "traffic_accident.yaml": text})
    assert any(
        p.startswith("traffic_accident.yaml: not valid YAML") and "duplicate key 'version'" in p
        for p in problems
    )


def test_file_name_must_match_id_and_catalogue_is_required(sources: dict[str, str]) -> None:
    renamed = dict(sources)
    renamed["flood_v2.yaml"] = renamed.pop("flood.yaml")
    assert any("does not match the file name" in p for p in _problems(renamed))
    no_catalogue = {k: v for k, v in sources.items() if k != CATALOGUE_FILE}
    assert any(p.startswith("_items.yaml: missing") for p in _problems(no_catalogue))


def test_every_problem_is_reported_not_just_the_first(sources: dict[str, str]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["titel_zh"] = "x"

    srcs = _mutated(sources, "flood.yaml", bad)
    srcs = _mutated(srcs, "earthquake.yaml", bad)
    problems = _problems(srcs)
    assert {p.split(":")[0] for p in problems} >= {"flood.yaml", "earthquake.yaml"}


def test_load_plans_reads_a_directory(tmp_path: Path, sources: dict[str, str]) -> None:
    for name in (CATALOGUE_FILE, "flood.yaml"):
        (tmp_path / name).write_text(sources[name], encoding="utf-8")
    lib = load_plans(tmp_path)
    assert [p.id for p in lib] == ["flood"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PlanLibraryError):
        load_plans(empty)


# --- level suggestion ---------------------------------------------------------------


def test_suggest_level_picks_the_gravest_match(library: PlanLibrary) -> None:
    fire = library.get("high_rise_fire")
    assert suggest_level(fire, IncidentFacts()) is None
    assert suggest_level(fire, IncidentFacts(correlated_calls=1)) is ResponseLevel.IV
    assert suggest_level(fire, IncidentFacts(trapped=12, correlated_calls=2)) is ResponseLevel.III
    assert suggest_level(fire, IncidentFacts(deaths=31)) is ResponseLevel.I
    # any-of: one grave condition is enough even if others are light
    assert suggest_level(fire, IncidentFacts(injured=55, correlated_calls=1)) is ResponseLevel.II


def test_sensor_triggers(library: PlanLibrary) -> None:
    flood = library.get("flood")
    assert suggest_level(flood, IncidentFacts(sensors={"water_level": 0.2})) is ResponseLevel.IV
    assert (
        suggest_level(flood, IncidentFacts(sensors={"water_level": 0.55, "rainfall_3h": 30}))
        is ResponseLevel.II
    )
    assert suggest_level(flood, IncidentFacts(sensors={"gas": 99})) is None
    quake = library.get("earthquake")
    assert suggest_level(quake, IncidentFacts(sensors={"magnitude": 5.4})) is ResponseLevel.III
    why = matched_triggers(quake.level(ResponseLevel.III).triggers, IncidentFacts(sensors={"magnitude": 5.4}))
    assert why == ["magnitude 5.4 M ≥ 5"]


@settings(max_examples=200, deadline=None)
@given(
    deaths=st.integers(0, 400),
    injured=st.integers(0, 200),
    trapped=st.integers(0, 200),
    calls=st.integers(0, 120),
)
def test_suggestion_is_monotone_in_the_facts(deaths: int, injured: int, trapped: int, calls: int) -> None:
    """More casualties never suggest a lighter level."""
    plan = load_plans_cached().get("high_rise_fire")
    base = suggest_level(plan, IncidentFacts(deaths, injured, trapped, correlated_calls=calls))
    worse = suggest_level(plan, IncidentFacts(deaths + 5, injured + 5, trapped, correlated_calls=calls))
    if base is not None:
        assert worse is not None
        assert worse <= base


_CACHE: dict[str, PlanLibrary] = {}


def load_plans_cached() -> PlanLibrary:
    if "lib" not in _CACHE:
        _CACHE["lib"] = load_plans(DEFAULT_PLAN_DIR)
    return _CACHE["lib"]


# --- activation, ticks, re-evaluation -------------------------------------------------


def test_activate_creates_checklist_and_requirements(library: PlanLibrary) -> None:
    plan = library.get("hazmat_leak")
    act = activate(plan, ResponseLevel.IV)
    assert [e.id for e in act.checklist] == [a.id for a in plan.checklist if a.at_level == "IV"]
    assert not any(e.done for e in act.checklist)
    assert TeamRequirement(TeamType.HAZMAT, 1) in act.requirements.teams
    assert SupplyRequirement("gas_mask", 50, "piece") in act.requirements.supplies
    assert act.pending == act.checklist
    roles = {r.id: r.held_by for r in act.roles}
    assert roles["commander"] == "市应急管理局局长"
    assert {r.id: r.held_by_en for r in act.roles}[
        "commander"
    ] == "Director, City Emergency Management Bureau"
    assert "info_group" not in roles


def test_escalation_keeps_ticks_and_adds_items(library: PlanLibrary) -> None:
    plan = library.get("flood")
    act = tick(activate(plan, ResponseLevel.IV), "warn_public", "张伟", T0)
    up = reevaluate(plan, act, ResponseLevel.II)
    assert up.level is ResponseLevel.II
    assert up.entry("warn_public").done and up.entry("warn_public").done_by == "张伟"
    assert not up.entry("request_military").done
    ids = [e.id for e in up.checklist]
    assert ids == [a.id for a in plan.checklist if a.applies_at(ResponseLevel.II)]  # plan order
    assert {t.type: t.count for t in up.requirements.teams}[TeamType.WATER_RESCUE] == 6


def test_deescalation_keeps_done_items_as_record(library: PlanLibrary) -> None:
    plan = library.get("flood")
    act = activate(plan, ResponseLevel.II)
    act = tick(act, "suspend_activities", "李娜", T0)
    down = reevaluate(plan, act, ResponseLevel.IV)
    kept = down.entry("suspend_activities")
    assert kept.done and not kept.applies
    with pytest.raises(KeyError):
        down.entry("request_military")  # undone and no longer applying: dropped
    assert all(e.id != "suspend_activities" for e in down.pending)
    back_up = reevaluate(plan, down, ResponseLevel.II)
    assert back_up.entry("suspend_activities").applies and back_up.entry("suspend_activities").done


def test_tick_rules(library: PlanLibrary) -> None:
    plan = library.get("flood")
    act = tick(activate(plan, ResponseLevel.IV), "monitor_rain", "王芳", T0)
    with pytest.raises(ValueError, match="already done by 王芳"):
        tick(act, "monitor_rain", "赵磊", T0)
    with pytest.raises(ValueError, match="who did it"):
        tick(act, "warn_public", " ", T0)
    with pytest.raises(KeyError):
        tick(act, "no_such_item", "王芳", T0)
    undone = untick(act, "monitor_rain")
    assert not undone.entry("monitor_rain").done and undone.entry("monitor_rain").done_by is None
    with pytest.raises(ValueError, match="not done"):
        untick(undone, "monitor_rain")
    with pytest.raises(ValueError, match="activation is of plan"):
        reevaluate(library.get("earthquake"), act, ResponseLevel.III)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("level"), st.sampled_from(list(ResponseLevel))),
            st.tuples(st.just("tick"), st.integers(0, 30)),
            st.tuples(st.just("untick"), st.integers(0, 30)),
        ),
        max_size=25,
    ),
    plan_id=st.sampled_from(["flood", "earthquake", "public_health", "crowd_crush"]),
)
def test_reevaluation_never_loses_a_tick(steps: list[tuple[str, Any]], plan_id: str) -> None:
    plan = load_plans_cached().get(plan_id)
    act = activate(plan, ResponseLevel.IV)
    ticked: set[str] = set()
    for kind, value in steps:
        if kind == "level":
            act = reevaluate(plan, act, value)
        elif kind == "tick":
            pending = act.pending
            if pending:
                item = pending[value % len(pending)].id
                act = tick(act, item, "operator", T0)
                ticked.add(item)
        else:
            done = [e for e in act.checklist if e.done]
            if done:
                item = done[value % len(done)].id
                act = untick(act, item)
                ticked.discard(item)
        ids = [e.id for e in act.checklist]
        assert len(ids) == len(set(ids))
        applying = [a.id for a in plan.checklist if a.applies_at(act.level)]
        assert [e.id for e in act.checklist if e.applies] == applying
        assert all(e.done for e in act.checklist if not e.applies)
        assert {e.id for e in act.checklist if e.done} == ticked
        assert act.requirements == activate(plan, act.level).requirements


# --- shortfall ------------------------------------------------------------------------


def test_shortfall_reports_what_is_missing() -> None:
    req = Requirements(
        teams=(TeamRequirement(TeamType.FIRE, 3), TeamRequirement(TeamType.MEDICAL, 1)),
        supplies=(SupplyRequirement("sandbag", 2000, "bag"), SupplyRequirement("tent", 10, "piece")),
    )
    out = shortfall(req, {TeamType.FIRE: 1, TeamType.MEDICAL: 2}, {"sandbag": 500, "tent": 10})
    assert [(s.kind, s.key, s.missing) for s in out] == [("team", "fire", 2), ("supply", "sandbag", 1500)]
    assert out[1].describe() == "short 1500 bag of sandbag: 500 of 2000"
    assert shortfall(req, {"fire": 3, "medical": 1}, {"sandbag": 2000, "tent": 12}) == []


@given(
    teams=st.dictionaries(st.sampled_from(list(TeamType)), st.integers(1, 50), max_size=6),
    have=st.dictionaries(st.sampled_from(list(TeamType)), st.integers(0, 60), max_size=6),
    items=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 1000), max_size=3),
    stock=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 1200), max_size=3),
)
def test_shortfall_property(
    teams: dict[TeamType, int], have: dict[TeamType, int], items: dict[str, int], stock: dict[str, int]
) -> None:
    req = Requirements(
        tuple(TeamRequirement(t, c) for t, c in teams.items()),
        tuple(SupplyRequirement(i, q, "piece") for i, q in items.items()),
    )
    out = {(s.kind, s.key): s.missing for s in shortfall(req, have, stock)}
    for t, c in teams.items():
        missing = max(0, c - have.get(t, 0))
        assert out.get(("team", t.value), 0) == missing
    for i, q in items.items():
        assert out.get(("supply", i), 0) == max(0, q - stock.get(i, 0))
    assert all(v > 0 for v in out.values())


def test_library_is_immutable(library: PlanLibrary) -> None:
    plan = library.get("flood")
    with pytest.raises(Exception, match="frozen"):
        plan.title_en = "x"  # type: ignore[misc]
    clone = copy.deepcopy(plan)
    assert clone == plan


def _doc_rows(doc: str, header_start: str) -> list[list[str]]:
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_docs_table_matches_the_library(library: PlanLibrary) -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "plans.md").read_text(encoding="utf-8")
    rows = _doc_rows(doc, "| Plan id |")

    def teams(plan_id: str, level: ResponseLevel) -> str:
        return ", ".join(f"{t.type.value} {t.count}" for t in library.get(plan_id).level(level).teams)

    assert {r[0] for r in rows} == set(library.plans)
    for plan_id, title, covers, iv, i in rows:
        plan = library.get(plan_id)
        assert title == plan.title_zh
        assert covers == ", ".join(plan.covers)
        assert iv == teams(plan_id, ResponseLevel.IV)
        assert i == teams(plan_id, ResponseLevel.I)
