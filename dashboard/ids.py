"""Component ids shared by layouts, callbacks and the browser code (assets/*.js use
the same strings). One place, so a typo is a name error, not a silent dead callback."""

from __future__ import annotations

# Shell (every page).
URL = "url"
SESSION = "session"  # {token, user_id, role, team_id, expires_at} — sessionStorage
LANG = "lang"  # "zh_CN" | "en" — localStorage
PAGE = "page"
I18N = "i18n"  # the chosen language's catalogue (for clientside code)
CONFIG = "config"  # what the browser code needs: WebSocket URL, datum, targets
LIVE_STATUS = "live-status"  # set by the browser: {connected, stale, since}
SESSION_NOTE = "session-note"  # why the login page is shown (expired, refused)
TOKEN_TICK = "token-tick"  # noqa: S105 - a component id; an interval: renew the token before it runs out (POST /auth/refresh)
RENDERED_FOR = "rendered-for"  # whose page is drawn: a renewed token does not redraw it
TOKEN_SYNC = "token-sync"  # noqa: S105 - a component id; set by the browser once its sockets and outbox hold the renewed token

# Login page.
LOGIN_USER = "login-user"
LOGIN_PASSWORD = "login-password"  # noqa: S105 - a component id
LOGIN_BUTTON = "login-button"
LOGIN_ERROR = "login-error"

# Console header.
LANG_SWITCH = "lang-switch"
LOGOUT = "logout"
CLOCK = "clock"
STALE_BANNER = "stale-banner"
CONNECTION = "connection"

# Map.
MAP = "map"
LAYERS = "layers"  # the layers control: which overlays are on
MAP_FILES = "map-files"  # the static layers' files the first draw needs (fetched at once)
MAP_UP = "map-up"  # set by the browser once the map's first layers are drawn (assets/10-wuwang-map.js)
INBOX_SLOT = "inbox-slot"  # the desk's panels drawn once the map is up (layout/console.py, deferred)
SIDE_SLOT = "side-slot"


def layer(key: str) -> str:
    """A map layer's component id (dashboard/layers.py declares the layers)."""
    return f"layer-{key}"


LAYER_DISTRICTS = layer("districts")
LAYER_DISTRICT_LABELS = layer("district-labels")
LAYER_GRID = layer("grid")
LAYER_RIVER = layer("river")
LAYER_STREETS = layer("streets")
LAYER_PLACES = layer("places")
LAYER_STREET_NAMES = layer("street-names")
LAYER_HEAT = layer("heat")
LAYER_INCIDENTS = layer("incidents")
LAYER_TEAMS = layer("teams")
LAYER_WAREHOUSES = layer("warehouses")
LAYER_WARNINGS = layer("warnings")
LAYER_INBOUND_WARNINGS = layer("inbound-warnings")
LAYER_RISK_SOURCES = layer("risk-sources")
LAYER_SHELTERS = layer("shelters")
NETWORK_LEGEND = "network-legend"


def layer_network(network: str) -> str:
    return layer(f"net-{network}")


# Live state pushed by the browser code (assets/wuwang-live.js).
LIVE_TEAMS = "live-teams"  # counts by status + the board's rows
SELECTED = "selected-incident"  # the incident id the operator opened
DETAIL_TICK = "detail-tick"  # bumped when the open incident changed
KPI_TICK = "kpi-tick"  # bumped (debounced) when incidents or stock changed
RESERVE_TICK = "reserve-tick"
HEAT_TICK = "heat-tick"
WARNING_TICK = "warning-tick"  # bumped when a warning (预警) changed
REGISTRY_TICK = "registry-tick"  # bumped when a shelter's count or a risk source changed
WARNINGS = "warnings-fetched"  # the scope's warnings, fetched once a tick; the layer, banner and list read it

# Warnings (预警): the banner (desk and wall) and the desk's panel (callbacks/warnings.py).
WARNING_BANNER = "warning-banner"
WARNING_PANEL = "warning-panel"
WARNING_EVENT = "warning-event"
WARNING_LEVEL = "warning-level"
WARNING_HEADLINE = "warning-headline"
WARNING_DESCRIPTION = "warning-description"
WARNING_INSTRUCTION = "warning-instruction"
WARNING_DISTRICTS = "warning-districts"
WARNING_CELLS = "warning-cells"
WARNING_POLYGON = "warning-polygon"
WARNING_DRAW = "warning-draw"  # the desk map's EditControl: the area drawn as a polygon
WARNING_HOURS = "warning-hours"
WARNING_COUNT = "warning-count"
WARNING_DRAFT = "warning-draft"
WARNING_INSIDE = "warning-inside"
WARNING_FEEDBACK = "warning-feedback"
WARNING_LIST = "warning-list"
FIELD_WARNINGS = "field-warnings"

# Panels.
QUEUE = "queue"
QUEUE_COUNT = "queue-count"
QUEUE_SOUND = "queue-sound"  # enable the announcement tone (assets/25-wuwang-announce.js)
QUEUE_MUTE = "queue-mute"
KPI_TILES = "kpi-tiles"
KPI_LIVE = "kpi-live"  # the tiles drawn by the browser (open by level, teams available): no callback
SIDE_TABS = "side-tabs"
PANEL_DETAIL = "panel-detail"
PANEL_TEAMS = "panel-teams"
PANEL_RESERVE = "panel-reserve"
PANEL_CHARTS = "panel-charts"
DETAIL = "detail"
DETAIL_META = "detail-meta"  # {id, version} of what the operator sees
DETAIL_TABS = "detail-tabs"  # plan / teams / supplies / timeline / sources of the open incident
MAP_FOCUS = "map-focus"  # the incident the map flew to (assets/12-wuwang-focus.js)
CLOSE_GUARD = "close-guard"  # a refused resolve/close: {incident_id, version, action, detail}
FEEDBACK = "feedback"
TEAMS_BOARD = "teams-board"
RESERVE_BOARD = "reserve-board"
CHART_CALLS = "chart-calls"
CHART_AREA = "chart-area"

# Pattern-matching button types ({"type": ..., ...}).
ACT = "act"  # {"type": "act", "action": "verify"}
#: 信息报送 on the detail: {"type": "upward", "action": draft_first|save|approve|send, "n": report}
UPWARD = "upward"
WALL_REPORT_CLOCKS = "wall-report-clocks"  # the wall's running report clocks
WALL_REPORT_TICK = "wall-report-tick"
UPWARD_INPUT = "upward-input"  # {"type": …, "name": deaths|missing|injured|measures, "n": report}
DISPATCH = "dispatch"  # {"type": "dispatch", "team": id}
DETAIL_CLOSE = "detail-close"  # {"type": "detail-close", "panel": "detail"}: the ✕, deselect
CLOSE_OVERRIDE = "close-override"  # {"type": "close-override", "action": "resolve" | "close"}
RESERVE = "reserve"  # {"type": "reserve", "item": code, "qty": n, "wh": warehouse id}
TICK = "tick"  # {"type": "tick", "item": id, "done": bool}
SPLIT = "split"  # {"type": "split", "alarm": id}

# Field page.
FIELD = "field"
FIELD_STATUS = "field-status"
FIELD_ORDER = "field-order"
FIELD_MAP = "field-map"
FIELD_ORDER_LAYER = "field-order-layer"
FIELD_ROUTE_LAYER = "field-route-layer"
FIELD_ALERT = "field-alert"
FIELD_NEW_EVENT = "field-new-event"
FIELD_QUEUE = "field-queue"


def detail_input(name: str) -> dict[str, str]:
    """Inputs of the incident detail (reason, note, plan, level, merge). Read through a
    pattern (ALL) so that a callback never depends on one being drawn."""
    return {"type": "detail-input", "name": name}


DETAIL_INPUT = "detail-input"

# The alarm inbox (告警收件箱, layout/inbox.py, callbacks/inbox.py): desk only.
INBOX_PANEL = "inbox-panel"
INBOX_TICK = "inbox-tick"  # bumped by the browser when the live stream reports an inbox change
INBOX_VIEW = "inbox-view"  # "open" (待研判) | "expired" (待复核, the review list)
INBOX_COUNTS = "inbox-counts"
INBOX_ROWS = "inbox-rows"
INBOX_SHOWN = "inbox-shown"  # {row_id: exercise_id} of the rows drawn (the pickers' scope)
INBOX_DRAWN = "inbox-drawn"  # a digest of what the rows show: an unchanged list is not redrawn
INBOX_FEEDBACK = "inbox-feedback"
INBOX_OPENED = "inbox-opened"  # the incident a promotion opened (the browser selects it)
INBOX_OPENED_APPLIED = "inbox-opened-applied"
INBOX_PENDING = "inbox-pending"  # {action, row_ids}: the link/dismiss form's rows
INBOX_FORM = "inbox-form"
INBOX_FORM_TITLE = "inbox-form-title"
INBOX_LINK_PART = "inbox-link-part"
INBOX_DISMISS_PART = "inbox-dismiss-part"
INBOX_INCIDENT = "inbox-incident"
INBOX_REASON = "inbox-reason"
INBOX_NOTE = "inbox-note"
INBOX_CONFIRM = "inbox-confirm"
INBOX_CANCEL = "inbox-cancel"
INBOX_BULK = "inbox-bulk"
INBOX_SELECT_ALL = "inbox-select-all"
INBOX_SELECTED = "inbox-selected"
INBOX_CHECK = "inbox-check"  # {"type": "inbox-check", "row": id}: a Checklist
INBOX_ACT = "inbox-act"  # {"type": "inbox-act", "action": promote|link|dismiss, "row": id}
INBOX_BULK_ACT = "inbox-bulk-act"  # {"type": "inbox-bulk-act", "action": ...}
