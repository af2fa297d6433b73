"""The test-suite and the benchmarks never touch a Redis that someone else uses.

The fault: the suite emptied database 9 of whatever Redis answered on 6379 — a running
demo's, a colleague's. tests/conftest.py now starts a Redis of the session's own; these
guards fail if the session's Redis is the shared one, or if a test or a benchmark can
reach the default Redis another way (a literal URL, ``DEFAULT_REDIS_URL``, or the
services rule of ``wuwang.endpoints`` without a Redis of its own).
"""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import urlsplit

import redis

from wuwang.endpoints import Endpoints
from wuwang.settings import DEFAULT_REDIS_URL, REPO_ROOT

SHARED_PORT = urlsplit(DEFAULT_REDIS_URL).port or 6379
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}
#: Files allowed to name the default Redis, and why it is harmless there.
ALLOWED = {
    # the services rule itself, with the default ports made to look (un)reachable
    # (pretend_defaults) and URLs compared, never connected to
    "tests/wuwang/test_endpoints.py",
    # this guard
    "tests/faults/test_fault_redis_isolation.py",
}


def _python_files() -> list[Path]:
    return sorted(p for folder in ("tests", "bench", "testkit") for p in (REPO_ROOT / folder).rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def test_the_sessions_redis_is_not_the_shared_one(endpoints: Endpoints, redis_url: str) -> None:
    for url in (endpoints.redis_url, redis_url):
        assert urlsplit(url).port not in (None, SHARED_PORT), url
        # Asked of the server itself: an alias (another host name, a forwarded port)
        # cannot hide that it is the one on 6379.
        client = redis.Redis.from_url(url)
        try:
            assert int(client.info("server")["tcp_port"]) != SHARED_PORT
        finally:
            client.close()


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal, f-strings with each placeholder as ``{}``."""
    inside = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "{}"
                for part in node.values
            )
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside:
            out.append((node.lineno, node.value))
    return out


def _local_default(url: str) -> bool:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a placeholder: a port chosen at run time
        return False
    return (parts.hostname or "") in LOCAL_HOSTS and port in (None, SHARED_PORT)


def test_no_literal_url_points_at_a_local_default_redis() -> None:
    found = []
    for path in _python_files():
        if _relative(path) in ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, text in _strings(tree):
            if text.startswith(("redis://", "rediss://")) and _local_default(text):
                found.append(f"{_relative(path)}:{line}: {text}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute):
                name = node.attr
            else:
                continue
            if name == "DEFAULT_REDIS_URL":
                found.append(f"{_relative(path)}:{node.lineno}: DEFAULT_REDIS_URL")
    assert not found, found


def test_the_guard_sees_what_it_guards_against() -> None:
    tree = ast.parse('a = "redis://127.0.0.1:6379/9"\nb = f"redis://localhost/{db}"\nc = f"redis://127.0.0.1:{p}/0"')
    flagged = [text for _, text in _strings(tree) if _local_default(text)]
    assert flagged == ["redis://127.0.0.1:6379/9", "redis://localhost/{}"]


def test_whoever_resolves_local_services_brings_a_redis_of_its_own() -> None:
    """``LocalServices`` takes the Redis on 6379 when one answers: a test fixture or a
    benchmark that uses it must replace that Redis with its own embedded one."""
    offenders = []
    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        if _relative(path) in ALLOWED or "LocalServices(" not in text:
            continue
        if "embedded_redis(" not in text and "private_redis(" not in text:
            offenders.append(_relative(path))
    assert not offenders, offenders
