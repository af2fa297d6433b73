"""The scope of a request (live, or one drill) from its ``exercise_id`` query parameter.

Two readings, because the routes differ in what leaving it out means:

- ``ScopeQuery``: no ``exercise_id`` is live operations (``/kpis``);
- ``ScopeNarrowing``: no ``exercise_id`` is no narrowing, the role decides which rows
  (``/inbox``, ``/grid``: planners see every drill's rows, admins everything).

A malformed id is refused with 422 before any handler runs: no exercise can have it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from command.inputs import Text
from wuwang.exercises import EXERCISE_ID_RE
from wuwang.scope import Scope


def _exercise_query(description: str) -> object:
    return Query(min_length=1, max_length=64, pattern=f"^{EXERCISE_ID_RE.pattern}$", description=description)


def _scope(
    exercise_id: Annotated[
        Text | None, _exercise_query("one exercise (drill); without it, live operations")
    ] = None,
) -> Scope:
    return Scope.of(exercise_id)


def _narrowing(
    exercise_id: Annotated[
        Text | None, _exercise_query("one exercise (drill); without it, what the role sees")
    ] = None,
) -> Scope | None:
    return None if exercise_id is None else Scope.drill(exercise_id)


ScopeQuery = Annotated[Scope, Depends(_scope)]
ScopeNarrowing = Annotated[Scope | None, Depends(_narrowing)]
