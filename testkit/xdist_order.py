"""How ``make test`` deals the test files out to its two pytest-xdist workers: a file
stays whole on one worker, in order, and the longest files go first (longest processing
time first), so the last file to finish is a short one.

Not xdist's ``--dist loadgroup`` with ``xdist_group`` marks: pytest-xdist 3.8 marks a
group by rewriting the test's node id, which pytest 9.2's structured node ids ignore
(pytest-xdist issue #1386), so every test was its own unit, dealt out one by one —
each file's module fixtures (a Chromium, an ingest, a console stack) set up on both
workers, and the two workers' browser tests running side by side.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

#: A file's own time in seconds where it is known to be long (measured with
#: ``--durations=0``, the browser tests on 2026-12-07 under load; only the proportions
#: matter). Any other file is reckoned at ``SECONDS_PER_TEST`` a test.
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
}
SECONDS_PER_TEST = 1.5


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def estimate(path: str, tests: int) -> float:
    return FILE_SECONDS.get(path, tests * SECONDS_PER_TEST)


class LongestFileFirst(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """xdist's scope scheduling with the file as the scope, the queue longest first."""

    _ordered = False
    workqueue: OrderedDict[str, dict[str, bool]]  # the files not sent yet: file → test → done

    def _split_scope(self, nodeid: str) -> str:
        return file_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        # The first assignment comes after the queue is built, before any file is sent.
        if not self._ordered:
            self._ordered = True
            queue = self.workqueue.items()
            self.workqueue = OrderedDict(sorted(queue, key=lambda u: -estimate(u[0], len(u[1]))))
        super()._assign_work_unit(node)
