"""The map's static layers as plain files: ``GET /geo/<layer>.json?b=<bucket>&sig=<hmac>``.

The router (which has verified the user's token with the command service) draws the
map with each layer's URL signed for a window of time; dash-leaflet fetches the files
itself, in parallel, straight into its layers. The JSON is encoded once per
registries refresh and served as bytes — it never passes through a Dash callback (no
server-side encoding per user, nothing held in the browser's Dash state), which is
what lets the first render of 10,000 points keep up with a bare Leaflet page.

A URL is signed with ``DASHBOARD_SECRET`` for the current time bucket (10 minutes) and
stays valid for the next one too, so a reload within the bucket hits the browser's
cache. Whoever holds a signed URL can read that layer until it expires, as anyone
holding a token can; the layers are registry positions, not incidents.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from fastapi import APIRouter, FastAPI, Response

from dashboard.context import Console
from dashboard.layers import static_files
from wuwang.settings import dashboard_secret

BUCKET_S = 600
LAYERS = static_files()  # the registry's static layers (dashboard/layers.py)
_NAME = re.compile(r"^[a-z_-]{1,32}$")


def _mac(secret: str, layer: str, bucket: int) -> str:
    return hmac.new(secret.encode(), f"geo:{layer}:{bucket}".encode(), hashlib.sha256).hexdigest()[:32]


def signed_url(secret: str, layer: str, now: float | None = None) -> str:
    bucket = int((now if now is not None else time.time()) // BUCKET_S)
    return f"/geo/{layer}.json?b={bucket}&sig={_mac(secret, layer, bucket)}"


def valid(secret: str, layer: str, bucket: int, sig: str, now: float | None = None) -> bool:
    current = int((now if now is not None else time.time()) // BUCKET_S)
    if bucket not in (current, current - 1):
        return False
    return hmac.compare_digest(sig, _mac(secret, layer, bucket))


def urls(console: Console) -> dict[str, str]:
    secret = dashboard_secret(console.settings)
    return {layer: signed_url(secret, layer) for layer in LAYERS}


def router(console: Console) -> APIRouter:
    secret = dashboard_secret(console.settings)
    r = APIRouter(include_in_schema=False)

    @r.get("/geo/{name}.json")
    async def layer(name: str, b: int = 0, sig: str = "") -> Response:
        if not _NAME.match(name) or name not in LAYERS or not valid(secret, name, b, sig):
            return Response(
                status_code=403, content=b'{"detail":"not signed or expired"}', media_type="application/json"
            )
        body = await console.registries.encoded(name)
        return Response(
            content=body,
            media_type="application/json",
            headers={"Cache-Control": f"private, max-age={BUCKET_S}"},
        )

    return r


def mount(server: FastAPI, console: Console) -> None:
    server.include_router(router(console))
