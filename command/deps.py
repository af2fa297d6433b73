"""FastAPI dependencies: the lifespan's state, the caller's identity, the policy's gate.

Authentication is a bearer token on every route but /healthz, /metrics and
/auth/login, checked against its session in PostgreSQL on every request (a logout or a
disabled account ends it at once). Every other route declares its action with
:func:`requires` (command/domain/policy.py decides); the object's scope and owner (a
field user's own team, a planner's exercise) are checked where the object is known,
against the same policy, through ``forbid``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from command import audit, users
from command.domain.policy import Action, allowed_anywhere
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


#: The attribute by which a route's gate names its action (tests walk the routes for it).
POLICY_ACTION = "policy_action"


def requires(
    action: Action, *, on: tuple[str, str] | None = None
) -> Callable[[Request, CommandState, Principal], Awaitable[Principal]]:
    """The route's gate: admits a caller whose role may do ``action`` somewhere (live or
    in a drill) and audits a refusal under the action's code; ``on``: (object type, path
    parameter) naming the object in that audit row."""

    async def check(request: Request, state: State, who: Caller) -> Principal:
        if not allowed_anywhere(who.role, action):
            object_type, param = on if on is not None else (None, None)
            raise await forbid(
                state,
                who,
                str(action),
                f"role {who.role} may not {action}",
                object_type=object_type,
                object_id=request.path_params.get(param) if param else None,
            )
        return who

    setattr(check, POLICY_ACTION, action)
    return check


#: ``on=`` for routes under /incidents/{incident_id}: refusals name the incident.
ON_INCIDENT = ("incident", "incident_id")


def gate(action: Action, *, on: tuple[str, str] | None = None) -> list[Any]:
    """``dependencies=gate(Action.X)`` on a route: its :func:`requires` gate."""
    return [Depends(requires(action, on=on))]
