"""Login and the caller's own identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from command import audit
from command.deps import Caller, State
from command.domain.vocabulary import Role
from command.security import Principal, issue_token, verify_password

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type
    expires_at: datetime
    user_id: str
    role: Role
    team_id: str | None


class Me(BaseModel):
    user_id: str
    role: Role
    team_id: str | None
    display_name: str


@router.post("/login", response_model=TokenResponse, responses={401: {}, 429: {}})
async def login(body: LoginRequest, request: Request, state: State) -> TokenResponse:
    address = request.client.host if request.client else "unknown"
    if not await state.limiter.allow(body.username, address):
        async with state.pool.connection() as conn:
            await audit.record(
                conn,
                body.username,
                "auth.login",
                outcome="denied",
                detail={"reason": "rate limited", "address": address},
            )
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many login attempts; wait a minute")
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT role, team_id, password_hash, disabled FROM app_user WHERE id = %s", (body.username,)
        )
        row = await cur.fetchone()
        ok = verify_password(row[2] if row else None, body.password) and row is not None and not row[3]
        await audit.record(
            conn, body.username, "auth.login", outcome="ok" if ok else "denied", detail={"address": address}
        )
    if not ok or row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    principal = Principal(
        user_id=body.username, role=Role(row[0]), team_id=row[1], signed_in_at=datetime.now(UTC)
    )
    return _token_for(principal, state)


def _token_for(principal: Principal, state: State) -> TokenResponse:
    token, expires = issue_token(
        principal, secret=state.token_secret, ttl_s=state.settings.command_token_ttl_s
    )
    return TokenResponse(
        access_token=token,
        expires_at=expires,
        user_id=principal.user_id,
        role=principal.role,
        team_id=principal.team_id,
    )


@router.post("/refresh", response_model=TokenResponse, responses={401: {}})
async def refresh(who: Caller, state: State) -> TokenResponse:
    """A fresh short-lived token for a caller whose token is still valid, so a wall
    display stays signed in through a shift. The user is read again (a disabled user,
    or a changed role or team, gets 401), and the chain ends ``COMMAND_SESSION_MAX_S``
    after the password was typed."""
    signed_in = who.signed_in_at
    now = datetime.now(UTC)
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT role, team_id, disabled FROM app_user WHERE id = %s", (who.user_id,))
        row = await cur.fetchone()
        if signed_in is None or now - signed_in > timedelta(seconds=state.settings.command_session_max_s):
            reason = "the session is older than a shift: log in again"
        elif row is None or row[2] or Role(row[0]) is not who.role or row[1] != who.team_id:
            reason = "the account changed: log in again"
        else:
            reason = None
        if reason is None:
            await audit.record(conn, who, "auth.refresh")
        else:
            await audit.record(conn, who, "auth.refresh", outcome="denied", detail={"reason": reason})
    if reason is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, reason)
    return _token_for(who, state)


@router.get("/me", response_model=Me, responses={401: {}})
async def me(who: Caller, state: State) -> Me:
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT display_name FROM app_user WHERE id = %s", (who.user_id,))
        row = await cur.fetchone()
    return Me(
        user_id=who.user_id, role=who.role, team_id=who.team_id, display_name=row[0] if row else who.user_id
    )
