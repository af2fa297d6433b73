"""Photo uploads: only bytes that decode as one frame of the declared JPEG, PNG or
WebP are stored; decompression bombs are refused unread; every served photo says
``nosniff``; one team's photos are bounded per day, also under concurrent uploads."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from psycopg_pool import AsyncConnectionPool

from command.app import create_app
from command.services import photos
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM, _seed_minimal_city
from wuwang.settings import Settings

Headers = Callable[[str], dict[str, str]]
QUOTA = 3000


def image(kind: str = "PNG", size: tuple[int, int] = (16, 12), colour: int = 0, **options: object) -> bytes:
    out = io.BytesIO()
    # noise-free but distinct per colour: every call with another colour is another file
    Image.new("RGB", size, (colour % 256, (colour // 256) % 256, 90)).save(out, format=kind, **options)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width``×``height`` pixels, in a few hundred bytes."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    body = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(account="command", data_dir=tmp_path, command_photo_quota_bytes=QUOTA)


def _upload(client: TestClient, headers: dict[str, str], data: bytes, content_type: str = "image/png") -> Any:
    return client.post(
        "/field/photos", headers=headers, json={"content_type": content_type, "data_base64": _b64(data)}
    )


def _stored(settings: Settings) -> list[str]:
    folder = settings.shared.data_dir / "photos"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        (b"<html><script>alert(document.cookie)</script></html>", "image/png", "not a JPEG, PNG or WebP"),
        (b"\x89PNG\r\n\x1a\n<script>alert(1)</script>", "image/png", "not a JPEG, PNG or WebP"),
        (b"\xff\xd8\xff\xe0" + b"<svg onload=alert(1)>" * 20, "image/jpeg", "not a JPEG, PNG or WebP"),
        (image("PNG")[:-40], "image/png", "not a JPEG, PNG or WebP"),  # truncated
        (image("GIF"), "image/png", "not a JPEG, PNG or WebP"),  # a decoder we never try
        (image("PNG"), "image/jpeg", "is image/png, not image/jpeg"),
        (image("JPEG"), "image/webp", "is image/jpeg, not image/webp"),
    ],
)
def test_what_is_not_the_declared_image_is_refused(
    client: TestClient, login: Headers, settings: Settings, data: bytes, content_type: str, why: str
) -> None:
    r = _upload(client, login(FIELD_TEAM), data, content_type)
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]
    assert _stored(settings) == []


def test_an_animation_is_not_a_photo(client: TestClient, login: Headers, settings: Settings) -> None:
    out = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), (n * 40, 0, 0)) for n in range(3)]
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])
    r = _upload(client, login(FIELD_TEAM), out.getvalue())
    assert r.status_code == 422 and "3 frames" in r.json()["detail"]
    assert _stored(settings) == []


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (10_000, 9_000), (7_000, 7_000)])
def test_a_decompression_bomb_is_refused_unread(
    client: TestClient, login: Headers, settings: Settings, width: int, height: int
) -> None:
    """Beyond Pillow's own limit (twice it, once it) and beyond the service's."""
    bomb = png_bomb(width, height)
    assert len(bomb) < 1000
    r = _upload(client, login(FIELD_TEAM), bomb)
    assert r.status_code == 413, r.text
    assert "pixels" in r.json()["detail"]
    assert _stored(settings) == []


def test_pixel_limit_is_a_setting(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(account="command", data_dir=tmp_path, command_photo_max_pixels=100)
    assert settings.shared.database_url
    _seed_minimal_city(settings.shared.database_url)
    with TestClient(create_app(settings)) as c:
        token = c.post("/auth/login", json={"username": FIELD_TEAM, "password": "demo"}).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        assert _upload(c, headers, image(size=(10, 10))).status_code == 201
        assert _upload(c, headers, image(size=(11, 10))).status_code == 413


def test_allowed_photos_are_stored_and_served_with_nosniff(
    client: TestClient, login: Headers, settings: Settings
) -> None:
    field, operator = login(FIELD_TEAM), login("operator1")
    for kind, media in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        data = image(kind)
        r = _upload(client, field, data, media)
        assert r.status_code == 201, r.text
        url = r.json()["url"]
        served = client.get(url, headers=operator)
        assert served.status_code == 200 and served.content == data
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-type"] == media
        assert "sandbox" in served.headers["content-security-policy"]
    assert len(_stored(settings)) == 3


def test_a_phone_jpeg_with_a_multi_picture_index_is_a_jpeg(
    client: TestClient, login: Headers, settings: Settings
) -> None:
    out = io.BytesIO()
    pictures = [Image.new("RGB", (16, 12), (n * 90, 20, 20)) for n in range(2)]
    pictures[0].save(out, format="MPO", save_all=True, append_images=pictures[1:])
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        assert opened.format == "MPO"
    r = _upload(client, login(FIELD_TEAM), out.getvalue(), "image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["url"].endswith(".jpg") and len(_stored(settings)) == 1


def test_a_file_stored_before_the_checks_is_still_served_as_an_image(
    client: TestClient, login: Headers, settings: Settings
) -> None:
    """A script stored under a .png name (before uploads were decoded) is never run
    by a browser: the type is the name's, nosniff, and a sandbox."""
    name = "a" * 64 + ".png"
    (settings.shared.data_dir / "photos").mkdir(parents=True, exist_ok=True)
    (settings.shared.data_dir / "photos" / name).write_bytes(b"<script>alert(1)</script>")
    served = client.get(f"/field/photos/{name}", headers=login("operator1"))
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"


def test_daily_quota_per_team(client: TestClient, login: Headers, settings: Settings) -> None:
    field, other = login(FIELD_TEAM), login("T-FIRE-02")
    sent = 0
    for colour in range(200):  # each 80 bytes or so: the quota (3000) ends it long before
        data = image(colour=colour)
        r = _upload(client, field, data)
        if r.status_code != 201:
            break
        sent += len(data)
        assert sent <= QUOTA
    assert r.status_code == 429, r.text
    assert "quota" in r.json()["detail"] and FIELD_TEAM in r.json()["detail"]
    assert 0 < int(r.headers["retry-after"]) <= 86_400
    assert sent + len(data) > QUOTA and sent > 0
    # a retry of a photo already stored is answered and not counted again
    assert _upload(client, field, image(colour=0)).status_code == 201
    # the other team has its own quota (the same bytes are stored already: not charged)
    assert _upload(client, other, image(colour=0)).status_code == 201
    assert _upload(client, other, data).status_code == 201
    with psycopg.connect(settings.shared.database_url or "") as conn:
        rows: dict[str, int] = dict(conn.execute("SELECT team_id, bytes FROM field_photo_usage").fetchall())
    assert rows == {FIELD_TEAM: sent, OTHER_TEAM: len(data)}


def test_concurrent_uploads_cannot_pass_the_quota(settings: Settings) -> None:
    """The charge itself under contention: 40 uploads of 100 bytes at once against a
    quota of 1000, through 8 connections: exactly 10 are admitted."""
    url = settings.shared.database_url or ""
    day = date(2026, 12, 7)

    async def race() -> list[bool]:
        async with AsyncConnectionPool(url, min_size=8, max_size=8, open=False) as pool:

            async def one() -> bool:
                async with pool.connection() as conn, conn.transaction():
                    admitted = await photos.charge(conn, FIELD_TEAM, day, 100, 1000)
                    await asyncio.sleep(0.01)  # hold the row a moment, as a file write would
                    return admitted

            return await asyncio.gather(*(one() for _ in range(40)))

    results = asyncio.run(race())
    assert results.count(True) == 10
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT bytes, photos FROM field_photo_usage WHERE team_id = %s", (FIELD_TEAM,)
        ).fetchone()
    assert row == (1000, 10)
