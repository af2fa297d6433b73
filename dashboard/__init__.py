"""The map console (Dash): the operators' desk, the wall display and the field page.

``python -m dashboard`` serves it on ``DASHBOARD_PORT`` (8050). It talks to the
command service over HTTP with each user's token (``DASHBOARD_COMMAND_URL``), and the
browser holds a WebSocket to the command service's ``/ws`` for live changes. It reads
the city's registries and the per-minute aggregates from PostgreSQL, read-only. See
docs/console.md.
"""
