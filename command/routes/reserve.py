"""/reserve and an incident's holdings: warehouses, items, lots, alerts; reserve, issue,
return, consume and release stock for an incident.

Reading the reserve: every role but field. Moving stock: operators, commanders and
admins on any incident; planners only on exercise incidents (virtual holds, see
command.services.reserve); field users never. Refusals are 403 with an audit record.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import Field

from command.deps import State, forbid, requires
from command.domain.incidents import DomainError
from command.domain.policy import Action
from command.domain.reserve import WarehouseKind
from command.inputs import ApiIn, Text
from command.routes.incidents import IncidentId, domain_error
from command.security import Principal
from command.services import incidents as incident_service
from command.services import reserve as service
from command.services.incident_store import NotFound

router = APIRouter(tags=["reserve"])

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
LotId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

Reader = Annotated[Principal, Depends(requires(Action.RESERVE_READ))]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not do this (to this incident)"},
    404: {"description": "no such incident, lot, or allocation of the lot to the incident"},
    409: {"description": "the stock does not allow it (now): the body says why and what is short"},
    422: {"description": "invalid request: unknown item or warehouse, closed incident"},
}


class ReserveRequest(ApiIn):
    item_code: Code
    quantity: int = Field(gt=0, le=10_000_000, description="in the item's unit")
    warehouse_id: Ident | None = Field(default=None, description="only from this warehouse")


class MoveRequest(ApiIn):
    quantity: int = Field(gt=0, le=10_000_000)


Reserver = Annotated[Principal, Depends(requires(Action.RESERVE_RESERVE))]


def _error(exc: service.StockConflict | DomainError | NotFound) -> HTTPException:
    if isinstance(exc, service.StockConflict):
        return HTTPException(status.HTTP_409_CONFLICT, exc.detail)
    return domain_error(exc)


@router.get("/reserve/warehouses", responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_warehouses(
    state: State, who: Reader, kind: WarehouseKind | None = None
) -> list[dict[str, Any]]:
    """Warehouses of the three kinds (政府实物储备 / 企业协议储备 / 产能储备), where they are,
    and what they hold per item (or can produce per day)."""
    return await service.warehouses(state, str(kind) if kind else None)


@router.get("/reserve/items", responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_items(state: State, who: Reader) -> list[dict[str, Any]]:
    """The catalogue with city-wide totals: on hand, reserved, usable (unexpired and not
    reserved), expired, production capacity per day; ``low`` when usable < min_stock."""
    return await service.items(state)


@router.get("/reserve/stock", responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_stock(
    state: State,
    who: Reader,
    item_code: Annotated[Text | None, Query(max_length=64)] = None,
    warehouse_id: Annotated[Text | None, Query(max_length=64)] = None,
    include_empty: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[dict[str, Any]]:
    """Stock lots, earliest expiry first per item, with available, reserved and expiry."""
    return await service.lots(
        state, item_code=item_code, warehouse_id=warehouse_id, include_empty=include_empty, limit=limit
    )


@router.get("/reserve/alerts", responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_alerts(
    state: State,
    who: Reader,
    within_days: Annotated[
        int | None, Query(ge=0, le=366, description="default COMMAND_EXPIRING_DAYS")
    ] = None,
) -> dict[str, Any]:
    """Low stock city-wide (usable < the item's min_stock), lots expiring within N days,
    lots already expired (dispose or rotate)."""
    return await service.alerts(state, within_days)


@router.get("/incidents/{incident_id}/reserve", responses=ERRORS)
async def incident_reserve(incident_id: IncidentId, state: State, who: Reader) -> dict[str, Any]:
    """What the incident holds, lot by lot, and every stock movement for it."""
    try:
        inc = await service.incident_scope(state, incident_id)
    except NotFound as exc:
        raise _error(exc) from None
    if not incident_service.visible_incident(who, inc.body):
        raise await forbid(
            state,
            who,
            "reserve.read",
            f"{who.role} may not see incident {incident_id}",
            object_type="incident",
            object_id=incident_id,
        )
    return await service.incident_allocations(state, incident_id)


@router.post("/incidents/{incident_id}/reserve", status_code=201, responses=ERRORS)
async def reserve_stock(
    incident_id: IncidentId, body: ReserveRequest, state: State, who: Reserver
) -> dict[str, Any]:
    """Reserve stock for the incident, earliest expiry first, never an expired lot; all
    or nothing. 409 with ``short`` when there is not enough."""
    try:
        done = await service.reserve_for_incident(
            state, who, incident_id, body.item_code, body.quantity, body.warehouse_id
        )
    except (service.StockConflict, DomainError, NotFound) as exc:
        raise _error(exc) from None
    return {
        "incident_id": done.incident_id,
        "item_code": done.item_code,
        "quantity": done.quantity,
        "picks": done.picks,
        "exercise_id": done.exercise_id,
        "virtual": done.exercise_id is not None,
        "item_totals": done.totals,
    }


def _move_endpoint(movement: Literal["release", "issue", "return", "consume"]) -> Any:
    # A default, not an annotation: annotations are resolved from module globals.
    mover = Depends(requires(Action(f"reserve.{movement}")))

    async def endpoint(
        incident_id: IncidentId,
        lot_id: LotId,
        body: MoveRequest,
        state: State,
        who: Principal = mover,
    ) -> dict[str, Any]:
        try:
            moved = await service.move_stock(state, who, incident_id, lot_id, movement, body.quantity)
        except (service.StockConflict, DomainError, NotFound) as exc:
            raise _error(exc) from None
        return {
            "incident_id": moved.incident_id,
            "lot_id": moved.lot_id,
            "item_code": moved.item_code,
            "movement": moved.movement,
            "quantity": moved.quantity,
            "allocation": moved.allocation,
            "lot": moved.lot,
        }

    return endpoint


_MOVES: tuple[tuple[Literal["release", "issue", "return", "consume"], str], ...] = (
    ("issue", "出库: goods leave the warehouse for the incident (only what it reserved)"),
    ("return", "归还: unused goods come back into the lot"),
    ("consume", "消耗: issued goods were used up at the scene"),
    ("release", "释放: give back a reservation that will not be issued"),
)
for _movement, _summary in _MOVES:
    router.add_api_route(
        f"/incidents/{{incident_id}}/reserve/{{lot_id}}/{_movement}",
        _move_endpoint(_movement),
        methods=["POST"],
        responses=ERRORS,
        summary=_summary,
        name=f"reserve_{_movement}",
    )
