"""FastAPI dependencies: the lifespan's state, the caller's identity, role checks.

Authentication is a bearer token on every route but /healthz and /metrics, checked
against its session in PostgreSQL on every request (a logout or a disabled account
ends it at once). Roles are
checked per route here; ownership of an object (a field user's own team, a planner's
exercise) is checked in the route against the object itself, through ``forbid``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from command import audit, users
from command.domain.vocabulary import Role
from command.security import InvalidToken, Principal, read_token
from command.state import CommandState

_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/login")


def get_state(request: Request) -> CommandState:
    state: CommandState = request.state.command
    return state


State = Annotated[CommandState, Depends(get_state)]


async def current_principal(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "not authenticated", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return await authenticate(state, credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, exc.reason, headers={"WWW-Authenticate": "Bearer"}
        ) from None


async def authenticate(state: CommandState, token: str) -> Principal:
    """The token's principal, if it is signed, unexpired, and its session still stands
    (not logged out, the account neither disabled nor changed): one indexed lookup per
    request, so a revocation takes effect on the next request in every process."""
    who = read_token(token, secret=state.token_secret)
    if who.session_id is None:
        raise InvalidToken(users.NO_SESSION)
    async with state.pool.connection() as conn:
        reason = await users.session_standing(conn, who)
    if reason is not None:
        raise InvalidToken(reason)
    return who


Caller = Annotated[Principal, Depends(current_principal)]


async def forbid(
    state: CommandState,
    who: Principal,
    action: str,
    reason: str,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
) -> HTTPException:
    """Audit a refusal and return the 403 to raise."""
    await audit.record_denied(state.pool, who, action, reason, object_type=object_type, object_id=object_id)
    return HTTPException(status.HTTP_403_FORBIDDEN, reason)


def require(action: str, *roles: Role) -> Callable[[CommandState, Principal], Awaitable[Principal]]:
    """A dependency that admits only ``roles`` (admin always) and audits refusals."""
    allowed = {*roles, Role.ADMIN}

    async def check(state: State, who: Caller) -> Principal:
        if who.role not in allowed:
            raise await forbid(state, who, action, f"role {who.role} may not {action}")
        return who

    return check
