"""How ``make test`` deals the tests to its workers (testkit/xdist_order.py)."""

from __future__ import annotations

import re
from pathlib import Path

from testkit.xdist_order import FILE_SECONDS, deal_order, estimate, next_unit, unit_of

ROOT = Path(__file__).resolve().parents[1]
USES_A_BROWSER = re.compile(r"\b(chromium|desk): ")  # the browser fixtures, as a parameter


def test_a_long_file_is_dealt_whole_and_any_other_test_alone() -> None:
    assert unit_of("tests/dashboard/test_queue_browser.py::test_sections[a::b]") == (
        "tests/dashboard/test_queue_browser.py"
    )
    assert unit_of("tests/command/test_auth.py::test_login") == "tests/command/test_auth.py::test_login"
    journey, test = "tests/dashboard/test_language_browser.py", "tests/command/test_auth.py::test_login"
    assert estimate(journey, 2) > estimate(test, 1)


def test_every_file_that_drives_chromium_is_dealt_whole() -> None:
    """Its Chromium is per file (and its journeys the longest): a new browser file goes
    into FILE_SECONDS with its measured time."""
    drives = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("test_*.py")
        if USES_A_BROWSER.search(path.read_text(encoding="utf-8"))
    }
    assert drives, "no browser test found"
    assert sorted(drives - FILE_SECONDS.keys()) == []
    assert sorted(FILE_SECONDS.keys() - drives) == []


def test_one_worker_drives_the_browser_while_the_other_runs_the_short_tests() -> None:
    """Two console stacks and two Chromiums at once on two cores is when sign-ins timed
    out: the first worker takes the long files, longest first, the others the short
    tests; each takes the other kind once its own has run out."""
    walk, queue = "tests/dashboard/test_language_browser.py", "tests/dashboard/test_queue_browser.py"
    geo = "tests/dashboard/test_console_geo_js.py"
    shorts = ["tests/command/test_auth.py::test_login", "tests/wuwang/test_settings.py::test_defaults"]
    waiting = deal_order({shorts[0]: 1, geo: 1, queue: 1, shorts[1]: 1, walk: 2})
    assert waiting == [walk, queue, geo, *shorts]
    assert next_unit(waiting, browser_worker=True) == walk
    assert next_unit(waiting, browser_worker=False) == shorts[0]
    assert next_unit([walk, queue, geo], browser_worker=False) == geo  # the shortest long file
    assert next_unit(shorts, browser_worker=True) == shorts[0]
