"""The baseline receiver: a bare paho subscriber with an empty callback.

``python -m bench.ingest.sink --port P --count N`` subscribes (MQTT 5, QoS 1, paho's
own automatic PUBACK, ``loop_start``) to the ingest's topics, prints ``{"ready": true}``
once subscribed, then counts messages until it has ``N`` and prints one JSON line:
``{"count", "first_at", "done_at", "cpu_s"}`` (epoch seconds; CPU time spent while
receiving). Nothing is parsed or stored: it is what the broker and paho alone manage.
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

import paho.mqtt.client as paho

from bench.common import subscribed_sink
from wuwang.contract import INGEST_SUBSCRIPTIONS


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest.sink")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--username", default="ingest")
    p.add_argument("--password", default="demo-ingest")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    ns = p.parse_args(argv)

    target = ns.count
    received = 0
    first_at = 0.0
    done_at = 0.0
    done = threading.Event()

    def on_message(_c: paho.Client, _u: Any, _m: paho.MQTTMessage) -> None:
        nonlocal received, first_at, done_at
        received += 1
        if received == 1:
            first_at = time.time()
        if received == target:
            done_at = time.time()
            done.set()

    client = subscribed_sink(
        ns.host, ns.port, ns.username, ns.password, INGEST_SUBSCRIPTIONS, f"bench-sink-{os.getpid()}",
        on_message,
    )
    if client is None:
        return 1
    cpu0 = time.process_time()
    done.wait(ns.timeout)
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"count": received, "first_at": first_at, "done_at": done_at, "cpu_s": cpu}), flush=True)
    return 0 if received >= target else 1


if __name__ == "__main__":
    sys.exit(main())
