"""The feed simulator's I/O half: pace the generated stream and publish it over MQTT.

One paho-mqtt 2.x client per process (CallbackAPIVersion.VERSION2), MQTT 5 unless the
settings say "3.1.1", QoS 1, publishing from the main thread only (paho #354: publishing
from callbacks or several threads can deadlock); the network loop runs in paho's own
thread and the callbacks only count. A window of unacknowledged messages bounds the
memory paho holds (its queue is in memory only, paho #634: this is a simulator, a
message lost on a crash is simply not sent). The window is never larger than the
broker's Receive Maximum (its CONNACK; paho itself ignores it, and a strict broker
disconnects a client that sends more).

A single paho publisher manages about 550 msg/s at QoS 1 on these machines, so
``--processes N`` runs N publishers. Every process runs the same deterministic
generator and publishes the messages whose *source* hashes to its shard: a device's or
team's messages all leave through one connection, in order, and together the
processes publish exactly the single-process stream.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.feeds import CST, FeedGenerator, FeedMix, SimEvent
from simulators.shelter_counts import ShelterCounts, demo_shelter_sites
from wuwang.city import DEFAULT_CITY_SEED, CitySize, build_city
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS, MqttTarget, apply_target
from wuwang.mqttlink import cap_paho_inflight, receive_maximum
from wuwang.service import setup_logging

log = logging.getLogger("simulators.feeds")

DEFAULT_USER = "simulator"


@dataclass(frozen=True)
class BrokerConfig:
    target: MqttTarget
    protocol: str  # "5" or "3.1.1"
    keepalive: int = 30

    @classmethod
    def from_url(
        cls, url: str, protocol: str = "5", keepalive: int = 30, demo_mode: bool = False
    ) -> BrokerConfig:
        """``mqtt://user:pass@host:port`` (``mqtts://`` for TLS). Without a user name the
        simulator logs in as "simulator" (with the demo password in DEMO_MODE)."""
        target = MqttTarget.from_url(url)
        if target.username is None:
            password = DEMO_MQTT_ACCOUNTS[DEFAULT_USER] if demo_mode else None
            target = MqttTarget(target.host, target.port, DEFAULT_USER, password, target.tls)
        return cls(target, protocol, keepalive)

    @property
    def host(self) -> str:
        return self.target.host

    @property
    def port(self) -> int:
        return self.target.port

    @property
    def username(self) -> str | None:
        return self.target.username


def broker_from_settings(url_override: str | None = None) -> BrokerConfig:
    """The broker from ``MQTT_URL``/``MQTT_PROTOCOL`` (wuwang.settings), or an explicit URL.

    With MQTT_URL unset, the default local broker (mqtt://127.0.0.1:1883), as the other
    services fall back to it when ``wuwang.endpoints`` finds one answering there.
    """
    from wuwang.settings import DEFAULT_MQTT_URL, get_settings

    settings = get_settings()
    url = url_override or settings.shared.mqtt_url or DEFAULT_MQTT_URL
    shared = settings.shared
    return BrokerConfig.from_url(url, shared.mqtt_protocol, shared.mqtt_keepalive, shared.demo_mode)


@dataclass(frozen=True)
class RunConfig:
    """Everything a publisher process needs to rebuild the same stream (picklable)."""

    broker: BrokerConfig
    rate: float
    seed: int
    start: datetime
    bad_fraction: float = 0.0
    time_scale: float = 1.0
    count: int | None = None  # stop after this many messages of the whole stream
    duration: float | None = None  # stop after this many wall seconds
    city_seed: int = DEFAULT_CITY_SEED
    city_size: CitySize = field(default_factory=CitySize)
    grid_deg: float | None = None  # None: the settings' grid_cell_deg
    mix: FeedMix = field(default_factory=FeedMix)
    window: int = 1000  # unacknowledged messages in flight, at most
    client_id_prefix: str = "wuwang-sim"
    drain_timeout: float = 10.0
    connect_timeout: float = 15.0
    # The teams also count people in the demo's shelters (teams/v2/<team>/shelter):
    # the demo's city only, whose shelters command.demo_risk loaded.
    shelter_counts: bool = False


def shard_of(ev: SimEvent, shards: int) -> int:
    """Which publisher process sends an event: by source, so per-source order holds."""
    return 0 if shards <= 1 else zlib.crc32(ev.source.encode()) % shards


class _Counters:
    """What one publisher has done; read by the progress reporter (maybe another process)."""

    def __init__(self) -> None:
        self.published = 0
        self.acked = 0
        self.refused = 0  # PUBACK with a failure reason code (e.g. not authorised)
        self.bad = 0


class Publisher:
    """One paho client publishing one shard of the stream at the stream's pace."""

    def __init__(self, cfg: RunConfig, shard: int = 0, shards: int = 1) -> None:
        self.cfg = cfg
        self.shard = shard
        self.shards = shards
        self.counters = _Counters()
        self.stop = threading.Event()
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._lock = threading.Lock()
        #: QoS 1 messages in flight at most: the configured window, capped by the
        #: broker's Receive Maximum once its CONNACK arrives.
        self.window = cfg.window
        b = cfg.broker
        protocol = mqtt.MQTTv311 if b.protocol == "3.1.1" else mqtt.MQTTv5
        client_id = f"{cfg.client_id_prefix}-{os.getpid()}-{shard}"
        # Not wuwang.mqtt.make_client: that one leaves reconnecting to its owner, and a
        # simulator simply wants paho to come back on its own after a broker restart.
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        apply_target(self.client, b.target)
        self.client.max_inflight_messages_set(min(cfg.window, 65535))
        self.client.max_queued_messages_set(0)  # bounded by our own window instead
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(1, 30)

    # Callbacks run in paho's network thread: count, never publish (paho #354).
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
            self.stop.set()
        else:
            self.window = min(self.cfg.window, receive_maximum(props))
            cap_paho_inflight(client, self.window)  # what paho resends after a reconnect, too
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure and not self.stop.is_set():
            log.warning("shard %d: disconnected (%s); paho reconnects", self.shard, reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._lock:
            self.counters.acked += 1
            if reason.is_failure:
                self.counters.refused += 1

    def run(self, on_progress: Callable[[_Counters], None] | None = None) -> int:
        """Publish until the stream's count/duration is reached or ``stop`` is set.

        Returns 0 on success, 1 if the broker refused the connection.
        """
        cfg = self.cfg
        b = cfg.broker
        error = self._first_connect(cfg.connect_timeout)
        if error is not None:
            log.error("shard %d: cannot connect to %s:%d (%s)", self.shard, b.host, b.port, error)
            return 1
        self.client.loop_start()
        try:
            if not self._connected.wait(cfg.connect_timeout) or self._connect_error:
                log.error("shard %d: the broker at %s:%d refused us (%s)", self.shard, b.host, b.port,
                          self._connect_error or "no CONNACK")
                return 1
            city = build_city(cfg.city_seed, cfg.city_size, cfg.grid_deg)
            gen = FeedGenerator(
                city, seed=cfg.seed, start=cfg.start, rate=cfg.rate, bad_fraction=cfg.bad_fraction,
                time_scale=cfg.time_scale, mix=cfg.mix,
            )
            counts = (
                ShelterCounts(demo_shelter_sites(), {t.id: t.team_type for t in city.teams},
                              run=gen.run, seed=cfg.seed)
                if cfg.shelter_counts else None
            )
            t0 = time.monotonic()
            for ev in gen.events(cfg.count):
                if self.stop.is_set():
                    break
                elapsed = time.monotonic() - t0
                if cfg.duration is not None and elapsed >= cfg.duration:
                    break
                # Every shard watches the whole stream (the same counts everywhere); the
                # count follows the team position that prompted it, through its shard.
                count = None
                if counts is not None and ev.bad is None:
                    count = counts.observe(ev.topic, ev.payload, ev.at)
                if shard_of(ev, self.shards) != self.shard:
                    continue
                # Pace by the stream position, so all shards together keep the rate.
                delay = ev.index / cfg.rate - elapsed
                if delay > 0 and self.stop.wait(delay):
                    break
                while self.counters.published - self.counters.acked >= self.window:
                    if self.stop.wait(0.002):  # back-pressure: the broker is behind
                        break
                if self.stop.is_set():
                    break
                self.client.publish(ev.topic, ev.payload, qos=1)
                self.counters.published += 1
                if count is not None:
                    self.client.publish(count.topic, count.body(), qos=1)
                    self.counters.published += 1
                if ev.bad is not None:
                    self.counters.bad += 1
                if on_progress is not None:
                    on_progress(self.counters)
            self._drain(cfg.drain_timeout)
            return 0
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _first_connect(self, timeout: float) -> str | None:
        """Open the TCP connection, retrying for a while (the broker may be starting).
        Afterwards paho's loop reconnects on its own."""
        b = self.cfg.broker
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.connect(b.host, b.port, b.keepalive)
                return None
            except OSError as exc:
                if time.monotonic() >= deadline or self.stop.wait(1.0):
                    return str(exc) or type(exc).__name__

    def _drain(self, timeout: float) -> None:
        """Give the broker a moment to acknowledge what is in flight (even after a stop)."""
        deadline = time.monotonic() + timeout
        while self.counters.acked < self.counters.published and time.monotonic() < deadline:
            time.sleep(0.01)


class _Progress:
    """Logs a progress line every ``every`` seconds: published count and rate."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.t0 = self.last_t = time.monotonic()
        self.last_n = 0
        self.started = False

    def maybe(self, published: int, acked: int, refused: int, bad: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.started and published > 0:
            # The clock starts with the first message, not with building the city.
            self.started, self.t0, self.last_t = True, now, now
        if (self.every <= 0 or not self.started) and not force:
            return
        if not force and now - self.last_t < self.every:
            return
        rate = (published - self.last_n) / max(now - self.last_t, 1e-9)
        total = published / max(now - self.t0, 1e-9)
        log.info(
            "published=%d acked=%d refused=%d bad=%d rate=%.1f msg/s avg=%.1f msg/s elapsed=%.0fs",
            published, acked, refused, bad, rate, total, now - self.t0,
        )
        self.last_t, self.last_n = now, published


def run_single(cfg: RunConfig, report_every: float) -> int:
    """One process: the publisher in the main thread, SIGINT/SIGTERM stop it cleanly."""
    pub = Publisher(cfg)
    progress = _Progress(report_every)
    _install_stop_handlers(pub.stop.set)

    def on_progress(c: _Counters) -> None:
        progress.maybe(c.published, c.acked, c.refused, c.bad)

    rc = pub.run(on_progress)
    c = pub.counters
    progress.maybe(c.published, c.acked, c.refused, c.bad, force=True)
    return rc


def _install_stop_handlers(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _child(cfg: RunConfig, shard: int, shards: int, shared: Any, stop: Any, rc: Any) -> None:
    """A publisher process. Ctrl-C reaches the whole process group: the parent decides."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(f"simulators-feeds-{shard}", "INFO")  # spawned: the parent's set-up is not inherited
    pub = Publisher(cfg, shard, shards)
    signal.signal(signal.SIGTERM, lambda s, f: pub.stop.set())

    def watch() -> None:  # the parent's stop event → this publisher's stop
        stop.wait()
        pub.stop.set()

    threading.Thread(target=watch, daemon=True).start()
    last = 0.0

    def on_progress(c: _Counters) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 0.2:  # shared memory writes are cheap, but not free
            shared[4 * shard: 4 * shard + 4] = [c.published, c.acked, c.refused, c.bad]
            last = now

    code = pub.run(on_progress)
    c = pub.counters
    shared[4 * shard: 4 * shard + 4] = [c.published, c.acked, c.refused, c.bad]
    rc[shard] = code


def run_processes(cfg: RunConfig, processes: int, report_every: float) -> int:
    """N publisher processes (spawned, so nothing of the parent's state is shared)."""
    ctx = mp.get_context("spawn")
    shared = ctx.Array("q", 4 * processes, lock=False)
    rcs = ctx.Array("i", [255] * processes, lock=False)
    stop = ctx.Event()
    procs = [ctx.Process(target=_child, args=(cfg, k, processes, shared, stop, rcs), name=f"sim-{k}")
             for k in range(processes)]
    for p in procs:
        p.start()
    _install_stop_handlers(stop.set)
    progress = _Progress(report_every)

    def totals() -> tuple[int, int, int, int]:
        vals = list(shared)
        return (sum(vals[0::4]), sum(vals[1::4]), sum(vals[2::4]), sum(vals[3::4]))

    while any(p.is_alive() for p in procs):
        for p in procs:
            p.join(timeout=min(0.5, report_every) if report_every > 0 else 0.5)
        progress.maybe(*totals())
    progress.maybe(*totals(), force=True)
    return max(rcs[k] if procs[k].exitcode == 0 else 1 for k in range(processes))


def default_start() -> datetime:
    return datetime.now(CST).replace(microsecond=0)
