"""schemathesis against the running command service's /openapi.json, authenticated:
no 5xx, and every response matches the schema it documents (admin); and no 5xx for a
token of every role, with schema-valid data (NULs in texts included) and with invalid
data (wrong types, missing fields)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err, Ok
from schemathesis.generation import GenerationMode

from command.app import create_app
from tests.command.conftest import FIELD_TEAM, _seed_minimal_city
from tests.conftest import Broker
from wuwang.endpoints import Endpoints, free_port
from wuwang.settings import Settings

#: One user of every role: operator, commander, planner, admin, a field team.
ROLES = ("operator1", "commander1", "planner1", "admin1", FIELD_TEAM)
#: Per operation, role and kind of data: 5 roles × 3 kinds × ~140 operations × 3
#: examples keeps each role's sweep to two or three minutes.
EXAMPLES_PER_ROLE = 3
#: Operations that end the caller's session. Swept with a token of their own: with the
#: role's token, the first example logged the sweep out and every later operation was
#: a 401 that proved nothing.
SESSION_ENDING = frozenset({"POST /auth/logout"})
#: Each call's limit: long, for a machine shared with other test runs (a timeout is a
#: failure of the sweep, not a 5xx, but it must not be mistaken for one).
REQUEST_TIMEOUT_S = 120.0


def _why(exc: BaseException) -> str:
    """A failure with what it groups (hypothesis' "flaky" and schemathesis' groups hide
    the response that failed in their sub-exceptions)."""
    parts = [str(exc)]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(_why(sub))
    return "\n  ".join(parts)[:4000]


def _reproducible(examples: int) -> settings:
    """Hypothesis settings of these sweeps: ``examples`` each, the same ones every run,
    no deadline, no example database, no health check."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@dataclass
class LiveCommand:
    base_url: str
    headers: dict[str, str]
    tokens: dict[str, dict[str, str]]

    def login(self, user: str) -> dict[str, str]:
        """A token of a new session of ``user``."""
        answer = httpx2.post(f"{self.base_url}/auth/login", json={"username": user, "password": "demo"})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def headers_for(self, label: str, user: str) -> dict[str, str]:
        """The role's token, or a throwaway one where the operation ends its session."""
        return self.login(user) if label in SESSION_ENDING else self.tokens[user]

    def schema(self) -> Any:
        """The service's OpenAPI, read with time to spare (a busy machine answered the
        ~140 operations' schema later than schemathesis waits)."""
        answer = httpx2.get(f"{self.base_url}/openapi.json", timeout=REQUEST_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        return schemathesis.openapi.from_dict(answer.json())

    def assert_still_signed_in(self, user: str) -> None:
        """The sweep ran signed in to the end: neither logged out nor expired on the way
        (a sweep answered 401 throughout would find no 5xx and prove nothing)."""
        answer = httpx2.get(f"{self.base_url}/auth/me", headers=self.tokens[user])
        assert answer.status_code == 200, f"{user}'s sweep ended signed out: {answer.text}"


@pytest.fixture(scope="module")
def live_command(
    endpoints: Endpoints, clone_database: Callable[[], str], mqtt_broker: Broker
) -> Iterator[LiveCommand]:
    database_url = clone_database()
    _seed_minimal_city(database_url)
    settings_ = Settings(
        demo_mode=True,
        database_url=database_url,
        redis_url=endpoints.redis_url.rsplit("/", 1)[0] + "/8",
        mqtt_url=mqtt_broker.url_for("command"),
        mqtt_protocol=mqtt_broker.protocol,
        alarm_stream="test:alarms:schemathesis",
        command_login_limit="10000/minute",
        command_login_limit_per_address="10000/minute",
        # The module's sweeps outlast the 15 minutes of a production token.
        command_token_ttl_s=6 * 3600,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings_), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "command service did not start"
        time.sleep(0.05)
    live = LiveCommand(base, {}, {})
    live.tokens = {user: live.login(user) for user in ROLES}
    live.headers = live.tokens["admin1"]
    # Something to act on: an incident opened by hand.
    httpx2.post(
        f"{base}/incidents",
        headers=live.headers,
        json={"type": "fire", "level": 3, "title": "测试火情", "lat": 32.04, "lon": 112.14},
    )
    yield live
    server.should_exit = True
    thread.join(timeout=10)


Operation = TypeVar("Operation")


def _ok(result: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    """An operation the schema describes; one it cannot describe fails the test, with why."""
    assert isinstance(result, Ok), result.err()
    return result.ok()


@pytest.mark.timeout(1200)  # ~140 operations × 15 cases: about five minutes on a busy machine
def test_api_conforms(live_command: LiveCommand) -> None:
    """Every operation, ~15 generated cases each. (Driven by hand: schemathesis'
    pytest plugin does not run under pytest 9.)"""
    schema = live_command.schema()
    failures: list[str] = []
    operations = [_ok(result) for result in schema.get_all_operations()]
    assert len(operations) > 40

    for operation in operations:
        headers = live_command.headers_for(operation.label, "admin1")

        @given(case=operation.as_strategy())
        @_reproducible(15)
        def check(case: schemathesis.Case[Any]) -> None:
            # A schema-valid request may still be refused by the domain (an illegal
            # transition, a stale version): 4xx there is right, so that check is off.
            case.call_and_validate(
                base_url=live_command.base_url,
                headers=headers,  # noqa: B023 - check() runs within this iteration
                excluded_checks=[positive_data_acceptance],
                timeout=REQUEST_TIMEOUT_S,
            )

        try:
            check()
        except (Exception, FailureGroup) as exc:  # collect every operation's failure, then fail once
            failures.append(f"{operation.label}: {_why(exc)}")
    assert not failures, "\n\n".join(failures)
    live_command.assert_still_signed_in("admin1")


def _nul_in(value: Any) -> Any:
    """Every text in ``value`` with a NUL (U+0000) in it: PostgreSQL cannot store one."""
    if isinstance(value, str):
        return value[:1] + "\x00" + value[1:]
    if isinstance(value, dict):
        return {key: _nul_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nul_in(item) for item in value]
    return value


def _with_nul(case: schemathesis.Case[Any]) -> schemathesis.Case[Any]:
    """A schema-valid request with a NUL in every text of its body and query (path
    parameters have patterns, so a NUL there is refused by the pattern)."""
    case.body = _nul_in(case.body)
    if case.query:
        case.query = _nul_in(case.query)
    return case


def _strategies(operation: Any) -> dict[str, SearchStrategy[schemathesis.Case[Any]]]:
    return {
        "valid": operation.as_strategy(),
        "invalid": operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        "nul": operation.as_strategy().map(_with_nul),
    }


@pytest.mark.timeout(900)  # ~140 operations × 3 kinds × 3 cases
@pytest.mark.parametrize("user", ROLES)
def test_no_server_error_for_any_role(live_command: LiveCommand, user: str) -> None:
    """Whatever a signed-in user of this role sends — valid, invalid, a NUL in every
    text — the answer is never a 5xx (refusals included: their audit write cannot fail)."""
    schema = live_command.schema()
    failures: list[str] = []
    operations = [_ok(result) for result in schema.get_all_operations()]
    for operation in operations:
        headers = live_command.headers_for(operation.label, user)
        for mode, strategy in _strategies(operation).items():

            @given(case=strategy)
            @_reproducible(EXAMPLES_PER_ROLE)
            def check(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(
                    base_url=live_command.base_url,
                    headers=headers,  # noqa: B023 - check() runs within this iteration
                    checks=[not_a_server_error],
                    timeout=REQUEST_TIMEOUT_S,
                )

            try:
                check()
            except Unsatisfiable:  # no invalid request exists (no parameters, no body)
                assert mode == "invalid", operation.label
            except (Exception, FailureGroup) as exc:  # every operation's failure, then fail once
                failures.append(f"{user} {mode} {operation.label}: {_why(exc)}")
    assert not failures, "\n\n".join(failures)
    live_command.assert_still_signed_in(user)
