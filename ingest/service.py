"""Wiring: one ingest instance = network thread + writer process (ingest/writerproc.py) + alarm relay +
maintenance + metrics endpoint. Usable in-process (tests) and from ``python -m ingest``.

    svc = IngestService(settings)
    svc.start()
    svc.wait_ready(10)          # connected and subscribed
    ...
    svc.stop()                  # stop taking messages, drain, ack, disconnect
"""

from __future__ import annotations

import gc
import logging

from ingest.maintenance import Maintenance
from ingest.metrics import IngestMetrics
from ingest.relay import AlarmRelay
from ingest.subscriber import feed_link
from ingest.writerproc import WriterProcess
from wuwang.settings import Settings, reach_host

log = logging.getLogger(__name__)


def missing_endpoints(settings: Settings) -> list[str]:
    wanted = (("DATABASE_URL", settings.shared.database_url), ("REDIS_URL", settings.shared.redis_url),
              ("MQTT_URL", settings.shared.mqtt_url))
    return [name for name, value in wanted if not value]


#: Collector thresholds for an ingest process (``tune_gc``): Python's default (700, 10, 10)
#: collects the young generation every 700 allocations, so the parsed messages of a batch
#: in progress survive into the old generation and trigger full collections over the
#: whole heap (pydantic's schemas included) every batch or two — measured 12 µs of CPU
#: per message. Objects of a batch die by reference counting; only cycles wait longer.
GC_THRESHOLDS = (50_000, 20, 10)

#: How long ``start`` waits for the writer process before it starts receiving anyway.
WRITER_START_S = 60.0


def tune_gc() -> None:
    """For a process that runs one ingest (``python -m ingest``, the benchmark's worker):
    move what start-up built (modules, schemas, settings) out of the collector's way
    (``gc.freeze``) and collect the young generation less often. Process-wide, so it is
    not done by ``IngestService`` itself (tests run it inside pytest)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class IngestService:
    """One ingest worker. ``metrics_port`` is the bound port (settings may say 0)."""

    def __init__(self, settings: Settings, *, metrics_addr: str | None = None,
                 serve_metrics: bool = True) -> None:
        missing = missing_endpoints(settings)
        if missing:
            raise ValueError(f"{', '.join(missing)} not set")
        self.settings = settings
        self.metrics = IngestMetrics()
        self._metrics_addr = metrics_addr or settings.ingest.metrics_host  # loopback unless opened
        self._serve_metrics = serve_metrics
        self._metrics_port: int | None = None
        self.link = feed_link(settings, self.metrics)  # wuwang.mqttlink.MqttLink, the network thread
        self.inbox = self.link.inbox
        self.metrics.queue_depth.set_function(self.inbox.qsize)
        self.relay = AlarmRelay(settings, self.metrics)
        # Parsing and writing run in a process of their own (a GIL of their own), fed
        # through a pipe; the acks come back after COMMIT (ingest/writerproc.py).
        self.writer = WriterProcess(settings, self.inbox, self.link.ack_mid, self.metrics,
                                    on_alarms=self.relay.wake, on_abandoned=self.link.request_redelivery)
        self.maintenance = Maintenance(settings, self.metrics)
        self._started = False
        self._stopped = False

    @property
    def metrics_port(self) -> int:
        if self._metrics_port is None:
            raise RuntimeError("metrics are not served (not started, or serve_metrics=False)")
        return self._metrics_port

    @property
    def metrics_url(self) -> str:
        return f"http://{reach_host(self._metrics_addr)}:{self.metrics_port}/metrics"

    def start(self) -> None:
        if self._started:
            raise RuntimeError("already started")
        self._started = True
        if self._serve_metrics:
            self._metrics_port = self.metrics.serve(self.settings.ingest.metrics_port, self._metrics_addr)
            log.info("metrics on http://%s:%d/metrics", self._metrics_addr, self._metrics_port)
        self.writer.start()
        # Receive only once there is a writer to hand messages to: its start (a new Python
        # process importing the contract and connecting) takes seconds on a busy machine.
        if not self.writer.wait_ready(WRITER_START_S):
            log.warning("the writer process is not up after %.0f s; receiving anyway (messages wait "
                        "in the inbox)", WRITER_START_S)
        self.relay.start()
        self.maintenance.start()
        self.link.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once connected to the broker and subscribed."""
        return self.link.subscribed.wait(timeout)

    @property
    def healthy(self) -> bool:
        """Every thread still running (they are built not to die; this is the alarm bell)."""
        return all((self.link.alive, self.writer.alive, self.relay.alive, self.maintenance.alive))

    def stop(self, timeout: float = 30.0, *, forget_session: bool = False) -> bool:
        """Stop taking messages, write and acknowledge what was taken, disconnect.

        Returns True when everything taken was committed and acknowledged within
        ``timeout``; what was not stays unacknowledged for the broker to redeliver.
        ``forget_session`` also ends the broker-side session (tests, decommissioning)."""
        if self._stopped or not self._started:
            self._stopped = True
            return True
        self._stopped = True
        self.link.stop_accepting()
        drained = self.writer.drain(timeout)
        self.link.stop(forget_session=forget_session)
        self.relay.stop()
        self.maintenance.stop()
        self.metrics.close()
        if drained:
            log.info("stopped: every message taken was committed and acknowledged")
        else:
            log.warning("stopped before the queue was written; the broker redelivers the rest")
        return drained
