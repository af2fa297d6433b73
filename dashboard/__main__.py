"""``python -m dashboard``: the map console on ``DASHBOARD_HOST:DASHBOARD_PORT``
(127.0.0.1:8050; DASHBOARD_HOST opens it to wall displays and desks on a LAN).

uvicorn serves the Dash app in a thread of its own; the main thread waits for the stop
signal (wuwang.service) and then lets uvicorn finish the requests in flight.
"""

from __future__ import annotations

import threading

import uvicorn

from dashboard.app import create_app
from wuwang.service import Service, run


def main(svc: Service) -> int:
    settings = svc.settings
    app = create_app(settings)
    config = uvicorn.Config(
        app.server,
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        log_config=None,  # the service's own log format (wuwang.service)
        lifespan="on",  # closes the console's HTTP and database pools (dashboard.app)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    svc.log.info(
        "map console on http://%s:%d/ (command service %s)",
        settings.dashboard_host,
        settings.dashboard_port,
        settings.dashboard_command_url,
    )
    while not svc.stop.wait(1.0):
        if not thread.is_alive():
            svc.log.error("the web server stopped by itself")
            return 1
    server.should_exit = True
    thread.join(timeout=15)
    return 0


if __name__ == "__main__":
    raise SystemExit(run("dashboard", main))
