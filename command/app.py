"""The command service's FastAPI application.

Clients (PostgreSQL pool, Redis, the MQTT side) are owned by the lifespan and handed
to routes as typed state; routes call services; the domain core stays pure.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from command import inputs
from command.audit import RefusedLogins
from command.domain.cap import MAX_CAP_BYTES
from command.routes import auth, field, grid, health, incidents, ws
from command.routes import cap as cap_routes
from command.routes import dispatch as dispatch_routes
from command.routes import duty as duty_routes
from command.routes import exercises as exercises_routes
from command.routes import inbox as inbox_routes
from command.routes import kpis as kpis_routes
from command.routes import planned_events as planned_events_routes
from command.routes import plans as plans_routes
from command.routes import reports as reports_routes
from command.routes import reserve as reserve_routes
from command.routes import risk as risk_routes
from command.routes import teams as teams_routes
from command.routes import upward_reports as upward_routes
from command.routes import warnings as warnings_routes
from command.security import LoginLimiter, redact_tokens_in_logs
from command.services import duty as duty_service
from command.services import grid as grid_service
from command.services import inbox as inbox_service
from command.services import incidents as incidents_service
from command.services import mqtt_side
from command.services import plans as plans_service
from command.services import reserve as reserve_service
from command.services import risk as risk_service
from command.services import rosters as rosters_service
from command.services import upward_reports as upward_service
from command.services import warnings as warnings_service
from command.services.alarm_feed import AlarmFeed
from command.services.incidents import AlarmIntake
from command.services.live import LiveHub, snapshot_providers
from command.state import CommandState, Worker
from wuwang.bodylimit import BodyLimit
from wuwang.settings import Settings, token_secret

log = logging.getLogger(__name__)

#: Oldest schema this code runs on (see wuwang/migrations).
#: 0018: inbound CAP warnings; 0019: upward reports; 0020: the duty desk; 0021: shelter
#: reports, warning recipients; 0022: cameras' video platforms (camera.gateway_id).
REQUIRED_SCHEMA = "0022"

WorkerFactory = Callable[[CommandState], Worker]

#: Seconds each part of the shutdown (a worker's stop, the Redis and pool closes) may take:
#: a part told to stop that does not is left behind, with a warning naming it, so the
#: process (or a test's TestClient) always gets out of the lifespan.
STOP_TIMEOUT_S = 5.0


async def stop_within(what: str, stopping: Awaitable[None], timeout_s: float) -> bool:
    """Await ``stopping`` for at most ``timeout_s``; False (and a warning) if it did not end.

    ``asyncio.wait`` rather than ``wait_for``: on timeout ``wait_for`` waits for the
    cancelled stop to finish, and a stop that swallows the cancellation (or is blocked
    in a thread) would hang the shutdown all the same. Here it is cancelled and left.
    """
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.warning("%s did not stop within %.1f s: left behind, shutdown goes on", what, timeout_s)
        return False
    task.result()  # a stop that failed raises here, for the caller to log
    return True


def default_workers(*, inbox_expiry: bool = True) -> list[WorkerFactory]:
    """Background parts started with the service, in order. ``inbox_expiry`` False: no
    wall-clock expiry of quiet inbox rows (bench/shift replays a compressed hour)."""
    expiry: list[WorkerFactory] = (
        [lambda state: inbox_service.InboxExpiry(state.settings.command.inbox_expiry_interval_s)]
        if inbox_expiry
        else []
    )
    return [
        lambda state: LiveHub(state.settings.command.ws_queue),
        lambda state: AlarmFeed(AlarmIntake.default()),
        *expiry,  # quiet inbox rows → review list (docs/triage.md)
        # issued warnings past their expiry → expired (docs/warnings.md)
        lambda state: warnings_service.WarningExpiry(state.settings.command.warning_expiry_interval_s),
        lambda state: duty_service.DutyLogFeed(),  # calls, incidents → the duty log (值班日志)
        # risk sources whose inspection is overdue → one grid case each (docs/risk-and-shelters.md)
        lambda state: risk_service.RiskSweep(state.settings.command.risk_sweep_interval_s),
        lambda state: RefusedLogins(state.settings.command.login_audit_flush_s),
        # reports to the upper level sent, receipts and instructions taken, overdue clocks
        # escalated (docs/duty-and-reporting.md)
        lambda state: upward_service.UpwardLink(state.settings.command.upper_interval_s),
        *mqtt_side.worker_factories(),  # MQTT link, team feed, order outbox relay, ack watchdog
    ]


def register_snapshots(state: CommandState) -> None:
    """What a (re)connecting live client receives first."""
    providers = snapshot_providers(state)
    providers["incidents"] = incidents_service.snapshot
    providers["teams"] = rosters_service.snapshot  # the roster: status, position, duty, order
    providers["stock"] = reserve_service.snapshot  # city-wide totals per reserve item
    providers["grid_events"] = grid_service.snapshot  # open grid cases (网格化管理)
    providers["inbox"] = inbox_service.snapshot  # open alarm-inbox rows (告警收件箱)


def create_app(settings: Settings, workers: Sequence[WorkerFactory] | None = None) -> FastAPI:
    if not settings.shared.database_url or not settings.shared.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (python -m wuwang demo sets them)")
    secret = token_secret(settings)
    factories = list(default_workers() if workers is None else workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, CommandState]]:
        plans = plans_service.load_library(settings.command.plans_dir)  # a bad library stops start-up
        triage_rules = inbox_service.load_rules()  # bad triage rules stop start-up (TriageRulesError)
        upward_service.rule_of(settings)  # a bad reporting rule stops start-up (RuleError)
        pool = AsyncConnectionPool(
            settings.shared.database_url or "",
            min_size=2,
            max_size=16,
            open=False,
            kwargs={"connect_timeout": 5},
        )
        await pool.open(wait=True, timeout=30)
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT max(version) FROM schema_migrations")
            row = await cur.fetchone()
            if row is None or row[0] is None or row[0] < REQUIRED_SCHEMA:
                await pool.close()
                raise RuntimeError(
                    f"database schema is {row[0] if row else None}, need {REQUIRED_SCHEMA}: "
                    "run python -m wuwang migrate"
                )
        redis = aioredis.Redis.from_url(
            settings.shared.redis_url or "",
            # A hung Redis must not hang requests: they fail (503, or PostgreSQL's answer).
            socket_connect_timeout=settings.command.redis_timeout_s,
            socket_timeout=settings.command.redis_timeout_s,
        )
        state = CommandState(
            settings=settings,
            pool=pool,
            redis=redis,
            limiter=LoginLimiter(
                redis, settings.command.login_limit, settings.command.login_limit_per_address
            ),
            token_secret=secret,
            metrics=CollectorRegistry(),
            plans=plans,
            triage_rules=triage_rules,
        )
        register_snapshots(state)
        started: list[Worker] = []
        try:
            for factory in factories:
                worker = factory(state)
                await worker.start(state)
                started.append(worker)
                state.workers.append(worker)
            # What start-up built (plans, modules, pools) lives as long as the process: moved
            # out of the collector's generations, full collections no longer walk it, and the
            # request-time tail (dispatch recommendations) loses most of its GC pauses.
            gc.collect()
            gc.freeze()
            yield {"command": state}
        finally:
            gc.unfreeze()  # a test process starts many apps: let their objects be collected
            for worker in reversed(started):
                try:
                    await stop_within(f"worker {worker.name}", worker.stop(), STOP_TIMEOUT_S)
                except Exception:
                    log.exception("worker %s did not stop cleanly", worker.name)
            for what, close in (("Redis client", redis.aclose), ("PostgreSQL pool", pool.close)):
                try:
                    await stop_within(what, close(), STOP_TIMEOUT_S)
                except Exception:
                    log.exception("%s did not close cleanly", what)

    app = FastAPI(
        title="五网同构 command service",
        version="1",
        description="Incidents, contingency plans, reserve, rosters and dispatch. "
        "Every route but /healthz and /metrics needs a bearer token from POST /auth/login.",
        lifespan=lifespan,
    )
    for router in (
        health.router,
        auth.router,
        incidents.router,
        grid.router,
        ws.router,
        plans_routes.router,
        reserve_routes.router,
        kpis_routes.router,
        teams_routes.router,
        dispatch_routes.router,
        field.router,
        exercises_routes.router,
    ):
        app.include_router(router)
    app.include_router(reports_routes.router)  # after-action reports (复盘报告)
    app.include_router(inbox_routes.router)  # the alarm inbox (告警收件箱)
    app.include_router(planned_events_routes.router)  # planned events (大型活动登记)
    app.include_router(risk_routes.router)  # risk sources and shelters (风险源, 应急避难场所)
    # CAP in (外部预警); before any /warnings/{id} route, which would take "inbound" for an id
    app.include_router(cap_routes.router)
    app.include_router(warnings_routes.router)  # warnings (预警)
    app.include_router(duty_routes.router)  # the duty desk (值班值守)
    app.include_router(upward_routes.router)  # upward reporting (信息报送)
    add_redis_unavailable_handler(app)
    inputs.install(app)  # data the database refuses (a NUL that slipped through) is a 422, never a 500
    # Auth (docs/security.md): bodies limited before anything parses them; /ws handlers
    # may abort a socket that takes no data; no token reaches a log line.
    app.add_middleware(
        BodyLimit,
        default=settings.command.body_limit_bytes,
        by_prefix={"/field/photos": settings.command.upload_limit_bytes, "/warnings/cap": MAX_CAP_BYTES},
    )
    app.add_middleware(ws.ExposeTransportAbort)
    redact_tokens_in_logs()
    return app


# --- Redis down: 503 with Retry-After, never 500 ----------------------------------------
# What PostgreSQL can answer does not reach here (the roster, command.services.rosters);
# what needs Redis is refused as a whole, for the caller to retry. The Redis client
# reconnects on its next call once Redis answers again: no restart.

#: Seconds a client waits before asking again while Redis (the live state) is down.
REDIS_RETRY_AFTER_S = 5


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("Redis unavailable: %s %s answered 503 (%s)", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "live state (Redis) unavailable; try again shortly", "reason": "redis_unavailable"},
        status_code=503,
        headers={"Retry-After": str(REDIS_RETRY_AFTER_S)},
    )


def add_redis_unavailable_handler(app: FastAPI) -> None:
    for error in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        app.add_exception_handler(error, _redis_unavailable)
