"""The scope value (pure, plus one real connection to render and run its SQL): live or
one drill, its row filter, lock keys, topic prefix and text forms."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from wuwang.contract import exercise_source_prefix, parse_topic, topic_exercise_id
from wuwang.exercises import EXERCISE_ID_RE, exercise_topic
from wuwang.scope import LIVE, Scope

exercise_ids = st.from_regex(EXERCISE_ID_RE, fullmatch=True)
LIVE_TOPICS = ["wuwang/v1/police/call/sys110", "teams/v1/T-01/status", "wuwang/v1/venue/sensor/GW-FC-0012"]


def test_live_and_drill_are_what_they_say() -> None:
    assert Scope.live() == LIVE == Scope() == Scope.of(None) == Scope.of("")
    assert LIVE.is_live and not LIVE.is_drill and LIVE.exercise_id is None
    drill = Scope.drill("EX-1")
    assert drill.is_drill and not drill.is_live and drill.exercise_id == "EX-1"
    assert drill == Scope.of("EX-1") and drill != LIVE
    assert len({LIVE, drill, Scope.drill("EX-2"), Scope.drill("EX-1")}) == 3


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 65, "空格 id", "EX+1"])
def test_a_drill_needs_a_valid_exercise_id(bad: str) -> None:
    with pytest.raises(ValueError):
        Scope.drill(bad)


def test_the_filter_renders_and_selects_the_scopes_rows(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert LIVE.where("i").as_string(conn) == '"i"."exercise_id" IS NULL'
        assert LIVE.where().as_string(conn) == '"exercise_id" IS NULL'
        assert LIVE.params == () and LIVE.named("ex") == {}
        drill = Scope.drill("EX-1")
        assert drill.where("i").as_string(conn) == '"i"."exercise_id" = %s'
        assert drill.where(name="ex").as_string(conn) == '"exercise_id" = %(ex)s'
        assert drill.where("o", "of_exercise").as_string(conn) == '"o"."of_exercise" = %s'
        assert drill.params == ("EX-1",) and drill.named("ex") == {"ex": "EX-1"}

        conn.execute("CREATE TEMP TABLE scoped (n int, exercise_id text)")
        conn.execute("INSERT INTO scoped VALUES (1, NULL), (2, 'EX-1'), (3, 'EX-2'), (4, NULL)")

        def rows(scope: Scope) -> list[int]:
            query = sql.SQL("SELECT s.n FROM scoped s WHERE {} ORDER BY s.n").format(scope.where("s"))
            return [n for (n,) in conn.execute(query, scope.params).fetchall()]

        assert rows(LIVE) == [1, 4]
        assert rows(drill) == [2]
        assert rows(Scope.drill("EX-3")) == []
        named = sql.SQL("SELECT n FROM scoped WHERE {} AND n > %(min)s").format(drill.where(name="ex"))
        assert conn.execute(named, {"min": 0, **drill.named("ex")}).fetchall() == [(2,)]


@given(exercise_ids, exercise_ids)
def test_lock_keys_differ_per_scope_and_purpose(a: str, b: str) -> None:
    keys = {
        LIVE.lock_key("reserve"),
        LIVE.lock_key("grid"),
        Scope.drill(a).lock_key("reserve"),
        Scope.drill(a).lock_key("grid"),
    }
    assert len(keys) == 4
    assert (Scope.drill(a).lock_key("reserve") == Scope.drill(b).lock_key("reserve")) == (a == b)
    assert Scope.drill("live").lock_key("reserve") != LIVE.lock_key("reserve")


def test_the_reserve_lock_keeps_its_name() -> None:
    # The advisory lock a running console takes today: a new process must take the same.
    assert Scope.drill("EX-1").lock_key("reserve") == "wuwang:reserve:EX-1"


@given(exercise_ids, st.sampled_from(LIVE_TOPICS))
def test_the_topic_prefix_round_trips_with_the_contract(exercise_id: str, live_topic: str) -> None:
    drill = Scope.drill(exercise_id)
    topic = drill.topic(live_topic)
    assert topic == exercise_topic(exercise_id, live_topic)
    assert drill.topic_prefix == exercise_topic(exercise_id, "")
    assert topic_exercise_id(topic) == exercise_id
    assert Scope.of_topic(topic) == drill
    assert drill.live_topic(topic) == live_topic
    parsed, live = parse_topic(topic), parse_topic(live_topic)
    assert parsed.exercise_id == exercise_id
    assert parsed.source == f"{exercise_source_prefix(exercise_id)}{live.source}"


@pytest.mark.parametrize("live_topic", LIVE_TOPICS)
def test_live_topics_have_no_prefix(live_topic: str) -> None:
    assert LIVE.topic_prefix == ""
    assert LIVE.topic(live_topic) == live_topic
    assert Scope.of_topic(live_topic) == LIVE
    assert LIVE.live_topic(live_topic) == live_topic
    assert parse_topic(LIVE.topic(live_topic)).exercise_id is None
    with pytest.raises(ValueError):
        Scope.drill("EX-1").live_topic(live_topic)


@given(exercise_ids)
def test_text_and_query_forms_round_trip(exercise_id: str) -> None:
    drill = Scope.drill(exercise_id)
    assert Scope.parse(str(drill)) == drill
    assert Scope.parse(exercise_id) == (LIVE if exercise_id == "live" else drill)  # the word wins bare
    assert Scope.of(drill.query()["exercise_id"]) == drill
    assert str(LIVE) == "live" and Scope.parse("live") == LIVE
    assert Scope.parse(None) == LIVE and Scope.parse("") == LIVE
    assert LIVE.query() == {}
