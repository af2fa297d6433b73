"""Every service listens on loopback unless a ``*_HOST`` setting opens it.

The attack: ``make demo`` accepts the repository's demo passwords, and the command
service, the dashboard and the ingest metrics listened on every interface — anyone on
the LAN could log in as ``admin1``/``demo``. Each service is started here for real
(``python -m <service>``), and its listening socket is read from the kernel
(``/proc/net/tcp``) and connected to on a non-loopback address of this machine.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests import helpers_services
from tests.helpers_services import MakeSettings, command_vars, ingest_vars, running
from wuwang.endpoints import Endpoints, free_port
from wuwang.launcher import DemoOptions, caveats, demo_services
from wuwang.mqtt import MqttTarget
from wuwang.settings import Settings


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (IPv4 and IPv6)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            host_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(host_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = [raw[i : i + 4][::-1] for i in range(0, width, 4)]
            found.add(str(ipaddress.ip_address(b"".join(words))))
    return found


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (the LAN side), if any."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            address = parts[parts.index("inet") + 1].split("/")[0]
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


def connects(host: str, port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment ``make demo`` gives a child, from the test's settings."""
    # Only what the test sets: *_HOST stays unset, so the defaults are what is checked.
    for name in ("COMMAND_HOST", "DASHBOARD_HOST", "INGEST_METRICS_HOST", "DASHBOARD_SECRET"):
        assert name not in os.environ, f"{name} is set in the test's environment"
    return helpers_services.service_env(settings, log_level="WARNING", **extra)


def assert_loopback_only(port: int) -> None:
    assert listening_addresses(port) == {"127.0.0.1"}
    lan = non_loopback_address()
    if lan is not None:
        assert not connects(lan, port), f"{lan}:{port} answers: the service listens beyond loopback"


def test_command_service_listens_on_loopback_by_default(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings(account="command")
    port = free_port()
    env = service_env(settings, **command_vars(port, f"command-listen-{os.getpid()}"))
    with running("command", env, port, tmp_path / "command.log"):
        assert_loopback_only(port)


def test_dashboard_listens_on_loopback_by_default(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings(account="command")
    port = free_port()
    env = service_env(
        settings, DASHBOARD_PORT=str(port), DASHBOARD_COMMAND_URL=f"http://127.0.0.1:{free_port()}"
    )
    with running("dashboard", env, port, tmp_path / "dashboard.log"):
        assert_loopback_only(port)


def test_ingest_metrics_listen_on_loopback_by_default(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings(account="ingest")
    port = free_port()
    env = service_env(settings, **ingest_vars(settings, port))
    with running("ingest", env, port, tmp_path / "ingest.log"):
        assert_loopback_only(port)


def test_upper_level_simulator_listens_on_loopback_by_default(tmp_path: Path) -> None:
    """The simulated upper-level platform (信息报送, ``python -m simulators upper``) that
        ``make demo`` starts: it takes reports and issues instructions without any login, so
    it is held to the same rule (a service added later, not one of the issue's four)."""
    port = free_port()
    with running("simulators", {}, port, tmp_path / "upper.log", args=("upper", "--port", str(port))):
        assert_loopback_only(port)


def test_a_host_setting_opens_the_service_to_the_lan(make_settings: MakeSettings, tmp_path: Path) -> None:
    """The other side: DASHBOARD_HOST=0.0.0.0 (a wall PC on the LAN) is honoured."""
    lan = non_loopback_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    settings = make_settings(account="command")
    port = free_port()
    env = service_env(
        settings,
        DASHBOARD_PORT=str(port),
        DASHBOARD_HOST="0.0.0.0",
        DASHBOARD_COMMAND_URL=f"http://127.0.0.1:{free_port()}",
    )
    with running("dashboard", env, port, tmp_path / "dashboard.log"):
        assert "0.0.0.0" in listening_addresses(port)
        assert connects(lan, port)


def test_host_settings_default_to_loopback() -> None:
    settings = Settings(demo_mode=True)
    assert (settings.command.host, settings.dashboard.host, settings.ingest.metrics_host) == (
        "127.0.0.1",
        "127.0.0.1",
        "127.0.0.1",
    )


def test_demo_waits_for_and_shows_a_service_where_it_listens(tmp_path: Path) -> None:
    """A service opened on a LAN address does not answer on loopback: the launcher
    waits for it, and shows it, where it listens; and says it is open."""
    endpoints = Endpoints(
        "postgresql://p@127.0.0.1/x",
        "redis://127.0.0.1:1/0",
        MqttTarget("127.0.0.1", 1999, None, None, False),
        "5",
        "mosquitto",
    )
    lan = "192.0.2.10"
    settings = Settings(demo_mode=True, data_dir=tmp_path, command_host=lan, dashboard_host="0.0.0.0")
    specs = {s.name: s for s in demo_services(DemoOptions(), settings, endpoints)}
    assert specs["command"].ready_host == lan
    assert all(url.startswith(f"http://{lan}:") for url in specs["command"].urls)
    assert specs["dashboard"].env["DASHBOARD_COMMAND_URL"].startswith(f"http://{lan}:")
    assert specs["dashboard"].ready_host == "127.0.0.1"  # 0.0.0.0 answers on loopback too
    assert specs["ingest-1"].ready_host == "127.0.0.1"
    warned = [c for c in caveats(endpoints, "plain", settings) if "COMMAND_HOST" in c]
    assert warned and "DASHBOARD_HOST" in warned[0] and "INGEST_METRICS_HOST" not in warned[0]
    assert not [c for c in caveats(endpoints, "plain", Settings(demo_mode=True)) if "_HOST" in c]
