"""The report photos of an incident on the desk: a strip of thumbnails, each enlarged
on a click (``assets/32-wuwang-photos.js`` fetches them with the desk user's token
through ``/desk/photos/<incident>/<name>``). Self-contained: the detail panel only
places it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dash import html

from dashboard.i18n import Lang, t
from dashboard.i18n import data as words
from dashboard.layout import data_attrs

#: The photos the command service stores (``/field/photos/<sha256>.<ext>``): the only
#: ones the desk shows; a report's URL of somewhere else is never fetched.
_STORED = re.compile(r"^/field/photos/([0-9a-f]{64}\.(?:jpg|png|webp))$")


def photo_names(incident: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(stored photo name, source) for each of the incident's sources with a photo."""
    out = []
    for source in incident.get("sources") or []:
        match = _STORED.match(str(source.get("photo_url") or ""))
        if match:
            out.append((match.group(1), source))
    return out


def report_photos(
    lang: Lang, incident: dict[str, Any], teams: Mapping[str, str] | None = None
) -> html.Section | None:
    """The strip, each photo described by its report in the console's language (the
    team by name with its id: ``teams``)."""
    found = photo_names(incident)
    if not found:
        return None
    thumbs = [
        html.Button(
            className="photo-thumb",
            title=t(lang, "photo.enlarge"),
            children=html.Img(
                alt=t(lang, "photo.alt", summary=words.alarm_summary(lang, source, teams)),
                **data_attrs(photo=f"/desk/photos/{incident.get('id')}/{name}"),
            ),
        )
        for name, source in found
    ]
    return html.Section(
        className="detail-section report-photos",
        children=[
            html.H3(t(lang, "photo.title", n=len(thumbs))),
            html.Div(className="photo-strip", children=thumbs),
        ],
    )
