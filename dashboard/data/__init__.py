"""Read-only data the console draws straight from PostgreSQL: the city's registries
(districts, grid cells, devices, cameras, venues, patrol units) for the map, and the
per-minute aggregate ``feed_counts_1m`` for the charts and the heat layer.

Everything the command service owns (incidents, teams, orders, the reserve, KPIs) is
read through its API with the user's token instead. Every callback that reaches this
package has verified the token first (``dashboard.callbacks.common.require``).
"""
