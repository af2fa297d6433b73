"""How ``make test`` deals the tests out to its pytest-xdist workers: the long files
(``FILE_SECONDS``: the browser journeys) whole, longest first, to the first worker; every
other test on its own to the other worker. A worker that runs out of its kind takes the
other kind (the first worker the short tests, the other the shortest long files left),
so the two still finish within a test or a short file of each other.

So one worker at a time drives Chromium against its console stack: two console stacks and
two Chromiums on two cores (what the previous order did for its first ~10 minutes) is
when sign-ins timed out and pages missed their waits. The short tests beside them wait
mostly on PostgreSQL, Redis and the broker, which share the cores better. The journeys
(~17 min of worker time in a loaded run on 2026-12-08) are less than the short tests
(~45 min), so in a whole run the other worker never takes a long file.

A long file stays whole because its Chromium and module fixtures are per file, and two
of its tests on two workers would set them up twice. Not xdist's ``xdist_group`` marks
(``--dist loadgroup``): pytest-xdist 3.8 marks a group by rewriting the test's node id,
which pytest 9.2's structured node ids ignore (pytest-xdist issue #1386), so every test
was dealt out alone, in collection order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

#: The long files' own time in seconds (their tests' set-up, call and teardown with
#: ``--durations=0``, the browser tests alone in one process, niced, on 2026-12-08 at load
#: average ~11 on two cores; only the proportions matter). Each is dealt whole; a test of
#: any other file is dealt alone and reckoned at ``SECONDS_PER_TEST``. A new browser file
#: belongs here.
FILE_SECONDS: dict[str, float] = {
    "tests/dashboard/test_language_browser.py": 152,
    "tests/dashboard/test_warnings_draw_browser.py": 93,
    "tests/dashboard/test_detail_browser.py": 87,
    "tests/dashboard/test_queue_browser.py": 78,
    "tests/dashboard/test_console_browser.py": 71,
    "tests/dashboard/test_inbox_browser.py": 68,  # less since the expiry runs every second
    "tests/dashboard/test_reporting_browser.py": 66,
    "tests/dashboard/test_exercise_browser.py": 63,
    "tests/dashboard/test_wall_browser.py": 46,
    "tests/dashboard/test_warnings_browser.py": 39,
    "tests/dashboard/test_duty_browser.py": 39,
    "tests/dashboard/test_map_layers_browser.py": 33,
    "tests/dashboard/test_basemap_browser.py": 32,
    "tests/dashboard/test_field_order_browser.py": 30,  # its own stack: start, call, stop
    "tests/dashboard/test_field_shelter_browser.py": 28,
    "tests/dashboard/test_field_geo_js.py": 19,
    "tests/dashboard/test_field_browser.py": 17,
    "tests/dashboard/test_risk_browser.py": 15,
    "tests/dashboard/test_queue_rank_js.py": 5,
    "tests/dashboard/test_console_geo_js.py": 3,
}
SECONDS_PER_TEST = 1.5


def unit_of(nodeid: str) -> str:
    """The unit a test is dealt in: its file when that is a long one, else itself."""
    path = nodeid.split("::", 1)[0]
    return path if path in FILE_SECONDS else nodeid


def estimate(unit: str, tests: int) -> float:
    return FILE_SECONDS.get(unit, tests * SECONDS_PER_TEST)


def is_long(unit: str) -> bool:
    return unit in FILE_SECONDS


def deal_order(units: dict[str, int]) -> list[str]:
    """The units (unit → its number of tests) in the order they wait to be dealt: the
    long files longest first, then the short tests (in the order of collection)."""
    return sorted(units, key=lambda u: (not is_long(u), -estimate(u, units[u])))


def next_unit(waiting: Sequence[str], *, browser_worker: bool) -> str:
    """The unit a worker is given next out of ``waiting`` (in ``deal_order``): the
    browser worker the longest long file, any other worker the first short test; each
    the other kind when its own has run out (the short worker the shortest long file)."""
    if browser_worker:
        return waiting[0]
    return next((u for u in waiting if not is_long(u)), waiting[-1])


class LongestFirst(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """xdist's scope scheduling with ``unit_of`` as the scope: the first worker given work
    is the browser worker, the units go out as ``next_unit`` says."""

    _ordered = False
    _browser_worker: Any = None
    workqueue: OrderedDict[str, dict[str, bool]]  # the units not sent yet: unit → test → done

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        # The first assignment comes after the queue is built, before any unit is sent.
        if not self._ordered:
            self._ordered = True
            self._browser_worker = node
            queue = self.workqueue
            self.workqueue = OrderedDict(
                (u, queue[u]) for u in deal_order({u: len(t) for u, t in queue.items()})
            )
        # xdist sends the unit at the head of the queue: put the chosen one there.
        chosen = next_unit(list(self.workqueue), browser_worker=node is self._browser_worker)
        self.workqueue.move_to_end(chosen, last=False)
        super()._assign_work_unit(node)
