"""The benchmarks run (tiny sizes). No timing is asserted: speed is measured by
``python -m bench.ingest`` / ``python -m bench.dispatch`` / ``python -m bench.replay`` and written to
docs/benchmarks.md, never checked by a test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import common
from bench.console import __main__ as console_bench
from bench.dispatch import live as dispatch_live
from bench.dispatch import run as dispatch
from bench.ingest import run as ingest
from bench.ingest.worker import bench_t
from bench.replay import run as replay
from wuwang.city import CitySize, build_city
from wuwang.endpoints import Endpoints


def test_sections_are_replaced_and_others_kept(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    common.write_section("ingest", "## Ingest\n\nfirst", doc)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "first" in text
    assert "written by bench/console" in text  # placeholder for another benchmark's section
    console = "<!-- bench:console:start -->\n## Console\n\ntheirs\n<!-- bench:console:end -->"
    text = common.replace_section(text, "console", "## Console\n\ntheirs")
    doc.write_text(text, encoding="utf-8")

    common.write_section("ingest", "## Ingest\n\nsecond", doc)
    common.write_section("extra", "## Extra", doc)  # a section the file does not have yet
    text = doc.read_text(encoding="utf-8")
    assert "second" in text and "first" not in text
    assert console in text
    assert text.count("<!-- bench:ingest:start -->") == 1
    assert text.rstrip().endswith("<!-- bench:extra:end -->")


def test_helpers() -> None:
    assert common.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert common.percentile([5.0], 99) == 5.0
    assert bench_t(b'{"id":"a","bench_t":1732.5,"x":1}') == 1732.5
    assert bench_t(b'{"id":"a","bench_t":1732.25}') == 1732.25
    assert bench_t(b'{"id":"a"}') is None
    machine = common.describe_machine(None)
    assert machine.cores >= 1
    assert "load average" in machine.markdown()


def test_dispatch_benchmark_runs(tmp_path: Path) -> None:
    cfg = dispatch.Config(teams=60, warehouses=12, lots=300, iterations=5, warmup=1, retries=0)
    results = dispatch.run(cfg)
    assert set(results.cases) == {
        "floor",
        "teams",
        "warehouses",
        "warehouses_indexed",
        "roster",
        "request",
        "request_rebuilt",
        "request_no_gc",
    }
    assert all(len(c.samples_ms) == 5 and len(c.cpu_ms) == 5 for c in results.cases.values())
    text = dispatch.render(results, "test")
    assert "### Part 2: MQTT → /ws latency with 200 clients" in text
    assert "Not yet measured" in text
    doc = tmp_path / "benchmarks.md"
    common.write_section("dispatch", text, doc)
    assert "recommend_teams" in doc.read_text(encoding="utf-8")


def test_dispatch_live_section_renders() -> None:
    """Part 2 needs a whole stack; its report is checked on made-up numbers."""
    cfg = dispatch_live.LiveConfig(clients=3, calls=2)
    load = (0.1, 0.1, 0.1)
    latencies = [[10.0, 12.0, 11.0], [20.0, float("inf"), 25.0]]
    live = dispatch_live.LiveResults(
        config=cfg,
        machine=common.describe_machine(None),
        connected=3,
        latencies=latencies,
        first_client=[10.0, 20.0],
        clients_missing=1,
        closed=0,
        messages=6,
        background_rate=990.0,
        background_stored=5000,
        load_before=load,
        load_after=load,
        elapsed_s=30.0,
    )
    assert len(live.pairs) == 6
    text = dispatch.render(None, "test", live)
    assert "### Part 2: MQTT → /ws latency with 200 clients" in text
    assert "Not yet measured" not in text
    assert "**missed**" in text and "never seen" in text


def test_console_render_section_says_where_the_time_goes() -> None:
    """The first render needs a whole stack and a browser; its report is checked on
    made-up milestones (two runs per page, their medians)."""

    def run(
        scripts: float, structure: float | None, data_in: float, callbacks: int
    ) -> dict[str, float | None]:
        return {
            "html": 5.0,
            "scripts": scripts,
            "structure": structure,
            "data_asked": data_in - 50,
            "data_in": data_in,
            "callbacks": float(callbacks),
            "bytes": 800_000.0,
        }

    marks = {
        "plain": console_bench.median_marks([run(300, None, 400, 0), run(320, None, 420, 0)]),
        "floor": console_bench.median_marks([run(800, 900, 1100, 0), run(820, 920, 1120, 0)]),
        "console": console_bench.median_marks([run(1200, 1500, 1900, 19), run(1300, 1600, 2100, 19)]),
    }
    assert marks["plain"]["structure"] is None and marks["console"]["scripts"] == 1250
    times = {"plain": [600.0, 640.0], "floor": [1500.0, 1540.0], "console": [3000.0, 3200.0]}
    median = {name: sum(ts) / 2 for name, ts in times.items()}
    render = {
        "entities": 10_000,
        "runs": 2,
        "times": times,
        "median": median,
        "milestones": marks,
        "ratio": median["console"] / median["plain"],
        "floor_ratio": median["floor"] / median["plain"],
    }
    text = console_bench.report(common.describe_machine(None), {"render": render}, (0.1, 0.1, 0.1))
    assert "**Ratio console / plain: 5.00×** (target ≤ 1.5×: NOT met)" in text
    assert "| map points all in | 410 | 1110 | 2000 |" in text
    assert "| callbacks started before drawn | 0 | 0 | 19 |" in text
    assert "arrives 300 ms after its scripts ran" in text and "the remaining 1100 ms" in text


@pytest.mark.slow
@pytest.mark.mosquitto
def test_ingest_benchmark_runs(endpoints: Endpoints, mqtt_broker: object, tmp_path: Path) -> None:
    if endpoints.broker != "mosquitto" or shutil.which("mosquitto_pub") is None:
        pytest.skip("needs mosquitto and mosquitto_pub")
    process = getattr(mqtt_broker, "process", None)
    broker_pid = process.proc.pid if process is not None and process.proc is not None else None
    cfg = ingest.Config(
        copy_rows=300,
        insert_rows=30,
        mqtt_messages=300,
        latency_seconds=1.0,
        repeat=1,
        sensor_publishers=2,
        retries=0,
    )
    city = build_city(size=CitySize(venues=20, devices=100, cameras=40, patrol_units=5, teams=12))
    results = ingest.run(cfg, endpoints=endpoints, broker_pid=broker_pid, city=city)

    assert set(results.stages) == {"copy", "copy_one", "insert", "insert_tx", "writer", "paho", "one", "two"}
    for stage in results.stages.values():
        assert stage.messages > 0 and stage.seconds > 0
    assert results.stages["one"].cpu_us["ingest worker(s)"] > 0
    assert results.latency is not None
    assert len(results.latency.stored_ms) == results.latency.messages > 0
    # Every stored message was received before it was committed.
    assert all(s >= r for s, r in zip(results.latency.stored_ms, results.latency.received_ms, strict=True))

    doc = tmp_path / "benchmarks.md"
    common.write_section("ingest", ingest.render(results, "test"), doc)
    text = doc.read_text(encoding="utf-8")
    assert "### Against the targets" in text and "bare paho" in text


@pytest.mark.slow
@pytest.mark.mosquitto
def test_replay_benchmark_runs(endpoints: Endpoints, mqtt_broker: object, tmp_path: Path) -> None:
    if endpoints.broker != "mosquitto":
        pytest.skip("needs mosquitto")
    cfg = replay.Config(
        span_s=120.0,
        background_per_s=1.0,
        bursts=1,
        calls_per_burst=20,
        x10_window_s=30.0,
        x1_window_s=2.0,
        flood=100,
        control_window_s=60.0,
        pause_at_s=1.0,
        pause_for_s=0.5,
        seek_after_s=1.0,
        seek_jump_s=10.0,
    )
    results = replay.run(cfg, endpoints=endpoints)

    assert {(t.case, t.who) for t in results.timings} == {
        (case, who) for case in ("x1", "x10", "x100", "flood") for who in ("runner", "baseline")
    }
    for t in results.timings:
        assert t.received == t.items and len(t.errors_ms) == t.items and t.duplicates == 0
    c = results.control
    assert c is not None
    assert c.sent_while_paused == 0 and c.position_still  # a property of the runner, not a timing
    assert c.sent + c.skipped == c.items and c.received == c.sent and c.missing_after_seek == 0

    doc = tmp_path / "benchmarks.md"
    common.write_section("replay", replay.render(results, "test"), doc)
    text = doc.read_text(encoding="utf-8")
    assert "## Replay timing" in text and "### What it means for a drill planner" in text
