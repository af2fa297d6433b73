"""The receiver of the replay benchmark: a bare paho subscriber in a process of its own.

``python -m bench.replay.sink --port P --topic 'exercise/v1/<id>/#'`` subscribes (MQTT 5,
QoS 1, paho's automatic PUBACK, ``loop_start``) as the ingest user, prints
``{"ready": true}`` once subscribed, and notes for every message its ``id`` and the
moment it arrived (``time.monotonic()``: CLOCK_MONOTONIC, the same clock in every
process of the machine, so the benchmark compares it with its own command times). A
line ``N`` on stdin means "stop once N messages are in, or after ``--grace`` seconds";
then it prints one JSON line ``{"ids": [...], "t": [...], "cpu_s"}``. Its own process:
receiving never competes with the publisher for the GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson
import paho.mqtt.client as paho

from bench.common import subscribed_sink


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay.sink")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--username", default="ingest")
    p.add_argument("--password", default="demo-ingest")
    p.add_argument("--grace", type=float, default=10.0)
    ns = p.parse_args(argv)

    ids: list[str] = []
    times: list[float] = []
    lock = threading.Lock()
    more = threading.Condition(lock)

    def on_message(_c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        at = time.monotonic()
        msg_id = str(orjson.loads(m.payload).get("id", ""))
        with more:
            ids.append(msg_id)
            times.append(at)
            more.notify_all()

    client = subscribed_sink(
        ns.host, ns.port, ns.username, ns.password, [ns.topic], f"bench-replay-sink-{os.getpid()}", on_message
    )
    if client is None:
        return 1
    cpu0 = time.process_time()
    line = sys.stdin.readline().strip()
    want = int(line) if line else 0
    deadline = time.monotonic() + ns.grace
    with more:
        while len(ids) < want and time.monotonic() < deadline:
            more.wait(max(0.0, deadline - time.monotonic()))
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    with lock:
        out = {"ids": ids, "t": times, "cpu_s": cpu}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
