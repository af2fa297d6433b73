"""A busy peak hour of the demo city with a KNOWN GROUND TRUTH (issue 9, bench/shift).

:func:`peak_hour` builds, for a city and a seed, the messages of one shift window —
110 calls, video alerts, sensor readings — where every message knows what it is:

* **true events** (:class:`TrueEvent`): a fire (a smoke detector, then a camera and
  callers), a traffic accident (a camera and one to three callers), a gas leak (a gas
  detector), a person down (a confident camera), a fight (a camera and a caller or a
  second camera), a flood (two water-level sensors, then callers), a crowd surge at a
  planned event (大型活动), and the plain 110 calls (disputes, thefts, medical …) — with
  the 110 calls that describe the same event marked as such;
* **noise** (``event_id`` None): loitering storms (one camera re-alerting every few
  seconds for a quarter of an hour), flapping cameras, single low-confidence alerts of
  every video event, sensor blips (one crossing, then clear; smoke detectors too) and a
  flapping temperature sensor.

Pure and deterministic: no clock, no I/O. Times are seconds after the window starts;
the replayer (bench/shift) stamps ``ts`` and publishes. Sensor crossings come with the
reading that clears them, so the ingest's hysteresis raises the next one again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from wuwang.city import Camera, City, Device, Venue
from wuwang.contract import wuwang_topic
from wuwang.geo import haversine_m, offset_by_metres

SignalKind = Literal["call", "video", "sensor"]

#: Each sensor kind's raise level and a reading that clears it (wuwang/thresholds.py
#: DEFAULT_THRESHOLDS). The model: a real event's reading is well over the raise level
#: (a fire's smoke, a leak's gas: ×1.6–4), a nuisance blip crosses it marginally
#: (dust, steam, a drifting cell: ×1.0–1.4).
_RAISE = {"smoke": 10.0, "gas": 20.0, "co": 50.0, "water_level": 3.0, "temperature": 60.0}
REAL_OVER = (1.6, 4.0)
BLIP_OVER = (1.0, 1.4)
_CLEAR = {"smoke": 1.0, "gas": 2.0, "co": 5.0, "water_level": 2.2, "temperature": 30.0}

#: The confidence at which the ingest raises a video alarm (settings.ingest.video_alarm_confidence).
VIDEO_ALARM_CONFIDENCE = 0.8


@dataclass(frozen=True, slots=True)
class Signal:
    """One message of the window. ``raises``: the ingest turns it into an alarm."""

    at_s: float
    topic: str
    payload: dict[str, Any]  # without ts: the replayer stamps it
    source: str  # the ingest's source key, "<network>/<id>": alarm id = f"{source}#{msg_id}"
    msg_id: str
    kind: SignalKind
    event_id: str | None  # the true event it belongs to; None: noise
    label: str  # what the generator made it as (for the report)
    raises: bool = True

    @property
    def alarm_id(self) -> str:
        return f"{self.source}#{self.msg_id}"


@dataclass(frozen=True, slots=True)
class TrueEvent:
    event_id: str
    kind: str  # fire, traffic_accident, gas_leak, person_down, fight, flood, crowd_at_event, call
    lat: float
    lon: float
    first_at_s: float  # its first signal that raises an alarm
    calls: int  # 110 calls describing it


@dataclass(frozen=True, slots=True)
class PlannedEventSpec:
    """A planned event (大型活动) running through the window, for the registry."""

    event_id: str
    name: str
    lat: float
    lon: float
    radius_m: float
    starts_at_s: float
    ends_at_s: float


@dataclass(frozen=True)
class ShiftTruth:
    minutes: float
    signals: tuple[Signal, ...]  # in time order
    events: tuple[TrueEvent, ...]
    planned: tuple[PlannedEventSpec, ...] = ()

    @property
    def alarms(self) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.raises)


@dataclass(frozen=True)
class Mix:
    """How busy the hour is (per hour; scaled to the window)."""

    call_events: float = 14  # plain 110 calls (dispute, theft, medical …)
    fires: float = 3
    traffic_accidents: float = 5
    gas_leaks: float = 1
    persons_down: float = 2
    fights: float = 3
    floods: float = 1
    crowd_at_event: float = 1
    loitering_storms: float = 5
    flapping_cameras: float = 2
    single_alerts: float = 40
    sensor_blips: float = 20
    flapping_sensors: float = 1
    second_caller: float = 0.35  # chance an event's call has another caller


_CALL_CATEGORIES = ("dispute", "criminal", "medical", "public_order", "other", "rescue", "traffic")
_SINGLE_EVENTS = ("crowd", "fight", "intrusion", "traffic_accident", "fall", "fire_smoke", "loitering")


class _Builder:
    def __init__(self, city: City, seed: int, minutes: float) -> None:
        self.rng = random.Random(seed)
        self.city = city
        self.minutes = minutes
        self.span_s = minutes * 60.0
        self.signals: list[Signal] = []
        self.events: list[TrueEvent] = []
        self.planned: list[PlannedEventSpec] = []
        self.n = 0
        self.callers = 0
        self.second_caller = 0.35
        self.devices: dict[str, list[Device]] = {}
        for d in city.devices:
            self.devices.setdefault(d.kind, []).append(d)

    # --- primitives ---------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"gt-{prefix}-{self.n:05d}"

    def _count(self, per_hour: float) -> int:
        """A whole number of occurrences with the right mean for the window."""
        mean = per_hour * self.minutes / 60.0
        whole = int(mean)
        return whole + (1 if self.rng.random() < mean - whole else 0)

    def _start(self, tail_s: float = 120.0) -> float:
        return self.rng.uniform(0.0, max(self.span_s - tail_s, 1.0))

    def _near(self, lat: float, lon: float, within_m: float) -> tuple[float, float]:
        r = self.rng.uniform(0, within_m)
        angle = self.rng.uniform(0, 2 * math.pi)
        return offset_by_metres(lat, lon, r * math.cos(angle), r * math.sin(angle))

    def _add(self, sig: Signal) -> None:
        if sig.at_s <= self.span_s:
            self.signals.append(sig)

    def call(self, at_s: float, lat: float, lon: float, category: str, event_id: str, label: str) -> None:
        msg_id = self._id("call")
        self.callers += 1
        clat, clon = self._near(lat, lon, 80.0)
        caller = f"139{self.callers:08d}"
        self._add(
            Signal(
                at_s,
                wuwang_topic("police", "call", "sys110"),
                {
                    "id": msg_id,
                    "call_id": f"110-{msg_id}",
                    "category": category,
                    "lat": round(clat, 6),
                    "lon": round(clon, 6),
                    "address": "襄阳市（基准测试）",
                    "description": label,
                    "caller": caller,
                },
                "police/sys110",
                msg_id,
                "call",
                event_id,
                label,
            )
        )

    def video(
        self, at_s: float, cam: Camera, event: str, confidence: float, event_id: str | None, label: str
    ) -> None:
        msg_id = self._id("vid")
        self._add(
            Signal(
                at_s,
                wuwang_topic(str(cam.network), "video", cam.id),
                {
                    "id": msg_id,
                    "camera_id": cam.id,
                    "event": event,
                    "confidence": round(confidence, 3),
                    "lat": cam.lat,
                    "lon": cam.lon,
                },
                f"{cam.network}/{cam.id}",
                msg_id,
                "video",
                event_id,
                label,
                raises=confidence >= VIDEO_ALARM_CONFIDENCE,
            )
        )

    def crossing(
        self, at_s: float, dev: Device, event_id: str | None, label: str, clear_after_s: float
    ) -> None:
        """A reading over the raise level (well over for a real event, marginally for
        noise), and one below the clear level after a while."""
        over = self.rng.uniform(*(BLIP_OVER if event_id is None else REAL_OVER))
        for t, value, raises in (
            (at_s, round(_RAISE[dev.kind] * over, 2), True),
            (at_s + clear_after_s, _CLEAR[dev.kind], False),
        ):
            msg_id = self._id("sen")
            self._add(
                Signal(
                    t,
                    wuwang_topic(str(dev.network), "sensor", dev.id),
                    {
                        "id": msg_id,
                        "device_id": dev.id,
                        "kind": dev.kind,
                        "value": value,
                        "unit": dev.unit,
                        "lat": dev.lat,
                        "lon": dev.lon,
                    },
                    f"{dev.network}/{dev.id}",
                    msg_id,
                    "sensor",
                    event_id,
                    label if raises else f"{label} (clear)",
                    raises=raises,
                )
            )

    def nearest_camera(self, lat: float, lon: float, within_m: float, other_than: str = "") -> Camera | None:
        best: tuple[float, Camera] | None = None
        for cam in self.city.cameras:
            if cam.id == other_than:
                continue
            d = haversine_m(lat, lon, cam.lat, cam.lon)
            if d <= within_m and (best is None or d < best[0]):
                best = (d, cam)
        return best[1] if best else None

    def nearest_device(
        self, kind: str, lat: float, lon: float, within_m: float, other_than: str
    ) -> Device | None:
        best: tuple[float, Device] | None = None
        for dev in self.devices.get(kind, ()):
            if dev.id == other_than:
                continue
            d = haversine_m(lat, lon, dev.lat, dev.lon)
            if d <= within_m and (best is None or d < best[0]):
                best = (d, dev)
        return best[1] if best else None

    def event(self, kind: str, lat: float, lon: float, first_at_s: float) -> str:
        event_id = f"TE-{len(self.events) + 1:03d}"
        self.events.append(TrueEvent(event_id, kind, lat, lon, first_at_s, 0))
        return event_id

    def callers_for(
        self, event_id: str, at_s: float, lat: float, lon: float, category: str, label: str
    ) -> None:
        """The first caller at ``at_s``; others now and then within the next few minutes."""
        self.call(at_s, lat, lon, category, event_id, label)
        t = at_s
        while self.rng.random() < self.second_caller:
            t += self.rng.uniform(20, 240)
            self.call(t, lat, lon, category, event_id, f"{label} (another caller)")

    # --- true events ----------------------------------------------------------------

    def call_event(self) -> None:
        anchor = self.rng.choice(self.city.venues)
        lat, lon = self._near(anchor.lat, anchor.lon, 1500)
        t = self._start()
        category = self.rng.choice(_CALL_CATEGORIES)
        self.callers_for(self.event("call", lat, lon, t), t, lat, lon, category, f"110 {category}")

    def fire(self) -> None:
        dev = self.rng.choice(self.devices["smoke"])
        t = self._start()
        eid = self.event("fire", dev.lat, dev.lon, t)
        self.crossing(t, dev, eid, "fire: smoke detector", self.rng.uniform(600, 1200))
        cam = self.nearest_camera(dev.lat, dev.lon, 250)
        if cam is not None and self.rng.random() < 0.7:
            self.video(
                t + self.rng.uniform(10, 90),
                cam,
                "fire_smoke",
                self.rng.uniform(0.8, 0.97),
                eid,
                "fire: camera",
            )
        if self.rng.random() < 0.8:
            self.callers_for(eid, t + self.rng.uniform(30, 180), dev.lat, dev.lon, "fire", "fire: 110")

    def traffic_accident(self) -> None:
        cam = self.rng.choice(self.city.cameras)
        t = self._start()
        eid = self.event("traffic_accident", cam.lat, cam.lon, t)
        self.video(t, cam, "traffic_accident", self.rng.uniform(0.8, 0.95), eid, "accident: camera")
        self.callers_for(eid, t + self.rng.uniform(15, 55), cam.lat, cam.lon, "traffic", "accident: 110")

    def gas_leak(self) -> None:
        dev = self.rng.choice(self.devices["gas"])
        t = self._start()
        eid = self.event("gas_leak", dev.lat, dev.lon, t)
        self.crossing(t, dev, eid, "gas leak: detector", self.rng.uniform(600, 1800))
        if self.rng.random() < 0.5:
            self.callers_for(eid, t + self.rng.uniform(60, 600), dev.lat, dev.lon, "rescue", "gas leak: 110")

    def person_down(self) -> None:
        cam = self.rng.choice(self.city.cameras)
        t = self._start()
        eid = self.event("person_down", cam.lat, cam.lon, t)
        self.video(t, cam, "fall", self.rng.uniform(0.9, 0.98), eid, "person down: camera")
        if self.rng.random() < 0.5:
            self.callers_for(
                eid, t + self.rng.uniform(30, 240), cam.lat, cam.lon, "medical", "person down: 110"
            )

    def fight(self) -> None:
        cam = self.rng.choice(self.city.cameras)
        t = self._start()
        eid = self.event("fight", cam.lat, cam.lon, t)
        self.video(t, cam, "fight", self.rng.uniform(0.8, 0.9), eid, "fight: camera")
        other = self.nearest_camera(cam.lat, cam.lon, 250, other_than=cam.id)
        if other is not None and self.rng.random() < 0.5:
            self.video(
                t + self.rng.uniform(5, 50),
                other,
                "fight",
                self.rng.uniform(0.8, 0.9),
                eid,
                "fight: 2nd camera",
            )
            if self.rng.random() < 0.5:
                self.callers_for(
                    eid, t + self.rng.uniform(30, 300), cam.lat, cam.lon, "public_order", "fight: 110"
                )
        else:
            self.callers_for(
                eid, t + self.rng.uniform(10, 55), cam.lat, cam.lon, "public_order", "fight: 110"
            )

    def flood(self) -> None:
        dev = self.rng.choice(self.devices["water_level"])
        t = self._start()
        eid = self.event("flood", dev.lat, dev.lon, t)
        self.crossing(t, dev, eid, "flood: water level", self.rng.uniform(1200, 2400))
        other = self.nearest_device("water_level", dev.lat, dev.lon, 300, dev.id)
        if other is not None:
            self.crossing(t + self.rng.uniform(10, 50), other, eid, "flood: 2nd water level", 1800)
            self.callers_for(eid, t + self.rng.uniform(120, 600), dev.lat, dev.lon, "rescue", "flood: 110")
        else:
            self.callers_for(eid, t + self.rng.uniform(15, 55), dev.lat, dev.lon, "rescue", "flood: 110")

    def crowd_at_event(self, venue: Venue) -> None:
        cam = self.nearest_camera(venue.lat, venue.lon, 400)
        if cam is None:
            return
        t = self._start()
        eid = self.event("crowd_at_event", cam.lat, cam.lon, t)
        self.video(
            t, cam, "crowd", self.rng.uniform(0.8, 0.88), eid, "crowd surge at the planned event: camera"
        )
        if self.rng.random() < 0.5:
            self.callers_for(
                eid, t + self.rng.uniform(60, 300), cam.lat, cam.lon, "public_order", "crowd: 110"
            )

    # --- noise ----------------------------------------------------------------------

    def loitering_storm(self) -> None:
        cam = self.rng.choice(self.city.cameras)
        t = self._start(600)
        end = t + self.rng.uniform(600, 1500)
        while t < end:
            self.video(t, cam, "loitering", self.rng.uniform(0.8, 0.9), None, "loitering storm")
            t += self.rng.uniform(4, 20)

    def flapping_camera(self) -> None:
        cam = self.rng.choice(self.city.cameras)
        t = self.rng.uniform(0, 120)
        while t < self.span_s:
            self.video(t, cam, "intrusion", self.rng.uniform(0.8, 0.86), None, "flapping camera")
            t += self.rng.uniform(60, 180)

    def single_alert(self) -> None:
        cam = self.rng.choice(self.city.cameras)
        event = self.rng.choice(_SINGLE_EVENTS)
        # below the always-promote confidences (0.90): what a lone false positive looks like
        self.video(self._start(0), cam, event, self.rng.uniform(0.8, 0.89), None, f"single {event} alert")

    def sensor_blip(self) -> None:
        kind = self.rng.choices(("temperature", "water_level", "co", "smoke", "gas"), (8, 6, 2, 2, 1))[0]
        dev = self.rng.choice(self.devices[kind])
        self.crossing(self._start(0), dev, None, f"{kind} blip", self.rng.uniform(5, 60))

    def flapping_sensor(self) -> None:
        dev = self.rng.choice(self.devices["temperature"])
        t = self.rng.uniform(0, 300)
        while t < self.span_s:
            self.crossing(t, dev, None, "flapping temperature sensor", self.rng.uniform(20, 60))
            t += self.rng.uniform(120, 300)


def peak_hour(city: City, *, seed: int = 9, minutes: float = 60.0, mix: Mix | None = None) -> ShiftTruth:
    """The window's messages and its ground truth (see the module's docstring)."""
    m = mix or Mix()
    b = _Builder(city, seed, minutes)
    b.second_caller = m.second_caller
    stadiums = [v for v in city.venues if v.kind == "stadium"]
    venue = stadiums[0] if stadiums else city.venues[0]
    b.planned.append(
        PlannedEventSpec(
            "PE-BENCH-CONCERT", f"{venue.name}演唱会", venue.lat, venue.lon, 500.0, -3600.0, b.span_s + 3600
        )
    )
    for make, per_hour in (
        (b.call_event, m.call_events),
        (b.fire, m.fires),
        (b.traffic_accident, m.traffic_accidents),
        (b.gas_leak, m.gas_leaks),
        (b.person_down, m.persons_down),
        (b.fight, m.fights),
        (b.flood, m.floods),
        (lambda: b.crowd_at_event(venue), m.crowd_at_event),
        (b.loitering_storm, m.loitering_storms),
        (b.flapping_camera, m.flapping_cameras),
        (b.single_alert, m.single_alerts),
        (b.sensor_blip, m.sensor_blips),
        (b.flapping_sensor, m.flapping_sensors),
    ):
        for _ in range(b._count(per_hour)):
            make()
    signals = sorted(b.signals, key=lambda s: (s.at_s, s.msg_id))
    calls: dict[str, int] = {}
    first: dict[str, float] = {}
    for s in signals:
        if s.event_id is None or not s.raises:
            continue
        first.setdefault(s.event_id, s.at_s)
        if s.kind == "call":
            calls[s.event_id] = calls.get(s.event_id, 0) + 1
    events = tuple(
        TrueEvent(e.event_id, e.kind, e.lat, e.lon, first[e.event_id], calls.get(e.event_id, 0))
        for e in b.events
        if e.event_id in first  # an event whose signals all fell after the window is no event of it
    )
    return ShiftTruth(minutes, tuple(signals), events, tuple(b.planned))


def hand_built(signals: Sequence[Signal], events: Sequence[TrueEvent], minutes: float) -> ShiftTruth:
    """A truth written out by hand (tests)."""
    return ShiftTruth(minutes, tuple(sorted(signals, key=lambda s: s.at_s)), tuple(events))
