"""The command service as the console's server side calls it: always with the
logged-in user's token, so the command service decides what each user may see and do.

Nothing here trusts an identity the browser sends: the token is the identity, and who
it belongs to is asked of the command service (``GET /auth/me``), cached for a few
seconds per token (:class:`CommandApi.me`) — so a revoked token (logout, a disabled
account) is refused here at most ``ME_CACHE_S`` later, and at once by the command
service on every call it makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx2

from wuwang.settings import CONSOLE_SECRET_HEADER, FORWARDED_FOR_HEADER

log = logging.getLogger(__name__)

#: How long a verified token is trusted without asking the command service again.
ME_CACHE_S = 20.0
ME_CACHE_SIZE = 2048


#: Retry-After when a 503 comes without one (seconds).
DEFAULT_RETRY_AFTER_S = 5


class ApiError(Exception):
    """The command service refused or failed; ``status`` 0 means it was unreachable.
    ``retry_after``: its Retry-After in seconds (503: temporarily unavailable)."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @property
    def unavailable(self) -> bool:
        """503: the command service is up but cannot serve this now (e.g. its Redis is down)."""
        return self.status == 503

    @property
    def unauthorised(self) -> bool:
        return self.status == 401

    @property
    def missing_route(self) -> bool:
        """404/405 on a route (not "no such incident"): the command service lacks it."""
        return self.status == 405 or (self.status == 404 and self.detail in ("Not Found", ""))


@dataclass(frozen=True)
class Me:
    """Who a token belongs to and what it may do, as the command service says
    (``GET /auth/me``: action codes of its policy, on live objects and on a drill's).
    The console draws a control only for an action listed here; the role is shown beside
    the name, never decided on. The command service judges every act again."""

    user_id: str
    role: str
    team_id: str | None
    display_name: str
    actions: frozenset[str] = frozenset()
    drill_actions: frozenset[str] = frozenset()

    def may(self, action: str, *, drill: bool | None = None) -> bool:
        """``action`` on live objects (``drill=False``), on a drill's (True), or either."""
        if drill is None:
            return action in self.actions or action in self.drill_actions
        return action in (self.drill_actions if drill else self.actions)

    def may_on(self, action: str, thing: dict[str, Any]) -> bool:
        """``action`` on this incident, row or case (a drill's when it has an exercise_id)."""
        return self.may(action, drill=bool(thing.get("exercise_id")))

    @property
    def works_the_desk(self) -> bool:
        """The command console's desk: whoever reads the alarm inbox (研判), live or drill."""
        return self.may("inbox.read")

    @property
    def reports_from_the_field(self) -> bool:
        """The field page: a crew's own account, which sends on-scene reports."""
        return self.may("field.report")

    @property
    def drills_only(self) -> bool:
        """Works on drills only (演练): sees exercise incidents, never live ones."""
        return self.may("incident.read", drill=True) and not self.may("incident.read", drill=False)

    @property
    def may_change_level(self) -> bool:
        return self.may("incident.level_change")

    @property
    def may_override_close(self) -> bool:
        """Resolve or close over what is still open, with a reason (the command service's
        closing guard: a commander's override)."""
        return self.may("incident.closing_override")

    @property
    def may_run_exercises(self) -> bool:
        """Plan, start, steer and purge exercises, read their reports (演练)."""
        return self.may("exercise.create")

    @property
    def may_watch_exercises(self) -> bool:
        """See an exercise's incidents on the console as they change (the command
        service's live stream carries exercise changes to these callers only)."""
        return self.may("exercise.watch")


def _codes(body: dict[str, Any], scope: str) -> frozenset[str]:
    """The action codes of ``/auth/me`` for one scope; none when it says nothing (an
    older command service: the console then offers no control, it never guesses)."""
    allowed = body.get("actions")
    codes = allowed.get(scope) if isinstance(allowed, dict) else None
    return frozenset(str(c) for c in codes) if isinstance(codes, list) else frozenset()


def _detail(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail", body)
        if isinstance(detail, list):  # FastAPI validation errors
            return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)[:500]
        if isinstance(detail, dict):
            return str(detail.get("reason") or detail.get("message") or detail)[:500]
        return str(detail)[:500]
    return str(body)[:500]


def _retry_after(response: httpx2.Response) -> int | None:
    """Retry-After in seconds (a 503's or 429's); the HTTP-date form is not sent by the
    command service, so it counts as absent."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(int(value), 3600)
    return DEFAULT_RETRY_AFTER_S if response.status_code == 503 else None


class CommandApi:
    """An HTTP client of the command service (one connection pool per event loop)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        console_secret: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: Proves to the command service that a forwarded browser address comes from
        #: this console (COMMAND_CONSOLE_SECRET); None: no address is forwarded.
        self._console_secret = console_secret
        self._timeout = timeout_s
        self._transport = transport
        self._clients: dict[int, httpx2.AsyncClient] = {}
        self._me: OrderedDict[str, tuple[float, Me]] = OrderedDict()

    def _client(self) -> httpx2.AsyncClient:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            client = httpx2.AsyncClient(
                base_url=self.base_url, timeout=self._timeout, transport=self._transport
            )
            self._clients[loop_id] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):  # its loop is gone
                await client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await self._client().request(method, path, json=json, params=params, headers=sent)
        except httpx2.HTTPError as exc:
            log.warning("command service unreachable: %s %s: %s", method, path, exc)
            raise ApiError(0, f"command service unreachable ({type(exc).__name__})") from None
        if response.status_code >= 400:
            if response.status_code == 401 and token:
                self.forget(token)
            raise ApiError(response.status_code, _detail(response), _retry_after(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, path: str, token: str, **params: Any) -> Any:
        return await self.request(
            "GET", path, token, params={k: v for k, v in params.items() if v is not None}
        )

    async def post(
        self, path: str, token: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        return await self.request("POST", path, token, json=body or {}, headers=headers)

    async def delete(self, path: str, token: str) -> Any:
        return await self.request("DELETE", path, token)

    async def open_stream(
        self, path: str, token: str, params: dict[str, Any] | None = None
    ) -> httpx2.Response:
        """GET ``path`` and hand back the response with its body unread (the caller
        streams it on and must ``aclose()`` it) — for reports passed through to the
        browser. Status codes are not judged here: the caller passes them on."""
        client = self._client()
        request = client.build_request(
            "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            return await client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            log.warning("command service unreachable: GET %s: %s", path, exc)
            raise ApiError(0, f"command service unreachable ({type(exc).__name__})") from None

    async def login(self, username: str, password: str, client_address: str | None = None) -> dict[str, Any]:
        """Log a browser's user in. Every desk's login comes from this server's address,
        so the browser's own (``client_address``) is forwarded with the console's secret:
        the command service throttles logins per (user, browser address), and someone
        guessing at one desk locks out neither the user elsewhere nor the other desks."""
        headers: dict[str, str] = {}
        if client_address and self._console_secret:
            headers = {FORWARDED_FOR_HEADER: client_address, CONSOLE_SECRET_HEADER: self._console_secret}
        body = await self.request(
            "POST", "/auth/login", None, json={"username": username, "password": password}, headers=headers
        )
        if not isinstance(body, dict) or "access_token" not in body:
            raise ApiError(502, "unexpected login answer")
        return body

    async def refresh(self, token: str) -> dict[str, Any]:
        """A renewed token for a still-valid one (POST /auth/refresh)."""
        body = await self.request("POST", "/auth/refresh", token, json={})
        if not isinstance(body, dict) or "access_token" not in body:
            raise ApiError(502, "unexpected refresh answer")
        return body

    async def logout(self, token: str) -> None:
        """End the token's session at the command service (POST /auth/logout): the token,
        its renewals and its open sockets stop working everywhere."""
        try:
            await self.request("POST", "/auth/logout", token, json={})
        finally:
            self.forget(token)

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def forget(self, token: str) -> None:
        self._me.pop(self._key(token), None)

    async def me(self, token: str | None) -> Me | None:
        """Who ``token`` belongs to, or None when it is missing, expired or forged.
        Answers are cached for :data:`ME_CACHE_S`; the command service stays the judge of
        every act (each call carries the token)."""
        if not token or len(token) > 4096:
            return None
        key = self._key(token)
        now = time.monotonic()
        hit = self._me.get(key)
        if hit is not None and hit[0] > now:
            self._me.move_to_end(key)
            return hit[1]
        try:
            body = await self.request("GET", "/auth/me", token)
        except ApiError as exc:
            if exc.status in (401, 403):
                return None
            raise
        who = Me(
            user_id=str(body["user_id"]),
            role=str(body["role"]),
            team_id=str(body["team_id"]) if body.get("team_id") else None,
            display_name=str(body.get("display_name") or body["user_id"]),
            actions=_codes(body, "live"),
            drill_actions=_codes(body, "drill"),
        )
        self._me[key] = (now + ME_CACHE_S, who)
        while len(self._me) > ME_CACHE_SIZE:
            self._me.popitem(last=False)
        return who
