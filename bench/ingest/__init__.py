"""Ingest benchmark (MQTT → PostgreSQL): ``python -m bench.ingest``; see run.py."""
