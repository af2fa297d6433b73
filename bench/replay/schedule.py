"""The recording the replay benchmark plays: a synthetic hour of a city's feeds (pure).

Background: the feed simulator's own messages (``simulators.feeds.FeedGenerator`` at a
budget of about one message per recorded second, so team positions, video alerts, 110
calls, grid reports, team statuses and a few sensor readings in the simulator's mix)
arriving as a Poisson process — exponential gaps, so some come within milliseconds of
each other and some after several seconds. On top, a few **bursts of 110 calls** (a
large incident phoned in by many people at once): calls whose gaps start short and
grow, with times rounded to whole seconds as many 110 systems record them, so several
calls are due at the very same instant.

Every message is a valid contract v1 message (checked with
``wuwang.contract.parse_message``) and gets a globally unique ``id`` (``r00001``…), which
the receiver uses to find its scheduled offset.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import orjson

from simulators.exercise_run import TimedMessage
from simulators.feeds import CST, SYS110, FeedGenerator
from wuwang.city import City, CitySize, build_city
from wuwang.contract import Feed, Network, encode, parse_message, parse_topic, wuwang_topic
from wuwang.geo import offset_by_metres

RECORDED_START = datetime(2026, 11, 23, 8, 0, tzinfo=CST)
BURST_CATEGORIES = ("fire", "traffic", "rescue", "public_order")


@dataclass(frozen=True)
class Recording:
    items: list[TimedMessage]  # sorted by offset
    span_s: float  # recorded seconds
    bursts: list[tuple[float, int]]  # (offset of the first call, calls)
    feeds: dict[str, int]  # messages per feed

    def window(self, start: float, end: float) -> list[TimedMessage]:
        """Items with ``start <= offset < end``, their offsets rebased on ``start``."""
        return [
            TimedMessage(round(it.offset_s - start, 3), it.topic, it.payload, it.label)
            for it in self.items
            if start <= it.offset_s < end
        ]


def _burst_offsets(rng: random.Random, start: float, calls: int) -> list[float]:
    """Gaps of a mass call-in: short at first (mean 0.4 s), longer later (up to 6 s);
    recorded to the whole second."""
    t, out = start, []
    for k in range(calls):
        out.append(float(round(t)))
        mean = 0.4 + 5.6 * (k / max(calls - 1, 1)) ** 2
        t += rng.expovariate(1 / mean)
    return out


def build_recording(
    span_s: float = 3600.0,
    background_per_s: float = 1.2,
    bursts: int = 4,
    calls_per_burst: int = 80,
    seed: int = 20261123,
    city: City | None = None,
) -> Recording:
    rng = random.Random(seed)
    city = city or build_city(size=CitySize(venues=100, devices=600, cameras=400, patrol_units=20, teams=40))
    gen = FeedGenerator(city, seed=seed, start=RECORDED_START, rate=background_per_s)
    # Poisson arrivals for the background.
    offsets: list[float] = []
    t = rng.expovariate(background_per_s)
    while t < span_s:
        offsets.append(round(t, 3))
        t += rng.expovariate(background_per_s)
    events = list(gen.events(len(offsets)))
    raw: list[tuple[float, str, dict[str, object]]] = []
    call_texts: list[tuple[str, str]] = []
    for off, ev in zip(offsets, events, strict=True):
        payload = orjson.loads(ev.payload)
        payload.pop("ts", None)  # stamped at sending
        raw.append((off, ev.topic, payload))
        if ev.feed is Feed.CALL:
            call_texts.append((str(payload["address"]), str(payload["description"])))
    call_texts = call_texts or [("襄阳市樊城区人民广场", "有人报警")]
    burst_list: list[tuple[float, int]] = []
    for b in range(bursts):
        # Spread over the hour, never in the first or last tenth.
        first = round(span_s * (0.12 + 0.76 * (b + 0.5) / bursts) + rng.uniform(-60, 60))
        burst_list.append((float(first), calls_per_burst))
        cell = rng.choice(city.grid_cells)
        category = BURST_CATEGORIES[b % len(BURST_CATEGORIES)]
        for k, off in enumerate(_burst_offsets(rng, first, calls_per_burst)):
            if off >= span_s:
                break
            lat, lon = offset_by_metres(*cell.center, rng.uniform(-400, 400), rng.uniform(-400, 400))
            address, description = rng.choice(call_texts)
            raw.append(
                (
                    off,
                    wuwang_topic(Network.POLICE, Feed.CALL, SYS110),
                    {
                        "call_id": f"JQ-BENCH-{b + 1:02d}{k + 1:04d}",
                        "category": category,
                        "lat": round(lat, 6),
                        "lon": round(lon, 6),
                        "address": address,
                        "description": description,
                        "caller": f"1{rng.randrange(30, 99)}****{rng.randrange(10000):04d}",
                        "priority": 1,
                        "sim": True,
                    },
                )
            )
    raw.sort(key=lambda r: r[0])
    items: list[TimedMessage] = []
    feeds: Counter[str] = Counter()
    now = datetime.now(CST)
    for i, (off, topic, payload) in enumerate(raw):
        body = {"id": f"r{i:05d}", **{k: v for k, v in payload.items() if k != "id"}}
        check = dict(body, ts=now.isoformat(timespec="milliseconds"), exercise_offset_s=off)
        parse_message(topic, encode(check), now)  # raises ContractError if not valid v1
        feeds[str(parse_topic(topic).feed)] += 1
        items.append(TimedMessage(off, topic, body, f"{topic.rsplit('/', 2)[-2]} {i}"))
    return Recording(items, span_s, burst_list, dict(feeds))


def peak_per_s(offsets: list[float], speed: float, window_s: float = 1.0) -> int:
    """Most messages due within any ``window_s`` wall seconds at ``speed``."""
    walls = sorted(o / speed for o in offsets)
    best, lo = 0, 0
    for hi, w in enumerate(walls):
        while w - walls[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
