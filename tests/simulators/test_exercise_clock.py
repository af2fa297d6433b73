"""The exercise clock (pure): monotone while playing, frozen while paused, exact seeks,
continuous across speed changes, and wall times that agree with positions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.exercise_clock import ExerciseClock
from wuwang.exercises import MAX_SPEED, MIN_SPEED

speeds = st.floats(min_value=MIN_SPEED, max_value=MAX_SPEED, allow_nan=False)
steps = st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1, max_size=30)
starts = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def test_a_new_clock_is_paused_at_zero() -> None:
    clock = ExerciseClock(speed=10)
    assert not clock.playing
    assert clock.position(123.0) == 0.0
    assert clock.wall_time_of(5.0) is None


def test_play_runs_at_speed_and_wall_time_of_inverts_position() -> None:
    clock = ExerciseClock(speed=10)
    clock.play(100.0)
    assert clock.position(101.5) == pytest.approx(15.0)
    assert clock.wall_time_of(15.0) == pytest.approx(101.5)
    assert clock.wall_time_of(0.0) == pytest.approx(100.0)


@pytest.mark.parametrize("bad", [0.0, 0.5, 100.5, 1000.0, float("nan"), float("inf")])
def test_speed_outside_1_to_100_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        ExerciseClock(speed=bad)
    clock = ExerciseClock()
    with pytest.raises(ValueError, match="speed"):
        clock.set_speed(bad, 0.0)


@given(speed=speeds, t0=starts, deltas=steps)
def test_position_is_monotone_while_playing(speed: float, t0: float, deltas: list[float]) -> None:
    clock = ExerciseClock(speed=speed)
    clock.play(t0)
    now, last = t0, 0.0
    for d in deltas:
        now += d
        pos = clock.position(now)
        assert pos >= last
        last = pos


@given(speed=speeds, t0=starts, run=st.floats(0, 1e4), deltas=steps)
def test_pause_freezes_the_position(speed: float, t0: float, run: float, deltas: list[float]) -> None:
    clock = ExerciseClock(speed=speed)
    clock.play(t0)
    clock.pause(t0 + run)
    frozen = clock.position(t0 + run)
    assert _close(frozen, run * speed)
    now = t0 + run
    for d in deltas:
        now += d
        assert clock.position(now) == frozen
        assert clock.wall_time_of(frozen + 1) is None
    clock.play(now)  # and resumes from where it stopped
    assert _close(clock.position(now + 2.0), frozen + 2.0 * speed)


@given(speed=speeds, t0=starts, run=st.floats(0, 1e4), target=st.floats(-100, 1e6), playing=st.booleans())
def test_seek_jumps_exactly(speed: float, t0: float, run: float, target: float, playing: bool) -> None:
    clock = ExerciseClock(speed=speed)
    clock.play(t0)
    if not playing:
        clock.pause(t0 + run / 2)
    clock.seek(target, t0 + run)
    assert clock.position(t0 + run) == max(0.0, target)
    assert clock.playing is playing
    if playing:
        wall = clock.wall_time_of(max(0.0, target) + speed * 3.0)
        assert wall is not None and _close(wall, t0 + run + 3.0)


@given(t0=starts, changes=st.lists(st.tuples(st.floats(0, 1e3), speeds), min_size=1, max_size=20))
def test_speed_change_keeps_the_position_continuous(t0: float, changes: list[tuple[float, float]]) -> None:
    clock = ExerciseClock(speed=1)
    clock.play(t0)
    now = t0
    expected = 0.0
    for delta, speed in changes:
        expected += delta * clock.speed
        now += delta
        before = clock.position(now)
        clock.set_speed(speed, now)
        assert clock.position(now) == before
        assert _close(before, expected)
        assert clock.speed == speed


@given(speed=speeds, t0=starts, offsets=st.lists(st.floats(0, 1e5), min_size=1, max_size=20))
def test_wall_time_of_and_position_agree(speed: float, t0: float, offsets: list[float]) -> None:
    clock = ExerciseClock(speed=speed)
    clock.play(t0)
    for offset in offsets:
        wall = clock.wall_time_of(offset)
        assert wall is not None
        assert math.isclose(clock.position(wall), offset, rel_tol=1e-9, abs_tol=1e-5)
