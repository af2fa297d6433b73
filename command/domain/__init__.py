"""The command service's domain core: plain functions and classes, no I/O.

Everything here is tested with plain inputs; PostgreSQL, Redis, MQTT and HTTP live in
the service edge around it.
"""
