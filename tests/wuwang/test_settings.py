"""Settings: defaults, environment variables, and the refusal of the repo's demo secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from wuwang.service import ConfigError, load_settings
from wuwang.settings import DEMO_SECRETS, ENV_NAMES, GROUPS, REPO_ROOT, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the machine's environment (e.g. a CI's DATABASE_URL)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    s = Settings()
    assert (s.command.port, s.dashboard.port, s.ingest.metrics_port) == (8000, 8050, 9101)
    assert s.shared.database_url is None
    assert s.shared.redis_url is None
    assert s.shared.mqtt_url is None
    assert s.shared.mqtt_protocol == "5"
    assert s.shared.demo_mode is False
    assert s.ingest.client_id == "ingest-1"
    assert s.ingest.shared_group == "ingest"
    assert s.shared.data_dir == REPO_ROOT / ".wuwang"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cr3t-x@db.example:5432/wuwang")
    monkeypatch.setenv("REDIS_URL", "redis://:s3cr3t-y@cache:6379/1")
    monkeypatch.setenv("MQTT_URL", "mqtt://ingest:s3cr3t-z@broker:1883")
    monkeypatch.setenv("MQTT_PROTOCOL", "3.1.1")
    monkeypatch.setenv("COMMAND_PORT", "18000")
    monkeypatch.setenv("DASHBOARD_PORT", "18050")
    monkeypatch.setenv("INGEST_METRICS_PORT", "19101")
    monkeypatch.setenv("INGEST_CLIENT_ID", "ingest-7")
    monkeypatch.setenv("INGEST_SHARED_GROUP", "")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.shared.database_url == "postgresql://app:s3cr3t-x@db.example:5432/wuwang"
    assert s.shared.redis_url == "redis://:s3cr3t-y@cache:6379/1"
    assert s.shared.mqtt_url == "mqtt://ingest:s3cr3t-z@broker:1883"
    assert s.shared.mqtt_protocol == "3.1.1"
    assert (s.command.port, s.dashboard.port, s.ingest.metrics_port) == (18000, 18050, 19101)
    assert s.ingest.client_id == "ingest-7"
    assert not s.ingest.shared_group
    assert s.shared.data_dir == tmp_path


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMAND_PORT", "eight thousand")
    with pytest.raises(ConfigError, match="COMMAND_PORT"):
        load_settings()
    monkeypatch.delenv("COMMAND_PORT")
    monkeypatch.setenv("MQTT_PROTOCOL", "4")
    with pytest.raises(ConfigError, match="MQTT_PROTOCOL"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("MQTT_URL", "mqtt://ingest:demo-ingest@broker:1883"),
        ("MQTT_URL", "mqtt://SEN-0001:demo@broker:1883"),
        ("DATABASE_URL", "postgresql://postgres:wuwang@db:5432/wuwang"),
        ("REDIS_URL", "redis://:change-me@cache:6379/0"),
    ],
)
def test_demo_secrets_refused_outside_demo_mode(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(ValidationError, match=variable):
        Settings()
    with pytest.raises(ConfigError, match=f"{variable} uses a password that ships in this repository"):
        load_settings()
    monkeypatch.setenv("DEMO_MODE", "0")
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_demo_secrets_accepted_in_demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTT_URL", "mqtt://ingest:demo-ingest@broker:1883")
    monkeypatch.setenv("DEMO_MODE", "1")
    assert Settings().shared.mqtt_url == "mqtt://ingest:demo-ingest@broker:1883"
    monkeypatch.delenv("DEMO_MODE")
    assert load_settings(demo_mode=True).shared.demo_mode is True  # what `python -m wuwang demo` does


def test_every_demo_password_is_refused() -> None:
    for secret in DEMO_SECRETS:
        with pytest.raises(ValidationError, match="MQTT_URL"):
            Settings(mqtt_url=f"mqtt://someone:{secret}@broker:1883")


def test_the_drill_planners_demo_password_is_refused_outside_demo_mode() -> None:
    with pytest.raises(ValidationError, match="DRILL_PASSWORD"):
        Settings(drill_password="demo")
    assert Settings(drill_password="demo", demo_mode=True).drill.password == "demo"
    assert Settings(drill_password="a-real-one-from-the-vault").drill.user == "planner1"


def test_urls_without_password_are_fine() -> None:
    s = Settings(database_url="postgresql://postgres@127.0.0.1:5432/wuwang", mqtt_url="mqtt://127.0.0.1:1883")
    assert s.shared.demo_mode is False


# Issue 11: one object, one nested model per service; the variables keep their names.


def test_each_group_is_read_from_the_variables_of_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMAND_WS_QUEUE", "77")
    monkeypatch.setenv("COMMAND_ALLOWED_ORIGINS", '["https://console.example"]')
    monkeypatch.setenv("DEAD_LETTER_RAW_CAP", "128")
    monkeypatch.setenv("SENSOR_THRESHOLDS", '{"smoke": [8, 4]}')
    monkeypatch.setenv("INGEST_CLOCK_SKEW_S", "12.5")
    monkeypatch.setenv("DASHBOARD_TILE_KIND", "vector")
    monkeypatch.setenv("DRILL_USER", "planner7")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    s = Settings()
    assert s.command.ws_queue == 77
    assert s.command.allowed_origins == ["https://console.example"]
    assert s.ingest.dead_letter_raw_cap == 128
    assert s.ingest.sensor_thresholds == {"smoke": (8.0, 4.0)}
    assert s.ingest.clock_skew_s == 12.5
    assert s.dashboard.tile_kind == "vector"
    assert s.drill.user == "planner7"
    assert s.shared.retention_days == 30


def test_every_variable_belongs_to_one_group_under_its_prefix() -> None:
    seen: set[str] = set()
    for group, model in GROUPS.items():
        assert model.model_config.get("frozen") is True, group
        for field in model.model_fields:
            name = model.env_name(field)
            assert name not in seen, f"{name.upper()} is read twice"
            seen.add(name)
            assert ENV_NAMES[name] == (group, field)
            if field not in model.unprefixed:
                assert name == model.env_prefix + field
    assert seen == set(ENV_NAMES)
    assert set(Settings.model_fields) == set(GROUPS), (
        "a setting declared flat on Settings: move it to its group"
    )


def test_flat_names_construct_and_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMAND_PORT", "18000")
    monkeypatch.setenv("COMMAND_WS_QUEUE", "77")
    s = Settings(command_port=19000, dashboard_language="en")
    assert (s.command.port, s.command.ws_queue, s.dashboard.language) == (19000, 77, "en")
    nested = Settings(command={"ws_queue": 20}, command_port=19001)
    assert (nested.command.ws_queue, nested.command.port) == (20, 19001)
    with pytest.raises(ValidationError, match="command_ws_queue"):
        Settings(command_ws_queue=5)  # at least 10


def test_groups_are_frozen_and_updated_copies_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(command_ws_queue=50)
    with pytest.raises(ValidationError):
        s.command.ws_queue = 60  # type: ignore[misc]
    monkeypatch.setenv("COMMAND_PORT", "18000")  # an update does not read the environment again
    changed = s.updated(command_ws_queue=60, mqtt_url="mqtt://127.0.0.1:1883")
    assert (changed.command.ws_queue, changed.command.port, changed.shared.mqtt_url) == (
        60,
        8000,
        "mqtt://127.0.0.1:1883",
    )
    assert s.command.ws_queue == 50
    with pytest.raises(ValidationError, match="DASHBOARD_SECRET"):
        s.updated(dashboard_secret="demo")


def test_an_error_names_the_variable_not_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEAD_LETTER_RAW_CAP", "1")
    with pytest.raises(ConfigError, match="DEAD_LETTER_RAW_CAP"):
        load_settings()
    monkeypatch.delenv("DEAD_LETTER_RAW_CAP")
    monkeypatch.setenv("DASHBOARD_HEAT_HOURS", "0")
    with pytest.raises(ConfigError, match="DASHBOARD_HEAT_HOURS"):
        load_settings()
