"""What the command service's lifespan owns, typed, handed to routes and workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from command.security import LoginLimiter
from wuwang.settings import Settings


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
    workers: list[Worker] = field(default_factory=list)
    #: Components that routes reach by name (e.g. "live" hub, "orders" publisher).
    parts: dict[str, Any] = field(default_factory=dict)
