"""How ``make test`` deals the tests out to its two pytest-xdist workers: the long
files (``FILE_SECONDS``: the browser journeys) whole and first, longest first, each on
the worker that is free; every other test on its own after them, so the two workers
finish within a test of each other.

A long file stays whole because its Chromium and module fixtures are per file, and two
of its tests on two workers would set them up twice. Not xdist's ``xdist_group`` marks
(``--dist loadgroup``): pytest-xdist 3.8 marks a group by rewriting the test's node id,
which pytest 9.2's structured node ids ignore (pytest-xdist issue #1386), so every test
was dealt out alone, in collection order.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

#: The long files' own time in seconds (their tests' set-up, call and teardown with
#: ``--durations=0``, the browser tests alone in one process on 2026-12-07 under load;
#: only the proportions matter). Each is dealt whole; a test of any other file is dealt
#: alone and reckoned at ``SECONDS_PER_TEST``. A new browser file belongs here.
FILE_SECONDS: dict[str, float] = {
    "tests/dashboard/test_language_browser.py": 305,
    "tests/dashboard/test_queue_browser.py": 254,
    "tests/dashboard/test_detail_browser.py": 253,
    "tests/dashboard/test_warnings_browser.py": 215,
    "tests/dashboard/test_warnings_draw_browser.py": 191,
    "tests/dashboard/test_exercise_browser.py": 186,
    "tests/dashboard/test_console_browser.py": 184,
    "tests/dashboard/test_duty_browser.py": 164,
    "tests/dashboard/test_wall_browser.py": 121,
    "tests/dashboard/test_inbox_browser.py": 120,
    "tests/dashboard/test_reporting_browser.py": 97,
    "tests/dashboard/test_map_layers_browser.py": 75,
    "tests/dashboard/test_basemap_browser.py": 72,
    "tests/dashboard/test_field_browser.py": 36,
    "tests/dashboard/test_risk_browser.py": 31,
    "tests/dashboard/test_field_shelter_browser.py": 30,
    "tests/dashboard/test_field_geo_js.py": 23,
    "tests/dashboard/test_field_order_browser.py": 80,  # its own stack: start, call, stop
    "tests/dashboard/test_queue_rank_js.py": 11,
    "tests/dashboard/test_console_geo_js.py": 5,
}
SECONDS_PER_TEST = 1.5


def unit_of(nodeid: str) -> str:
    """The unit a test is dealt in: its file when that is a long one, else itself."""
    path = nodeid.split("::", 1)[0]
    return path if path in FILE_SECONDS else nodeid


def estimate(unit: str, tests: int) -> float:
    return FILE_SECONDS.get(unit, tests * SECONDS_PER_TEST)


class LongestFirst(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """xdist's scope scheduling with ``unit_of`` as the scope, the queue longest first
    (the order of collection among equals)."""

    _ordered = False
    workqueue: OrderedDict[str, dict[str, bool]]  # the files not sent yet: file → test → done

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        # The first assignment comes after the queue is built, before any file is sent.
        if not self._ordered:
            self._ordered = True
            queue = self.workqueue.items()
            self.workqueue = OrderedDict(sorted(queue, key=lambda u: -estimate(u[0], len(u[1]))))
        super()._assign_work_unit(node)
