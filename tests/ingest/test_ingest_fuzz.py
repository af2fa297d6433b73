"""10,000 random and malformed messages through the real broker into the ingest: it
never stops, and every message is stored, counted as a duplicate or dead-lettered.
Some go behind an exercise's prefix (a drill resending live ids, or a bad exercise id);
some carry NUL in a text field, or a ``ts`` outside the door's window (older than the
retention, ahead of the receipt beyond the clock skew, the absurd dates)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from ingest.rows import TABLE_COLUMNS, Unstorable, place_of, row_for
from ingest.service import IngestService
from testkit.feeds import Publisher, sample, scrape, total, wait_for
from tests.helpers_replies import one
from wuwang.contract import MAX_PAYLOAD_BYTES, ContractError, TsWindow, parse_message

N = 10_000
CAP = 256
#: The door's window with the settings' defaults (RETENTION_DAYS 400, INGEST_CLOCK_SKEW_S 300).
WINDOW = TsWindow(max_age=timedelta(days=400), max_ahead=timedelta(seconds=300))


def _nul_in_text(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    """A NUL character somewhere in one of the payload's text fields (any feed)."""
    texts = sorted(k for k, v in body.items() if isinstance(v, str))
    key = rng.choice(texts)
    at = rng.randrange(len(body[key]) + 1)
    body[key] = body[key][:at] + "\u0000" + body[key][at:]
    return body


def _out_of_window_ts(rng: random.Random) -> str:
    """A ts the door refuses, well clear of the bounds (the prediction runs a little before
    the ingest receives the message)."""
    now = datetime.now(UTC)
    return rng.choice([
        (now - timedelta(days=rng.uniform(401, 3000))).isoformat(),
        (now + timedelta(minutes=rng.uniform(30, 10**6))).isoformat(),
        "2025-03-12T09:41:27+08:00",  # the contract's §7 example time
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
    ])


def _mutate_type(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    key = rng.choice(sorted(body))
    body[key] = rng.choice([None, "12", 12, 1.5, True, [], {}, "x" * 70, -1e308, "\u0000"])
    return body


def _weird_json(rng: random.Random, body: dict[str, Any]) -> bytes:
    choice = rng.randrange(9)
    if choice == 0:
        return b"[" + orjson.dumps(body) + b"]"
    if choice == 1:
        return rng.choice([b"null", b"42", b'"text"', b"true", b"", b" ", b"{}"])
    if choice == 2:
        return b'{"a":' * 300 + b"1" + b"}" * 300  # deep nesting
    if choice == 3:
        return orjson.dumps(body)[:-1] + b', "big": 123456789012345678901234567890}'
    if choice == 4:
        return orjson.dumps(body)[:-1] + b', "bad": "\\ud800"}'  # lone surrogate escape
    if choice == 5:
        return orjson.dumps(body).replace(b'"id":', b'"id":"dup","id":', 1)  # duplicate key
    if choice == 6:
        return orjson.dumps(body)[:-1] + b', "x": "\xff\xfe"}'  # not UTF-8
    if choice == 7:
        body["ts"] = rng.choice(["2025-05-01", "2025-05-01T08:00:00", "yesterday", "2025-13-01T00:00:00Z",
                                 "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
        return orjson.dumps(body)
    body["嵌套"] = {"列表": [1, "二", {"三": None}], "emoji": "🚒"}
    return orjson.dumps(body)


def _bad_topic(rng: random.Random, topic: str) -> str:
    parts = topic.split("/")
    if parts[0] == "teams":
        parts[2] = rng.choice(["", "bad id", "x" * 65, "团队", "a#b".replace("#", "_") + "é"])
        return "/".join(parts)
    i = rng.choice([2, 3, 4])
    parts[i] = rng.choice(["", "atlantis", "PATROL", "sensors", "x" * 65, "bad id", "网格", "a.b-c_d"])
    return "/".join(parts)


def fuzz_messages(n: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    sent_valid: list[tuple[str, bytes]] = []
    for i in range(n):
        base = sample(rng, f"f{i}")
        body = orjson.loads(base.payload)
        r = rng.random()
        if r < 0.30:
            item = base.item()
            sent_valid.append(item)
        elif r < 0.36 and sent_valid:
            item = rng.choice(sent_valid)  # a resend
        elif r < 0.44:
            item = base.topic, rng.randbytes(rng.randrange(0, 300))
        elif r < 0.52:
            item = base.topic, base.payload[: rng.randrange(0, len(base.payload))]
        elif r < 0.62:
            item = base.topic, orjson.dumps(_mutate_type(rng, body))
        elif r < 0.70:
            body.pop(rng.choice(sorted(body)))
            item = base.topic, orjson.dumps(body)
        elif r < 0.71:
            item = base.topic, base.payload + b" " * (MAX_PAYLOAD_BYTES + rng.randrange(1, 30000))
        elif r < 0.80:
            item = _bad_topic(rng, base.topic), base.payload
        elif r < 0.83:
            item = base.topic, orjson.dumps(_nul_in_text(rng, body))
        elif r < 0.86:
            body["ts"] = _out_of_window_ts(rng)
            item = base.topic, orjson.dumps(body)
        else:
            item = base.topic, _weird_json(rng, body)
        if rng.random() < 0.15:  # a drill's copy: same ids, other source keys
            item = f"exercise/v1/{rng.choice(['EX-1', 'EX-2', 'bad id', '演练'])}/{item[0]}", item[1]
        yield item


def expected_outcomes(items: list[tuple[str, bytes]]) -> Counter[str]:
    """What the ingest must do with each message, in publish order (one publisher,
    one subscriber: the broker keeps the order)."""
    out: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    now = datetime.now(UTC)
    for topic, payload in items:
        try:
            msg = parse_message(topic, payload, now, WINDOW)
            row_for(msg, place_of(msg, 0.025, {}))
        except (ContractError, Unstorable):
            out["dead_letter"] += 1
            continue
        key = (msg.source, msg.msg_id)
        out["duplicate" if key in seen else "stored"] += 1
        seen.add(key)
    return out


@pytest.mark.slow
def test_fuzz_10000_never_stops_and_accounts_for_every_message(make_settings: Any, mqtt_broker: Any,
                                                                database_url: str) -> None:
    items = list(fuzz_messages(N, seed=20250501))
    expected = expected_outcomes(items)
    assert expected["dead_letter"] > 3000 and expected["stored"] > 2500 and expected["duplicate"] > 300
    group = f"t{uuid.uuid4().hex[:10]}" if mqtt_broker.is_mosquitto else ""
    settings = make_settings(ingest_metrics_port=0, dead_letter_raw_cap=CAP, ingest_shared_group=group,
                             ingest_flush_ms=20)
    svc = IngestService(settings, metrics_addr="127.0.0.1")
    svc.start()
    try:
        assert svc.wait_ready(20)
        pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
        try:
            assert pub.publish_all(items, timeout=180) == N
            assert pub.refused == 0
        finally:
            pub.close()
        wait_for(lambda: total(scrape(svc.metrics_url), "ingest_messages_total") >= N, 120,
                 what=f"all {N} messages accounted for")
        assert svc.healthy
        metrics = scrape(svc.metrics_url)
    finally:
        svc.stop(forget_session=True)

    got = {o: total(metrics, "ingest_messages_total", outcome=o)
           for o in ("stored", "duplicate", "dead_letter")}
    assert sum(got.values()) == N
    assert got == {o: float(expected[o]) for o in got}
    with psycopg.connect(database_url) as conn:
        ledger = one(conn.execute("SELECT count(*) FROM message_ledger"))[0]
        rows = sum(one(conn.execute(f"SELECT count(*) FROM {t}"))[0] for t in TABLE_COLUMNS)
        drills = sum(one(conn.execute(f"SELECT count(*) FROM {t} WHERE exercise_id IS NOT NULL"))[0]
                     for t in TABLE_COLUMNS)
        in_drills = "SELECT count(*) FROM message_ledger WHERE starts_with(source, 'ex/')"
        ledger_drills = one(conn.execute(in_drills))[0]
        dead = one(conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE reason = ''),"
            " count(*) FILTER (WHERE octet_length(payload) > %s OR octet_length(payload) > payload_size),"
            " count(*) FILTER (WHERE payload_size > %s)"
            " FROM dead_letter", (CAP, MAX_PAYLOAD_BYTES)))
        door = one(conn.execute(
            "SELECT count(*) FILTER (WHERE reason LIKE '%%retention window%%'),"
            " count(*) FILTER (WHERE reason LIKE '%%ahead of the receipt time%%'),"
            " count(*) FILTER (WHERE reason LIKE '%%U+0000%%') FROM dead_letter"))
    assert ledger == rows == got["stored"]
    assert ledger_drills == drills > 0
    assert dead[0] == got["dead_letter"]
    assert dead[1] == 0, "every dead letter has a reason"
    assert dead[2] == 0, "dead-letter payloads are capped copies"
    assert dead[3] > 0, "oversized payloads were dead-lettered with their real size"
    assert door[0] > 0 and door[1] > 0, "old and future ts were refused at the door"
    assert door[2] > 0, "NUL in text was dead-lettered (and the dead letter stored)"
