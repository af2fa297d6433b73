"""No secret in a log line: request loggers print paths with their query strings.

Tokens must never reach a log: a ``token=`` query parameter (old clients of /ws), a
report link's one-time ``ticket=``, an Authorization header echoed in an error, or a
bare JWT. :func:`redact_tokens_in_logs` puts :class:`RedactTokens` on the loggers that
print request lines (uvicorn's access log, websockets' handshakes); the command service
and the dashboard both install it.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PATTERNS = (
    re.compile(r"(?i)([?&;](?:access_)?(?:token|ticket)=)[^&\s\"']+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"()eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"),
)
REDACTED = "[redacted]"

#: The loggers that print request lines (uvicorn) or handshakes (websockets).
REQUEST_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "websockets.server")


def redact(text: str) -> str:
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactTokens(logging.Filter):
    """Rewrites a record whose message would carry a token (uvicorn's access and
    WebSocket lines print the path with its query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's business
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_tokens_in_logs(names: tuple[str, ...] = REQUEST_LOGGERS) -> None:
    """Install :class:`RedactTokens` on the request loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
