"""YAML files the services validate (triage rules, exercise scenarios): how a file that
does not even parse is reported."""

from __future__ import annotations

import yaml


def not_valid_yaml(name: str, exc: yaml.YAMLError) -> str:
    """``<name>:<line>: not valid YAML: <problem>`` — the line of the error's mark, or 1
    when it has none."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return f"{name}:{line}: not valid YAML: {exc.problem or exc}"
    return f"{name}:1: not valid YAML: {exc}"
