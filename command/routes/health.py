"""/healthz and /metrics: the only routes without authentication."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from command.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"description": "a dependency is down"}})
async def healthz(state: State) -> JSONResponse:
    """Checks PostgreSQL, Redis, the broker connection and the background workers."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with state.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")

    async def redis() -> None:
        await state.redis.ping()

    for name, probe in (("postgresql", database), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), timeout=3)
            checks[name] = "ok"
        except Exception as exc:  # any failure is "down", with its reason
            checks[name] = f"down: {type(exc).__name__}"
    link = state.mqtt  # the MQTT link (command.services.mqtt_side); None without MQTT_URL
    if link is None:
        checks["broker"] = "down: MQTT_URL not set"
    else:
        checks["broker"] = "ok" if link.connected.is_set() else f"down: {link.last_error or 'not connected'}"
    for worker in state.workers:
        checks[worker.name] = "ok" if worker.healthy() else "down"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", response_class=Response)
async def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)
