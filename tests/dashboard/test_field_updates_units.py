"""The field page's updates from command and the desk's photo strip, with plain inputs."""

from __future__ import annotations

from typing import Any

from dashboard.field_api import field_updates
from dashboard.layout.photos import photo_names, report_photos

SHA = "a" * 64


def event(seq: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "at": f"2026-12-07T09:00:{seq:02d}+00:00", "data": data}


def test_updates_are_the_latest_notes_levels_and_plans_newest_first() -> None:
    timeline = [
        event(1, "opened", title="x"),
        event(
            2,
            "plan_activated",
            plan_id="flood",
            plan_version=1,
            level=4,
            title_zh="防汛应急预案",
            title_en="Flood plan",
        ),
        event(3, "team_dispatched", team_id="T1", order_id="O1"),
        event(4, "level_changed", from_level=4, to_level=3),
        event(5, "note_added", text="注意液化气罐"),
    ]
    assert field_updates(timeline) == [
        {"seq": 5, "kind": "note_added", "at": "2026-12-07T09:00:05+00:00", "text": "注意液化气罐"},
        {"seq": 4, "kind": "level_changed", "at": "2026-12-07T09:00:04+00:00", "level": 3},
        {
            "seq": 2,
            "kind": "plan_activated",
            "at": "2026-12-07T09:00:02+00:00",
            "level": 4,
            "title_zh": "防汛应急预案",  # which plan, in both languages: the page picks its own
            "title_en": "Flood plan",
        },
    ]
    many = [event(i, "note_added", text=str(i)) for i in range(1, 9)]
    assert [u["seq"] for u in field_updates(many)] == [8, 7, 6, 5, 4]


def test_only_photos_this_service_stored_are_shown_on_the_desk() -> None:
    incident = {
        "id": "INC-1",
        "sources": [
            {"alarm_id": "a", "photo_url": f"/field/photos/{SHA}.jpg", "summary": "起火"},
            {"alarm_id": "b", "photo_url": "https://elsewhere.example/p.jpg"},
            {"alarm_id": "c", "photo_url": None},
        ],
    }
    assert [name for name, _ in photo_names(incident)] == [f"{SHA}.jpg"]
    strip = report_photos("zh_CN", incident)
    assert strip is not None
    img = strip.children[1].children[0].children
    assert img.to_plotly_json()["props"]["data-photo"] == f"/desk/photos/INC-1/{SHA}.jpg"
    assert report_photos("zh_CN", {"id": "INC-2", "sources": []}) is None
