"""Typed replies of PostgreSQL and Redis for the tests: a query's one row, a stream's entries.

psycopg types ``fetchone()`` as optional and redis-py types its replies for either
``decode_responses`` setting; these say what a test expects and fail it plainly otherwise."""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
import redis

Row = TypeVar("Row")

# A stream entry, (id, fields), as a client reads it without ``decode_responses`` (bytes)
# and with it (text).
StreamEntry = tuple[bytes, dict[bytes, bytes]]
TextStreamEntry = tuple[str, dict[str, str]]


def one(cur: psycopg.Cursor[Row]) -> Row:
    """The row a query must return (``SELECT count(*)``, a row looked up by its key)."""
    row = cur.fetchone()
    assert row is not None, "the query returned no row"
    return row


def _xrange(r: redis.Redis, stream: str, kind: type[bytes] | type[str]) -> list[Any]:
    # redis-py's types cannot tell a bytes client from a decoding one: the ids say which.
    entries: Any = r.xrange(stream)
    assert isinstance(entries, list), f"XRANGE {stream} answered {entries!r}"
    assert all(isinstance(entry_id, kind) for entry_id, _ in entries), f"{stream}: not {kind.__name__}"
    return entries


def stream_entries(r: redis.Redis, stream: str) -> list[StreamEntry]:
    """Every entry of ``stream`` (XRANGE - +), oldest first, from a bytes client."""
    return _xrange(r, stream, bytes)


def text_stream_entries(r: redis.Redis, stream: str) -> list[TextStreamEntry]:
    """Every entry of ``stream``, oldest first, from a client with ``decode_responses``."""
    return _xrange(r, stream, str)
