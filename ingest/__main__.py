"""``python -m ingest``: MQTT feeds → PostgreSQL, alarms → Redis. See docs/ingest.md.

Settings come from the environment; DATABASE_URL, REDIS_URL and MQTT_URL are required
(the launcher, docker-compose or the operator provides them). SIGTERM/SIGINT: stop
taking messages, write and acknowledge what was taken, disconnect, exit 0.
``python -m ingest --help`` lists the settings it reads (wuwang.cli).
"""

from __future__ import annotations

import sys

from ingest.service import IngestService, missing_endpoints, tune_gc
from wuwang.cli import service_args
from wuwang.service import EXIT_CONFIG, Service, run

#: Longest a stop may take to write what was taken (the rest is redelivered).
DRAIN_TIMEOUT_S = 30.0


def main(svc: Service) -> int:
    missing = missing_endpoints(svc.settings)
    if missing:
        print(f"ingest: {', '.join(missing)} must be set (e.g. DATABASE_URL=postgresql://…, "
              "REDIS_URL=redis://…, MQTT_URL=mqtt://user:password@host:1883)", file=sys.stderr)
        return EXIT_CONFIG
    service = IngestService(svc.settings)
    tune_gc()
    service.start()
    svc.log.info("client id %s, shared group %r, metrics %s", svc.settings.ingest.client_id,
                 svc.settings.ingest.shared_group or "", service.metrics_url)
    while not svc.stop.wait(1.0):
        if not service.healthy:
            svc.log.error("a worker thread has died; stopping so that the supervisor restarts us")
            service.stop(DRAIN_TIMEOUT_S)
            return 1
    return 0 if service.stop(DRAIN_TIMEOUT_S) else 1


if __name__ == "__main__":
    service_args("ingest")
    raise SystemExit(run("ingest", main))
