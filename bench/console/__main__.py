"""``python -m bench.console [--runs N] [--only render,teams,latency] [--no-write]``

Three measurements, each against a whole console started here (PostgreSQL, a private
Redis and Mosquitto, the ingest, the command service, the dashboard — see
testkit/stack.py) and driven by Chromium (Debian's /usr/bin/chromium):

1. **render** — time from navigation to the first frame with all 10,000 network
   entities drawn (clustered), the console (Dash, dash-leaflet) against
   ``plain.html``: bare Leaflet + supercluster vendored from npm, same points, same
   clustering, same drawing. Cold browser cache for both, alternated, median of N.
   Target: console ≤ 1.5 × plain.
2. **teams** — 1,000 teams each moving once a second for 30 s: changes published on
   the command service's live channel (Redis → its /ws → the browser), the lag from
   publishing to the change being drawn on the map, long tasks, reconnections.
3. **latency** — a 110 call published over MQTT → ingest → alarm → command → /ws →
   drawn on the map, p50/p99 over N calls while the ingest stores a background load
   of sensor readings fed through ``mosquitto_pub -l``. Target p99 ≤ 250 ms (issue 14).

Results go to the console section of docs/benchmarks.md (bench/common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg
import redis
from psycopg import sql

from bench.common import describe_machine, fmt_ratio, load_average, percentile, table, utc_now, write_section
from command.services.live import channel_of
from dashboard.data.db import ReadOnlyDatabase
from dashboard.data.registries import Registries
from testkit.feeds import Publisher
from testkit.stack import ServerThread, Stack, running_stack
from wuwang import db
from wuwang.city import CitySize
from wuwang.contract import wuwang_topic
from wuwang.endpoints import Endpoints, LocalServices, embedded_redis, free_port
from wuwang.mqtt import MqttTarget
from wuwang.settings import Settings

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("WUWANG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: 10,000 entities on the five networks' layers (devices + cameras + venues + patrol units).
RENDER_CITY = CitySize(venues=500, devices=5500, cameras=3800, patrol_units=200, teams=60)
TEAMS_CITY = CitySize(venues=20, devices=50, cameras=20, patrol_units=5, teams=1000)
LATENCY_CITY = CitySize(venues=300, devices=3000, cameras=1500, patrol_units=60, teams=60)


def log(msg: str) -> None:
    print(f"[bench.console] {msg}", file=sys.stderr, flush=True)


# --- services ---------------------------------------------------------------------------


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[tuple[Endpoints, str, str]]:
    """PostgreSQL (found or embedded), a private Mosquitto, a migrated template
    database, and a Redis of the benchmark's own (pub/sub channels are server-wide:
    the live traffic of this benchmark must not reach anyone else's command service)."""
    local = LocalServices(
        Settings(demo_mode=True, data_dir=workdir),
        database_name="wuwang_bench_console",
        broker_mode="private",
    )
    endpoints = local.start()
    redis_server = embedded_redis(workdir / "redis", free_port())
    redis_server.start()
    template = "wuwang_bench_console_tpl"
    admin = endpoints.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(template)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    template_url = endpoints.database_url.rsplit("/", 1)[0] + f"/{template}"
    db.migrate(template_url)
    try:
        yield endpoints, template_url, f"redis://127.0.0.1:{redis_server.port}/0"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in (template, "wuwang_bench_console"):  # leave nothing behind on a shared server
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        redis_server.stop()
        local.stop()


@contextlib.contextmanager
def stack_for(env: tuple[Endpoints, str, str], size: CitySize, **kw: Any) -> Iterator[Stack]:
    endpoints, template, redis_url = env
    redis.Redis.from_url(redis_url).flushall()
    with running_stack(
        endpoints,
        template,
        endpoints.mqtt_url_for,
        endpoints.mqtt_protocol,
        endpoints.broker,
        size=size,
        redis_url=redis_url,
        **kw,
    ) as stack:
        yield stack


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def session_script(stack: Stack, user: str = "operator1") -> str:
    """Log in once over HTTP and put the session where the console keeps it."""
    token = stack.login(user)
    session = {"token": token, "user_id": user, "role": "operator"}
    return f"sessionStorage.setItem('session', {json.dumps(json.dumps(session))});"


# --- 1. first render of 10,000 entities ----------------------------------------------------

#: Marks the moment every network layer has drawn: the console's own drawing functions
#: (assets/10-wuwang-map.js) are wrapped as soon as they exist; two animation frames
#: after the fifth network drew its first cluster, the frame is on screen.
CONSOLE_PROBE = """
(function () {
  const seen = {};
  let wrapped = false, done = false;
  const timer = setInterval(function () {
    const W = window.wuwang;
    if (!wrapped && W && W.map && W.map.clusterIcon) {
      wrapped = true;
      const c = W.map.clusterIcon, p = W.map.networkPoint;
      W.map.clusterIcon = function (f, ll, i, ctx) {
        seen[ctx.hideout.network] = 1; return c.apply(this, arguments);
      };
      W.map.networkPoint = function (f, ll, ctx) {
        seen[ctx.hideout.network] = 1; return p.apply(this, arguments);
      };
    }
    if (wrapped && !done && Object.keys(seen).length >= 5) {
      done = true;
      clearInterval(timer);
      requestAnimationFrame(function () { requestAnimationFrame(function () {
        window.__rendered = performance.now();
      }); });
    }
  }, 2);
})();
"""


class Files(http.server.SimpleHTTPRequestHandler):
    """plain.html, vendor/ and points.json (from memory), quietly."""

    points: bytes = b""

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/points.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.points)))
            self.end_headers()
            self.wfile.write(self.points)
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


def registries_of(stack: Stack) -> Any:
    return asyncio.run(Registries(ReadOnlyDatabase(stack.database_url), "wgs84").layers())


def floor_app(layers: Any) -> Any:
    """The least a Dash page can do to show the same map: one MapContainer with the five
    clustered network layers (dash-leaflet, the console's own drawing functions), fed
    by URLs — no login, no live stream, no panels. It separates what Dash and
    dash-leaflet cost from what the console adds."""
    import dash
    import dash_leaflet as dl
    from dash import html
    from fastapi import Response

    from dashboard.layers import NETWORK_COLOURS

    encoded = {net: orjson.dumps(fc) for net, fc in layers.networks.items()}
    app = dash.Dash("floor", backend="fastapi", assets_folder=str(HERE.parents[1] / "dashboard" / "assets"))

    def ref(name: str) -> dict[str, str]:
        return {"variable": f"wuwang.map.{name}"}

    app.layout = html.Div(
        dl.MapContainer(
            [
                dl.GeoJSON(
                    url=f"/points/{net}.json",
                    cluster=True,
                    zoomToBoundsOnClick=True,
                    superClusterOptions={"radius": 70, "maxZoom": 16, "minPoints": 3},
                    pointToLayer=ref("networkPoint"),
                    clusterToLayer=ref("clusterIcon"),
                    hideout={"colour": NETWORK_COLOURS[net], "network": net},
                )
                for net in encoded
            ],
            center=[31.98, 112.05],
            zoom=9,
            preferCanvas=True,
            style={"height": "100vh"},
        )
    )

    @app.server.get("/points/{net}.json")  # type: ignore[untyped-decorator]  # Dash types its server as Any
    async def points(net: str) -> Response:
        return Response(encoded[net], media_type="application/json")

    return app.server


def points_json(stack: Stack) -> tuple[bytes, int]:
    layers = registries_of(stack)
    feats = [
        {"type": "Feature", "geometry": f["geometry"], "properties": {"net": net, **f["properties"]}}
        for net, fc in layers.networks.items()
        for f in fc["features"]
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": feats}), len(feats)


#: Milestones of one load, from the browser's own timings (ms since navigation): the
#: HTML in; every script run (DOMContentLoaded: the bundles are synchronous scripts);
#: the page's structure in (the console: the router's callback, the first
#: ``_dash-update-component``; the floor: ``_dash-layout``, which holds its map); the
#: map's points asked for and all in (each file's first complete response); callbacks
#: started before the map was drawn; bytes on the wire (``transferSize``: compressed).
MILESTONES = """
(() => {
  const drawn = window.__rendered;
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const isData = (n) => /\\/geo\\/net-|\\/points\\/|points\\.json/.test(n);
  const data = res.filter((e) => isData(e.name));
  const firstIn = {};
  data.forEach((e) => {
    if (!(e.name in firstIn) || e.responseEnd < firstIn[e.name]) firstIn[e.name] = e.responseEnd;
  });
  const updates = res.filter((e) => e.name.indexOf("/_dash-update-component") >= 0);
  const layout = res.filter((e) => /\\/_dash-layout$/.test(e.name));
  const structure = (location.pathname === "/" && updates.length && document.querySelector(".console"))
    ? updates[0] : layout[0];
  return {
    html: nav.responseEnd,
    scripts: nav.domContentLoadedEventEnd,
    structure: structure ? structure.responseEnd : null,
    data_asked: data.length ? Math.min(...data.map((e) => e.startTime)) : null,
    data_in: data.length ? Math.max(...Object.values(firstIn)) : null,
    callbacks: updates.filter((e) => e.startTime < drawn).length,
    bytes: nav.transferSize + res.reduce((sum, e) => sum + (e.transferSize || 0), 0),
  };
})()
"""


def measure(
    browser: Any, url: str, init: str | None, viewport: dict[str, int]
) -> tuple[float, dict[str, Any]]:
    ctx = browser.new_context(viewport=viewport)  # a new context: a cold cache every time
    if init:
        ctx.add_init_script(init)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function("() => window.__rendered !== undefined", timeout=120_000)
    ms = float(page.evaluate("window.__rendered"))
    marks = dict(page.evaluate(MILESTONES))
    ctx.close()
    return ms, marks


def bench_render(env: tuple[Endpoints, str, str], runs: int) -> dict[str, Any]:
    with stack_for(env, RENDER_CITY) as stack:
        points, n = points_json(stack)
        log(f"render: {n} entities on the five networks")
        Files.points = points
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", free_port()), partial(Files, directory=str(HERE))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        plain_url = f"http://127.0.0.1:{server.server_address[1]}/plain.html"
        floor = ServerThread(floor_app(registries_of(stack)), free_port(), "floor")
        floor.start()
        floor_url = f"http://127.0.0.1:{floor.port}/"
        console_url = f"{stack.dashboard_url}/?layers=networks"
        init = session_script(stack) + CONSOLE_PROBE
        viewport = {"width": 1920, "height": 1080}
        times: dict[str, list[float]] = {"plain": [], "floor": [], "console": []}
        marks: dict[str, list[dict[str, Any]]] = {"plain": [], "floor": [], "console": []}
        pages = [
            ("plain", plain_url, None),
            ("floor", floor_url, CONSOLE_PROBE),
            ("console", console_url, init),
        ]
        with chromium() as browser:
            for _name, url, script in pages:
                measure(browser, url, script, viewport)  # warm the servers, not the browser
            for i in range(runs):
                for name, url, script in pages[i % 3 :] + pages[: i % 3]:
                    ms, seen = measure(browser, url, script, viewport)
                    times[name].append(ms)
                    marks[name].append(seen)
                    log(f"render run {i + 1}: {name} {ms:.0f} ms")
        floor.stop()
        server.shutdown()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "entities": n,
        "runs": runs,
        "times": times,
        "median": med,
        "milestones": {name: median_marks(m) for name, m in marks.items()},
        "ratio": med["console"] / med["plain"],
        "floor_ratio": med["floor"] / med["plain"],
    }


def median_marks(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each milestone's median over the runs (None where a page has no such step)."""
    out: dict[str, float | None] = {}
    for key in runs[0] if runs else ():
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out


# --- 2. 1,000 teams moving once a second ------------------------------------------------------

TEAMS_PROBE = """
(function () {
  window.__lags = []; window.__staleness = []; window.__longtasks = [];
  let oldest = null;
  const hook = setInterval(function () {
    const live = window.wuwang && window.wuwang.live;
    if (!live) return;
    clearInterval(hook);
    live.onChange = function (msg) {
      const p = msg.type === "team" && msg.data && msg.data.position;
      if (p && p.sent_ms) {
        window.__lags.push(Date.now() - p.sent_ms);
        if (oldest === null) oldest = p.sent_ms;
      }
    };
    live.onFlush = function () {
      if (oldest === null) return;
      const since = oldest;
      oldest = null;
      requestAnimationFrame(function () { window.__staleness.push(Date.now() - since); });
    };
  }, 5);
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) { window.__longtasks.push(e.duration); });
    }).observe({ entryTypes: ["longtask"] });
  } catch (e) { /* no long-task API */ }
})();
"""


def bench_teams(env: tuple[Endpoints, str, str], seconds: int) -> dict[str, Any]:
    with stack_for(env, TEAMS_CITY, field_users=False) as stack:
        teams = [(t.id, t.base_lat, t.base_lon) for t in stack.city.teams]
        log(f"teams: {len(teams)} teams, {seconds} s")
        with chromium() as browser:
            ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
            ctx.add_init_script(session_script(stack) + TEAMS_PROBE)
            page = ctx.new_page()
            page.goto(stack.dashboard_url + "/")
            page.wait_for_selector(".connection.ok", timeout=60_000)
            page.wait_for_function(f"() => window.wuwang.live.teams.size >= {len(teams)}", timeout=60_000)
            r = redis.Redis.from_url(stack.redis_url)
            live_channel = channel_of(r)
            rng = random.Random(1)
            pos = {tid: [lat, lon] for tid, lat, lon in teams}
            published = 0
            start = time.monotonic()
            batches = 10
            for second in range(seconds):
                for b in range(batches):
                    due = start + second + b / batches
                    time.sleep(max(0.0, due - time.monotonic()))
                    pipe = r.pipeline(transaction=False)
                    now_ms = int(time.time() * 1000)
                    for tid, _lat, _lon in teams[b::batches]:
                        p = pos[tid]
                        p[0] += rng.uniform(-3e-4, 3e-4)
                        p[1] += rng.uniform(-3e-4, 3e-4)
                        change = {
                            "type": "team",
                            "id": tid,
                            "version": None,
                            "exercise_id": None,
                            "team_id": tid,
                            "data": {
                                "id": tid,
                                "kind": "position",
                                "position": {
                                    "lat": p[0],
                                    "lon": p[1],
                                    "at": datetime.now(UTC).isoformat(),
                                    "source": "live",
                                    "sent_ms": now_ms,
                                },
                            },
                        }
                        pipe.publish(live_channel, orjson.dumps(change))
                        published += 1
                    pipe.execute()
            page.wait_for_timeout(2000)
            lags = page.evaluate("window.__lags")
            staleness = page.evaluate("window.__staleness")
            longtasks = page.evaluate("window.__longtasks")
            stats = page.evaluate("window.wuwang.live.stats")
            ctx.close()
    return {
        "teams": len(teams),
        "seconds": seconds,
        "published": published,
        "received": len(lags),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_max": max(lags or [0]),
        "stale_p50": percentile(staleness, 50),
        "stale_p99": percentile(staleness, 99),
        "flushes": stats["flushes"],
        "snapshots": stats["snapshots"],
        "longtasks": len(longtasks),
        "longtask_ms": sum(longtasks),
        "longtask_max": max(longtasks or [0]),
    }


# --- 3. MQTT publish → visible on the map, under background load ------------------------------

LATENCY_PROBE = """
(function () {
  window.__want = {}; window.__seen = {}; window.__opened = {};
  window.__received = {}; window.__flushed = {}; window.__long = [];
  // What held the page's main thread meanwhile (tasks over 50 ms: start, duration).
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) {
        window.__long.push([performance.timeOrigin + e.startTime, e.duration]);
      });
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { /* no long-task timing: the split says less */ }
  function callsOf(inc) {
    return (inc.sources || []).map(function (s) { return String(s.alarm_id || "").split("#").pop(); })
      .filter(function (id) { return window.__want[id]; });
  }
  const hook = setInterval(function () {
    const live = window.wuwang && window.wuwang.live;
    if (!live) return;
    clearInterval(hook);
    live.onChange = function (msg) {  // the change arrived over /ws and was applied
      if (msg.type !== "incident") return;
      const t = Date.now();
      callsOf(msg.data || {}).forEach(function (id) {
        if (!window.__received[id]) window.__received[id] = t;
      });
    };
    live.onFlush = function () {
      const found = [], t = Date.now();
      live.incidents.forEach(function (inc) {
        callsOf(inc).forEach(function (id) {
          if (!window.__seen[id]) {
            found.push(id);
            window.__opened[id] = Date.parse(inc.opened_at);
            if (!window.__flushed[id]) window.__flushed[id] = t;
          }
        });
      });
      if (found.length) requestAnimationFrame(function () {
        const t = Date.now();
        found.forEach(function (id) { if (!window.__seen[id]) window.__seen[id] = t; });
      });
    };
  }, 5);
})();
"""


class Background:
    """Sensor readings at ``rate`` messages/s through ``mosquitto_pub -l`` processes
    (one paho publisher would measure itself: DESIGN.md)."""

    def __init__(self, stack: Stack, rate: int, processes: int = 2) -> None:
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0
        target = MqttTarget.from_url(stack.mqtt_simulator_url)
        devices = [(d.id, str(d.network), d.kind, d.unit, d.lat, d.lon) for d in stack.city.devices]
        self.threads: list[threading.Thread] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        per = rate / processes
        for i in range(processes):
            mine = devices[i::processes]
            # one topic per process (mosquitto_pub -l): the ingest reads the device from the payload
            dev = mine[0]
            proc = subprocess.Popen(
                [
                    shutil.which("mosquitto_pub") or "mosquitto_pub",
                    "-h",
                    target.host,
                    "-p",
                    str(target.port),
                    "-u",
                    target.username or "",
                    "-P",
                    target.password or "",
                    "-q",
                    "1",
                    "-V",
                    "mqttv5",
                    "-t",
                    wuwang_topic(dev[1], "sensor", dev[0]),
                    "-l",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs.append(proc)
            self.threads.append(threading.Thread(target=self._feed, args=(proc, [dev], per), daemon=True))

    def _feed(self, proc: subprocess.Popen[bytes], devices: list[tuple[Any, ...]], per_s: float) -> None:
        assert proc.stdin is not None
        start = time.monotonic()
        n = 0
        rng = random.Random(n)
        while not self.stop.is_set():
            due = start + n / per_s
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.05))
                continue
            burst = []
            for _ in range(50):
                did, _net, kind, unit, lat, lon = devices[n % len(devices)]
                value = {"smoke": 0.5, "gas": 1.0, "co": 3.0, "water_level": 0.4, "temperature": 22.0}.get(
                    kind, 1.0
                )
                burst.append(
                    orjson.dumps(
                        {
                            "id": f"bg-{uuid.uuid4().hex[:16]}",
                            "ts": datetime.now(UTC).isoformat(),
                            "device_id": did,
                            "kind": kind,
                            "value": value * rng.uniform(0.8, 1.2),
                            "unit": unit,
                            "lat": lat,
                            "lon": lon,
                        }
                    )
                )
                n += 1
            try:
                proc.stdin.write(b"\n".join(burst) + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                return
            self.sent += len(burst)

    def __enter__(self) -> Background:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        for p in self.procs:
            with contextlib.suppress(Exception):
                assert p.stdin is not None
                p.stdin.close()
            p.wait(timeout=10)


def bench_latency(env: tuple[Endpoints, str, str], calls: int, background: int) -> dict[str, Any]:
    with stack_for(env, LATENCY_CITY) as stack:
        log(f"latency: {calls} calls under {background} sensor readings/s")
        with chromium() as browser:
            ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
            ctx.add_init_script(session_script(stack) + LATENCY_PROBE)
            page = ctx.new_page()
            page.goto(stack.dashboard_url + "/")
            page.wait_for_selector(".connection.ok", timeout=60_000)
            publisher = Publisher(stack.mqtt_simulator_url, protocol=stack.mqtt_protocol)
            rng = random.Random(3)
            sent: dict[str, float] = {}
            with psycopg.connect(stack.database_url) as conn:
                before = conn.execute("SELECT count(*) FROM sensor_reading").fetchone()
            with Background(stack, background) as bg:
                time.sleep(5)  # the load is on before the first call
                bg_start, t0 = bg.sent, time.monotonic()
                for i in range(calls):
                    msg_id = f"lat-{uuid.uuid4().hex[:12]}"
                    lat, lon = 31.9 + rng.random() * 0.25, 111.95 + rng.random() * 0.35
                    body = {
                        "id": msg_id,
                        "ts": datetime.now(UTC).isoformat(),
                        "call_id": f"110-{msg_id}",
                        "category": rng.choice(["criminal", "dispute", "public_order", "medical"]),
                        "lat": round(lat, 6),
                        "lon": round(lon, 6),
                        "address": f"测试地址{i}",
                        "description": "bench",
                        "caller": "13800000000",
                    }
                    page.evaluate("id => { window.__want[id] = true; }", msg_id)
                    sent[msg_id] = time.time() * 1000
                    publisher.publish_all([(wuwang_topic("police", "call", "sys110"), orjson.dumps(body))])
                    time.sleep(0.5)
                deadline = time.monotonic() + 60  # stragglers behind an ingest backlog count too
                while time.monotonic() < deadline and len(page.evaluate("window.__seen")) < calls:
                    time.sleep(0.2)
                bg_rate = (bg.sent - bg_start) / (time.monotonic() - t0)
            publisher.close()
            seen = page.evaluate("window.__seen")
            opened = page.evaluate("window.__opened")
            received = page.evaluate("window.__received")
            flushed = page.evaluate("window.__flushed")
            longtasks = page.evaluate("window.__long")
            ctx.close()
            time.sleep(3)
            with psycopg.connect(stack.database_url) as conn:
                after = conn.execute("SELECT count(*) FROM sensor_reading").fetchone()
    # A call never seen counts as infinitely late: the percentiles say so.
    lat_ms = [seen[m] - t if m in seen else math.inf for m, t in sent.items()]
    # Where the time goes: publish → the command service opened the incident (MQTT, ingest,
    # alarm outbox, Redis stream, correlation) and opened → drawn (pub/sub, /ws, the page).
    # an incident whose opened_at the page could not read (Date.parse: NaN) is left out
    opened = {m: at for m, at in opened.items() if at == at}
    server_ms = [opened[m] - t for m, t in sent.items() if m in opened]
    page_ms = [seen[m] - opened[m] for m in seen if m in opened]
    # ... and opened → drawn in three: opened → the change in the page (the command's
    # transaction and commit, pub/sub, /ws), → handed to the map (the page's scheduling),
    # → the next frame (what else ran on the main thread first).
    wire_ms = [received[m] - opened[m] for m in received if m in opened]
    queued_ms = [flushed[m] - received[m] for m in flushed if m in received]
    frame_ms = [seen[m] - flushed[m] for m in seen if m in flushed]
    t_first, t_last = min(sent.values(), default=0.0), max(seen.values(), default=0.0)
    held = [d for start, d in longtasks if t_first <= start <= t_last]
    return {
        "calls": calls,
        "seen": sum(1 for x in lat_ms if math.isfinite(x)),
        "p50": late_percentile(lat_ms, 50),
        "p90": late_percentile(lat_ms, 90),
        "p99": late_percentile(lat_ms, 99),
        "max": max(lat_ms or [math.nan]),
        "server_p50": percentile(server_ms, 50),
        "server_p99": percentile(server_ms, 99),
        "page_p50": percentile(page_ms, 50),
        "page_p99": percentile(page_ms, 99),
        "wire_p50": percentile(wire_ms, 50),
        "wire_p99": percentile(wire_ms, 99),
        "queued_p50": percentile(queued_ms, 50),
        "queued_p99": percentile(queued_ms, 99),
        "frame_p50": percentile(frame_ms, 50),
        "frame_p99": percentile(frame_ms, 99),
        "longtasks": len(held),
        "longtask_ms": sum(held),
        "longtask_max": max(held, default=0.0),
        "background_target": background,
        "background_rate": bg_rate,
        "background_stored": (after[0] if after else 0) - (before[0] if before else 0),
    }


def late_percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (linear between closest ranks), infinite when a rank it
    needs is a call never seen."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    if math.isinf(ordered[hi]):
        return math.inf
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ms(value: float) -> str:
    return "not seen in 60 s" if math.isinf(value) else f"{value:.0f} ms"


# --- the report -------------------------------------------------------------------------------


def report(machine: Any, results: dict[str, Any], load_end: Any) -> str:
    lines = [
        f"## Console\n\nRun {utc_now()} with `.venv/bin/python -m bench.console` (Chromium "
        f"{chromium_version()}, headless, software rendering).\n",
        machine.markdown(load_end),
        "",
    ]
    if "render" in results:
        r = results["render"]
        lines += [
            f"### First render of 10,000 map entities ({r.get('at', '')})",
            "",
            f"{r['entities']:,} points on the five networks' layers (clustered per network, canvas), from "
            "navigation to the first frame with every layer drawn; cold browser cache, "
            f"median of {r['runs']} alternating runs. Baseline: `bench/console/plain.html` — bare "
            "Leaflet 1.9.4 and supercluster 8.0.1 from npm, the same points, clusters and drawing, "
            "no framework.",
            "",
            table(
                ["page", "median", "× plain", "runs (ms)"],
                [
                    [
                        label,
                        f"{r['median'][name]:.0f} ms",
                        fmt_ratio(r["median"][name] / r["median"]["plain"]),
                        ", ".join(f"{x:.0f}" for x in r["times"][name]),
                    ]
                    for name, label in (
                        ("plain", "plain Leaflet + supercluster (the baseline)"),
                        ("floor", "Dash floor: one dash-leaflet map with the five layers, nothing else"),
                        ("console", "the console: login, live stream, queue, KPI tiles, panels, map"),
                    )
                ],
            ),
            "",
            f"**Ratio console / plain: {fmt_ratio(r['ratio'])}** (target ≤ 1.5×: "
            f"{'met' if r['ratio'] <= 1.5 else 'NOT met'}); the Dash floor alone is "
            f"{fmt_ratio(r['floor_ratio'])}.",
            "",
            *render_milestones(r),
        ]
    if "teams" in results:
        t = results["teams"]
        lines += [
            f"### 1,000 teams moving once a second ({t.get('at', '')})",
            "",
            f"{t['teams']:,} teams, each sending a new position every second for {t['seconds']} s "
            f"({t['published']:,} changes) through the command service's live channel (Redis pub/sub → "
            "/ws → the browser's batching, one map update per 250 ms).",
            "",
            table(
                ["measure", "value"],
                [
                    ["changes received / published", f"{t['received']:,} / {t['published']:,}"],
                    [
                        "publish → applied in the page, p50 / p99 / max",
                        f"{t['lag_p50']:.0f} / {t['lag_p99']:.0f} / {t['lag_max']:.0f} ms",
                    ],
                    [
                        "publish → drawn (oldest change in a map update), p50 / p99",
                        f"{t['stale_p50']:.0f} / {t['stale_p99']:.0f} ms",
                    ],
                    ["map updates", f"{t['flushes']:,}"],
                    [
                        "long tasks (> 50 ms): count, total, longest",
                        f"{t['longtasks']}, {t['longtask_ms']:.0f} ms, {t['longtask_max']:.0f} ms",
                    ],
                    ["reconnections (a dropped slow client resynchronises)", f"{t['snapshots'] - 1}"],
                ],
            ),
            "",
        ]
    if "latency" in results:
        c = results["latency"]
        lines += [
            f"### 110 call published → visible on the map, under ingest load ({c.get('at', '')})",
            "",
            f"{c['calls']} calls published over MQTT (QoS 1) at 2 per second while `mosquitto_pub -l` fed "
            f"{c['background_rate']:,.0f} sensor readings/s (target {c['background_target']:,}) to the same "
            f"ingest ({c['background_stored']:,} stored). Measured from just before the publish to the first "
            "animation frame after the incident reached the map layer: MQTT → ingest (stored, alarm "
            "outbox) → Redis stream → command (correlation, incident) → Redis pub/sub → /ws → map.",
            "",
            table(
                ["calls seen", "p50", "p90", "p99", "max"],
                [
                    [
                        f"{c['seen']} / {c['calls']}",
                        ms(c["p50"]),
                        ms(c["p90"]),
                        ms(c["p99"]),
                        ms(c["max"]),
                    ]
                ],
            ),
            "",
            f"**p99 {ms(c['p99'])}** (target ≤ 250 ms: {'met' if c['p99'] <= 250 else 'NOT met'}).",
            "",
            "Where the time goes (the incident's `opened_at` is the command service's clock, the same "
            "machine's): publish → incident opened (MQTT, ingest batch and commit, alarm outbox, Redis "
            f"stream, correlation) p50 {c.get('server_p50', math.nan):.0f} ms, p99 "
            f"{c.get('server_p99', math.nan):.0f} ms; incident opened → drawn on the map (pub/sub, /ws, "
            f"the page) p50 {c.get('page_p50', math.nan):.0f} ms, p99 {c.get('page_p99', math.nan):.0f} ms.",
            "",
            *latency_split(c),
        ]
    return "\n".join(lines)


def latency_split(c: dict[str, Any]) -> list[str]:
    """Incident opened → drawn, in its three parts (runs before the split was measured
    have none)."""
    if "wire_p50" not in c:
        return []
    return [
        table(
            ["incident opened → drawn, in parts", "p50", "p99"],
            [
                [label, f"{c[key + '_p50']:.0f} ms", f"{c[key + '_p99']:.0f} ms"]
                for key, label in (
                    ("wire", "→ the change in the page (command's transaction and commit, pub/sub, /ws)"),
                    ("queued", "→ handed to the map layer (the page's scheduling of the update)"),
                    ("frame", "→ the next frame drawn (what ran on the main thread first)"),
                )
            ],
        ),
        "",
        f"Long tasks (> 50 ms) on the page while the calls came: {c['longtasks']}, "
        f"{c['longtask_ms']:.0f} ms in all, the longest {c['longtask_max']:.0f} ms.",
        "",
    ]


PAGES = (("plain", "plain"), ("floor", "Dash floor"), ("console", "console"))


def render_milestones(r: dict[str, Any]) -> list[str]:
    """Where each page's time goes (the medians of :data:`MILESTONES`), and why the
    console is where it is."""
    m = r.get("milestones")
    if not m:
        return []

    def at(name: str, key: str) -> str:
        value = m[name].get(key)
        return "–" if value is None else f"{value:.0f}"

    rows = [
        ["HTML in", *(at(n, "html") for n, _ in PAGES)],
        ["every script run (DOMContentLoaded)", *(at(n, "scripts") for n, _ in PAGES)],
        [
            "page structure in (floor: `_dash-layout`; console: the router's callback)",
            *(at(n, "structure") for n, _ in PAGES),
        ],
        ["map points asked for", *(at(n, "data_asked") for n, _ in PAGES)],
        ["map points all in", *(at(n, "data_in") for n, _ in PAGES)],
        ["drawn", *(f"{r['median'][n]:.0f}" for n, _ in PAGES)],
        ["callbacks started before drawn", *(at(n, "callbacks") for n, _ in PAGES)],
        ["kB on the wire", *(f"{(m[n].get('bytes') or 0) / 1000:,.0f}" for n, _ in PAGES)],
    ]
    c, f, pl = m["console"], m["floor"], m["plain"]
    lines = [
        "Where the time goes: medians of each step over the same runs, ms from navigation "
        "(the browser's own navigation and resource timings).",
        "",
        table(["step", *(label for _, label in PAGES)], rows),
        "",
    ]
    if all(v is not None for v in (c["scripts"], c["structure"], c["data_in"], f["scripts"], pl["data_in"])):
        lines += [
            f"The plain page has its points in {pl['data_in']:.0f} ms and spends the remaining "
            f"{r['median']['plain'] - pl['data_in']:.0f} ms parsing, clustering and drawing them. Dash "
            f"runs its scripts first (React, the renderer, the component bundles: "
            f"{f['scripts']:.0f} ms on the floor, {c['scripts']:.0f} ms for the console, which also "
            "loads its own assets). The console's page structure arrives "
            f"{c['structure'] - c['scripts']:.0f} ms after its scripts ran: the layout and the callback "
            "list are preloaded with the HTML, but the page itself depends on who is logged in, so it "
            "comes from the router's callback (one POST, the command service asked who the token is). "
            f"Its points are all in at {c['data_in']:.0f} ms (fetched as soon as the page arrives, "
            f"while {c['callbacks']:.0f} callbacks of the first page run; the map's served layers, the "
            "inbox and the side tabs wait for the map to be drawn); the remaining "
            f"{r['median']['console'] - c['data_in']:.0f} ms are dash-leaflet mounting its layers "
            "under React while those callbacks are answered on the same main thread, "
            "then parsing, clustering and drawing the points as the plain page does.",
            "",
        ]
    return lines


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.split()[1] if out.stdout else "?"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="render runs per page (default 5)")
    ap.add_argument("--seconds", type=int, default=30, help="teams: how long they move (default 30)")
    ap.add_argument("--calls", type=int, default=60, help="latency: how many calls (default 60)")
    ap.add_argument("--background", type=int, default=2000, help="latency: sensor readings/s (default 2000)")
    ap.add_argument("--only", default="render,teams,latency")
    ap.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    wanted = set(args.only.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="wuwang-bench-console-"))
    workdir.chmod(0o755)
    results: dict[str, Any] = {}
    try:
        with services(workdir) as env:
            machine = describe_machine(env[0].database_url)
            steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("render", lambda: bench_render(env, args.runs)),
                ("teams", lambda: bench_teams(env, args.seconds)),
                ("latency", lambda: bench_latency(env, args.calls, args.background)),
            ]
            for name, step in steps:
                if name in wanted:
                    results[name] = step()
                    log(f"{name}: {json.dumps(results[name], default=str)[:600]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Parts run alone (--only) join the latest results of the others (kept, git-ignored,
    # in test-artifacts/), so the section always shows all three.
    saved = HERE.parents[1] / "test-artifacts" / "bench-console.json"
    previous = json.loads(saved.read_text()) if saved.exists() else {}
    for name in results:
        results[name]["at"] = utc_now()
    merged = {**previous, **results}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(merged, default=str, indent=1))
    text = report(machine, merged, load_average())
    print(text)
    if not args.no_write:
        path = write_section("console", text)
        log(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
