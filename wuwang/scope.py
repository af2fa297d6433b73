"""One scope value: live operations, or one drill (演练), as every service sees it.

Everything the console stores carries ``exercise_id``: NULL for live operations, the
exercise's id for a drill's copy. A :class:`Scope` is that choice as one value, so the
places that differ between live and drill ask it instead of testing ``exercise_id is
None`` each on their own:

- which rows are in scope: :meth:`Scope.where` (``i.exercise_id IS NULL`` or
  ``i.exercise_id = %s`` with :attr:`Scope.params`);
- the name of a lock (PostgreSQL advisory lock, Redis key) that is per scope:
  :meth:`Scope.lock_key`;
- where its MQTT traffic goes: :attr:`Scope.topic_prefix` / :meth:`Scope.topic`
  (``exercise/v1/<id>/`` or nothing, see :mod:`wuwang.exercises`);
- how it travels in a query string or a log line: :meth:`Scope.parse`,
  :meth:`Scope.query`, ``str(scope)``.

Pure: no I/O (psycopg's ``sql`` module only composes text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from wuwang.exercises import EXERCISE_ID_RE, exercise_topic, valid_exercise_id

#: ``str(Scope.live())``; never an exercise id's text form, which is ``drill:<id>``.
LIVE_TEXT = "live"
_DRILL_TEXT = "drill:"


@dataclass(frozen=True, slots=True)
class Scope:
    """Live operations (``exercise_id`` None) or one exercise (its id)."""

    exercise_id: str | None = None

    def __post_init__(self) -> None:
        if self.exercise_id is not None and not valid_exercise_id(self.exercise_id):
            raise ValueError(
                f"exercise id does not match {EXERCISE_ID_RE.pattern}: {self.exercise_id[:70]!r}"
            )

    # --- making one ------------------------------------------------------------------

    @classmethod
    def live(cls) -> Scope:
        return cls(None)

    @classmethod
    def drill(cls, exercise_id: str) -> Scope:
        return cls(exercise_id)

    @classmethod
    def of(cls, exercise_id: str | None) -> Scope:
        """The scope of a row or a message by its ``exercise_id`` (None: live); an empty
        string, as a form or a JSON field may carry it, is live too."""
        return cls(exercise_id or None)

    @classmethod
    def of_topic(cls, topic: str) -> Scope:
        """The scope a topic belongs to: a drill's behind ``exercise/v1/<id>/``, else live."""
        from wuwang.contract import topic_exercise_id  # the contract's Topic has a scope: no cycle

        return cls(topic_exercise_id(topic))

    def live_topic(self, topic: str) -> str:
        """The contract v1 topic behind this scope's prefix (the inverse of :meth:`topic`)."""
        if not topic.startswith(self.topic_prefix):
            raise ValueError(f"topic {topic[:120]!r} is not in scope {self}")
        return topic.removeprefix(self.topic_prefix)

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        """The inverse of ``str(scope)``; None, '' and ``live`` are live, ``drill:<id>``
        or a bare exercise id a drill. Raises ValueError for anything else."""
        if text is None or text in ("", LIVE_TEXT):
            return cls.live()
        return cls.drill(text.removeprefix(_DRILL_TEXT))

    def __str__(self) -> str:
        return LIVE_TEXT if self.exercise_id is None else f"{_DRILL_TEXT}{self.exercise_id}"

    # --- what it is ------------------------------------------------------------------

    @property
    def is_drill(self) -> bool:
        return self.exercise_id is not None

    @property
    def is_live(self) -> bool:
        return self.exercise_id is None

    # --- SQL -------------------------------------------------------------------------

    def where(
        self, alias: str | None = None, column: str = "exercise_id", *, name: str | None = None
    ) -> sql.Composed:
        """The rows of this scope: ``<alias>.exercise_id IS NULL`` live, ``= %s`` (or
        ``= %(name)s``) in a drill, the value in :attr:`params` (or :meth:`named`).

        Unlike ``IS NOT DISTINCT FROM %s`` it lets PostgreSQL use an index on the
        column either way."""
        col = sql.Identifier(alias, column) if alias else sql.Identifier(column)
        if self.exercise_id is None:
            return sql.SQL("{} IS NULL").format(col)
        return sql.SQL("{} = {}").format(col, sql.Placeholder(name or ""))

    @property
    def params(self) -> tuple[str, ...]:
        """The positional parameters of :meth:`where` (none live)."""
        return () if self.exercise_id is None else (self.exercise_id,)

    def named(self, name: str) -> dict[str, Any]:
        """The named parameter of ``where(..., name=name)`` (none live)."""
        return {} if self.exercise_id is None else {name: self.exercise_id}

    # --- locks -----------------------------------------------------------------------

    def lock_key(self, purpose: str) -> str:
        """The name of a lock (or Redis key) taken once per scope for ``purpose``:
        ``wuwang:<purpose>`` live, ``wuwang:<purpose>:<id>`` in a drill (an exercise
        id may be "live", so live gets no suffix rather than a word)."""
        base = f"wuwang:{purpose}"
        return base if self.exercise_id is None else f"{base}:{self.exercise_id}"

    # --- MQTT ------------------------------------------------------------------------

    @property
    def topic_prefix(self) -> str:
        """``exercise/v1/<id>/`` in a drill, '' live."""
        return "" if self.exercise_id is None else exercise_topic(self.exercise_id, "")

    def topic(self, live_topic: str) -> str:
        """The scope's copy of a contract v1 topic (the topic itself, live)."""
        return f"{self.topic_prefix}{live_topic}"

    # --- HTTP ------------------------------------------------------------------------

    def query(self) -> dict[str, str]:
        """The query parameters that ask the command API for this scope."""
        return {} if self.exercise_id is None else {"exercise_id": self.exercise_id}


LIVE = Scope.live()
