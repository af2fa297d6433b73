"""Login, refresh, logout and the caller's own identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from command import audit, users
from command.deps import Caller, State, gate
from command.domain import policy
from command.domain.policy import Action
from command.domain.vocabulary import Role
from command.inputs import ApiIn
from command.security import Principal, client_address, issue_token, new_session_id, verify_password
from command.state import CommandState
from wuwang.settings import console_secret

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(ApiIn):
    """Strict, no NUL (``ApiIn``): a NUL in the name is refused here, naming the field,
    not by the database's look-up."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type
    expires_at: datetime
    user_id: str
    role: Role
    team_id: str | None


class AllowedActions(BaseModel):
    """What the caller may do (action codes of command/domain/policy.py): on live
    objects, and on a drill's. The console draws its controls from these, the command
    service still judges every act."""

    live: list[str]
    drill: list[str]


class Me(BaseModel):
    user_id: str
    role: Role
    team_id: str | None
    display_name: str
    actions: AllowedActions


@router.post("/login", response_model=TokenResponse, responses={401: {}, 429: {}})
async def login(body: LoginRequest, request: Request, state: State) -> TokenResponse:
    """A token for a user name and password. Throttled per (user name, client address)
    and per address — the map console's logins count against the browser's address it
    forwards (believed only with ``COMMAND_CONSOLE_SECRET``). A login opens a session
    (``auth_session``) that every token of it names. A refusal is counted: the audit log
    gets one row per (user, address, reason) and ``COMMAND_LOGIN_AUDIT_FLUSH_S``."""
    address = client_address(
        request.client.host if request.client else None, dict(request.headers), console_secret(state.settings)
    )
    if not await state.limiter.allow(body.username, address):
        await _refused(state, body.username, address, "rate limited")
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many login attempts; wait a minute")
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT role, team_id, password_hash, disabled FROM app_user WHERE id = %s", (body.username,)
        )
        row = await cur.fetchone()
        # verified even for an unknown user (against a dummy hash): both cost the same
        matches = verify_password(row[2] if row else None, body.password)
        principal: Principal | None = None
        if row is not None and matches and not row[3]:
            now, session_id = datetime.now(UTC), new_session_id()
            principal = Principal(
                user_id=body.username,
                role=Role(row[0]),
                team_id=row[1],
                signed_in_at=now,
                session_id=session_id,
            )
            ends = now + timedelta(seconds=state.settings.command.session_max_s)
            await users.open_session(conn, session_id, body.username, now, ends)
            await audit.record(conn, body.username, "auth.login", detail={"address": address})
    if principal is None:
        await _refused(state, body.username, address, "wrong user name or password")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    return _token_for(principal, state)


async def _refused(state: CommandState, user: str, address: str, reason: str) -> None:
    refusals = state.refused_logins
    if refusals is not None:
        refusals.count(user, address, reason)
        return
    async with state.pool.connection() as conn:  # no aggregator running (a bare app): one row
        await audit.record(
            conn, user, "auth.login", outcome="denied", detail={"reason": reason, "address": address}
        )


def _token_for(principal: Principal, state: State) -> TokenResponse:
    token, expires = issue_token(
        principal, secret=state.token_secret, ttl_s=state.settings.command.token_ttl_s
    )
    return TokenResponse(
        access_token=token,
        expires_at=expires,
        user_id=principal.user_id,
        role=principal.role,
        team_id=principal.team_id,
    )


@router.post(
    "/refresh", response_model=TokenResponse, responses={401: {}}, dependencies=gate(Action.SESSION_USE)
)
async def refresh(who: Caller, state: State) -> TokenResponse:
    """A fresh short-lived token of the same session for a caller whose token is still
    valid, so a wall display stays signed in through a shift. The session is checked as
    on every request (a logout, a disabled user, a changed role or team get 401), and the
    chain ends ``COMMAND_SESSION_MAX_S`` after the password was typed."""
    signed_in = who.signed_in_at
    now = datetime.now(UTC)
    async with state.pool.connection() as conn:
        if signed_in is None or now - signed_in > timedelta(seconds=state.settings.command.session_max_s):
            reason: str | None = "the session is older than a shift: log in again"
        else:
            reason = await users.session_standing(conn, who, now)
        if reason is None:
            await audit.record(conn, who, "auth.refresh")
        else:
            await audit.record(conn, who, "auth.refresh", outcome="denied", detail={"reason": reason})
    if reason is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, reason)
    return _token_for(who, state)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {}},
    dependencies=gate(Action.SESSION_USE),
)
async def logout(who: Caller, state: State) -> Response:
    """End the caller's session: this token, every token refreshed from it, and every
    /ws opened with them stop working (the sockets are closed with 4401 at their next
    check, ``COMMAND_WS_RECHECK_S``). Other sessions of the same user (another desk)
    go on."""
    assert who.session_id is not None  # the Caller dependency refuses tokens without one
    async with state.pool.connection() as conn:
        await users.revoke_session(conn, who.session_id, "logout")
        await audit.record(conn, who, "auth.logout")
    live = state.live
    if live is not None:
        live.end_session(who.session_id, users.REVOKED)  # this process's sockets at once
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=Me, responses={401: {}}, dependencies=gate(Action.SESSION_USE))
async def me(who: Caller, state: State) -> Me:
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT display_name FROM app_user WHERE id = %s", (who.user_id,))
        row = await cur.fetchone()
    return Me(
        user_id=who.user_id,
        role=who.role,
        team_id=who.team_id,
        display_name=row[0] if row else who.user_id,
        actions=AllowedActions(
            live=policy.actions_of(who.role, drill=False), drill=policy.actions_of(who.role, drill=True)
        ),
    )
