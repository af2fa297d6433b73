"""Login and the caller's own identity."""

from __future__ import annotations

from datetime import datetime

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
    principal = Principal(user_id=body.username, role=Role(row[0]), team_id=row[1])
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


@router.get("/me", response_model=Me, responses={401: {}})
async def me(who: Caller, state: State) -> Me:
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT display_name FROM app_user WHERE id = %s", (who.user_id,))
        row = await cur.fetchone()
    return Me(
        user_id=who.user_id, role=who.role, team_id=who.team_id, display_name=row[0] if row else who.user_id
    )
