"""A small, scripted MQTT 5 broker for fault tests (not a product part).

Mosquitto 2.0.11 cannot be made to send an arbitrary DISCONNECT reason (0x8E "session
taken over" on demand) nor to announce a small Receive Maximum, so tests that need
those run against this one. It speaks just enough MQTT 5: CONNECT/CONNACK (with
Receive Maximum and Maximum Packet Size), SUBSCRIBE/SUBACK, PUBLISH/PUBACK both ways
(QoS 0 and 1), PINGREQ/PINGRESP and DISCONNECT with a reason code. And it is strict
where the tests need it to be: it records every packet larger than the Maximum Packet
Size it announced and the most QoS 1 PUBLISHes a client ever had unacknowledged, and
it disconnects a client that breaks either limit (0x95, 0x93), as the spec asks.

It runs an asyncio loop on a thread of its own, so that synchronous tests (and the
threaded link) can drive it; every method below may be called from the test thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

#: DISCONNECT reason codes the tests use.
SESSION_TAKEN_OVER = 0x8E
PACKET_TOO_LARGE = 0x95
RECEIVE_MAXIMUM_EXCEEDED = 0x93
SERVER_SHUTTING_DOWN = 0x8B


def _varint(n: int) -> bytes:
    return bytes(VariableByteIntegers.encode(n))  # type: ignore[no-untyped-call]


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, body: bytes, flags: int = 0) -> bytes:
    return bytes([(kind << 4) | flags]) + _varint(len(body)) + body


def _read_string(buf: bytes, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("!H", buf, at)
    return buf[at + 2 : at + 2 + n].decode(), at + 2 + n


def _skip_properties(buf: bytes, at: int) -> int:
    length, used = VariableByteIntegers.decode(buf[at:])  # type: ignore[no-untyped-call]
    return int(at + used + length)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard match; ``$share/<group>/`` is stripped (one member per broker here)."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


@dataclass
class Session:
    """One client connection as the broker saw it."""

    client_id: str
    clean_start: bool
    number: int  # 1 for the first connection the broker accepted, and so on
    filters: list[str] = field(default_factory=list)
    #: QoS 1 PUBLISHes from the client not yet acknowledged by the broker (packet ids).
    unacked: set[int] = field(default_factory=set)
    max_unacked: int = 0
    published: list[tuple[str, bytes]] = field(default_factory=list)  # what the client sent
    acked_by_client: list[int] = field(default_factory=list)  # PUBACKs for our deliveries
    closed: bool = False


class ScriptedBroker:
    """Start with :meth:`start`, stop with :meth:`stop`.

    ``receive_maximum`` / ``maximum_packet_size`` are announced in every CONNACK.
    ``after_connack(session)`` may return a DISCONNECT reason code to send right after
    the CONNACK (scripted kicks), or None. With a ``receive_maximum``, PUBACKs to a
    client's QoS 1 PUBLISHes are held back for ``ack_hold_s`` and then sent together:
    a client that honours the limit waits for them, one that does not sends more in
    the meantime and shows it (``Session.max_unacked``, and a 0x93 DISCONNECT).
    """

    def __init__(
        self,
        *,
        receive_maximum: int | None = None,
        maximum_packet_size: int | None = None,
        after_connack: Callable[[Session], int | None] | None = None,
        ack_hold_s: float = 0.02,
    ) -> None:
        self.receive_maximum = receive_maximum
        self.maximum_packet_size = maximum_packet_size
        self.after_connack = after_connack
        self.ack_hold_s = ack_hold_s
        self.sessions: list[Session] = []
        #: (client id, packet type, size) of every packet over the announced maximum.
        self.oversized: list[tuple[str, int, int]] = []
        #: SUBSCRIBE packets received: (size on the wire, filters).
        self.subscribe_packets: list[tuple[int, list[str]]] = []
        #: DISCONNECT reason codes this broker sent.
        self.kicks: list[int] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="scripted-broker", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: dict[int, asyncio.StreamWriter] = {}  # session number → its writer
        self._next_mid = 0
        self.lock = threading.Lock()

    # --- the test thread -----------------------------------------------------------

    def start(self) -> ScriptedBroker:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            for writer in list(self._writers.values()):
                writer.close()
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def deliver(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Send a PUBLISH to every open session with a matching filter; how many got it."""
        return asyncio.run_coroutine_threadsafe(self._deliver(topic, payload, qos), self._loop).result(5)

    def kick(self, reason: int) -> None:
        """Send DISCONNECT with ``reason`` to every open session."""

        async def kick_all() -> None:
            for number in list(self._writers):
                await self._disconnect(number, reason)

        asyncio.run_coroutine_threadsafe(kick_all(), self._loop).result(5)

    def open_sessions(self) -> list[Session]:
        with self.lock:
            return [s for s in self.sessions if not s.closed]

    # --- the broker's loop ---------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _read_packet(self, reader: asyncio.StreamReader) -> tuple[int, int, bytes, int]:
        first = (await reader.readexactly(1))[0]
        length, multiplier, used = 0, 1, 1
        while True:
            byte = (await reader.readexactly(1))[0]
            used += 1
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        body = await reader.readexactly(length)
        return first >> 4, first & 0x0F, body, used + length

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: Session | None = None
        flusher: asyncio.Task[None] | None = None
        try:
            kind, _flags, body, _size = await self._read_packet(reader)
            if kind != CONNECT:
                return
            session = self._accept(body)
            self._writers[session.number] = writer
            props = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
            if self.receive_maximum is not None:
                props.ReceiveMaximum = self.receive_maximum
            if self.maximum_packet_size is not None:
                props.MaximumPacketSize = self.maximum_packet_size
            present = not session.clean_start and any(
                s.client_id == session.client_id for s in self.sessions[: session.number - 1]
            )
            packed = props.pack()  # type: ignore[no-untyped-call]
            writer.write(_packet(CONNACK, bytes([int(present), 0]) + packed))
            await writer.drain()
            reason = self.after_connack(session) if self.after_connack else None
            if reason is not None:
                await self._disconnect(session.number, reason)
            flusher = asyncio.create_task(self._flush_acks(session, writer))
            while True:
                kind, flags, body, size = await self._read_packet(reader)
                if session.number not in self._writers:
                    continue  # disconnected by us: wait for the client to close (no RST)
                if self.maximum_packet_size is not None and size > self.maximum_packet_size:
                    with self.lock:
                        self.oversized.append((session.client_id, kind, size))
                    await self._disconnect(session.number, PACKET_TOO_LARGE)
                    continue
                if not await self._handle(session, writer, kind, flags, body, size):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            if flusher is not None:
                flusher.cancel()
            if session is not None:
                session.closed = True
                self._writers.pop(session.number, None)
            writer.close()

    def _accept(self, body: bytes) -> Session:
        _name, at = _read_string(body, 0)
        level, connect_flags = body[at], body[at + 1]
        at += 4  # level, flags, keep-alive
        if level == 5:
            at = _skip_properties(body, at)
        client_id, _ = _read_string(body, at)
        with self.lock:
            session = Session(client_id, bool(connect_flags & 0x02), len(self.sessions) + 1)
            self.sessions.append(session)
        return session

    async def _handle(
        self, session: Session, writer: asyncio.StreamWriter, kind: int, flags: int, body: bytes, size: int
    ) -> bool:
        if kind == PUBLISH:
            qos = (flags >> 1) & 0x03
            topic, at = _read_string(body, 0)
            mid = 0
            if qos:
                (mid,) = struct.unpack_from("!H", body, at)
                at += 2
            at = _skip_properties(body, at)
            with self.lock:
                session.published.append((topic, body[at:]))
                if qos:
                    session.unacked.add(mid)
                    session.max_unacked = max(session.max_unacked, len(session.unacked))
            if qos and self.receive_maximum is not None and len(session.unacked) > self.receive_maximum:
                await self._disconnect(session.number, RECEIVE_MAXIMUM_EXCEEDED)
                return True
            await self._deliver(topic, body[at:], qos)
            if qos and self.receive_maximum is None:
                self._ack_all(session, writer)
        elif kind == PUBACK:
            (mid,) = struct.unpack_from("!H", body, 0)
            with self.lock:
                session.acked_by_client.append(mid)
        elif kind == SUBSCRIBE:
            (mid,) = struct.unpack_from("!H", body, 0)
            at = _skip_properties(body, 2)
            filters: list[tuple[str, int]] = []
            while at < len(body):
                topic_filter, at = _read_string(body, at)
                filters.append((topic_filter, body[at] & 0x03))
                at += 1
            with self.lock:
                self.subscribe_packets.append((size, [f for f, _ in filters]))
                session.filters.extend(f for f, _ in filters)
            writer.write(_packet(SUBACK, struct.pack("!H", mid) + b"\x00" + bytes(q for _, q in filters)))
        elif kind == PINGREQ:
            writer.write(_packet(PINGRESP, b""))
        elif kind == DISCONNECT:
            return False
        await writer.drain()
        return True

    def _ack_all(self, session: Session, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            mids = sorted(session.unacked)
            session.unacked.clear()
        for mid in mids:
            writer.write(_packet(PUBACK, struct.pack("!H", mid) + b"\x00"))

    async def _flush_acks(self, session: Session, writer: asyncio.StreamWriter) -> None:
        """Held PUBACKs go out after ``ack_hold_s`` even when the window is not full."""
        while True:
            await asyncio.sleep(self.ack_hold_s)
            if session.unacked and session.number in self._writers:
                self._ack_all(session, writer)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    async def _deliver(self, topic: str, payload: bytes, qos: int) -> int:
        count = 0
        for session in [s for s in self.sessions if not s.closed]:
            writer = self._writers.get(session.number)
            if writer is None or not any(topic_matches(f, topic) for f in session.filters):
                continue
            header = _string(topic)
            if qos:
                self._next_mid = self._next_mid % 65535 + 1
                header += struct.pack("!H", self._next_mid)
            writer.write(_packet(PUBLISH, header + b"\x00" + payload, flags=qos << 1))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            count += 1
        return count

    async def _disconnect(self, number: int, reason: int) -> None:
        writer = self._writers.pop(number, None)
        if writer is None:
            return
        with self.lock:
            self.kicks.append(reason)
        writer.write(_packet(DISCONNECT, bytes([reason]) + b"\x00"))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            # Half-close only: closing while the client's next packet is on its way would
            # answer it with a RST that can destroy the DISCONNECT before it is read.
            writer.write_eof()
