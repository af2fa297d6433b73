"""``/report/*``: after-action reports (复盘报告) fetched with the user's token, server side.

The browser never puts its token in a URL. A report link's click
(``assets/40-wuwang-exercise.js``) first asks ``POST /report/ticket`` — with the
token in the ``Authorization`` header — for a **ticket**: a random one-time value,
bound to that one report path, good for 60 seconds, kept in this process. The new tab
(HTML) or the download (``?download=1``, CSV) then goes to the report's URL with
``?ticket=…``. Each route takes the token from the header or from its ticket, asks the
command service whose it is, refuses who may not read such a report, and passes the
command service's answer through as it streams in:

| console route | command service |
|---|---|
| ``/report/exercise/<id>.html`` (``?download=1``) | ``GET /exercises/<id>/report.html`` |
| ``/report/exercise/<id>.csv`` | ``GET /exercises/<id>/report.csv`` |
| ``/report/incident/<id>.html`` (``?download=1``) | ``GET /incidents/<id>/report.html`` |
| ``/report/incident/<id>.csv`` | ``GET /incidents/<id>/report.csv`` |
| ``/report/duty/<shift id or day>.html`` / ``.csv`` | ``GET /duty/log.html`` / ``.csv`` (值班日志) |

Exercise reports are for planners, commanders and admins (operators see live only);
incident reports for every console user — the command service still decides per
incident (a planner gets exercise incidents only, an operator live ones only).

The HTML report draws its plots with inline scripts, which the console's own
Content-Security-Policy forbids; it is served with a policy of its own that lets it run
them in a **sandbox** (an opaque origin: it cannot read the console's storage or call
anything, and loads nothing from anywhere).

Tickets live in Redis (``REDIS_URL``) under ``wuwang:report-ticket:<ticket>`` with a
60-second expiry, and are taken with GETDEL: with several dashboard processes behind one
address (docs/scaling.md), a ticket issued by one is good — once — at any other, with no
sticky sessions. Only a console without Redis (a single process) keeps them in its memory.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections import OrderedDict
from typing import Literal, Protocol

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from dashboard.api import ApiError, Me
from dashboard.context import Console

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PASSED_HEADERS = ("content-type", "last-modified", "etag")  # the body is passed on decoded
Kind = Literal["exercise", "incident", "duty"]
Format = Literal["html", "csv"]
_REPORT_PATH = re.compile(r"^/report/(exercise|incident|duty)/([A-Za-z0-9_.:-]{1,64})\.(html|csv)$")
#: What a report link may ask besides its path: its language, and to be saved.
_QUERY = re.compile(r"^(?:lang=(?:zh|en)(?:&download=1)?|download=1)?$")
REPORT_LANGS = ("zh", "en")
TICKET_TTL_S = 60.0
TICKETS_MAX = 2048
#: What the HTML report may do in its tab: run its own inline plots, in a sandbox.
REPORT_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'unsafe-inline' 'unsafe-eval'",
        "style-src 'unsafe-inline'",
        "img-src data: blob:",
        "font-src data:",
        "connect-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "sandbox allow-scripts allow-downloads allow-popups",
    ]
)


class Tickets(Protocol):
    """One-time, path-bound, short-lived stand-ins for a token in a report URL."""

    ttl_s: float

    async def issue(self, token: str, path: str) -> str: ...

    async def take(self, ticket: str, path: str) -> str | None:
        """The token, once, if the ticket is for ``path`` and still good."""
        ...


TICKET_KEY = "wuwang:report-ticket:"


class RedisTickets:
    """Tickets every dashboard process sharing one Redis can take (each once): Redis
    expires them, GETDEL makes the first taker the only one."""

    def __init__(self, redis_url: str, ttl_s: float = TICKET_TTL_S) -> None:
        self.redis_url = redis_url
        self.ttl_s = ttl_s

    def _client(self) -> aioredis.Redis:
        # A client per use: a report click is rare, and a pool would be bound to the
        # event loop it was first used on.
        return aioredis.Redis.from_url(self.redis_url)

    async def issue(self, token: str, path: str) -> str:
        ticket = secrets.token_urlsafe(24)
        ttl_ms = max(1, int(self.ttl_s * 1000))
        async with self._client() as redis:
            await redis.set(TICKET_KEY + ticket, orjson.dumps([path, token]), px=ttl_ms)
        return ticket

    async def take(self, ticket: str, path: str) -> str | None:
        async with self._client() as redis:
            raw = await redis.getdel(TICKET_KEY + ticket)
        if raw is None:
            return None
        bound, token = orjson.loads(raw)
        return str(token) if bound == path else None


class MemoryTickets:
    """Tickets in this process's memory: a console without Redis (one process)."""

    def __init__(self, ttl_s: float = TICKET_TTL_S, size: int = TICKETS_MAX) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._held: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    async def issue(self, token: str, path: str) -> str:
        now = time.monotonic()
        while self._held and (len(self._held) >= self.size or next(iter(self._held.values()))[0] < now):
            self._held.popitem(last=False)
        ticket = secrets.token_urlsafe(24)
        self._held[ticket] = (now + self.ttl_s, path, token)
        return ticket

    async def take(self, ticket: str, path: str) -> str | None:
        """The token, once, if the ticket is for ``path`` and still good."""
        held = self._held.pop(ticket, None)
        if held is None:
            return None
        expires, bound, token = held
        return token if bound == path and expires >= time.monotonic() else None


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() or None if header.lower().startswith("bearer ") else None


def _answer(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers={"Cache-Control": "no-store"})


def filename(kind: Kind, ident: str, fmt: Format) -> str:
    """What a downloaded report is called (the id is already checked against ``_ID``)."""
    safe = ident.replace(":", "_")
    return f"duty-log-{safe}.{fmt}" if kind == "duty" else f"after-action-{kind}-{safe}.{fmt}"


def upstream_path(kind: Kind, ident: str, fmt: Format) -> str:
    if kind == "duty":
        return f"/duty/log.{fmt}"
    return f"/{'exercises' if kind == 'exercise' else 'incidents'}/{ident}/report.{fmt}"


#: A duty log is one shift's (its id) or one day's (YYYY-MM-DD).
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def upstream_params(kind: Kind, ident: str) -> dict[str, str]:
    if kind != "duty":
        return {}
    return {"day": ident} if _DAY.fullmatch(ident) else {"shift_id": ident}


def router(console: Console, tickets: Tickets | None = None) -> APIRouter:
    api = console.api
    held = tickets or tickets_for(console)
    r = APIRouter(prefix="/report", include_in_schema=False)

    async def allowed(token: str | None, kind: str) -> tuple[Me, str] | JSONResponse:
        try:
            me = await api.me(token)
        except ApiError as exc:
            return _answer(503, exc.detail)
        if me is None or token is None:
            return _answer(401, "log in again")
        if not me.works_the_desk:
            return _answer(403, "reports are for the command centre")
        if kind == "duty" and not me.may("duty.read"):
            return _answer(403, f"{me.role} does not read the duty log")
        if kind == "exercise" and not me.may_run_exercises:
            return _answer(403, f"{me.role} sees live operations only, not exercise reports")
        return me, token

    @r.post("/ticket")
    async def ticket(request: Request) -> JSONResponse:
        """A one-time ticket for one report URL (the token comes in the header)."""
        try:
            body = await request.json()
        except ValueError:
            return _answer(422, "a JSON body with the report's path")
        href = body.get("path") if isinstance(body, dict) else None
        path, _, query = (href if isinstance(href, str) else "").partition("?")
        found = _REPORT_PATH.fullmatch(path)
        if found is None or not _QUERY.fullmatch(query):
            return _answer(422, "not a report path")
        who = await allowed(_token(request), found.group(1))
        if isinstance(who, JSONResponse):
            return who
        _me, token = who
        sep = "&" if query else "?"
        try:
            ticket = await held.issue(token, path)
        except aioredis.RedisError:
            return _answer(503, "the ticket store (Redis) is unavailable: try again")
        url = f"{path}{'?' + query if query else ''}{sep}ticket={ticket}"
        return JSONResponse({"url": url, "expires_in": held.ttl_s}, headers={"Cache-Control": "no-store"})

    async def report(request: Request, kind: Kind, ident: str, fmt: Format) -> Response:
        if not _ID.fullmatch(ident):
            return _answer(404, "no such report")
        token = _token(request)
        if token is None and request.query_params.get("ticket"):
            try:
                token = await held.take(request.query_params["ticket"], request.url.path)
            except aioredis.RedisError:
                return _answer(503, "the ticket store (Redis) is unavailable: try again")
            if token is None:
                return _answer(401, "this report link has expired: open it again from the console")
        who = await allowed(token, kind)
        if isinstance(who, JSONResponse):
            return who
        me, token = who
        download = request.query_params.get("download") in ("1", "true") or fmt == "csv"
        lang = request.query_params.get("lang")
        params = upstream_params(kind, ident)
        if lang in REPORT_LANGS:  # else the command service's default: zh
            params["lang"] = lang
        try:
            upstream = await api.open_stream(upstream_path(kind, ident, fmt), token, params or None)
        except ApiError as exc:
            return _answer(503, exc.detail)
        if upstream.status_code >= 400:
            body = await upstream.aread()
            await upstream.aclose()
            if upstream.status_code == 401:
                api.forget(token)
            detail = body.decode("utf-8", "replace")[:500]
            if upstream.status_code in (404, 405) and '"Not Found"' in detail and kind == "exercise":
                # the route itself is missing (an older command service), not the exercise
                return _answer(501, "the command service has no report route yet")
            passed = {"Cache-Control": "no-store"}
            if "retry-after" in upstream.headers:  # 503: the command service says when
                passed["Retry-After"] = upstream.headers["retry-after"]
            return Response(
                body[:20_000],
                status_code=upstream.status_code,
                media_type=upstream.headers.get("content-type", "text/plain"),
                headers=passed,
            )
        headers = {k: upstream.headers[k] for k in _PASSED_HEADERS if k in upstream.headers}
        headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        if fmt == "html":
            headers["Content-Security-Policy"] = REPORT_CSP
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{filename(kind, ident, fmt)}"'
        log.info("report %s %s.%s for %s (%s)", kind, ident, fmt, me.user_id, me.role)
        return StreamingResponse(
            upstream.aiter_bytes(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )

    @r.get("/exercise/{ident}.html")
    async def exercise_html(request: Request, ident: str) -> Response:
        return await report(request, "exercise", ident, "html")

    @r.get("/exercise/{ident}.csv")
    async def exercise_csv(request: Request, ident: str) -> Response:
        return await report(request, "exercise", ident, "csv")

    @r.get("/incident/{ident}.html")
    async def incident_html(request: Request, ident: str) -> Response:
        return await report(request, "incident", ident, "html")

    @r.get("/incident/{ident}.csv")
    async def incident_csv(request: Request, ident: str) -> Response:
        return await report(request, "incident", ident, "csv")

    @r.get("/duty/{ident}.html")
    async def duty_html(request: Request, ident: str) -> Response:
        return await report(request, "duty", ident, "html")

    @r.get("/duty/{ident}.csv")
    async def duty_csv(request: Request, ident: str) -> Response:
        return await report(request, "duty", ident, "csv")

    return r


def tickets_for(console: Console) -> Tickets:
    """Redis when the console has one (every process sees every ticket), else memory."""
    url = console.settings.shared.redis_url
    return RedisTickets(url) if url else MemoryTickets()


def mount(server: FastAPI, console: Console) -> None:
    server.include_router(router(console))
