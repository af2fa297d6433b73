"""Exercises (演练): what the drill runner, ingest, command and the console share.

An exercise's MQTT traffic is the contract v1 topic behind a prefix of its own,
``exercise/v1/<exercise_id>/`` — e.g. ``exercise/v1/EX-1/wuwang/v1/police/call/sys110``
or ``exercise/v1/EX-1/teams/v1/T-01/status`` — so no live subscriber (which listens on
``wuwang/v1/...`` and ``teams/v1/...``) ever receives it, and the broker's ACL can let
only the drill runner publish there. Ingest stores such messages with ``exercise_id``
set; everything downstream (alarms, incidents, orders, holds, grid cases) inherits it.

A running exercise is steered through a Redis stream of control commands
(:func:`control_stream`): the console (through the command API) appends, the runner
reads. The exercise's row in PostgreSQL (table ``exercise``) is the record of what ran.
"""

from __future__ import annotations

import re
from enum import StrEnum

EXERCISE_PREFIX = "exercise/v1"
EXERCISE_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ExerciseKind(StrEnum):
    SCENARIO = "scenario"  # a scripted drill (YAML scenario with timed injects)
    REPLAY = "replay"  # a recorded window of the time-series store, or an imported dataset
    IMPORT = "import"  # a dataset of imported historical call records (not run itself)


class ExerciseStatus(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    PURGED = "purged"


class ControlAction(StrEnum):
    PLAY = "play"
    PAUSE = "pause"
    SEEK = "seek"  # value: offset into the exercise, in exercise seconds
    SPEED = "speed"  # value: 1–100 (times real time)
    STOP = "stop"


#: Replays run at ×1 to ×100 of real time.
MIN_SPEED = 1.0
MAX_SPEED = 100.0


def valid_exercise_id(value: str) -> bool:
    return EXERCISE_ID_RE.fullmatch(value) is not None


def exercise_topic(exercise_id: str, topic: str) -> str:
    """The exercise's copy of a contract v1 topic."""
    if not valid_exercise_id(exercise_id):
        raise ValueError(f"exercise id does not match {EXERCISE_ID_RE.pattern}: {exercise_id[:70]!r}")
    return f"{EXERCISE_PREFIX}/{exercise_id}/{topic}"


def control_stream(exercise_id: str) -> str:
    """Redis stream of control commands for one running exercise (fields: action, value, by)."""
    return f"wuwang:exercise:{exercise_id}:control"
