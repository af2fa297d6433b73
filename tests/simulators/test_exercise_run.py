"""The exercise runner against the real services: the session's Mosquitto (project
configuration and ACL), a database of its own and Redis. Injects go to a tiny real HTTP
server standing in for the command API's /auth/login and /exercises/{id}/injects.

Timing drift is reported and checked for being measured, never against a wall-clock
bound (the machine is shared)."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import TypeAdapter, ValidationError

from command.routes.exercises import InjectBody
from simulators.exercise_run import InjectApi, RunReport, TimedInject, TimedMessage, run_exercise
from simulators.scenario import demo_world, expand, parse_scenario
from wuwang.exercises import control_stream
from wuwang.mqtt import MqttTarget
from wuwang.settings import Settings

INJECT_BODY: TypeAdapter[Any] = TypeAdapter(InjectBody)

pytestmark = pytest.mark.slow

SCENARIO = """\
name: 测试演练
description: 化工园区泄漏（测试）
start: {venue: VEN-0126}
injects:
  - at: 10s
    name: leak
    sensor: {device: SEN-1930, from: 3, to: 40, over: 60s, every: 10s}
  - at: 20s
    video: {camera: CAM-1220, event: fire_smoke, confidence: 0.92}
  - at: 30s
    calls: {count: 5, over: 30s, radius_m: 300, category: rescue, descriptions: ["{place}有刺鼻气味"]}
  - at: 40s
    team_unavailable: {team: T-HAZMAT-03, reason: 车辆故障}
  - at: 50s
    warehouse_short: {warehouse: WH-GOV-CITY-05, item: protective_suit, quantity: 30}
  - at: 2m
    escalate: {of: leak, level: III, reason: 浓度持续上升}
  - at: 2m30s
    report: {category: hazmat_leak, description: 下风向有异味, radius_m: 100}
"""


# --- a tiny command API -------------------------------------------------------------------


@dataclass
class FakeCommandApi:
    url: str
    injects: list[dict[str, Any]] = field(default_factory=list)
    logins: int = 0
    escalate_404s: int = 2  # answer 404 this many times first: the incident is not there yet
    invalid: list[str] = field(default_factory=list)  # bodies the command service would refuse (422)
    refused: list[dict[str, Any]] = field(default_factory=list)
    # the alarm inbox: rows the drill's alarms wait in; escalate 404s until the row is promoted
    inbox: list[dict[str, Any]] = field(default_factory=list)
    promoted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def command_api() -> Iterator[FakeCommandApi]:
    state = FakeCommandApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != "Bearer tok":
                return self._reply(401, {"detail": "not authenticated"})
            if self.path.startswith("/inbox?"):
                query = parse_qs(urlsplit(self.path).query)
                wanted = query.get("state", ["open"])[0]
                rows = [
                    r
                    for r in state.inbox
                    if r["state"] == wanted and r["exercise_id"] in query["exercise_id"]
                ]
                return self._reply_list(rows)
            return self._reply(404, {"detail": "Not Found"})

        def _reply_list(self, rows: list[dict[str, Any]]) -> None:
            data = json.dumps(rows).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if self.path == "/auth/login":
                if body != {"username": "planner1", "password": "demo"}:
                    return self._reply(401, {"detail": "wrong user name or password"})
                state.logins += 1
                return self._reply(200, {"access_token": "tok", "token_type": "bearer"})
            if self.headers.get("Authorization") != "Bearer tok":
                return self._reply(401, {"detail": "not authenticated"})
            if self.path.startswith("/inbox/") and self.path.endswith("/promote"):
                row_id = self.path.split("/")[2]
                row = next((r for r in state.inbox if r["row_id"] == row_id), None)
                if row is None:
                    return self._reply(404, {"detail": f"no inbox row {row_id}"})
                if row["state"] not in ("open", "expired"):
                    return self._reply(409, {"detail": "acted on already"})
                row["state"] = "promoted"
                state.promoted.append((row_id, body))
                state.escalate_404s = 0  # its incident is there now
                return self._reply(200, {"row": row, "incident": {"id": "INC-1"}})
            if self.path.startswith("/exercises/") and self.path.endswith("/injects"):
                try:  # the command service's own request model: the stand-in takes what it takes
                    INJECT_BODY.validate_python(body)
                except ValidationError as exc:
                    state.invalid.append(str(exc))
                    return self._reply(422, {"detail": exc.errors(include_url=False)})
                if body.get("kind") == "escalate" and state.escalate_404s > 0:
                    state.escalate_404s -= 1
                    state.refused.append(body)
                    return self._reply(404, {"detail": "no incident has that message yet"})
                state.injects.append({"path": self.path, **body})
                return self._reply(201, {"ok": True})
            return self._reply(404, {"detail": "Not Found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


# --- an exercise subscriber ---------------------------------------------------------------


@dataclass
class Received:
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


@pytest.fixture
def subscribe(mqtt_broker: Any) -> Iterator[Callable[[str], Received]]:
    """Subscribe to ``exercise/v1/<id>/#`` as the ingest (which the ACL lets read there)."""
    clients: list[mqtt.Client] = []

    def start(exercise_id: str) -> Received:
        target = MqttTarget.from_url(mqtt_broker.url_for("ingest"))
        got = Received()
        ready = threading.Event()
        granted: list[Any] = []
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-drill-sub-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv311 if mqtt_broker.protocol == "3.1.1" else mqtt.MQTTv5,
        )
        client.username_pw_set(target.username, target.password)

        def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
            with got.lock:
                got.messages.append((m.topic, json.loads(m.payload)))

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, codes: list[Any], props: Any) -> None:
            granted.extend(codes)
            ready.set()

        client.on_message = on_message
        client.on_subscribe = on_subscribe
        client.on_connect = lambda c, *a: c.subscribe(f"exercise/v1/{exercise_id}/#", qos=1)
        client.connect(target.host, target.port)
        client.loop_start()
        clients.append(client)
        assert ready.wait(10), "no SUBACK"
        assert not any(getattr(code, "is_failure", False) for code in granted), granted
        return got

    yield start
    for client in clients:
        client.loop_stop()
        client.disconnect()


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _row(database_url: str, exercise_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(
            "SELECT status, speed, kind, source, created_by, started_at, finished_at, sim_start, sim_end,"
            " sim_position, stats FROM exercise WHERE id = %s",
            (exercise_id,),
        )
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        return dict(zip([d.name for d in cur.description], row, strict=True))


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(account="simulator")


def test_a_scenario_runs_at_speed_100_on_the_exercise_prefix(
    settings: Settings, subscribe: Callable[[str], Received], command_api: FakeCommandApi
) -> None:
    world = demo_world()
    items = expand(parse_scenario(textwrap.dedent(SCENARIO), "test.yaml", world), world)
    messages = [it for it in items if isinstance(it, TimedMessage)]
    injects = [it for it in items if isinstance(it, TimedInject)]
    got = subscribe("EX-T1")
    api = InjectApi(command_api.url, "planner1", "demo", escalate_retry_s=30.0, retry_every_s=0.05)

    report = run_exercise(
        settings,
        "EX-T1",
        items,
        speed=100,
        api=api,
        name="测试演练",
        source="test.yaml",
        created_by="planner1",
    )

    assert report.status == "finished" and not report.errors, report.errors
    assert report.sent == len(messages) and report.acked == len(messages) and report.refused == 0
    assert report.injects == len(injects) == 2 and report.injects_failed == 0 and report.skipped == 0
    assert _wait_for(lambda: got.count() >= len(messages))
    assert got.count() == len(messages)
    # Every message arrives on the exercise's copy of its v1 topic, in order of offset,
    # stamped with its send time and keeping its scheduled exercise time.
    expected = sorted(("exercise/v1/EX-T1/" + m.topic, m.payload["id"], m.offset_s) for m in messages)
    assert sorted((t, p["id"], p["exercise_offset_s"]) for t, p in got.messages) == expected
    assert all(p["ts"][-6] in "+-" and "T" in p["ts"] for _, p in got.messages)
    leak = [p["exercise_offset_s"] for _, p in got.messages if p.get("device_id") == "SEN-1930"]
    assert leak == sorted(leak)
    # The injects reached the command API; the escalation survived two 404s.
    assert command_api.invalid == []
    assert [i["kind"] for i in command_api.injects] == ["warehouse_short", "escalate"]
    assert all(i["path"] == "/exercises/EX-T1/injects" for i in command_api.injects)
    assert len(command_api.refused) == 2
    assert command_api.injects[1]["msg_id"] == next(
        i.body["msg_id"] for i in injects if i.body["kind"] == "escalate"
    )
    # Drift is measured for every item (the value itself depends on the machine).
    assert report.drift.count == len(items)
    assert report.drift.p50 <= report.drift.p95 <= report.drift.p99 <= report.drift.max
    print(f"drift at ×100: {report.drift}")

    row = _row(settings.shared.database_url or "", "EX-T1")
    assert row["status"] == "finished" and row["kind"] == "scenario" and row["source"] == "test.yaml"
    assert row["created_by"] == "planner1" and row["speed"] == 100
    assert row["started_at"] is not None and row["finished_at"] is not None
    assert row["sim_end"] - row["sim_start"] == row["sim_position"] - row["sim_start"]
    assert (row["sim_end"] - row["sim_start"]).total_seconds() == items[-1].offset_s
    stats = row["stats"]
    assert stats["sent"] == report.sent and stats["injects"] == 2
    assert stats["drift_ms"] == report.drift.as_dict()


def test_an_escalation_of_an_alarm_waiting_in_the_inbox_promotes_its_row_first(
    settings: Settings, command_api: FakeCommandApi
) -> None:
    """A sensor crossing no triage rule promotes waits in the alarm inbox: no incident
    joins it, so the escalate is answered 404 — the runner then promotes the row holding
    that alarm, as the planner it logs in as, and the escalation goes through."""
    world = demo_world()
    items = expand(parse_scenario(textwrap.dedent(SCENARIO), "test.yaml", world), world)
    escalate = next(i for i in items if isinstance(i, TimedInject) and i.body["kind"] == "escalate")
    msg_id = escalate.body["msg_id"]
    command_api.escalate_404s = 10**6  # never an incident until the row is promoted
    command_api.inbox = [
        {"row_id": "IB-00000000000000aa", "state": "open", "exercise_id": "EX-OTHER",
         "first_alarm_id": f"venue/SEN-1930#{msg_id}", "alarm_ids": [f"venue/SEN-1930#{msg_id}"]},
        {"row_id": "IB-00000000000000bb", "state": "open", "exercise_id": "EX-T3",
         "first_alarm_id": "venue/SEN-1930#other",
         "alarm_ids": ["venue/SEN-1930#other", f"venue/SEN-1930#{msg_id}"]},
    ]  # fmt: skip
    api = InjectApi(command_api.url, "planner1", "demo", escalate_retry_s=30.0, retry_every_s=0.05)

    report = run_exercise(settings, "EX-T3", items, speed=100, api=api, name="测试演练", source="test.yaml")

    assert report.status == "finished" and not report.errors, report.errors
    assert report.injects_failed == 0
    # the drill's own row (never another exercise's), promoted once, the note naming the step
    assert [row_id for row_id, _ in command_api.promoted] == ["IB-00000000000000bb"]
    assert "演练脚本" in command_api.promoted[0][1]["note"]
    assert [i["kind"] for i in command_api.injects] == ["warehouse_short", "escalate"]
    assert command_api.injects[1]["msg_id"] == msg_id


def test_pause_seek_and_speed_from_the_control_stream(
    settings: Settings, subscribe: Callable[[str], Received], redis_url: str
) -> None:
    # One status message per exercise second for 200 s: at ×5, five a second.
    items = [
        TimedMessage(
            float(s),
            "teams/v1/T-FIRE-01/position",
            {"id": f"p{s:03d}", "lat": 32.05, "lon": 112.14, "seq": s},
            f"position {s}",
        )
        for s in range(201)
    ]
    got = subscribe("EX-T2")
    control = redis.Redis.from_url(redis_url)
    stream = control_stream("EX-T2")
    result: list[RunReport] = []
    runner = threading.Thread(target=lambda: result.append(run_exercise(settings, "EX-T2", items, speed=5)))
    runner.start()
    try:
        assert _wait_for(lambda: got.count() >= 5)
        control.xadd(stream, {"action": "pause", "value": ""})
        assert _wait_for(lambda: _row(settings.shared.database_url or "", "EX-T2")["status"] == "paused")
        time.sleep(0.3)  # what was in flight when the pause took effect
        paused_at = got.count()
        position = _row(settings.shared.database_url or "", "EX-T2")["sim_position"]
        time.sleep(1.0)
        assert got.count() == paused_at, "messages kept coming while paused"
        assert _row(settings.shared.database_url or "", "EX-T2")["sim_position"] == position

        control.xadd(stream, {"action": "seek", "value": "150"})
        control.xadd(stream, {"action": "speed", "value": "100"})
        control.xadd(stream, {"action": "speed", "value": "1000"})  # refused: 1–100 only
        control.xadd(stream, {"action": "play", "value": ""})
        runner.join(60)
        assert not runner.is_alive()
    finally:
        control.xadd(stream, {"action": "stop", "value": ""})
        runner.join(30)
        control.close()

    report = result[0]
    assert report.status == "finished" and not report.stopped
    assert report.speed == 100
    assert any("speed 1000" in e for e in report.errors)
    assert _wait_for(lambda: got.count() >= report.sent)
    offsets = sorted(p["exercise_offset_s"] for _, p in got.messages)
    before = [o for o in offsets if o < 150]
    assert before == [float(s) for s in range(len(before))] and len(before) == paused_at
    assert [o for o in offsets if o >= 150] == [float(s) for s in range(150, 201)]
    assert report.skipped == 150 - len(before) and report.sent == len(offsets)
    row = _row(settings.shared.database_url or "", "EX-T2")
    assert row["status"] == "finished" and row["speed"] == 100
    assert row["stats"]["skipped"] == report.skipped and row["stats"]["drift_ms"]["count"] == report.sent


def test_stop_ends_the_run_and_a_finished_exercise_is_not_run_again(
    settings: Settings, subscribe: Callable[[str], Received], redis_url: str
) -> None:
    items = [
        TimedMessage(float(s), "teams/v1/T-FIRE-01/status", {"id": f"s{s}", "status": "available"})
        for s in range(0, 3600, 60)
    ]
    got = subscribe("EX-T3")
    with psycopg.connect(settings.shared.database_url or "") as conn:  # registered by the command API
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, created_by, speed)"
            " VALUES ('EX-T3', '停止测试', 'scenario', 'x.yaml', 'planner1', 1)"
        )
    control = redis.Redis.from_url(redis_url)
    try:
        stop = threading.Event()
        result: list[RunReport] = []
        runner = threading.Thread(
            target=lambda: result.append(run_exercise(settings, "EX-T3", items, speed=10, stop=stop))
        )
        runner.start()
        assert _wait_for(lambda: got.count() >= 1)
        control.xadd(control_stream("EX-T3"), {"action": "stop", "value": ""})
        runner.join(30)
        assert not runner.is_alive()
    finally:
        stop.set()
        control.close()
    report = result[0]
    assert report.stopped and report.status == "finished" and report.sent < len(items)
    row = _row(settings.shared.database_url or "", "EX-T3")
    assert row["status"] == "finished" and row["stats"]["stopped"] is True
    assert row["created_by"] == "planner1" and row["source"] == "x.yaml"  # the registered row, kept

    with pytest.raises(RuntimeError, match="finished"):
        run_exercise(settings, "EX-T3", items, speed=10)
    assert _row(settings.shared.database_url or "", "EX-T3")["status"] == "finished"
