"""CAP 1.2 in from other agencies (外部预警: meteorology, earthquake, water).

``POST /warnings/cap`` takes one CAP 1.2 file as the request body (application/cap+xml,
application/xml or text/xml) and stores it as an inbound warning; an Update or Cancel
retires the warnings it references. Unreadable or invalid files — not XML, a DTD or
entity (XXE, billion laughs), not valid against the OASIS schema, Ack/Error — are 422
with the reason. ``GET /warnings/inbound`` lists the active ones for the map.

Who may is the one policy (command/domain/policy.py): operators, commanders and admins
import (``inbound_warning.import``), planners only a drill's — CAP files with status
Exercise; they and planners read (``inbound_warning.read``); field users neither
(inbound warnings target no team). Refusals are audited (403). docs/warnings.md, "CAP
mapping". This router is included before the warnings router so that ``/warnings/cap``
and ``/warnings/inbound`` are not taken for a warning's id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel

from command.cap_schema import read_cap
from command.deps import State, forbid, requires
from command.domain import cap
from command.domain.cap import MAX_CAP_BYTES, CapRefused
from command.domain.policy import Action, allowed
from command.security import Principal
from command.services import inbound_warnings as service
from command.services.inbox import now

CAP_TYPES = ("application/cap+xml", "application/xml")

router = APIRouter(prefix="/warnings", tags=["warnings"])

Importer = Annotated[Principal, Depends(requires(Action.INBOUND_WARNING_IMPORT))]
Reader = Annotated[Principal, Depends(requires(Action.INBOUND_WARNING_READ))]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not (planners import only status Exercise; field users never)"},
    422: {"description": "unreadable or invalid CAP 1.2 (the reason says why)"},
}


class InboundOut(BaseModel):
    id: int
    sender: str
    identifier: str
    sent: str
    status: str
    msg_type: str
    refs: list[dict[str, str]]
    event: str
    categories: list[str]
    severity: str
    urgency: str
    certainty: str
    level: str | None
    colour: str | None  # the level's standard colour (#e60012 …), none without a level
    headline: str | None
    onset: str | None
    expires: str | None
    infos: list[dict[str, Any]]
    areas: list[dict[str, Any]]
    state: str
    replaced_by: int | None
    received_at: str
    received_by: str


class ImportOut(BaseModel):
    warning: InboundOut
    created: bool  # False: this message (sender, identifier) was imported before
    retired: list[int]  # the warnings this Update/Cancel replaced or ended


async def _body(request: Request) -> bytes:
    """The request body, never more than MAX_CAP_BYTES + 1 of it held."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_CAP_BYTES:
            too_large = f"file larger than {MAX_CAP_BYTES} bytes"
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, too_large)
    return bytes(data)


@router.post(
    "/cap",
    response_model=ImportOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "imported before: the stored warning"}, **ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string"}} for t in CAP_TYPES},
        }
    },
)
async def import_cap(request: Request, response: Response, state: State, who: Importer) -> dict[str, Any]:
    """导入: one CAP 1.2 alert from another agency, stored as an inbound warning."""
    raw = await _body(request)
    try:
        found = cap.inbound(read_cap(raw))
    except CapRefused as refused:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, refused.reason) from None
    if not allowed(who.role, Action.INBOUND_WARNING_IMPORT, drill=found.alert.status == "Exercise"):
        scope = "a drill's" if found.alert.status == "Exercise" else f"a status {found.alert.status}"
        reason = f"role {who.role} may not import {scope} warning"
        action = str(Action.INBOUND_WARNING_IMPORT)
        raise await forbid(state, who, action, reason, object_type="inbound_warning")
    async with state.pool.connection() as conn, conn.transaction():
        imported = await service.store(conn, found, raw, who)
    if not imported.created:
        response.status_code = status.HTTP_200_OK
    return {"warning": imported.warning, "created": imported.created, "retired": imported.retired}


@router.get("/inbound", response_model=list[InboundOut], responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_inbound(
    state: State, who: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 500
) -> list[dict[str, Any]]:
    """Active inbound warnings (status Actual, neither replaced, cancelled nor expired)."""
    async with state.pool.connection() as conn:
        return await service.list_active(conn, now(), limit=limit)
