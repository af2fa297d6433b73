"""A reusable MQTT link for services: one thread owns the paho client.

Why one thread: paho's client is not safe to drive from several threads (paho #354:
publishing from callbacks or other threads can deadlock; with ``manual_ack`` even
``client.ack()`` writes to the socket). So :class:`MqttLink` starts one *network
thread* that does everything with the client:

* it runs ``client.loop()`` itself and reconnects itself with
  :class:`wuwang.mqtt.Backoff` (full jitter — paho's own back-off has none, so every
  client cut off by a broker restart would come back in the same instant);
* every way a connection ends that the link did not ask for is a loss: a DISCONNECT
  *from the broker* too (session taken over, packet too large, server shutting down —
  paho's ``loop()`` reports success for those), and a keep-alive timeout. A loss is
  logged with its reason code at WARNING (ERROR for 0x8E "session taken over", which
  also has an observer hook of its own and sets :attr:`MqttLink.taken_over`), counted,
  and followed by a back-off. The back-off resets only once a connection has stayed
  up for ``stable_after_s``, never merely because a CONNACK arrived: a broker that
  accepts and then kicks us must not be hammered. Five connections in a row that
  each dropped sooner are an ERROR too (Mosquitto 2.0.11 takes a session over by just
  closing the older connection, without 0x8E);
* it honours the limits the broker announces in its CONNACK: its *Receive Maximum*
  caps the QoS 1 publishes in flight (with the link's own ``max_inflight``), and its
  *Maximum Packet Size* splits the subscriptions into several SUBSCRIBE packets and
  refuses a publish that could never be sent (the broker would disconnect us, and
  paho would resend it on every reconnect, for ever);
* it (re)subscribes on **every** connect — harmless when the broker resumed the
  session, needed when it lost it (restart without persistence, expiry);
* the session is persistent (MQTT 5: clean start off and a session expiry > 0, which
  paho leaves at 0 by default, #877; MQTT 3.1.1: clean session off), so QoS 1 messages
  published while the link was away are delivered when it is back;
* other threads talk to it only through thread-safe queues: :meth:`publish` hands a
  message over and gets a :class:`concurrent.futures.Future` that is resolved when the
  broker's PUBACK arrives (QoS 1) or the message is written (QoS 0); :meth:`ack` hands
  over a PUBACK to send (``manual_ack``: the consumer acknowledges after its commit).

Received messages never block the network thread (a slow ``on_message`` starves the
keep-alive, paho #328): they go into a bounded queue (:meth:`get`, or
:meth:`receive` from asyncio after :meth:`attach`). When that queue is full the
thread stops *reading* — TCP flow control then holds the broker back — but keeps
writing acks, publishes and keep-alives.

Every delivery carries the *generation* of the connection it came on; its PUBACK is
sent only on that same connection (after a reconnect the broker resends what was not
acknowledged, under new packet ids, so an old id must never be acknowledged on the new
connection).

For a consumer that commits in batches (the ingest): :meth:`request_redelivery` drops
the connection once the inbox has room, so that the broker resends what the consumer
took and gave up on; :meth:`stop_accepting` leaves whatever arrives from then on to the
broker (a SIGTERM drain); ``max_payload`` keeps only the head of an oversized payload
(``Delivery.size`` keeps its real size); a :class:`LinkObserver` hears of connects,
losses, pauses and drops (metrics).

What the link does *not* promise: messages handed to :meth:`publish` live in memory
(paho's queue, #634). They survive reconnects (paho resends unacknowledged QoS 1
messages) but not a crash; a publisher that must not lose a message keeps its own
durable outbox and marks a row sent only when the future resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import MessageState, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wuwang.mqtt import Backoff, MqttTarget, apply_target, connect_kwargs, make_client

log = logging.getLogger(__name__)

#: How long one loop() may wait in select(); bounds the latency of acks and publishes.
LOOP_TIMEOUT_S = 0.02

#: Connection generations, unique in the process (a delivery names its connection).
_GENERATIONS = itertools.count(1)

#: DISCONNECT reason 0x8E: another connection with our client id took our session.
SESSION_TAKEN_OVER = 0x8E

#: MQTT 5's default Receive Maximum when the CONNACK names none.
DEFAULT_RECEIVE_MAXIMUM = 65535

#: Connections in a row that dropped before ``stable_after_s``, after which it is an
#: ERROR: Mosquitto 2.0.11 drops the older of two connections with one client id
#: without a DISCONNECT 0x8E, so this is all a takeover looks like there.
FLAPPING_AFTER = 5


def _varint_size(n: int) -> int:
    size = 1
    while n >= 128:
        n //= 128
        size += 1
    return size


def _packet_size(remaining: int) -> int:
    """A whole packet's size: fixed header byte, remaining length, the rest."""
    return 1 + _varint_size(remaining) + remaining


def subscribe_packet_size(filters: Sequence[str], *, v5: bool = True) -> int:
    """The size of one SUBSCRIBE for ``filters`` as paho writes it (packet id, an empty
    property list on MQTT 5, then per filter its length, its bytes and an options byte)."""
    remaining = 2 + (1 if v5 else 0) + sum(2 + len(f.encode()) + 1 for f in filters)
    return _packet_size(remaining)


def publish_packet_size(topic: str, payload_size: int, qos: int, *, v5: bool = True) -> int:
    """The size of one PUBLISH as paho writes it (no properties)."""
    remaining = 2 + len(topic.encode()) + (2 if qos else 0) + (1 if v5 else 0) + payload_size
    return _packet_size(remaining)


def subscribe_batches(
    subscriptions: Sequence[tuple[str, int]], max_packet_size: int | None, *, v5: bool = True
) -> tuple[list[list[tuple[str, int]]], list[str]]:
    """The subscriptions split into SUBSCRIBE packets of at most ``max_packet_size``
    bytes (in order, as few as fit), and the filters that fit in no packet at all."""
    if max_packet_size is None:
        return ([list(subscriptions)] if subscriptions else []), []
    batches: list[list[tuple[str, int]]] = []
    too_large: list[str] = []
    current: list[tuple[str, int]] = []
    for sub in subscriptions:
        if subscribe_packet_size([sub[0]], v5=v5) > max_packet_size:
            too_large.append(sub[0])
            continue
        if current and subscribe_packet_size([f for f, _ in [*current, sub]], v5=v5) > max_packet_size:
            batches.append(current)
            current = []
        current.append(sub)
    if current:
        batches.append(current)
    return batches, too_large


def receive_maximum(properties: Properties | None) -> int:
    """The Receive Maximum a CONNACK announces (MQTT 5's default 65535 when absent)."""
    value = getattr(properties, "ReceiveMaximum", None)
    return int(value) if value else DEFAULT_RECEIVE_MAXIMUM


def cap_paho_inflight(client: paho.Client, window: int) -> None:
    """Make paho keep at most ``window`` QoS 1 messages in flight from this CONNACK on.

    Call it in on_connect (any paho client: the link, the simulators), before paho
    resends what it holds: paho 2.2 resends *every*
    held message on reconnect whatever its in-flight cap (``_messages_reconnect_reset_out``
    never counts), and its public setter refuses an open connection. So this reaches
    into paho: the cap itself, and the held messages beyond the window put back into
    the queued state, which paho sends as PUBACKs free the window (``_update_inflight``).
    The link hands paho no more than the last window, so this only matters when the
    broker's Receive Maximum shrank between two connections.
    """
    client._max_inflight_messages = window  # private: see above
    out_messages = getattr(client, "_out_messages", None)
    mutex = getattr(client, "_out_message_mutex", None)
    if out_messages is None or mutex is None:
        return
    with mutex:
        sending = 0
        for message in out_messages.values():
            if message.qos > 0 and message.state == MessageState.MQTT_MS_PUBLISH:
                if sending < window:
                    sending += 1
                else:
                    message.state = MessageState.MQTT_MS_QUEUED


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """One received message, as handed to the consumer. A Struct (one per message, on the
    network thread: an eighth of a frozen dataclass's time to build); ``gc=False``: it holds
    only text, bytes, a time and numbers, never a cycle."""

    topic: str
    payload: bytes  # only its head when the link truncated it (``size > len(payload)``)
    received_at: datetime
    qos: int
    mid: int
    generation: int
    size: int  # the payload's size on the wire
    retain: bool = False


class LinkObserver:
    """Hears what the network thread does (for metrics). Called on the network thread:
    must be quick and must not call back into the link. The methods do nothing here."""

    def ready(self) -> None:
        """Connected and subscribed."""

    def down(self) -> None:
        """Disconnected (lost, or stopped)."""

    def connect_failed(self) -> None:
        """A connection attempt failed or the broker refused it."""

    def connection_lost(self) -> None:
        """An established connection was lost (the broker's DISCONNECT included); a
        reconnect is scheduled after a back-off."""

    def broker_disconnected(self, reason_code: int) -> None:
        """The broker sent DISCONNECT with ``reason_code`` (before connection_lost)."""

    def session_taken_over(self) -> None:
        """The broker disconnected us with 0x8E: another client connected with our
        client id. Two processes sharing one id: an operator must look (an alarm)."""

    def ack_stale(self) -> None:
        """An ack was dropped: its connection had gone (the broker redelivers)."""

    def dropped(self) -> None:
        """A message arrived on a full inbox and was not taken."""

    def paused(self) -> None:
        """The inbox filled up: reading from the broker paused."""

    def resumed(self, seconds: float) -> None:
        """Reading again after a pause of ``seconds``."""


@dataclass(frozen=True, slots=True)
class Published:
    """A publish the broker accepted. ``reason_code`` 0 = success, 16 = accepted but no
    subscriber matched (MQTT 5)."""

    topic: str
    mid: int
    reason_code: int


class LinkError(Exception):
    """A publish that did not complete; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkClosed(LinkError):
    """The link was stopped before the publish completed."""


class PublishRefused(LinkError):
    """The broker answered the publish with a failure reason code (e.g. not authorised)."""


class LinkBusy(LinkError):
    """Too many publishes waiting for their PUBACK (``max_pending``)."""


@dataclass
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    future: Future[Published]


class MqttLink:
    """One MQTT connection owned by one thread. Start with :meth:`start`, stop with
    :meth:`stop`; everything else may be called from any thread."""

    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        *,
        protocol: str = "5",
        subscriptions: Sequence[tuple[str, int]] = (),
        persistent: bool = True,
        session_expiry_s: int = 24 * 3600,
        keepalive: int = 30,
        inbox_size: int = 1000,
        max_pending: int = 10_000,
        backoff: Backoff | None = None,
        name: str = "mqtt",
        observer: LinkObserver | None = None,
        max_payload: int | None = None,
        oversized_keep: int = 0,
        max_inflight: int = 100,
        stable_after_s: float = 30.0,
    ) -> None:
        """``max_payload``: a payload larger than this is handed over cut to its first
        ``oversized_keep`` bytes (``Delivery.size`` says how large it was), so that a
        full inbox of oversized messages does not hold up to the broker's packet limit
        each. ``observer`` hears of connects, losses, pauses and drops.
        ``max_inflight``: QoS 1 publishes awaiting their PUBACK, at most (lower still
        when the broker's Receive Maximum is). ``stable_after_s``: how long a connection
        must stay up before the back-off starts again from its base."""
        self.name = name
        self.target = target
        self.client_id = client_id
        self._v5 = protocol == "5"
        self._persistent = persistent
        self._observer = observer or LinkObserver()
        self._max_payload = max_payload
        self._oversized_keep = oversized_keep
        self._subscriptions = list(subscriptions)
        self._backoff = backoff or Backoff(base=0.25, cap=10.0)
        self._max_pending = max_pending
        self._max_inflight = max(1, max_inflight)
        self._stable_after_s = stable_after_s
        #: QoS 1 publishes allowed in flight now: min(max_inflight, the broker's Receive Maximum).
        self.send_window = self._max_inflight
        #: The broker's Maximum Packet Size (CONNACK), None when it announced none.
        self.max_packet_size: int | None = None
        self.inbox: queue.Queue[Delivery] = queue.Queue(maxsize=inbox_size)
        self._client = make_client(client_id, protocol=protocol, persistent=persistent, manual_ack=True)
        apply_target(self._client, target)
        paho_log = logging.getLogger(f"{__name__}.paho.{name}")
        paho_log.setLevel(logging.WARNING)
        self._client.enable_logger(paho_log)
        # paho's own cap, kept equal to ours (it applies it to what it queued itself).
        self._client.max_inflight_messages_set(self._max_inflight)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        kwargs = connect_kwargs(
            protocol,
            persistent=persistent,
            session_expiry_s=session_expiry_s,
            receive_maximum=min(inbox_size, 65535),
        )
        self._client.connect_async(target.host, target.port, keepalive, **cast(dict[str, Any], kwargs))

        self._outgoing: deque[_Outgoing] = deque()  # appended by any thread, drained by ours
        self._acks: deque[tuple[int, int, int]] = deque()  # (generation, mid, qos)
        self._inflight: dict[int, _Outgoing] = {}  # mid → publish awaiting its PUBACK (our thread)
        self._generation = 0
        self._next_attempt = 0.0
        self._redeliver_wanted = False
        self._accepting = True
        self._paused_since = 0.0
        self._ever_connected = False
        self._sub_mids: dict[int, list[tuple[str, int]]] = {}  # SUBSCRIBE packet id → its filters
        self._sub_failed: list[tuple[str, str]] = []
        self._up_generation = 0  # the generation that got a successful CONNACK
        self._lost_generation = 0  # the generation whose end was handled already
        self._own_disconnect = False  # a disconnect the link asked for (redelivery)
        self._connected_at = 0.0
        self._closing = threading.Event()
        self._forget_session = False
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{name}", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

        #: Set while connected (CONNACK success) / while subscribed (SUBACK without failures).
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.session_present = False
        self.last_error: str | None = None
        #: Reason code of the broker's last DISCONNECT (e.g. 0x8E), None before any.
        self.last_disconnect_reason: int | None = None
        #: Counters, for metrics and tests.
        self.connects = 0
        self.connection_losses = 0
        self.received = 0
        self.dropped = 0
        self.published = 0
        self.acks_sent = 0
        self.acks_stale = 0
        self.connect_failures = 0
        self.pauses = 0
        self.dropped_while_stopping = 0
        self.broker_disconnects = 0
        self.takeovers = 0
        self._taken_over = False
        #: Connections in a row that dropped before ``stable_after_s``.
        self.short_lived = 0
        #: The back-off delays chosen, latest last (shows the jitter).
        self.delays: deque[float] = deque(maxlen=100)

    # --- any thread -----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0, *, forget_session: bool = False) -> None:
        """Send the acks already queued, disconnect, stop the thread. Publishes still
        waiting for a PUBACK fail with :class:`LinkClosed`. ``forget_session`` ends the
        broker-side session (MQTT 5: session expiry 0 on DISCONNECT): for decommissioning
        and tests — a restart should keep it."""
        self._forget_session = forget_session
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def taken_over(self) -> bool:
        """True after a "session taken over" (0x8E) until a connection has stayed up for
        ``stable_after_s`` again: another client uses our client id (a health flag)."""
        return self._taken_over

    @property
    def inflight(self) -> int:
        """QoS 1 publishes handed to the broker and awaiting their PUBACK."""
        return len(self._inflight)

    @property
    def pending(self) -> int:
        """Publishes handed over and not yet completed."""
        return len(self._outgoing) + len(self._inflight)

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True once connected and subscribed (the first time, or again)."""
        return self.subscribed.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> Future[Published]:
        """Hand a message to the network thread. The future resolves with
        :class:`Published` on the broker's PUBACK (QoS 1) or once written (QoS 0), and
        fails with a :class:`LinkError`. While disconnected the message waits (in memory)
        and goes out after the reconnect."""
        future: Future[Published] = Future()
        if self._closing.is_set():
            future.set_exception(LinkClosed("the MQTT link is stopped"))
        elif self.pending >= self._max_pending:
            future.set_exception(LinkBusy(f"{self.pending} publishes are already waiting for the broker"))
        else:
            self._outgoing.append(_Outgoing(topic, payload, qos, retain, future))
        return future

    def ack(self, delivery: Delivery) -> None:
        """Queue the PUBACK for ``delivery`` (after the consumer's commit). A delivery of
        an earlier connection is not acknowledged (the broker redelivers it)."""
        self.ack_mid(delivery.generation, delivery.mid, delivery.qos)

    def ack_mid(self, generation: int, mid: int, qos: int = 1) -> None:
        """:meth:`ack` by the delivery's connection generation and packet id."""
        if qos > 0:
            self._acks.append((generation, mid, qos))  # deque.append is thread-safe

    def request_redelivery(self) -> None:
        """Deliveries were taken but will not be acknowledged (a batch given up on):
        reconnect once the inbox has room, so that the broker sends them again."""
        self._redeliver_wanted = True

    def stop_accepting(self) -> None:
        """Take no more messages (before a drain): what arrives from now on stays
        unacknowledged, and a persistent session keeps it for the next start."""
        self._accepting = False

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next received message (blocking), or None after ``timeout``."""
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Let an asyncio consumer use :meth:`receive`; call from inside the loop."""
        self._loop = loop or asyncio.get_running_loop()
        self._wake = asyncio.Event()

    async def receive(self) -> Delivery:
        """The next received message, awaited without blocking the event loop."""
        wake = self._wake
        if wake is None:
            raise RuntimeError("call attach() from the event loop first")
        while True:
            wake.clear()
            try:
                return self.inbox.get_nowait()
            except queue.Empty:
                await wake.wait()

    # --- the network thread ---------------------------------------------------------

    def _run(self) -> None:
        client = self._client
        while not self._closing.is_set():
            try:
                if client.socket() is None:
                    self._hand_publishes()  # paho keeps QoS 1 messages and sends them on connect
                    self._connect()
                    continue
                # One loop() reads one packet when nothing of ours is in flight; with
                # publishes in flight it may read a few: Receive Maximum bounds QoS 1.
                if self.inbox.full():
                    rc = self._paused()
                else:
                    if self._paused_since:
                        paused_s = time.monotonic() - self._paused_since
                        self._paused_since = 0.0
                        log.debug("%s: reading again after %.1f s", self.name, paused_s)
                        self._observer.resumed(paused_s)
                    rc = client.loop(timeout=LOOP_TIMEOUT_S)
                self._send_acks()
                self._hand_publishes()
                self._check_stable()
                if rc != paho.MQTT_ERR_SUCCESS:
                    self._lost(f"loop: {paho.error_string(rc)}")
                elif client.socket() is None and not self._own_disconnect:
                    # Closed without an error code (the broker's DISCONNECT, a keep-alive
                    # timeout in loop_misc): a loss all the same (usually handled already
                    # by _on_disconnect, with the broker's reason).
                    self._lost("connection closed")
                elif self._redeliver_wanted and self.inbox.qsize() <= self.inbox.maxsize // 2:
                    # QoS 1 messages dropped on a full inbox, or given up on by the consumer,
                    # are redelivered only on a new connection (MQTT resends unacknowledged
                    # messages on reconnect).
                    log.warning(
                        "%s: reconnecting so that the broker redelivers unacknowledged messages", self.name
                    )
                    self._redeliver_wanted = False
                    self._own_disconnect = True
                    client.disconnect()
            except Exception:  # the network thread must not die
                log.exception("%s: unexpected error in the MQTT network thread", self.name)
                self._closing.wait(0.5)
        self._finish()

    def _paused(self) -> MQTTErrorCode:
        """Inbox full: read nothing (TCP flow control holds the broker back) but keep
        writing and sending keep-alives. Needed because Receive Maximum alone is not
        enough: Mosquitto 2.0.11 was measured sending far past it once the client
        acknowledges. A pause longer than about twice the keep-alive makes paho drop the
        connection (no PINGRESP read); a persistent session survives it and the broker
        redelivers."""
        if not self._paused_since:
            self._paused_since = time.monotonic()
            self.pauses += 1
            self._observer.paused()
        client = self._client
        if client.want_write():
            rc = client.loop_write()
            if rc != paho.MQTT_ERR_SUCCESS:
                return rc
        rc = client.loop_misc()
        self._closing.wait(0.005)
        return rc

    def _connect(self) -> None:
        delay = self._next_attempt - time.monotonic()
        if delay > 0:
            self._closing.wait(min(delay, 0.25))
            return
        self._generation = next(_GENERATIONS)
        self._own_disconnect = False
        try:
            # paho resends every QoS 1 message it holds on connect; the link never hands
            # it more than the last window, and _limit_paho trims it on the CONNACK.
            rc = self._client.reconnect()
        except (OSError, ValueError) as exc:
            self._schedule(f"{type(exc).__name__}: {exc}", lost=False)
            return
        if rc != paho.MQTT_ERR_SUCCESS:
            self._schedule(paho.error_string(rc), lost=False)

    def _schedule(self, why: str, *, lost: bool, counted: bool = False) -> None:
        if not lost and not counted:
            self.connect_failures += 1
            self._observer.connect_failed()
        self.last_error = why
        delay = self._backoff.next_delay()
        self.delays.append(delay)
        self._next_attempt = time.monotonic() + delay
        if lost:
            log.warning(
                "%s: MQTT connection lost (%s); reconnecting in %.2f s (attempt %d)",
                self.name,
                why,
                delay,
                self._backoff.attempt,
            )
        else:
            log.warning(
                "%s: cannot connect to MQTT %s:%s (%s); next attempt in %.2f s",
                self.name,
                self.target.host,
                self.target.port,
                why,
                delay,
            )

    def _lost(self, why: str) -> None:
        """The connection of this generation ended without the link asking: back off.
        Called once per connection (paho's callback and the loop's error code may both
        report the same end)."""
        if self._lost_generation == self._generation:
            return
        self._lost_generation = self._generation
        self.connected.clear()
        self.subscribed.clear()
        self._observer.down()
        if self._up_generation != self._generation:
            # Never got a successful CONNACK: a failed attempt (a refusal was counted
            # in _on_connect already), not the loss of a connection.
            refused = self.last_error is not None and self.last_error.startswith("refused:")
            self._schedule(self.last_error or why if refused else why, lost=False, counted=refused)
            return
        self.connection_losses += 1
        self._observer.connection_lost()
        self.short_lived += 1  # reset by _check_stable once a connection stays up
        if self.short_lived == FLAPPING_AFTER:
            log.error(
                "%s: MQTT connection dropped %d times in a row soon after connecting: another "
                "process with client id %s? (a broker that takes a session over may just close "
                "the older connection)",
                self.name,
                self.short_lived,
                self.client_id,
            )
        self._schedule(why, lost=True)

    def _check_stable(self) -> None:
        """A connection that stayed up long enough earns a fresh back-off (not a CONNACK
        alone: a broker that accepts and then kicks us would be hammered)."""
        if (
            self.connected.is_set()
            and (self._backoff.attempt or self._taken_over or self.short_lived)
            and time.monotonic() - self._connected_at >= self._stable_after_s
        ):
            self._backoff.reset()
            self._taken_over = False
            self.short_lived = 0

    def _send_acks(self) -> None:
        client = self._client
        connected = client.is_connected()
        while self._acks:
            generation, mid, qos = self._acks.popleft()
            if generation == self._generation and connected:
                client.ack(mid, qos)
                self.acks_sent += 1
            else:
                self.acks_stale += 1
                self._observer.ack_stale()

    def _hand_publishes(self) -> None:
        """Hand waiting publishes to paho, in order. QoS 1 only while connected (the
        window is the broker's, known from its CONNACK) and only while fewer than
        ``send_window`` await their PUBACK; the rest wait here, in order."""
        client = self._client
        online = self.connected.is_set()
        while self._outgoing:
            head = self._outgoing[0]
            if head.qos > 0 and (not online or len(self._inflight) >= self.send_window):
                return
            out = self._outgoing.popleft()
            if not out.future.set_running_or_notify_cancel():
                continue  # cancelled by the caller before it went out
            limit = self.max_packet_size
            size = publish_packet_size(out.topic, len(out.payload), out.qos, v5=self._v5)
            if limit is not None and size > limit:
                # Sent anyway, the broker would disconnect us, and paho would resend it
                # on every reconnect: refused here, with the reason.
                out.future.set_exception(
                    PublishRefused(
                        f"cannot publish to {out.topic!r}: {len(out.payload)} bytes exceed the broker's "
                        f"Maximum Packet Size ({limit})"
                    )
                )
                continue
            try:
                info = client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain)
            except (ValueError, TypeError) as exc:  # bad topic, payload too large
                out.future.set_exception(LinkError(f"cannot publish to {out.topic!r}: {exc}"))
                continue
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                out.future.set_exception(LinkError(f"cannot publish: {paho.error_string(info.rc)}"))
            elif out.qos == 0:
                if info.rc == paho.MQTT_ERR_SUCCESS:
                    self.published += 1
                    out.future.set_result(Published(out.topic, info.mid, 0))
                else:
                    out.future.set_exception(LinkError("not connected (QoS 0 is not kept)"))
            else:
                self._inflight[info.mid] = out

    def _fail_all(self, error: LinkError) -> None:
        for out in list(self._inflight.values()):
            if not out.future.done():
                out.future.set_exception(error)
        self._inflight.clear()
        while self._outgoing:
            out = self._outgoing.popleft()
            if out.future.set_running_or_notify_cancel():
                out.future.set_exception(error)

    def _finish(self) -> None:
        client = self._client
        try:
            self._send_acks()
            if client.socket() is not None:
                props = None
                if self._v5 and self._forget_session:
                    props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                    props.SessionExpiryInterval = 0
                client.disconnect(properties=props)
                deadline = time.monotonic() + 2.0
                while client.socket() is not None and time.monotonic() < deadline:
                    client.loop(timeout=0.05)
        except Exception:
            log.exception("%s: error while disconnecting from MQTT", self.name)
        # loop() (unlike loop_start/loop_stop) never closes paho's wake-up socket pair.
        reset = getattr(client, "_reset_sockets", None)
        if callable(reset):
            reset()
        self.connected.clear()
        self.subscribed.clear()
        self._observer.down()
        if self.dropped_while_stopping:
            log.info(
                "%s: %d messages arrived while stopping; left to the broker for the next start",
                self.name,
                self.dropped_while_stopping,
            )
        self._fail_all(LinkClosed("the MQTT link stopped before the broker acknowledged"))

    # --- paho callbacks (inside client.loop(), on the network thread) ---------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            # The broker closes the connection; the loop then schedules the next attempt.
            self.last_error = f"refused: {reason_code}"
            self.connect_failures += 1
            self._observer.connect_failed()
            log.error(
                "%s: MQTT broker %s:%s refused the connection: %s",
                self.name,
                self.target.host,
                self.target.port,
                reason_code,
            )
            return
        self.connects += 1
        self.session_present = bool(flags.session_present)
        self.last_error = None
        # No back-off reset here: only a connection that stays up earns one (_check_stable).
        self._up_generation = self._generation
        self._connected_at = time.monotonic()
        self._honour_limits(client, properties)
        self.connected.set()
        if self._persistent and self._ever_connected and not flags.session_present:
            log.warning(
                "%s: connected to MQTT %s:%s as %s, but the broker kept no session for us: what "
                "was published for us meanwhile is lost (broker restarted without its "
                "persistence file? session expired?)",
                self.name,
                self.target.host,
                self.target.port,
                self.client_id,
            )
        else:
            log.info(
                "%s: connected to MQTT %s:%s as %s (%s)",
                self.name,
                self.target.host,
                self.target.port,
                self.client_id,
                "session resumed" if flags.session_present else "new session",
            )
        self._ever_connected = True
        self._subscribe(client)

    def _honour_limits(self, client: paho.Client, properties: Properties | None) -> None:
        """The broker's CONNACK limits: Receive Maximum caps our QoS 1 window, Maximum
        Packet Size what we send (paho itself ignores both)."""
        announced = getattr(properties, "ReceiveMaximum", None) if self._v5 else None
        packet_size = getattr(properties, "MaximumPacketSize", None) if self._v5 else None
        window = min(self._max_inflight, receive_maximum(properties if self._v5 else None))
        if window != self.send_window or packet_size != self.max_packet_size:
            log.info(
                "%s: broker limits: Receive Maximum %s, Maximum Packet Size %s; QoS 1 window %d",
                self.name,
                announced or "not set",
                packet_size or "not set",
                window,
            )
        self.send_window = window
        self.max_packet_size = int(packet_size) if packet_size else None
        cap_paho_inflight(client, window)

    def _subscribe(self, client: paho.Client) -> None:
        """(Re)subscribe, in as many SUBSCRIBE packets as the broker's Maximum Packet
        Size needs (one SUBSCRIBE of all the ingest's ``$share`` filters is ~340 bytes)."""
        self._sub_mids.clear()
        self._sub_failed = []
        if not self._subscriptions:
            self._ready()
            return
        batches, too_large = subscribe_batches(self._subscriptions, self.max_packet_size, v5=self._v5)
        if too_large:
            self._sub_failed = [(t, "larger than the broker's Maximum Packet Size") for t in too_large]
            self.last_error = f"subscriptions too large for the broker: {too_large}"
            log.error(
                "%s: cannot subscribe to %s: one SUBSCRIBE of it alone exceeds the broker's Maximum "
                "Packet Size (%s)",
                self.name,
                too_large,
                self.max_packet_size,
            )
        for batch in batches:
            _rc, mid = client.subscribe(batch)
            if mid is not None:
                self._sub_mids[mid] = batch
        if not batches and not too_large:
            self._ready()

    def _ready(self) -> None:
        self._observer.ready()  # first: whoever waits on ``subscribed`` sees the metric set
        self.subscribed.set()

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        batch = self._sub_mids.pop(mid, None)
        if batch is None:
            return
        self._sub_failed += [
            (t, str(rc)) for (t, _q), rc in zip(batch, reason_codes, strict=False) if rc.is_failure
        ]
        if self._sub_mids:
            return  # more SUBACKs to come
        if self._sub_failed:
            self.last_error = f"subscriptions refused: {self._sub_failed}"
            log.error(
                "%s: subscriptions not in place (refused by the broker's ACL, or too large for it): %s",
                self.name,
                self._sub_failed,
            )
        else:
            log.info("%s: subscribed: %s", self.name, ", ".join(t for t, _ in self._subscriptions))
            self._ready()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self._observer.down()
        if self._closing.is_set() or self._own_disconnect:
            return
        if not flags.is_disconnect_packet_from_server:
            self._lost(f"disconnected: {reason_code}")
            return
        # The broker ended the connection. paho's loop() reports success for this, so
        # without this the link came straight back (485 takeovers in 4 s were measured).
        code = int(reason_code.value)
        self.broker_disconnects += 1
        self.last_disconnect_reason = code
        self._observer.broker_disconnected(code)
        said = getattr(properties, "ReasonString", None)
        why = f"broker sent DISCONNECT 0x{code:02X} {reason_code}" + (f" ({said})" if said else "")
        if code == SESSION_TAKEN_OVER:
            self.takeovers += 1
            self._taken_over = True
            log.error(
                "%s: MQTT session taken over: another client connected as %s (two processes "
                "with one client id?); %d times so far",
                self.name,
                self.client_id,
                self.takeovers,
            )
            self._observer.session_taken_over()
        self.last_error = why
        self._lost(why)

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        out = self._inflight.pop(mid, None)
        if out is None or out.future.done():
            return
        if reason_code.is_failure:
            out.future.set_exception(
                PublishRefused(f"broker refused the publish to {out.topic}: {reason_code}")
            )
        else:
            self.published += 1
            out.future.set_result(Published(out.topic, mid, int(reason_code.value)))

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        # Never block here: a slow on_message starves the keep-alive (paho #328).
        if not self._accepting:
            self.dropped_while_stopping += 1
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the broker should refuse such topics; keep it readable
            topic = bytes(message._topic).decode("utf-8", "replace")
        payload = message.payload
        size = len(payload)
        if self._max_payload is not None and size > self._max_payload:
            payload = payload[: self._oversized_keep]
        delivery = Delivery(
            topic=topic,
            payload=bytes(payload),
            received_at=datetime.now(UTC),
            qos=message.qos,
            mid=message.mid,
            generation=self._generation,
            size=size,
            retain=bool(message.retain),
        )
        try:
            self.inbox.put_nowait(delivery)
        except queue.Full:
            # Rare (reading pauses while the inbox is full; Receive Maximum bounds QoS 1).
            # QoS 0 is gone; QoS 1 is left unacknowledged and fetched again on reconnect.
            self.dropped += 1
            self._observer.dropped()
            if message.qos > 0:
                self._redeliver_wanted = True
            return
        self.received += 1
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the service is stopping
                loop.call_soon_threadsafe(wake.set)
