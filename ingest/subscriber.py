"""The ingest's side of MQTT: the shared :class:`wuwang.mqttlink.MqttLink`, set up for the feeds.

The link's network thread is the only thread that touches the paho client: it
reconnects with a jittered back-off (after the broker's own DISCONNECT too), resubscribes
on every connect (in as many SUBSCRIBEs as the broker's Maximum Packet Size needs: the
eight ``$share`` filters together are ~340 bytes), hands each message
to its bounded inbox (pausing reads while that is full) and sends the PUBACKs the writer
released after its commits, on the connection the message came on only. What is
ingest's own lives here: the subscriptions (from settings, ``$share`` group included),
the session and queue settings, the dead-letter cap on oversized payloads, and the
metrics the link reports to.
"""

from __future__ import annotations

import logging

from ingest.metrics import IngestMetrics
from ingest.ratelog import RateLimitedLog
from wuwang.contract import INGEST_SUBSCRIPTIONS, MAX_PAYLOAD_BYTES
from wuwang.mqtt import Backoff, MqttTarget
from wuwang.mqttlink import Delivery, LinkObserver, MqttLink
from wuwang.settings import Settings

log = logging.getLogger(__name__)

#: One received message, as handed to the writer: the link's delivery (an oversized
#: payload is kept only as far as its dead letter keeps it; ``size`` is its real size).
Inbound = Delivery


def subscriptions(settings: Settings) -> list[str]:
    group = settings.ingest.shared_group
    return [f"$share/{group}/{t}" if group else t for t in INGEST_SUBSCRIPTIONS]


class LinkMetrics(LinkObserver):
    """The link's events as the ingest's Prometheus metrics."""

    def __init__(self, metrics: IngestMetrics, queue_size: int) -> None:
        self._metrics = metrics
        self._queue_size = queue_size
        self._pause_log = RateLimitedLog(log, burst=1, window=60.0)

    def ready(self) -> None:
        self._metrics.mqtt_connected.set(1)

    def down(self) -> None:
        self._metrics.mqtt_connected.set(0)

    def connect_failed(self) -> None:
        self._metrics.mqtt_connect_failures.inc()

    def connection_lost(self) -> None:
        self._metrics.mqtt_reconnects.inc()

    def broker_disconnected(self, reason_code: int) -> None:
        self._metrics.mqtt_broker_disconnects.labels(reason=f"0x{reason_code:02X}").inc()

    def session_taken_over(self) -> None:
        # The link logs it at ERROR; this is what an alert rule sees.
        self._metrics.mqtt_session_taken_over.inc()

    def ack_stale(self) -> None:
        self._metrics.acks_stale.inc()

    def dropped(self) -> None:
        self._metrics.queue_full.inc()

    def paused(self) -> None:
        self._metrics.paused.inc()
        self._pause_log.log(logging.INFO, "inbox full (%d): not reading from the broker until the "
                            "writer catches up", self._queue_size)


def feed_link(settings: Settings, metrics: IngestMetrics, *, backoff: Backoff | None = None) -> MqttLink:
    """The link the feeds arrive on: QoS 1, persistent session under the ingest's client
    id, Receive Maximum = inbox size = ``INGEST_QUEUE_SIZE``. Not started."""
    if not settings.shared.mqtt_url:
        raise ValueError("MQTT_URL is not set")
    return MqttLink(
        MqttTarget.from_url(settings.shared.mqtt_url),
        settings.ingest.client_id,
        protocol=settings.shared.mqtt_protocol,
        subscriptions=[(t, 1) for t in subscriptions(settings)],
        persistent=True,
        session_expiry_s=settings.ingest.session_expiry_s,
        keepalive=settings.shared.mqtt_keepalive,
        inbox_size=settings.ingest.queue_size,
        backoff=backoff,
        name="ingest",
        observer=LinkMetrics(metrics, settings.ingest.queue_size),
        # Refused unread anyway; keep only what its dead letter keeps, not up to the
        # broker's packet limit times the queue size.
        max_payload=MAX_PAYLOAD_BYTES,
        oversized_keep=settings.ingest.dead_letter_raw_cap,
    )
