"""MQTT connection details shared by every service: URL parsing, demo accounts and a
paho client factory. Reconnect policy lives with the one client class that owns a
connection (``wuwang.mqttlink.MqttLink``), not here."""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

#: Demo accounts in deploy/mosquitto/passwd (refused outside DEMO_MODE, see settings).
DEMO_MQTT_ACCOUNTS = {
    "ingest": "demo-ingest",
    "command": "demo-command",
    "simulator": "demo-sim",
}

#: The console's own accounts. On the project's Mosquitto they log in on its internal
#: listener (several processes per account, each with its own client id); every other
#: account is a field account whose client id is its user name (docs/security.md).
SERVICE_ACCOUNTS = frozenset(DEMO_MQTT_ACCOUNTS)


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT_URL must start with mqtt:// or mqtts://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("MQTT_URL has no host")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
        )

    def url(self) -> str:
        auth = ""
        if self.username:
            auth = quote(self.username, safe="")
            if self.password:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"

    def with_user(self, username: str, password: str) -> MqttTarget:
        return MqttTarget(self.host, self.port, username, password, self.tls)


def make_client(
    client_id: str,
    *,
    protocol: str = "5",
    persistent: bool = False,
    manual_ack: bool = False,
) -> paho.Client:
    """A paho 2.x client. ``persistent`` keeps the broker-side session (clean session
    off on 3.1.1; on MQTT 5 the session expiry is set at connect, see connect_properties)."""
    if protocol == "5":
        return paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
            reconnect_on_failure=False,
        )
    return paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=paho.MQTTv311,
        manual_ack=manual_ack,
        reconnect_on_failure=False,
    )


def connect_kwargs(
    protocol: str, *, persistent: bool, session_expiry_s: int, receive_maximum: int | None = None
) -> dict[str, object]:
    """Arguments for Client.connect(). With MQTT 5 the default session expiry is 0 — the
    broker would keep nothing (paho #877) — so a persistent client sets it explicitly."""
    if protocol != "5":
        return {}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if persistent:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return {"clean_start": not persistent, "properties": props}


def apply_target(client: paho.Client, target: MqttTarget) -> None:
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()


class Backoff:
    """Exponential back-off with full jitter, so that many clients cut off by the same
    broker restart do not all come back in the same instant (paho's own has no jitter)."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0
