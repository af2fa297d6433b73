"""Prometheus metrics of one ingest instance, in a registry of its own (tests run
several instances in one process; the default global registry would refuse that)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

OUTCOMES = ("stored", "duplicate", "dead_letter")


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "ingest_messages", "Messages committed, by feed and outcome (stored|duplicate|dead_letter); "
            "feed is 'unknown' when the topic cannot be read", ["feed", "outcome"], registry=r,
        )
        self.batch_size = Histogram(
            "ingest_batch_size", "Messages per committed batch",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000), registry=r,
        )
        self.commit_seconds = Histogram(
            "ingest_commit_seconds", "Time to write and commit one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.queue_depth = Gauge("ingest_queue_depth", "Messages received and not yet taken by the writer",
                                 registry=r)
        self.queue_full = Counter(
            "ingest_queue_full", "Messages not taken because the queue was full (left unacknowledged "
            "for the broker to redeliver)", registry=r,
        )
        self.paused = Counter(
            "ingest_paused", "Times the inbox was full and reading from the broker paused (back-pressure)",
            registry=r,
        )
        self.mqtt_connected = Gauge("ingest_mqtt_connected", "1 while connected and subscribed", registry=r)
        self.mqtt_reconnects = Counter("ingest_mqtt_reconnects", "Broker connections lost (then retried)",
                                       registry=r)
        self.mqtt_broker_disconnects = Counter(
            "ingest_mqtt_broker_disconnects", "DISCONNECTs the broker sent us, by reason code (e.g. 0x8E "
            "session taken over, 0x95 packet too large, 0x8B server shutting down)", ["reason"], registry=r,
        )
        self.mqtt_session_taken_over = Counter(
            "ingest_mqtt_session_taken_over", "Times another client connected with this ingest's client id "
            "and took its session (DISCONNECT 0x8E): two processes share one INGEST_CLIENT_ID", registry=r,
        )
        self.mqtt_connect_failures = Counter("ingest_mqtt_connect_failures", "Failed connection attempts",
                                             registry=r)
        self.acks_stale = Counter(
            "ingest_acks_stale", "Acknowledgements dropped because their connection had gone "
            "(the broker redelivers; the ledger dedupes)", registry=r,
        )
        self.db_errors = Counter("ingest_db_errors", "Database errors while writing a batch, by kind",
                                 ["kind"], registry=r)
        self.writer_restarts = Counter(
            "ingest_writer_restarts", "Times the writer process ended unexpectedly and was started again "
            "(what it had taken was redelivered by the broker)", registry=r,
        )
        self.alarms = Counter("ingest_alarms", "Alarms written to the outbox, by kind", ["kind"], registry=r)
        self.alarms_relayed = Counter("ingest_alarms_relayed", "Alarms published to the Redis stream",
                                      registry=r)
        self.alarm_relay_errors = Counter("ingest_alarm_relay_errors", "Failed relay rounds (Redis or "
                                          "database unavailable)", registry=r)
        self.maintenance_runs = Counter("ingest_maintenance_runs", "Maintenance tasks, by task and result",
                                        ["task", "result"], registry=r)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Start the /metrics HTTP server on ``addr`` (INGEST_METRICS_HOST: loopback unless a
        Prometheus elsewhere scrapes it); returns the bound port (``port=0`` picks one)."""
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
