"""The ingest service: MQTT contract v1 feeds → PostgreSQL/TimescaleDB, alarms → Redis.

``python -m ingest`` runs it; ``ingest.service.IngestService`` runs it in-process.
See docs/ingest.md.
"""
