"""Why a JSON document does not fit a msgspec Struct: every problem, field by field.

msgspec decodes a valid message in one pass, but it stops at the first problem and
names it in its own words. The dead-letter reasons of contract v1 are older than the
switch to msgspec (docs/mqtt-contract.md lists them; operators and the other teams read
them), so when msgspec refuses a payload the contract reads it once more, slowly, with
Python's ``json`` module, and this module lists what is wrong in the struct's field order
and in those words. Only refusals come here; a valid message never does. The struct
stays the only definition: types, bounds, lengths and patterns are read from it
(``msgspec.inspect``). Pure, no I/O.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import msgspec.inspect as mi

#: Containers allowed inside the payload object (the parser before msgspec stopped at the
#: same depth; docs/mqtt-contract.md: "nesting deeper than about 200 levels").
MAX_DEPTH = 200
TOO_DEEP = "recursion limit exceeded"

#: (where, what): ``what`` is None for a required field that is missing.
Problem = tuple[str, str | None]

#: A rule on one field beyond its type, run when the type fits and the value is not null:
#: the problem in words, or None.
Refinement = Callable[[Any], str | None]


class Unreadable(ValueError):
    """The bytes are not one UTF-8 JSON document (``detail`` says where)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def load(raw: bytes) -> Any:
    """The document, as Python values; Unreadable when it is not UTF-8 JSON.

    ``NaN``, ``Infinity`` and numbers beyond a double (as infinity) are read, as they
    always were: a numeric field refuses them as not finite, an extra field as not storable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise Unreadable(TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise Unreadable(str(exc)) from None
    problem = nesting_problem(document, check_text=True)
    if problem is not None:
        raise Unreadable(problem)
    return document


def nesting_problem(document: Any, check_text: bool = False) -> str | None:
    """Too deep, or (with ``check_text``) a lone surrogate escape in a string: what is
    wrong, or None. Iterative, so that no depth breaks the walk itself."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                return TOO_DEEP
            stack.extend((v, depth + 1) for v in value.values())
            if check_text:
                stack.extend((k, depth) for k in value)
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                return TOO_DEEP
            stack.extend((v, depth + 1) for v in value)
        elif check_text and isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "lone surrogate in a string escape"
    return None


@functools.lru_cache(maxsize=64)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` as JSON Schema (ECMA-262) reads it, compiled for Python's ``re``: a
    final ``$`` matches only at the very end (Python's ``$`` also matches before a trailing
    newline, so msgspec, which uses ``re.search``, lets "smoke\\n" through ``^[a-z]+$``)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def patterned_fields(model: type[msgspec.Struct]) -> tuple[str, ...]:
    """The string fields of ``model`` that carry a pattern."""
    return tuple(f.name for f in _fields(model) if (t := _string_type(f.type)) is not None and t.pattern)


def explain(
    model: type[msgspec.Struct], document: Mapping[str, Any], refinements: Mapping[str, Refinement]
) -> list[Problem]:
    """Every problem of ``document`` against ``model``, in the model's field order."""
    problems: list[Problem] = []
    for f in _fields(model):
        if f.name not in document:
            if f.required:
                problems.append((f.name, None))
            continue
        value = document[f.name]
        found = _problems(f.type, value, f.name)
        refine = refinements.get(f.name)
        if not found and refine is not None and value is not None:
            what = refine(value)
            if what is not None:
                found = [(f.name, what)]
        problems.extend(found)
    return problems


@functools.cache
def _fields(model: type[msgspec.Struct]) -> tuple[mi.Field, ...]:
    info = mi.type_info(model)
    assert isinstance(info, mi.StructType)
    return info.fields


def _string_type(t: mi.Type) -> mi.StrType | None:
    if isinstance(t, mi.Metadata):
        return _string_type(t.type)
    if isinstance(t, mi.UnionType):
        found = [s for s in (_string_type(x) for x in t.types) if s is not None]
        return found[0] if len(found) == 1 else None
    return t if isinstance(t, mi.StrType) else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _bounds(t: mi.FloatType | mi.IntType, value: float) -> str | None:
    if t.le is not None and value > t.le:
        return f"Input should be less than or equal to {t.le}"
    if t.lt is not None and value >= t.lt:
        return f"Input should be less than {t.lt}"
    if t.ge is not None and value < t.ge:
        return f"Input should be greater than or equal to {t.ge}"
    if t.gt is not None and value <= t.gt:
        return f"Input should be greater than {t.gt}"
    return None


def _one(where: str, what: str | None) -> list[Problem]:
    return [] if what is None else [(where, what)]


def _problems(t: mi.Type, value: Any, where: str) -> list[Problem]:
    """What is wrong with one value of type ``t`` (several for a list's items)."""
    if isinstance(t, mi.Metadata):
        return _problems(t.type, value, where)
    if isinstance(t, mi.UnionType):
        if value is None and any(isinstance(x, mi.NoneType) for x in t.types):
            return []
        others = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(others) != 1:
            raise TypeError(f"{where}: no wording for a union of {others}")
        return _problems(others[0], value, where)
    if isinstance(t, mi.StrType):
        return _one(where, _string_problem(t, value))
    if isinstance(t, mi.FloatType):
        if type(value) is bool or not isinstance(value, int | float):
            return [(where, "Input should be a valid number")]
        if value != value or value in (float("inf"), float("-inf")):
            return [(where, "Input should be a finite number")]
        return _one(where, _bounds(t, value))
    if isinstance(t, mi.IntType):
        if type(value) is not int:
            return [(where, "Input should be a valid integer")]
        return _one(where, _bounds(t, value))
    if isinstance(t, mi.EnumType):
        members = [str(m.value) for m in t.cls]
        if value in members:
            return []
        listed = ", ".join(repr(m) for m in members[:-1]) + f" or {members[-1]!r}"
        return [(where, f"Input should be {listed}")]
    if isinstance(t, mi.ListType):
        return _list_problems(t, value, where)
    raise TypeError(f"{where}: no wording for {t}")


def _string_problem(t: mi.StrType, value: Any) -> str | None:
    if not isinstance(value, str):
        return "Input should be a valid string"
    if t.min_length is not None and len(value) < t.min_length:
        return f"String should have at least {_plural(t.min_length, 'character')}"
    if t.max_length is not None and len(value) > t.max_length:
        return f"String should have at most {_plural(t.max_length, 'character')}"
    if t.pattern is not None and ecma_pattern(t.pattern).search(value) is None:
        return f"String should match pattern '{t.pattern}'"
    return None


def _list_problems(t: mi.ListType, value: Any, where: str) -> list[Problem]:
    if not isinstance(value, list):
        return [(where, "Input should be a valid array")]
    if t.max_length is not None and len(value) > t.max_length:
        return [(where, f"List should have at most {_plural(t.max_length, 'item')} after validation,"
                        f" not {len(value)}")]
    items = [p for i, item in enumerate(value) for p in _problems(t.item_type, item, f"{where}.{i}")]
    if items:
        return items
    if t.min_length is not None and len(value) < t.min_length:
        return [(where, f"List should have at least {_plural(t.min_length, 'item')} after validation,"
                        f" not {len(value)}")]
    return []


def enum_types(model: type[msgspec.Struct]) -> dict[str, type[enum.Enum]]:
    """The enumerations ``model``'s fields use, by class name (as msgspec's schema names them)."""
    found: dict[str, type[enum.Enum]] = {}
    stack: list[mi.Type] = [f.type for f in _fields(model)]
    while stack:
        t = stack.pop()
        if isinstance(t, mi.Metadata):
            stack.append(t.type)
        elif isinstance(t, mi.UnionType):
            stack.extend(t.types)
        elif isinstance(t, mi.ListType):
            stack.append(t.item_type)
        elif isinstance(t, mi.EnumType):
            found[t.cls.__name__] = t.cls
    return found


def int_fields(model: type[msgspec.Struct], within: tuple[int, int] | None = None) -> tuple[str, ...]:
    """The fields of ``model`` that may hold an integer (msgspec takes any size); with
    ``within`` (lowest, highest), only those whose bounds do not keep them in that range."""
    out = []
    for f in _fields(model):
        stack: list[mi.Type] = [f.type]
        while stack:
            t = stack.pop()
            if isinstance(t, mi.Metadata):
                stack.append(t.type)
            elif isinstance(t, mi.UnionType):
                stack.extend(t.types)
            elif isinstance(t, mi.IntType) and (within is None or not _bounded(t, *within)):
                out.append(f.name)
                break
    return tuple(out)


def _bounded(t: mi.IntType, lowest: int, highest: int) -> bool:
    low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
    high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
    return low is not None and high is not None and low >= lowest and high <= highest
