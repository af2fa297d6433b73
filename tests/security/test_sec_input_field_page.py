"""The field page's door (dashboard/field_api.py): as strict as the command service's
bodies, and a photo the command service refuses is said in the team's language (the
413/422/429 passed on with a catalogue key, zh-CN and en)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from tests.dashboard.test_console_units import FakeCommand, field_client

CATALOGUES = Path(__file__).resolve().parents[2] / "wuwang" / "i18n"
REPORT = {
    "id": "web-report-9",
    "category": "fire",
    "description": "三楼起火",
    "lat": 32.05,
    "lon": 112.14,
    "photo": "data:image/jpeg;base64,/9j/4AAQ",
}


class RefusingPhotos(FakeCommand):
    def __init__(self, status: int) -> None:
        super().__init__(reports=True)
        self.status = status

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/field/photos":
            self.seen.append((request.method, request.url.path, {}))
            return httpx2.Response(self.status, json={"detail": "refused by the command service"})
        return super().__call__(request)


@pytest.mark.parametrize(
    ("status", "code"),
    [(413, "field.photo_too_large"), (422, "field.photo_refused"), (429, "field.photo_quota")],
)
def test_a_refused_photo_is_said_in_the_teams_words(status: int, code: str) -> None:
    fake = RefusingPhotos(status)
    r = field_client(fake).post("/field/api/report", headers={"Authorization": "Bearer team"}, json=REPORT)
    assert r.status_code == status  # 429: the page keeps the report and tries again later
    assert r.json() == {"detail": "refused by the command service", "i18n_key": code}
    assert not any(path == "/field/reports" for _m, path, *_ in fake.seen)  # not sent without it
    for name in ("zh_CN", "en"):
        catalogue = json.loads((CATALOGUES / f"{name}.json").read_text(encoding="utf-8"))
        assert catalogue[code].strip(), (name, code)


@pytest.mark.parametrize(
    ("path", "changes"),
    [
        ("/field/api/report", {"lat": True}),
        ("/field/api/report", {"lon": "112.14"}),
        ("/field/api/report", {"position_from_order": "yes"}),
        ("/field/api/status", {"seq": True}),
        ("/field/api/status", {"seq": "5"}),
    ],
)
def test_loose_scalars_are_refused_at_the_field_page(path: str, changes: dict[str, object]) -> None:
    fake = FakeCommand(reports=True)
    body = {**REPORT, "photo": None} if path.endswith("report") else {"id": "s-1", "status": "en_route"}
    r = field_client(fake).post(path, headers={"Authorization": "Bearer team"}, json={**body, **changes})
    assert r.status_code == 422, r.text
    assert not any(method == "POST" for method, *_ in fake.seen)  # nothing forwarded


def test_json_native_values_still_pass_the_field_page() -> None:
    fake = FakeCommand(reports=True)
    body = {**REPORT, "photo": None, "lat": 32, "lon": 112}
    r = field_client(fake).post("/field/api/report", headers={"Authorization": "Bearer team"}, json=body)
    assert r.status_code == 200, r.text
    sent = next(s for s in fake.seen if s[1] == "/field/reports")
    assert (sent[2]["lat"], sent[2]["lon"]) == (32, 112)
