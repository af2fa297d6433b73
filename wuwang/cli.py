"""Every service explains itself: ``python -m <service> --help``.

The help of ``ingest``, ``command``, ``dashboard``, ``simulators`` and ``wuwang`` is
built here, from the one :class:`~wuwang.settings.Settings`: the service's own group
(``settings.ingest``, ``settings.command``, …) together, then what it reads of the
shared group and of others. For each setting: its environment variable, default,
description and — when the environment sets it — the value it would run with. Secrets (``*_SECRET``,
``*_PASSWORD``) never show a value, only whether they are set; a URL's password is
masked. Nothing is started and nothing is validated: ``--help`` works without the
secrets a service needs to run and without a reachable database.

Services without arguments of their own call :func:`service_args` first thing::

    if __name__ == "__main__":
        service_args("ingest")          # --help: print and exit 0; anything else: usage, exit 2
        raise SystemExit(run("ingest", main))

Services with subcommands (``simulators``, ``wuwang``) build their own parser with
:func:`parser_for` or give theirs :func:`settings_epilog`.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic.fields import FieldInfo

from wuwang.settings import GROUPS, REPO_ROOT, field_info

#: Shown for a secret that is set (its value never is).
HIDDEN = "(set, not shown)"

ENDPOINTS = ("database_url", "redis_url", "mqtt_url", "mqtt_protocol", "mqtt_keepalive")
START_UP = ("demo_mode", "log_level", "data_dir")


@dataclass(frozen=True)
class ServiceHelp:
    """What ``python -m <name> --help`` says: one line, then the settings in groups."""

    name: str
    description: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    def fields(self) -> list[str]:
        return [f for _title, names in self.groups for f in names]


def _group(group: str) -> tuple[str, ...]:
    """The environment names of a group's settings (``settings.<group>``), as declared."""
    model = GROUPS[group]
    return tuple(model.env_name(field) for field in model.model_fields)


SERVICES: Mapping[str, ServiceHelp] = {
    "ingest": ServiceHelp(
        "ingest",
        "MQTT feeds → PostgreSQL (dead letters for what is malformed), alarms → Redis; "
        "Prometheus metrics on INGEST_METRICS_HOST:INGEST_METRICS_PORT (docs/ingest.md). "
        "DATABASE_URL, REDIS_URL and MQTT_URL are required.",
        (
            ("Endpoints", ENDPOINTS),
            ("Ingest", _group("ingest")),
            (
                "Storage and alarms (shared)",
                ("retention_days", "compress_after_days", "alarm_stream", "grid_cell_deg"),
            ),
            ("Start-up", START_UP),
        ),
    ),
    "command": ServiceHelp(
        "command",
        "The command service: incidents from alarms, contingency plans, teams, reserve, dispatch, "
        "audit; HTTP API and /ws on COMMAND_HOST:COMMAND_PORT (docs/incidents.md, docs/command-api-*.md). "
        "COMMAND_TOKEN_SECRET is required outside DEMO_MODE. 'python -m command cap import FILE…' "
        "stores CAP 1.2 files of other agencies as inbound warnings (docs/warnings.md).",
        (
            ("Endpoints", ENDPOINTS),
            ("Command service", _group("command")),
            # dead letters of the v2 shelter counts are cut as the ingest cuts its own; team
            # statuses and field reports keep the ingest's time window (retention, clock skew)
            (
                "Shared",
                (
                    "alarm_stream",
                    "grid_cell_deg",
                    "dead_letter_raw_cap",
                    "retention_days",
                    "ingest_clock_skew_s",
                ),
            ),
            ("Start-up", START_UP),
        ),
    ),
    "dashboard": ServiceHelp(
        "dashboard",
        "The map console: operator desk, wall display (/wall), field page; on "
        "DASHBOARD_HOST:DASHBOARD_PORT (docs/console.md). DASHBOARD_SECRET is required outside DEMO_MODE.",
        (
            ("Endpoints", ("database_url", "redis_url")),  # redis: report tickets across processes
            ("Map console", _group("dashboard")),
            ("Shared with the command service", ("command_console_secret", "command_timezone")),
            ("Start-up", START_UP),
        ),
    ),
    "simulators": ServiceHelp(
        "simulators",
        "Synthetic field traffic of every feed (feeds), the drill runner (exercises), "
        "scripted drills (drill), imports of historical 110 calls (import) and replays (replay); "
        "docs/exercises.md. 'python -m simulators COMMAND --help' for a command's options.",
        (
            ("Endpoints", ENDPOINTS),
            ("Drill runner", (*_group("drill"), "dashboard_command_url")),
            ("The simulated city", ("grid_cell_deg", "sensor_thresholds", "video_alarm_confidence")),
            ("Start-up", START_UP),
        ),
    ),
    "wuwang": ServiceHelp(
        "wuwang",
        "五网同构 command console: migrate the schema, run the whole console on this machine "
        "(demo), probe a service (health checks). 'python -m wuwang COMMAND --help' for a command's options.",
        (
            ("Endpoints (unset: found or started, docs/deployment.md)", ENDPOINTS),
            ("Storage (migrate)", ("storage_backend", "retention_days", "compress_after_days")),
            (
                "Listening (demo)",
                (
                    "command_host",
                    "command_port",
                    "dashboard_host",
                    "dashboard_port",
                    "ingest_metrics_host",
                    "ingest_metrics_port",
                ),
            ),
            (
                "Secrets (demo: made for the run when unset)",
                ("command_token_secret", "command_console_secret", "dashboard_secret"),
            ),
            ("Start-up", (*START_UP, "ingest_shared_group")),
        ),
    ),
}


def is_secret(name: str) -> bool:
    """A setting whose value is never shown (the URLs only lose their password)."""
    return "secret" in name or "password" in name


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:  # not a URL one can read: show nothing of it
        return "(set, unreadable)"
    return urlunsplit(parts._replace(netloc=netloc))


def _render(name: str, value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Path):
        try:
            return f"<repository>/{value.relative_to(REPO_ROOT)}"
        except ValueError:
            return str(value)
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if name.endswith("_url"):
        return mask_url(text)
    return text if text else '""'


def _default(name: str, field: FieldInfo) -> str:
    if is_secret(name):
        return "unset" if field.default is None else "(built in)"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    return _render(name, value)


def _choices(field: FieldInfo) -> str:
    if typing.get_origin(field.annotation) is typing.Literal:
        return ", one of " + " | ".join(str(a) for a in typing.get_args(field.annotation))
    return ""


def _description(name: str, field: FieldInfo) -> str:
    text = (field.description or "").strip()
    prefix = name.upper() + ":"
    return text[len(prefix) :].strip() if text.startswith(prefix) else text


def _environment(env: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in env.items()}  # names are not case-sensitive


def describe_setting(name: str, env: Mapping[str, str] | None = None, width: int = 88) -> str:
    """Two or more lines for one setting: ``NAME  default …  [set: …]``, then its description."""
    field = field_info(name)
    current = _environment(os.environ if env is None else env).get(name)
    head = f"  {name.upper()}  default {_default(name, field)}{_choices(field)}"
    if current is not None:
        shown = HIDDEN if is_secret(name) else _render(name, current)
        head += f"; set here: {shown}"
    lines = [head]
    description = _description(name, field)
    if description:
        lines += textwrap.wrap(description, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def settings_epilog(service: str, env: Mapping[str, str] | None = None) -> str:
    """The settings part of ``python -m <service> --help``."""
    spec = SERVICES[service]
    out = textwrap.wrap(
        "settings (environment variables, docs/deployment.md; a value the environment sets is shown"
        " after 'set here', a secret's never):",
        88,
    )
    for title, names in spec.groups:
        out.append("")
        out.append(f"{title}:")
        out.extend(describe_setting(name, env) for name in names)
    out.append("")
    out += textwrap.wrap(
        "Logs: one line per record on stderr — time (ISO 8601, UTC), level, service[pid], logger: "
        'message (docs/deployment.md, "Logs"). Exit codes: 0 stopped cleanly, 1 failed, '
        "2 configuration or usage refused.",
        88,
    )
    return "\n".join(out)


#: What each group of :class:`~wuwang.settings.Settings` is, in docs/deployment.md.
GROUP_TITLES: Mapping[str, str] = {
    "shared": "read by more than one service: endpoints, storage, start-up",
    "ingest": "the ingest workers (`python -m ingest`)",
    "command": "the command service (`python -m command`)",
    "dashboard": "the map console (`python -m dashboard`)",
    "drill": "the drill runner (`python -m simulators exercises`, `drill`)",
}

#: The generated part of docs/deployment.md ("Settings, per service") lies between these.
DOC_BEGIN = "<!-- settings tables: generated by `python -m wuwang.cli`, do not edit -->"
DOC_END = "<!-- end of settings tables -->"


def settings_tables() -> str:
    """Every setting as Markdown, one table per group of :class:`~wuwang.settings.Settings`
    (``settings.<group>.<field>``): variable, default, what it does."""
    out = [DOC_BEGIN]
    for group, model in GROUPS.items():
        out += ["", f"### `settings.{group}`: {GROUP_TITLES[group]}", ""]
        out += ["| variable | field | default | what |", "|---|---|---|---|"]
        for field, info in model.model_fields.items():
            name = model.env_name(field)
            cells = (
                f"`{name.upper()}`",
                f"`{field}`",
                f"`{_default(name, info)}`" + _choices(info),
                _description(name, info),
            )
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    out += ["", DOC_END]
    return "\n".join(out)


def parser_for(service: str, env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The argparse parser of ``python -m <service>``: its description, and its settings
    as the epilog (built only when --help asks)."""
    spec = SERVICES[service]
    return _LazyEpilogParser(
        service,
        env,
        prog=f"python -m {service}",
        description=spec.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


class _LazyEpilogParser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog (the settings) is only built when help is printed."""

    def __init__(self, service: str, env: Mapping[str, str] | None, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self._service = service
        self._env = env

    def add_subparsers(self, **kwargs: typing.Any) -> typing.Any:
        kwargs.setdefault("parser_class", argparse.ArgumentParser)  # a command's parser is plain
        return super().add_subparsers(**kwargs)

    def format_help(self) -> str:
        if self.epilog is None:
            self.epilog = settings_epilog(self._service, self._env)
        description = self.description
        if description:  # the description is a paragraph: wrap it (the epilog keeps its lines)
            self.description = textwrap.fill(description, 88)
        try:
            return super().format_help()
        finally:
            self.description = description


def service_args(service: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line of a service without arguments of its own: ``-h``/``--help``
    prints the help and exits 0; anything else is a usage error (exit 2), never a traceback."""
    return parser_for(service).parse_args(argv)


if __name__ == "__main__":  # the tables of docs/deployment.md
    print(settings_tables())
