"""The exercise clock: exercise time ↔ wall time, with play, pause, seek and speed.

Pure arithmetic, no I/O and no clock of its own: every call is given ``now``, a
monotonic wall time (``time.monotonic()`` in the runner, any float in tests). The
exercise's own time is an *offset* in seconds from the exercise start (a scenario's
``at``, or a recorded message's distance from the start of the replayed window).

While playing, the position advances ``speed`` exercise seconds per wall second from an
anchor (the wall time and offset of the last play, seek or speed change); while paused
it stays where it is. Re-anchoring at every change is what keeps the position
continuous across a speed change and makes a seek an exact jump.
"""

from __future__ import annotations

from wuwang.exercises import MAX_SPEED, MIN_SPEED


def check_speed(speed: float) -> float:
    """A replay runs at ×1 to ×100 of real time (wuwang.exercises)."""
    if not MIN_SPEED <= speed <= MAX_SPEED:  # also refuses NaN
        raise ValueError(f"speed must be within {MIN_SPEED:g}–{MAX_SPEED:g}, not {speed!r}")
    return float(speed)


class ExerciseClock:
    """Where an exercise is, in exercise seconds, at a given wall time.

    A new clock is paused at offset 0 (or ``start_offset``); the runner calls
    :meth:`play` when it starts sending.
    """

    __slots__ = ("_anchor_offset", "_anchor_wall", "_speed")

    def __init__(self, speed: float = 1.0, start_offset: float = 0.0) -> None:
        self._speed = check_speed(speed)
        self._anchor_offset = max(0.0, float(start_offset))
        self._anchor_wall: float | None = None  # None: paused

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def playing(self) -> bool:
        return self._anchor_wall is not None

    def position(self, now: float) -> float:
        """Exercise seconds since the start at wall time ``now``. A ``now`` earlier than
        the last change reads as that change's moment, so the position never runs back."""
        if self._anchor_wall is None:
            return self._anchor_offset
        return self._anchor_offset + max(0.0, now - self._anchor_wall) * self._speed

    def wall_time_of(self, offset_s: float) -> float | None:
        """When (wall time) the position reaches ``offset_s``; None while paused.

        An offset already passed gives a wall time in the past: it is due now.
        """
        if self._anchor_wall is None:
            return None
        return self._anchor_wall + (offset_s - self._anchor_offset) / self._speed

    def play(self, now: float) -> None:
        if self._anchor_wall is None:
            self._anchor_wall = now

    def pause(self, now: float) -> None:
        self._anchor_offset = self.position(now)
        self._anchor_wall = None

    def seek(self, offset_s: float, now: float) -> None:
        """Jump to ``offset_s`` (clamped at 0); playing or paused stays as it was."""
        if offset_s != offset_s:  # NaN
            raise ValueError("seek offset must be a number")
        self._anchor_offset = max(0.0, float(offset_s))
        if self._anchor_wall is not None:
            self._anchor_wall = now

    def set_speed(self, speed: float, now: float) -> None:
        """Change speed without a jump: re-anchor at the current position first."""
        new = check_speed(speed)
        self._anchor_offset = self.position(now)
        if self._anchor_wall is not None:
            self._anchor_wall = now
        self._speed = new
