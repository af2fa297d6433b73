"""The feed specification (``wuwang.contract.FEEDS``) is the one place a feed is described.

The recipe test registers a made-up feed in a test-local copy of the specification and
shows that topic routing, message parsing, row building and the JSON Schema export pick
it up without any other module being edited; the others check that what the services
derive from the specification agrees with the database, the alarm rules, the charts and
the catalogues.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_args

import psycopg
import pytest
from msgspec import Meta

from command.domain import correlation
from dashboard import charts
from dashboard.data.aggregates import Series
from dashboard.i18n import LANGUAGES, catalogue
from ingest import alarms
from ingest.rows import TABLE_COLUMNS, Place, Unstorable, place_of, row_for
from wuwang import db, launcher, schemas_export
from wuwang.contract import (
    FEEDS,
    INGEST_SUBSCRIPTIONS,
    AlarmKind,
    Chart,
    ContractError,
    Feed,
    FeedSpec,
    FeedSpecs,
    Latitude,
    Longitude,
    Message,
    Network,
    _Payload,
    bigint_column,
    encode,
    parse_message,
    parse_topic,
    team_topic,
    wuwang_topic,
)
from wuwang.exercises import exercise_topic
from wuwang.lattice import grid_cell_id

NOW = datetime(2025, 5, 1, 0, 0, tzinfo=UTC)
DEG = 0.025


# --- a made-up feed, registered only here ---------------------------------------------


class MadeUp(StrEnum):
    """Feeds contract v1 does not have."""

    NOISE = "noise"  # a noise meter on a venue: wuwang/v1/<network>/noise/<source_id>
    FUEL = "fuel"  # a team vehicle's fuel level: teams/v1/<team_id>/fuel


# kw_only: the fields follow id and ts, in this order; frozen is inherited, but mypy wants it said
class NoiseLevel(_Payload, frozen=True, kw_only=True):
    device_id: Annotated[str, Meta(min_length=1, max_length=64)]
    db: Annotated[float, Meta(ge=0, le=200, description="sound level, dB(A)")]
    lat: Latitude
    lon: Longitude


class FuelLevel(_Payload, frozen=True, kw_only=True):
    percent: Annotated[float, Meta(ge=0, le=100)]
    odometer_km: Annotated[int, Meta(ge=0)] | None = None


def _noise_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, NoiseLevel)
    return (
        str(msg.topic.network),
        msg.topic.source_id,
        p.id,
        p.device_id,
        p.db,
        p.lat,
        p.lon,
        place.grid_cell_id,
    )


def _fuel_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, FuelLevel)
    return (msg.topic.source_id, p.id, p.percent, bigint_column(p.odometer_km, "odometer_km"))


def _noise_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = {k: row[k] for k in ("device_id", "db", "lat", "lon")}
    return wuwang_topic(row["network"], "noise", row["source_id"]), f"noise {row['device_id']}", fields


def _fuel_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = {k: row[k] for k in ("percent", "odometer_km") if row[k] is not None}
    return team_topic(row["team_id"], "fuel"), f"fuel {row['team_id']}", fields


NOISE = FeedSpec(
    feed=MadeUp.NOISE,  # type: ignore[arg-type]  # a feed of this test only
    topics=("wuwang/v1/+/noise/+",),
    model=NoiseLevel,
    table="noise_level",
    columns=("network", "source_id", "msg_id", "device_id", "db", "lat", "lon", "grid_cell_id"),
    row=_noise_row,
    message=_noise_message,
    alarm=None,
    chart=Chart.PER_MINUTE,
    colour="#ffffff",
    label_key="feed.noise",
)
FUEL = FeedSpec(
    feed=MadeUp.FUEL,  # type: ignore[arg-type]
    topics=("teams/v1/+/fuel",),
    model=FuelLevel,
    table="team_fuel",
    columns=("team_id", "msg_id", "percent", "odometer_km"),
    row=_fuel_row,
    message=_fuel_message,
    alarm=None,
    chart=None,
    colour="#ffffff",
    label_key="feed.fuel",
)


@pytest.fixture
def extended() -> FeedSpecs:
    """Contract v1's feeds and the two made-up ones: a copy, FEEDS itself is untouched."""
    return FeedSpecs((*FEEDS, NOISE, FUEL))


def test_a_new_feed_is_routed_by_its_topic_pattern(extended: FeedSpecs) -> None:
    topic = extended.parse_topic("wuwang/v1/venue/noise/NM-7")
    assert (topic.feed, topic.network, topic.source_id, topic.source) == (
        "noise",
        Network.VENUE,
        "NM-7",
        "venue/NM-7",
    )
    drill = extended.parse_topic(exercise_topic("ex1", "wuwang/v1/venue/noise/NM-7"))
    assert (drill.feed, drill.exercise_id, drill.source) == ("noise", "ex1", "ex/ex1/venue/NM-7")
    team = extended.parse_topic("teams/v1/T-001/fuel")
    assert (team.feed, team.network, team.source) == ("fuel", None, "team/T-001")
    # The old feeds still route as before, and contract v1 itself knows nothing new.
    assert extended.parse_topic("teams/v1/T-001/report").feed is Feed.REPORT
    with pytest.raises(ContractError, match="unknown feed 'noise'"):
        parse_topic("wuwang/v1/venue/noise/NM-7")
    with pytest.raises(ContractError, match="not an inbound team topic: 'fuel'"):
        parse_topic("teams/v1/T-001/fuel")


def test_a_new_team_feed_is_subscribed_live_and_in_exercises(extended: FeedSpecs) -> None:
    new = {"teams/v1/+/fuel", "exercise/v1/+/teams/v1/+/fuel"}
    assert set(extended.subscriptions) == {*INGEST_SUBSCRIPTIONS, *new}
    # A feed on wuwang/v1 needs nothing new: every wuwang/v1 topic is taken already.
    assert set(FeedSpecs((*FEEDS, NOISE)).subscriptions) == set(INGEST_SUBSCRIPTIONS)


def test_a_new_feed_is_parsed_with_its_model_and_stored_by_its_row_builder(extended: FeedSpecs) -> None:
    body = {
        "id": "n1",
        "ts": "2025-05-01T08:00:00+08:00",
        "device_id": "NM-7",
        "db": 91.5,
        "lat": 32.04,
        "lon": 112.14,
        "weighting": "A",
    }
    msg = extended.parse_message("wuwang/v1/venue/noise/NM-7", encode(body), NOW)
    assert isinstance(msg.payload, NoiseLevel) and msg.extra == {"weighting": "A"}
    with pytest.raises(ContractError, match="db"):
        extended.parse_message("wuwang/v1/venue/noise/NM-7", encode({**body, "db": "loud"}), NOW)

    table, row = row_for(msg, place_of(msg, DEG, {}), feeds=extended)
    assert table == "noise_level"
    assert extended[MadeUp.NOISE].table_columns[-2:] == ("extra", "exercise_id")  # type: ignore[index]
    values = dict(zip(extended[MadeUp.NOISE].table_columns, row, strict=True))  # type: ignore[index]
    assert values == {
        "ts": NOW,
        "received_at": NOW,
        "ts_from_receipt": False,
        "network": "venue",
        "source_id": "NM-7",
        "msg_id": "n1",
        "device_id": "NM-7",
        "db": 91.5,
        "lat": 32.04,
        "lon": 112.14,
        "grid_cell_id": grid_cell_id(32.04, 112.14, DEG),
        "extra": '{"weighting":"A"}',
        "exercise_id": None,
    }

    fuel = extended.parse_message("teams/v1/T-001/fuel", encode({"id": "f1", "percent": 40.0}), NOW)
    table, row = row_for(fuel, place_of(fuel, DEG, {}), feeds=extended)
    assert table == "team_fuel"
    assert row == (NOW, NOW, True, "T-001", "f1", 40.0, None, "{}", None)
    # A replay reads the row back into the message it came from.
    spec = extended[MadeUp.FUEL]  # type: ignore[index]
    stored = dict(zip(spec.table_columns, row, strict=True))
    assert spec.message(stored) == ("teams/v1/T-001/fuel", "fuel T-001", {"percent": 40.0})
    noise = extended[MadeUp.NOISE]  # type: ignore[index]
    topic, _, fields = noise.message(values)
    again = extended.parse_message(topic, encode({"id": "n1", **fields}), NOW)
    assert (
        row_for(again, place_of(again, DEG, {}), feeds=extended)[1][3:-2]
        == row_for(msg, place_of(msg, DEG, {}), feeds=extended)[1][3:-2]
    )

    # What the database would refuse is dead-lettered with the field named, as for any feed.
    big = {"id": "f2", "percent": 1.0, "odometer_km": 2**63}
    bad = extended.parse_message("teams/v1/T-001/fuel", encode(big), NOW)
    with pytest.raises(Unstorable, match="odometer_km: 9223372036854775808 exceeds the 64-bit range"):
        row_for(bad, place_of(bad, DEG, {}), feeds=extended)


def test_a_new_feed_gets_its_json_schema(extended: FeedSpecs, tmp_path: Path) -> None:
    schemas = extended.json_schemas()
    assert schemas["noise"]["$id"] == "wuwang/v1/noise.schema.json"
    assert schemas["team-fuel"]["$id"] == "wuwang/v1/team-fuel.schema.json"  # only teams send it
    assert set(schemas["noise"]["required"]) == {"id", "device_id", "db", "lat", "lon"}
    assert {k: v for k, v in schemas.items() if k not in ("noise", "team-fuel")} == FEEDS.json_schemas()

    schemas_export.write(tmp_path, extended)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.schema.json" for n in schemas)
    assert json.loads((tmp_path / "noise.schema.json").read_text(encoding="utf-8")) == schemas["noise"]
    assert schemas_export.check(tmp_path, extended) == []
    # Contract v1 does not have it: to the export of FEEDS the file is one too many.
    assert schemas_export.check(tmp_path) == [
        f"not in the contract: {tmp_path / 'noise.schema.json'}",
        f"not in the contract: {tmp_path / 'team-fuel.schema.json'}",
    ]


def test_a_specification_refuses_what_it_cannot_route() -> None:
    with pytest.raises(ValueError, match="neither"):
        FeedSpec(**{**_fields(FUEL), "topics": ("teams/v1/fuel/+",)})
    with pytest.raises(ValueError, match="specified twice"):
        FeedSpecs((*FEEDS, FEEDS[Feed.CALL]))
    with pytest.raises(ValueError, match="carries two feeds"):
        FeedSpecs((*FEEDS, FeedSpec(**{**_fields(FUEL), "topics": ("teams/v1/+/status",)})))
    with pytest.raises(ValueError, match="table team_status holds two feeds"):
        FeedSpecs((*FEEDS, FeedSpec(**{**_fields(FUEL), "table": "team_status"})))
    with pytest.raises(ValueError, match="is the command service's"):
        FeedSpecs((*FEEDS, FeedSpec(**{**_fields(FUEL), "topics": ("teams/v1/+/ack",)})))


def _fields(spec: FeedSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in FeedSpec.__dataclass_fields__}


# --- contract v1's feeds, and what is derived from them ---------------------------------


def test_every_feed_of_the_contract_is_specified_once() -> None:
    assert FEEDS.feeds == tuple(Feed)
    assert len({spec.table for spec in FEEDS}) == len(FEEDS.specs)
    assert {spec.table: spec.table_columns for spec in FEEDS} == TABLE_COLUMNS
    assert tuple(spec.table for spec in FEEDS) == db.TIMESERIES_TABLES
    assert [label for label, _ in launcher.STATUS_TABLES[: len(FEEDS.specs)]] == [str(f) for f in Feed]


def test_every_feed_table_has_exactly_its_columns(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for spec in FEEDS:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
                (spec.table,),
            ).fetchall()
            assert rows, f"no table {spec.table}"
            columns = [r[0] for r in rows]
            assert sorted(columns) == sorted(spec.table_columns), spec.table


def test_the_alarm_kinds_are_the_feeds_and_each_has_its_rule() -> None:
    kinds = [spec.alarm for spec in FEEDS if spec.alarm is not None]
    assert sorted(kinds) == sorted(get_args(AlarmKind))
    assert set(alarms.MESSAGE_RULES) | alarms.STATEFUL_KINDS == set(kinds)
    assert not set(alarms.MESSAGE_RULES) & alarms.STATEFUL_KINDS
    assert (*kinds, "*") == correlation._KINDS


def test_a_feed_without_an_alarm_raises_none() -> None:
    for topic, body in (
        ("teams/v1/T-1/position", {"id": "p1", "lat": 32.0, "lon": 112.0}),
        ("teams/v1/T-1/status", {"id": "s1", "status": "available"}),
    ):
        msg = parse_message(topic, encode(body), NOW)
        assert FEEDS[msg.feed].alarm is None
        assert alarms.message_alarm(msg, place_of(msg, DEG, {}), video_confidence=0.0) is None


def test_charted_feeds_are_the_aggregated_ones_with_a_colour_and_words() -> None:
    charted = [str(spec.feed) for spec in FEEDS if spec.chart is Chart.PER_MINUTE]
    assert list(db._FEED_AGGREGATES) == charted == ["sensor", "video", "call", "report"]
    assert list(charts.FEED_COLOURS) == charted
    for lang in LANGUAGES:
        assert all(spec.label_key in catalogue(lang) for spec in FEEDS), lang
    # "video" is a network and a feed: the feed chart names the feed, the network chart the network.
    figure = charts.figure(
        "en", [Series("video", ["2025-05-01 08:00:00"], [1])], kind="feed", empty_key="chart.no_data"
    )
    assert figure["data"][0]["name"] == catalogue("en")["feed.video"]
    assert figure["data"][0]["marker"]["color"] == FEEDS[Feed.VIDEO].colour
    figure = charts.figure(
        "en", [Series("video", ["2025-05-01 08:00:00"], [1])], kind="network", empty_key="chart.no_data"
    )
    assert figure["data"][0]["name"] == catalogue("en")["network.video"]
