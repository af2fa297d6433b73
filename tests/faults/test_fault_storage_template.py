"""The tests' template database: cloning it must not race with anything that connects to
it. TimescaleDB's scheduler opens a session in every database that allows connections;
while one is in the template, ``CREATE DATABASE … TEMPLATE`` fails ("source database is
being accessed by other users"). Here a visitor plays the scheduler's part, always
holding one session open."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest


def test_the_template_refuses_connections(template_database: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(template_database, connect_timeout=5).close()


def test_clones_succeed_while_a_background_worker_keeps_knocking(
    template_database: str, clone_database: Callable[[], str]
) -> None:
    stop = threading.Event()
    refusals: list[str] = []
    admitted: list[int] = []

    def visitor() -> None:
        held: psycopg.Connection | None = None
        while not stop.is_set():
            try:
                fresh = psycopg.connect(template_database, connect_timeout=5)
                admitted.append(1)
            except psycopg.OperationalError as exc:
                refusals.append(str(exc))
                stop.wait(0.05)
                continue
            if held is not None:  # hand over: never a moment without a session inside
                held.close()
            held = fresh
            stop.wait(0.1)
        if held is not None:
            held.close()

    knocker = threading.Thread(target=visitor, daemon=True)
    knocker.start()
    try:
        stop.wait(0.3)
        for _ in range(3):
            url = clone_database()
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] > 0  # type: ignore[index]
    finally:
        stop.set()
        knocker.join(10)
    assert refusals and not admitted
