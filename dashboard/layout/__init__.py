"""Page structures (no callbacks here): the shell every page shares, the login page,
the console (desk and wall display), the map, the incident detail and the field page."""

from __future__ import annotations

from typing import Any


def js(name: str) -> dict[str, str]:
    """A reference to a function of ``window.wuwang.map`` (assets/wuwang-map.js) for a
    dash-leaflet functional property (pointToLayer, style, clusterToLayer, ...)."""
    return {"variable": f"wuwang.map.{name}"}


def data_attrs(**values: Any) -> dict[str, Any]:
    """``data-*`` attributes for html components (``data_attrs(incident="INC-1")``)."""
    return {f"data-{k.replace('_', '-')}": v for k, v in values.items()}


def team_text(names: dict[str, str], team_id: str) -> str:
    """A team as operators name it: its name with its id, the id alone while the name is
    unknown (teams are shown by name everywhere; the id tells two of a name apart)."""
    name = names.get(team_id)
    return f"{name} · {team_id}" if name and name != team_id else team_id
