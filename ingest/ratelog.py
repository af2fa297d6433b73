"""Rate-limited logging, so that a device spewing garbage cannot flood the logs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RateLimitedLog:
    """At most ``burst`` records per ``window`` seconds; the first record after a
    suppressed stretch says how many were left out."""

    def __init__(self, logger: logging.Logger, *, burst: int = 10, window: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self._burst, self._window, self._clock = logger, burst, window, clock
        self._window_start = -float("inf")
        self._count = 0
        self.suppressed = 0
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object) -> bool:
        """Log unless over the limit; returns whether it was logged."""
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self._window:
                self._window_start, self._count = now, 0
            if self._count >= self._burst:
                self.suppressed += 1
                return False
            self._count += 1
            suppressed, self.suppressed = self.suppressed, 0
        if suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._log.log(level, msg, *args)
        return True


def truncated(payload: bytes, limit: int = 200) -> str:
    """A safe, short copy of raw bytes for a log line."""
    if len(payload) <= limit:
        return repr(payload)
    return f"{payload[:limit]!r}… ({len(payload)} bytes)"
