"""Choosing the storage backend: STORAGE_BACKEND=auto|plain|timescale, decided by what
can really be created — not by whether the extension's files are on the server — and
said plainly when it cannot. Runs on any PostgreSQL; the case of a server with the
TimescaleDB files but without the preloaded library needs one
(WUWANG_TEST_TIMESCALE_FILES_ONLY_URL, see docs/deployment.md)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from pydantic import ValidationError

from wuwang import db
from wuwang.endpoints import Endpoints
from wuwang.settings import Settings

_names = itertools.count()


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _empty_databases(server_url: str) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        name = f"wuwang_e_{os.getpid()}_{next(_names)}"
        with psycopg.connect(_with_database(server_url, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return _with_database(server_url, name)

    yield make
    with psycopg.connect(_with_database(server_url, "postgres"), autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_database(endpoints: Endpoints) -> Iterator[Callable[[], str]]:
    """Empty (unmigrated) databases on the session's server."""
    yield from _empty_databases(endpoints.database_url)


def test_storage_backend_is_a_setting_with_three_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_BACKEND", raising=False)
    assert Settings().shared.storage_backend == "auto"
    monkeypatch.setenv("STORAGE_BACKEND", "plain")
    assert Settings().shared.storage_backend == "plain"
    with pytest.raises(ValidationError, match="storage_backend"):
        Settings(storage_backend="mongo")


def test_a_migrated_database_keeps_its_backend(database_url: str) -> None:
    with db.connect(database_url) as conn:
        current = db.backend(conn)
    other: db.StorageChoice = "plain" if current == "timescale" else "timescale"
    with pytest.raises(db.StorageBackendError, match="dump and restore"):
        db.migrate(database_url, storage=other)
    assert db.migrate(database_url, storage=current) == []
    assert db.migrate(database_url, storage="auto") == []


def test_plain_is_plain_even_where_timescale_could_be_used(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    assert "0001" in db.migrate(url, storage="plain")
    with db.connect(url) as conn:
        assert db.backend(conn) == "plain"
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None


def test_timescale_demanded_where_the_server_cannot_is_refused_with_the_reason(
    empty_database: Callable[[], str],
) -> None:
    url = empty_database()
    probe = db.probe_timescale(url)
    if probe.usable:
        pytest.skip("this server can create TimescaleDB (the refusal is tested on one that cannot)")
    for _ in range(2):  # a rerun says the same, not "the connection is closed"
        with pytest.raises(db.StorageBackendError, match="TimescaleDB cannot be used") as refused:
            db.migrate(url, storage="timescale")
        assert probe.why in str(refused.value)
    with db.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)
    assert "0001" in db.migrate(url, storage="auto")  # auto: plain, and says why in the log


@pytest.fixture(scope="module")
def files_only_server() -> str:
    url = os.environ.get("WUWANG_TEST_TIMESCALE_FILES_ONLY_URL")
    if not url:
        pytest.skip(
            "needs a PostgreSQL server with the TimescaleDB files installed but not in "
            "shared_preload_libraries: set WUWANG_TEST_TIMESCALE_FILES_ONLY_URL"
        )
    return url


@pytest.fixture
def files_only_database(files_only_server: str) -> Iterator[Callable[[], str]]:
    yield from _empty_databases(files_only_server)


def test_files_without_preload_are_detected_and_named(files_only_database: Callable[[], str]) -> None:
    url = files_only_database()
    probe = db.probe_timescale(url)
    assert not probe.usable
    assert "shared_preload_libraries" in probe.why
    # Demanded: a clear refusal, every time, and nothing half-done.
    for _ in range(2):
        with pytest.raises(db.StorageBackendError, match="shared_preload_libraries"):
            db.migrate(url, storage="timescale")
    # Auto: the plain backend, migrated completely; a rerun has nothing to do.
    applied = db.migrate(url, storage="auto")
    assert {"0001", "0002", "0008"} <= set(applied)
    assert db.migrate(url) == []
    with db.connect(url) as conn:
        assert db.backend(conn) == "plain"
