"""One ingest worker for the benchmark: ``ingest.service.IngestService`` exactly as
``python -m ingest`` runs it (same settings from the environment), with three
additions for measuring:

- it prints ``{"ready": true}`` on stdout once connected and subscribed;
- on SIGTERM it stops with ``forget_session=True`` (a benchmark's client ids are
  throw-away: an offline session left in a ``$share`` group would keep receiving its
  share), then prints ``{"cpu_s", "drained"}`` — CPU seconds spent after ``ready``;
- with ``BENCH_LATENCY_OUT=<file>`` it hooks the writer's ``on_committed`` (called in
  the receiving process when the writer process reports a batch committed, just before
  its acks are released) and records, for every message whose payload carries
  ``"bench_t": <publish time>``, the triple (publish time, receipt time, commit reported);
  the triples are written to that file as JSON on exit.

The worker's CPU (``cpu_s``) includes its writer process's; ``threads_cpu_s`` shows
that process as ``ingest-writer``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ingest.service import IngestService, tune_gc
from ingest.subscriber import Inbound
from wuwang.service import Service, run

_KEY = b'"bench_t":'


def bench_t(payload: bytes) -> float | None:
    """The publish time embedded in a payload, or None."""
    at = payload.rfind(_KEY)
    if at < 0:
        return None
    start = at + len(_KEY)
    end = start
    while end < len(payload) and payload[end] not in b",}":
        end += 1
    try:
        return float(payload[start:end])
    except ValueError:
        return None


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by thread name (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text(encoding="utf-8")
        except (OSError, TypeError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[thread.name] = out.get(thread.name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds of a process (Linux /proc), 0 when it is not there."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(svc: Service) -> int:
    if os.environ.get("BENCH_SWITCH_INTERVAL"):  # experiments with the GIL hand-over
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    service = IngestService(svc.settings, metrics_addr="127.0.0.1")
    out = os.environ.get("BENCH_LATENCY_OUT")
    samples: list[tuple[float, float, float]] = []
    if out:

        def committed(batch: Sequence[Inbound]) -> None:
            done = time.time()
            for item in batch:
                t = bench_t(item.payload)
                if t is not None:
                    samples.append((t, item.received_at.timestamp(), done))

        service.writer.on_committed = committed
    tune_gc()  # as python -m ingest does
    service.start()
    if not service.wait_ready(30):
        svc.log.error("not subscribed after 30 s")
        service.stop(5, forget_session=True)
        return 1
    service.writer.wait_ready(60)
    writer_pid = service.writer.pid
    writer0 = process_cpu_s(writer_pid)
    cpu0 = time.process_time()
    threads0 = thread_cpu_s()
    print(json.dumps({"ready": True}), flush=True)
    while not svc.stop.wait(0.2):
        if not service.healthy:
            svc.log.error("a worker thread died")
            break
    threads = {name: cpu - threads0.get(name, 0.0) for name, cpu in thread_cpu_s().items()}
    writer_cpu = process_cpu_s(writer_pid) - writer0  # before stop: it exits then
    threads["ingest-writer"] = writer_cpu
    drained = service.stop(30, forget_session=True)
    cpu = time.process_time() - cpu0 + writer_cpu
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(samples, fh)
    print(json.dumps({"cpu_s": cpu, "drained": drained, "threads_cpu_s": threads}), flush=True)
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(run("ingest", main))
