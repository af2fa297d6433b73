"""Field teams' photos: what an upload must be, and how much a team may upload a day.

A photo is stored only when its bytes decode, whole, as one frame of a JPEG, PNG or
WebP image of the type the phone declared, within the pixel limit; anything else
(a script named .jpg, a truncated file, a decompression bomb, an animation) is
refused with the reason. Only these three decoders are ever tried: the bytes never
reach Pillow's other plugins.

The daily quota is one row per team and day (``field_photo_usage``, migration 0011),
charged by a conditional upsert in the upload's transaction.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from PIL import Image
from psycopg import AsyncConnection

#: Pillow's format name → (the MIME type, the stored file's extension).
ALLOWED: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
#: A JPEG with a Multi-Picture index (as many phone cameras write) opens as MPO: it is
#: a JPEG, and its further pictures (a stereo pair, a depth map) are not an animation.
_JPEG_AS_WELL = "MPO"
MEDIA_TYPES = {extension: media for media, extension in ALLOWED.values()}
EXTENSIONS = {media: extension for media, extension in ALLOWED.values()}


class PhotoRefused(Exception):
    """Not a photo we store; ``too_large`` when it is the size that is refused (413)."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


@dataclass(frozen=True, slots=True)
class Photo:
    media_type: str
    extension: str
    width: int
    height: int


def inspect(data: bytes, declared: str, max_pixels: int) -> Photo:
    """Decode ``data`` whole; the photo it is, or ``PhotoRefused`` with the reason."""
    formats = list(ALLOWED)
    try:
        with warnings.catch_warnings():
            # Pillow only warns up to twice its own limit: a bomb must stop here, unread.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as image:
                kind, (width, height) = image.format, image.size
                frames = 1 if kind == _JPEG_AS_WELL else getattr(image, "n_frames", 1)
                kind = "JPEG" if kind == _JPEG_AS_WELL else kind
                if width * height > max_pixels:
                    raise PhotoRefused(
                        f"photo of {width}×{height} pixels: more than {max_pixels} pixels", too_large=True
                    )
                image.verify()
            with Image.open(io.BytesIO(data), formats=formats) as image:
                image.load()  # every pixel: a truncated or forged body fails here
    except PhotoRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRefused(f"photo of more than {max_pixels} pixels", too_large=True) from None
    except Exception:  # Pillow raises many kinds on hostile bytes; all mean "not an image"
        raise PhotoRefused("the data is not a JPEG, PNG or WebP image that decodes") from None
    if kind not in ALLOWED:
        raise PhotoRefused("the data is not a JPEG, PNG or WebP image")
    media_type, extension = ALLOWED[kind]
    if media_type != declared:
        raise PhotoRefused(f"the data is {media_type}, not {declared} as declared")
    if frames != 1:
        raise PhotoRefused(f"an animated image ({frames} frames) is not a photo")
    return Photo(media_type, extension, width, height)


async def charge(conn: AsyncConnection[Any], team_id: str, day: date, size: int, quota: int) -> bool:
    """Add one photo of ``size`` bytes to the team's day, unless that passes ``quota``
    (then nothing is added). Concurrent uploads of a team wait on its row."""
    if size > quota:
        return False
    cur = await conn.execute(
        "INSERT INTO field_photo_usage (team_id, day, bytes, photos) VALUES (%s, %s, %s, 1)"
        " ON CONFLICT (team_id, day) DO UPDATE"
        " SET bytes = field_photo_usage.bytes + EXCLUDED.bytes, photos = field_photo_usage.photos + 1"
        " WHERE field_photo_usage.bytes + EXCLUDED.bytes <= %s"
        " RETURNING bytes",
        (team_id, day, size, quota),
    )
    return await cur.fetchone() is not None


async def used(conn: AsyncConnection[Any], team_id: str, day: date) -> int:
    cur = await conn.execute(
        "SELECT bytes FROM field_photo_usage WHERE team_id = %s AND day = %s", (team_id, day)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


#: Served photos: the type the name says, never sniffed, never run as a page.
SERVED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=86400",
}

#: A stored photo's URL as the upload answers it; only such photos are served.
_STORED_URL = re.compile(r"^/field/photos/([0-9a-f]{64}\.(?:jpg|png|webp))$")


def stored_name(url: str | None) -> str | None:
    """The stored file's name of a photo URL this service gave out, else None (a URL
    of somewhere else is never fetched or served)."""
    match = _STORED_URL.match(url or "")
    return match.group(1) if match else None


def stored_path(data_dir: Path, name: str) -> Path | None:
    """Where a stored photo is, if it is there (``name`` already checked by its pattern)."""
    target = data_dir / "photos" / name
    return target if target.is_file() else None
