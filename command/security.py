"""Passwords, access tokens and the login rate limit.

Passwords are argon2id hashes (argon2-cffi); tokens are short-lived signed JWTs
(PyJWT, HS256) carrying the user's id, role and — for field users — team; the login
is rate-limited per user name and per address through Redis (limits), so several
command processes share one budget.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from command.domain.vocabulary import Role

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
        "iat": issued,
        "exp": expires,
        "aud": TOKEN_AUDIENCE,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM), expires


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_token(token: str, *, secret: str) -> Principal:
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
    return Principal(
        user_id=str(claims["sub"]),
        role=role,
        team_id=str(team) if team else None,
        signed_in_at=datetime.fromtimestamp(auth_time, UTC) if isinstance(auth_time, int | float) else None,
    )


class LoginLimiter:
    """A moving window of login attempts per user name and per client address."""

    def __init__(self, redis: aioredis.Redis, per_user: str, per_address: str) -> None:
        # Shares the service's connection pool, so the lifespan's close closes it too.
        self._storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # limits types options narrowly
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_user = parse(per_user)
        # Looser per address: a command centre's desks often share one address.
        self._per_address = parse(per_address)

    async def allow(self, user_id: str, address: str) -> bool:
        by_user = await self._limiter.hit(self._per_user, "login-user", user_id.lower())
        by_address = await self._limiter.hit(self._per_address, "login-addr", address)
        return by_user and by_address
