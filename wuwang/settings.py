"""The one settings object. Every service reads its configuration from here.

One nested, frozen model per service (``settings.command.ws_queue``), see ``GROUPS``;
values come from the environment by their flat, upper-case names, unchanged
(``COMMAND_WS_QUEUE``, ``DATABASE_URL``; docs/deployment.md, "Settings, per service").
Where ``DATABASE_URL``/``REDIS_URL``/``MQTT_URL`` are unset, ``wuwang.endpoints`` decides:
the default local service if it answers, otherwise an embedded one (demo and tests).
Outside demo mode the service refuses to start with a password that ships in this
repository.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Passwords that are written in this repository (demo users, the demo broker's
#: password file). Real deployments must set their own; see ``Settings._no_demo_secrets``.
DEMO_SECRETS = frozenset(
    {
        "demo",
        "demo-ingest",
        "demo-sim",
        "demo-command",
        "change-me",
        "wuwang",
        "password",
        # the demo console's signing secret of earlier versions (public in the history)
        "demo-only-dashboard-secret-do-not-use-in-production",
    }
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/wuwang"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


class SettingsGroup(BaseModel):
    """The settings one service reads, together. A field's environment variable is the
    group's ``env_prefix`` and its name (``COMMAND_WS_QUEUE`` → ``settings.command.ws_queue``),
    except the fields named in ``unprefixed``, whose variables are their bare names (older
    names, kept so that deployments' environment files keep working)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_prefix: ClassVar[str] = ""
    unprefixed: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def env_name(cls, field: str) -> str:
        """The (lower-case) environment variable of ``field``."""
        return field if field in cls.unprefixed else cls.env_prefix + field


class SharedSettings(SettingsGroup):
    """What more than one service reads: the endpoints, the storage, start-up."""

    demo_mode: bool = Field(default=False, description="DEMO_MODE: allows the repo's demo secrets")
    # Endpoints. None means "not configured": wuwang.endpoints resolves them.
    database_url: str | None = Field(
        default=None, description="PostgreSQL, postgresql://user:password@host:port/database"
    )
    redis_url: str | None = Field(default=None, description="Redis, redis://:password@host:port/db")
    mqtt_url: str | None = Field(default=None, description="mqtt://user:password@host:port")
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT 5 unless the broker only speaks 3.1.1 (amqtt)"
    )
    mqtt_keepalive: int = Field(default=30, description="MQTT keep-alive, seconds")
    # Where embedded services keep their data (one ignored folder).
    data_dir: Path = Field(
        default=REPO_ROOT / ".wuwang",
        description="local data: embedded services, the demo's logs, field photos (photos/)",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    alarm_stream: str = Field(default="wuwang:alarms", description="the Redis stream of alarms")
    # Demo city grid lattice (degrees); cells are computed, not looked up.
    grid_cell_deg: float = Field(default=0.025, description="the demo city's grid cell, degrees")
    storage_backend: Literal["auto", "plain", "timescale"] = Field(
        default="auto",
        description="STORAGE_BACKEND: 'auto' uses TimescaleDB when CREATE EXTENSION really works, else plain;"
        " 'timescale' refuses to migrate without it; 'plain' never uses it. A migrated database keeps"
        " its backend",
    )
    retention_days: int = Field(
        default=400,
        ge=1,
        description="RETENTION_DAYS: a feed row is kept at least this long after its receipt (and its ts);"
        " also the door's window: a message whose ts is older is dead-lettered",
    )
    compress_after_days: int = Field(default=7, ge=1, description="TimescaleDB compresses chunks this old")


class IngestSettings(SettingsGroup):
    """The ingest workers (MQTT feeds → PostgreSQL, alarms → Redis)."""

    env_prefix = "ingest_"
    unprefixed = frozenset(
        {
            "dead_letter_raw_cap",
            "video_alarm_confidence",
            "sensor_thresholds",
            "alarm_stream_maxlen",
            "aggregate_refresh_s",
        }
    )

    metrics_host: str = Field(
        default="127.0.0.1", description="INGEST_METRICS_HOST: the address ingest's /metrics listens on"
    )
    metrics_port: int = Field(default=9101, description="ingest's /metrics port (0: a free one, logged)")
    client_id: str = Field(default="ingest-1", description="fixed MQTT client id")
    shared_group: str | None = Field(
        default="ingest", description="$share group; empty to subscribe without sharing"
    )
    batch_size: int = Field(default=1000, ge=1, description="messages written per transaction, at most")
    # 50 ms: at half the bench's maximum rate a batch still holds ~200 messages, and a routine
    # reading is on the map within the 150 ms p99 of issue 14 (100 ms missed it by a few ms)
    flush_ms: int = Field(default=50, ge=1, description="a batch is written after this long, full or not")
    queue_size: int = Field(
        default=20000, ge=10, le=65535, description="messages received and not yet written, at most"
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        description="how long the broker queues messages for a worker that is away",
    )
    dead_letter_raw_cap: int = Field(
        default=4096, ge=64, description="bytes of a malformed message kept in its dead letter"
    )
    video_alarm_confidence: float = Field(
        default=0.8, ge=0, le=1, description="a video alert at least this confident raises an alarm"
    )
    sensor_thresholds: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="SENSOR_THRESHOLDS: per sensor kind (raise, clear) over the ingest defaults, "
        'e.g. {"smoke": [8, 4]}',
    )
    alarm_stream_maxlen: int = Field(default=100_000, description="alarms kept in the stream (approximately)")
    aggregate_refresh_s: float = Field(default=60.0, description="per-minute counts are refreshed this often")
    clock_skew_s: float = Field(
        default=300.0,
        ge=0,
        description="INGEST_CLOCK_SKEW_S: how far ahead of its receipt a message's ts may be (device"
        " clocks run fast); further ahead, or older than RETENTION_DAYS, it is dead-lettered at the door",
    )


class CommandSettings(SettingsGroup):
    """The command service (HTTP API, /ws, the MQTT link of dispatch)."""

    env_prefix = "command_"

    # Every service listens on loopback unless a deployment opens it (desks and wall PCs
    # on a LAN; 0.0.0.0 inside a container whose port is published).
    host: str = Field(
        default="127.0.0.1", description="COMMAND_HOST: the address the command service listens on"
    )
    port: int = Field(default=8000, description="the command service's port")
    token_secret: str | None = Field(
        default=None,
        description="COMMAND_TOKEN_SECRET: signs access tokens (at least 32 characters); required"
        " outside demo mode",
    )
    console_secret: str | None = Field(
        default=None,
        description="COMMAND_CONSOLE_SECRET: shared by the command service and the map console;"
        " the console sends it with the browser's address on a login, and only then is that"
        " address believed (demo value in demo mode; unset: logins are throttled by the peer)",
    )
    token_ttl_s: int = Field(default=900, ge=60, description="access tokens are short-lived")
    session_max_s: int = Field(
        default=12 * 3600,
        ge=300,
        description="COMMAND_SESSION_MAX_S: POST /auth/refresh renews a token until this long after the"
        " login (a shift); then the user types the password again",
    )
    login_limit: str = Field(default="5/minute", description="login attempts per (user name, client address)")
    login_limit_per_address: str = Field(
        default="60/minute", description="login attempts per client address, whatever the user name"
    )
    login_audit_flush_s: float = Field(
        default=60.0,
        gt=0,
        description="refused logins are counted and written to the audit log as one row per"
        " (user name, address, reason) this often, not one row each",
    )
    body_limit_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body, refused with 413 before parsing"
    )
    upload_limit_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="largest body on the upload routes (field photos, base64 in JSON)",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8050", "http://localhost:8050"],
        description="Origins allowed to open /ws (the map console)",
    )
    alarm_group: str = Field(default="command", description="consumer group on ALARM_STREAM")
    redis_timeout_s: float = Field(
        default=5.0,
        gt=1.0,
        le=60.0,
        description="COMMAND_REDIS_TIMEOUT_S: a Redis connection or reply taking longer fails "
        "(then 503 with Retry-After, or PostgreSQL's answer); above the 1 s blocking reads",
    )
    ack_timeout_s: float = Field(default=60.0, gt=0, description="an order not acked by then raises an alert")
    position_stale_s: float = Field(
        default=300.0,
        description="a team's position older than this is stale: recommendations skip the team"
        " (or rank it from its base, COMMAND_RECOMMEND_FROM_BASE)",
    )
    # Command service: the MQTT link (dispatch orders out; acks, statuses, positions in).
    mqtt_client_id: str = Field(
        default="command-1",
        description="fixed MQTT client id of this command process (its persistent session); "
        "give every command process its own",
    )
    shared_group: str | None = Field(
        default="command",
        description="$share group for acks and statuses; empty to subscribe without sharing",
    )
    mqtt_session_expiry_s: int = Field(
        default=24 * 3600,
        ge=1,
        description="how long the broker keeps this process's session while it is away",
    )
    mqtt_forget_session_on_stop: bool = Field(
        default=False, description="end the broker session on shutdown (decommissioning, tests)"
    )
    outbox_window: int = Field(
        default=50, ge=1, le=1000, description="dispatch orders in flight (awaiting PUBACK) at once"
    )
    position_db_interval_s: float = Field(
        default=10.0, ge=0, description="a team's position is written to PostgreSQL at most this often"
    )
    road_factor: float = Field(
        default=1.3, ge=1.0, description="route length / straight line, for recommendation ETAs"
    )
    recommend_from_base: bool = Field(
        default=False,
        description="rank teams without a fresh position from their home base (flagged) instead of skipping",
    )
    ws_queue: int = Field(
        default=1000, ge=10, description="per-client backlog before a slow client is dropped"
    )
    ws_auth_timeout_s: float = Field(
        default=10.0, gt=0, description="a /ws client must send its token (first message) within this"
    )
    ws_recheck_s: float = Field(
        default=15.0,
        gt=0,
        description="how often open /ws connections are checked: expired tokens, revoked sessions,"
        " disabled or changed accounts are closed (4401)",
    )
    ws_send_timeout_s: float = Field(
        default=10.0, gt=0, description="a /ws client that takes no data for this long is dropped"
    )
    # Field teams' photos (POST /field/photos): decoded before they are stored.
    photo_max_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="largest photo accepted, in bytes (413 above)"
    )
    photo_max_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="largest photo accepted, in pixels (413 above): decompression bombs are refused unread",
    )
    photo_quota_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="photo bytes one team may upload per day of COMMAND_TIMEZONE (429 above)",
    )
    plans_dir: Path = Field(
        default=REPO_ROOT / "command" / "plans", description="the contingency plans (YAML)"
    )
    expiring_days: int = Field(
        default=30, ge=0, le=366, description="reserve lots expiring within this many days raise an alert"
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="the command centre's calendar (expiry days, 'today')"
    )
    # Warnings (预警): the sender part of the GB/T 35965.1 identifier ZZZZZZDDDUUUXX_…
    warning_area_code: str = Field(
        default="420600", pattern=r"^\d{6}$", description="GB/T 2260 area code of the issuer (Xiangyang)"
    )
    warning_institution: str = Field(
        default="000", pattern=r"^\d{3}$", description="GB/T 35965.1 institution code (DDD)"
    )
    warning_unit: str = Field(default="000", pattern=r"^\d{3}$", description="GB/T 35965.1 unit code (UUU)")
    warning_extension: str = Field(
        default="00", pattern=r"^\d{2}$", description="GB/T 35965.1 extension code (XX)"
    )
    warning_sender: str = Field(
        default="emergency.xiangyang.example",
        description="who issues every warning (CAP sender: globally unique, a host name is usual)",
    )
    warning_expiry_interval_s: float = Field(
        default=30.0, gt=0, description="how often issued warnings past their expiry are expired"
    )
    inbox_expiry_interval_s: float = Field(
        default=30.0, gt=0, description="how often quiet alarm-inbox rows are moved to the review list"
    )
    risk_sweep_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="how often risk sources whose inspection is overdue get their grid case",
    )
    # Upward reporting (信息报送): the rule, who reports, where reports go (docs/duty-and-reporting.md)
    report_rules_dir: Path = Field(
        default=REPO_ROOT / "command" / "reporting_rules",
        description="the reporting rules, one YAML file per jurisdiction",
    )
    report_jurisdiction: str = Field(
        default="hubei", pattern=r"^[a-z][a-z0-9_]{0,31}$", description="the rule this centre reports under"
    )
    report_unit: str | None = Field(
        default=None, description="the reporting unit's name (default: the demo city's command centre)"
    )
    report_area_code: str = Field(
        default="420600", pattern=r"^\d{6}$", description="GB/T 2260 area code of the reporting unit"
    )
    upper_url: str | None = Field(
        default=None,
        description="COMMAND_UPPER_URL: the upper level's platform (POST /reports, GET"
        " /instructions); None: reports are approved and queued, not sent",
    )
    upper_interval_s: float = Field(
        default=5.0, gt=0, description="how often queued reports are sent and instructions fetched"
    )
    upper_timeout_s: float = Field(default=10.0, gt=0, description="one request to the upper level")


class DashboardSettings(SettingsGroup):
    """The map console (operator desk, wall display, field page)."""

    env_prefix = "dashboard_"

    host: str = Field(
        default="127.0.0.1", description="DASHBOARD_HOST: the address the map console listens on"
    )
    port: int = Field(default=8050, description="the map console's port")
    secret: str | None = Field(
        default=None,
        description="DASHBOARD_SECRET: signs the console's cookies, page-load tokens and /geo map-layer"
        " URLs (at least 32 characters); required outside demo mode",
    )
    command_url: str = Field(
        default="http://127.0.0.1:8000", description="the command service as the dashboard server reaches it"
    )
    command_ws_url: str | None = Field(
        default=None,
        description="the command service's /ws as the operators' browsers reach it "
        "(default: DASHBOARD_COMMAND_URL with ws://)",
    )
    tile_url: str | None = Field(
        default=None,
        description="a self-hosted basemap, e.g. http://tiles.local/{z}/{x}/{y}.png; none: plain background",
    )
    tile_kind: Literal["auto", "raster", "vector"] = Field(
        default="auto",
        description="raster (PNG/JPEG) or vector (Mapbox vector tiles, drawn in the browser) tiles"
        " at DASHBOARD_TILE_URL; auto: vector when the URL ends in .pbf or .mvt",
    )
    tile_datum: Literal["wgs84", "gcj02"] = Field(
        default="wgs84", description="the basemap's datum; gcj02 shifts every position drawn on it"
    )
    tile_attribution: str = Field(default="", description="the basemap's attribution line")
    tile_max_zoom: int = Field(default=18, ge=1, le=22, description="the basemap's deepest zoom")
    basemap_file: Path | None = Field(
        default=None,
        description="the offline basemap (MBTiles, `make basemap`) served at /tiles/ and shown when"
        " DASHBOARD_TILE_URL is unset; default <DATA_DIR>/basemap.mbtiles",
    )
    streets_file: Path | None = Field(
        default=None, description="an optional GeoJSON file of streets (WGS-84) drawn without a basemap"
    )
    body_limit_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        description="largest request body the console accepts (a field report with its photo)",
    )
    language: Literal["zh_CN", "en"] = Field(default="zh_CN", description="the console's language")
    token_check_s: float = Field(
        default=60.0, ge=0.5, le=240.0, description="how often the console checks whether to renew its token"
    )
    call_target_s: float = Field(
        default=60.0, gt=0, description="call-processing target: queue timers turn red past it"
    )
    # The plans name no arrival target yet: one for every active incident until they do.
    arrival_target_s: float = Field(
        default=600.0,
        gt=0,
        description="arrival target (first alarm → first team on scene): ranks active incidents",
    )
    heat_hours: int = Field(default=6, ge=1, le=72, description="110 calls shown on the heat layer")
    # The wall display (大屏): its lists rotate page by page; a team en route longer than
    # this is marked overdue on the unit board (an unacknowledged order past
    # COMMAND_ACK_TIMEOUT_S is marked too, the command service's own rule).
    wall_page_s: float = Field(
        default=10.0, ge=2.0, le=120.0, description="seconds each page of a wall list is shown"
    )
    en_route_limit_s: float = Field(
        default=900.0, gt=0, description="a team en route longer than this is marked overdue on the wall"
    )


class DrillSettings(SettingsGroup):
    """The drill runner of ``python -m simulators`` (scenario injects over the command API)."""

    env_prefix = "drill_"

    api_url: str | None = Field(
        default=None,
        description="DRILL_API_URL: the command API the drill runner sends scenario injects to"
        " (default: DASHBOARD_COMMAND_URL)",
    )
    user: str = Field(default="planner1", description="DRILL_USER: the drill planner the runner acts as")
    password: str | None = Field(
        default=None, description="DRILL_PASSWORD: required outside demo mode (the demo planner's otherwise)"
    )


#: Which group a service's settings are in: ``settings.<group>.<field>``. A new setting is
#: declared in its group's model (its variable follows from the group's prefix).
GROUPS: dict[str, type[SettingsGroup]] = {
    "shared": SharedSettings,
    "ingest": IngestSettings,
    "command": CommandSettings,
    "dashboard": DashboardSettings,
    "drill": DrillSettings,
}

#: Every grouped setting by its environment variable (lower case): (group, field).
ENV_NAMES: dict[str, tuple[str, str]] = {
    model.env_name(field): (group, field) for group, model in GROUPS.items() for field in model.model_fields
}


def grouped(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` keyed by environment names (``command_ws_queue``) regrouped for
    :class:`Settings` (``{"command": {"ws_queue": …}}``); a flat value wins over its group's."""
    out = {k: v for k, v in values.items() if k not in ENV_NAMES}
    for name, value in values.items():
        if name in ENV_NAMES:
            group, field = ENV_NAMES[name]
            given = out.get(group)
            members = dict(given) if isinstance(given, BaseModel | Mapping) else {}
            out[group] = {**members, field: value}
    return out


def field_info(name: str) -> FieldInfo:
    """The declaration (type, default, description) of the setting read from ``name``
    (its environment variable, lower case)."""
    group, field = ENV_NAMES[name]
    return GROUPS[group].model_fields[field]


def variable_of(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error's location is about:
    ``("command", "port")`` → ``COMMAND_PORT`` (a list's index etc. appended with dots)."""
    parts = [str(part) for part in loc]
    if len(parts) >= 2 and parts[0] in GROUPS and parts[1] in GROUPS[parts[0]].model_fields:
        parts[:2] = [GROUPS[parts[0]].env_name(parts[1])]
    return ".".join(parts).upper()


@lru_cache(maxsize=4)
def _flat_model(settings_cls: type[BaseSettings]) -> type[BaseSettings]:
    """A model of every variable by its flat name, only for reading the environment."""
    fields: dict[str, Any] = {
        name: (GROUPS[group].model_fields[field].annotation, None)
        for name, (group, field) in ENV_NAMES.items()
    }
    # Settings declared flat on Settings itself (not in a group) are read as they are.
    fields |= {
        name: (info.annotation, None)
        for name, info in settings_cls.model_fields.items()
        if name not in GROUPS
    }
    return create_model("FlatSettings", __base__=BaseSettings, **fields)


class _FlatEnvironment(EnvSettingsSource):
    """The environment read by the variables' flat names (``COMMAND_WS_QUEUE``), decoded
    as pydantic-settings decodes them (JSON for lists and maps), then grouped."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(_flat_model(settings_cls))

    def __call__(self) -> dict[str, Any]:
        return grouped(super().__call__())


class Settings(BaseSettings):
    """Every setting, one nested model per service: ``settings.command.ws_queue`` is read
    from ``COMMAND_WS_QUEUE``. Constructed with nested values or by environment names
    (``Settings(command_ws_queue=50)``, as tests and launchers do)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    shared: SharedSettings = Field(default_factory=SharedSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    command: CommandSettings = Field(default_factory=CommandSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    drill: DrillSettings = Field(default_factory=DrillSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The variables keep their flat names: the nested models are read through them.
        return (init_settings, _FlatEnvironment(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        return grouped(data) if isinstance(data, Mapping) else data

    @model_validator(mode="wrap")
    @classmethod
    def _errors_name_variables(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        # An error names the variable (ingest_clock_skew_s), not the field's path in its group.
        try:
            return handler(data)
        except ValidationError as exc:
            details: list[InitErrorDetails] = []
            for err in exc.errors():
                detail = InitErrorDetails(
                    type=err["type"], loc=(variable_of(err["loc"]).lower(),), input=err["input"]
                )
                if "ctx" in err:
                    detail["ctx"] = err["ctx"]
                details.append(detail)
            raise ValidationError.from_exception_data(exc.title, details) from None

    def updated(self, **values: Any) -> Settings:
        """A copy with the settings named by ``values`` (environment names, lower case)
        changed, validated, the environment not read again."""
        return type(self).model_validate(self.model_dump() | values)

    @model_validator(mode="after")
    def _no_demo_secrets(self) -> Settings:
        if self.shared.demo_mode:
            return self
        if self.command.token_secret is not None and (
            self.command.token_secret in DEMO_SECRETS or len(self.command.token_secret) < 32
        ):
            raise ValueError("COMMAND_TOKEN_SECRET must be a real secret of at least 32 characters")
        if self.dashboard.secret is not None and (
            self.dashboard.secret in DEMO_SECRETS or len(self.dashboard.secret) < 32
        ):
            raise ValueError("DASHBOARD_SECRET must be a real secret of at least 32 characters")
        if self.command.console_secret is not None and (
            self.command.console_secret in DEMO_SECRETS or len(self.command.console_secret) < 32
        ):
            raise ValueError("COMMAND_CONSOLE_SECRET must be a real secret of at least 32 characters")
        if self.drill.password is not None and self.drill.password in DEMO_SECRETS:
            raise ValueError(
                "DRILL_PASSWORD ships in this repository; set a real one or run with DEMO_MODE=1"
            )
        for name, url in (
            ("MQTT_URL", self.shared.mqtt_url),
            ("DATABASE_URL", self.shared.database_url),
            ("REDIS_URL", self.shared.redis_url),
        ):
            if url and urlsplit(url).password in DEMO_SECRETS:
                raise ValueError(
                    f"{name} uses a password that ships in this repository; set a real one "
                    "or run with DEMO_MODE=1"
                )
        return self


DEMO_TOKEN_SECRET = "demo-only-token-secret-do-not-use-in-production"  # noqa: S105 - demo mode only


def token_secret(settings: Settings) -> str:
    """The access-token signing secret; the demo one only in demo mode."""
    if settings.command.token_secret:
        return settings.command.token_secret
    if settings.shared.demo_mode:
        return DEMO_TOKEN_SECRET
    raise RuntimeError("COMMAND_TOKEN_SECRET is not set (required outside DEMO_MODE)")


#: Demo mode without DASHBOARD_SECRET: a secret of this process, never one written in the
#: repository (anyone could forge the console's signed URLs with that). Processes that
#: must agree get one per run from the launcher (``wuwang.launcher.demo_services``).
_DEMO_RUN_DASHBOARD_SECRET = secrets.token_urlsafe(32)


def dashboard_secret(settings: Settings) -> str:
    """The console's signing secret (cookies, Dash callbacks, /geo URLs); in demo mode
    without one, a random secret of this process."""
    if settings.dashboard.secret:
        return settings.dashboard.secret
    if settings.shared.demo_mode:
        return _DEMO_RUN_DASHBOARD_SECRET
    raise RuntimeError("DASHBOARD_SECRET is not set (required outside DEMO_MODE)")


def reach_host(bind_host: str) -> str:
    """Where this machine reaches a service that listens on ``bind_host``: loopback for
    the wildcard addresses, else that address (a LAN address does not answer on loopback)."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0", "::", "localhost") else bind_host  # noqa: S104


#: The headers the map console sends with a login it makes for a browser: the browser's
#: address, believed by the command service only when the second carries the secret.
FORWARDED_FOR_HEADER = "x-wuwang-client-address"
CONSOLE_SECRET_HEADER = "x-wuwang-console-secret"  # noqa: S105 - a header name

DEMO_CONSOLE_SECRET = "demo-only-console-secret-do-not-use-in-production"  # noqa: S105 - demo mode only


def console_secret(settings: Settings) -> str | None:
    """The secret the map console proves itself with when it forwards a browser's
    address; the demo one only in demo mode; None: no forwarded address is believed."""
    if settings.command.console_secret:
        return settings.command.console_secret
    return DEMO_CONSOLE_SECRET if settings.shared.demo_mode else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
