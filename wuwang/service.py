"""Start-up shared by every ``python -m <service>``: logging, settings, a stop Event.

A service's ``__main__.py`` is two lines::

    from wuwang.service import Service, run

    def main(svc: Service) -> int | None:
        ...  # loop until svc.stop.is_set(); svc.settings, svc.log
        return 0

    raise SystemExit(run("ingest", main))

``run`` loads :class:`~wuwang.settings.Settings` from the environment (a bad value
exits with code 2 and a message that names the environment variable), configures
logging once for the process, turns SIGINT/SIGTERM/SIGHUP into ``svc.stop.set()``,
calls ``main`` and turns an uncaught exception into a logged traceback and exit code 1.
Services never install their own signal handlers: they watch ``svc.stop``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from wuwang.settings import Settings

#: Exit code for a configuration the service refuses (like sysexits' EX_USAGE family).
EXIT_CONFIG = 2

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(service)s[%(process)d] %(name)s: %(message)s"


class ConfigError(Exception):
    """The settings cannot be loaded; ``str(exc)`` is the operator-facing message."""


@dataclass(frozen=True)
class Service:
    """What a running service gets: its name, settings, stop Event and logger."""

    name: str
    settings: Settings
    stop: threading.Event
    log: logging.Logger


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment (plus ``overrides``), or :class:`ConfigError`
    whose message names each offending environment variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]).upper()
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "invalid configuration: " + "; ".join(lines)


class _ServiceNameFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "service"):
            record.service = self.service
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    """One stderr handler on the root logger with the service name in every line.
    Calling it again replaces the previous set-up (tests, re-entry)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_ServiceNameFilter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_wuwang", False):
            root.removeHandler(old)
    handler._wuwang = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())


def stop_event(
    signals: Iterable[signal.Signals] = STOP_SIGNALS, event: threading.Event | None = None
) -> threading.Event:
    """An Event set by the first of ``signals``; a second one is logged, not fatal
    (the service is already stopping). Must be called from the main thread."""
    stop = event if event is not None else threading.Event()
    log = logging.getLogger("wuwang.service")

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: still stopping", name)
        else:
            log.info("%s: stopping", name)
        stop.set()

    for sig in signals:
        signal.signal(sig, handler)
    return stop


def start(name: str, **overrides: Any) -> Service:
    """Settings, logging and the stop Event for service ``name`` (raises ConfigError)."""
    settings = load_settings(**overrides)
    setup_logging(name, settings.log_level)
    stop = stop_event()
    log = logging.getLogger(name)
    log.info("starting (pid %d, demo mode %s)", os.getpid(), "on" if settings.demo_mode else "off")
    return Service(name, settings, stop, log)


def run(name: str, main: Callable[[Service], int | None], **overrides: Any) -> int:
    """Start service ``name``, run ``main`` and return the process exit code."""
    try:
        svc = start(name, **overrides)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        code = main(svc)
    except KeyboardInterrupt:
        code = 0
    except Exception:
        svc.log.exception("stopped by an unexpected error")
        return 1
    svc.log.info("stopped")
    return int(code or 0)
