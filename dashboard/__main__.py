"""``python -m dashboard``: the map console on ``DASHBOARD_HOST:DASHBOARD_PORT``
(127.0.0.1:8050; DASHBOARD_HOST opens it to wall displays and desks on a LAN).

``python -m dashboard --help`` lists the settings it reads (wuwang.cli). uvicorn
serves the Dash app in a thread of its own; the main thread waits for the stop signal
(wuwang.service) and then lets uvicorn finish the requests in flight.
"""

from __future__ import annotations

from wuwang.cli import service_args
from wuwang.service import Service, run, serve_asgi


def main(svc: Service) -> int:
    from dashboard.app import create_app  # after --help: the app is not built for it

    settings = svc.settings
    app = create_app(settings)
    svc.log.info(
        "map console on http://%s:%d/ (command service %s)",
        settings.dashboard.host,
        settings.dashboard.port,
        settings.dashboard.command_url,
    )
    return serve_asgi(
        svc,
        app.server,
        settings.dashboard.host,
        settings.dashboard.port,
        lifespan="on",  # closes the console's HTTP and database pools (dashboard.app)
    )


if __name__ == "__main__":
    service_args("dashboard")
    raise SystemExit(run("dashboard", main))
