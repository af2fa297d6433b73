"""``/field/api/*``: what the field page's outbox posts to (assets/30-wuwang-field.js).

Each route takes the team's token from the ``Authorization`` header, asks the command
service whose it is, and acts for that team — the team id always comes from the token,
never from the request. The outbox's id travels on as the message's ``id`` (the command
service keys idempotency on it), so a resend after a lost answer is stored once. Answers the outbox
understands: 2xx stored; 409 stored before (a repeat); 401 log in again; 4xx refused
(kept on the phone, shown); 501 the command service has no route for this yet (kept,
retried later); 503 unreachable (kept, retried).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dashboard.api import ApiError, Me
from dashboard.context import Console
from wuwang.contract import MAX_SHELTER_OCCUPANCY, SHELTER_ID_PATTERN, is_clock_refusal
from wuwang.geo import haversine_m

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # a downscaled photo is ~150 KB; a raw one is refused
_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
_DATA_URL = re.compile(r"^data:image/(jpeg|png|webp);base64,[A-Za-z0-9+/=]+$")

_In = TypeVar("_In", bound=BaseModel)

TeamStatus = Literal["available", "dispatched", "en_route", "on_scene", "returning", "off_duty"]


class _FieldIn(BaseModel):
    """Strict, as the command service's bodies (command/inputs.py): ``true`` is not a
    position and ``"1"`` not a number, so the page's door is not a looser one."""

    model_config = ConfigDict(strict=True)


class StatusIn(_FieldIn):
    id: str = Field(pattern=_ID)
    ts: str | None = Field(default=None, max_length=40)
    status: TeamStatus
    seq: int | None = Field(default=None, ge=0)
    incident_id: str | None = Field(default=None, max_length=64)


class ReportIn(_FieldIn):
    id: str = Field(pattern=_ID)
    ts: str | None = Field(default=None, max_length=40)
    category: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    description: str = Field(min_length=1, max_length=2000)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    position_from_order: bool = False
    photo: str | None = Field(default=None, max_length=MAX_BODY)
    incident_id: str | None = Field(default=None, max_length=64)
    # ticked "new event": not part of the current order's incident (which is the default)
    new_event: bool = False


class ShelterCountIn(_FieldIn):
    """A count of the people in a shelter near the team (应急避难场所 安置人数)."""

    id: str = Field(pattern=_ID)
    ts: str | None = Field(default=None, max_length=40)
    shelter_id: str = Field(pattern=SHELTER_ID_PATTERN)
    occupancy: int = Field(ge=0, le=MAX_SHELTER_OCCUPANCY)


class AckIn(_FieldIn):
    id: str = Field(pattern=_ID)
    ts: str | None = Field(default=None, max_length=40)
    order_id: str = Field(min_length=1, max_length=128)
    incident_id: str | None = Field(default=None, max_length=64)


def _answer(code: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=code)


def _from_error(exc: ApiError) -> JSONResponse:
    if exc.status == 0 or exc.status >= 500:
        answer = _answer(503, detail=exc.detail)
        if exc.retry_after is not None:  # the terminal keeps the change and retries then
            answer.headers["Retry-After"] = str(exc.retry_after)
        return answer
    if exc.missing_route:
        return _answer(501, detail="the command service has no route for this yet")
    return _answer(exc.status, detail=exc.detail)


#: A photo the command service refused, in the team's words (dashboard/i18n).
_PHOTO_REFUSALS = {413: "field.photo_too_large", 422: "field.photo_refused", 429: "field.photo_quota"}


def _photo_refused(exc: ApiError) -> JSONResponse:
    key = _PHOTO_REFUSALS.get(exc.status)
    return _from_error(exc) if key is None else _answer(exc.status, detail=exc.detail, i18n_key=key)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


def router(console: Console) -> APIRouter:
    api = console.api
    r = APIRouter(prefix="/field/api", include_in_schema=False)

    async def caller(request: Request) -> tuple[Me, str] | JSONResponse:
        token = _token(request)
        try:
            me = await api.me(token)
        except ApiError as exc:
            return _from_error(exc)
        if me is None or token is None:
            return _answer(401, detail="log in again")
        if not me.reports_from_the_field or not me.team_id:
            return _answer(403, detail="the field page is for rescue teams")
        return me, token

    async def body_of(request: Request, model: type[_In]) -> _In | JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _answer(413, detail="too large")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            return _answer(422, detail="; ".join(str(e["msg"]) for e in exc.errors())[:500])

    async def team_request(request: Request, model: type[_In]) -> tuple[Me, str, _In] | JSONResponse:
        """The calling team and its validated body, or the answer that refuses it."""
        who = await caller(request)
        if isinstance(who, JSONResponse):
            return who
        body = await body_of(request, model)
        if isinstance(body, JSONResponse):
            return body
        return (*who, body)

    @r.post("/status")
    async def status(request: Request) -> JSONResponse:
        got = await team_request(request, StatusIn)
        if isinstance(got, JSONResponse):
            return got
        me, token, body = got
        sent = {
            "status": body.status,
            "seq": body.seq,
            "ts": body.ts,
            "incident_id": body.incident_id,
            "id": body.id,
        }
        if body.status == "on_scene" and body.incident_id:
            # 到场: the incident moves on only through a team's arrival. Recorded first
            # and harmless to repeat, so a retried item can never lose it.
            try:
                await api.post(
                    f"/incidents/{quote(body.incident_id, safe='')}/arrived", token, {"team_id": me.team_id}
                )
            except ApiError as exc:
                if exc.status in (0, 401) or exc.status >= 500:
                    return _from_error(exc)
                log.info("arrival of %s at %s not recorded: %s", me.team_id, body.incident_id, exc)
        try:
            result = await api.post(
                f"/teams/{quote(me.team_id or '', safe='')}/status",
                token,
                {k: v for k, v in sent.items() if v is not None},
            )
        except ApiError as exc:
            return _from_error(exc)
        return _answer(200, ok=True, result=result)

    @r.post("/report")
    async def report(request: Request) -> JSONResponse:
        got = await team_request(request, ReportIn)
        if isinstance(got, JSONResponse):
            return got
        _me, token, body = got
        photo = _DATA_URL.match(body.photo) if body.photo is not None else None
        if body.photo is not None and photo is None:
            return _answer(422, detail="the photo must be a JPEG, PNG or WebP data URL")
        description = body.description
        if body.position_from_order:  # no GPS fix: the place is the order's, and the report says so
            description += " [位置取自指令 / position from the order]"
        sent: dict[str, Any] = {
            "id": body.id,
            "ts": body.ts,
            "category": body.category,
            "description": description,
            "lat": body.lat,
            "lon": body.lon,
        }
        if body.new_event:  # only when ticked: the command service's default is the order's incident
            sent["new_event"] = True
        try:
            if photo is not None and body.photo is not None:
                # Stored by its SHA-256 on the command service: a retried upload is stored once.
                try:
                    data = body.photo.split(",", 1)[1]
                    upload = {"content_type": f"image/{photo.group(1)}", "data_base64": data}
                    uploaded = await api.post("/field/photos", token, upload)
                except ApiError as exc:
                    return _photo_refused(exc)
                sent["photo_url"] = uploaded["url"]
            result = await api.post("/field/reports", token, {k: v for k, v in sent.items() if v is not None})
        except ApiError as exc:
            if exc.status == 422 and is_clock_refusal(exc.detail):  # the phone's clock, said so
                return _answer(422, detail=exc.detail, i18n_key="field.clock_wrong")
            return _from_error(exc)
        return _answer(200, ok=True, result=result)

    @r.post("/ack")
    async def ack(request: Request) -> JSONResponse:
        got = await team_request(request, AckIn)
        if isinstance(got, JSONResponse):
            return got
        _me, token, body = got
        try:
            result = await api.post(
                f"/field/orders/{quote(body.order_id, safe='')}/ack",
                token,
                {"id": body.id, "status": "accepted"},
            )
        except ApiError as exc:
            return _from_error(exc)
        return _answer(200, ok=True, result=result)

    @r.post("/shelter")
    async def shelter(request: Request) -> JSONResponse:
        """A shelter count: the command service applies the registry's rules (a count at
        capacity makes it full; a closed one holds no one: 422) once per id."""
        got = await team_request(request, ShelterCountIn)
        if isinstance(got, JSONResponse):
            return got
        _me, token, body = got
        try:
            result = await api.post(
                f"/shelters/{quote(body.shelter_id, safe='')}/occupancy",
                token,
                {"id": body.id, "occupancy": body.occupancy},
            )
        except ApiError as exc:
            return _from_error(exc)
        return _answer(200, ok=True, result=result)

    @r.get("/current")
    async def current(request: Request) -> JSONResponse:
        """The team's status and the order in force, for the page to show."""
        who = await caller(request)
        if isinstance(who, JSONResponse):
            return who
        me, token = who
        status: str | None = None
        position: dict[str, Any] | None = None
        base: dict[str, Any] | None = None
        try:
            team = await api.get(f"/teams/{quote(me.team_id or '', safe='')}", token)
            if isinstance(team, dict):
                status = team.get("status")
                position = last_position(team)
                base = last_position({"position": team.get("base")})
        except ApiError as exc:
            if exc.status in (0, 401) or exc.status >= 500:
                return _from_error(exc)
        try:
            incidents = await api.get("/incidents", token)
        except ApiError as exc:
            return _from_error(exc)
        order = current_order(me, incidents if isinstance(incidents, list) else [])
        if order is not None:
            try:
                orders = await api.get(f"/incidents/{quote(order['incident_id'], safe='')}/orders", token)
                for o in orders if isinstance(orders, list) else []:
                    if o.get("order_id") == order.get("order_id") or (
                        o.get("team_id") == me.team_id and o.get("status") in ("pending", "sent", "acked")
                    ):
                        order["status"] = o.get("status", order.get("status"))
                        order["order_id"] = o.get("order_id", order.get("order_id"))
                        body = o.get("message") or {}  # the order as the team received it
                        order["address"] = body.get("address") or order.get("address")
                        order["address_source"] = body.get("address_source")
            except ApiError:
                pass  # the incident itself is enough to go
        try:  # 预警 sent to this team and in force; the page works on without them
            found = await api.get("/warnings", token)
        except ApiError:
            found = []
        warnings = [field_warning(w) for w in found if isinstance(w, dict) and w.get("active")]
        try:  # 应急避难场所 near the team, for its occupancy form; the page works on without them
            registry = await api.get("/shelters", token)
        except ApiError:
            registry = []
        # the team's place, else its order's scene, else its base (a crew without a fix yet)
        scene = {"lat": order["lat"], "lon": order["lon"]} if order and order.get("lat") else None
        near = position or scene or base
        shelters = shelters_near(registry if isinstance(registry, list) else [], near)
        return _answer(
            200,
            team_id=me.team_id,
            status=status,
            order=order,
            position=position,
            warnings=warnings,
            shelters=shelters,
        )

    @r.get("/updates")
    async def updates(request: Request) -> JSONResponse:
        """What changed on the team's own incident (notes, level, plan), newest first:
        the page asks when the command service pushes a change of that incident."""
        who = await caller(request)
        if isinstance(who, JSONResponse):
            return who
        me, token = who
        try:
            incidents = await api.get("/incidents", token)
            order = current_order(me, incidents if isinstance(incidents, list) else [])
            if order is None:
                return _answer(200, incident_id=None, updates=[])
            detail = await api.get(f"/incidents/{quote(str(order['incident_id']), safe='')}", token)
        except ApiError as exc:
            return _from_error(exc)
        timeline = detail.get("timeline", []) if isinstance(detail, dict) else []
        return _answer(200, incident_id=order["incident_id"], updates=field_updates(timeline))

    return r


def field_warning(w: dict[str, Any]) -> dict[str, Any]:
    """What a crew's page shows of a warning (the command service's view, trimmed)."""
    return {k: w.get(k) for k in ("identifier", "level", "headline", "description", "instruction", "expires")}


#: Shelters farther than this from the team are not offered on its page.
SHELTER_RADIUS_M = 5000.0


def shelters_near(
    rows: list[dict[str, Any]], where: dict[str, Any] | None, *, limit: int = 5
) -> list[dict[str, Any]]:
    """The shelters a crew may count: the nearest ``limit`` within :data:`SHELTER_RADIUS_M`
    of its place (none without a place), with what its page shows of them."""
    if where is None:
        return []
    lat, lon = float(where["lat"]), float(where["lon"])
    out = []
    for s in rows:
        if not isinstance(s, dict) or not isinstance(s.get("lat"), int | float):
            continue
        d = haversine_m(lat, lon, float(s["lat"]), float(s["lon"]))
        if d <= SHELTER_RADIUS_M:
            shown = ("id", "name", "status", "occupancy", "capacity", "free")
            out.append({**{k: s.get(k) for k in shown}, "distance_m": round(d)})
    out.sort(key=lambda s: (s["distance_m"], s["id"]))
    return out[:limit]


def last_position(team: dict[str, Any]) -> dict[str, Any] | None:
    """The team's last known position as the command service has it (its trackers), for
    the page's distance and bearing until the phone itself has a fix."""
    live = team.get("position")
    if not isinstance(live, dict):
        return None
    lat, lon = live.get("lat"), live.get("lon")
    if isinstance(lat, bool) or isinstance(lon, bool):  # a bool is an int, and no latitude
        return None
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return {"lat": float(lat), "lon": float(lon), "at": live.get("at"), "stale": bool(live.get("stale"))}


#: The changes of its incident a crew is told about, and what of each it is shown.
_UPDATE_KINDS = {
    "note_added": lambda d: {"text": d.get("text")},
    "level_changed": lambda d: {"level": d.get("to_level")},
    # which plan, in both languages (the page picks its own): a crew reads its name
    "plan_activated": lambda d: {
        "level": d.get("level"),
        "title_zh": d.get("title_zh"),
        "title_en": d.get("title_en"),
    },
}


def field_updates(timeline: list[dict[str, Any]], limit: int = 5) -> list[dict[str, Any]]:
    """The latest notes, level changes and plan activations of a timeline, newest first."""
    out = []
    for e in reversed(timeline):
        shown = _UPDATE_KINDS.get(str(e.get("kind")))
        if shown is not None:
            out.append(
                {"seq": e.get("seq"), "kind": e.get("kind"), "at": e.get("at"), **shown(e.get("data") or {})}
            )
        if len(out) == limit:
            break
    return out


def current_order(me: Me, incidents: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest open incident this team is assigned to and not released from."""
    best: dict[str, Any] | None = None
    for inc in incidents:
        if not inc.get("is_open"):
            continue
        for a in inc.get("teams", []):
            if a.get("team_id") != me.team_id or a.get("released_at"):
                continue
            candidate = {
                "incident_id": inc.get("id"),
                "order_id": a.get("order_id"),
                "title": inc.get("title"),
                "level": inc.get("level"),
                "lat": inc.get("lat"),
                "lon": inc.get("lon"),
                "address": inc.get("address"),
                "status": "acked" if a.get("arrived_at") else "sent",
                "dispatched_at": a.get("dispatched_at"),
            }
            if best is None or str(candidate["dispatched_at"] or "") > str(best["dispatched_at"] or ""):
                best = candidate
    return best


def mount(server: FastAPI, console: Console) -> None:
    server.include_router(router(console))
