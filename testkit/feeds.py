"""Helpers for the ingest's tests and benchmarks (testkit, not the product): a fast QoS 1
publisher, sample messages for every feed, metrics scraping and polling."""

from __future__ import annotations

import contextlib
import itertools
import queue
import random
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client.parser import text_string_to_metric_families

from ingest.metrics import IngestMetrics
from ingest.writer import BatchWriter
from wuwang.contract import FEEDS, encode, parse_topic, team_topic, wuwang_topic
from wuwang.mqtt import MqttTarget, apply_target, make_client
from wuwang.mqttlink import Delivery
from wuwang.settings import Settings

# --- polling ------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> None:
    """Poll until ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- metrics ------------------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """All samples of a Prometheus text endpoint: (name, labels) → value."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - test helper, http URL
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


# --- publishing ---------------------------------------------------------------------


class Publisher:
    """A QoS 1 publisher driven from one thread (no loop_start: paho #354), with many
    messages in flight. ``publish_all`` returns once the broker acknowledged them all."""

    def __init__(self, url: str, *, protocol: str = "5", client_id: str | None = None,
                 max_inflight: int = 1000) -> None:
        self._target = MqttTarget.from_url(url)
        self.client = make_client(client_id or f"pub-{uuid.uuid4().hex[:12]}", protocol=protocol)
        apply_target(self.client, self._target)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.acked = 0
        self.refused = 0
        self.client.connect(self._target.host, self._target.port, keepalive=30)
        self._until(self.client.is_connected, 15, "CONNACK")

    def _on_publish(self, _c: paho.Client, _u: Any, _mid: int, rc: ReasonCode, _p: Any) -> None:
        self.acked += 1
        if rc.is_failure:
            self.refused += 1

    def _until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"publisher: no {what} after {timeout} s")
            self._loop(0.05)

    def _loop(self, timeout: float) -> None:
        rc = self.client.loop(timeout)
        if rc != paho.MQTT_ERR_SUCCESS:
            # Broker restarting: paho keeps the unacknowledged messages and resends them.
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                self.client.reconnect()

    def publish_all(self, items: Iterable[tuple[str, bytes]], timeout: float = 120.0) -> int:
        start = self.acked
        n = 0
        for topic, payload in items:
            self.client.publish(topic, payload, qos=1)
            n += 1
            if n % 64 == 0:
                self._loop(0)
        self._until(lambda: self.acked - start >= n, timeout, f"PUBACK for all {n} messages")
        return n

    def close(self) -> None:
        self.client.disconnect()
        deadline = time.monotonic() + 2
        while self.client.socket() is not None and time.monotonic() < deadline:
            self.client.loop(0.05)


def publish(url: str, items: Iterable[tuple[str, bytes]], *, protocol: str = "5") -> int:
    pub = Publisher(url, protocol=protocol)
    try:
        return pub.publish_all(items)
    finally:
        pub.close()


# --- sample messages ----------------------------------------------------------------

NETWORKS = ("patrol", "community", "venue", "police", "video")
SENSOR_KINDS = {  # kind → (unit, typical max)
    "smoke": ("%/m", 15.0), "gas": ("%LEL", 30.0), "co": ("ppm", 80.0),
    "water_level": ("m", 3.5), "temperature": ("°C", 80.0), "pm25": ("µg/m³", 300.0),
}
CALL_CATEGORIES = ("criminal", "public_order", "traffic", "fire", "medical", "rescue", "dispute", "other")
VIDEO_EVENTS = ("fire_smoke", "crowd", "intrusion", "fight", "traffic_accident", "fall", "loitering")
TEAM_STATUSES = ("available", "dispatched", "en_route", "on_scene", "returning", "off_duty")

#: The kinds of sample: one per feed and topic family (a report from a grid worker, or a team).
SAMPLE_KINDS = ("sensor", "video", "call", "report", "team_report", "position", "status")

# Xiangyang (襄阳) city centre, WGS-84.
CENTRE = (32.009, 112.122)


@dataclass(frozen=True)
class Sample:
    topic: str
    payload: bytes
    kind: str  # one of SAMPLE_KINDS

    @property
    def table(self) -> str:
        """The table it lands in (its feed's, by the specification)."""
        return FEEDS[parse_topic(self.topic).feed].table

    def item(self) -> tuple[str, bytes]:
        return self.topic, self.payload


def _point(rng: random.Random) -> tuple[float, float]:
    return round(CENTRE[0] + rng.uniform(-0.15, 0.15), 6), round(CENTRE[1] + rng.uniform(-0.2, 0.2), 6)


def sample(rng: random.Random, msg_id: str, kind: str | None = None, *, sources: int = 20) -> Sample:
    """One valid message of ``kind`` (random when None) with id ``msg_id``."""
    kind = kind or rng.choice(SAMPLE_KINDS)
    src = rng.randrange(sources)
    body: dict[str, Any] = {"id": msg_id}
    if rng.random() < 0.8:  # the rest: no clock, receipt time stands in
        ts = datetime.now(UTC) - timedelta(seconds=rng.uniform(0, 600))
        body["ts"] = ts.isoformat()
    lat, lon = _point(rng)
    network = rng.choice(NETWORKS)
    if kind == "sensor":
        sensor_kind = rng.choice(tuple(SENSOR_KINDS))
        unit, top = SENSOR_KINDS[sensor_kind]
        device = f"SEN-{src:04d}"
        body |= {"device_id": device, "kind": sensor_kind, "value": round(rng.uniform(0, top), 2),
                 "unit": unit}
        if rng.random() < 0.7:
            body |= {"lat": lat, "lon": lon}
        return Sample(wuwang_topic(network, "sensor", device), encode(body), kind)
    if kind == "video":
        camera = f"CAM-{src:04d}"
        body |= {"camera_id": camera, "event": rng.choice(VIDEO_EVENTS),
                 "confidence": round(rng.uniform(0.3, 1.0), 3), "lat": lat, "lon": lon}
        if rng.random() < 0.5:
            body |= {"snapshot_url": f"https://cam.example/{camera}/{msg_id}.jpg", "bbox": [10, 20, 30, 40]}
        return Sample(wuwang_topic("video", "video", camera), encode(body), kind)
    if kind == "call":
        body |= {"call_id": f"110-{msg_id}", "category": rng.choice(CALL_CATEGORIES), "lat": lat, "lon": lon,
                 "address": f"樊城区人民路{rng.randrange(1, 300)}号", "description": "群众报警，请速处置",
                 "caller": f"138{rng.randrange(10**8):08d}", "priority": rng.randrange(1, 5)}
        return Sample(wuwang_topic("police", "call", "sys110"), encode(body), kind)
    if kind in ("report", "team_report"):
        category = rng.choice(("fire_hazard", "road_damage", "flooding"))
        body |= {"reporter": f"GW-{src:03d}", "category": category, "description": "井盖缺失，已设置警示",
                 "lat": lat, "lon": lon, "note": "extra fields are kept"}
        if kind == "team_report":
            return Sample(team_topic(f"T-{src:03d}", "report"), encode(body), kind)
        return Sample(wuwang_topic("community", "report", f"GW-{src:03d}"), encode(body), kind)
    if kind == "position":
        body |= {"lat": lat, "lon": lon, "speed": round(rng.uniform(0, 20), 1), "heading": rng.randrange(360),
                 "seq": rng.randrange(10**6)}
        return Sample(team_topic(f"T-{src:03d}", "position"), encode(body), kind)
    body |= {"status": rng.choice(TEAM_STATUSES)}
    return Sample(team_topic(f"T-{src:03d}", "status"), encode(body), kind)


def samples(n: int, seed: int = 1, *, prefix: str = "m") -> list[Sample]:
    """``n`` valid messages across every feed, ids unique (``prefix`` + number)."""
    rng = random.Random(seed)
    return [sample(rng, f"{prefix}{i}", SAMPLE_KINDS[i % len(SAMPLE_KINDS)]) for i in range(n)]


# --- one batch through the writer, without a broker -----------------------------------

_mids = itertools.count(1)


def delivery(topic: str, body: dict[str, Any] | bytes, received_at: datetime | None = None) -> Delivery:
    """A message as the network thread hands it to the writer (QoS 1, received now)."""
    payload = body if isinstance(body, bytes) else encode(body)
    return Delivery(topic=topic, payload=payload, received_at=received_at or datetime.now(UTC), qos=1,
                    mid=next(_mids), generation=1, size=len(payload))


def write_batch(settings: Settings, items: Sequence[Delivery]) -> list[tuple[int, int]]:
    """Write ``items`` as one batch with the real writer and database; returns the acks it
    released ((generation, mid) of every message: stored, duplicate or dead-lettered)."""
    acks: list[tuple[int, int]] = []
    writer = BatchWriter(settings, queue.Queue(), lambda g, m: acks.append((g, m)), IngestMetrics())
    writer.start()  # its thread finds an empty inbox; drain() below stops it and closes the connection
    try:
        if not writer.write(items):
            raise AssertionError("the writer gave the batch up")
    finally:
        writer.drain(5)
    return acks
