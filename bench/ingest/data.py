"""The messages every stage of the ingest benchmark uses, built from the feed simulator.

``mosquitto_pub -l`` publishes every line of its input to **one** topic, so the stream
is split into groups, one per publisher process: the sensor readings over a few device
topics, and every other kind of message (video alerts, 110 calls, team positions, …)
on one topic of its kind. Payloads keep the simulator's content (realistic sizes and
values) with their ``id`` rewritten to be unique across the whole run, so that the
ingest stores every message once. The database stages (raw COPY, INSERT, the writer)
use the very same (topic, payload) pairs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingest.rows import DevicePositions, place_of, row_for
from ingest.subscriber import Inbound
from simulators.feeds import CST, FeedGenerator
from wuwang.city import City
from wuwang.contract import parse_message, parse_topic, wuwang_topic

#: The simulator's stream: the demo's budget of 500 msg/s, replayed at 10 simulated
#: seconds per wall second (a drill replay): mostly sensor readings, with team
#: positions, video alerts and 110 calls mixed in (see docs/benchmarks.md).
SIM_RATE = 500.0
SIM_TIME_SCALE = 10.0

_STAMP = b'"@@BENCH_T@@"'
#: The source id the stream's video alerts are published from (cameras registered behind it).
VIDEO_PLATFORM = "VP-BENCH-video"


@dataclass(frozen=True)
class Stream:
    """``n`` messages split into publisher groups (one topic per group)."""

    topics: tuple[str, ...]  # group → topic
    groups: tuple[int, ...]  # message → group, in stream order
    bodies: tuple[dict[str, Any], ...]  # message → payload object (id not yet set)
    sensor_gateways: dict[str, str]  # device id → the gateway (source id) that publishes it
    camera_platforms: dict[str, str]  # camera id → the video platform (source id) that publishes it

    def __len__(self) -> int:
        return len(self.groups)

    def payload(self, i: int, prefix: str) -> bytes:
        return orjson.dumps(self.bodies[i] | {"id": f"{prefix}{i}"})

    def messages(self, prefix: str, n: int | None = None) -> list[tuple[str, bytes]]:
        """(topic, payload) of the first ``n`` messages, ids ``prefix<i>``."""
        count = len(self) if n is None else min(n, len(self))
        return [(self.topics[self.groups[i]], self.payload(i, prefix)) for i in range(count)]

    def write_files(self, directory: Path, prefix: str) -> list[tuple[str, Path, int]]:
        """One ``mosquitto_pub -l`` input file per group: (topic, file, lines)."""
        directory.mkdir(parents=True, exist_ok=True)
        lines: list[list[bytes]] = [[] for _ in self.topics]
        for i, g in enumerate(self.groups):
            lines[g].append(self.payload(i, prefix))
        out = []
        for g, topic in enumerate(self.topics):
            if not lines[g]:
                continue
            path = directory / f"{prefix}-{g}.jsonl"
            path.write_bytes(b"\n".join(lines[g]) + b"\n")
            out.append((topic, path, len(lines[g])))
        return out

    def stamped_templates(self, prefix: str, n: int) -> list[tuple[int, bytes, bytes]]:
        """``n`` messages (cycling through the stream) as (group, head, tail): the line
        to publish is ``head + <publish time, epoch seconds> + tail``."""
        out = []
        for k in range(n):
            i = k % len(self)
            raw = orjson.dumps(self.bodies[i] | {"id": f"{prefix}{k}", "bench_t": "@@BENCH_T@@"})
            head, tail = raw.split(_STAMP, 1)
            out.append((self.groups[i], head, tail))
        return out

    def feed_counts(self) -> Counter[str]:
        """Messages per feed (a team's report counted as ``report (team)``)."""
        names = []
        for topic in self.topics:
            t = parse_topic(topic)
            names.append(f"{t.feed} (team)" if t.is_team and str(t.feed) == "report" else str(t.feed))
        return Counter(names[g] for g in self.groups)


def build_stream(city: City, n: int, *, seed: int = 7, sensor_publishers: int = 3) -> Stream:
    """The first ``n`` good messages of the simulator for ``city``."""
    # The simulated clock runs SIM_TIME_SCALE times faster than the wall: start it so far
    # back that the last message's ts is now (the ingest refuses a ts ahead of its receipt).
    span = timedelta(seconds=n * SIM_TIME_SCALE / SIM_RATE)
    gen = FeedGenerator(
        city,
        seed=seed,
        start=(datetime.now(CST) - span).replace(microsecond=0),
        rate=SIM_RATE,
        time_scale=SIM_TIME_SCALE,
    )
    topic_of_group: dict[str, int] = {}
    topics: list[str] = []
    groups: list[int] = []
    bodies: list[dict[str, Any]] = []
    gateway_of: dict[str, int] = {}  # device id → its sensor group
    platforms: dict[str, str] = {}  # camera id → its video platform
    for ev in gen.events(n):
        parsed = parse_topic(ev.topic)
        body = orjson.loads(ev.payload)
        body.pop("id", None)
        if str(parsed.feed) == "sensor":
            # A sensor group is a gateway (物联网关) publishing for the devices registered
            # behind it (``sensor_gateways``): each device always in the same group.
            key = f"sensor-{gateway_of.setdefault(body['device_id'], len(gateway_of) % sensor_publishers)}"
            topic = wuwang_topic(str(parsed.network), "sensor", f"GW-BENCH-{key}")
        elif str(parsed.feed) == "video":
            # A video platform (视频平台) publishing for the cameras registered behind it
            # (``camera_platforms``): a camera account speaks only for its own cameras.
            key = "video"
            topic = wuwang_topic(str(parsed.network), "video", VIDEO_PLATFORM)
            platforms[body["camera_id"]] = VIDEO_PLATFORM
        else:
            key = f"{parsed.feed}{'-team' if parsed.is_team else ''}"
            topic = ev.topic  # the first message's own topic stands for the group
        g = topic_of_group.get(key)
        if g is None:
            g = topic_of_group[key] = len(topics)
            topics.append(topic)
        groups.append(g)
        bodies.append(body)
    return Stream(tuple(topics), tuple(groups), tuple(bodies),
                  {d: f"GW-BENCH-sensor-{k}" for d, k in gateway_of.items()}, platforms)


def device_positions(city: City) -> DevicePositions:
    return {d.id: (d.lat, d.lon) for d in city.devices}


def prebuilt_rows(
    messages: Sequence[tuple[str, bytes]], grid_deg: float, devices: DevicePositions
) -> list[tuple[str, tuple[object, ...]]]:
    """(table, row in TABLE_COLUMNS order) for each message, as the writer would store it."""
    now = datetime.now(UTC)
    out = []
    for topic, payload in messages:
        msg = parse_message(topic, payload, now)
        out.append(row_for(msg, place_of(msg, grid_deg, devices)))
    return out


def inbound(messages: Sequence[tuple[str, bytes]]) -> list[Inbound]:
    """The messages as the network thread hands them to the writer (QoS 1)."""
    now = datetime.now(UTC)
    return [
        Inbound(topic, payload, now, 1, i % 65535 + 1, 1, len(payload))
        for i, (topic, payload) in enumerate(messages)
    ]
