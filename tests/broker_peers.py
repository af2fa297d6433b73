"""A paho MQTT 5 client for broker tests that records what the broker answers: CONNACK,
PUBACK and SUBACK reason codes, deliveries and disconnects (tests/deploy/test_mosquitto_acl.py,
tests/security/test_sec_broker_*.py)."""

from __future__ import annotations

import queue
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

NOT_AUTHORIZED = 135
#: deploy/mosquitto/README.md: every demo field account's password.
FIELD_PASSWORD = "demo"


class Peer:
    """A paho MQTT 5 client that records what the broker answers."""

    def __init__(
        self, port: int, user: str | None, password: str | None, client_id: str, *, session_expiry: int = 0
    ) -> None:
        self.port, self.session_expiry = port, session_expiry
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        #: Reason codes of the disconnects the broker caused (a taken-over session: 142).
        self.disconnects: list[ReasonCode] = []
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._acks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.put((msg.topic, bytes(msg.payload)))
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self._closing = False

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self.connected.set()

    def _on_disconnect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if not self._closing:
            self.disconnects.append(rc)

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._cond:
            self._acks[mid] = rc
            self._cond.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, rcs: list[ReasonCode], _p: object) -> None:
        with self._cond:
            self._subacks[mid] = rcs
            self._cond.notify_all()

    def connect(self, *, clean_start: bool = True) -> ReasonCode:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.session_expiry:
            props.SessionExpiryInterval = self.session_expiry
        self.client.connect("127.0.0.1", self.port, keepalive=30, clean_start=clean_start, properties=props)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> ReasonCode:
        return self.wait_acks([self.client.publish(topic, payload, qos=qos).mid])[0]

    def wait_acks(self, mids: list[int], timeout: float = 30.0) -> list[ReasonCode]:
        with self._cond:
            assert self._cond.wait_for(lambda: all(m in self._acks for m in mids), timeout), "no PUBACK"
            return [self._acks.pop(m) for m in mids]

    def subscribe(self, topic: str, qos: int = 1) -> ReasonCode:
        _, mid = self.client.subscribe(topic, qos=qos)
        assert mid is not None
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._subacks, 10), "no SUBACK"
            return self._subacks.pop(mid)[0]

    def expect(self, timeout: float = 5.0) -> tuple[str, bytes]:
        return self.received.get(timeout=timeout)

    def drain(self, n: int, timeout: float = 30.0) -> list[bytes]:
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            try:
                out.append(self.received.get(timeout=max(0.01, deadline - time.monotonic()))[1])
            except queue.Empty:
                break
        return out

    @property
    def is_connected(self) -> bool:
        return bool(self.client.is_connected())

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
