"""What every benchmark shares: the machine's description, load averages, percentiles,
Markdown tables, CPU accounting and the writer of docs/benchmarks.md.

docs/benchmarks.md holds one section per benchmark between two markers::

    <!-- bench:ingest:start -->
    ...written by bench/ingest...
    <!-- bench:ingest:end -->

``write_section`` replaces only its own section (under a file lock), so benchmarks
written by other people (``bench:console``) keep theirs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from wuwang import db, stats
from wuwang.endpoints import Endpoints, ManagedProcess, embedded_redis, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
#: ``speed_gauge()`` at a quiet, fast moment of the development VM (for the reader's scale).
GAUGE_FAST_US = 6.5
BENCHMARKS_MD = REPO_ROOT / "docs" / "benchmarks.md"

#: Sections docs/benchmarks.md starts with, in this order, and what stands in them
#: until their benchmark has run.
KNOWN_SECTIONS: tuple[tuple[str, str], ...] = (
    ("ingest", "## Ingest\n\nNot run yet: `python -m bench.ingest`."),
    ("dispatch", "## Dispatch\n\nNot run yet: `python -m bench.dispatch`."),
    ("console", "## Console\n\nThis section is written by bench/console (not run yet)."),
    ("replay", "## Replay timing\n\nNot run yet: `python -m bench.replay`."),
    ("shift", "## Shift\n\nNot run yet: `python -m bench.shift`."),
)

INTRO = """# Benchmarks

Speed is measured, not asserted. Every benchmark lives in `bench/`, measures against a
baseline taken **in the same run on the same machine** (raw `COPY`, a bare paho
receiver, …) and reports ratios to that baseline, so that numbers taken on a busy or a
different machine still say something. Each run writes its own section below, with the
machine it ran on and the load average while it ran (these machines are shared: a
1-minute load average well above the number of cores means the absolute numbers are
disturbed; the ratios less so). Tests never assert wall-clock times; `tests/bench/test_bench_smoke.py`
only proves that the benchmarks run.

| benchmark | command | section |
|---|---|---|
| ingest (MQTT → PostgreSQL) | `.venv/bin/python -m bench.ingest` | [Ingest](#ingest) |
| dispatch recommendation | `.venv/bin/python -m bench.dispatch` | [Dispatch](#dispatch) |
| console (/ws fan-out, map) | see bench/console | [Console](#console) |
| replay (×1–×100 timing) | `.venv/bin/python -m bench.replay` | [Replay timing](#replay-timing) |
| shift (triage against a known truth) | `.venv/bin/python -m bench.shift` | [Shift](#shift) |
"""


# --- the machine ---------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def fmt_load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def postgres_version(database_url: str | None) -> str:
    """The server's version and the settings that matter for write benchmarks."""
    if database_url:
        try:
            import psycopg

            with psycopg.connect(database_url, connect_timeout=5) as conn:
                shown = {
                    name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                    for name in ("server_version", "shared_buffers", "synchronous_commit", "fsync")
                }
            return (
                f"PostgreSQL {shown['server_version']} (shared_buffers {shown['shared_buffers']}, "
                f"synchronous_commit {shown['synchronous_commit']}, fsync {shown['fsync']})"
            )
        except Exception as exc:  # a description must not fail the benchmark
            return f"PostgreSQL (version unknown: {type(exc).__name__})"
    return _first_line(["psql", "--version"]) or "PostgreSQL (not found)"


def mosquitto_version() -> str:
    from wuwang.endpoints import mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        return "Mosquitto (not found)"
    line = _first_line([binary, "-h"]) or "mosquitto"
    m = re.search(r"version (\S+)", line)
    return f"Mosquitto {m.group(1)}" if m else line


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def speed_gauge(rounds: int = 5) -> float:
    """CPU µs for a fixed pure-Python workload (best of ``rounds``): JSON round trips and
    short-lived objects sorted and thrown away, like the ingest's and the recommender's
    inner loops. How fast this machine runs Python right now: on this VM the same code
    was measured at very different speeds depending on what the host was doing, which
    the VM cannot see. Compare runs with it before comparing their absolute numbers."""
    import json as _json

    doc = {
        "id": "x1",
        "device_id": "SEN-0001",
        "kind": "smoke",
        "value": 1.25,
        "unit": "%/m",
        "ts": "2026-01-01T00:00:00+08:00",
        "tags": ["a", "b", "c"],
    }
    best = float("inf")
    n = 10_000
    for _ in range(rounds):
        t0 = time.process_time()
        acc = 0
        items: list[tuple[int, str, list[int]]] = []
        for i in range(n):
            acc += len(_json.loads(_json.dumps(doc))["ts"])
            items.append(((i * 7919) % n, str(i), [i, i + 1]))
        items.sort(key=lambda t: t[0])
        acc += sum(t[2][0] for t in items[:100])
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    python: str
    postgres: str
    mosquitto: str
    libraries: str
    load_at_start: tuple[float, float, float]
    gauge_us: float = float("nan")  # speed_gauge() at the start

    def markdown(
        self, load_at_end: tuple[float, float, float] | None = None, gauge_at_end: float | None = None
    ) -> str:
        load = f"{fmt_load(self.load_at_start)} at the start"
        if load_at_end is not None:
            load += f", {fmt_load(load_at_end)} at the end"
        gauge = f"{self.gauge_us:.1f} µs at the start"
        if gauge_at_end is not None:
            gauge += f", {gauge_at_end:.1f} µs at the end"
        return "\n".join(
            [
                f"- CPU: {self.cpu}, {self.cores} cores; memory {self.memory_gib:.1f} GiB",
                f"- kernel {self.kernel}; Python {self.python}",
                f"- {self.postgres}",
                f"- {self.mosquitto}; {self.libraries}",
                f"- load average (1/5/15 min): {load} (it counts this benchmark's own processes too; "
                "*others* below is the CPU other jobs took)",
                f"- speed gauge (`bench.common.speed_gauge`, CPU time of a fixed Python loop; lower is "
                f"faster, ~{GAUGE_FAST_US:g} µs on a good moment of this VM): {gauge}",
            ]
        )


def describe_machine(database_url: str | None = None) -> Machine:
    return Machine(
        cpu=cpu_model(),
        cores=os.cpu_count() or 1,
        memory_gib=memory_gib(),
        kernel=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        postgres=postgres_version(database_url),
        mosquitto=mosquitto_version(),
        libraries=", ".join(
            f"{n} {package_version(n)}" for n in ("paho-mqtt", "psycopg", "msgspec", "pydantic", "orjson")
        ),
        load_at_start=load_average(),
        gauge_us=speed_gauge(),
    )


def wait_until_quiet(max_cores: float, timeout_s: float, *, window_s: float = 5.0) -> float:
    """Wait (up to ``timeout_s``) until other jobs use less than ``max_cores`` of CPU over a
    ``window_s`` sample (see :class:`OtherJobs`; the load average would count our own
    previous work too). Returns the last sample."""
    deadline = time.monotonic() + timeout_s
    while True:
        with OtherJobs() as other:
            time.sleep(window_s)
        if other.cores < max_cores or time.monotonic() >= deadline:
            return other.cores
        print(
            f"[bench] waiting for a quieter machine: other jobs use {other.cores:.2f} cores "
            f"(want < {max_cores:g}; load {fmt_load(load_average())})",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))


# --- numbers -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """:func:`wuwang.stats.percentile`, NaN (shown as "–") when nothing was measured."""
    return stats.percentile(values, q) if values else float("nan")


def fmt_rate(per_s: float) -> str:
    if not math.isfinite(per_s):
        return "–"
    return f"{per_s:,.0f}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}×" if math.isfinite(ratio) else "–"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- CPU accounting ------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux /proc), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


def children_cpu_s() -> float:
    """CPU seconds of this process's children that have been waited for."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


_SHARED_POSTGRES = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum",
    "logical replication",
    "stats collector",
    "archiver",
)


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds) of every process we can read."""
    out: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK_TCK)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


class OtherJobs:
    """How busy the machine was with *other* work during a block, in cores: the CPU time of
    every process that is neither ours (this process and its descendants) nor a PostgreSQL
    backend whose title names ``marker`` (our database), nor PostgreSQL's shared background
    processes. Processes that ended inside the block are missed, so it is a lower bound.

        with OtherJobs(db_name) as other:
            ...
        other.cores
    """

    def __init__(self, marker: str | None = None) -> None:
        self.marker = marker
        self.cores = float("nan")
        self._t0 = 0.0
        self._before: dict[int, tuple[int, float]] = {}

    def __enter__(self) -> OtherJobs:
        self._before = _proc_table()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._t0
        after = _proc_table()
        ours = {os.getpid()}
        grew = True
        while grew:  # descendants, whatever their depth
            grew = False
            for pid, (ppid, _cpu) in after.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    grew = True
        used = 0.0
        for pid, (_ppid, cpu) in after.items():
            if pid in ours:
                continue
            delta = cpu - self._before.get(pid, (0, 0.0))[1]
            if delta <= 0:
                continue
            title = _cmdline(pid)
            if title.startswith("postgres") and (
                (self.marker and self.marker in title) or any(w in title for w in _SHARED_POSTGRES)
            ):
                continue
            used += delta
        self.cores = used / wall if wall > 0 else float("nan")


# --- docs/benchmarks.md --------------------------------------------------------------


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def _skeleton() -> str:
    parts = [INTRO]
    for name, placeholder in KNOWN_SECTIONS:
        start, end = _markers(name)
        parts.append(f"{start}\n{placeholder}\n{end}\n")
    return "\n".join(parts)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One lock file outside the repository (nothing to clean up, nothing to commit).
    lock = Path(tempfile.gettempdir()) / "wuwang-benchmarks-md.lock"
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` replaced by ``body`` (appended if missing)."""
    start, end = _markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _m: block, text, count=1)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace this benchmark's section of ``path`` (created with every known section
    as a placeholder if missing), leaving every other section as it is."""
    with _locked(path):
        text = path.read_text(encoding="utf-8") if path.exists() else _skeleton()
        new = replace_section(text, name, body)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def subscribed_sink(
    host: str,
    port: int,
    username: str,
    password: str,
    topics: Sequence[str],
    client_id: str,
    on_message: Callable[[paho.Client, Any, paho.MQTTMessage], None],
) -> paho.Client | None:
    """The benchmarks' baseline receiver: a bare paho subscriber (MQTT 5, QoS 1, paho's
    own automatic PUBACK, ``loop_start``). Returns the running client once the broker
    has granted the subscription, after printing ``{"ready": true}`` for the parent
    process; None (after printing the error line) when that takes over 15 s."""
    ready = threading.Event()

    def on_connect(client: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        client.subscribe([(t, 1) for t in topics])

    def on_subscribe(_c: paho.Client, _u: Any, _mid: int, _rcs: Any, _p: Any) -> None:
        ready.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not ready.wait(15):
        print(json.dumps({"error": "not subscribed after 15 s"}), flush=True)
        return None
    print(json.dumps({"ready": True}), flush=True)
    return client


# --- scratch databases ---------------------------------------------------------------


def create_scratch_database(database_url: str, name: str) -> tuple[str, str]:
    """Create and migrate database ``name`` beside ``database_url``'s; returns
    (admin URL, the new database's URL). :func:`drop_scratch_database` removes it."""
    admin_url = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db_url = psycopg.conninfo.make_conninfo(database_url, dbname=name)
    db.migrate(db_url)
    return admin_url, db_url


def drop_scratch_database(admin_url: str, name: str) -> None:
    """Drop a benchmark's database, its connections too; a failure is said, not raised
    (the benchmark's results stand)."""
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        print(f"[bench] could not drop database {name}: {exc}", file=sys.stderr)


def private_redis(endpoints: Endpoints, workdir: Path) -> tuple[Endpoints, ManagedProcess]:
    """``endpoints`` with a Redis of the benchmark's own, started here (stop it when done).
    The services rule takes the Redis on 6379 when one answers — perhaps a running demo's,
    whose alarm stream and keys a benchmark must never write to or delete."""
    server = embedded_redis(workdir / "redis", free_port())
    server.start()
    return replace(endpoints, redis_url=f"redis://127.0.0.1:{server.port}/0"), server
