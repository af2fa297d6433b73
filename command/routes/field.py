"""/field: what the field teams' mobile page sends when it has no MQTT client.

- acknowledging an order is the same act as an ack on ``teams/v1/<id>/ack``;
- a report is put on the MQTT path the devices use (``teams/v1/<own id>/report``,
  through the order outbox, so nothing is lost while the broker is away): ingest
  stores it, raises the alarm, and the command service takes it as any other
  report — one path, one record. Its ``id`` is chosen by the phone, so a report
  sent twice after a flaky network is stored once;
- photos are uploaded first (base64 JSON, so the page needs no multipart) and the
  report carries their URL.

Field users only, for their own team (the token says which).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from command import audit
from command.deps import Caller, State, forbid, gate
from command.domain.policy import Action, allowed_anywhere
from command.inputs import FROM_TEXT, ApiIn, Latitude, Longitude
from command.services import photos
from command.services.dispatch import OrderAck, apply_ack, wake_relay
from wuwang.contract import ContractError, TsWindow, encode, parse_message, team_topic

router = APIRouter(prefix="/field", tags=["field"])

#: The schema's bound on an upload; COMMAND_PHOTO_MAX_BYTES is the limit applied.
MAX_PHOTO_BYTES = 5 * 1024 * 1024
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PhotoName = Annotated[str, Path(pattern=r"^[0-9a-f]{64}\.(jpg|png|webp)$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "field users only, for their own team"},
    404: {"description": "no such order or photo"},
    409: {"description": "the order is not this team's or no longer in force"},
    413: {"description": "photo too large (bytes or pixels)"},
    422: {
        "description": "invalid report, or a photo that is not a JPEG, PNG or WebP image of the declared type"
    },
    429: {"description": "the team's photo quota for the day is used up (Retry-After: seconds to midnight)"},
}


class AckIn(ApiIn):
    id: str = Field(min_length=1, max_length=64, description="chosen by the phone; repeats are harmless")
    status: Literal["accepted", "refused"] = "accepted"
    reason: str | None = Field(default=None, max_length=500)


class AckOut(BaseModel):
    applied: bool
    outcome: str


class ReportIn(ApiIn):
    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="chosen by the phone (idempotent)",
    )
    category: str = Field(min_length=1, max_length=64)
    description: str = Field(max_length=4000)
    lat: Latitude
    lon: Longitude
    photo_url: str | None = Field(default=None, max_length=2048)
    ts: Annotated[datetime | None, FROM_TEXT] = Field(
        default=None, description="when it was written (offline queue)"
    )
    new_event: bool | None = Field(
        default=None,
        description="true: a new event (its own incident); left out: the incident of the team's order",
    )


class ReportOut(BaseModel):
    id: str
    topic: str
    queued: bool


class PhotoIn(ApiIn):
    content_type: Literal["image/jpeg", "image/png", "image/webp"]
    data_base64: str = Field(min_length=4, max_length=MAX_PHOTO_BYTES * 4 // 3 + 8)


class PhotoOut(BaseModel):
    url: str
    bytes: int


async def _team_of(state: State, who: Caller, action: Action) -> str:
    if who.team_id is None or not allowed_anywhere(who.role, action):
        raise await forbid(state, who, action, "only a field team's own account may do this")
    return who.team_id


@router.post(
    "/orders/{order_id}/ack", response_model=AckOut, responses=ERRORS, dependencies=gate(Action.FIELD_ACK)
)
async def acknowledge(order_id: OrderId, body: AckIn, state: State, who: Caller) -> AckOut:
    """确认接令: the team accepts (or refuses, with a reason) its dispatch order."""
    team_id = await _team_of(state, who, Action.FIELD_ACK)
    now = datetime.now(UTC)
    outcome = await apply_ack(
        state,
        team_id,
        OrderAck(id=body.id, ts=now, order_id=order_id, status=body.status, reason=body.reason),
        now,
        via="http",
    )
    if outcome.why == "unknown order":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id}")
    if outcome.why in ("not this team's order", "not in force"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"order {order_id}: {outcome.why}")
    return AckOut(applied=outcome.applied, outcome=outcome.why)


@router.post(
    "/reports",
    response_model=ReportOut,
    status_code=202,
    responses=ERRORS,
    dependencies=gate(Action.FIELD_REPORT),
)
async def report(body: ReportIn, state: State, who: Caller) -> ReportOut:
    """现场报告: queued for the broker on the team's own report topic."""
    team_id = await _team_of(state, who, Action.FIELD_REPORT)
    topic = team_topic(team_id, "report")
    message: dict[str, Any] = {
        "id": body.id,
        "ts": (body.ts or datetime.now(UTC)).isoformat(),
        "reporter": who.user_id,
        "category": body.category,
        "description": body.description,
        "lat": body.lat,
        "lon": body.lon,
    }
    if body.photo_url:
        message["photo_url"] = body.photo_url
    if body.new_event is not None:
        message["new_event"] = body.new_event
    payload = encode(message)
    try:
        # The ingest's rules and its time window: a report it would dead-letter is refused
        # here, where the team still hears why, instead of "queued" and never seen.
        window = TsWindow.of(state.settings.shared.retention_days, state.settings.ingest.clock_skew_s)
        parse_message(topic, payload, datetime.now(UTC), window)
    except ContractError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason) from None
    async with state.pool.connection() as conn, conn.transaction():
        await conn.execute("INSERT INTO mqtt_outbox (topic, payload) VALUES (%s, %s)", (topic, payload))
        await conn.execute("SELECT pg_notify('wuwang_outbox', '')")
        await audit.record(
            conn,
            who,
            "field.report",
            object_type="field_report",
            object_id=body.id,
            detail={"team_id": team_id, "category": body.category},
        )
    wake_relay(state)
    return ReportOut(id=body.id, topic=topic, queued=True)


def _photo_dir(state: State) -> FsPath:
    path = state.settings.shared.data_dir / "photos"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(), now.tzinfo)
    return max(1, int((tomorrow - now).total_seconds()))


async def _over_quota(
    conn: AsyncConnection[Any], team_id: str, now: datetime, size: int, quota: int
) -> HTTPException:
    spent = await photos.used(conn, team_id, now.date())
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"team {team_id} has uploaded {spent} bytes of photos today; this one ({size} bytes)"
        f" would pass the daily quota of {quota} bytes",
        headers={"Retry-After": str(_seconds_to_midnight(now))},
    )


@router.post(
    "/photos",
    response_model=PhotoOut,
    status_code=201,
    responses=ERRORS,
    dependencies=gate(Action.FIELD_PHOTO),
)
async def upload_photo(body: PhotoIn, state: State, who: Caller) -> PhotoOut:
    """A photo for a report; stored by its SHA-256, so a retried upload is stored once.

    The bytes must decode as one frame of the declared type (JPEG, PNG or WebP) within
    COMMAND_PHOTO_MAX_BYTES and COMMAND_PHOTO_MAX_PIXELS (413 above, 422 when they are
    not such an image), and the team's photos of the day must stay within
    COMMAND_PHOTO_QUOTA_BYTES (429, with Retry-After: the next day in COMMAND_TIMEZONE)."""
    team_id = await _team_of(state, who, Action.FIELD_PHOTO)
    settings = state.settings
    try:
        data = base64.b64decode(body.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "data_base64 is not base64") from None
    if len(data) > settings.command.photo_max_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"photo larger than {settings.command.photo_max_bytes} bytes"
        )
    # Named by content and the declared type (inspect makes them agree): a retry of a
    # photo already stored is answered at once, stored once, counted once.
    name = f"{hashlib.sha256(data).hexdigest()}.{photos.EXTENSIONS[body.content_type]}"
    target = _photo_dir(state) / name
    if target.exists():
        return PhotoOut(url=f"/field/photos/{name}", bytes=len(data))
    now = datetime.now(ZoneInfo(settings.command.timezone))
    async with state.pool.connection() as conn:
        # Over the quota already: answered before the decoding (a phone retries a 429).
        if await photos.used(conn, team_id, now.date()) + len(data) > settings.command.photo_quota_bytes:
            raise await _over_quota(conn, team_id, now, len(data), settings.command.photo_quota_bytes)
    try:
        # Decoding takes a moment (and a thread's memory): off the event loop.
        photo = await run_in_threadpool(
            photos.inspect, data, body.content_type, settings.command.photo_max_pixels
        )
    except photos.PhotoRefused as exc:
        code = status.HTTP_413_CONTENT_TOO_LARGE if exc.too_large else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, exc.reason) from None
    async with state.pool.connection() as conn, conn.transaction():
        if not await photos.charge(conn, team_id, now.date(), len(data), settings.command.photo_quota_bytes):
            raise await _over_quota(conn, team_id, now, len(data), settings.command.photo_quota_bytes)
        await audit.record(
            conn,
            who,
            "field.photo",
            object_type="photo",
            object_id=name,
            detail={"team_id": team_id, "bytes": len(data), "width": photo.width, "height": photo.height},
        )
        # Written whole under a temporary name, then renamed: a reader never sees half a
        # photo, and a failed write rolls the quota charge back with the transaction.
        partial = target.with_name(f".{name}.{uuid.uuid4().hex}.part")
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return PhotoOut(url=f"/field/photos/{name}", bytes=len(data))


@router.get(
    "/photos/{name}",
    response_class=FileResponse,
    responses=ERRORS,
    dependencies=gate(Action.FIELD_PHOTO_READ),
)
async def get_photo(name: PhotoName, state: State, who: Caller) -> FileResponse:
    """A report's photo, for anyone signed in: sent as the image type its name says,
    with ``X-Content-Type-Options: nosniff`` (a browser never guesses another type)."""
    del who  # any signed-in user
    target = _photo_dir(state) / name
    if not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
    media_type = photos.MEDIA_TYPES[name.rsplit(".", 1)[1]]
    return FileResponse(target, media_type=media_type, headers=photos.SERVED_HEADERS)
