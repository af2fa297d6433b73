"""What the command service's lifespan owns, typed, handed to routes and workers.

Every component a route or a worker reaches is a named field, so mypy checks each use:
the plan library and the triage rules are read at start-up (a bad one stops it) and are
always there; a worker's own object is set when it starts (``None`` before, and for a part
that does not run, e.g. the MQTT link without ``MQTT_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from command.domain.plans import PlanLibrary
from command.domain.triage import TriageRules
from command.security import LoginLimiter
from wuwang.settings import Settings

if TYPE_CHECKING:  # the workers' modules import this one
    from command.audit import RefusedLogins
    from command.services.live import LiveHub, SnapshotProvider
    from command.services.mqtt_side import OutboxRelay
    from command.services.rosters import KeptRoster
    from wuwang.mqttlink import MqttLink


class Worker(Protocol):
    """A background part of the service (alarm consumer, outbox relay, ...)."""

    name: str

    async def start(self, state: CommandState) -> None: ...

    async def stop(self) -> None: ...

    def healthy(self) -> bool: ...


@dataclass
class CommandState:
    settings: Settings
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    limiter: LoginLimiter
    token_secret: str
    metrics: CollectorRegistry
    #: The contingency plans (应急预案), validated at start-up: the one way to reach them.
    plans: PlanLibrary
    #: The alarm inbox's triage rules, validated at start-up.
    triage_rules: TriageRules
    workers: list[Worker] = field(default_factory=list)
    #: What a (re)connecting live client receives first, by name (command.services.live).
    snapshots: dict[str, SnapshotProvider] = field(default_factory=dict)
    # --- set by the workers as they start --------------------------------------------------
    live: LiveHub | None = None
    #: The MQTT link; None without MQTT_URL (no orders go out, /healthz says so).
    mqtt: MqttLink | None = None
    #: The order outbox relay, woken when an order is written; None without the MQTT side.
    outbox: OutboxRelay | None = None
    refused_logins: RefusedLogins | None = None
    # --- kept between requests ----------------------------------------------------------------
    #: A live (Redis) read of team positions failed: Redis may come back empty, rebuild first.
    teams_geo_lost: bool = False
    #: The duty roster kept between shift changes (command.services.rosters.kept_duty_roster).
    duty_roster: KeptRoster | None = None
