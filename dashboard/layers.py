"""Every overlay of the console's map, declared once.

The desk's and the wall's map (layout/map.py) draw one layer per entry, in this order
(the order of the layers control, bottom to top within a pane), the field page's map
the entries on in the field view (layout/field.py); the static files the
server signs and serves (geoserve.py) are the entries whose source is ``Static``; the
layers loaded only when switched on get their URL from one callback (callbacks/map.py);
the browser's live code is told which layer each live feed draws (context.py →
assets/20-wuwang-live.js). Adding a layer is an entry here, its name in both
catalogues (dashboard/i18n/*.json) and, for a new kind of symbol, a drawing function
in assets/10-wuwang-map.js (docs/architecture.md, "Add a map layer").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dashboard import ids
from dashboard.data.registries import NETWORKS
from wuwang.settings import Settings

View = Literal["desk", "wall", "field"]
#: What a layer draws, so a reader knows the cost: ``areas`` and ``lines`` are canvas
#: paths, ``markers`` canvas circles, ``clusters`` supercluster groups (DOM icons for
#: the groups only), ``labels`` DOM text (assets/10-wuwang-map.js draws street names
#: only in view and from zoom 14, see ``lazyLabel``).
Kind = Literal["areas", "lines", "markers", "clusters", "labels"]

DESK_AND_WALL: frozenset[View] = frozenset({"desk", "wall"})
EVERYWHERE: frozenset[View] = frozenset({"desk", "wall", "field"})
NOWHERE: frozenset[View] = frozenset()


@dataclass(frozen=True)
class Static:
    """A file the server builds from the registries and serves signed
    (``GET /geo/<name>.json``, dashboard.geoserve); dash-leaflet fetches it itself."""

    name: str


@dataclass(frozen=True)
class Live:
    """Drawn by the browser from the command service's live feed of that name
    (assets/20-wuwang-live.js), as changes arrive."""

    feed: str


@dataclass(frozen=True)
class Served:
    """Filled by a Dash callback of callbacks/map.py (what it says is the callback)."""

    callback: str


Source = Static | Live | Served


@dataclass(frozen=True)
class Pane:
    """A pane of its own above the overlay pane (400): what must never be hidden under
    districts or clusters. The drawing functions name the same pane."""

    name: str
    z: int


@dataclass(frozen=True)
class MapLayer:
    key: str  # the component id is ``layer-<key>``
    label: str  # catalogue key of its name in the layers control
    kind: Kind
    source: Source
    #: the views it is switched on in when the page is drawn
    on: frozenset[View] = DESK_AND_WALL
    #: the ``?layers=`` word that switches it on too (``networks``; ``all`` means every word)
    opt_in: str | None = None
    pane: Pane | None = None
    #: loaded only once switched on (the grid: 3,000+ cells)
    on_request: bool = False
    #: the views where it starts off over a basemap, which draws it itself (the river)
    #: or makes it clutter (the districts on the field page's small map)
    basemap_replaces: frozenset[View] = NOWHERE
    #: the setting it needs, else it is not on the map at all (the streets' file)
    needs: Callable[[Settings], bool] | None = None
    #: the drawing functions of assets/10-wuwang-map.js (dash-leaflet's functional props)
    style: str | None = None
    point: str | None = None
    each: str | None = None
    cluster_icon: str | None = None
    hideout: Mapping[str, Any] = field(default_factory=dict)
    interactive: bool = False
    #: values for the name's placeholders, from the settings (the heat's hours)
    label_args: Callable[[Settings], dict[str, Any]] | None = None

    @property
    def id(self) -> str:
        return ids.layer(self.key)

    def shown(self, view: View, *, basemap: bool, opt_in: Iterable[str] = ()) -> bool:
        if basemap and view in self.basemap_replaces:
            return False
        return view in self.on or (self.opt_in is not None and self.opt_in in set(opt_in))

    def available(self, settings: Settings) -> bool:
        return self.needs is None or self.needs(settings)


NETWORK_COLOURS = {
    "patrol": "#26c6da",
    "community": "#66bb6a",
    "venue": "#ab47bc",
    "police": "#5c6bc0",
    "video": "#ec407a",
}

HEAT = Pane("heat", 350)
RISK = Pane("risk", 600)  # risk sources and shelters: under the warehouses, teams, incidents
WAREHOUSES = Pane("warehouses", 620)
TEAMS = Pane("teams", 640)
INCIDENTS = Pane("incidents", 660)


def _network(network: str) -> MapLayer:
    return MapLayer(
        key=f"net-{network}",
        label=f"network.{network}",
        kind="clusters",
        source=Static(f"net-{network}"),
        on=NOWHERE,
        opt_in="networks",
        point="networkPoint",
        cluster_icon="clusterIcon",
        hideout={"colour": NETWORK_COLOURS[network], "network": network},
        interactive=True,
    )


#: Bottom to top; the layers control lists them in this order.
LAYERS: tuple[MapLayer, ...] = (
    MapLayer(
        "districts",
        "layer.districts",
        "areas",
        Static("districts"),
        on=EVERYWHERE,
        basemap_replaces=frozenset({"field"}),
        style="districtStyle",
        # a district clicked while the warning form is open joins the area (callbacks/warnings.py)
        each="onEachDistrict",
    ),
    MapLayer(
        "district-labels", "layer.district_names", "labels", Static("district_labels"), point="labelPoint"
    ),
    MapLayer(
        "grid",
        "layer.grid",
        "areas",
        Static("grid"),
        on=NOWHERE,
        opt_in="grid",
        on_request=True,
        style="gridStyle",
    ),
    MapLayer(
        "river",
        "layer.river",
        "lines",
        Static("river"),
        on=EVERYWHERE,
        basemap_replaces=EVERYWHERE,
        style="riverStyle",
    ),
    MapLayer(
        "streets",
        "layer.streets",
        "lines",
        Static("streets"),
        needs=lambda s: s.dashboard.streets_file is not None,
        style="streetStyle",
    ),
    MapLayer(
        "street-names",
        "layer.street_names",
        "labels",
        Static("street_names"),
        on=EVERYWHERE,
        point="streetLabel",
    ),
    MapLayer("places", "layer.places", "labels", Static("places"), point="placePoint"),
    MapLayer(
        "heat",
        "layer.heat",
        "markers",
        Served("heat"),
        pane=HEAT,
        point="heatPoint",
        label_args=lambda s: {"hours": s.dashboard.heat_hours},
    ),
    *(_network(n) for n in NETWORKS),
    MapLayer(
        "risk-sources",
        "layer.risk_sources",
        "markers",
        Served("risk_sources"),
        on=frozenset({"desk"}),
        pane=RISK,
        point="riskPoint",
        interactive=True,
    ),
    MapLayer(
        "shelters",
        "layer.shelters",
        "markers",
        Served("shelters"),
        on=frozenset({"desk", "field"}),
        pane=RISK,
        point="shelterPoint",
        interactive=True,
    ),
    MapLayer(
        "warehouses",
        "layer.warehouses",
        "markers",
        Served("warehouses"),
        on=frozenset({"desk"}),
        pane=WAREHOUSES,
        point="warehousePoint",
        interactive=True,
    ),
    # 外部预警: CAP from other agencies (气象, 地震, 水利), dashed, under the console's own
    MapLayer(
        "inbound-warnings",
        "layer.inbound_warnings",
        "areas",
        Served("inbound_warnings"),
        on=DESK_AND_WALL,
        style="inboundWarningStyle",
        each="onEachInboundWarning",
        interactive=True,
    ),
    # 预警: active warnings' areas, coloured by level (蓝/黄/橙/红), under every marker
    MapLayer(
        "warnings",
        "layer.warnings",
        "areas",
        Served("warnings"),
        on=DESK_AND_WALL,  # the field page lists the team's own (assets/30-wuwang-field.js)
        style="warningStyle",
        each="onEachWarning",
        interactive=True,
    ),
    MapLayer(
        "teams",
        "layer.teams",
        "markers",
        Live("teams"),
        pane=TEAMS,
        point="teamPoint",
        each="onEachTeam",
        interactive=True,
    ),
    MapLayer(
        "incidents",
        "layer.incidents",
        "markers",
        Live("incidents"),
        pane=INCIDENTS,
        point="incidentPoint",
        each="onEachIncident",
        interactive=True,
    ),
)


def by_key(key: str) -> MapLayer:
    return next(layer for layer in LAYERS if layer.key == key)


def static_files() -> tuple[str, ...]:
    """The files the server signs and serves (dashboard.geoserve)."""
    return tuple(layer.source.name for layer in LAYERS if isinstance(layer.source, Static))


def live_layers() -> dict[str, str]:
    """Which layer each live feed draws, for the browser (assets/20-wuwang-live.js)."""
    return {layer.source.feed: layer.id for layer in LAYERS if isinstance(layer.source, Live)}


def panes() -> list[Pane]:
    return sorted({layer.pane for layer in LAYERS if layer.pane is not None}, key=lambda p: p.z)
