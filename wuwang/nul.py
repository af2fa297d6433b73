"""No text may hold NUL (U+0000): PostgreSQL cannot store it. One rule for what comes in
from outside — the command API's request bodies (``command.inputs``) and the documents
the upper-level platform sends back (``wuwang.exchange``)."""

from __future__ import annotations

NUL = "\x00"
NUL_REFUSED = "text must not contain NUL (U+0000)"


def refuse_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(NUL_REFUSED)
    return value


def refuse_nul_within(value: object) -> None:
    """Refuse a NUL in ``value`` or anywhere inside it (free-form dicts and lists too)."""
    if isinstance(value, str):
        refuse_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul_within(key)
            refuse_nul_within(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            refuse_nul_within(item)
