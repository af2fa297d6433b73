"""Simulators: synthetic field traffic for demos, drills and load tests.

``python -m simulators feeds`` publishes every feed of the five networks and the field
teams over MQTT (see simulators/feeds.py for what is generated, publish.py for how).
"""
