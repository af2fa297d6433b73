"""``/desk/photos/<incident>/<name>``: a field report's photo for the desk, fetched with
the desk user's token, server side.

The browser's ``<img>`` cannot carry the token, so the desk's photo component
(``assets/32-wuwang-photos.js``) fetches this route with the ``Authorization`` header
and shows the answer as a blob. The command service decides who may see it
(``GET /incidents/<id>/photos/<name>``: whoever may see the incident, and only a photo
one of its reports carries); the answer is passed through with its image type,
``nosniff`` and no caching by shared caches.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from dashboard.api import ApiError
from dashboard.context import Console
from dashboard.report_proxy import _token as bearer_token

_INCIDENT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PHOTO = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")
_MAX_BYTES = 8 * 1024 * 1024  # far above what an upload may be (COMMAND_PHOTO_MAX_BYTES)


def router(console: Console) -> APIRouter:
    r = APIRouter(prefix="/desk/photos")
    api = console.api

    @r.get("/{incident_id}/{name}")
    async def photo(request: Request, incident_id: str, name: str) -> Response:
        if not _INCIDENT.fullmatch(incident_id) or not _PHOTO.fullmatch(name):
            return JSONResponse({"detail": "no such photo"}, status_code=404)
        token = bearer_token(request)
        if token is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        try:
            upstream = await api.open_stream(f"/incidents/{quote(incident_id, safe='')}/photos/{name}", token)
        except ApiError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=503)
        try:
            body = await upstream.aread()
        finally:
            await upstream.aclose()
        if upstream.status_code >= 400 or len(body) > _MAX_BYTES:
            if upstream.status_code == 401:
                api.forget(token)
            status = upstream.status_code if upstream.status_code >= 400 else 502
            return JSONResponse({"detail": body.decode("utf-8", "replace")[:500]}, status_code=status)
        return Response(
            body,
            media_type=upstream.headers.get("content-type", "application/octet-stream"),
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
        )

    return r


def mount(server: FastAPI, console: Console) -> None:
    server.include_router(router(console))
