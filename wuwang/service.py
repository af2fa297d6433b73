"""Start-up shared by every ``python -m <service>``: logging, settings, a stop Event.

A service's ``__main__.py`` is a few lines::

    from wuwang.cli import service_args
    from wuwang.service import Service, run

    def main(svc: Service) -> int | None:
        ...  # loop until svc.stop.is_set(); svc.settings, svc.log
        return 0

    if __name__ == "__main__":
        service_args("ingest")  # --help (its settings) or a usage error, before anything starts
        raise SystemExit(run("ingest", main))

``run`` loads :class:`~wuwang.settings.Settings` from the environment (a bad value
exits with code 2 and a message that names the environment variable), configures
logging once for the process (:func:`setup_logging`: the one format, uvicorn's loggers
included), turns SIGINT/SIGTERM/SIGHUP into ``svc.stop.set()``, calls ``main`` and
turns an uncaught exception into a logged traceback and exit code 1. Services never
install their own signal handlers: they watch ``svc.stop`` (a web service serves with
:func:`serve_asgi`, uvicorn in a thread).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from wuwang.settings import Settings, variable_of

#: Exit code for a configuration the service refuses (like sysexits' EX_USAGE family).
EXIT_CONFIG = 2

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: Every process of the console logs its lines in this one format (docs/deployment.md, "Logs"):
#: time (ISO 8601, UTC, milliseconds, ``Z``), level, service[pid], logger, message, e.g.
#: ``2026-12-07T09:25:03.117Z WARNING command[4242] command.services.mqtt_side: unreadable …``.
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(service)s[%(process)d] %(name)s: %(message)s"

#: What the first line of every log record looks like (a traceback follows on lines of its own).
LOG_LINE_RE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) +"
    r"(?P<service>\S+)\[(?P<pid>\d+)\] "
    r"(?P<logger>[^\s:]+): "
    r"(?P<message>.*)$"
)

#: Loggers of libraries that come with handlers or formats of their own (uvicorn's
#: default dictConfig, Flask's default handler): ``setup_logging`` takes their handlers
#: away so that their records reach the one root handler, in the one format.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "werkzeug", "websockets")


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
        where = variable_of(err["loc"])
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


class LogFormatter(logging.Formatter):
    """:data:`LOG_FORMAT` with the time in ISO 8601, UTC: ``2026-12-07T09:25:03.117Z``."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def setup_logging(service: str, level: str = "INFO") -> None:
    """One stderr handler on the root logger, in :data:`LOG_FORMAT`, with the service
    name in every line; library loggers (uvicorn, werkzeug, websockets) lose handlers
    of their own and propagate to it. Calling it again replaces the previous set-up
    (tests, re-entry). Filters on loggers (``wuwang.redact.redact_tokens_in_logs``)
    are left as they are."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter())
    handler.addFilter(_ServiceNameFilter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_wuwang", False):
            root.removeHandler(old)
    handler._wuwang = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.propagate = True
    logging.captureWarnings(True)  # warnings.warn(...) too, as logger py.warnings
    if threading.excepthook is threading.__excepthook__:  # not over a hook of someone else's (pytest)
        threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """A thread that dies of an exception is logged in the one format, not printed raw."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("wuwang.service").critical(
        "thread %s died", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)  # type: ignore[arg-type]
    )


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
    setup_logging(name, settings.shared.log_level)
    stop = stop_event()
    log = logging.getLogger(name)
    log.info("starting (pid %d, demo mode %s)", os.getpid(), "on" if settings.shared.demo_mode else "off")
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


def serve_asgi(svc: Service, app: Any, host: str, port: int, **options: Any) -> int:
    """Serve ``app`` with uvicorn in a thread of its own until ``svc.stop`` (the main
    thread keeps the signals), then let it finish the requests in flight; 1 when the
    web server stops by itself (a port in use). uvicorn logs through the service's
    one format: no ``log_config`` of its own (``setup_logging`` did it)."""
    import uvicorn  # only the web services need it

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=svc.settings.shared.log_level.lower(),
        proxy_headers=False,
        log_config=None,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    while not svc.stop.wait(0.5):
        if not thread.is_alive():
            svc.log.error("the web server stopped by itself")
            return 1
    server.should_exit = True
    thread.join(timeout=30)
    return 0
