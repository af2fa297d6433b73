"""The console benchmark (``python -m bench.console``): first render of 10,000 map
entities against a plain Leaflet + supercluster page, 1,000 teams moving once a second,
and MQTT publish → visible on the map under background ingest load. Not a test."""
