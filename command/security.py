"""Passwords, access tokens, sessions, the login rate limit and what logs may show.

Passwords are argon2id hashes (argon2-cffi); tokens are short-lived signed JWTs
(PyJWT, HS256) carrying the user's id, role, — for field users — team, and the id of
the session the login opened (``sid``): the session row (``auth_session``) is checked on
every request, so a logout, a disabled account or a changed role ends every token of it
at once. The login is rate-limited per (user name, client address) and per address
through Redis (limits), so several command processes share one budget; while Redis is
unreachable each process falls back to the same limits in its own memory. The map
console logs everyone in from its own address, so it forwards the browser's address in
a header that is believed only with the console's shared secret (``COMMAND_CONSOLE_SECRET``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import jwt
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from command.domain.vocabulary import Role

# No token in a log line: the filter is shared with the dashboard (wuwang.redact).
from wuwang.redact import REDACTED as REDACTED
from wuwang.redact import REQUEST_LOGGERS as REQUEST_LOGGERS
from wuwang.redact import RedactTokens as RedactTokens
from wuwang.redact import redact as redact
from wuwang.redact import redact_tokens_in_logs as redact_tokens_in_logs
from wuwang.settings import CONSOLE_SECRET_HEADER as CONSOLE_SECRET_HEADER
from wuwang.settings import FORWARDED_FOR_HEADER as FORWARDED_FOR_HEADER

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name, not a secret
TOKEN_AUDIENCE = "wuwang-command"  # noqa: S105 - an audience name


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by the token."""

    user_id: str
    role: Role
    team_id: str | None = None
    #: When the password was typed (the token's ``auth_time``): a refreshed token keeps
    #: it, so a refresh chain ends a fixed time after the login however often it runs.
    signed_in_at: datetime | None = field(default=None, compare=False)
    #: The login's session (``auth_session.id``), kept through refreshes; None only for a
    #: token that names none, which every route refuses.
    session_id: str | None = field(default=None, compare=False)
    #: When this token runs out (its ``exp``): an open /ws is closed then.
    expires_at: datetime | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.user_id} ({self.role})"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def issue_token(
    principal: Principal, *, secret: str, ttl_s: int, now: datetime | None = None
) -> tuple[str, datetime]:
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=ttl_s)
    claims = {
        "auth_time": int((principal.signed_in_at or issued).timestamp()),  # PyJWT converts only exp/iat
        "sub": principal.user_id,
        "role": str(principal.role),
        "team": principal.team_id,
        "sid": principal.session_id,
        "iat": issued,
        "exp": expires,
        "aud": TOKEN_AUDIENCE,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM), expires


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or revoked; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_token(token: str, *, secret: str) -> Principal:
    """The signature and expiry only; whether its session still stands is asked of the
    database (``command.users.session_standing``)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except jwt.PyJWTError:
        raise InvalidToken("invalid token") from None
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise InvalidToken("invalid token") from None
    team = claims.get("team")
    auth_time = claims.get("auth_time")
    sid = claims.get("sid")
    exp = claims.get("exp")
    return Principal(
        user_id=str(claims["sub"]),
        role=role,
        team_id=str(team) if team else None,
        signed_in_at=datetime.fromtimestamp(auth_time, UTC) if isinstance(auth_time, int | float) else None,
        session_id=str(sid) if isinstance(sid, str) and sid else None,
        expires_at=datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None,
    )


def client_address(peer: str | None, headers: dict[str, str], console_secret: str | None) -> str:
    """The address a login is throttled by: the browser's as the map console forwards it
    when the request carries the console's secret, else the TCP peer's. A browser
    cannot forge the forwarded header without the secret; a malformed forwarded address
    is ignored (never used as a throttle key)."""
    peer_address = peer or "unknown"
    forwarded = headers.get(FORWARDED_FOR_HEADER)
    offered = headers.get(CONSOLE_SECRET_HEADER)
    if not forwarded or not offered or not console_secret:
        return peer_address
    if not hmac.compare_digest(offered.encode(), console_secret.encode()):
        return peer_address
    try:
        return str(ip_address(forwarded.strip()))
    except ValueError:
        return peer_address


class _LocalWindow:
    """A moving window in this process's memory: the fallback while Redis is away."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def hit(self, item: RateLimitItem, key: str, now: float) -> bool:
        window = item.get_expiry()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:  # an attacker spraying names: forget the stalest
                self._hits.pop(next(iter(self._hits)))
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= item.amount:
            return False
        hits.append(now)
        return True


class LoginLimiter:
    """A moving window of login attempts per (user name, client address) and per client
    address. Keyed by both, so someone guessing a password from one desk never locks the
    real user out at another; the per-address window bounds guessing across names."""

    def __init__(self, redis: aioredis.Redis, per_user: str, per_address: str) -> None:
        # Shares the service's connection pool, so the lifespan's close closes it too.
        self._storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # limits types options narrowly
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_user = parse(per_user)
        self._per_address = parse(per_address)
        self._local = _LocalWindow()
        self._redis_down_logged = 0.0

    async def allow(self, user_id: str, address: str) -> bool:
        user_key = f"{user_id.lower()}|{address}"
        try:
            by_user = await self._limiter.hit(self._per_user, "login-user-addr", user_key)
            by_address = await self._limiter.hit(self._per_address, "login-addr", address)
        except Exception:
            # Redis is down: logins must still work (PostgreSQL has the users), and must
            # still be throttled — by this process alone, which is the safe direction
            # (N processes allow at most N times the budget, never an unlimited one).
            now = time.monotonic()
            if now - self._redis_down_logged > 60:
                self._redis_down_logged = now
                log.warning("login limiter: Redis unreachable, limiting in this process", exc_info=True)
            by_user = self._local.hit(self._per_user, "u:" + user_key, now)
            by_address = self._local.hit(self._per_address, "a:" + address, now)
        return by_user and by_address
