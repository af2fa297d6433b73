"""A demo-mode dashboard signs with a secret of its run, not the repository's.

The attack: with ``DASHBOARD_SECRET`` unset, demo mode signed the map's ``/geo/*.json``
URLs (and Dash's callback tokens) with a constant written in this repository, so anyone
who read the source could forge a URL that the console accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dashboard import geoserve
from dashboard.app import console_of, create_app
from wuwang.endpoints import Endpoints
from wuwang.launcher import DemoOptions, demo_services
from wuwang.mqtt import MqttTarget
from wuwang.settings import Settings, dashboard_secret

#: The constant that signed every demo console's URLs (in this repository's history).
REPOSITORY_DEMO_SECRET = "demo-only-dashboard-secret-do-not-use-in-production"


def test_geo_url_signed_with_the_repository_secret_is_refused(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(account="command", dashboard_secret=None)
    assert settings.shared.demo_mode and settings.dashboard.secret is None
    app = create_app(settings)
    forged = geoserve.signed_url(REPOSITORY_DEMO_SECRET, "districts")
    with TestClient(app.server) as client:
        assert client.get(forged).status_code == 403
        # The console's own URL for the same layer is served: the refusal is the signature's.
        own = geoserve.urls(console_of(app))["districts"]
        assert own != forged
        assert client.get(own).status_code == 200


def test_demo_secret_is_random_and_not_the_repository_one() -> None:
    secret = dashboard_secret(Settings(demo_mode=True))
    assert secret != REPOSITORY_DEMO_SECRET
    assert len(secret) >= 32
    # One per process: the console's cookies and signed URLs agree with each other.
    assert dashboard_secret(Settings(demo_mode=True)) == secret
    assert dashboard_secret(Settings(demo_mode=True, dashboard_secret="x" * 40)) == "x" * 40


def test_the_repository_secret_is_refused_outside_demo_mode() -> None:
    with pytest.raises(ValidationError, match="DASHBOARD_SECRET"):
        Settings(demo_mode=False, dashboard_secret=REPOSITORY_DEMO_SECRET)


def _endpoints() -> Endpoints:
    return Endpoints(
        "postgresql://p@127.0.0.1/x",
        "redis://127.0.0.1:1/0",
        MqttTarget("127.0.0.1", 1999, None, None, False),
        "5",
        "mosquitto",
    )


def test_launcher_gives_the_dashboard_a_secret_of_this_run(tmp_path: Path) -> None:
    """Several dashboard processes must agree on one secret: the launcher makes one per run."""
    settings = Settings(demo_mode=True, data_dir=tmp_path)
    runs = [demo_services(DemoOptions(), settings, _endpoints()) for _ in range(2)]
    secrets = []
    for specs in runs:
        dashboard = next(s for s in specs if s.name == "dashboard")
        secret = dashboard.env["DASHBOARD_SECRET"]
        assert secret != REPOSITORY_DEMO_SECRET and len(secret) >= 32
        secrets.append(secret)
    assert secrets[0] != secrets[1]
    # A secret the operator configured is theirs to keep: the launcher does not replace it.
    mine = Settings(demo_mode=True, data_dir=tmp_path, dashboard_secret="y" * 40)
    dashboard = next(s for s in demo_services(DemoOptions(), mine, _endpoints()) if s.name == "dashboard")
    assert "DASHBOARD_SECRET" not in dashboard.env
