"""One read-only connection pool per event loop (the dashboard's server has one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)


class ReadOnlyDatabase:
    """Connections whose transactions are read-only: the console never writes here."""

    def __init__(self, url: str | None, *, max_size: int = 4) -> None:
        self.url = url
        self._max = max_size
        self._pools: dict[int, AsyncConnectionPool[Any]] = {}
        self._lock: asyncio.Lock | None = None

    @property
    def configured(self) -> bool:
        return bool(self.url)

    async def pool(self) -> AsyncConnectionPool[Any]:
        if not self.url:
            raise RuntimeError("DATABASE_URL is not set: the console cannot read the registries")
        loop_id = id(asyncio.get_running_loop())
        pool = self._pools.get(loop_id)
        if pool is None:
            pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._max,
                open=False,
                kwargs={
                    "connect_timeout": 5,
                    "options": "-c default_transaction_read_only=on",
                    "application_name": "wuwang-dashboard",
                },
            )
            await pool.open(wait=True, timeout=15)
            self._pools[loop_id] = pool
        return pool

    async def fetch(
        self, query: str, params: dict[str, Any] | tuple[Any, ...] | None = None
    ) -> list[tuple[Any, ...]]:
        pool = await self.pool()
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            return list(await cur.fetchall())

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            with contextlib.suppress(RuntimeError):  # its loop is gone
                await pool.close()
